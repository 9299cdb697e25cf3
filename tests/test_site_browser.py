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


def _browser_or_skip():
    if not Path(CHROMIUM).exists():
        message = (f"browser test skipped: no Chromium at {CHROMIUM} "
                   "(install it with: apt-get install -y chromium)")
        if os.environ.get("CI") == "true":
            pytest.fail(message.replace("skipped", "cannot run in CI"))
        pytest.skip(message)
    sync_playwright = pytest.importorskip("playwright.sync_api").sync_playwright
    return sync_playwright


class _Quiet(http.server.SimpleHTTPRequestHandler):
    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map,
                      ".mjs": "text/javascript", ".wasm": "application/wasm",
                      ".json": "application/json"}

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
        self.errors, self.foreign, self.bytes = [], [], 0
        host = urlparse(url).netloc
        self.page.on("console", lambda m: m.type == "error" and "Failed to load resource"
                     not in m.text and self.errors.append(m.text))   # HTTP errors: see _count
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("request", lambda r: urlparse(r.url).scheme in ("http", "https")
                     and urlparse(r.url).netloc != host and self.foreign.append(r.url))
        self.page.on("response", self._count)
        self.page.goto(url, wait_until="networkidle")

    def _count(self, response):
        self.bytes += int(response.headers.get("content-length", 0) or 0)
        if response.status >= 400:
            self.errors.append(f"HTTP {response.status} for {response.url}")

    def close(self):
        self.context.close()


PAGES = [f"{name}.html" for name in toc_files()]


def _sticking_out(page) -> list:
    """With every exercise solution open: whether the page scrolls sideways, and which formulas
    poke out of the text column (a code cell scrolls inside its own box; a formula does not)."""
    page.evaluate("""() => document.querySelectorAll('.solution.dropdown .admonition-title')
                              .forEach(title => title.click())""")
    page.wait_for_timeout(300)
    return page.evaluate("""() => {
        const column = document.querySelector('article').getBoundingClientRect();
        const out = [...document.querySelectorAll('mjx-container')]
            .filter(m => m.getBoundingClientRect().right > column.right + 1)
            .map(m => m.textContent.slice(0, 40));
        const width = document.documentElement.scrollWidth;
        return width > window.innerWidth ? [`page ${width} px`, ...out] : out;
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
        print(f"{page_path} ({viewport}): {visit.bytes / 1e6:.2f} MB transferred, "
              f"math {'typeset' if has_math else 'none'}")
    finally:
        visit.close()


def _canvas_pixels(handle) -> torch.Tensor:
    """The RGB pixels of a canvas element, (3, H, W) in [0, 1]."""
    flat = handle.evaluate("""c => Array.from(
        c.getContext('2d').getImageData(0, 0, c.width, c.height).data)""")
    width, height = handle.evaluate("c => [c.width, c.height]")
    rgba = torch.tensor(flat, dtype=torch.float32).reshape(height, width, 4) / 255
    return rgba[..., :3].permute(2, 0, 1)


def _expected(model, code: list[float]) -> torch.Tensor:
    """What the exported file computes for one code: (3, H, W), grey repeated."""
    from vae_utils import web

    with torch.no_grad():
        z = torch.tensor([code], dtype=torch.float32)
        image = torch.sigmoid(web.half_rounded(model).decode(z))[0]
    return image.expand(3, -1, -1)


def _decode_times(page, widget: str, n: int = 40) -> list[float]:
    return page.evaluate(f"""async () => {{
        const w = {widget}, times = w.decoder.times, before = times.length;
        for (let i = 0; i < {n}; i++) {{
            await w.setCode(w.code.map(() => 2 * Math.random() - 1));
        }}
        return times.slice(before);
    }}""")


def _onnx_decode(html_dir: Path, model_file: str, code: list[float]) -> torch.Tensor:
    """The served ONNX file run by onnxruntime in Python: (3, H, W)."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(html_dir / "models" / model_file))
    image = session.run(None, {"z": torch.tensor([code], dtype=torch.float32).numpy()})[0][0]
    return torch.from_numpy(image).expand(3, -1, -1)


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
        model_file = page.evaluate(f"{widget}.config.model")
        error = (after - _onnx_decode(html_dir, model_file, code)).abs().max().item()
        print(f"{page_path}: canvas vs the served ONNX file in onnxruntime: "
              f"{error * 255:.2f}/255")
        assert error <= 1 / 255 + 1e-6
        if SLIDER_PAGES[page_path]:
            model = zoo.trained(SLIDER_PAGES[page_path], progress=False).model.cpu()
            error = (after - _expected(model, code)).abs().max().item()
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
            error = (after - _expected(model, code)).abs().max().item()
            print(f"plane {index}: canvas vs PyTorch {error * 255:.2f}/255 at z = {code}")
            assert error <= 1 / 255 + 1e-6
        assert not visit.errors, visit.errors
    finally:
        visit.close()


DIAGRAM_PAGES = ["book/02_autoencoders.html", "book/03_vae.html", "book/06_gan.html"]
SMALLEST_LABEL_PX = 10.0   # text drawn smaller than this on a 390 px phone is hard to read


@pytest.mark.parametrize("page_path", DIAGRAM_PAGES)
def test_architecture_diagrams_are_legible_on_a_phone(browser, site, page_path):
    """The diagram's smallest text, as drawn on the phone's screen: its size in the PNG
    (diagrams.FONT_POINTS at diagrams.DPI) times the scale the browser applies to the image."""
    from vae_utils import diagrams

    visit = Visit(browser, f"{site}/{page_path}", "phone")
    try:
        image = visit.page.locator("figure img[alt^='Diagram of']")
        assert image.count() == 1, f"{page_path}: {image.count()} architecture diagrams"
        shown, natural = image.first.evaluate("i => [i.clientWidth, i.naturalWidth]")
        label_px = diagrams.FONT_POINTS * diagrams.DPI / 72 * shown / natural
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
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        solution.screenshot(path=str(SCREENSHOTS / "03_vae-phone-solution-open.png"))
        assert not visit.errors, visit.errors
    finally:
        visit.close()


def test_a_tap_on_a_figure_opens_it_at_full_size_on_a_phone(browser, site):
    visit = Visit(browser, f"{site}/book/03_vae.html", "phone")
    page = visit.page
    try:
        image = page.locator("figure a.image-reference img").nth(2)
        image.scroll_into_view_if_needed()
        shown, natural = image.evaluate("i => [i.clientWidth, i.naturalWidth]")
        image.click()
        page.wait_for_url("**/_images/*.png", timeout=5_000)
        full = page.evaluate("document.images[0].naturalWidth")
        print(f"figure shown at {shown} px on the page, opened at {full} px")
        assert full == natural and full > shown
    finally:
        visit.close()
