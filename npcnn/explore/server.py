"""The explorer's web server: the page, its files, and a small JSON API, on 127.0.0.1 only.

Routes (nothing else is served; no path ever comes from the browser)::

    GET  /                       the page (static/index.html)
    GET  /static/explore.js      its script, /static/explore.css its style
    GET  /api/model              the layers: name, type, output shape; the input shape
    GET  /api/samples            a few test images, when the dataset is on this machine
    POST /api/predict            {"image"} -> every layer's output and the prediction
    POST /api/explain            {"image", "layer", "row", "col", "channel"} -> one cell
    POST /api/gradients          {"image", "label"} -> the gradient at every layer

A request that is not valid JSON, too large, or holds a wrong image or index
gets ``400`` and {"error": "..."} saying what is wrong; the server keeps serving.
One model, one lock: requests are answered one at a time.
"""

from __future__ import annotations

import base64
import json
import math
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources

import numpy as np

from .inspect import class_gradients, explain_cell, forward_outputs

MAX_BODY = 256 * 1024  # bytes: a 28x28 image is ~5 KB of JSON
STATIC = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/static/explore.js": ("explore.js", "text/javascript; charset=utf-8"),
    "/static/explore.css": ("explore.css", "text/css; charset=utf-8"),
}


class BadRequest(ValueError):
    """The request is wrong; its message goes back to the browser with a 400."""


def rounded(a, digits=5):
    """An array as nested lists of floats rounded for JSON (NaN/inf as None)."""
    a = np.round(np.asarray(a, dtype=np.float64), digits)
    return np.where(np.isfinite(a), a, np.nan).tolist()


def packed(a):
    """An array as the page reads it: base64 of its float32 bytes, C order. A float's
    decimal text costs ~0.5 us to write; conv1's 25,088 outputs are 100 KB this way."""
    data = np.ascontiguousarray(a, dtype="<f4").tobytes()
    return base64.b64encode(data).decode("ascii")


def as_maps(output):
    """A layer's output for the page: (H, W, C) -> "maps", C maps of H x W (channel
    first) packed; anything else -> "vector", its values packed."""
    if output.ndim == 3:
        return {"kind": "maps", "shape": list(output.shape),
                "maps": packed(np.moveaxis(output, -1, 0))}  # fmt: skip
    return {"kind": "vector", "shape": list(output.shape), "values": packed(output.reshape(-1))}


def unpacked(text, shape=None):
    """The inverse of :func:`packed` (for tests and other clients of the API)."""
    a = np.frombuffer(base64.b64decode(text), dtype="<f4")
    return a if shape is None else a.reshape(shape)


