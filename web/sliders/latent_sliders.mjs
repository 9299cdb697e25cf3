// Latent sliders on the static website: the book's trained decoders, exported at build time
// (vae_utils/web.py: int8 weights with one scale per row, float32 biases), computed here in a
// few lines of plain JavaScript. Nothing is fetched from another host, and no runtime library
// is needed: a decoder is a handful of matrix-vector products.
//
// A page holds <div class="vae-web" data-config="../models/NAME.json"></div>; the JSON says
// what to draw: {"kind": "sliders", ...} (one slider per latent dimension, "sample from the
// prior" and "reset") or {"kind": "plane", ...} (2-D latent planes: point, touch or use the
// arrow keys to decode). window.vaeWeb exposes each widget's state to the browser test
// (tests/test_site_browser.py).

const registry = (window.vaeWeb = window.vaeWeb || { widgets: [] });

function element(tag, attributes = {}, children = []) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (key === "text") node.textContent = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child);
  return node;
}

// One decoder: z (latent_dim numbers) -> image drawn on a canvas of the image's own size (CSS
// scales it up), so that the canvas pixels are exactly round(255 * decoded value).
class Decoder {
  constructor(spec, buffer) {
    [this.channels, this.height, this.width] = spec.image_shape;
    this.layers = spec.layers.map((layer) => layer.type !== "linear" ? layer : {
      ...layer,
      w: new Int8Array(buffer, layer.weight, layer.inputs * layer.outputs),
      s: new Float32Array(buffer, layer.scale, layer.outputs),
      b: new Float32Array(buffer, layer.bias, layer.outputs),
    });
    this.times = [];
  }

  static async load(spec, base) {
    const response = await fetch(new URL(spec.file, base));
    if (!response.ok) throw new Error(`HTTP ${response.status} for ${spec.file}`);
    return new Decoder(spec, await response.arrayBuffer());
  }

  run(code) { // -> Float64Array of C*H*W values in [0, 1]
    let x = Float64Array.from(code);
    for (const layer of this.layers) {
      if (layer.type === "linear") {
        const y = new Float64Array(layer.outputs);
        for (let o = 0, row = 0; o < layer.outputs; o++, row += layer.inputs) {
          let sum = 0;
          for (let i = 0; i < layer.inputs; i++) sum += layer.w[row + i] * x[i];
          y[o] = sum * layer.s[o] + layer.b[o];
        }
        x = y;
      } else if (layer.type === "relu") {
        for (let i = 0; i < x.length; i++) if (x[i] < 0) x[i] = 0;
      } else {
        for (let i = 0; i < x.length; i++) if (x[i] < 0) x[i] *= layer.slope;
      }
    }
    for (let i = 0; i < x.length; i++) x[i] = 1 / (1 + Math.exp(-x[i]));
    return x;
  }

  draw(code, canvas) {
    const start = performance.now();
    const pixels = this.run(code);
    const context = canvas.getContext("2d");
    const out = context.createImageData(this.width, this.height);
    const plane = this.width * this.height;
    for (let i = 0; i < plane; i++) {
      for (let c = 0; c < 3; c++) {
        out.data[4 * i + c] = Math.round(255 * pixels[(this.channels === 1 ? 0 : c) * plane + i]);
      }
      out.data[4 * i + 3] = 255;
    }
    context.putImageData(out, 0, 0);
    this.times.push(performance.now() - start);
  }
}

function imageCanvas(shape, scale, label) {
  const [, height, width] = shape;
  return element("canvas", {
    width, height, class: "vae-web-image", role: "img", "aria-label": label,
    style: `width:${width * scale}px;height:${height * scale}px`,
  });
}

function gaussian() { // Box-Muller: one draw from N(0, 1)
  const u = 1 - Math.random();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * Math.random());
}

// A touch that starts on a slider and turns out to be a vertical swipe scrolls the page
// (touch-action: pan-y); the browser then cancels the pointer, and the slider goes back to the
// value it had when the touch began, so a scroll never moves a slider.
function keepOnScroll(input, onRestore) {
  let before = null;
  input.addEventListener("pointerdown", () => { before = input.value; });
  input.addEventListener("pointerup", () => { before = null; });
  input.addEventListener("pointercancel", () => {
    if (before !== null && input.value !== before) {
      input.value = before;
      onRestore();
    }
    before = null;
  });
}

