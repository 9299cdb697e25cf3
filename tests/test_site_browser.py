"""The built website as a reader gets it, in a real browser: Debian's Chromium driven by
Playwright, the site served from a local HTTP server.

Every page, at 1280 px (desktop) and 390 px (phone): no console errors, no request to another
host, formulas typeset by MathJax, the phone menu opens; screenshots of each under
_build/screenshots/ for a person to look at. On the slider pages: moving a slider (or pointing
at a latent plane) redraws the image, the canvas pixels match PyTorch's decode of the same code
within 1/255, and one decode takes at most 16 ms (median). On a phone: nothing scrolls the page
sideways and no formula sticks out of the column (exercise solutions open), a tap on a figure
opens it at full size, the architecture diagrams' labels are drawn at 10 px or more, and
exercise solutions stay hidden until opened. Skipped, saying so, where no Chromium is
installed; under CI=true a missing Chromium fails instead (.ci/run installs it).
"""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import statistics
import threading
from pathlib import Path
from urllib.parse import urlparse

import pytest
import torch

from book_files import ROOT, toc_files

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SCREENSHOTS = ROOT / "_build" / "screenshots"
VIEWPORTS = {"desktop": dict(width=1280, height=800), "phone": dict(width=390, height=844)}
DECODE_BUDGET_MS = 16.0
READY_BUDGET_MS = 3000.0   # the goal is 1 s; measured and printed below, this guards regressions
PAGE_BUDGET_BYTES = 2_000_000   # a slider page, transferred with gzip
FIRST_DECODE_GOAL_MS = 2000.0     # on a throttled phone (slow 4G, CPU 4x slower): the preview
FIRST_DECODE_BUDGET_MS = 3000.0   # asserted: one load varies by up to ~30% with the machine's load
EXACT_DECODER_BUDGET_MS = 12000.0  # ... and the exact decoders drawing: chapter 3's two, 790 kB,
# take ~4 s alone and share the connection with MathJax, which loads after the first image


def _browser_or_skip():
    if not Path(CHROMIUM).exists():
        message = (f"browser test skipped: no Chromium at {CHROMIUM} "
                   "(install it with: apt-get install -y chromium)")
        if os.environ.get("CI") == "true":
            pytest.fail(message.replace("skipped", "cannot run in CI"))
        pytest.skip(message)
    sync_playwright = pytest.importorskip("playwright.sync_api").sync_playwright
    return sync_playwright


COMPRESSED = (".html", ".css", ".js", ".mjs", ".json", ".svg", ".bin", ".woff", ".txt")


class _Quiet(http.server.SimpleHTTPRequestHandler):
    """The site as a static host sends it: gzip-compressed where the browser accepts it (GitHub
    Pages compresses on the fly), so that transferred bytes and load times are a reader's."""

    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map,
                      ".mjs": "text/javascript", ".json": "application/json",
                      ".bin": "application/octet-stream"}

    def send_head(self):
        path = Path(self.translate_path(self.path))
        if (path.suffix in COMPRESSED and path.is_file()
                and "gzip" in self.headers.get("Accept-Encoding", "")):
            import gzip

            body = gzip.compress(path.read_bytes(), compresslevel=6)
            self.send_response(200)
            self.send_header("Content-Type", self.guess_type(str(path)))
            self.send_header("Content-Encoding", "gzip")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            import io

            return io.BytesIO(body)
        return super().send_head()

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def site(html_dir):
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_Quiet, directory=str(html_dir)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture(scope="module")
def browser(site):
    sync_playwright = _browser_or_skip()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM)
        yield browser
        browser.close()


