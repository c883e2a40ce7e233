"""Channels-last (NHWC) arrays for the convolution, as views of the NCHW engine.

Keras and TensorFlow store a batch of images as (N, H, W, C); the engine works
on (N, C, H, W). A transpose between the two is a view (no copy), so
``conv2d(x, weight, layout='nhwc')`` reads an NHWC ``x`` through its NCHW view,
runs the same engine, and hands the output back as an NHWC view: forward and
backward are the NCHW results, bit for bit. The NCHW path never comes here.
The weight keeps PyTorch's (F, C // groups, kH, kW) in both layouts; a Keras
kernel (kH, kW, C, F) becomes one with ``kernel.transpose(3, 2, 0, 1)``.
"""

from __future__ import annotations

import numpy as np

from cnnumpy.validation import check_array, check_choice

__all__ = ["LAYOUTS", "from_nchw", "to_nchw"]

LAYOUTS = ("nchw", "nhwc")


def to_nchw(a: np.ndarray, layout: object, name: str = "x") -> np.ndarray:
    """The (N, C, H, W) view of ``a``, given in ``layout`` ('nhwc' here)."""
    check_choice(layout, "layout", LAYOUTS)
    if layout == "nchw":
        return a
    check_array(a, name, 4, "(N, H, W, C) for layout='nhwc'")
    return a.transpose(0, 3, 1, 2)  # (N, C, H, W), a view


def from_nchw(a: np.ndarray, layout: str) -> np.ndarray:
    """``a`` (N, C, H, W) as a view in ``layout``: (N, H, W, C) for 'nhwc'."""
    return a if layout == "nchw" else a.transpose(0, 2, 3, 1)
