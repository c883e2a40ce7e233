"""im2col and col2im by index matrices (the classic walk-through) against the engine.

The index version gathers with ``x_padded[:, d, i, j]`` and folds with
``np.add.at``; it must equal the engine's strided im2col/col2im exactly.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cnnumpy import functional as F

# --- the worked example: input (1, 3, 4, 4), kernel (2, 3, 2, 2), stride 1, no padding
# out_h = out_w = (4 - 2) / 1 + 1 = 3, so 9 windows (columns) of 3*2*2 = 12 taps (rows).
# Row r = (c*2 + ky)*2 + kx, column l = oy*3 + ox; i = ky + oy, j = kx + ox, d = c.
# Derived by hand: within a channel the tap rows go ky = 0, 0, 1, 1 and kx = 0, 1, 0, 1;
# along a row the window rows go oy = 0, 0, 0, 1, 1, 1, 2, 2, 2 and ox = 0, 1, 2, ....
EXAMPLE = {"input_shape": (1, 3, 4, 4), "kernel_shape": (2, 3, 2, 2)}
I_HAND = np.array(
    [
        [0, 0, 0, 1, 1, 1, 2, 2, 2],  # c=0, ky=0, kx=0
        [0, 0, 0, 1, 1, 1, 2, 2, 2],  # c=0, ky=0, kx=1
        [1, 1, 1, 2, 2, 2, 3, 3, 3],  # c=0, ky=1, kx=0
        [1, 1, 1, 2, 2, 2, 3, 3, 3],  # c=0, ky=1, kx=1
        [0, 0, 0, 1, 1, 1, 2, 2, 2],  # c=1 ...
        [0, 0, 0, 1, 1, 1, 2, 2, 2],
        [1, 1, 1, 2, 2, 2, 3, 3, 3],
        [1, 1, 1, 2, 2, 2, 3, 3, 3],
        [0, 0, 0, 1, 1, 1, 2, 2, 2],  # c=2 ...
        [0, 0, 0, 1, 1, 1, 2, 2, 2],
        [1, 1, 1, 2, 2, 2, 3, 3, 3],
        [1, 1, 1, 2, 2, 2, 3, 3, 3],
    ]
)
J_HAND = np.array(
    [
        [0, 1, 2, 0, 1, 2, 0, 1, 2],  # kx=0
        [1, 2, 3, 1, 2, 3, 1, 2, 3],  # kx=1
        [0, 1, 2, 0, 1, 2, 0, 1, 2],
        [1, 2, 3, 1, 2, 3, 1, 2, 3],
        [0, 1, 2, 0, 1, 2, 0, 1, 2],
        [1, 2, 3, 1, 2, 3, 1, 2, 3],
        [0, 1, 2, 0, 1, 2, 0, 1, 2],
        [1, 2, 3, 1, 2, 3, 1, 2, 3],
        [0, 1, 2, 0, 1, 2, 0, 1, 2],
        [1, 2, 3, 1, 2, 3, 1, 2, 3],
        [0, 1, 2, 0, 1, 2, 0, 1, 2],
        [1, 2, 3, 1, 2, 3, 1, 2, 3],
    ]
)
D_HAND = np.array([[0], [0], [0], [0], [1], [1], [1], [1], [2], [2], [2], [2]])
# x = arange(48): pixel (c, y, x) holds 16c + 4y + x, so column l of cols (window
# (oy, ox)) holds 16c + 4(oy + ky) + (ox + kx). Its first row (c = ky = kx = 0):
COLS_ROW0_HAND = [0, 1, 2, 4, 5, 6, 8, 9, 10]


def test_example_indices_by_hand():
    d, i, j = F.im2col_indices(EXAMPLE["input_shape"], 2)
    assert d.shape == (12, 1) and i.shape == (12, 9) and j.shape == (12, 9)
    np.testing.assert_array_equal(i, I_HAND)
    np.testing.assert_array_equal(j, J_HAND)
    np.testing.assert_array_equal(d, D_HAND)


def test_example_columns_by_hand():
    x = np.arange(48.0).reshape(1, 3, 4, 4)
    cols = F.im2col_by_index(x, 2)
    assert cols.shape == (12, 9)
    assert cols[0].tolist() == COLS_ROW0_HAND
    r = np.arange(12)
    c, ky, kx = r // 4, r // 2 % 2, r % 2
    l = np.arange(9)
    oy, ox = l // 3, l % 3
    hand = 16 * c[:, None] + 4 * (oy + ky[:, None]) + (ox + kx[:, None])
    np.testing.assert_array_equal(cols, hand)


def test_indices_with_stride_padding_dilation():
    # (1, 1, 5, 5), kernel 2, stride 2, padding 1, dilation 2: padded size 7,
    # out = (5 + 2 - 2*1 - 1) // 2 + 1 = 3 per axis; taps at 0 and 2, windows at 0, 2, 4.
    d, i, j = F.im2col_indices((1, 1, 5, 5), 2, stride=2, padding=1, dilation=2)
    np.testing.assert_array_equal(d, [[0], [0], [0], [0]])
    np.testing.assert_array_equal(
        i[:, :3], [[0, 0, 0], [0, 0, 0], [2, 2, 2], [2, 2, 2]]
    )
    np.testing.assert_array_equal(i[0], [0, 0, 0, 2, 2, 2, 4, 4, 4])
    np.testing.assert_array_equal(j[1], [2, 4, 6, 2, 4, 6, 2, 4, 6])


# --- the engine's equal, over a sweep -------------------------------------------------


@st.composite
def window_cases(draw):
    """Valid (input shape, kernel, stride, padding, dilation), H and W up to 9."""
    N, C = draw(st.integers(1, 2)), draw(st.integers(1, 3))
    k = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    s = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    p = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    d = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    # The smallest input the dilated kernel fits once padded, up to 9.
    H, W = (
        draw(st.integers(max(1, dd * (kk - 1) + 1 - 2 * pp), 9))
        for kk, pp, dd in zip(k, p, d)
    )
    return (N, C, H, W), k, s, p, d


@settings(max_examples=60, deadline=None)
@given(case=window_cases(), seed=st.integers(0, 2**16))
def test_im2col_by_index_equals_im2col(case, seed):
    shape, k, s, p, d = case
    x = np.random.default_rng(seed).standard_normal(shape)
    expected = F.im2col(x, k, s, p, d)
    got = F.im2col_by_index(x, k, s, p, d)
    assert got.shape == expected.shape
    np.testing.assert_array_equal(got, expected)  # both are copies of x's numbers


@settings(max_examples=60, deadline=None)
@given(case=window_cases(), seed=st.integers(0, 2**16))
def test_col2im_by_index_equals_col2im(case, seed):
    shape, k, s, p, d = case
    K, LN = F.im2col(np.zeros(shape), k, s, p, d).shape
    # Small integers: every sum is exact, whatever order the two folds add in.
    cols = np.random.default_rng(seed).integers(-9, 10, (K, LN)).astype(np.float64)
    got = F.col2im_by_index(cols, shape, k, s, p, d)
    assert got.shape == shape
    np.testing.assert_array_equal(got, F.col2im(cols, shape, k, s, p, d))


@settings(max_examples=60, deadline=None)
@given(case=window_cases(), seed=st.integers(0, 2**16))
def test_col2im_by_index_is_the_adjoint(case, seed):
    shape, k, s, p, d = case
    rng = np.random.default_rng(seed)
    x = rng.integers(-9, 10, shape).astype(np.float64)
    cols = F.im2col_by_index(x, k, s, p, d)
    c = rng.integers(-9, 10, cols.shape).astype(np.float64)
    # <im2col(x), c> == <x, col2im(c)>, exactly for small integers.
    assert np.sum(cols * c) == np.sum(x * F.col2im_by_index(c, shape, k, s, p, d))


def test_dtype_is_kept():
    x = np.arange(32, dtype=np.float32).reshape(2, 1, 4, 4)
    cols = F.im2col_by_index(x, 3, padding=1)
    assert cols.dtype == np.float32
    np.testing.assert_array_equal(cols, F.im2col(x, 3, padding=1))
    assert F.col2im_by_index(cols, x.shape, 3, padding=1).dtype == np.float32


def test_valid_padding_is_no_padding():
    x = np.arange(50.0).reshape(2, 1, 5, 5)
    np.testing.assert_array_equal(
        F.im2col_by_index(x, 3, padding="valid"), F.im2col(x, 3, padding=0)
    )


def test_buffered_fancy_add_drops_overlaps():
    """Why col2im_by_index needs np.add.at: ``+=`` through repeated indices adds once."""
    shape = (1, 1, 3, 3)
    d, i, j = F.im2col_indices(shape, 2)
    ones = np.ones((4, 4))
    buffered = np.zeros(shape)
    buffered[:, d, i, j] += ones[None]  # (N, C*kH*kW, L)
    assert buffered[0, 0, 1, 1] == 1  # the centre is in all four windows...
    assert F.col2im_by_index(ones, shape, 2)[0, 0, 1, 1] == 4  # ...so it gets 4


# --- validation -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"kernel_size": 5}, ValueError, r"`kernel_size` \(=5.*larger than the padded"),
        ({"kernel_size": 3, "dilation": 2}, ValueError, r"dilated extent 5"),
        ({"kernel_size": 2, "stride": 0}, ValueError, r"`stride` must be >= 1, got 0"),
        ({"kernel_size": 2, "stride": 1.5}, TypeError, r"`stride` must be an int or"),
        ({"kernel_size": 2, "padding": -1}, ValueError, r"`padding` must be >= 0"),
        ({"kernel_size": 2, "padding": "same"}, ValueError, r"`padding`.*'same'"),
        ({"kernel_size": 2, "padding": "full"}, ValueError, r"`padding`.*'full'"),
        ({"kernel_size": 2, "dilation": 0}, ValueError, r"`dilation` must be >= 1"),
        ({"kernel_size": (2, 0)}, ValueError, r"`kernel_size` must be >= 1"),
    ],
)
def test_window_errors(kwargs, error, match):
    x = np.zeros((1, 1, 4, 4))
    with pytest.raises(error, match=match):
        F.im2col_indices(x.shape, **kwargs)
    with pytest.raises(error, match=match):
        F.im2col_by_index(x, **kwargs)
    with pytest.raises(error, match=match):
        F.col2im_by_index(np.zeros((4, 9)), x.shape, **kwargs)


@pytest.mark.parametrize("shape", [(1, 3, 4), (1, 0, 4, 4), (1, 3, 4, 4.0), "1,3,4,4"])
def test_input_shape_errors(shape):
    with pytest.raises(ValueError, match=r"`input_shape` must be 4 positive ints"):
        F.im2col_indices(shape, 2)
    with pytest.raises(ValueError, match=r"`input_shape` must be 4 positive ints"):
        F.col2im_by_index(np.zeros((12, 9)), shape, 2)


def test_array_errors():
    with pytest.raises(TypeError, match=r"`x` must have a floating dtype, got int64"):
        F.im2col_by_index(np.zeros((1, 1, 4, 4), dtype=np.int64), 2)
    with pytest.raises(ValueError, match=r"`x` must be 4-D"):
        F.im2col_by_index(np.zeros((4, 4)), 2)
    with pytest.raises(
        ValueError, match=r"`cols` must have shape \(4, 9\).*got \(4, 8\)"
    ):
        F.col2im_by_index(np.zeros((4, 8)), (1, 1, 4, 4), 2)
    with pytest.raises(TypeError, match=r"`cols` must be a numpy.ndarray, got list"):
        F.col2im_by_index([[0.0]], (1, 1, 1, 1), 1)