class Visit:
    """One page load: console errors, foreign requests and bytes transferred."""

    def __init__(self, browser, url: str, viewport: str):
        self.context = browser.new_context(viewport=VIEWPORTS[viewport])
        self.page = self.context.new_page()
        self.errors, self.foreign, self.bytes, self.responses = [], [], 0, []
        host = urlparse(url).netloc
        self.page.on("console", lambda m: m.type == "error" and "Failed to load resource"
                     not in m.text and self.errors.append(m.text))   # HTTP errors: see _count
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("request", lambda r: urlparse(r.url).scheme in ("http", "https")
                     and urlparse(r.url).netloc != host and self.foreign.append(r.url))
        self.page.on("response", self._count)
        self.page.goto(url, wait_until="networkidle")

    def _count(self, response):
        self.bytes += int(response.headers.get("content-length", 0) or 0)   # as transferred (gzip)
        self.responses.append(response)
        if response.status >= 400:
            self.errors.append(f"HTTP {response.status} for {response.url}")

    def raw_bytes(self) -> int:
        """The bytes the page's files hold, uncompressed."""
        total = 0
        for response in self.responses:
            try:
                total += len(response.body())
            except Exception:   # a redirect or an aborted request has no body
                pass
        return total

    def close(self):
        self.context.close()


PAGES = [f"{name}.html" for name in toc_files()]


def _sticking_out(page) -> list:
    """With every exercise solution open: whether the page scrolls sideways, which formulas
    poke out of the text column or are cut inside their box, and which printed outputs (text,
    tables, images) are wider than their block."""
    page.evaluate("""() => document.querySelectorAll('.solution.dropdown .admonition-title')
                              .forEach(title => title.click())""")
    page.wait_for_timeout(300)
    return page.evaluate("""() => {
        const column = document.querySelector('article').getBoundingClientRect();
        const wide = e => e.getBoundingClientRect().right > column.right + 1
            || e.scrollWidth > e.clientWidth + 1;
        const shown = e => e.offsetParent !== null;
        // An inline formula's glyphs may overhang its box by a pixel (an italic z): only its
        // place in the column counts. A display formula must fit inside its own box as well.
        const formulaWide = m => m.getAttribute('display') === 'true' ? wide(m)
            : m.getBoundingClientRect().right > column.right + 1;
        const out = [...document.querySelectorAll('mjx-container')].filter(shown)
            .filter(formulaWide).map(m => 'formula ' + m.textContent.slice(0, 40));
        const outputs = [...document.querySelectorAll(
                'div.cell_output pre, div.cell_output table, div.cell_output img, div.cell_output')]
            .filter(shown).filter(wide).map(e => 'output ' + e.textContent.trim().slice(0, 40));
        const width = document.documentElement.scrollWidth;
        return (width > window.innerWidth ? [`page ${width} px`] : []).concat(out, outputs);
    }""")


@pytest.mark.parametrize("viewport", VIEWPORTS)
@pytest.mark.parametrize("page_path", PAGES)
def test_every_page_loads_cleanly_typesets_math_and_navigates(browser, site, page_path, viewport):
    visit = Visit(browser, f"{site}/{page_path}", viewport)
    page = visit.page
    try:
        has_math = page.locator(".math").count() > 0
        if has_math:
            page.wait_for_selector("mjx-container", timeout=15_000)
        if page.locator(".vae-web").count():
            page.wait_for_function("window.vaeWeb && window.vaeWeb.ready", timeout=30_000)
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        stem = Path(page_path).stem
        page.screenshot(path=str(SCREENSHOTS / f"{stem}-{viewport}.png"), full_page=True)
        if viewport == "phone":
            wide = _sticking_out(page)
            assert not wide, f"{page_path}: wider than a phone's text column: {wide}"
            page.locator(".primary-toggle:visible").first.click()
            page.wait_for_function(
                "document.querySelector('#pst-primary-sidebar-modal')?.open === true",
                timeout=5_000)
            links = page.locator("#pst-primary-sidebar-modal a.reference:visible").count()
            assert links >= 7, f"{page_path}: the phone menu shows {links} chapter links"
            page.screenshot(path=str(SCREENSHOTS / f"{stem}-phone-menu.png"))
        assert not visit.errors, f"{page_path} ({viewport}): console errors {visit.errors}"
        assert not visit.foreign, f"{page_path} ({viewport}): requests to {visit.foreign}"
        print(f"{page_path} ({viewport}): {visit.bytes / 1e6:.2f} MB transferred (gzip), "
              f"{visit.raw_bytes() / 1e6:.2f} MB raw, math {'typeset' if has_math else 'none'}")
        if page.locator(".vae-web").count():
            assert visit.bytes <= PAGE_BUDGET_BYTES, f"{page_path}: {visit.bytes:,} bytes"
    finally:
        visit.close()


