"""Sphinx extension: pages that load light on a phone.

- **Icons without fontawesome.js.** The theme draws its ~15 icons (menu, search, theme switch,
  download, Colab's rocket...) with Font Awesome's JavaScript, 1.5 MB (540 kB compressed) on
  every page, which turns ``<i class="fa-solid fa-bars"></i>`` into an inline SVG after the page
  has loaded. Here every such ``<i>`` of the built pages is replaced by that same SVG, taken
  from the theme's own copy of Font Awesome (the paths only; the icons are CC BY 4.0, see
  ``_static/scripts/fontawesome.js.LICENSE.txt``), and the script is dropped from a page once
  none of its icons needs it. ``_static/book.css`` sizes the SVGs as Font Awesome does.
- **Figures load when they come into view** (``loading="lazy"``), so that the first screen
  (and a slider's decoder) does not wait behind every figure of a long chapter.
- **The decoder first, on a slider page.** On a slow phone the page's own scripts would stand
  between the reader and the first decoded image: MathJax (1.2 MB, 270 kB compressed) and the
  search scripts (the search index, 65 kB; the theme's search box submits to the search page,
  which loads its own) share the connection with the decoder's weights, and the head's
  synchronous scripts keep the parser from reaching the widget until every stylesheet has
  arrived. On a page with an in-browser decoder, those four scripts are loaded, in their order,
  once the first image is decoded (the sliders' script sends ``vae-web-first-decode``) or the
  page has loaded, and after 10 s at the latest; the head's other scripts are deferred (in
  their order: inline ones become ``data:`` scripts), except the theme's first one, which sets
  the colour mode before the first paint. Measured on chapter 4 (slow 4G, CPU 4x): the first
  image after ~1.8 s instead of ~2.7 s.
- **The first decoder's files ahead of the stylesheets.** The widget preloads the files of its
  first drawing (its config, the preview decoder, the codes of a plane) from the body, where
  the browser finds them only after a dozen stylesheets and scripts have taken its six
  connections to the host. The first widget's preloads, and a ``modulepreload`` of the sliders'
  script, move to the head before the first stylesheet, at ``fetchpriority="high"``. Measured on
  chapter 4 the same way: median first image 1.24 s instead of 2.11 s (8 and 5 loads).

Runs when the build has finished, over every HTML file it wrote.
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path
from urllib.parse import quote

FONTAWESOME = Path("_static") / "scripts" / "fontawesome.js"
PACKS = {"fas": "fas", "fa-solid": "fas", "far": "far", "fa-regular": "far",
         "fab": "fab", "fa-brands": "fab"}
_ICON = re.compile(r'(?:"([a-z0-9-]+)"|\b([a-z][a-z0-9]*)):\[(\d+),(\d+),\[[^\]]*\],"[0-9a-f]*",'
                   r'"(M[^"]+)"\]')
_PACK_CALL = re.compile(r'\b[a-zA-Z_$]\("(fas|far|fab)",')
_I_TAG = re.compile(r'<i ([^>]*\bclass="[^"]*\bfa-[^"]*"[^>]*)>\s*</i>')
_ATTRIBUTE = re.compile(r'([a-zA-Z_:][-a-zA-Z0-9_:.]*)="([^"]*)"')
_SCRIPT = re.compile(r'<script defer src="[^"]*_static/scripts/fontawesome\.js[^"]*"></script>\s*')
_IMG = re.compile(r"<img (?![^>]*\bloading=)")
_DECODER_WIDGET = '<div class="vae-web" data-config='
_MODEL_PRELOAD = re.compile(r'<link rel="preload" href="[^"]*/models/[^"]*" as="fetch"[^>]*>')
_MODULE_SCRIPT = re.compile(r'<script type="module" async src="([^"]+)"></script>')
_HEAD_SCRIPT = re.compile(r"<script\b([^>]*)>(.*?)</script>", re.S)
_LATER_SCRIPTS = re.compile(r"mathjax/tex-mml-chtml\.js|searchtools\.js|language_data\.js|"
                            r"searchindex\.js")
_LOADER = """(function () {
  var sources = SOURCES, started = false;
  function next() {
    if (!sources.length) return;
    var script = document.createElement("script");
    script.src = sources.shift();
    script.onload = script.onerror = next;
    document.head.appendChild(script);
  }
  function load() {
    if (!started) { started = true; next(); }
  }
  window.addEventListener("vae-web-first-decode", load);
  window.addEventListener("load", load);
  setTimeout(load, 10000);
  if (window.vaeWeb && window.vaeWeb.firstDecodeAt !== undefined) load();
})();"""


def decoder_first(page: str) -> str:
    """A slider page's head with its scripts deferred and four of them loaded after the first
    decode (see the module's docstring); any other page unchanged."""
    if _DECODER_WIDGET not in page or "</head>" not in page:
        return page
    head, rest = page.split("</head>", 1)
    later, hoisted, first = [], [], True

    def defer(match: re.Match) -> str:
        nonlocal first
        attributes, body = match.group(1), match.group(2)
        keep, first = first, False
        source = re.search(r'\bsrc="([^"]+)"', attributes)
        if source and _LATER_SCRIPTS.search(source.group(1)):
            later.append(html.unescape(source.group(1)))
            return ""
        if keep or re.search(r"\b(async|defer)\b|type=\"(?!text/javascript)", attributes):
            return match.group(0)
        if source:
            return f"<script defer{attributes}></script>"
        if "DOCUMENTATION_OPTIONS" in body:    # needs documentation_options.js: keep its order
            return f'<script defer src="data:text/javascript,{quote(body)}"></script>'
        hoisted.append(match.group(0))        # settings read by the deferred scripts: first
        return ""

    head = _HEAD_SCRIPT.sub(defer, head)
    # The first widget's preloads (those before it in the body) and its script, before the
    # stylesheets, at high priority.
    before, widget_and_after = rest.split(_DECODER_WIDGET, 1)
    preloads = _MODEL_PRELOAD.findall(before)
    rest = _MODEL_PRELOAD.sub("", before) + _DECODER_WIDGET + widget_and_after
    script = _MODULE_SCRIPT.search(rest)
    early = [link[:-1] + ' fetchpriority="high">' for link in preloads]
    if script:
        early.append(f'<link rel="modulepreload" href="{script.group(1)}" fetchpriority="high">')
    if early:
        stylesheet = head.find("<link")
        at = stylesheet if stylesheet >= 0 else len(head)
        head = head[:at] + "".join(early) + "\n" + head[at:]
    # The settings run at once, before any stylesheet (which would make them wait).
    theme_first = _HEAD_SCRIPT.search(head)
    at = theme_first.end() if theme_first else head.index("<head>") + len("<head>")
    head = head[:at] + "\n" + "\n".join(hoisted) + head[at:]
    loader = _LOADER.replace("SOURCES", json.dumps(later))
    head += f'<script defer src="data:text/javascript,{quote(loader)}"></script>\n'
    return head + "</head>" + rest


def icon_paths(script: str) -> dict[tuple[str, str], tuple[int, int, str]]:
    """{(pack, name): (width, height, SVG path)} from Font Awesome's JavaScript, whose packs
    each define their icons, then register them with a call naming the pack ("fas", ...)."""
    calls = [(m.start(), m.group(1)) for m in _PACK_CALL.finditer(script)]
    icons = {}
    for m in _ICON.finditer(script):
        pack = next((p for at, p in calls if at > m.start()), None)
        if pack is not None:
            icons.setdefault((pack, m.group(1) or m.group(2)), (int(m.group(3)), int(m.group(4)),
                                                                m.group(5)))
    return icons


def _svg(attributes: str, icons) -> str | None:
    attrs = dict(_ATTRIBUTE.findall(attributes))
    classes = attrs.pop("class", "").split()
    packs = {PACKS[c] for c in classes if c in PACKS}
    names = [c[3:] for c in classes if c.startswith("fa-") and c not in PACKS]
    found = [(icons[(p, n)], n) for p in packs for n in names if (p, n) in icons]
    if len(packs) != 1 or len(found) != 1:
        return None
    (width, height, path), name = found[0]
    kept = " ".join(["svg-inline--fa", f"fa-{name}",
                     *(c for c in classes if c not in PACKS and c != f"fa-{name}")])
    extra = "".join(f' {k}="{v}"' for k, v in attrs.items() if k != "aria-hidden")
    return (f'<svg class="{kept}"{extra} aria-hidden="true" focusable="false" '
            f'xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}">'
            f'<path fill="currentColor" d="{html.escape(path)}"/></svg>')


def lighten(page: str, icons) -> str:
    """One page with its icons inline and lazy figures; the fontawesome script is dropped only
    if every icon of the page could be drawn here."""
    missing = []

    def replace(match: re.Match) -> str:
        svg = _svg(match.group(1), icons)
        if svg is None:
            missing.append(match.group(0))
            return match.group(0)
        return svg

    page = _I_TAG.sub(replace, page)
    if not missing:
        page = _SCRIPT.sub("", page)
    page = decoder_first(page)
    return _IMG.sub('<img loading="lazy" decoding="async" ', page)


def _build_finished(app, exception) -> None:
    if exception is not None or app.builder.format != "html":
        return
    outdir = Path(app.outdir)
    script = outdir / FONTAWESOME
    icons = icon_paths(script.read_text(encoding="utf-8")) if script.exists() else {}
    for path in outdir.rglob("*.html"):
        text = path.read_text(encoding="utf-8")
        lightened = lighten(text, icons)
        if lightened != text:
            path.write_text(lightened, encoding="utf-8")


def setup(app):
    app.connect("build-finished", _build_finished)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
