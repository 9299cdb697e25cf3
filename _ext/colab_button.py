"""Sphinx extension: the "open in Colab" button opens the Colab edition of the chapter.

sphinx-book-theme points the button at the chapter in the repository's main branch, whose
MyST markup Colab shows raw, and offers no option for another branch (header_buttons/launch.py
adds the button on html-page-context at priority 501). This handler runs after it and points
the URL at the same path in the branch `colab_branch` (in _config.yml's sphinx config), which
the publishing workflow fills with the clean notebooks made by _ext/colab_notebooks.py from the
same commit as the website.
"""

import re


def _point_at_colab_branch(app, pagename, templatename, context, doctree) -> None:
    branch = app.config.colab_branch
    for group in context.get("header_buttons", []):
        for button in group.get("buttons", []) if isinstance(group, dict) else []:
            url = button.get("url", "")
            if url.startswith("https://colab.research.google.com/github/"):
                button["url"] = re.sub(r"(/github/[^/]+/[^/]+/blob/)[^/]+/", rf"\g<1>{branch}/", url)


def setup(app):
    app.add_config_value("colab_branch", "colab", "html")
    app.connect("html-page-context", _point_at_colab_branch, priority=600)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
