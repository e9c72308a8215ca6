// npcnn explore: the page. Plain JavaScript, no build step; every number comes
// from the server (npcnn's own ops), this file only draws and asks.
"use strict";

const state = { model: null, image: null, layers: null, samples: [], pending: 0 };
const $ = (id) => document.getElementById(id);

async function api(path, body) {
  state.pending += 1;  // requests in flight (the tests wait for 0)
  try { return await request(path, body); } finally { state.pending -= 1; }
}

async function request(path, body) {
  const options = body === undefined ? {} : {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
  };
  const response = await fetch(path, options);
  const data = await response.json();
  if (!response.ok) throw new Error(data.error || response.statusText);
  return data;
}

function shapeText(shape) { return "(N, " + shape.join(", ") + ")"; }

// ---- the server packs arrays as base64 float32 (see server.py's ``packed``)
function unpack(text) {
  const bytes = Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
  return Array.from(new Float32Array(bytes.buffer));
}

// "maps" {shape: [H, W, C], maps: packed (C, H, W)} -> C arrays of H rows; "vector" -> [values]
function mapsOf(entry) {
  if (entry.kind !== "maps") return [[unpack(entry.values)]];
  const [h, w, c] = entry.shape, flat = unpack(entry.maps), maps = [];
  for (let k = 0; k < c; k++) {
    const map = [];
    for (let r = 0; r < h; r++) map.push(flat.slice((k * h + r) * w, (k * h + r + 1) * w));
    maps.push(map);
  }
  return maps;
}

// ---- a map (H x W numbers) drawn into a canvas, grey from its min to its max
function drawMap(canvas, map, diverging) {
  const h = map.length, w = map[0].length;
  canvas.width = w; canvas.height = h;
  const ctx = canvas.getContext("2d"), img = ctx.createImageData(w, h);
  let lo = Infinity, hi = -Infinity;
  for (const row of map) for (const v of row) { if (v === null) continue; lo = Math.min(lo, v); hi = Math.max(hi, v); }
  const span = Math.max(Math.abs(lo), Math.abs(hi)) || 1;
  for (let r = 0; r < h; r++) for (let c = 0; c < w; c++) {
    const v = map[r][c] === null ? 0 : map[r][c], k = 4 * (r * w + c);
    if (diverging) {  // red: positive, blue: negative
      const t = Math.round(255 * Math.abs(v) / span);
      img.data.set(v >= 0 ? [255, 255 - t, 255 - t, 255] : [255 - t, 255 - t, 255, 255], k);
    } else {
      const t = hi > lo ? Math.round(255 * (v - lo) / (hi - lo)) : 0;
      img.data.set([t, t, t, 255], k);
    }
  }
  ctx.putImageData(img, 0, 0);
}

// ---- the drawing pad: 28 x 28 values in [0, 1]
function blankImage() {
  const [h, w] = state.model.input_shape;
  return Array.from({ length: h }, () => new Array(w).fill(0));
}

function drawPad() { drawMap($("pad"), state.image, false); }

function paintAt(event) {
  const rect = $("pad").getBoundingClientRect(), img = state.image;
  const h = img.length, w = img[0].length;
  const y = (event.clientY - rect.top) / rect.height * h, x = (event.clientX - rect.left) / rect.width * w;
  for (let r = Math.floor(y) - 2; r <= Math.floor(y) + 2; r++) for (let c = Math.floor(x) - 2; c <= Math.floor(x) + 2; c++) {
    if (r < 0 || c < 0 || r >= h || c >= w) continue;
    const d = Math.hypot(r + 0.5 - y, c + 0.5 - x), ink = Math.max(0, 1 - d / 1.8);
    img[r][c] = Math.min(1, img[r][c] + ink);
  }
  drawPad();
}

let drawing = false, lastSent = 0;
function setUpPad() {
  const pad = $("pad");
  pad.addEventListener("pointerdown", (e) => { drawing = true; pad.setPointerCapture(e.pointerId); paintAt(e); });
  pad.addEventListener("pointermove", (e) => {
    if (!drawing) return;
    paintAt(e);
    if (Date.now() - lastSent > 150) { lastSent = Date.now(); predict(); }
  });
  const stop = () => { if (drawing) { drawing = false; predict(); } };
  pad.addEventListener("pointerup", stop);
  pad.addEventListener("pointercancel", stop);
  $("clear").addEventListener("click", () => { state.image = blankImage(); drawPad(); predict(); });
  $("sample").addEventListener("change", () => {
    const s = state.samples[$("sample").value];
    if (s) { state.image = s.image.map((row) => row.slice()); drawPad(); predict(); }
  });
}

