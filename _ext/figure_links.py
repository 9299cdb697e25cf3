"""Sphinx extension: every figure on the website links to its full-size image.

Figures are drawn for the desktop text column; on a 390 px phone a wide one is shrunk to a third
of its size, and its labels with it. A tap on the figure opens the image alone, where the phone
can zoom it (Sphinx does the same for images that a page scales down with `:width:`).
"""

import re

_FIGURE_IMAGE = re.compile(r'(<figure\b[^>]*>\s*)(<img\b[^>]*\bsrc="([^"]+)"[^>]*>)')
_LINK = r'\1<a class="reference internal image-reference" href="\3">\2</a>'


def _link_figures(app, pagename, templatename, context, doctree) -> None:
    body = context.get("body")
    if isinstance(body, str):
        context["body"] = _FIGURE_IMAGE.sub(_LINK, body)


def setup(app):
    app.connect("html-page-context", _link_figures)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