def _canvas_pixels(handle) -> torch.Tensor:
    """The RGB pixels of a canvas element, (3, H, W) in [0, 1]."""
    flat = handle.evaluate("""c => Array.from(
        c.getContext('2d').getImageData(0, 0, c.width, c.height).data)""")
    width, height = handle.evaluate("c => [c.width, c.height]")
    rgba = torch.tensor(flat, dtype=torch.float32).reshape(height, width, 4) / 255
    return rgba[..., :3].permute(2, 0, 1)


def _expected(model, code: list[float], rank: int | None) -> torch.Tensor:
    """What PyTorch computes for one code with the weights the page got (the decoder reduced to
    ``rank`` as exported, int8 weights times their scales): (3, H, W), grey repeated."""
    from vae_utils import web

    reduced = web.low_rank(model, rank) if rank else model
    with torch.no_grad():
        z = torch.tensor([code], dtype=torch.float32)
        image = torch.sigmoid(web.dequantized(reduced).decode(z))[0]
    return image.expand(3, -1, -1)


def _decode_times(page, widget: str, n: int = 40) -> list[float]:
    return page.evaluate(f"""async () => {{
        const w = {widget}, times = w.decoder.times, before = times.length;
        for (let i = 0; i < {n}; i++) {{
            await w.setCode(w.code.map(() => 2 * Math.random() - 1));
        }}
        return times.slice(before);
    }}""")


def _served(html_dir: Path, decoder: dict, code: list[float]) -> torch.Tensor:
    """The served decoder files read back in Python, as the page's script reads them: (3, H, W)."""
    from vae_utils import web

    image = web.run_exported(html_dir / "models", decoder, torch.tensor([code]))[0].float()
    return image.expand(3, -1, -1)


SLIDER_PAGES = {"book/04_latent_playground.html": "mnist-vae",
                "book/05_latent_attributes.html": None}   # the faces model chosen by MIG


@pytest.mark.parametrize("page_path", SLIDER_PAGES)
def test_sliders_run_the_books_decoder_in_the_browser(browser, site, html_dir, page_path):
    from vae_utils import zoo

    visit = Visit(browser, f"{site}/{page_path}", "desktop")
    page = visit.page
    try:
        page.wait_for_function("window.vaeWeb && window.vaeWeb.ready", timeout=30_000)
        ready_ms = page.evaluate("window.vaeWeb.readyAt")
        widget = "window.vaeWeb.widgets[0]"
        canvas = page.locator(".vae-web-image").first.element_handle()
        before = _canvas_pixels(canvas)
        slider = page.locator(".vae-web-sliders input[type=range]").nth(0)
        slider.scroll_into_view_if_needed()
        slider.focus()
        page.keyboard.press("End")             # the first slider to its maximum, as a reader would
        page.evaluate(f"{widget}.settled()")
        code = page.evaluate(f"{widget}.code")
        top = page.evaluate(f"{widget}.config.range")
        assert code[0] == top and all(v == 0 for v in code[1:]), code
        after = _canvas_pixels(canvas)
        assert (after - before).abs().max() > 0.05, "moving a slider did not change the image"
        decoder = page.evaluate(f"{widget}.config.decoder")
        model_file = decoder["file"]
        error = (after - _served(html_dir, decoder, code)).abs().max().item()
        print(f"{page_path}: canvas vs the served files read in Python: {error * 255:.2f}/255")
        assert error <= 1 / 255 + 1e-6
        if SLIDER_PAGES[page_path]:
            model = zoo.trained(SLIDER_PAGES[page_path], progress=False).model.cpu()
            error = (after - _expected(model, code, decoder["rank"])).abs().max().item()
            print(f"{page_path}: canvas vs PyTorch: {error * 255:.2f}/255")
            assert error <= 1 / 255 + 1e-6
        times = _decode_times(page, widget)
        median = statistics.median(times)
        print(f"{page_path}: one decode in the browser ({model_file}): median {median:.2f} ms, "
              f"max {max(times):.2f} ms over {len(times)}; interactive {ready_ms:.0f} ms after "
              "navigation started")
        assert median <= DECODE_BUDGET_MS
        assert ready_ms <= READY_BUDGET_MS
        assert not visit.errors, visit.errors
    finally:
        visit.close()


