"""cnnumpy.explain's worked examples, checked by hand, and the ``cnnumpy`` command line.

The command line runs as a real subprocess (``python -m cnnumpy.cli`` and the
installed ``cnnumpy`` script): exit status, stdout and stderr are what a user sees.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cnnumpy import cli
from cnnumpy.explain import (
    explain_col2im,
    explain_conv_backward,
    explain_conv_transpose,
    explain_im2col,
    explain_pool,
)
from test_im2col_indices import COLS_ROW0_HAND, D_HAND, I_HAND, J_HAND

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
HAS_MATPLOTLIB = importlib.util.find_spec("matplotlib") is not None


def printed(text: str, title: str) -> np.ndarray:
    """The matrix printed under the line starting with ``title`` (2-D or 1-D)."""
    lines = text.splitlines()
    at = next(k for k, line in enumerate(lines) if line.startswith(title))
    shape = tuple(
        int(v)
        for v in re.search(r"shape \(([\d, ]+)\):$", lines[at])[1].split(",")
        if v
    )
    n_rows = shape[0] if len(shape) == 2 else 1
    rows = [
        [float(v) for v in line.split(" ")] for line in lines[at + 1 : at + 1 + n_rows]
    ]
    return np.array(rows).reshape(shape)


# --- the example: input (1, 3, 4, 4), kernel (2, 3, 2, 2) ----------------------


@pytest.fixture(scope="module")
def example() -> str:
    return explain_im2col((1, 3, 4, 4), (2, 3, 2, 2))


def test_example_index_matrices(example):
    lines = example.splitlines()
    at = lines.index("i = i0[:, None] + i1[None, :], shape (12, 9):")
    assert lines[at + 1] == "0 0 0 1 1 1 2 2 2"
    assert lines[at + 3] == "1 1 1 2 2 2 3 3 3"
    np.testing.assert_array_equal(printed(example, "i = "), I_HAND)
    np.testing.assert_array_equal(printed(example, "j = "), J_HAND)
    np.testing.assert_array_equal(printed(example, "d = "), D_HAND)
    assert "j = j0[:, None] + j1[None, :], shape (12, 9):" in lines
    assert (
        "d = repeat(arange(C), kH*kW)[:, None]: tap channels, shape (12, 1):" in lines
    )
    np.testing.assert_array_equal(printed(example, "i0 = "), [0, 0, 1, 1] * 3)
    np.testing.assert_array_equal(printed(example, "j1 = "), [0, 1, 2] * 3)


def test_example_sizes_columns_and_product(example):
    lines = example.splitlines()
    assert "  out_h = floor((4 + 2*0 - 1*(2 - 1) - 1) / 1) + 1 = 3" in lines
    assert "  out_w = floor((4 + 2*0 - 1*(2 - 1) - 1) / 1) + 1 = 3" in lines
    cols = printed(example, "cols, shape")
    assert cols.shape == (12, 9)
    assert cols[0].tolist() == COLS_ROW0_HAND
    assert cols[11].tolist() == [37, 38, 39, 41, 42, 43, 45, 46, 47]
    w2d = printed(example, "Kernels flattened")
    np.testing.assert_array_equal(w2d, np.arange(24).reshape(2, 12))
    y2d = printed(example, "y2d = W2d @ cols")
    # By hand: y2d[0, 0] = sum_r r * cols[r, 0] = 0*0 + 1*1 + 2*4 + 3*5 + 4*16 + ...
    assert y2d[0, 0] == sum(r * v for r, v in enumerate(cols[:, 0])) == 1760
    np.testing.assert_array_equal(y2d, w2d @ cols)
    assert (
        "y = y2d.reshape(F, out_h, out_w, N).transpose(3, 0, 1, 2), shape (1, 2, 3, 3):"
        in lines
    )
    at = lines.index("y[0, 1]:")
    assert lines[at + 1 : at + 4] == [
        "4424 4634 4844",
        "5264 5474 5684",
        "6104 6314 6524",
    ]
    assert lines[-1] == "Check: y against cnnumpy.reference.conv2d: equal: True"


def test_im2col_with_padding_shows_the_padded_input():
    text = explain_im2col((2, 1, 3, 3), (1, 1, 3, 3), stride=2, padding=1)
    assert "  out_h = floor((3 + 2*1 - 1*(3 - 1) - 1) / 2) + 1 = 2" in text
    lines = text.splitlines()
    assert "x_padded (zeros around x), shape (2, 1, 5, 5):" in lines
    at = lines.index("x_padded[1, 0]:")
    assert lines[at + 1 : at + 3] == ["0 0 0 0 0", "0 9 10 11 0"]
    # Two images: column l*N + n, so image 1 of window 0 is column 1.
    cols = printed(text, "cols, shape")
    assert cols.shape == (9, 8)
    assert cols[4].tolist() == [0, 9, 2, 11, 6, 15, 8, 17]  # the centre tap
    assert lines[-1].endswith("equal: True")


def test_col2im_overlap_map_and_fold():
    text = explain_col2im((1, 1, 4, 4), (1, 1, 2, 2))
    counts = printed(text, "Overlap map")
    np.testing.assert_array_equal(
        counts, [[1, 2, 2, 1], [2, 4, 4, 2], [2, 4, 4, 2], [1, 2, 2, 1]]
    )
    lines = text.splitlines()
    at = lines.index("folded[0, 0]:")
    # Every pixel times the number of windows over it: x = arange(16).
    assert lines[at + 1 : at + 3] == ["0 2 4 3", "8 20 24 14"]
    assert "Check: folded against counts * x: equal: True" in lines
    assert "Check: col2im_by_index (np.add.at) against col2im: equal: True" in lines
    assert lines[-1].endswith("equal: True")


def test_col2im_overlap_map_with_stride():
    # Kernel 3, stride 2 over 5 pixels: windows at 0..2 and 2..4 share pixel 2.
    counts = printed(
        explain_col2im((1, 2, 5, 5), (3, 2, 3, 3), stride=2), "Overlap map"
    )
    row = [1, 1, 2, 1, 1]
    np.testing.assert_array_equal(counts, np.outer(row, row))


def test_conv_backward_products():
    text = explain_conv_backward((1, 1, 3, 3), (2, 1, 2, 2))
    lines = text.splitlines()
    x, w = np.arange(9.0).reshape(3, 3), np.arange(8.0).reshape(2, 2, 2)
    dout = np.arange(8.0).reshape(2, 2, 2)
    # dW[f, ky, kx] = sum over outputs of dout[f, oy, ox] * x[oy + ky, ox + kx].
    dw = [[[np.sum(dout[f] * x[a : a + 2, b : b + 2]) for b in (0, 1)] for a in (0, 1)]
          for f in (0, 1)]  # fmt: skip
    np.testing.assert_array_equal(
        printed(text, "dW2d = dout2d @ cols.T"), np.reshape(dw, (2, 4))
    )
    np.testing.assert_array_equal(printed(text, "db = "), [6, 22])
    dx = np.zeros((3, 3))
    for f in (0, 1):
        for oy in (0, 1):
            for ox in (0, 1):
                dx[oy : oy + 2, ox : ox + 2] += dout[f, oy, ox] * w[f]
    at = lines.index("dx[0, 0]:")
    assert [line.split() for line in lines[at + 1 : at + 4]] == [
        [str(int(v)) for v in row] for row in dx
    ]
    assert "dX_col = W2d.T @ dout2d, (C*kH*kW, F) @ (F, L*N), shape (4, 4):" in lines
    assert (
        "Check: dx, dW, db against cnnumpy.reference.conv2d_backward: equal: True"
    ) in lines
    # The second view: dout padded by 1 and correlated with the rotated kernels.
    at = lines.index("rot[0, 1]:")  # kernel 1 = [[4, 5], [6, 7]] turned around
    assert lines[at + 1 : at + 3] == ["7 6", "5 4"]
    at = lines.index("dx_full[0, 0]:")
    assert [line.split() for line in lines[at + 1 : at + 4]] == [
        [str(int(v)) for v in row] for row in dx
    ]
    assert lines[-1] == "Check: dx_full against col2im's dx: equal: True"


@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("padding", [0, 1])
@pytest.mark.parametrize("dilation", [1, 2])
def test_conv_backward_full_convolution_equals_col2im(stride, padding, dilation):
    # 6x7 with kernel 3 and stride 2 leaves a trailing row no window reads.
    text = explain_conv_backward(
        (2, 2, 6, 7), (3, 2, 3, 2), stride=stride, padding=padding, dilation=dilation
    )
    lines = text.splitlines()
    assert lines[-1] == "Check: dx_full against col2im's dx: equal: True"
    assert ("dout_dilated, shape (2, 3, " in text) == (stride > 1)
    assert ("kernel_dilated, shape (3, 2, " in text) == (dilation > 1)
    kdH = dilation * 2 + 1
    assert f"stride 1, padding ({kdH - 1}, {dilation + 1 - 1})" in text


def test_pool_max_winners_and_routing():
    text = explain_pool((1, 1, 4, 4), 2, kind="max")
    lines = text.splitlines()
    # x = (k * 7) mod 16: rows 0 7 14 5 / 12 3 10 1 / 8 15 6 13 / 4 11 2 9.
    assert "y[0, 0, 0, 0] = max(0 7 12 3) = 12, from x[0, 0, 1, 0]" in lines
    assert "y[0, 0, 1, 0] = max(8 15 4 11) = 15, from x[0, 0, 2, 1]" in lines
    assert "dy[0, 0, 1, 1] = 4 -> dx[0, 0, 2, 3]" in lines
    at = lines.index("dx[0, 0]:")
    assert lines[at + 1 : at + 5] == ["0 0 2 0", "1 0 0 0", "0 3 0 4", "0 0 0 0"]
    assert lines[-1] == "Check: y, dx against cnnumpy.reference.max_pool2d: equal: True"


def test_pool_avg_divisor_counts_padding():
    text = explain_pool((1, 1, 2, 2), 2, stride=1, padding=1, kind="avg")
    lines = text.splitlines()
    assert "y[0, 0, 0, 0] = (0 + 0 + 0 + 0) / 4 = 0" in lines
    assert "y[0, 0, 1, 1] = (0 + 1 + 2 + 3) / 4 = 1.5" in lines
    assert (
        "dy[0, 0, 0, 1] = 2 -> 2/4 = 0.5 to each of x_padded[0, 0, 0:2, 1:3]" in lines
    )
    assert any("divided by kH*kW = 4, always" in line for line in lines)
    assert lines[-1] == "Check: y, dx against cnnumpy.reference.avg_pool2d: equal: True"


def test_large_matrices_are_capped():
    text = explain_im2col((1, 1, 28, 28), (1, 1, 3, 3))
    assert "cols, shape (9, 676):" in text
    assert "... (7 more rows not shown, 6084 numbers in all)" in text
    assert max(len(line.split()) for line in text.splitlines()) <= 2000
    assert text.splitlines()[-1].endswith("equal: True")


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: explain_im2col((1, 3, 4, 4), (2, 2, 2, 2)), ValueError,
         r"`kernel_shape` must have the input's C=3 channels, got 2"),
        (lambda: explain_im2col((1, 3, 4, 4), (2, 3, 5, 5)), ValueError,
         r"`kernel_shape` \(=\(5, 5\).*larger than the padded input"),
        (lambda: explain_col2im((1, 3, 4), (2, 3, 2, 2)), ValueError,
         r"`input_shape` must be 4 positive ints"),
        (lambda: explain_conv_backward((1, 3, 4, 4), (0, 3, 2, 2)), ValueError,
         r"`kernel_shape` must be 4 positive ints"),
        (lambda: explain_im2col((1, 1, 4, 4), (1, 1, 2, 2), padding="same"),
         ValueError, r"`padding`.*'same'"),
        (lambda: explain_pool((1, 1, 4, 4), 2, kind="min"), ValueError,
         r"`kind` must be 'max' or 'avg', got 'min'"),
        (lambda: explain_pool((1, 1, 4, 4), 2, padding=2), ValueError,
         r"`padding` \(=2\) must be at most half"),
    ],
)  # fmt: skip
def test_explain_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()


# --- the command line -----------------------------------------------------------------

EXAMPLE_ARGS = ["explain", "im2col", "--input", "1,3,4,4", "--kernel", "2,3,2,2"]
BAD_INPUTS = {
    "malformed shape": ["explain", "im2col", "--input", "1,3,4", "--kernel", "2,3,2,2"],
    "not a number": ["explain", "col2im", "--input", "1,3,x,4", "--kernel", "2,3,2,2"],
    "non-positive size": ["explain", "im2col", "--input", "1,0,4,4", "--kernel", "1,1,2,2"],
    "channel mismatch": ["explain", "im2col", "--input", "1,3,4,4", "--kernel", "2,2,2,2"],
    "kernel too large": ["explain", "conv-backward", "--input", "1,1,4,4", "--kernel",
                         "1,1,3,3", "--dilation", "2"],
    "stride zero": [*EXAMPLE_ARGS, "--stride", "0"],
    "three strides": [*EXAMPLE_ARGS, "--stride", "1,2,3"],
    "unknown topic": ["explain", "frobnicate"],
    "unknown command": ["frobnicate"],
    "no command": [],
    "pool padding": ["explain", "pool", "--input", "1,1,4,4", "--kernel-size", "2",
                     "--padding", "2", "--kind", "max"],
    "pool kind": ["explain", "pool", "--input", "1,1,4,4", "--kernel-size", "2",
                  "--kind", "min"],
}  # fmt: skip


def run(args: list[str], cwd: Path, env: dict[str, str] | None = None, exe=None):
    command = [*(exe or [sys.executable, "-m", "cnnumpy.cli"]), *args]
    return subprocess.run(
        command, capture_output=True, text=True, cwd=cwd, env=env, timeout=120
    )


def test_cli_example(tmp_path):
    result = run(EXAMPLE_ARGS, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert result.stdout == explain_im2col((1, 3, 4, 4), (2, 3, 2, 2)) + "\n"
    assert "0 0 0 1 1 1 2 2 2" in result.stdout.splitlines()


def test_cli_pool(tmp_path):
    args = ["explain", "pool", "--input", "1,1,4,4", "--kernel-size", "2", "--kind"]
    result = run([*args, "avg", "--stride", "1,2"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == explain_pool((1, 1, 4, 4), 2, (1, 2), 0, "avg") + "\n"


@pytest.mark.parametrize("args", BAD_INPUTS.values(), ids=BAD_INPUTS.keys())
def test_cli_bad_input(tmp_path, args):
    result = run(args, tmp_path)
    assert result.returncode == 2
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    assert len(result.stderr.splitlines()) == 1
    assert result.stderr.startswith("cnnumpy: error: ")


def test_cli_main_in_process(capsys):
    assert cli.main(["explain", "conv-backward", "--input", "1,1,3,3", "--kernel",
                     "1,1,2,2", "--padding", "1,0"]) == 0  # fmt: skip
    assert capsys.readouterr().out.splitlines()[-1].endswith("equal: True")
    assert (
        cli.main(["explain", "im2col", "--input", "1,2,3,3", "--kernel", "1,3,1,1"])
        == 2
    )
    err = capsys.readouterr().err
    assert err == (
        "cnnumpy: error: `kernel_shape` must have the input's C=2 channels, got 3 "
        "(kernel_shape=(1, 3, 1, 1), input_shape=(1, 2, 3, 3))\n"
    )
    assert cli.main(["--help"]) == 0
    assert "explain" in capsys.readouterr().out


def test_console_script(tmp_path):
    script = Path(sys.executable).with_name("cnnumpy")
    exe = str(script) if script.exists() else shutil.which("cnnumpy")
    if exe is None:
        pytest.skip("the cnnumpy console script is not installed")
    result = run(EXAMPLE_ARGS, tmp_path, exe=[exe])
    assert result.returncode == 0, result.stderr
    assert "Check: y against cnnumpy.reference.conv2d: equal: True" in result.stdout
    result = run(BAD_INPUTS["channel mismatch"], tmp_path, exe=[exe])
    assert result.returncode == 2
    assert result.stderr.startswith("cnnumpy: error: `kernel_shape`")
    assert len(result.stderr.splitlines()) == 1


def test_core_does_not_import_matplotlib(tmp_path):
    code = (
        "import sys, cnnumpy, cnnumpy.cli, cnnumpy.explain, cnnumpy.explain.plots; "
        "print('matplotlib' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path
    )
    assert result.stdout == "False\n", result.stderr


@pytest.mark.skipif(not HAS_MATPLOTLIB, reason="matplotlib is not installed")
def test_cli_plot_writes_png(tmp_path):
    png = tmp_path / "im2col.png"
    result = run([*EXAMPLE_ARGS, "--padding", "1", "--plot", str(png)], tmp_path)
    assert result.returncode == 0, result.stderr
    assert png.stat().st_size > 1000
    assert png.read_bytes()[:8] == PNG_SIGNATURE
    assert result.stdout.endswith(f"Plot written to {png}\n")


def test_cli_plot_without_matplotlib(tmp_path):
    # A matplotlib package that fails to import stands in for a missing one.
    (tmp_path / "matplotlib").mkdir()
    (tmp_path / "matplotlib" / "__init__.py").write_text(
        "raise ImportError('absent')\n"
    )
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    png = tmp_path / "im2col.png"
    result = run([*EXAMPLE_ARGS, "--plot", str(png)], tmp_path, env=env)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr == (
        "cnnumpy: error: plotting needs matplotlib: pip install 'cnnumpy[plot]'\n"
    )
    assert not png.exists()


def test_cli_conv_backward_prints_the_full_convolution(capsys):
    args = ["explain", "conv-backward", "--input", "1,2,5,5", "--kernel", "2,2,3,3"]
    assert cli.main([*args, "--stride", "2", "--padding", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "dout_dilated, shape (1, 2, 5, 5):" in lines  # 3x3, one zero between
    assert lines[-1] == "Check: dx_full against col2im's dx: equal: True"


# --- conv-transpose --------------------------------------------------------------------


def test_conv_transpose_spreads_each_pixel_over_its_window():
    # Stride 2, kernel 2: windows do not overlap, so y is every x times the kernel.
    text = explain_conv_transpose((1, 1, 2, 2), (1, 1, 2, 2), stride=2)
    lines = text.splitlines()
    assert "  out_h = (2 - 1)*2 - 2*0 + 1*(2 - 1) + 0 + 1 = 4" in lines
    cols = printed(text, "cols, (F*kH*kW, C)")
    np.testing.assert_array_equal(cols, np.outer(np.arange(4), np.arange(4)))
    np.testing.assert_array_equal(printed(text, "Overlap map"), np.ones((4, 4)))
    at = lines.index("y[0, 0]:")
    y = np.array([[float(v) for v in line.split()] for line in lines[at + 1 : at + 5]])
    w = np.arange(4.0).reshape(2, 2)
    np.testing.assert_array_equal(y, np.kron(np.arange(4.0).reshape(2, 2), w))
    assert lines[-1] == (
        "Check: <conv2d(z, W), x> against <z, conv_transpose2d(x, W)>: equal: True"
    )


def test_conv_transpose_adds_where_windows_overlap():
    text = explain_conv_transpose((1, 1, 2, 2), (1, 2, 3, 3))
    counts = printed(text, "Overlap map")
    np.testing.assert_array_equal(counts, np.outer([1, 2, 2, 1], [1, 2, 2, 1]))
    lines = text.splitlines()
    x, w = np.arange(4.0).reshape(2, 2), np.arange(18.0).reshape(2, 3, 3)
    y = np.zeros((2, 4, 4))
    for h in (0, 1):
        for v in (0, 1):
            y[:, h : h + 3, v : v + 3] += x[h, v] * w
    at = lines.index("y[0, 1]:")
    assert [line.split() for line in lines[at + 1 : at + 5]] == [
        [str(int(v)) for v in row] for row in y[1]
    ]
    # The two sides of the adjoint identity, by hand with z = arange.
    z = np.arange(32.0).reshape(2, 4, 4)
    assert f"  <z, conv_transpose2d(x, W)> = sum(z * y) = {int(np.sum(z * y))}" in lines
    assert (
        "Check: y, functional.conv_transpose2d against "
        "cnnumpy.reference.conv_transpose2d: equal: True"
    ) in lines


@pytest.mark.parametrize("stride", [1, 2, 3])
@pytest.mark.parametrize("padding", [0, 1])
@pytest.mark.parametrize("dilation", [1, 2])
def test_conv_transpose_checks_hold(stride, padding, dilation):
    output_padding = (stride - 1, max(stride, dilation) - 1)
    text = explain_conv_transpose(
        (2, 2, 3, 2), (2, 3, 3, 2), stride, padding, dilation, output_padding
    )
    lines = text.splitlines()
    assert lines[-1].endswith("equal: True")
    assert sum(line.endswith("equal: True") for line in lines) == 2
    assert ("x is\npadded with zeros" in text) == (output_padding[1] >= stride)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"kernel_shape": (2, 1, 2, 2)}, ValueError,
         r"`kernel_shape` must start with the input's C=1 channels, got 2"),
        ({"padding": "same"}, TypeError, r"`padding` must be an int or a pair"),
        ({"output_padding": 1}, ValueError, r"`output_padding` \(=1\) must be smaller"),
        ({"stride": 0}, ValueError, r"`stride` must be >= 1"),
        ({"input_shape": (1, 1, 2)}, ValueError, r"`input_shape` must be 4 positive"),
        ({"padding": 3}, ValueError, r"`padding` \(=3\) is too large"),
    ],
)  # fmt: skip
def test_conv_transpose_errors(kwargs, error, match):
    args = {"input_shape": (1, 1, 2, 2), "kernel_shape": (1, 1, 3, 3)} | kwargs
    with pytest.raises(error, match=match):
        explain_conv_transpose(**args)


def test_cli_conv_transpose(capsys):
    args = ["explain", "conv-transpose", "--input", "1,2,2,3", "--kernel", "2,1,3,3"]
    assert cli.main([*args, "--stride", "2", "--output-padding", "1"]) == 0
    out = capsys.readouterr().out
    assert out == explain_conv_transpose((1, 2, 2, 3), (2, 1, 3, 3), 2, 0, 1, 1) + "\n"
    assert cli.main([*args[:4], "--kernel", "1,1,3,3"]) == 2
    assert capsys.readouterr().err.startswith(
        "cnnumpy: error: `kernel_shape` must start with the input's C=2"
    )


# --- im2col, channels-last --------------------------------------------------------------


def test_nhwc_flat_indices_by_hand():
    # One image 3x3 with 2 channels, 2x2 windows: Wp*C = 6 per row, C = 2 per column.
    text = explain_im2col((1, 3, 3, 2), (1, 2, 2, 2), layout="nhwc")
    lines = text.splitlines()
    assert "a step of Wp*C = 6 per row, C = 2 per column, 1 per channel." in text
    np.testing.assert_array_equal(printed(text, "start: "), [0, 2, 6, 8])
    np.testing.assert_array_equal(printed(text, "offset: "), [0, 1, 2, 3, 6, 7, 8, 9])
    idx = printed(text, "idx = ")
    np.testing.assert_array_equal(idx[3], [8, 9, 10, 11, 14, 15, 16, 17])
    rows = printed(text, "rows = patches")
    # x = arange(18) laid out (h, w, c): the flat index is the value itself.
    np.testing.assert_array_equal(rows, idx)
    assert any(
        line.startswith("Check: rows against the NCHW engine's cols") for line in lines
    )
    assert lines[-1].startswith("Check: y, conv2d(x, weight, layout='nhwc') against ")
    assert lines[-1].endswith("equal: True")


@pytest.mark.parametrize(
    ("stride", "padding", "dilation"), [(1, 0, 1), (2, 1, 1), ((1, 2), (2, 0), (2, 1))]
)
def test_nhwc_per_dimension_stride_and_padding(stride, padding, dilation):
    text = explain_im2col((2, 5, 6, 3), (2, 3, 2, 3), stride, padding, dilation, "nhwc")
    lines = text.splitlines()
    sH, sW = (stride, stride) if np.ndim(stride) == 0 else stride
    pH, pW = (padding, padding) if np.ndim(padding) == 0 else padding
    dH, dW = (dilation, dilation) if np.ndim(dilation) == 0 else dilation
    Wp = 6 + 2 * pW
    assert f"padding {pH} along H and {pW} along W" in text
    assert f"= oy*{sH * Wp * 3} + ox*{sW * 3};" in text
    assert f"ky*{dH * Wp * 3} + kx*{dW * 3} + c." in text
    assert sum(line.endswith("equal: True") for line in lines) == 2


def test_nhwc_errors_and_cli(capsys):
    with pytest.raises(ValueError, match=r"`layout` must be one of 'nchw', 'nhwc'"):
        explain_im2col((1, 3, 3, 2), (1, 2, 2, 2), layout="chw")
    with pytest.raises(ValueError, match=r"C=2 channels, got 3 .*layout 'nhwc'"):
        explain_im2col((1, 3, 3, 2), (1, 3, 2, 2), layout="nhwc")
    args = ["explain", "im2col", "--input", "1,4,4,2", "--kernel", "3,2,3,3"]
    assert cli.main([*args, "--layout", "nhwc", "--padding", "1,0"]) == 0
    out = capsys.readouterr().out
    assert (
        out == explain_im2col((1, 4, 4, 2), (3, 2, 3, 3), 1, (1, 0), 1, "nhwc") + "\n"
    )
