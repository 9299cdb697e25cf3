"""The book's page fixes (_ext/page_polish.py, _ext/light_pages.py) on small pages written here
(fast; the built site is checked by test_book_build.py and test_site_browser.py)."""

import sys
from urllib.parse import unquote

from book_files import ROOT

sys.path.insert(0, str(ROOT / "_ext"))
import light_pages  # noqa: E402
import page_polish  # noqa: E402

MATH = '<span class="math notranslate nohighlight">\\({}\\)</span>'


def test_a_formula_is_kept_with_its_punctuation_and_nothing_else():
    body = f"<p>Take {MATH.format('z')} and then {MATH.format('x')}, as before.</p>"
    polished = page_polish._MATH_THEN_PUNCTUATION.sub(r'<span class="vae-nowrap">\1\2</span>', body)
    assert polished.count("vae-nowrap") == 1
    assert f'<span class="vae-nowrap">{MATH.format("x")},</span>' in polished
    assert f"Take {MATH.format('z')} and then" in polished      # the first formula is left alone


def test_the_sidebar_becomes_a_landmark_and_bibliography_entries_list_items():
    page = ('<div id="pst-primary-sidebar" class="bd-sidebar-primary bd-sidebar"><a>Title</a></div>'
            '<div role="list" class="citation-list"><div class="citation" role="doc-biblioentry">')
    fixed = page_polish.fix_landmarks(page)
    assert 'role="complementary" aria-label=' in fixed
    assert 'role="listitem"' in fixed and "doc-biblioentry" not in fixed


PAGE = """<html><head>
<script data-cfasync="false">document.documentElement.dataset.mode = "light";</script>
<link href="../_static/styles/theme.css" rel="stylesheet" />
<script defer src="../_static/scripts/fontawesome.js?digest=1"></script>
<script src="../_static/documentation_options.js?v=1"></script>
<script src="../_static/togglebutton.js?v=1"></script>
<script>var togglebuttonSelector = '.toggle';</script>
<script>window.MathJax = {"options": {}}</script>
<script defer="defer" src="../_static/../mathjax/tex-mml-chtml.js?v=1&amp;x=2"></script>
<script>DOCUMENTATION_OPTIONS.pagename = 'book/x';</script>
<script src="../_static/searchtools.js"></script>
<script src="../searchindex.js"></script>
</head><body><i class="fa-solid fa-bars"></i><img src="a.png" alt="a">{widget}</body></html>"""
ICONS = {("fas", "bars"): (448, 512, "M0 96h448")}


def test_a_page_draws_its_icons_inline_and_loads_its_figures_lazily():
    page = light_pages.lighten(PAGE.replace("{widget}", ""), ICONS)
    assert '<svg class="svg-inline--fa fa-bars"' in page and "<i " not in page
    assert "fontawesome.js" not in page                     # every icon was drawn: no script
    assert '<img loading="lazy" decoding="async" src="a.png"' in page
    assert '<script src="../_static/documentation_options.js?v=1"></script>' in page  # as it was
    unknown = light_pages.lighten(PAGE.replace("{widget}", "").replace("fa-bars", "fa-rocket"), ICONS)
    assert "fontawesome.js" in unknown                      # an icon it cannot draw keeps the script


def test_a_slider_page_defers_its_scripts_and_loads_mathjax_and_search_after_the_decoder():
    widget = '<div class="vae-web" data-config="../models/m.json"></div>'
    page = light_pages.lighten(PAGE.replace("{widget}", widget), ICONS)
    head = page.split("</head>")[0]
    stylesheet = head.index('<link href="../_static/styles/theme.css"')
    assert head.index("dataset.mode") < head.index("togglebuttonSelector") < stylesheet
    assert "<script>window.MathJax" in head                 # settings run at once ...
    assert '<script defer src="../_static/documentation_options.js?v=1"></script>' in head
    assert '<script defer src="../_static/togglebutton.js?v=1"></script>' in head
    decoded = unquote(head)                                  # ... the rest in their order
    assert (decoded.index("documentation_options.js") < decoded.index("togglebutton.js")
            < decoded.index("DOCUMENTATION_OPTIONS.pagename"))
    loader = decoded[decoded.index("var sources"):]
    assert ('["../_static/../mathjax/tex-mml-chtml.js?v=1&x=2", "../_static/searchtools.js", '
            '"../searchindex.js"]') in loader
    assert "vae-web-first-decode" in loader and 'addEventListener("load", load)' in loader
    assert "tex-mml-chtml.js?v=1&amp;x=2\"></script>" not in page   # not loaded by the head


def test_a_slider_page_fetches_its_first_decoder_before_the_stylesheets():
    """The first widget's preloads move from the body to the head, ahead of the stylesheets
    that would otherwise take the browser's connections first, with a modulepreload of the
    sliders' script; a second widget's stay where they are."""
    first = ('<link rel="preload" href="../models/a.json" as="fetch" crossorigin="anonymous">'
             '<link rel="preload" href="../models/a-preview.bin" as="fetch" crossorigin="anonymous">'
             '<div class="vae-web" data-config="../models/a.json"></div>'
             '<script type="module" async src="../sliders/latent_sliders.mjs"></script>')
    second = ('<link rel="preload" href="../models/b.json" as="fetch" crossorigin="anonymous">'
              '<div class="vae-web" data-config="../models/b.json"></div>')
    page = light_pages.lighten(PAGE.replace("{widget}", first + second), ICONS)
    head, body = page.split("</head>")
    stylesheet = head.index('<link href="../_static/styles/theme.css"')
    for early in ('<link rel="preload" href="../models/a.json" as="fetch" crossorigin="anonymous" '
                  'fetchpriority="high">',
                  '<link rel="preload" href="../models/a-preview.bin" as="fetch" '
                  'crossorigin="anonymous" fetchpriority="high">',
                  '<link rel="modulepreload" href="../sliders/latent_sliders.mjs" '
                  'fetchpriority="high">'):
        assert head.index(early) < stylesheet
    assert "a-preview.bin" not in body and "../models/b.json\" as=\"fetch\"" not in head
    assert '<link rel="preload" href="../models/b.json"' in body
    assert '<script type="module" async src="../sliders/latent_sliders.mjs">' in body
