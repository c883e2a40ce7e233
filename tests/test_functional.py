"""cnnumpy.functional against PyTorch, against the naive reference, and by calculus.

float64 results must match PyTorch to 1e-10 relative, float32 to 1e-4.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from hypothesis import given, settings
from hypothesis import strategies as st

from cnnumpy import functional as F
from cnnumpy import reference as R
from conftest import TOLERANCE, assert_close, leaf

# --- convolution sweep --------------------------------------------------------------


@st.composite
def conv_cases(draw):
    """Valid conv2d configurations, including kernels as large as the padded input."""
    groups = draw(st.integers(1, 3))
    C = groups * draw(st.integers(1, 2))
    Fo = groups * draw(st.integers(1, 2))
    N = draw(st.integers(1, 2))
    k = (draw(st.integers(1, 7)), draw(st.integers(1, 7)))
    d = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    same = draw(st.booleans()) and draw(st.booleans())
    if same:
        s, p = (1, 1), "same"
        pads = [(dd * (kk - 1) + 1) // 2 for kk, dd in zip(k, d)]
    else:
        s = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
        p = (draw(st.integers(0, 3)), draw(st.integers(0, 3)))
        pads = [2 * pp for pp in p]
    # Smallest input the dilated kernel fits, up to a few pixels more.
    extent = [dd * (kk - 1) + 1 for kk, dd in zip(k, d)]
    H = max(1, extent[0] - pads[0]) + draw(st.integers(0, 3))
    W = max(1, extent[1] - pads[1]) + draw(st.integers(0, 3))
    bias = draw(st.booleans())
    return N, C, H, W, Fo, k, s, p, d, groups, bias


def run_conv(case, dtype, seed=0):
    N, C, H, W, Fo, k, s, p, d, g, bias = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    w = rng.standard_normal((Fo, C // g, *k)).astype(dtype)
    b = rng.standard_normal(Fo).astype(dtype) if bias else None
    y, ctx = F.conv2d_forward(x, w, b, s, p, d, g)
    dy = rng.standard_normal(y.shape).astype(dtype)
    return x, w, b, y, ctx, dy


def torch_conv(case, x, w, b, dy):
    _, _, _, _, _, _, s, p, d, g, _ = case
    tx, tw = leaf(x), leaf(w)
    tb = leaf(b) if b is not None else None
    with warnings.catch_warnings():
        # PyTorch warns that 'same' with an even kernel copies the input; so do we.
        warnings.filterwarnings("ignore", message="Using padding='same'")
        ty = TF.conv2d(tx, tw, tb, s, p, d, g)
    ty.backward(torch.tensor(dy))
    return ty, tx.grad, tw.grad, None if tb is None else tb.grad


@settings(max_examples=120, deadline=None)
@given(conv_cases(), st.sampled_from([np.float64, np.float32]))
def test_conv2d_matches_torch(case, dtype):
    x, w, b, y, ctx, dy = run_conv(case, dtype)
    ty, tdx, tdw, tdb = torch_conv(case, x, w, b, dy)
    dx, dw, db = F.conv2d_backward(dy, ctx)
    assert_close(y, ty, dtype)
    assert_close(dx, tdx, dtype)
    assert_close(dw, tdw, dtype)
    if b is None:
        assert db is None
    else:
        assert_close(db, tdb, dtype)


@settings(max_examples=40, deadline=None)
@given(conv_cases())
def test_conv2d_fast_equals_reference(case):
    x, w, b, y, ctx, dy = run_conv(case, np.float64)
    N, C, H, W, Fo, k, s, p, d, g, bias = case
    ry, rctx = R.conv2d_forward(x, w, b, s, p, d, g)
    np.testing.assert_allclose(y, ry, rtol=1e-12, atol=1e-12)
    for fast, ref in zip(F.conv2d_backward(dy, ctx), R.conv2d_backward(dy, rctx)):
        if ref is None:
            assert fast is None
        else:
            np.testing.assert_allclose(fast, ref, rtol=1e-12, atol=1e-12)


@settings(max_examples=60, deadline=None)
@given(conv_cases())
def test_conv2d_input_grad_as_a_forward_convolution_equals_col2im(case):
    """Stride 1: dx as a convolution of dy with the rotated kernels, the same
    sums as col2im(weight2d.T @ dy2d) in another order."""
    from cnnumpy.functional import conv

    x, w, b, y, ctx, dy = run_conv(case, np.float64)
    dy2 = dy.transpose(1, 2, 3, 0).reshape(w.shape[0], -1)
    (kH, kW), (dH, dW) = ctx.geom.kernel, ctx.geom.dilation
    (ph, pw), extra = ctx.geom.padding, ctx.geom.extra
    applies = (
        ctx.geom.stride == (1, 1)
        and extra == (0, 0)
        and ph <= dH * (kH - 1)
        and pw <= dW * (kW - 1)
    )
    pays = (
        ctx.geom.out[0] * ctx.geom.out[1] >= x.shape[2] * x.shape[3]
        and w.shape[0] <= x.shape[1]
    )
    assert conv._by_conv(ctx) == (applies and pays)
    if applies:  # where col2im pays too, to test the sums wherever they apply
        by_conv = conv._input_grad_by_conv(dy2, ctx)
        np.testing.assert_allclose(
            by_conv, conv._input_grad(dy2, ctx), rtol=1e-12, atol=1e-12
        )


@pytest.mark.parametrize(
    ("kwargs", "out_channels", "takes"),
    [
        ({"padding": 1}, 3, True),  # 'same' size: a 3x3 kernel's reach is 2
        ({"padding": 1}, 2, True),  # fewer output channels
        ({"padding": 1}, 4, False),  # more output channels: col2im pays
        ({"padding": 2, "dilation": 2}, 3, True),
        ({"padding": "same"}, 3, True),
        ({"padding": 2}, 3, True),  # larger output, within the reach
        ({"padding": 0}, 3, False),  # 'valid': a smaller output, col2im pays
        ({"padding": 3}, 3, False),  # wider than the kernel's reach
        ({"stride": 2, "padding": 1}, 3, False),
    ],
)
def test_conv2d_input_grad_path_by_geometry(kwargs, out_channels, takes):
    from cnnumpy.functional import conv

    x = np.zeros((1, 3, 6, 6))
    _, ctx = F.conv2d_forward(x, np.zeros((out_channels, 3, 3, 3)), **kwargs)
    assert conv._by_conv(ctx) == takes


def test_conv2d_same_with_an_even_kernel_folds_by_col2im():
    """'same' with a 2x2 kernel pads one extra row and column: col2im's path."""
    from cnnumpy.functional import conv

    _, ctx = F.conv2d_forward(
        np.zeros((1, 1, 4, 4)), np.zeros((1, 1, 2, 2)), padding="same"
    )
    assert ctx.geom.extra != (0, 0)
    assert not conv._by_conv(ctx)