// ---- forward: the prediction, the bars, every layer's maps
async function predict() {
  state.pending += 1;  // until the page is drawn, not only answered
  try { render(await api("/api/predict", { image: state.image })); } finally { state.pending -= 1; }
}

function render(data) {
  state.layers = data.layers;
  $("prediction").textContent = "prediction: " + data.prediction;
  $("prediction").dataset.prediction = data.prediction;
  drawBars(data.output, data.prediction);
  drawLayers(data.layers);
}

function drawBars(values, top) {
  const bars = $("bars");
  bars.replaceChildren();
  const max = Math.max(...values.map(Math.abs)) || 1;
  values.forEach((v, k) => {
    const label = document.createElement("span"), cell = document.createElement("span"), num = document.createElement("span");
    label.textContent = k;
    const bar = document.createElement("div");
    bar.className = "bar" + (k === top ? " top" : "");
    bar.style.width = (100 * Math.abs(v) / max) + "%";
    cell.append(bar);
    num.textContent = v.toFixed(3);
    bars.append(label, cell, num);
  });
}

function drawLayers(layers) {
  const box = $("layers");
  box.replaceChildren();
  layers.forEach((layer, i) => {
    const div = document.createElement("div"), title = document.createElement("h3"), grid = document.createElement("div");
    div.className = "layer";
    title.textContent = `${layer.name} (${layer.type}) ${shapeText(layer.shape)}`;
    grid.className = "grid";
    if (layer.kind === "maps") {
      mapsOf(layer).forEach((map, channel) => {
        const canvas = document.createElement("canvas");
        canvas.dataset.layer = i; canvas.dataset.channel = channel;
        canvas.title = `${layer.name}, channel ${channel}: click a cell`;
        drawMap(canvas, map, false);
        canvas.addEventListener("click", (e) => {
          const rect = canvas.getBoundingClientRect();
          const row = Math.floor((e.clientY - rect.top) / rect.height * map.length);
          const col = Math.floor((e.clientX - rect.left) / rect.width * map[0].length);
          explain(i, row, col, channel);
        });
        grid.append(canvas);
      });
    } else {
      const canvas = document.createElement("canvas");
      drawMap(canvas, mapsOf(layer)[0], false);
      canvas.style.width = "100%"; canvas.style.height = "12px";
      grid.append(canvas);
    }
    div.append(title, grid);
    box.append(div);
  });
}

// ---- one cell, explained
function table(rows, classFor, attr, caption) {
  const t = document.createElement("table");
  if (caption) t.createCaption().textContent = caption;
  t.className = "cells";
  rows.forEach((row, r) => {
    const tr = document.createElement("tr");
    row.forEach((v, c) => {
      const td = document.createElement("td");
      td.textContent = v === null ? "pad" : Number(v).toFixed(3);
      if (attr && v !== null) td.dataset[attr] = v;
      const cls = classFor && classFor(r, c);
      if (cls) td.className = cls;
      tr.append(td);
    });
    t.append(tr);
  });
  return t;
}

