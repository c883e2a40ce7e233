"""The im2col HTML page, in a real browser: headless Chromium.

The test copies the page with one more script at its end, which dispatches a
``mouseover`` on a chosen output cell; ``chromium --headless --dump-dom`` prints
the DOM after the page's own script has reacted. The cells the page marked
``on`` must be exactly the receptive field that ``im2col_indices`` gives, the
column ``l*N + n`` of the column matrix, the kernel row and the product entry.
``make test`` installs Debian's ``chromium`` where it can; elsewhere the
browser tests are skipped with a message.
"""

from __future__ import annotations

import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from cnnumpy import cli, functional
from cnnumpy.explain import html_im2col
from cnnumpy.functional import im2col_indices

CHROMIUM = next(
    (p for p in map(shutil.which, ("chromium", "chromium-browser")) if p), None
)
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None,
    reason="no chromium on PATH: `make test` installs Debian's chromium when run "
    "as root with apt-get; or `apt-get install chromium`",
)

# (input, kernel, stride, padding, dilation, the output cell (n, f, oy, ox))
SHAPES = {
    "stride 2, padding 1": ((1, 2, 5, 5), (2, 2, 3, 3), 2, 1, 1, (0, 1, 1, 1)),
    "two images, uneven": (
        (2, 3, 6, 7), (2, 3, 3, 2), (2, 1), (1, 2), (2, 1), (1, 0, 1, 8)
    ),
    "stride 3, dilation 2": ((1, 1, 7, 7), (1, 1, 3, 3), 3, 2, 2, (0, 0, 1, 2)),
    "plain, batch of three": ((3, 1, 4, 4), (2, 1, 2, 2), 1, 0, 1, (2, 1, 2, 0)),
}  # fmt: skip


class Cells(HTMLParser):
    """Every ``td`` of the page: its classes, data attributes and text."""

    def __init__(self) -> None:
        super().__init__()
        self.cells: list[dict] = []

    def handle_starttag(self, tag, attrs):
        if tag == "td":
            a = dict(attrs)
            data = {k[5:]: int(v) for k, v in a.items() if k.startswith("data-")}
            self.cells.append({"class": set(a.get("class", "").split()), **data})

    def handle_data(self, text):
        if self.cells and "text" not in self.cells[-1]:
            self.cells[-1]["text"] = text


def dump_dom(page: Path, url_suffix: str = "") -> list[dict]:
    profile = page.parent / "profile"
    result = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
         "--no-first-run", f"--user-data-dir={profile}", "--dump-dom",
         page.as_uri() + url_suffix],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    parser = Cells()
    parser.feed(result.stdout)
    assert parser.cells, "chromium printed no table cells"
    return parser.cells


def hover(page: Path, selector: str) -> list[dict]:
    """The page's cells after a mouseover on the cell ``selector`` finds."""
    script = (
        "<script>document.querySelector('" + selector + "').dispatchEvent("
        "new MouseEvent('mouseover', {bubbles: true}));</script>"
    )
    hovered = page.with_name("hovered.html")
    hovered.write_text(page.read_text().replace("</body>", script + "\n</body>"))
    return dump_dom(hovered)


def on(cells: list[dict], kind: str) -> list[dict]:
    return [c for c in cells if kind in c["class"] and "on" in c["class"]]


def check_highlights(cells, shape) -> None:
    xs, ws, stride, padding, dilation, (n, f, oy, ox) = shape
    N, C = xs[:2]
    F, _, kH, kW = ws
    d, i, j = im2col_indices(xs, (kH, kW), stride, padding, dilation)
    out_w = len({c["ox"] for c in cells if "yout" in c["class"]})
    l = oy * out_w + ox
    K = C * kH * kW
    # The receptive field: exactly the K taps of window l of image n.
    field = {(c["n"], c["c"], c["i"], c["j"]) for c in on(cells, "in")}
    expected = {(n, d[r, 0], i[r, l], j[r, l]) for r in range(K)}
    assert field == expected and len(on(cells, "in")) == K
    # Its column: l*N + n, every row, holding the values of that field.
    column = sorted(on(cells, "col"), key=lambda c: c["r"])
    assert {c["k"] for c in column} == {l * N + n}
    assert [c["r"] for c in column] == list(range(K))
    x = np.arange(np.prod(xs), dtype=np.float64).reshape(xs)
    ph, pw = (padding, padding) if np.ndim(padding) == 0 else padding
    x_padded = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    cols = functional.im2col(x, (kH, kW), stride, padding, dilation)
    values = [float(c["text"]) for c in column]
    assert values == x_padded[n, d[:, 0], i[:, l], j[:, l]].tolist()
    assert values == cols[:, l * N + n].tolist()
    # Its kernel row and its entry of the product, and the output cell itself.
    assert sorted(c["r"] for c in on(cells, "kern")) == list(range(K))
    assert {c["f"] for c in on(cells, "kern")} == {f}
    assert [(c["f"], c["k"]) for c in on(cells, "prod")] == [(f, l * N + n)]
    y = on(cells, "yout")
    assert [(c["n"], c["f"], c["oy"], c["ox"]) for c in y] == [(n, f, oy, ox)]
    w2d = np.arange(np.prod(ws), dtype=np.float64).reshape(F, -1)
    assert float(y[0]["text"]) == w2d[f] @ cols[:, l * N + n]