// With a "preview" in its JSON (a low-rank copy of the decoder, a fraction of the bytes), the
// widget draws with the preview first, says so under the image, and switches to the exact
// decoder as soon as that has downloaded (fetched only then, so that the two never share a
// slow connection). state.decoder is the decoder in use; state.exact resolves once it is the
// exact one.
async function sliders(root, config, base) {
  const first = config.preview ?? config.decoder;
  const canvas = imageCanvas(first.image_shape, config.scale, config.alt);
  const code = new Array(config.latent_dim).fill(0);
  const announce = element("p", { class: "vae-web-status", "aria-live": "polite" });
  const quality = element("p", { class: "vae-web-quality" });
  const state = { kind: "sliders", config, code, canvas, inputs: [],
                  decoder: await Decoder.load(first, base) };
  const redraw = () => state.decoder.draw(code, canvas);
  const grid = element("div", { class: "vae-web-sliders" });
  const show = (i) => {
    const { input, value } = state.inputs[i];
    value.textContent = code[i].toFixed(2);
    input.setAttribute("aria-valuetext", `${config.names[i]} = ${code[i].toFixed(2)}`);
  };
  config.names.forEach((name, i) => {
    const value = element("output", { text: "0.00", "aria-hidden": "true" });
    const input = element("input", {
      type: "range", min: -config.range, max: config.range, step: config.step, value: 0,
      "aria-label": `latent ${name}`,
    });
    const moved = () => {
      code[i] = Number(input.value);
      show(i);
      redraw();
    };
    input.addEventListener("input", moved);
    input.addEventListener("change", () => { announce.textContent = `${name} set to ${code[i].toFixed(2)}`; });
    keepOnScroll(input, moved);
    state.inputs.push({ input, value });
    grid.append(element("label", {}, [element("span", { text: name }), input, value]));
    show(i);
  });
  const setCode = (values) => {
    values.forEach((v, i) => {
      code[i] = Math.max(-config.range, Math.min(config.range, v));
      state.inputs[i].input.value = code[i];
      show(i);
    });
    redraw();
    return Promise.resolve();
  };
  const sample = element("button", { type: "button", text: "sample from the prior" });
  sample.addEventListener("click", () => {
    setCode(code.map(gaussian));
    announce.textContent = "new code drawn from the prior";
  });
  const reset = element("button", { type: "button", text: "reset" });
  reset.addEventListener("click", () => {
    setCode(code.map(() => 0));
    announce.textContent = "every slider back to 0";
  });
  root.replaceChildren(element("div", { class: "vae-web-panel" }, [
    element("div", { class: "vae-web-figure" }, [canvas, quality,
      element("div", { class: "vae-web-buttons" }, [sample, reset])]),
    grid,
  ]), announce);
  state.setCode = setCode;
  redraw();
  if (config.preview) {
    quality.textContent = `Preview (${config.preview.rank} directions per layer); loading the ` +
      "exact decoder…";
    state.exact = Decoder.load(config.decoder, base).then((exact) => {
      state.decoder = exact;
      redraw();
      quality.textContent = "";
      state.exactAt = performance.now();
    }, (error) => {
      quality.textContent = `The exact decoder could not load (${error}); this is the preview.`;
      throw error;
    });
  } else {
    state.exact = Promise.resolve();
  }
  state.settled = () => state.exact;
  return state;
}

// Colours that keep a contrast of at least 4.5:1 on white (the legend's text uses them).
const DIGIT_COLOURS = ["#1f5f99", "#b84e00", "#237a23", "#c0262d", "#7145a0", "#7d4e44",
  "#b0327f", "#5f5f5f", "#6e6e00", "#0f7580"];

