// Latent sliders on the static website: the book's trained decoders, exported to ONNX at build
// time (vae_utils/web.py), run in the reader's browser by onnxruntime-web. Nothing is fetched
// from another host: the runtime, its WebAssembly and the models are served by the site.
//
// A page holds <div class="vae-web" data-config="../models/NAME.json"></div>; the JSON says
// what to draw: {"kind": "sliders", ...} (one slider per latent dimension, "sample from the
// prior" and "reset") or {"kind": "plane", ...} (2-D latent planes: point to decode).
// window.vaeWeb exposes each widget's state to the browser test (tests/test_site_browser.py).
import * as ort from "../ort/ort.wasm.min.mjs";

ort.env.wasm.numThreads = 1; // static hosts send no COOP/COEP headers: no threads
ort.env.wasm.wasmPaths = new URL("../ort/", import.meta.url).href;

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

// One decoder: z (latent_dim numbers) -> image drawn on a canvas of the image's own size
// (CSS scales it up), so that the canvas pixels are exactly round(255 * decoded value).
class Decoder {
  constructor(session, imageShape) {
    this.session = session;
    [this.channels, this.height, this.width] = imageShape;
    this.times = [];
  }

  static async load(url, imageShape) {
    const session = await ort.InferenceSession.create(url, { executionProviders: ["wasm"] });
    return new Decoder(session, imageShape);
  }

  async draw(code, canvas) {
    const start = performance.now();
    const z = new ort.Tensor("float32", Float32Array.from(code), [1, code.length]);
    const { image } = await this.session.run({ z });
    const pixels = image.data; // (1, C, H, W) in [0, 1]
    const context = canvas.getContext("2d");
    const out = context.createImageData(this.width, this.height);
    const plane = this.width * this.height;
    for (let i = 0; i < plane; i++) {
      for (let c = 0; c < 3; c++) {
        const value = pixels[(this.channels === 1 ? 0 : c) * plane + i];
        out.data[4 * i + c] = Math.round(255 * Math.min(1, Math.max(0, value)));
      }
      out.data[4 * i + 3] = 255;
    }
    context.putImageData(out, 0, 0);
    this.times.push(performance.now() - start);
  }
}

function imageCanvas(shape, scale, label) {
  const [, height, width] = shape;
  const canvas = element("canvas", {
    width, height, class: "vae-web-image", role: "img", "aria-label": label,
    style: `width:${width * scale}px;height:${height * scale}px`,
  });
  return canvas;
}

function gaussian() { // Box-Muller: one draw from N(0, 1)
  const u = 1 - Math.random();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * Math.random());
}

async function sliders(root, config, base) {
  const decoder = await Decoder.load(new URL(config.model, base).href, config.image_shape);
  const canvas = imageCanvas(config.image_shape, config.scale, config.alt);
  const code = new Array(config.latent_dim).fill(0);
  const state = { kind: "sliders", config, code, decoder, canvas, inputs: [] };
  let pending = Promise.resolve();
  const redraw = () => (pending = pending.then(() => decoder.draw(code, canvas)));
  const grid = element("div", { class: "vae-web-sliders" });
  config.names.forEach((name, i) => {
    const value = element("output", { text: "0.00" });
    const input = element("input", {
      type: "range", min: -config.range, max: config.range, step: config.step, value: 0,
      "aria-label": `latent ${name}`,
    });
    input.addEventListener("input", () => {
      code[i] = Number(input.value);
      value.textContent = code[i].toFixed(2);
      redraw();
    });
    state.inputs.push({ input, value });
    grid.append(element("label", {}, [element("span", { text: name }), input, value]));
  });
  const setCode = (values) => {
    values.forEach((v, i) => {
      code[i] = Math.max(-config.range, Math.min(config.range, v));
      state.inputs[i].input.value = code[i];
      state.inputs[i].value.textContent = code[i].toFixed(2);
    });
    return redraw();
  };
  const sample = element("button", { type: "button", text: "sample from the prior" });
  sample.addEventListener("click", () => setCode(code.map(gaussian)));
  const reset = element("button", { type: "button", text: "reset" });
  reset.addEventListener("click", () => setCode(code.map(() => 0)));
  root.append(element("div", { class: "vae-web-panel" }, [
    element("div", { class: "vae-web-figure" }, [canvas, element("div", {}, [sample, reset])]),
    grid,
  ]));
  state.setCode = setCode;
  state.settled = () => pending;
  await redraw();
  return state;
}

const DIGIT_COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
  "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];