class Explorer:
    """The model and what the API computes with it (one request at a time)."""

    def __init__(self, model, samples=None):
        if not model.built:
            raise ValueError("the model must be built (it needs its input shape)")
        self.model, self.samples, self.lock = model, samples or [], threading.Lock()

    def image(self, body):
        """The request's "image" as an array of the model's input shape, values in [0, 1]."""
        shape = self.model.input_shape
        try:
            a = np.asarray(body.get("image"), dtype=np.float64)
        except (TypeError, ValueError):
            raise BadRequest("image must be a nested list of numbers") from None
        if a.shape == shape[:2] and shape[2] == 1:
            a = a[..., None]
        if a.shape != shape:
            raise BadRequest(f"image must be {shape[0]}x{shape[1]} numbers (or {shape}), "
                             f"got shape {a.shape}")  # fmt: skip
        if not np.isfinite(a).all() or a.min() < 0 or a.max() > 1:
            raise BadRequest("image values must be numbers in [0, 1]")
        return a

    def index(self, body, key, high):
        value = body.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < high:
            raise BadRequest(f"{key} must be an int in [0, {high}), got {value!r}")
        return value

    def describe(self):
        shapes = self.model.output_shapes
        return {"input_shape": list(self.model.input_shape),
                "layers": [{"name": layer.name, "type": type(layer).__name__,
                            "shape": list(shape)}
                           for layer, shape in zip(self.model.layers, shapes)]}  # fmt: skip

    def predict(self, body):
        outputs = forward_outputs(self.model, self.image(body))
        layers = [{"name": layer.name, "type": type(layer).__name__, **as_maps(out)}
                  for layer, out in zip(self.model.layers, outputs[1:])]  # fmt: skip
        probs = outputs[-1].reshape(-1)
        return {"layers": layers, "output": rounded(probs), "prediction": int(np.argmax(probs))}

    def explain(self, body):
        image = self.image(body)
        i = self.index(body, "layer", len(self.model.layers))
        shape = self.model.output_shapes[i]
        if len(shape) != 3:
            raise BadRequest(f"layer {i} ({self.model.layers[i].name}) has no feature maps")
        cell = [self.index(body, key, n) for key, n in zip(("row", "col", "channel"), shape)]
        try:
            return json_safe(explain_cell(self.model, image, i, *cell))
        except ValueError as exc:
            raise BadRequest(str(exc)) from None

    def gradients(self, body):
        image = self.image(body)
        label = self.index(body, "label", math.prod(self.model.output_shapes[-1]))
        grads = class_gradients(self.model, image, label)
        kernel = grads["kernel"]
        return {"label": label, "loss": grads["loss"], "input": as_maps(grads["input"]),
                "layers": [{"name": layer.name, **as_maps(g)}
                           for layer, g in zip(self.model.layers, grads["layers"])],
                "kernel": None if kernel is None else as_maps(kernel[:, :, 0])}  # fmt: skip

    def answer(self, path, body):
        """The JSON answer to POST ``path`` with ``body`` (a dict)."""
        routes = {"/api/predict": self.predict, "/api/explain": self.explain,
                  "/api/gradients": self.gradients}  # fmt: skip
        with self.lock:
            return routes[path](body)


def json_safe(value):
    """Floats and nested lists as JSON takes them (inf and NaN as None)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_safe(v) for v in value]
    return value


def make_handler(explorer):
    """The request handler class serving ``explorer``."""

    class Handler(BaseHTTPRequestHandler):
        server_version = "npcnn-explore"

        def log_message(self, *args):  # quiet: the terminal shows the address only
            pass

        def send(self, status, payload, content_type="application/json"):
            data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):  # noqa: N802 -- http.server's name
            if self.path in STATIC:
                name, kind = STATIC[self.path]
                text = resources.files(__package__).joinpath("static", name).read_bytes()
                return self.send(200, text, kind)
            if self.path == "/api/model":
                return self.send(200, explorer.describe())
            if self.path == "/api/samples":
                return self.send(200, {"samples": explorer.samples})
            return self.send(404, {"error": f"no such page: {self.path}"})

        def do_POST(self):  # noqa: N802
            if self.path not in ("/api/predict", "/api/explain", "/api/gradients"):
                return self.send(404, {"error": f"no such API: {self.path}"})
            try:
                body = self.read_json()
                return self.send(200, explorer.answer(self.path, body))
            except BadRequest as exc:
                return self.send(400, {"error": str(exc)})

        def read_json(self):
            try:
                length = int(self.headers.get("Content-Length", ""))
            except ValueError:
                raise BadRequest("a JSON body with a Content-Length is required") from None
            if not 0 < length <= MAX_BODY:
                raise BadRequest(f"the body must be 1 to {MAX_BODY} bytes, got {length}")
            try:
                body = json.loads(self.rfile.read(length))
            except (json.JSONDecodeError, UnicodeDecodeError):
                raise BadRequest("the body is not valid JSON") from None
            if not isinstance(body, dict):
                raise BadRequest("the body must be a JSON object")
            return body

    return Handler


def make_server(explorer, port=0):
    """A threading HTTP server for ``explorer`` on 127.0.0.1:``port`` (0: any free port)."""
    return ThreadingHTTPServer(("127.0.0.1", port), make_handler(explorer))