async function plane(root, config, base) {
  const state = { kind: "plane", config, panels: [] };
  const row = element("div", { class: "vae-web-planes" });
  const announce = element("p", { class: "vae-web-status", "aria-live": "polite" });
  const quality = element("p", { class: "vae-web-quality" });
  // Every panel's first decoder (its preview, if any) and codes at once; the exact decoders
  // after the first drawing (see sliders()).
  const loaded = await Promise.all(config.panels.map(async (panel) => {
    const [decoder, points] = await Promise.all([
      Decoder.load(panel.preview ?? panel.decoder, base),
      fetch(new URL(panel.points, base)).then((response) => {
        if (!response.ok) throw new Error(`HTTP ${response.status} for ${panel.points}`);
        return response.json();
      }),
    ]);
    return { decoder, points };
  }));
  for (const [index, panel] of config.panels.entries()) {
    let { decoder } = loaded[index];
    const { points } = loaded[index];
    const size = config.size;
    const scatter = element("canvas", {
      width: size, height: size, class: "vae-web-scatter", role: "application", tabindex: "0",
      "aria-roledescription": "latent plane",
      "aria-label": `${panel.title}: the 2-D codes of ${points.codes.length} test digits, ` +
        "coloured by digit. Point or touch anywhere, or use the arrow keys, to decode that code",
    });
    const image = imageCanvas(panel.decoder.image_shape, config.scale, `${panel.title}: decoded image`);
    const readout = element("div", { class: "vae-web-readout", text: "z = (0.00, 0.00)" });
    const [low, high] = panel.extent; // the same range on both axes
    const toCode = (x, y) => [low + (x / size) * (high - low), high - (y / size) * (high - low)];
    const context = scatter.getContext("2d");
    context.fillStyle = "#fff";
    context.fillRect(0, 0, size, size);
    points.codes.forEach(([a, b], i) => {
      context.fillStyle = DIGIT_COLOURS[points.labels[i]];
      context.fillRect(((a - low) / (high - low)) * size - 1, ((high - b) / (high - low)) * size - 1, 2, 2);
    });
    const dots = context.getImageData(0, 0, size, size);
    const code = [0, 0];
    const decodeAt = (z) => {
      code[0] = Math.max(low, Math.min(high, z[0]));
      code[1] = Math.max(low, Math.min(high, z[1]));
      readout.textContent = `z = (${code[0].toFixed(2)}, ${code[1].toFixed(2)})`;
      context.putImageData(dots, 0, 0); // the codes, then a ring where the reader points
      context.strokeStyle = "#000";
      context.lineWidth = 2;
      context.beginPath();
      context.arc(((code[0] - low) / (high - low)) * size, ((high - code[1]) / (high - low)) * size,
        6, 0, 2 * Math.PI);
      context.stroke();
      decoder.draw(code, image);
      return Promise.resolve();
    };
    const pointAt = (event) => {
      const box = scatter.getBoundingClientRect();
      decodeAt(toCode(((event.clientX - box.left) / box.width) * size,
        ((event.clientY - box.top) / box.height) * size));
    };
    scatter.addEventListener("pointermove", pointAt);
    scatter.addEventListener("pointerdown", pointAt);
    scatter.addEventListener("pointerup", () => { announce.textContent = `${panel.title}: decoded ${readout.textContent}`; });
    const stepSize = (high - low) / 40;
    scatter.addEventListener("keydown", (event) => {
      const moves = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, 1], ArrowDown: [0, -1] };
      const move = moves[event.key];
      if (!move) return;
      event.preventDefault();
      decodeAt([code[0] + move[0] * stepSize, code[1] + move[1] * stepSize]);
      announce.textContent = `${panel.title}: decoded ${readout.textContent}`;
    });
    row.append(element("figure", { class: "vae-web-plane" }, [
      element("figcaption", { text: panel.title }), scatter,
      element("div", { class: "vae-web-decoded" }, [image, readout]),
    ]));
    const entry = { code, image, scatter, decodeAt, decoder };
    entry.exact = !panel.preview ? Promise.resolve() : Promise.resolve().then(async () => {
      decoder = entry.decoder = await Decoder.load(panel.decoder, base);
      decodeAt(code);
    });
    entry.settled = () => entry.exact;
    state.panels.push(entry);
    decodeAt([0, 0]);
  }
  const legend = element("div", { class: "vae-web-legend" },
    DIGIT_COLOURS.map((colour, digit) => element("span", { style: `color:${colour}`, text: `■ ${digit}` })));
  root.replaceChildren(legend, row, quality, announce);
  const previews = config.panels.filter((panel) => panel.preview);
  if (previews.length) {
    quality.textContent = `Preview (${previews[0].preview.rank} directions per layer); loading ` +
      "the exact decoders…";
  }
  state.exact = Promise.all(state.panels.map((panel) => panel.exact)).then(() => {
    quality.textContent = "";
  }, (error) => {
    quality.textContent = `An exact decoder could not load (${error}); this is the preview.`;
    throw error;
  });
  state.settled = () => state.exact;
  return state;
}