async function plane(root, config, base) {
  const state = { kind: "plane", config, panels: [] };
  const row = element("div", { class: "vae-web-planes" });
  for (const panel of config.panels) {
    const decoder = await Decoder.load(new URL(panel.model, base).href, config.image_shape);
    const points = await (await fetch(new URL(panel.points, base))).json();
    const size = config.size;
    const scatter = element("canvas", {
      width: size, height: size, class: "vae-web-scatter", role: "img",
      "aria-label": `${panel.title}: the 2-D codes of ${points.codes.length} test digits, ` +
        "coloured by digit; point anywhere to decode that code",
    });
    const image = imageCanvas(config.image_shape, config.scale, `${panel.title}: decoded image`);
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
    let pending = Promise.resolve();
    const decodeAt = (z) => {
      code[0] = z[0];
      code[1] = z[1];
      readout.textContent = `z = (${z[0].toFixed(2)}, ${z[1].toFixed(2)})`;
      context.putImageData(dots, 0, 0); // the codes, then a ring where the reader points
      context.strokeStyle = "#000";
      context.lineWidth = 2;
      context.beginPath();
      context.arc(((z[0] - low) / (high - low)) * size, ((high - z[1]) / (high - low)) * size,
        6, 0, 2 * Math.PI);
      context.stroke();
      return (pending = pending.then(() => decoder.draw(code, image)));
    };
    scatter.addEventListener("pointermove", (event) => {
      const box = scatter.getBoundingClientRect();
      decodeAt(toCode(((event.clientX - box.left) / box.width) * size,
        ((event.clientY - box.top) / box.height) * size));
    });
    scatter.addEventListener("pointerdown", (event) => scatter.dispatchEvent(
      new PointerEvent("pointermove", event)));
    row.append(element("figure", { class: "vae-web-plane" }, [
      element("figcaption", { text: panel.title }), scatter,
      element("div", { class: "vae-web-decoded" }, [image, readout]),
    ]));
    state.panels.push({ decoder, code, image, scatter, decodeAt, settled: () => pending });
    await decodeAt([0, 0]);
  }
  const legend = element("div", { class: "vae-web-legend", "aria-hidden": "true" },
    DIGIT_COLOURS.map((colour, digit) => element("span", { style: `color:${colour}`, text: `■ ${digit}` })));
  root.append(legend, row);
  return state;
}

const STYLE = `
.vae-web { margin: 1em 0; font-size: 0.9em; }
.vae-web-panel { display: flex; flex-wrap: wrap; gap: 1em; align-items: flex-start; }
.vae-web-figure { display: flex; flex-direction: column; gap: 0.4em; align-items: flex-start; }
.vae-web-image { image-rendering: pixelated; border: 1px solid #ccc; }
.vae-web-sliders { display: grid; grid-template-columns: repeat(auto-fill, minmax(11em, 1fr));
  gap: 0.2em 1em; flex: 1 1 18em; }
.vae-web-sliders label { display: grid; grid-template-columns: 4.6em 1fr 2.8em;
  gap: 0.3em; align-items: center; }
.vae-web-sliders input { width: 100%; }
.vae-web-sliders span { overflow-wrap: anywhere; line-height: 1.1; }
.vae-web button { margin-right: 0.4em; }
.vae-web-planes { display: flex; flex-wrap: wrap; gap: 1em; }
.vae-web-plane { margin: 0; display: flex; flex-direction: column; gap: 0.4em;
  width: min(260px, 42vw); }
.vae-web-plane figcaption { font-weight: 600; }
.vae-web-decoded { display: flex; flex-wrap: wrap; gap: 0.2em 0.6em; align-items: center; }
.vae-web-legend { display: flex; flex-wrap: wrap; gap: 0.2em 0.8em; margin-bottom: 0.5em; }
.vae-web-scatter { width: min(260px, 42vw); border: 1px solid #ccc; touch-action: none;
  cursor: crosshair; }
`;

async function start() {
  document.head.append(element("style", { text: STYLE }));
  for (const root of document.querySelectorAll(".vae-web")) {
    const base = new URL(root.dataset.config, document.baseURI);
    try {
      const config = await (await fetch(base)).json();
      const build = config.kind === "plane" ? plane : sliders;
      registry.widgets.push(await build(root, config, base));
      root.dataset.ready = "true";
    } catch (error) {
      root.append(element("p", { class: "vae-web-error", text: `The in-browser decoder could not start: ${error}` }));
      root.dataset.ready = "error";
      throw error;
    }
  }
  registry.readyAt = performance.now(); // ms after navigation started
  registry.ready = true;
}

registry.started = start();
