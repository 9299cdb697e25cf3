"""Build the whole book as the README does (every notebook executed, warnings are errors) and
check the HTML a reader gets. Slow: a few minutes with warm checkpoints."""

from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

from book_files import NOTEBOOKS, REPOSITORY_URL, ROOT


class LinkParser(HTMLParser):
    def __init__(self):
        super().__init__()
        self.hrefs, self.images, self.scripts, self.alts = [], [], [], []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "a" and attrs.get("href"):
            self.hrefs.append(attrs["href"])
        if tag == "img" and attrs.get("src"):
            self.images.append(attrs["src"])
            self.alts.append((attrs["src"], attrs.get("alt") or ""))
        if tag == "script" and attrs.get("src"):
            self.scripts.append(attrs["src"])


def parse(page: Path) -> LinkParser:
    parser = LinkParser()
    parser.feed(page.read_text())
    return parser


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_every_notebook_page_links_to_itself_in_colab(html_dir, notebook):
    page = html_dir / "book" / f"{notebook.stem}.html"
    owner_repo = urlparse(REPOSITORY_URL).path.strip("/")
    expected = (f"https://colab.research.google.com/github/{owner_repo}/blob/colab/"
                f"{notebook.relative_to(ROOT).as_posix()}")       # the Colab edition's branch
    assert expected in parse(page).hrefs


def test_every_image_on_every_page_exists(html_dir):
    pages = list(html_dir.rglob("*.html"))
    checked = 0
    for page in pages:
        for src in parse(page).images:
            if src.startswith(("http:", "https:", "data:")):
                continue
            target = (page.parent / unquote(src.split("#")[0].split("?")[0])).resolve()
            assert target.exists(), f"{page.name} shows a missing image {src}"
            checked += 1
    assert checked >= 20, f"only {checked} images found: did the notebooks' figures render?"


def test_pages_show_no_errors_and_the_playground_explains_its_static_figures(html_dir):
    for page in (html_dir / "book").glob("*.html"):
        text = page.read_text()
        assert "Traceback (most recent call last)" not in text, page.name
    playground = (html_dir / "book" / "04_latent_playground.html").read_text()
    assert "no kernel runs" in playground


def test_math_is_typeset_by_mathjax_served_from_the_site_itself(html_dir):
    """Offline (a workshop room without internet) the formulas must still render."""
    page = html_dir / "book" / "03_vae.html"
    import re

    mathjax = []
    for src in parse(page).scripts:
        if src.startswith("data:"):    # a slider page loads MathJax after its first decode
            mathjax += re.findall(r'"([^"]*mathjax[^"]*)"', unquote(src), re.I)
        elif "mathjax" in src.lower():
            mathjax.append(src)
    assert mathjax, "the VAE chapter's formulas load no MathJax"
    for src in mathjax:
        assert not src.startswith(("http:", "https:", "//")), f"MathJax comes from {src}"
        assert (page.parent / unquote(src.split("?")[0])).resolve().is_file(), src
    fonts = list((html_dir / "mathjax" / "output" / "chtml" / "fonts" / "woff-v2").glob("*.woff"))
    assert len(fonts) > 10, "MathJax's fonts were not copied into the site"


def test_pages_load_no_script_from_another_host_and_show_no_cache_messages(html_dir):
    """Offline readers get the whole page; the cache's log lines stay in Jupyter and Colab."""
    for page in html_dir.rglob("*.html"):
        for src in parse(page).scripts:
            assert not src.startswith(("http:", "https:", "//")), f"{page.name} loads {src}"
    for page in (html_dir / "book").glob("*.html"):
        text = page.read_text()
        assert "Loaded mnist" not in text and "; saved " not in text, page.name


def test_every_figure_in_a_chapter_has_alt_text_that_describes_it(html_dir):
    """Screen readers get a sentence, not the image's file name (myst-nb's default)."""
    checked = 0
    for notebook in NOTEBOOKS:
        for src, alt in parse(html_dir / "book" / f"{notebook.stem}.html").alts:
            if "_images/" not in src:
                continue  # the theme's logo and icons
            name = Path(unquote(src)).name
            assert len(alt.split()) >= 4 and name not in alt and not alt.endswith(".png"), (
                f"{notebook.name}: the figure {name} has the alt text {alt!r}; give its cell "
                "metadata mystnb.image.alt a sentence that says what it shows")
            checked += 1
    assert checked >= 20, f"only {checked} chapter figures found"