def test_the_latent_planes_decode_where_the_reader_points(browser, site):
    from vae_utils import zoo

    visit = Visit(browser, f"{site}/book/03_vae.html", "desktop")
    page = visit.page
    try:
        page.wait_for_function("window.vaeWeb && window.vaeWeb.ready", timeout=30_000)
        models = [zoo.trained(name, progress=False).model.cpu()
                  for name in ("mnist-ae-2d", "mnist-vae-2d")]
        for index, model in enumerate(models):
            scatter = page.locator(".vae-web-scatter").nth(index)
            scatter.scroll_into_view_if_needed()
            box = scatter.bounding_box()
            image = page.locator(".vae-web-plane .vae-web-image").nth(index).element_handle()
            before = _canvas_pixels(image)
            page.mouse.move(box["x"] + 0.8 * box["width"], box["y"] + 0.3 * box["height"])
            panel = f"window.vaeWeb.widgets[0].panels[{index}]"
            page.evaluate(f"{panel}.settled()")
            code = page.evaluate(f"{panel}.code")
            assert code[0] > 0 and code[1] > 0, code
            after = _canvas_pixels(image)
            assert (after - before).abs().max() > 0.1, "pointing did not change the image"
            rank = page.evaluate(f"window.vaeWeb.widgets[0].config.panels[{index}].decoder.rank")
            error = (after - _expected(model, code, rank)).abs().max().item()
            print(f"plane {index}: canvas vs PyTorch {error * 255:.2f}/255 at z = {code}")
            assert error <= 1 / 255 + 1e-6
        assert not visit.errors, visit.errors
    finally:
        visit.close()


DIAGRAM_PAGES = ["book/02_autoencoders.html", "book/03_vae.html", "book/06_gan.html"]
SMALLEST_LABEL_PX = 10.0   # text drawn smaller than this on a 390 px phone is hard to read


def _loaded(image):
    """A figure's <img>, scrolled into view and loaded (figures load lazily, as they come into
    view: _ext/light_pages.py)."""
    image.scroll_into_view_if_needed()
    image.page.wait_for_function("i => i.complete && i.naturalWidth > 0", arg=image.element_handle(),
                                 timeout=10_000)
    return image