@needs_chromium
@pytest.mark.parametrize("name", SHAPES)
def test_hover_highlights_the_receptive_field_and_column(tmp_path, name):
    shape = SHAPES[name]
    page = tmp_path / "im2col.html"
    html_im2col(page, *shape[:5])
    n, f, oy, ox = shape[5]
    cells = hover(
        page,
        f'td.yout[data-n="{n}"][data-f="{f}"][data-oy="{oy}"][data-ox="{ox}"]',
    )
    check_highlights(cells, shape)


@needs_chromium
def test_hover_on_the_product_and_a_link_to_a_cell(tmp_path):
    shape = SHAPES["two images, uneven"]
    page = tmp_path / "im2col.html"
    html_im2col(page, *shape[:5])
    n, f, oy, ox = shape[5]
    k = (oy * 10 + ox) * 2 + n  # out_w = 10, N = 2
    check_highlights(hover(page, f'td.prod[data-f="{f}"][data-k="{k}"]'), shape)
    check_highlights(dump_dom(page, f"#{n},{f},{oy},{ox}"), shape)
    before = dump_dom(page)  # nothing chosen until the pointer comes
    assert not any("on" in c["class"] for c in before)


def test_page_is_self_contained(tmp_path):
    page = tmp_path / "p.html"
    html_im2col(page, (1, 2, 4, 4), (1, 2, 2, 2), padding=1)
    text = page.read_text()
    assert text.startswith("<!DOCTYPE html>")
    for outside in ("http:", "https:", "src=", "<link", "@import", "url("):
        assert outside not in text
    assert '<script id="data" type="application/json">{"N":1,"C":2,' in text
    assert [p.name for p in tmp_path.iterdir()] == ["p.html"]


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"path": "p.png"}, ValueError, r"`path` must end in .html or .htm"),
        ({"path": 3}, TypeError, r"`path` must be a path"),
        ({"input_shape": (1, 1, 300, 300)}, ValueError,
         r"`input_shape` asks for [\d,]+ elements, more than the 40,000"),
        ({"kernel_shape": (1, 2, 3, 3)}, ValueError, r"C=1 channels, got 2"),
        ({"padding": "same"}, ValueError, r"'same'"),
    ],
)  # fmt: skip
def test_page_errors_write_nothing(tmp_path, kwargs, error, match):
    args = {"path": "p.html", "input_shape": (1, 1, 4, 4), "kernel_shape": (1, 1, 3, 3)}
    args |= kwargs
    if isinstance(args["path"], str):
        args["path"] = tmp_path / args["path"]
    with pytest.raises(error, match=match):
        html_im2col(**args)
    assert list(tmp_path.iterdir()) == []


def test_cli_html(tmp_path, capsys):
    page = tmp_path / "page.html"
    args = ["explain", "im2col", "--input", "1,1,4,4", "--kernel", "1,1,3,3"]
    assert cli.main([*args, "--dilation", "1", "--html", str(page)]) == 0
    out = capsys.readouterr().out
    assert out.endswith(f"Page written to {page}: open it in a browser and point "
                        "at an output\n")  # fmt: skip
    assert "<td" not in page.read_text()  # the script draws the cells
    assert cli.main([*args, "--layout", "nhwc", "--html", str(page)]) == 2
    assert capsys.readouterr().err == (
        "cnnumpy: error: --plot and --html draw the NCHW layout: leave out --layout\n"
    )