const STYLE = `
.vae-web { margin: 1em 0; font-size: 0.9em; min-height: 3em; }
.vae-web-loading { color: #444; font-style: italic; }
.vae-web-panel { display: flex; flex-wrap: wrap; gap: 1em; align-items: flex-start; }
.vae-web-figure { display: flex; flex-direction: column; gap: 0.4em; align-items: flex-start; }
.vae-web-image { image-rendering: pixelated; border: 1px solid #ccc; }
.vae-web-quality { margin: 0; max-width: 12em; color: #444; font-style: italic; }
.vae-web-quality:empty { display: none; }
.vae-web-sliders { display: grid; grid-template-columns: repeat(auto-fill, minmax(13em, 1fr));
  gap: 0 1em; flex: 1 1 18em; }
.vae-web-sliders label { display: grid; grid-template-columns: 4.6em 1fr 2.8em;
  gap: 0.3em; align-items: center; }
.vae-web-sliders input { width: 100%; height: 44px; margin: 0; touch-action: pan-y; }
.vae-web-sliders span { overflow-wrap: anywhere; line-height: 1.1; }
.vae-web-buttons { display: flex; flex-wrap: wrap; gap: 0.4em; }
.vae-web button { min-height: 44px; padding: 0 0.8em; }
.vae-web-status { position: absolute; width: 1px; height: 1px; overflow: hidden;
  clip: rect(0 0 0 0); white-space: nowrap; }
.vae-web-planes { display: flex; flex-wrap: wrap; gap: 1em; }
.vae-web-plane { margin: 0; display: flex; flex-direction: column; gap: 0.4em;
  width: min(260px, 42vw); }
.vae-web-plane figcaption { font-weight: 600; }
.vae-web-decoded { display: flex; flex-wrap: wrap; gap: 0.2em 0.6em; align-items: center; }
.vae-web-legend { display: flex; flex-wrap: wrap; gap: 0.2em 0.8em; margin-bottom: 0.5em; }
.vae-web-scatter { width: min(260px, 42vw); border: 1px solid #ccc; touch-action: none;
  cursor: crosshair; }
.vae-web-scatter:focus-visible { outline: 3px solid #1f5f99; outline-offset: 2px; }
`;

// The script is loaded with `async` (it must not wait for MathJax or the theme's scripts): it
// starts every widget already parsed at once, and the rest when the page has been parsed. The
// page preloads each widget's files (<link rel="preload">), so the fetches below find them
// under way.
async function startOne(root) {
  const base = new URL(root.dataset.config, document.baseURI);
  try {
    const response = await fetch(base);
    if (!response.ok) throw new Error(`HTTP ${response.status} for ${root.dataset.config}`);
    const config = await response.json();
    const build = config.kind === "plane" ? plane : sliders;
    registry.widgets.push(await build(root, config, base));
    root.dataset.ready = "true";
    if (registry.firstDecodeAt === undefined) {
      registry.firstDecodeAt = performance.now(); // ms after navigation started
      window.dispatchEvent(new Event("vae-web-first-decode")); // the page may now load MathJax
      // ... and on screen with the next frame, which waits for the page's stylesheets
      requestAnimationFrame(() => { registry.firstShownAt = performance.now(); });
    }
  } catch (error) {
    root.replaceChildren(element("p", { class: "vae-web-error", role: "alert",
      text: `The in-browser decoder could not start: ${error}` }));
    root.dataset.ready = "error";
    throw error;
  }
}

function startParsed() {
  const roots = [...document.querySelectorAll(".vae-web:not([data-started])")];
  for (const root of roots) root.dataset.started = "true";
  return Promise.all(roots.map(startOne));
}

async function start() {
  document.head.append(element("style", { text: STYLE }));
  const early = startParsed();
  if (document.readyState === "loading") {
    await new Promise((resolve) => document.addEventListener("DOMContentLoaded", resolve,
                                                             { once: true }));
  }
  await Promise.all([early, startParsed()]);
  await Promise.all(registry.widgets.map((widget) => widget.exact));  // every exact decoder
  registry.readyAt = performance.now(); // ms after navigation started
  registry.ready = true;
}

registry.started = start();