def test_every_chapter_figure_has_a_numbered_caption_and_terms_link_to_the_glossary(html_dir):
    """Figures are numbered by chapter (Fig. 3.2), one caption per figure cell; the chapters'
    {term} links resolve to entries of the glossary page."""
    import re

    from book_files import read_notebook

    glossary = (html_dir / "book" / "glossary.html").read_text()
    for number, notebook in enumerate(NOTEBOOKS, start=1):
        page = (html_dir / "book" / f"{notebook.stem}.html").read_text()
        cells = sum("figure" in c.metadata.get("mystnb", {}) for c in read_notebook(notebook).cells)
        numbers = re.findall(r'<span class="caption-number">Fig\. (\d+)\.(\d+) </span>', page)
        assert [int(n) for n in dict(numbers)] == [number] * bool(numbers), numbers
        assert len(numbers) == cells and cells > 0, f"{notebook.name}: {len(numbers)} of {cells}"
        anchors = set(re.findall(r'href="glossary\.html#(term-[^"]+)"', page))
        assert anchors, f"{notebook.name} links no glossary term"
        missing = [a for a in anchors if f'id="{a}"' not in glossary]
        assert not missing, f"{notebook.name}: glossary anchors not found: {missing}"


def test_every_chapter_figure_links_to_its_full_size_image(html_dir):
    """_ext/figure_links.py: on a phone a tap opens the figure alone, where it can be zoomed."""
    import re

    for notebook in NOTEBOOKS:
        page = (html_dir / "book" / f"{notebook.stem}.html").read_text()
        figures = re.findall(r'<figure\b[^>]*id="fig-', page)
        linked = re.findall(r'<figure\b[^>]*>\s*<a class="reference internal image-reference" '
                            r'href="([^"]+)"><img\b[^>]*\bsrc="([^"]+)"', page)
        assert figures and len(linked) == len(figures), (notebook.name, len(linked), len(figures))
        assert all(href == src for href, src in linked)


def test_no_printed_output_line_is_wider_than_the_text_column(html_dir):
    """Lines over 80 characters are cut at the column's edge on a phone and on the website."""
    import json

    executed = html_dir.parent / "jupyter_execute" / "book"
    wide = []
    for notebook in NOTEBOOKS:
        cells = json.loads((executed / notebook.name).read_text())["cells"]
        for cell in cells:
            if "remove-output" in cell.get("metadata", {}).get("tags", []):
                continue  # not on the page
            for output in cell.get("outputs", []):
                text = output.get("text") or output.get("data", {}).get("text/plain", "")
                if "text/html" in output.get("data", {}) or "text/markdown" in output.get("data", {}):
                    continue  # rendered as HTML, which wraps
                text = "".join(text) if isinstance(text, list) else text
                wide += [f"{notebook.name}: {line[:60]}…" for line in text.splitlines()
                         if len(line) > 80]
    assert not wide, "output lines over 80 characters:\n" + "\n".join(wide)


def test_pages_embed_no_dead_widget_state(html_dir):
    """The ipywidgets outputs are hidden on the website, so their state is not embedded."""
    for page in html_dir.rglob("*.html"):
        assert "widget-state+json" not in page.read_text(), page.name