def test_conv2d_first_layer_skips_input_grad():
    case = (2, 3, 8, 8, 4, (3, 3), (1, 1), (1, 1), (1, 1), 1, True)
    x, w, b, y, ctx, dy = run_conv(case, np.float64)
    dx, dw, db = F.conv2d_backward(dy, ctx, input_grad=False)
    full = F.conv2d_backward(dy, ctx)
    assert dx is None
    np.testing.assert_array_equal(dw, full[1])
    np.testing.assert_array_equal(db, full[2])


def test_conv1x1_is_a_matmul():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 5, 4, 3))
    w = rng.standard_normal((7, 5, 1, 1))
    y = F.conv2d(x, w)
    expected = np.einsum("fc,nchw->nfhw", w[:, :, 0, 0], x)
    np.testing.assert_allclose(y, expected, rtol=1e-12)


def test_conv2d_keeps_float32():
    case = (2, 3, 8, 8, 4, (3, 3), (2, 2), (1, 1), (1, 1), 1, True)
    x, w, b, y, ctx, dy = run_conv(case, np.float32)
    assert y.dtype == np.float32
    assert all(g.dtype == np.float32 for g in F.conv2d_backward(dy, ctx))


# --- im2col / col2im ----------------------------------------------------------------


def test_im2col_documented_layout():
    x = np.arange(2 * 2 * 5 * 6, dtype=np.float64).reshape(2, 2, 5, 6)
    kH, kW, s, p, d = 3, 2, (2, 1), (1, 2), (1, 2)
    cols = F.im2col(x, (kH, kW), s, p, d)
    xp = np.pad(x, ((0, 0), (0, 0), (p[0], p[0]), (p[1], p[1])))
    out_h = (5 + 2 * p[0] - d[0] * (kH - 1) - 1) // s[0] + 1
    out_w = (6 + 2 * p[1] - d[1] * (kW - 1) - 1) // s[1] + 1
    assert cols.shape == (2 * kH * kW, out_h * out_w * 2)
    for n in range(2):
        for c in range(2):
            for i in range(kH):
                for j in range(kW):
                    for oy in range(out_h):
                        for ox in range(out_w):
                            row = (c * kH + i) * kW + j
                            got = cols[row, (oy * out_w + ox) * 2 + n]
                            want = xp[n, c, oy * s[0] + i * d[0], ox * s[1] + j * d[1]]
                            assert got == want


def test_im2col_docstring_example():
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    np.testing.assert_array_equal(
        F.im2col(x, 2, stride=2),
        [[0, 2, 8, 10], [1, 3, 9, 11], [4, 6, 12, 14], [5, 7, 13, 15]],
    )