@pytest.mark.parametrize("page_path", DIAGRAM_PAGES)
def test_architecture_diagrams_are_legible_on_a_phone(browser, site, html_dir, page_path):
    """The diagram's smallest text, as drawn on the phone's screen: its size in the PNG (the
    smallest points and the resolution that vae_utils.viz.figure_png recorded in the file)
    times the scale the browser applies to the image."""
    import json

    from PIL import Image

    from vae_utils import viz

    visit = Visit(browser, f"{site}/{page_path}", "phone")
    try:
        image = visit.page.locator("figure img[alt^='Diagram of']")
        assert image.count() == 1, f"{page_path}: {image.count()} architecture diagrams"
        shown, natural, src = _loaded(image.first).evaluate(
            "i => [i.clientWidth, i.naturalWidth, new URL(i.currentSrc).pathname]")
        audit = json.loads(Image.open(html_dir / src.lstrip("/")).info[viz.AUDIT_KEY])
        label_px = audit["smallest_points"] * audit["dpi"] / 72 * shown / natural
        caption = visit.page.locator("figure:has(img[alt^='Diagram of']) figcaption").inner_text()
        print(f"{page_path} (phone): diagram {natural} px drawn at {shown} px, labels "
              f"{label_px:.1f} px; caption {caption[:40]!r}")
        assert caption.startswith("Fig. "), caption
        assert label_px >= SMALLEST_LABEL_PX
        assert not visit.errors, visit.errors
    finally:
        visit.close()


def test_exercise_solutions_stay_hidden_until_a_phone_reader_opens_them(browser, site):
    visit = Visit(browser, f"{site}/book/03_vae.html", "phone")
    page = visit.page
    try:
        exercises = page.locator(".exercise")
        solutions = page.locator(".solution.dropdown")
        assert exercises.count() >= 3 and solutions.count() == exercises.count()
        solution = solutions.first
        body = solution.locator("section, .cell").first
        solution.scroll_into_view_if_needed()
        assert not body.is_visible(), "a solution is visible before the reader opens it"
        solution.locator(".admonition-title").first.click()
        body.wait_for(state="visible", timeout=5_000)
        box = solution.bounding_box()
        assert box["width"] <= VIEWPORTS["phone"]["width"], box
        link = solution.locator(".admonition-title a").first
        if link.count():
            link.click()                 # the link to the exercise leaves the solution open
            page.wait_for_timeout(300)
            assert body.is_visible(), "following the exercise link closed the solution"
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        solution.screenshot(path=str(SCREENSHOTS / "03_vae-phone-solution-open.png"))
        assert not visit.errors, visit.errors
    finally:
        visit.close()


def test_a_tap_on_a_figure_opens_it_at_full_size_on_a_phone(browser, site):
    visit = Visit(browser, f"{site}/book/03_vae.html", "phone")
    page = visit.page
    try:
        image = _loaded(page.locator("figure a.image-reference img").nth(2))
        shown, natural = image.evaluate("i => [i.clientWidth, i.naturalWidth]")
        image.click()
        page.wait_for_url("**/_images/*.png", timeout=5_000)
        full = page.evaluate("document.images[0].naturalWidth")
        print(f"figure shown at {shown} px on the page, opened at {full} px")
        assert full == natural and full > shown
    finally:
        visit.close()


def _phone(browser, **extra):
    return browser.new_context(viewport=VIEWPORTS["phone"], device_scale_factor=3, is_mobile=True,
                               has_touch=True, **extra)


def _throttled_load(browser, url: str) -> tuple[float, float, int | None]:
    """One load on slow 4G (150 ms round trips, 1.6 Mbit/s down) with a CPU 4x slower: ms from
    the start of navigation to the first decoded image on screen (the frame after the decode,
    which waits for the page's stylesheets) and to the exact decoder drawing, and the preview's
    rank (None without one). The loading message must show from the first paint."""
    context = _phone(browser)
    page = context.new_page()
    cdp = context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send("Network.emulateNetworkConditions", {"offline": False, "latency": 150,
                                                  "downloadThroughput": 1_600_000 / 8,
                                                  "uploadThroughput": 750_000 / 8})
    cdp.send("Emulation.setCPUThrottlingRate", {"rate": 4})
    try:
        page.goto(url, wait_until="commit")
        page.wait_for_selector(".vae-web-loading", timeout=30_000)      # shown from first paint
        page.wait_for_function("window.vaeWeb && window.vaeWeb.firstShownAt", timeout=60_000)
        first = page.evaluate("window.vaeWeb.firstShownAt")
        preview = page.evaluate("((c) => (c.preview ?? c.panels?.[0].preview)?.rank ?? null)"
                                "(window.vaeWeb.widgets[0].config)")
        page.wait_for_function("window.vaeWeb.ready", timeout=60_000)
        return first, page.evaluate("window.vaeWeb.readyAt"), preview
    finally:
        context.close()