def test_slider_pages_get_their_script_and_small_models_from_the_site(html_dir):
    import json

    for chapter in ("03_vae", "04_latent_playground", "05_latent_attributes"):
        text = (html_dir / "book" / f"{chapter}.html").read_text()
        assert 'class="vae-web"' in text and "../sliders/latent_sliders.mjs" in text, chapter
        assert 'class="vae-web-loading"' in text, f"{chapter}: no loading state before the script"
    assert (html_dir / "sliders" / "latent_sliders.mjs").is_file()
    assert not list(html_dir.rglob("*.wasm")), "no WebAssembly runtime is needed any more"
    configs = [json.loads(p.read_text()) for p in (html_dir / "models").glob("*.json")
               if not p.name.endswith("-points.json")]
    decoders = [c["decoder"] for c in configs if c["kind"] == "sliders"]
    decoders += [panel["decoder"] for c in configs if c["kind"] == "plane" for panel in c["panels"]]
    assert len(decoders) == 4, decoders     # MNIST VAE, faces VAE, the two 2-D decoders
    for decoder in decoders:
        size = (html_dir / "models" / decoder["file"]).stat().st_size
        print(f"{decoder['file']}: {size / 1e3:.0f} kB")
        assert size <= 600_000, f"{decoder['file']} is {size:,} bytes"


def _chapter_figures(html_dir):
    """The PNG of every figure on the chapters' pages: (chapter, path)."""
    import re

    for notebook in NOTEBOOKS:
        page = (html_dir / "book" / f"{notebook.stem}.html").read_text()
        for src in re.findall(r'<img\b[^>]*\bsrc="(\.\./_images/[^"]+\.png)"', page):
            yield notebook.stem, (html_dir / "book" / unquote(src)).resolve()


def test_every_chapter_figure_has_text_a_phone_can_read(html_dir):
    """On a 390 px phone the text column is 342 px wide and a wider PNG is shrunk to it: every
    figure's smallest text (recorded in its PNG by vae_utils.viz.figure_png, with the resolution
    it was drawn at) must then be at least 9 CSS px high."""
    import json

    from PIL import Image

    from vae_utils import viz

    checked, small = 0, []
    for chapter, path in _chapter_figures(html_dir):
        image = Image.open(path)
        assert viz.AUDIT_KEY in image.info, f"{chapter}: {path.name} was not drawn by viz.figure_png"
        audit = json.loads(image.info[viz.AUDIT_KEY])
        checked += 1
        if audit["smallest_points"] is None:
            continue   # an image grid without text
        px = viz.phone_text_px(audit["smallest_points"], audit["dpi"], image.width)
        if px < 9.0:
            small.append(f"{chapter}: {path.name} ({image.width} px wide): {px:.1f} px")
    assert checked >= 40, f"only {checked} chapter figures found"
    assert not small, "figure text below 9 px on a phone:\n" + "\n".join(small)


def _verdict_tables(html_dir):
    """Every verdict table on the chapters' pages (vae_utils.viz.verdict_table): rows of
    (claim, verdict, difference [low, high], interval over)."""
    from html.parser import HTMLParser

    from vae_utils.viz import VERDICT_COLUMNS

    class Tables(HTMLParser):
        def __init__(self):
            super().__init__()
            self.tables, self.cell = [], None

        def handle_starttag(self, tag, attrs):
            if tag == "table" and "vae-table" in dict(attrs).get("class", ""):
                self.tables.append([])
            elif tag == "tr" and self.tables:
                self.tables[-1].append([])
            elif tag in ("td", "th") and self.tables:
                self.cell = ""

        def handle_endtag(self, tag):
            if tag in ("td", "th") and self.cell is not None:
                self.tables[-1][-1].append(self.cell.strip())
                self.cell = None

        def handle_data(self, data):
            if self.cell is not None:
                self.cell += data

    for notebook in NOTEBOOKS:
        parser = Tables()
        parser.feed((html_dir / "book" / f"{notebook.stem}.html").read_text())
        for table in parser.tables:
            rows = [r for r in table if r]
            if rows and tuple(rows[0]) == VERDICT_COLUMNS:
                yield notebook.stem, rows[1:]


def test_every_printed_verdict_is_the_one_its_interval_gives(html_dir):
    """A verdict says holds, does not hold or inconclusive exactly as its printed interval does
    (metrics.verdict), and the chapters that read verdicts print at least one table of them."""
    import re

    from vae_utils import metrics

    found = {}
    for chapter, rows in _verdict_tables(html_dir):
        for claim, verdict, difference, source in rows:
            low, high = (float(v.replace("−", "-")) for v in
                         re.search(r"\[(\S+), (\S+)\]$", difference).groups())
            expected = metrics.verdict(metrics.Interval(0.0, low, high, source))
            assert verdict == expected, f"{chapter}: {claim!r} printed {verdict!r}, its interval gives {expected!r}"
            found.setdefault(chapter, []).append((claim, verdict))
    assert {"05_latent_attributes", "07_vae_vs_gan"} <= set(found), found.keys()
    print({chapter: len(rows) for chapter, rows in found.items()})


