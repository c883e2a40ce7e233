"""Step-by-step explanations of the engine's ops, as text and pictures.

Each ``explain_*`` function works a small example for the shapes it is given:
inputs and kernels are ``arange`` numbers, so every entry can be traced by hand.
Every matrix is computed by the library's own functions and printed one row per
line, numbers separated by single spaces; each explanation ends with a check
against the naive loops of :mod:`cnnumpy.reference` (the examples hold integers,
so the checks are exact up to the rounding of an average's shares). Matrices of
more than about 2,000 numbers print their shape and first rows only.

`plot_im2col` draws the unfolding (matplotlib, imported when drawing);
`html_im2col` writes it as one self-contained HTML page that highlights the
receptive field, column and product entry of the output cell under the pointer.
Nothing is printed here: ``cnnumpy explain ...`` prints the text.
"""

from cnnumpy.explain.conv import explain_col2im, explain_conv_backward, explain_im2col
from cnnumpy.explain.page import html_im2col
from cnnumpy.explain.plots import plot_im2col
from cnnumpy.explain.pool import explain_pool
from cnnumpy.explain.transpose import explain_conv_transpose

__all__ = [
    "explain_col2im",
    "explain_conv_backward",
    "explain_conv_transpose",
    "explain_im2col",
    "explain_pool",
    "html_im2col",
    "plot_im2col",
]