DECODER_PAGES = ["book/03_vae.html", "book/04_latent_playground.html",
                 "book/05_latent_attributes.html"]


@pytest.mark.parametrize("page_path", DECODER_PAGES)
def test_a_slider_page_decodes_its_first_image_quickly_on_a_throttled_phone(browser, site,
                                                                           page_path):
    """The median of three throttled loads of each page with in-browser decoders (one load
    varies by ~0.3 s here)."""
    loads = [_throttled_load(browser, f"{site}/{page_path}") for _ in range(3)]
    first = statistics.median(load[0] for load in loads)
    exact = statistics.median(load[1] for load in loads)
    preview = loads[0][2]
    print(f"{page_path} on a throttled phone, median of 3 loads: first decoded image on screen "
          f"{first:.0f} ms after "
          f"navigation started ({'a rank-%d preview' % preview if preview else 'the exact decoder'}"
          f"; each {', '.join(f'{load[0]:.0f}' for load in loads)}); the exact decoder drawing "
          f"{exact:.0f} ms after; the {FIRST_DECODE_GOAL_MS / 1e3:.0f} s goal "
          f"{'met' if first <= FIRST_DECODE_GOAL_MS else 'NOT met'}")
    assert first <= FIRST_DECODE_BUDGET_MS
    assert exact <= EXACT_DECODER_BUDGET_MS


def _swipe(cdp, x: float, y: float, dx: float, dy: float, steps: int = 12) -> None:
    cdp.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [{"x": x, "y": y}]})
    for step in range(1, steps + 1):
        cdp.send("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": [
            {"x": x + dx * step / steps, "y": y + dy * step / steps}]})
    cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})


def test_sliders_are_finger_sized_and_a_scroll_never_moves_them(browser, site):
    context = _phone(browser)
    page = context.new_page()
    try:
        page.goto(f"{site}/book/04_latent_playground.html", wait_until="networkidle")
        page.wait_for_function("window.vaeWeb && window.vaeWeb.ready", timeout=30_000)
        slider = page.locator(".vae-web-sliders input[type=range]").nth(4)
        slider.scroll_into_view_if_needed()
        page.evaluate("window.scrollBy(0, -200)")
        box = slider.bounding_box()
        assert box["height"] >= 44, f"a slider is {box['height']:.0f} px high"
        assert slider.get_attribute("aria-valuetext").endswith("= 0.00")
        cdp = context.new_cdp_session(page)
        x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
        value, scrolled = slider.input_value(), page.evaluate("window.scrollY")
        _swipe(cdp, x, y, dx=25, dy=-300)                 # mostly vertical: a scroll
        page.wait_for_timeout(500)
        assert slider.input_value() == value, "a vertical swipe moved the slider"
        assert page.evaluate("window.scrollY") > scrolled, "a vertical swipe did not scroll"
        slider.scroll_into_view_if_needed()
        box = slider.bounding_box()
        scrolled = page.evaluate("window.scrollY")
        _swipe(cdp, box["x"] + box["width"] / 2, box["y"] + box["height"] / 2,
               dx=box["width"] / 3, dy=0)               # sideways on the slider: a drag
        page.wait_for_timeout(300)
        assert float(slider.input_value()) > 0, "a drag along the slider did not move it"
        assert abs(page.evaluate("window.scrollY") - scrolled) < 2, "a drag scrolled the page"
    finally:
        context.close()