async function explain(layer, row, col, channel) {
  const box = $("explain");
  try {
    const d = await api("/api/explain", { image: state.image, layer, row, col, channel });
    box.replaceChildren();
    const head = document.createElement("p");
    head.textContent = `${d.layer} (${d.type}), row ${row}, col ${col}, channel ${channel}:`;
    box.append(head);
    const tables = document.createElement("div");
    tables.className = "tables";
    if (d.type === "Conv2D") {
      const cin = d.window[0][0].length;
      for (let c = 0; c < cin; c++) {  // one table per input channel: window, kernel, products
        const pick = (a) => a.map((r) => r.map((v) => v[c]));
        const padded = (r, j) => (d.padded[r][j] ? "padded" : "");
        tables.append(table(pick(d.window), padded, null, `input channel ${c}: window (grey: padding)`),
          table(pick(d.kernel), null, null, "x kernel"), table(pick(d.products), padded, "product", "= products"));
        if (c >= 3) { const more = document.createElement("p"); more.textContent = `... and ${cin - 4} more input channels (their products are in the sum)`; tables.append(more); break; }
      }
      box.append(tables);
      const sum = document.createElement("p");
      sum.id = "explain-sum";
      Object.assign(sum.dataset, { sum: d.sum, bias: d.bias, z: d.z, value: d.value });
      sum.textContent = `sum of products ${d.sum.toFixed(5)} + bias ${d.bias.toFixed(5)} = ${d.z.toFixed(5)}` +
        (d.activation ? ` -> ${d.activation} -> ${d.value.toFixed(5)}` : "");
      box.append(sum);
      box.dataset.allProducts = JSON.stringify(d.products.flat(2));
    } else {
      const winner = (r, c) => (r === d.winner[0] && c === d.winner[1] ? "winner" : "");
      tables.append(table(d.window, winner, null, "the window (highlighted: the first maximum)"));
      box.append(tables);
      const p = document.createElement("p");
      p.id = "explain-sum";
      p.dataset.value = d.value;
      p.textContent = `max = ${d.value.toFixed(5)}; the first maximum (row-major, highlighted) gets the gradient`;
      box.append(p);
    }
    const code = document.createElement("p");
    code.innerHTML = "computed by <code></code>";
    code.querySelector("code").textContent = `${d.code.file}:${d.code.line}  ${d.code.text}`;
    box.append(code);
  } catch (err) {
    box.textContent = "cannot explain: " + err.message;
  }
}

// ---- backward: the gradient of one class's loss at every layer
async function gradients() {
  const label = Number($("class").value);
  const d = await api("/api/gradients", { image: state.image, label });
  $("loss").textContent = `loss of class ${label}: ${d.loss.toFixed(4)}`;
  $("loss").dataset.loss = d.loss;
  drawMap($("saliency"), mapsOf(d.input)[0], true);
  const kernels = $("kernel-grads");
  kernels.replaceChildren();
  (d.kernel ? mapsOf(d.kernel) : []).forEach((k) => { const c = document.createElement("canvas"); drawMap(c, k, true); kernels.append(c); });
  const box = $("grad-layers");
  box.replaceChildren();
  d.layers.forEach((layer) => {
    const div = document.createElement("div"), title = document.createElement("h3"), grid = document.createElement("div");
    div.className = "layer"; grid.className = "grid";
    title.textContent = `dL/d(output of ${layer.name}) ${shapeText(layer.shape)}`;
    const maps = mapsOf(layer).slice(0, 16);
    maps.forEach((m) => { const c = document.createElement("canvas"); drawMap(c, m, true); grid.append(c); });
    div.append(title, grid);
    box.append(div);
  });
}

function showView(name) {
  $("forward").hidden = name !== "forward";
  $("backward").hidden = name !== "backward";
  $("tab-forward").setAttribute("aria-pressed", name === "forward");
  $("tab-backward").setAttribute("aria-pressed", name === "backward");
}

async function start() {
  state.model = await api("/api/model");
  const m = state.model;
  $("model-info").textContent = `${m.layers.length} layers, input ${shapeText(m.input_shape)}`;
  state.image = blankImage();
  drawPad();
  setUpPad();
  m.layers.forEach((layer, i) => {
    if (layer.type === "Conv2D" || layer.type === "MaxPool2D") {
      $("explain-layer").append(new Option(`${layer.name} ${shapeText(layer.shape)}`, i));
    }
  });
  const classes = m.layers[m.layers.length - 1].shape.reduce((a, b) => a * b, 1);
  for (let k = 0; k < classes; k++) $("class").append(new Option(String(k), k));
  $("explain-form").addEventListener("submit", (e) => {
    e.preventDefault();
    explain(Number($("explain-layer").value), Number($("explain-row").value), Number($("explain-col").value), Number($("explain-channel").value));
  });
  $("gradient-form").addEventListener("submit", (e) => { e.preventDefault(); gradients(); });
  $("tab-forward").addEventListener("click", () => showView("forward"));
  $("tab-backward").addEventListener("click", () => { showView("backward"); gradients(); });
  state.samples = (await api("/api/samples")).samples;
  state.samples.forEach((s, i) => $("sample").append(new Option(`test image ${i} (a ${s.label})`, i)));
  await predict();
  document.body.dataset.ready = "true";
}

start().catch((err) => { $("model-info").textContent = "error: " + err.message; });
