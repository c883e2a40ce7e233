"""Pictures of the engine's ops, drawn with matplotlib (the ``plot`` extra).

matplotlib is imported inside the functions, so ``import cnnumpy`` never needs
it. Figures are drawn on the Agg canvas directly, without pyplot: no window, no
global backend switched behind the caller's back.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cnnumpy import functional
from cnnumpy.explain.conv import conv_setup
from cnnumpy.extras import MAX_LABELS, matplotlib_classes
from cnnumpy.functional.im2col_indices import im2col_indices

__all__ = ["plot_im2col"]

# At most this many input channels are drawn.
MAX_CHANNELS = 4


def _grid(ax, values: np.ndarray, title: str) -> None:
    """Draw a 2-D array as shaded cells, numbered when there are few."""
    ax.imshow(values, cmap="Blues", alpha=0.6, aspect="auto")
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
    if values.size <= MAX_LABELS:
        for (r, c), v in np.ndenumerate(values):
            ax.text(c, r, f"{v:g}", ha="center", va="center", fontsize=7)


def plot_im2col(
    path: str | Path,
    input_shape: tuple[int, int, int, int],
    kernel_shape: tuple[int, int, int, int],
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] | str = 0,
    dilation: int | tuple[int, int] = 1,
) -> None:
    """Draw one receptive field of an arange input and the column it becomes.

    Left: the padded input of image 0, one panel per channel (up to four), the
    taps of the middle window outlined. Right: the column matrix ``im2col(x)``
    with that window's column outlined.

    Parameters
    ----------
    path : str or Path
        Image file to write; the format follows the suffix (``.png``).
    input_shape, kernel_shape, stride, padding, dilation
        As in :func:`cnnumpy.explain.explain_im2col`.

    Raises
    ------
    ImportError
        If matplotlib is not installed (``pip install 'cnnumpy[plot]'``).
    TypeError, ValueError
        On bad shapes or window arguments, as :func:`~cnnumpy.explain.explain_im2col`.
    """
    Figure, FigureCanvasAgg, Rectangle = matplotlib_classes()
    xs, ws, geom = conv_setup(input_shape, kernel_shape, stride, padding, dilation)
    (N, C, H, W), (_, _, kH, kW) = xs, ws
    (out_h, out_w), (ph, pw) = geom.out, geom.padding
    args = ((kH, kW), stride, padding, dilation)
    x = np.arange(N * C * H * W, dtype=np.float64).reshape(xs)
    cols = functional.im2col(x, *args)  # (C*kH*kW, L*N)
    d, i, j = im2col_indices(xs, *args)
    l = (out_h // 2) * out_w + out_w // 2  # the middle window, image 0
    column = l * N

    shown = min(C, MAX_CHANNELS)
    fig = Figure(figsize=(2.6 * shown + 4.0, 4.0), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, shown + 1, squeeze=False)[0]
    for c, ax in enumerate(axes[:shown]):
        grid = np.pad(x[0, c], ((ph, ph), (pw, pw)))  # (Hp, Wp), zeros around
        _grid(ax, grid, f"x_padded[0, {c}]")
        for r in np.flatnonzero(d[:, 0] == c):
            corner = (j[r, l] - 0.5, i[r, l] - 0.5)
            ax.add_patch(Rectangle(corner, 1, 1, fill=False, edgecolor="red", lw=2))
    oy, ox = divmod(l, out_w)
    ax = axes[shown]
    _grid(ax, cols, f"cols = im2col(x), {cols.shape}")
    ax.add_patch(
        Rectangle((column - 0.5, -0.5), 1, len(cols), fill=False, edgecolor="red", lw=2)
    )
    if cols.size > MAX_LABELS and len(cols) <= MAX_LABELS // 4:
        for r, v in enumerate(cols[:, column]):  # number the outlined column only
            ax.text(column, r, f"{v:g}", ha="center", va="center", fontsize=7)
    fig.suptitle(
        f"window ({oy}, {ox}) of image 0 becomes column {column} of cols", fontsize=10
    )
    fig.savefig(path, dpi=100)
