"""im2col as one self-contained HTML page: point at an output, see where it came from.

The page holds everything it needs: the numbers as JSON, the style and the
script inline, no server, no network, no external file. Python computes the
numbers with the engine (``im2col``, the product); the script draws the tables
and, when the pointer rests on an output cell (n, f, oy, ox), highlights

- its receptive field in the padded input: taps ``(c, ky, kx)`` at row
  ``oy*sH + ky*dH`` and column ``ox*sW + kx*dW`` of channel ``c`` of image ``n``;
- its column ``l*N + n`` of the column matrix, ``l = oy*out_w + ox``;
- its row ``f`` of the kernels ``W2d`` and its entry ``y2d[f, l*N + n]`` of
  the product ``W2d @ cols``.

Every highlighted cell carries the class ``on``, so a browser test can read
back what the script marked. A URL ending in ``#n,f,oy,ox`` opens with that
cell chosen.
"""

from __future__ import annotations

import html
import json
import os
import secrets
from pathlib import Path

import numpy as np

from cnnumpy import functional
from cnnumpy.explain._text import arange, size_lines
from cnnumpy.explain.conv import conv_setup
from cnnumpy.validation import check_elements, check_path

__all__ = ["html_im2col"]

# A page draws every number as a table cell; beyond this the browser crawls.
MAX_CELLS = 40_000

STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.2em; color: #222; }
h1 { font-size: 1.3em; margin: 0 0 .3em; } h2 { font-size: 1.05em; margin: 1em 0 .3em; }
pre { background: #f6f6f6; padding: .5em; margin: .3em 0; }
.row { display: flex; flex-wrap: wrap; gap: 1em 2em; align-items: flex-start; }
section { max-width: 100%; }
.scroll { overflow-x: auto; max-width: 100%; }
figure { margin: 0; } figcaption { font: 12px monospace; color: #555; }
table { border-collapse: collapse; font: 12px monospace; }
td, th { border: 1px solid #ccc; padding: 1px 4px; text-align: right; }
td { min-width: 1.6em; }
th { background: #eee; font-weight: normal; color: #555; }
td.pad { background: #e4e4e4; color: #888; }
td.out { cursor: crosshair; background: #eef4ff; }
td.on { background: #ffb347; color: #000; font-weight: bold; }
td.out.on, td.prod.on { background: #e8452c; color: #fff; }
td.kern.on { background: #7fb2ff; }
#status { min-height: 2.8em; }
"""

SCRIPT = r"""
const D = JSON.parse(document.getElementById("data").textContent);
const L = D.out_h * D.out_w, K = D.C * D.kH * D.kW;
function el(tag, attrs, text) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}
function table(rows, cols, cell, rowLabel, colLabel) {
  const t = el("table");
  if (colLabel) {
    const tr = el("tr"); tr.appendChild(el("th"));
    for (let b = 0; b < cols; b++) tr.appendChild(el("th", {}, colLabel(b)));
    t.appendChild(tr);
  }
  for (let a = 0; a < rows; a++) {
    const tr = el("tr");
    if (rowLabel) tr.appendChild(el("th", {}, rowLabel(a)));
    for (let b = 0; b < cols; b++) tr.appendChild(cell(a, b));
    t.appendChild(tr);
  }
  return t;
}
function figure(where, caption, t) {
  const f = el("figure"); f.appendChild(el("figcaption", {}, caption));
  const s = el("div", {class: "scroll"}); s.appendChild(t); f.appendChild(s);
  document.getElementById(where).appendChild(f);
}
const Hp = D.H + 2 * D.pH, Wp = D.W + 2 * D.pW;
for (let n = 0; n < D.N; n++) for (let c = 0; c < D.C; c++)
  figure("input", `x_padded[${n}, ${c}]`, table(Hp, Wp, (i, j) => {
    const pad = i < D.pH || i >= D.pH + D.H || j < D.pW || j >= D.pW + D.W;
    return el("td", {class: pad ? "in pad" : "in", "data-n": n, "data-c": c,
                     "data-i": i, "data-j": j}, D.x_padded[n][c][i][j]);
  }));
const tap = r => { const c = Math.floor(r / (D.kH * D.kW)), q = r % (D.kH * D.kW);
                   return [c, Math.floor(q / D.kW), q % D.kW]; };
const win = k => { const l = Math.floor(k / D.N);
                   return [k % D.N, Math.floor(l / D.out_w), l % D.out_w]; };
const tapLabel = r => tap(r).join(",");
const winLabel = k => { const [n, oy, ox] = win(k); return `${oy},${ox} ${n}`; };
figure("cols",
  `cols = im2col(x), shape (${K}, ${L * D.N}); rows (c,ky,kx), columns (oy,ox) n`,
  table(K, L * D.N,
        (r, k) => el("td", {class: "col", "data-r": r, "data-k": k}, D.cols[r][k]),
        tapLabel, winLabel));
figure("kernels", `W2d = weight.reshape(F, C*kH*kW), shape (${D.F}, ${K})`,
  table(D.F, K,
        (f, r) => el("td", {class: "kern", "data-f": f, "data-r": r}, D.w2d[f][r]),
        f => `f=${f}`, tapLabel));
figure("product", `y2d = W2d @ cols, shape (${D.F}, ${L * D.N})`,
  table(D.F, L * D.N, (f, k) => {
    const [n, oy, ox] = win(k);
    return el("td", {class: "prod out", "data-f": f, "data-k": k, "data-n": n,
                     "data-oy": oy, "data-ox": ox}, D.y2d[f][k]);
  }, f => `f=${f}`, winLabel));
for (let n = 0; n < D.N; n++) for (let f = 0; f < D.F; f++)
  figure("output", `y[${n}, ${f}]`, table(D.out_h, D.out_w, (oy, ox) =>
    el("td", {class: "yout out", "data-n": n, "data-f": f, "data-oy": oy,
              "data-ox": ox}, D.y2d[f][(oy * D.out_w + ox) * D.N + n])));

function cells(selector) { return Array.from(document.querySelectorAll(selector)); }
function choose(n, f, oy, ox) {
  cells(".on").forEach(e => e.classList.remove("on"));
  const l = oy * D.out_w + ox, k = l * D.N + n;
  for (let r = 0; r < K; r++) {
    const [c, ky, kx] = tap(r);
    const i = oy * D.sH + ky * D.dH, j = ox * D.sW + kx * D.dW;
    cells(`td.in[data-n="${n}"][data-c="${c}"][data-i="${i}"][data-j="${j}"]`)
      .forEach(e => e.classList.add("on"));
  }
  cells(`td.col[data-k="${k}"]`).forEach(e => e.classList.add("on"));
  cells(`td.kern[data-f="${f}"]`).forEach(e => e.classList.add("on"));
  cells(`td.prod[data-f="${f}"][data-k="${k}"]`).forEach(e => e.classList.add("on"));
  cells(`td.yout[data-n="${n}"][data-f="${f}"][data-oy="${oy}"][data-ox="${ox}"]`)
    .forEach(e => e.classList.add("on"));
  const taps = cells("td.in.on").length, column = cells("td.col.on").length;
  document.getElementById("status").textContent =
    `y[${n}, ${f}, ${oy}, ${ox}] = W2d[${f}] · cols[:, ${k}] = ${D.y2d[f][k]}: ` +
    `window (${oy}, ${ox}) of image ${n} starts at row ${oy}*${D.sH} = ` +
    `${oy * D.sH}, column ${ox}*${D.sW} = ${ox * D.sW} of x_padded; its ${taps} ` +
    `taps (step ${D.dH}, ${D.dW}) are column ${k} = ${l}*${D.N} + ${n} of cols ` +
    `(${column} cells).`;
}
document.addEventListener("mouseover", event => {
  const t = event.target.closest && event.target.closest("td.out");
  if (t) choose(+t.dataset.n, +t.dataset.f, +t.dataset.oy, +t.dataset.ox);
});
const wanted = location.hash.slice(1).split(",").map(Number);
if (wanted.length === 4 && wanted.every(Number.isInteger)) choose(...wanted);
"""


def html_im2col(
    path: str | os.PathLike,
    input_shape: tuple[int, int, int, int],
    kernel_shape: tuple[int, int, int, int],
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] | str = 0,
    dilation: int | tuple[int, int] = 1,
) -> None:
    """Write im2col as one self-contained HTML page that answers to the pointer.

    Hovering an output cell (n, f, oy, ox), of ``y`` or of the product,
    highlights its receptive field in the padded input, its column of the
    column matrix, its row of the kernels and its entry of the product. The
    inputs are aranges, as in :func:`~cnnumpy.explain.explain_im2col`.

    Parameters
    ----------
    path : str or PathLike
        The file to write (``.html`` or ``.htm``), atomically.
    input_shape, kernel_shape, stride, padding, dilation
        As in :func:`~cnnumpy.explain.explain_im2col`.

    Raises
    ------
    TypeError, ValueError
        As :func:`~cnnumpy.explain.explain_im2col`; a path not ending in
        ``.html``/``.htm``; more than ``MAX_CELLS`` numbers to draw.
    """
    path = Path(check_path(path, "path"))
    if path.suffix.lower() not in (".html", ".htm"):
        raise ValueError(f"`path` must end in .html or .htm, got {str(path)!r}")
    xs, ws, geom = conv_setup(input_shape, kernel_shape, stride, padding, dilation)
    (N, C, H, W), (F, _, kH, kW) = xs, ws
    (out_h, out_w), (ph, pw) = geom.out, geom.padding
    K, L = C * kH * kW, out_h * out_w
    cells = N * C * (H + 2 * ph) * (W + 2 * pw) + (K + F) * L * N + F * K + N * F * L
    check_elements(cells, "input_shape", MAX_CELLS)
    args = ((kH, kW), stride, padding, dilation)
    x, weight = arange(xs), arange(ws)
    cols = functional.im2col(x, *args)  # (C*kH*kW, L*N)
    w2d = weight.reshape(F, K)
    data = {
        **dict(N=N, C=C, H=H, W=W, F=F, kH=kH, kW=kW, out_h=out_h, out_w=out_w),
        **dict(zip(("sH", "sW"), geom.stride)),
        **dict(zip(("pH", "pW"), geom.padding)),
        **dict(zip(("dH", "dW"), geom.dilation)),
        "x_padded": _ints(np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))),
        "cols": _ints(cols),
        "w2d": _ints(w2d),
        "y2d": _ints(w2d @ cols),  # (F, L*N)
    }
    title = f"im2col: input {xs}, kernel {ws}"
    sizes = "\n".join(size_lines((H, W), geom))
    numbers = json.dumps(data, separators=(",", ":"))
    page = f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{html.escape(title)}</title>
<style>{STYLE}</style>
</head>
<body>
<h1>{html.escape(title)}</h1>
<p>stride {geom.stride}, padding {geom.padding}, dilation {geom.dilation};
x = arange(N*C*H*W), weight = arange(F*C*kH*kW). Rest the pointer on an output
cell (the blue cells of y or of the product): its receptive field lights up in
the padded input, its column in the column matrix, its kernel row and its
entry in the product. Grey cells are padding.</p>
<pre>{html.escape(sizes)}</pre>
<p id="status">Point at an output cell.</p>
<div class="row">
<section><h2>Output y = y2d reshaped to (N, F, out_h, out_w)</h2>
<div class="row" id="output"></div></section>
<section><h2>Padded input x_padded (N, C, H + 2*pH, W + 2*pW)</h2>
<div class="row" id="input"></div></section>
</div>
<div class="row">
<section><h2>Column matrix: column (oy*out_w + ox)*N + n is window (oy, ox)
of image n</h2>
<div id="cols"></div></section>
<section><h2>The product y2d = W2d @ cols</h2>
<div id="kernels"></div><div id="product"></div></section>
</div>
<script id="data" type="application/json">{numbers}</script>
<script>{SCRIPT}</script>
</body>
</html>
"""
    _write_text(path, page)


def _ints(a: np.ndarray) -> list:
    """An array of whole numbers as nested lists of Python ints (short JSON)."""
    return a.astype(np.int64).tolist()


def _write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically: a temporary file, then a rename."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
