"""Sphinx extension: small fixes to every page a reader gets.

- sphinx-exercise gives every exercise the id "exercise-content" and every solution the id
  "solution-content": a page with three of each has duplicate ids (an accessibility audit's
  failure, and a link target that means nothing). They are numbered here.
- A browser may break a line between an inline formula and the punctuation after it ("z" at the
  end of one line, "." at the start of the next): the two are kept together.
- Each page gets a meta description: its first paragraph, shortened.
- Two landmarks and roles the accessibility audits ask for, fixed in the written files: the
  theme's primary sidebar (the book's title and the search button sit outside any landmark)
  becomes a complementary landmark, and docutils' bibliography entries, marked with the
  deprecated ARIA role ``doc-biblioentry`` inside a ``role="list"``, become list items.
"""

import html
import re

_MATH_THEN_PUNCTUATION = re.compile(
    r'(<span class="math notranslate nohighlight">\\\((?:(?!</span>).)*?\\\)</span>)([.,;:!?)]+)', re.S)
# (one formula: its TeX may not run past its own </span>, or a span would swallow the text up to
# the next formula that is followed by punctuation, and the page would not wrap)


def _number_ids(body: str, name: str) -> str:
    counter = iter(range(1, 10_000))
    return re.sub(rf'\bid="{name}"', lambda m: f'id="{name}-{next(counter)}"', body)


def _description(body: str) -> str:
    match = re.search(r"<p>(.*?)</p>", body, re.S)
    text = html.unescape(re.sub(r"<[^>]+>", "", match.group(1))) if match else ""
    text = re.sub(r"\\\(|\\\)|\s+", " ", text).strip()
    return text if len(text) <= 160 else text[:157].rsplit(" ", 1)[0] + "…"


def _polish(app, pagename, templatename, context, doctree) -> None:
    body = context.get("body")
    if not isinstance(body, str):
        return
    for name in ("exercise-content", "solution-content"):
        body = _number_ids(body, name)
    body = _MATH_THEN_PUNCTUATION.sub(r'<span class="vae-nowrap">\1\2</span>', body)
    context["body"] = body
    description = _description(body)
    if description:
        context["metatags"] = (context.get("metatags", "")
                               + f'\n<meta name="description" content="{html.escape(description, quote=True)}" />')


_FILE_FIXES = (
    ('<div id="pst-primary-sidebar" class="bd-sidebar-primary bd-sidebar">',
     '<div id="pst-primary-sidebar" class="bd-sidebar-primary bd-sidebar" role="complementary" '
     'aria-label="The book\'s chapters">'),
    ('role="doc-biblioentry"', 'role="listitem"'),
)


def fix_landmarks(page: str) -> str:
    """One written page with the sidebar as a landmark and list items in the bibliography."""
    for old, new in _FILE_FIXES:
        page = page.replace(old, new)
    return page


def _build_finished(app, exception) -> None:
    from pathlib import Path

    if exception is not None or app.builder.format != "html":
        return
    for path in Path(app.outdir).rglob("*.html"):
        text = path.read_text(encoding="utf-8")
        fixed = fix_landmarks(text)
        if fixed != text:
            path.write_text(fixed, encoding="utf-8")


def setup(app):
    app.connect("html-page-context", _polish, priority=600)
    app.connect("build-finished", _build_finished)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
