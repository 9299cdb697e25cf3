"""Sphinx extension for the website's pages: no ipywidgets state, no duplicate scripts.

The book's ipywidgets sliders need a Python kernel; on the website their outputs are removed
(`remove-output`), and `nb_ipywidgets_js: {}` loads no widget manager, so the widget state that
myst-nb would embed (about 140 KB per page) is dead weight. The website's sliders run in the
browser instead (web/sliders/latent_sliders.mjs).

sphinx-thebe (loaded by Jupyter Book) registers its inline configuration script twice in this
build, and the second copy's `const THEBE_JS_URL` is a console error on every page: a page keeps
one copy of each script.
"""

from myst_nb.sphinx_ import NbMetadataCollector


def _drop_widget_state(app, pagename, *args, **kwargs) -> None:
    if app.env is not None and hasattr(app.env, "nb_metadata"):
        NbMetadataCollector.get_js_files(app.env, pagename).pop("ipywidgets_state", None)


def _drop_duplicate_scripts(app, pagename, templatename, context, doctree) -> None:
    """Keep one copy of each script on the page (same file, same inline body; an inline
    script's file name may be None or "")."""
    scripts = context.get("script_files")
    if not isinstance(scripts, list):
        return
    seen, unique = set(), []
    for script in scripts:
        key = (str(getattr(script, "filename", script) or ""),
               (getattr(script, "attributes", None) or {}).get("body"))
        if key not in seen:
            seen.add(key)
            unique.append(script)
    scripts[:] = unique


def setup(app):
    # before myst-nb's own handler (priority 500), which adds the page's script tags
    app.connect("html-page-context", _drop_widget_state, priority=400)
    app.connect("html-page-context", _drop_duplicate_scripts, priority=999)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