@settings(max_examples=80, deadline=None)
@given(conv_cases())
def test_col2im_is_adjoint_of_im2col(case):
    N, C, H, W, _, k, s, p, d, _, _ = case
    if p == "same":
        p = [(dd * (kk - 1)) // 2 for kk, dd in zip(k, d)]
        if any((dd * (kk - 1)) % 2 for kk, dd in zip(k, d)):
            return  # asymmetric 'same' is a conv2d feature, not an im2col one
    rng = np.random.default_rng(1)
    x = rng.standard_normal((N, C, H, W))
    cols = F.im2col(x, k, s, p, d)
    c = rng.standard_normal(cols.shape)
    lhs = np.sum(cols * c)
    rhs = np.sum(x * F.col2im(c, x.shape, k, s, p, d))
    np.testing.assert_allclose(lhs, rhs, rtol=1e-10)


def test_col2im_counts_overlaps():
    # Folding a matrix of ones gives, per pixel, the number of windows covering it.
    x = np.zeros((1, 1, 4, 4))
    ones = np.ones_like(F.im2col(x, 3, 1, 0))
    counts = F.col2im(ones, x.shape, 3, 1, 0)[0, 0]
    assert ones.shape == (9, 4)
    np.testing.assert_array_equal(
        counts, [[1, 2, 2, 1], [2, 4, 4, 2], [2, 4, 4, 2], [1, 2, 2, 1]]
    )


# --- pooling ------------------------------------------------------------------------


@st.composite
def pool_cases(draw):
    k = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    s = draw(st.one_of(st.none(), st.tuples(st.integers(1, 3), st.integers(1, 3))))
    p = (draw(st.integers(0, k[0] // 2)), draw(st.integers(0, k[1] // 2)))
    H = max(1, k[0] - 2 * p[0]) + draw(st.integers(0, 4))
    W = max(1, k[1] - 2 * p[1]) + draw(st.integers(0, 4))
    return draw(st.integers(1, 2)), draw(st.integers(1, 3)), H, W, k, s, p


@settings(max_examples=100, deadline=None)
@given(
    pool_cases(),
    st.sampled_from(["max", "avg"]),
    st.sampled_from([np.float64, np.float32]),
)
def test_pool_matches_torch_and_reference(case, kind, dtype):
    N, C, H, W, k, s, p = case
    rng = np.random.default_rng(2)
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    if kind == "max":  # ties, as after a ReLU: the gradient goes to the first max
        x[:, :, ::2] = np.maximum(x[:, :, ::2], 0)
    fwd, bwd = (
        getattr(F, f"{kind}_pool2d_forward"),
        getattr(F, f"{kind}_pool2d_backward"),
    )
    rfwd, rbwd = (
        getattr(R, f"{kind}_pool2d_forward"),
        getattr(R, f"{kind}_pool2d_backward"),
    )
    y, ctx = fwd(x, k, s, p)
    dy = rng.standard_normal(y.shape).astype(dtype)
    tx = leaf(x)
    ty = getattr(TF, f"{kind}_pool2d")(tx, k, s if s is not None else k, p)
    ty.backward(torch.tensor(dy))
    assert_close(y, ty, dtype)
    assert_close(bwd(dy, ctx), tx.grad, dtype)
    # Fast and reference sum a window in different orders: float32 rounding.
    ry, rctx = rfwd(x, k, s, p)
    assert_close(y, ry, dtype)
    assert_close(bwd(dy, ctx), rbwd(dy, rctx), dtype)


def test_max_pool_all_ties_routes_to_first_element():
    x = np.zeros((1, 1, 4, 4))
    y, ctx = F.max_pool2d_forward(x, 2)
    dx = F.max_pool2d_backward(np.ones_like(y), ctx)
    expected = np.zeros((4, 4))
    expected[::2, ::2] = 1
    np.testing.assert_array_equal(dx[0, 0], expected)


# --- element-wise ops, softmax, loss, linear, flatten --------------------------------

ACTIVATIONS = [
    ("relu", lambda t: torch.relu(t), "y"),
    ("tanh", torch.tanh, "y"),
    ("sigmoid", torch.sigmoid, "y"),
]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name,tfn,arg", ACTIVATIONS)
def test_activation_matches_torch(name, tfn, arg, dtype):
    rng = np.random.default_rng(4)
    x = (rng.standard_normal((3, 4, 5)) * 4).astype(dtype)
    x[0, 0, :2] = [0.0, 60.0]
    x[0, 1, :1] = [-200.0]  # sigmoid must not overflow
    y = getattr(F, name)(x)
    dy = rng.standard_normal(x.shape).astype(dtype)
    tx = leaf(x)
    ty = tfn(tx)
    ty.backward(torch.tensor(dy))
    assert_close(y, ty, dtype)
    assert_close(getattr(F, f"{name}_backward")(dy, y), tx.grad, dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("slope", [0.01, 0.2, -0.5])
def test_leaky_relu_matches_torch(dtype, slope):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((4, 6)).astype(dtype)
    x[0, 0] = 0.0
    dy = rng.standard_normal(x.shape).astype(dtype)
    tx = leaf(x)
    ty = TF.leaky_relu(tx, slope)
    ty.backward(torch.tensor(dy))
    assert_close(F.leaky_relu(x, slope), ty, dtype)
    assert_close(F.leaky_relu_backward(dy, x, slope), tx.grad, dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("dim", [-1, 0, 1])
@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_softmax_matches_torch(name, dim, dtype):
    rng = np.random.default_rng(6)
    x = (rng.standard_normal((3, 5, 4)) * 3).astype(dtype)
    x[0, 0, 0] = 1e4  # huge logits stay finite
    dy = rng.standard_normal(x.shape).astype(dtype)
    tx = leaf(x)
    ty = getattr(TF, name)(tx, dim)
    ty.backward(torch.tensor(dy))
    y = getattr(F, name)(x, dim)
    assert_close(y, ty, dtype)
    assert_close(getattr(F, f"{name}_backward")(dy, y, dim), tx.grad, dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("scale", [1.0, 1e4])
def test_cross_entropy_matches_torch(scale, dtype):
    rng = np.random.default_rng(7)
    logits = (rng.standard_normal((6, 10)) * scale).astype(dtype)
    target = rng.integers(0, 10, 6)
    loss, probs = F.cross_entropy_forward(logits, target)
    tl = leaf(logits)
    tloss = TF.cross_entropy(tl, torch.tensor(target))
    tloss.backward()
    assert isinstance(loss, float) and np.isfinite(loss)
    np.testing.assert_allclose(loss, tloss.item(), **TOLERANCE[np.dtype(dtype)])
    assert_close(F.cross_entropy_backward(probs, target), tl.grad, dtype)
    assert F.cross_entropy(logits, target) == loss


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape", [(5, 7), (2, 3, 7), (7,)])
def test_linear_matches_torch(shape, dtype):
    rng = np.random.default_rng(8)
    x = rng.standard_normal(shape).astype(dtype)
    w = rng.standard_normal((4, 7)).astype(dtype)
    b = rng.standard_normal(4).astype(dtype)
    y = F.linear(x, w, b)
    dy = rng.standard_normal(y.shape).astype(dtype)
    tx, tw, tb = leaf(x), leaf(w), leaf(b)
    ty = TF.linear(tx, tw, tb)
    ty.backward(torch.tensor(dy))
    assert_close(y, ty, dtype)
    for got, want in zip(F.linear_backward(dy, x, w), (tx.grad, tw.grad, tb.grad)):
        assert_close(got, want, dtype)


def test_conv2d_of_an_empty_batch_matches_torch():
    rng = np.random.default_rng(8)
    x = np.zeros((0, 3, 9, 9))
    w, b = rng.standard_normal((4, 3, 3, 3)), rng.standard_normal(4)
    y, ctx = F.conv2d_forward(x, w, b, padding=1)
    tx, tw, tb = leaf(x), leaf(w), leaf(b)
    ty = TF.conv2d(tx, tw, tb, padding=1)
    assert y.shape == tuple(ty.shape) == (0, 4, 9, 9)
    ty.backward(torch.zeros_like(ty))
    for got, want in zip(F.conv2d_backward(np.zeros(y.shape), ctx), (tx, tw, tb)):
        assert got.shape == tuple(want.grad.shape)
        assert_close(got, want.grad, np.float64)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_linear_gradient_keeps_a_column_major_input_order(dtype):
    """A flattened (C, H, W, N) activation is column-major; so is its gradient."""
    rng = np.random.default_rng(8)
    x = np.asfortranarray(rng.standard_normal((6, 7)).astype(dtype))
    w = rng.standard_normal((4, 7)).astype(dtype)
    dy = rng.standard_normal((6, 4)).astype(dtype)
    dx, dw, _ = F.linear_backward(dy, x, w)
    tx, tw = leaf(x), leaf(w)
    TF.linear(tx, tw).backward(torch.tensor(dy))
    assert dx.flags.f_contiguous and not dx.flags.c_contiguous
    assert_close(dx, tx.grad, dtype)
    assert_close(dw, tw.grad, dtype)


def test_flatten_round_trip():
    x = np.arange(120.0).reshape(2, 3, 4, 5)
    y = F.flatten(x)
    assert y.shape == (2, 60)
    np.testing.assert_array_equal(y, torch.flatten(torch.tensor(x), 1).numpy())
    assert F.flatten(x, 1, 2).shape == (2, 12, 5)
    np.testing.assert_array_equal(F.flatten_backward(y, x.shape), x)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_matches_torch(training, dtype):
    rng = np.random.default_rng(9)
    x = (rng.standard_normal((4, 3, 5, 6)) * 2 + 1).astype(dtype)
    w = rng.standard_normal(3).astype(dtype)
    b = rng.standard_normal(3).astype(dtype)
    rm, rv = rng.standard_normal(3).astype(dtype), rng.uniform(0.5, 2, 3).astype(dtype)
    trm, trv = torch.tensor(rm), torch.tensor(rv)
    y, ctx = F.batch_norm_forward(x, rm, rv, w, b, training, 0.1, 1e-5)
    dy = rng.standard_normal(x.shape).astype(dtype)
    tx, tw, tb = leaf(x), leaf(w), leaf(b)
    ty = TF.batch_norm(tx, trm, trv, tw, tb, training, 0.1, 1e-5)
    ty.backward(torch.tensor(dy))
    assert_close(y, ty, dtype)
    assert_close(rm, trm, dtype)
    assert_close(rv, trv, dtype)
    for got, want in zip(F.batch_norm_backward(dy, ctx), (tx.grad, tw.grad, tb.grad)):
        assert_close(got, want, dtype)


def _in_layout(a: np.ndarray, layout: str) -> np.ndarray:
    """``a`` as an NCHW array stored NCHW, or (C, H, W, N) as the engine stores it."""
    if layout == "nchw":
        return np.ascontiguousarray(a)
    return np.ascontiguousarray(a.transpose(1, 2, 3, 0)).transpose(3, 0, 1, 2)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize(
    "x_layout, dy_layout", [("chwn", "chwn"), ("chwn", "nchw"), ("nchw", "chwn")]
)
def test_batch_norm_matches_torch_in_every_layout(x_layout, dy_layout, training, dtype):
    # Big enough for the channels to be split across threads.
    rng = np.random.default_rng(19)
    x = (rng.standard_normal((16, 8, 12, 10)) * 3 - 2).astype(dtype)
    dy = rng.standard_normal(x.shape).astype(dtype)
    w, b = rng.standard_normal(8).astype(dtype), rng.standard_normal(8).astype(dtype)
    rm, rv = rng.standard_normal(8).astype(dtype), rng.uniform(0.5, 2, 8).astype(dtype)
    trm, trv = torch.tensor(rm), torch.tensor(rv)
    y, ctx = F.batch_norm_forward(_in_layout(x, x_layout), rm, rv, w, b, training)
    tx, tw, tb = leaf(x), leaf(w), leaf(b)
    ty = TF.batch_norm(tx, trm, trv, tw, tb, training, 0.1, 1e-5)
    ty.backward(torch.tensor(dy))
    assert_close(y, ty, dtype)
    assert_close(rm, trm, dtype)
    assert_close(rv, trv, dtype)
    got = F.batch_norm_backward(_in_layout(dy, dy_layout), ctx)
    for g, want in zip(got, (tx.grad, tw.grad, tb.grad)):
        assert_close(g, want, dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("layout", ["nchw", "chwn"])
def test_relu_backward_is_np_where_bit_for_bit(layout, dtype):
    # The backward masks bits; np.where(y > 0, dy, 0) is the definition.
    rng = np.random.default_rng(20)
    y = rng.standard_normal((16, 8, 12, 10)).astype(dtype)
    dy = rng.standard_normal(y.shape).astype(dtype)
    y.flat[:6] = [1, -1, 0, np.nan, 2, -0.0]
    dy.flat[:6] = [np.inf, np.inf, np.nan, 5, -0.0, np.nan]
    y, dy = _in_layout(y, layout), _in_layout(dy, layout)
    got = F.relu_backward(dy, y)
    want = np.where(y > 0, dy, 0).astype(dtype)
    assert got.dtype == dtype and got.shape == want.shape
    bits = {4: np.int32, 8: np.int64}[np.dtype(dtype).itemsize]
    np.testing.assert_array_equal(got.view(bits), want.view(bits))


def test_dropout_mask_and_scale():
    rng = np.random.default_rng(10)
    x = np.ones((200, 500), dtype=np.float32)
    y, scale = F.dropout_forward(x, 0.3, True, rng)
    kept = y != 0
    # 100,000 Bernoulli(0.7) draws: 6 sigma is about 0.0087.
    assert abs(kept.mean() - 0.7) < 0.01
    np.testing.assert_allclose(y[kept], 1 / 0.7, rtol=1e-6)
    assert y.dtype == np.float32
    dy = np.full_like(x, 2.0)
    np.testing.assert_array_equal(F.dropout_backward(dy, scale), 2.0 * y)
    same, _ = F.dropout_forward(x, 0.3, True, np.random.default_rng(10))
    np.testing.assert_array_equal(same, y)
    assert F.dropout_forward(x, 0.3, False)[0] is x
    assert not F.dropout(x, 1.0, True, rng).any()


# --- finite differences ----------------------------------------------------------------


def numeric_grad(f, x, eps=1e-6):
    """Central differences of the scalar f() w.r.t. every entry of x (in place)."""
    g = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"])
    for _ in it:
        i = it.multi_index
        old = x[i]
        x[i] = old + eps
        fp = f()
        x[i] = old - eps
        fm = f()
        x[i] = old
        g[i] = (fp - fm) / (2 * eps)
    return g


@pytest.mark.parametrize(
    "stride,padding,dilation,groups",
    [(1, 0, 1, 1), (2, 1, 1, 2), (1, "same", 2, 1), ((2, 1), (0, 2), (1, 2), 1)],
)
def test_conv2d_finite_differences(stride, padding, dilation, groups):
    rng = np.random.default_rng(11)
    x = rng.standard_normal((2, 4, 6, 5))
    w = rng.standard_normal((2, 4 // groups, 3, 2))
    b = rng.standard_normal(2)
    dy = rng.standard_normal(F.conv2d(x, w, b, stride, padding, dilation, groups).shape)

    def loss():
        return float(np.sum(F.conv2d(x, w, b, stride, padding, dilation, groups) * dy))

    _, ctx = F.conv2d_forward(x, w, b, stride, padding, dilation, groups)
    dx, dw, db = F.conv2d_backward(dy, ctx)
    for analytic, arr in ((dx, x), (dw, w), (db, b)):
        np.testing.assert_allclose(
            analytic, numeric_grad(loss, arr), rtol=1e-6, atol=1e-8
        )


@pytest.mark.parametrize("kind", ["max", "avg"])
def test_pool_finite_differences(kind):
    rng = np.random.default_rng(12)
    x = rng.standard_normal((2, 2, 5, 6))  # continuous values: no ties
    fwd = getattr(F, f"{kind}_pool2d_forward")
    y, ctx = fwd(x, 3, 2, 1)
    dy = rng.standard_normal(y.shape)
    dx = getattr(F, f"{kind}_pool2d_backward")(dy, ctx)
    num = numeric_grad(lambda: float(np.sum(fwd(x, 3, 2, 1)[0] * dy)), x)
    np.testing.assert_allclose(dx, num, rtol=1e-6, atol=1e-8)


def test_cross_entropy_finite_differences():
    rng = np.random.default_rng(13)
    logits = rng.standard_normal((4, 5))
    target = np.array([0, 4, 2, 2])
    _, probs = F.cross_entropy_forward(logits, target)
    num = numeric_grad(lambda: F.cross_entropy(logits, target), logits)
    np.testing.assert_allclose(F.cross_entropy_backward(probs, target), num, rtol=1e-6)


def test_batch_norm_finite_differences():
    rng = np.random.default_rng(14)
    x = rng.standard_normal((3, 2, 3, 2))
    w, b = rng.standard_normal(2), rng.standard_normal(2)
    dy = rng.standard_normal(x.shape)

    def loss():
        return float(np.sum(F.batch_norm(x, None, None, w, b, True) * dy))

    _, ctx = F.batch_norm_forward(x, None, None, w, b, True)
    dx, dw, db = F.batch_norm_backward(dy, ctx)
    for analytic, arr in ((dx, x), (dw, w), (db, b)):
        np.testing.assert_allclose(
            analytic, numeric_grad(loss, arr), rtol=1e-5, atol=1e-8
        )


# --- bad input -----------------------------------------------------------------------


def test_conv2d_rejects_bad_input():
    x = np.zeros((1, 3, 5, 5))
    w = np.zeros((4, 3, 3, 3))
    with pytest.raises(ValueError, match=r"`x` must be 4-D .* got shape \(3, 5, 5\)"):
        F.conv2d(x[0], w)
    with pytest.raises(ValueError, match=r"`x` has 3 channels but `weight` expects 2"):
        F.conv2d(x, np.zeros((4, 2, 3, 3)))
    with pytest.raises(ValueError, match=r"`weight` .* larger than the padded input"):
        F.conv2d(x, np.zeros((4, 3, 7, 7)))
    with pytest.raises(ValueError, match=r"`stride` must be >= 1, got 0"):
        F.conv2d(x, w, stride=0)
    with pytest.raises(ValueError, match=r"`dilation` must be >= 1, got -1"):
        F.conv2d(x, w, dilation=-1)
    with pytest.raises(ValueError, match=r"`padding` must be >= 0, got \(1, -1\)"):
        F.conv2d(x, w, padding=(1, -1))
    with pytest.raises(
        ValueError, match=r"`in_channels` \(=3\) must be divisible by `groups` \(=2\)"
    ):
        F.conv2d(x, np.zeros((4, 1, 3, 3)), groups=2)
    with pytest.raises(
        ValueError, match=r"'same' requires `stride`=1, got stride=\(2, 2\)"
    ):
        F.conv2d(x, w, stride=2, padding="same")
    with pytest.raises(
        ValueError,
        match=r"`padding` must be an int, a pair, 'valid' or 'same', got 'full'",
    ):
        F.conv2d(x, w, padding="full")
    with pytest.raises(
        TypeError, match=r"`weight` dtype must match `x` dtype \(float64\), got float32"
    ):
        F.conv2d(x, w.astype(np.float32))
    with pytest.raises(
        TypeError, match=r"`stride` must be an int or a pair of ints, got 1.5"
    ):
        F.conv2d(x, w, stride=1.5)
    _, ctx = F.conv2d_forward(x, w)
    with pytest.raises(
        ValueError,
        match=r"`dy` must have the output's shape \(1, 4, 3, 3\), got \(1, 4, 3\)",
    ):
        F.conv2d_backward(np.zeros((1, 4, 3)), ctx)


def test_pool_and_col2im_reject_bad_input():
    x = np.zeros((1, 1, 4, 4))
    with pytest.raises(
        ValueError,
        match=r"`padding` \(=2\) must be at most half of `kernel_size` \(=3\)",
    ):
        F.max_pool2d(x, 3, padding=2)
    with pytest.raises(ValueError, match=r"`kernel_size` must be >= 1, got 0"):
        F.avg_pool2d(x, 0)
    with pytest.raises(
        ValueError, match=r"`kernel_size` .* larger than the padded input"
    ):
        F.max_pool2d(x, 5)
    with pytest.raises(
        ValueError, match=r"`cols` must have shape \(4, 9\) .* got \(4, 8\)"
    ):
        F.col2im(np.zeros((4, 8)), (1, 1, 4, 4), 2, 1)
    with pytest.raises(ValueError, match=r"`input_shape` must be 4 positive ints"):
        F.col2im(np.zeros((4, 9)), (1, 4, 4), 2)


def test_loss_and_others_reject_bad_input():
    logits = np.zeros((2, 3))
    with pytest.raises(ValueError, match=r"`target` values must be in \[0, 2\], got 3"):
        F.cross_entropy(logits, np.array([0, 3]))
    with pytest.raises(
        ValueError, match=r"`target` values must be in \[0, 2\], got -1"
    ):
        F.cross_entropy(logits, np.array([-1, 0]))
    with pytest.raises(
        TypeError, match=r"`target` must hold integer class indices, got dtype float64"
    ):
        F.cross_entropy(logits, np.array([0.0, 1.0]))
    with pytest.raises(
        ValueError,
        match=r"`target` must have shape \(2,\) to match `input`, got \(3,\)",
    ):
        F.cross_entropy(logits, np.array([0, 1, 2]))
    with pytest.raises(
        ValueError,
        match=r"`x` must have shape \(\*, 3\) to match `weight`, got \(2, 4\)",
    ):
        F.linear(np.zeros((2, 4)), np.zeros((5, 3)))
    with pytest.raises(
        ValueError, match=r"`p` must be a probability in \[0, 1\], got 1.5"
    ):
        F.dropout(logits, 1.5)
    with pytest.raises(
        ValueError, match=r"`dim` must be in \[-2, 1\] for a 2-D input, got 2"
    ):
        F.softmax(logits, 2)
    with pytest.raises(ValueError, match=r"more than 1 value per channel"):
        F.batch_norm(np.zeros((1, 3)), None, None, training=True)


def test_conv_output_is_batch_innermost_and_chains_without_copies():
    # The layout is an implementation detail, but values must not depend on it.
    rng = np.random.default_rng(15)
    x = rng.standard_normal((3, 2, 7, 7))
    w1, w2 = rng.standard_normal((4, 2, 3, 3)), rng.standard_normal((5, 4, 3, 3))
    h = F.conv2d(x, w1, padding=1)
    assert h.shape == (3, 4, 7, 7) and h.transpose(1, 2, 3, 0).flags.c_contiguous
    y_view = F.conv2d(F.avg_pool2d(np.tanh(h), 2, 1), w2)
    y_copy = F.conv2d(np.ascontiguousarray(F.avg_pool2d(np.tanh(h), 2, 1)), w2)
    np.testing.assert_array_equal(y_view, y_copy)


def test_col2im_rejects_cols_of_wrong_ndim():
    with pytest.raises(
        ValueError, match=r"`cols` must be 2-D .* got shape \(1, 4, 9\)"
    ):
        F.col2im(np.zeros((1, 4, 9)), (1, 1, 4, 4), 2, 1)


@pytest.mark.parametrize("shape", [(1, 1, 2, 3), (2, 3, 6, 5)])
@pytest.mark.parametrize("kind", ["max", "avg"])
def test_pooling_never_writes_into_its_input(kind, shape):
    # A window covering the whole input makes the first tap a contiguous view of
    # x: a pool that accumulated into it in place would corrupt x.
    x = np.random.default_rng(16).standard_normal(shape)
    before = x.copy()
    y, ctx = getattr(F, f"{kind}_pool2d_forward")(x, shape[2:])
    getattr(F, f"{kind}_pool2d_backward")(np.ones_like(y), ctx)
    np.testing.assert_array_equal(x, before)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("k,s,p", [(2, 2, 0), (3, 2, 1), (3, 1, 1), (2, 1, 1)])
def test_max_pool_routes_nan_and_minus_inf_windows_as_torch(k, s, p, dtype):
    # PyTorch: a window holding NaN outputs NaN and sends its gradient to the last
    # NaN; a window whose maximum is -inf sends it to its first pixel inside the
    # input, never to the padding; ties go to the first maximal pixel.
    rng = np.random.default_rng(17)
    x = rng.integers(-1, 2, (2, 3, 7, 6)).astype(dtype)  # many ties
    x[0, 0, :3, :3] = -np.inf
    x[0, 1, 2, 2] = x[0, 1, 3, 3] = x[1, 2, 0, 0] = np.nan
    x[1, 0] = -np.inf
    y, ctx = F.max_pool2d_forward(x, k, s, p)
    dy = rng.standard_normal(y.shape).astype(dtype)
    tx = leaf(x)
    ty = TF.max_pool2d(tx, k, s, p)
    ty.backward(torch.tensor(dy))
    assert_close(y, ty, dtype)  # NaN where PyTorch has NaN
    assert_close(F.max_pool2d_backward(dy, ctx), tx.grad, dtype)


@pytest.mark.parametrize(
    "call, message",
    [
        (
            lambda: F.conv2d_backward(np.zeros((1, 1, 2, 2)), None),
            r"`ctx` must be the Conv2dContext returned by conv2d_forward, got NoneType",
        ),
        (
            lambda: R.conv2d_backward(np.zeros((1, 1, 2, 2)), None),
            r"`ctx` must be the Conv2dContext returned by conv2d_forward, got NoneType",
        ),
        (
            lambda: F.max_pool2d_backward(np.zeros((1, 1, 2, 2)), ()),
            r"`ctx` must be the PoolContext returned by max_pool2d_forward, got tuple",
        ),
        (
            lambda: F.max_pool2d_backward(
                np.zeros((1, 1, 2, 2)),
                F.avg_pool2d_forward(np.zeros((1, 1, 4, 4)), 2)[1],
            ),
            r"`ctx` must come from max_pool2d_forward, got avg_pool2d's",
        ),
        (
            lambda: R.avg_pool2d_backward(np.zeros((1, 1, 2, 2)), None),
            r"`ctx` must be the AvgPool2dContext returned by avg_pool2d_forward",
        ),
        (
            lambda: F.batch_norm_backward(np.zeros((2, 3)), None),
            r"`ctx` must be the BatchNormContext returned by batch_norm_forward",
        ),
        (
            lambda: F.relu_backward(np.zeros(2), [1.0, 2.0]),
            r"`y` must be a numpy.ndarray, got list",
        ),
        (
            lambda: F.softmax_backward(np.zeros(2), [1.0, 2.0]),
            r"`y` must be a numpy.ndarray, got list",
        ),
        (
            lambda: F.leaky_relu_backward(np.zeros(2), [1.0, 2.0]),
            r"`x` must be a numpy.ndarray, got list",
        ),
        (
            lambda: F.linear_backward(np.zeros((2, 3)), [[1.0]], np.zeros((3, 4))),
            r"`x` must be a numpy.ndarray, got list",
        ),
        (
            lambda: F.flatten_backward([1.0, 2.0], (2,)),
            r"`dy` must be a numpy.ndarray, got list",
        ),
        (
            lambda: F.dropout_backward(np.zeros(2), [1.0, 0.0]),
            r"`scale` must be the array dropout_forward returned, got list",
        ),
    ],
)
def test_backward_functions_reject_foreign_contexts(call, message):
    with pytest.raises(TypeError, match=message):
        call()


# --- convolution without a kept column matrix -------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kwargs", [{"padding": 2}, {"stride": 2, "groups": 2}])
def test_conv2d_keeps_x_and_its_blocks_equal_the_whole_column_matrix(dtype, kwargs):
    """The context keeps the input itself, not its columns; the weight gradient,
    unfolded again block by block, equals the textbook ``dy2d @ im2col(x).T``."""
    rng = np.random.default_rng(11)
    g = kwargs.get("groups", 1)
    x = rng.standard_normal((3, 4, 12, 10)).astype(dtype)
    w = rng.standard_normal((6, 4 // g, 5, 5)).astype(dtype)
    b = rng.standard_normal(6).astype(dtype)
    y, ctx = F.conv2d_forward(x, w, b, **kwargs)
    assert ctx.x is x and not hasattr(ctx, "cols")
    dy = rng.standard_normal(y.shape).astype(dtype)
    _, dw, _ = F.conv2d_backward(dy, ctx)
    padding, stride = kwargs.get("padding", 0), kwargs.get("stride", 1)
    cols = F.im2col(x, 5, stride, padding)  # (C*kH*kW, L*N)
    dy2 = dy.transpose(1, 2, 3, 0).reshape(6, -1)  # (F, L*N), batch fastest
    dy3 = dy2.reshape(g, 6 // g, -1)  # (g, F/g, L*N)
    cols3 = cols.reshape(g, cols.shape[0] // g, -1)  # (g, Cg*kH*kW, L*N)
    expected = (dy3 @ cols3.transpose(0, 2, 1)).reshape(w.shape)
    assert_close(dw, expected, dtype)


@pytest.mark.parametrize("op", [F.tanh, F.relu])
def test_activation_out_must_fit_x(op):
    x = np.zeros((2, 3))
    with pytest.raises(ValueError, match=r"`out` must have the shape and dtype of `x`"):
        op(x, out=np.zeros((3, 2)))
    with pytest.raises(ValueError, match=r"got \(2, 3\), float32"):
        op(x, out=np.zeros((2, 3), np.float32))
    with pytest.raises(TypeError, match=r"`out` must be a numpy\.ndarray, got list"):
        op(x, out=[0, 0])
    ro = np.zeros((2, 3))
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="`out` must be writeable"):
        op(x, out=ro)
    out = np.empty_like(x)
    assert op(x, out=out) is out