def test_the_latent_planes_work_from_the_keyboard_and_announce_each_decode(browser, site):
    visit = Visit(browser, f"{site}/book/03_vae.html", "desktop")
    page = visit.page
    try:
        page.wait_for_function("window.vaeWeb && window.vaeWeb.ready", timeout=30_000)
        scatter = page.locator(".vae-web-scatter").first
        scatter.focus()
        before = page.evaluate("window.vaeWeb.widgets[0].panels[0].code.slice()")
        for _ in range(4):
            page.keyboard.press("ArrowRight")
        page.keyboard.press("ArrowUp")
        after = page.evaluate("window.vaeWeb.widgets[0].panels[0].code.slice()")
        assert after[0] > before[0] and after[1] > before[1], (before, after)
        status = page.locator(".vae-web-status").first
        assert status.get_attribute("aria-live") == "polite" and "decoded z = (" in status.inner_text()
        assert not visit.errors, visit.errors
    finally:
        visit.close()


AXE = ROOT / ".cache" / "npm-axe" / "node_modules" / "axe-core" / "axe.min.js"


@pytest.mark.parametrize("viewport", VIEWPORTS)
@pytest.mark.parametrize("page_path", PAGES)
def test_every_page_passes_an_accessibility_audit(browser, site, page_path, viewport):
    """axe-core (from npm, injected into the page): no violation of the WCAG 2 A and AA rules."""
    if not AXE.is_file():
        pytest.fail(f"{AXE} is missing: `make test` installs axe-core with npm")
    visit = Visit(browser, f"{site}/{page_path}", viewport)
    page = visit.page
    try:
        if page.locator(".vae-web").count():
            page.wait_for_function("window.vaeWeb && window.vaeWeb.ready", timeout=30_000)
        page.add_script_tag(path=str(AXE))
        result = page.evaluate("""async () => (await axe.run(document, {runOnly: {type: 'tag',
            values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice']}}))
            .violations.map(v => `${v.id} (${v.impact}): ${v.nodes.length} x ` +
                            v.nodes.slice(0, 2).map(n => n.target.join(' ')).join(' | '))""")
        print(f"{page_path} ({viewport}): {len(result)} axe violations")
        assert not result, f"{page_path} ({viewport}): " + "; ".join(result)
    finally:
        visit.close()


LIGHTHOUSE = ROOT / ".cache" / "npm-lighthouse" / "node_modules" / ".bin" / "lighthouse"


@pytest.mark.parametrize("page_path", PAGES)
def test_every_page_scores_full_marks_for_accessibility_on_a_phone(browser, site, page_path, tmp_path):
    """Lighthouse (from npm, mobile emulation, run against the local server with Debian's
    Chromium): accessibility 100 and best practices at least 95."""
    import json
    import subprocess

    if not LIGHTHOUSE.is_file():
        pytest.fail(f"{LIGHTHOUSE} is missing: `make test` installs Lighthouse with npm")
    report = tmp_path / "report.json"
    flags = ("--headless=new --no-sandbox --disable-gpu --no-first-run "
             "--disable-background-networking --disable-component-update --disable-sync")
    result = subprocess.run(
        [str(LIGHTHOUSE), f"{site}/{page_path}", "--quiet", "--output=json",
         f"--output-path={report}", "--only-categories=accessibility,best-practices",
         f"--chrome-flags={flags}", "--max-wait-for-load=30000"],
        capture_output=True, text=True, timeout=240, env={**os.environ, "CHROME_PATH": CHROMIUM})
    assert result.returncode == 0, result.stderr[-2000:]
    categories = json.loads(report.read_text())["categories"]
    scores = {name: round(100 * c["score"]) for name, c in categories.items()}
    audits = json.loads(report.read_text())["audits"]
    failing = [a for a, v in audits.items() if v.get("score") not in (None, 1)
               and v.get("scoreDisplayMode") in ("binary", "numeric")]
    print(f"{page_path}: Lighthouse (mobile) {scores}; below full score: {failing}")
    assert scores["accessibility"] == 100 and scores["best-practices"] >= 95, (scores, failing)