def test_no_prose_states_a_verdict_that_only_the_numbers_may_state(html_dir):
    """After a chapter's first verdict table, its Markdown may explain the words (in italics:
    a claim *holds* when ...) but may not state an outcome: those sentences are printed by code
    from the verdicts (and re-read by the test above)."""
    import re

    from book_files import read_notebook

    for notebook in NOTEBOOKS:
        cells = read_notebook(notebook).cells
        first = next((i for i, c in enumerate(cells) if "verdict_table(" in "".join(c.source)), None)
        if first is None:
            continue
        for cell in cells[first:]:
            if cell.cell_type != "markdown":
                continue
            text = re.sub(r"\*(holds|does not hold|inconclusive)\*", "", "".join(cell.source))
            stated = re.findall(r"\b(holds|does not hold|inconclusive)\b|\*\*[^*]+, (?:yes|no)\b", text)
            assert not stated, f"{notebook.name}: prose states a verdict {stated}: {text[:200]}"


def test_pages_have_unique_ids_a_description_and_a_favicon(html_dir):
    """_ext/page_polish.py numbers sphinx-exercise's repeated ids and adds a meta description;
    _config.yml's favicon is served (a missing one is a 404 on every page)."""
    import re
    from collections import Counter

    for page in [html_dir / f"{name}.html" for name in (
            "book/intro", "book/03_vae", "book/07_vae_vs_gan", "book/glossary")]:
        text = page.read_text()
        repeated = [i for i, n in Counter(re.findall(r'\bid="([^"]+)"', text)).items() if n > 1]
        assert not repeated, f"{page.name}: repeated ids {repeated[:5]}"
        description = re.search(r'<meta name="description" content="([^"]+)"', text)
        assert description and len(description.group(1).split()) >= 5, page.name
        favicon = re.search(r'<link rel="icon" href="([^"]+)"', text)
        assert favicon and (page.parent / favicon.group(1)).resolve().is_file(), page.name


def test_pages_draw_their_icons_inline_and_a_slider_page_loads_mathjax_after_its_decoder(html_dir):
    """_ext/light_pages.py: no page loads fontawesome.js (its icons are inline SVG), figures are
    lazy, and a page with an in-browser decoder loads MathJax only after the first decode (the
    other pages load it as the theme does)."""
    import re
    from urllib.parse import unquote

    for name in ("book/intro", "book/03_vae", "book/04_latent_playground", "book/06_gan"):
        text = unquote((html_dir / f"{name}.html").read_text())   # the deferred scripts are data: URLs
        assert "fontawesome.js" not in text and "<i class=\"fa" not in text, name
        assert 'class="svg-inline--fa' in text, f"{name}: no inline icon"
        assert not re.search(r"<img (?![^>]*loading=\"lazy\")", text), f"{name}: an eager image"
        widget = '<div class="vae-web" data-config=' in text
        deferred = 'addEventListener("vae-web-first-decode", load)' in text
        eager = re.search(r'<script defer="defer" src="[^"]*tex-mml-chtml\.js', text)
        assert (deferred, bool(eager)) == (widget, not widget), name


def test_the_sidebar_is_a_landmark_and_the_bibliography_a_list_of_items(html_dir):
    """_ext/page_polish.py: the audits' "region" and "aria-deprecated-role" findings."""
    intro = (html_dir / "book" / "intro.html").read_text()
    assert 'id="pst-primary-sidebar" class="bd-sidebar-primary bd-sidebar" role="complementary"' in intro
    bibliography = (html_dir / "book" / "further_reading.html").read_text()
    assert "doc-biblioentry" not in bibliography and bibliography.count('role="listitem"') >= 10
