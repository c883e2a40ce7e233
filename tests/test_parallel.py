"""The engine's own threads: ops split across threads give PyTorch's results.

Most tests elsewhere use arrays too small to be split; here ``split_everything``
makes every op cut its work into as many parts as there are threads (3 on this
2-core machine, so the parts are uneven and outnumber the cores), and the
results are checked against PyTorch and against one thread.
"""

from __future__ import annotations

import os
import threading
import time

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import cnnumpy
from cnnumpy import functional as F
from cnnumpy import nn
from cnnumpy.functional import conv as conv_module
from cnnumpy.functional._engine import blas, gauge, products, threads
from conftest import assert_close, leaf

DTYPES = [np.float32, np.float64]


@pytest.fixture
def always_hand_off(monkeypatch):
    """The workers get their parts however the hand-offs have been paying.

    On a busy test machine the gauge could otherwise run the parts in the
    caller, and a test of the workers would not reach them.
    """
    monkeypatch.setattr(gauge, "HOLD", 0)
    monkeypatch.setattr(threads, "_gauges", gauge.Gauges())


@pytest.fixture(params=["parts", "pieces"])
def split_everything(request, monkeypatch, always_hand_off):
    """Every op splits, whatever its size: into 3 parts, or into pieces.

    With "pieces" every op is cut as a big one is (up to ``PIECES`` pieces per
    thread, handed out as threads come free).
    """
    monkeypatch.setattr(threads, "MIN_PART", 1)
    monkeypatch.setattr(products, "GEMM_ELEMENT", 1)
    monkeypatch.setattr(threads, "PIECE", 1 if request.param == "pieces" else 1 << 62)
    before = cnnumpy.get_num_threads()
    cnnumpy.set_num_threads(3)
    yield request.param
    cnnumpy.set_num_threads(before)


@pytest.fixture
def one_thread():
    before = cnnumpy.get_num_threads()
    cnnumpy.set_num_threads(1)
    yield
    cnnumpy.set_num_threads(before)


def rand(rng, shape, dtype):
    return rng.standard_normal(shape).astype(dtype)


def assert_conv2d_matches_torch(rng, x, w, b, kwargs):
    """Output and every gradient of conv2d_forward/backward equal PyTorch's."""
    y, ctx = F.conv2d_forward(x, w, b, **kwargs)
    dy = rand(rng, y.shape, x.dtype)
    dx, dw, db = F.conv2d_backward(dy, ctx)
    tx, tw, tb = leaf(x), leaf(w), leaf(b)
    ty = TF.conv2d(tx, tw, tb, **kwargs)
    ty.backward(torch.from_numpy(dy))
    for ours, theirs in ((y, ty), (dx, tx.grad), (dw, tw.grad), (db, tb.grad)):
        assert_close(ours, theirs, x.dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    ("cin", "cout", "kwargs"),
    [
        (1, 6, {"padding": 2}),
        (6, 16, {}),
        (4, 6, {"stride": 2, "padding": 1, "dilation": 2}),
        (6, 4, {"groups": 2, "padding": 1}),  # a part holds channels of both groups
    ],
)
def test_split_conv2d_matches_torch(split_everything, dtype, cin, cout, kwargs):
    rng = np.random.default_rng(0)
    groups = kwargs.get("groups", 1)
    x = rand(rng, (5, cin, 11, 9), dtype)
    w = rand(rng, (cout, cin // groups, 3, 3), dtype)
    b = rand(rng, (cout,), dtype)
    assert_conv2d_matches_torch(rng, x, w, b, kwargs)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    ("kind", "kwargs"),
    [
        ("avg", {"kernel_size": 2}),
        ("avg", {"kernel_size": 3, "stride": 2, "padding": 1}),
        ("max", {"kernel_size": 2}),
        ("max", {"kernel_size": 3, "stride": 2, "padding": 1}),
    ],
)
def test_split_pooling_matches_torch(split_everything, dtype, kind, kwargs):
    rng = np.random.default_rng(1)
    x = rand(rng, (4, 5, 9, 8), dtype)
    forward, backward = {
        "avg": (F.avg_pool2d_forward, F.avg_pool2d_backward),
        "max": (F.max_pool2d_forward, F.max_pool2d_backward),
    }[kind]
    y, ctx = forward(x, **kwargs)
    dy = rand(rng, y.shape, dtype)
    dx = backward(dy, ctx)
    tx = leaf(x)
    ty = {"avg": TF.avg_pool2d, "max": TF.max_pool2d}[kind](tx, **kwargs)
    ty.backward(torch.from_numpy(dy))
    assert_close(y, ty, dtype)
    assert_close(dx, tx.grad, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_split_linear_and_tanh_match_torch(split_everything, dtype):
    rng = np.random.default_rng(2)
    x, w, b = (
        rand(rng, (7, 13), dtype),
        rand(rng, (5, 13), dtype),
        rand(rng, (5,), dtype),
    )
    y = F.tanh(F.linear(x, w, b))
    dy = rand(rng, y.shape, dtype)
    dz = F.tanh_backward(dy, y)
    dx, dw, db = F.linear_backward(dz, x, w)
    tx, tw, tb = leaf(x), leaf(w), leaf(b)
    ty = torch.tanh(TF.linear(tx, tw, tb))
    ty.backward(torch.from_numpy(dy))
    for ours, theirs in ((y, ty), (dx, tx.grad), (dw, tw.grad), (db, tb.grad)):
        assert_close(ours, theirs, dtype)


def lenet_step(dtype):
    """Logits and every gradient of one LeNet-5 batch (fixed seed)."""
    rng = np.random.default_rng(3)
    model = cnnumpy.models.lenet5(dtype=dtype, rng=rng)
    x = rand(rng, (8, 1, 28, 28), dtype)
    target = rng.integers(0, 10, 8)
    loss = nn.CrossEntropyLoss()
    logits = model(x)
    loss(logits, target)
    dx = model.backward(loss.backward())
    return [logits, dx] + [p.grad for p in model.parameters()]


@pytest.mark.parametrize("dtype", DTYPES)
def test_split_network_equals_one_thread(dtype, monkeypatch, always_hand_off):
    """Element-wise ops and copies split exactly; products to rounding."""
    before = cnnumpy.get_num_threads()
    try:
        cnnumpy.set_num_threads(1)
        serial = lenet_step(dtype)
        monkeypatch.setattr(threads, "MIN_PART", 1)
        monkeypatch.setattr(products, "GEMM_ELEMENT", 1)
        cnnumpy.set_num_threads(3)
        split = lenet_step(dtype)
    finally:
        cnnumpy.set_num_threads(before)
    for a, b in zip(serial, split, strict=True):
        assert_close(b, a, dtype)


@pytest.fixture
def two_threads(always_hand_off):
    """Two threads, for functions run side by side (see ``products.together``)."""
    if blas.blas_controls() is None:
        pytest.skip("BLAS threads are not ours to hold: products are not split")
    before = cnnumpy.get_num_threads()
    cnnumpy.set_num_threads(2)
    yield
    cnnumpy.set_num_threads(before)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "kwargs", [{}, {"groups": 2, "padding": 1}, {"stride": 2, "dilation": 2}]
)
def test_conv2d_gradients_side_by_side_on_two_threads(
    two_threads, dtype, kwargs, monkeypatch
):
    """On two threads, a thread each for the input and the weight gradient.

    The input gradient runs as on one thread, so its bits are one thread's;
    the weight gradient's product is cut as when it runs alone.
    """
    monkeypatch.setattr(threads, "MIN_PART", 1)  # small arrays, as elsewhere
    rng = np.random.default_rng(8)
    x = rand(rng, (5, 6, 11, 9), dtype)
    w = rand(rng, (4, 6 // kwargs.get("groups", 1), 3, 3), dtype)
    b = rand(rng, (4,), dtype)
    y, ctx = F.conv2d_forward(x, w, b, **kwargs)
    dy = rand(rng, y.shape, dtype)
    cnnumpy.set_num_threads(1)
    serial = F.conv2d_backward(dy, ctx)
    cnnumpy.set_num_threads(2)
    seen = {}
    # The input gradient as a forward convolution, or by col2im.
    by_conv = conv_module._by_conv(ctx)
    for name, key in (
        ("_input_grad_by_conv" if by_conv else "_input_grad", "input"),
        ("_weight_grad", "weight"),
    ):
        fn = getattr(conv_module, name)

        def spy(*args, key=key, fn=fn):
            seen[key] = (threading.get_ident(), threads.parts(100, 10**9))
            return fn(*args)

        monkeypatch.setattr(conv_module, name, spy)
    both = F.conv2d_backward(dy, ctx)
    assert seen["input"][0] == threading.get_ident()  # the caller's
    assert seen["weight"][0] != threading.get_ident()  # a worker's
    assert seen["input"][1] == seen["weight"][1] == 1  # parts
    np.testing.assert_array_equal(both[0], serial[0])  # as on one thread
    np.testing.assert_array_equal(both[2], serial[2])
    # Alone, the weight gradient's product is cut between the threads: the
    # same cut as it made inside its part, so the same bits.
    dx, dw, _ = F.conv2d_backward(dy, ctx, input_grad=False)
    assert dx is None
    np.testing.assert_array_equal(both[1], dw)
    tx, tw, tb = leaf(x), leaf(w), leaf(b)
    TF.conv2d(tx, tw, tb, **kwargs).backward(torch.from_numpy(dy))
    for ours, theirs in zip(both, (tx.grad, tw.grad, tb.grad), strict=True):
        assert_close(ours, theirs, dtype)


def test_together_runs_in_turn_unless_a_thread_each_pays(two_threads):
    """Side by side only with a thread per function and products worth a part."""

    def fns(n):
        return [lambda i=i: (i, threading.get_ident()) for i in range(n)]

    here = threading.get_ident()
    big = 1 << 30
    results = products.together(fns(2), big)
    assert [r[0] for r in results] == [0, 1]
    assert results[0][1] == here and results[1][1] != here
    for n, size in ((2, 1), (3, big), (1, big)):  # too small; more than 2 threads
        results = products.together(fns(n), size)
        assert results == [(i, here) for i in range(n)]


def test_together_hands_back_an_error_after_both_ran(two_threads):
    ran = []

    def fails():
        raise RuntimeError("the first failed")

    def works():
        time.sleep(0.01)
        ran.append(threading.get_ident())
        return 1

    with pytest.raises(RuntimeError, match="the first failed"):
        products.together([fails, works], 1 << 30)
    assert len(ran) == 1 and ran[0] != threading.get_ident()  # on a worker
    assert products.together([works, works], 1 << 30) == [1, 1]  # usable again


@pytest.mark.parametrize("n_threads", [2, 3])  # 2: gradients side by side
@pytest.mark.parametrize("dtype", DTYPES)
def test_parts_held_in_the_caller_give_the_same_bits(dtype, n_threads, monkeypatch):
    """Handed off or run in turn by the caller, the parts make the same arrays."""
    monkeypatch.setattr(gauge, "GAUGED", True)  # as on Linux and macOS
    monkeypatch.setattr(threads, "MIN_PART", 1)
    monkeypatch.setattr(products, "GEMM_ELEMENT", 1)
    monkeypatch.setattr(gauge, "HOLD", 0)
    before = cnnumpy.get_num_threads()
    try:
        cnnumpy.set_num_threads(n_threads)
        monkeypatch.setattr(threads, "_gauges", gauge.Gauges())
        handed_off = lenet_step(dtype)
        held = gauge.Gauges(hold=10**9)
        monkeypatch.setattr(threads, "_gauges", held)
        in_turn = lenet_step(dtype)
    finally:
        cnnumpy.set_num_threads(before)
    assert held.refused > 0  # the parts did run in the caller
    for a, b in zip(handed_off, in_turn, strict=True):
        np.testing.assert_array_equal(b, a)


def test_gauge_holds_the_parts_while_hand_offs_do_not_pay(monkeypatch):
    monkeypatch.setattr(gauge, "WINDOW", 4)
    monkeypatch.setattr(gauge, "HOLD", 3)
    monkeypatch.setattr(gauge, "MAX_HOLD", 12)
    g = gauge.Gauge()

    def window(wall, cpu):
        for _ in range(gauge.WINDOW):
            assert g.hand_off()
            g.record(wall, cpu)

    def held():  # hand-offs refused before the gauge hands off again
        n = 0
        while not g.hand_off():
            n += 1
        return n

    window(wall=0.5, cpu=1.0)  # parts overlapped: pays
    assert held() == 0
    window(wall=0.8, cpu=1.0)  # more than PAYS (0.75) of the CPU time
    assert held() == 3
    window(wall=0.8, cpu=1.0)
    assert held() == 6  # twice as long after a second bad window in a row
    window(wall=2.0, cpu=1.0)
    assert held() == 12
    window(wall=2.0, cpu=1.0)
    assert held() == 12  # no longer than MAX_HOLD
    window(wall=0.5, cpu=1.0)
    assert held() == 0
    window(wall=2.0, cpu=1.0)
    assert held() == 3  # back to HOLD after a window that paid


def test_run_keeps_parts_in_the_caller_while_hand_offs_do_not_pay(monkeypatch):
    """Workers that sleep take wall time but no CPU time: handing off does not pay."""
    monkeypatch.setattr(gauge, "GAUGED", True)  # as on Linux and macOS
    monkeypatch.setattr(gauge, "WINDOW", 2)
    monkeypatch.setattr(gauge, "HOLD", 3)
    monkeypatch.setattr(threads, "_gauges", gauge.Gauges())
    for _ in range(2):
        threads.run([lambda: None, lambda: time.sleep(0.02)], key="op")
    seen = []

    def part():
        seen.append((threading.get_ident(), threads.parts(100, 100)))

    for _ in range(3):
        threads.run([part, part], key="op")
    # In the caller, each as a part: a part never splits again.
    assert seen == [(threading.get_ident(), 1)] * 6
    seen.clear()
    threads.run([part, part], key="op")  # HOLD runs later: workers again
    assert len({ident for ident, _ in seen}) == 2


def test_each_op_and_size_has_its_own_gauge(monkeypatch):
    """An op whose hand-offs do not pay is held; another op, or the same op at
    another size, still hands its parts off."""
    monkeypatch.setattr(gauge, "GAUGED", True)  # as on Linux and macOS
    monkeypatch.setattr(gauge, "WINDOW", 2)
    monkeypatch.setattr(threads, "MIN_PART", 1)
    gauges = gauge.Gauges()
    monkeypatch.setattr(threads, "_gauges", gauges)
    seen: dict[str, set] = {"slow": set(), "other": set()}

    def slow(a, b):  # sleeps: wall time without CPU time, never pays
        seen["slow"].add(threading.get_ident())
        if a > 0:
            time.sleep(0.01)

    def other(a, b):
        seen["other"].add(threading.get_ident())

    for _ in range(2):
        threads.split(slow, 2, 1000, k=2)
    seen["slow"].clear()
    threads.split(slow, 2, 1000, k=2)
    assert seen["slow"] == {threading.get_ident()}  # held: run in the caller
    assert gauges.refused == 1
    threads.split(other, 2, 1000, k=2)
    assert len(seen["other"]) == 2  # its own gauge: handed off
    seen["slow"].clear()
    threads.split(slow, 2, 10**6, k=2)  # the same op, far bigger: its own gauge
    assert len(seen["slow"]) == 2
    assert threads.gauge_key(slow, 1000) == threads.gauge_key(slow, 1023)
    assert threads.gauge_key(slow, 1000) != threads.gauge_key(slow, 2048)


def test_pieces_are_handed_off_while_the_gauge_holds_parts(monkeypatch):
    """A late worker only leaves the caller more pieces, so pieces never wait."""
    monkeypatch.setattr(gauge, "GAUGED", True)  # as on Linux and macOS
    monkeypatch.setattr(threads, "PIECE", 1)
    held = gauge.Gauges(hold=10**9)
    monkeypatch.setattr(threads, "_gauges", held)
    seen = set()

    def piece(a, b):
        seen.add(threading.get_ident())
        time.sleep(0.01)  # so that no thread takes every piece alone

    threads.split(piece, 40, k=2)
    assert len(seen) == 2
    assert held.refused == 0 and not held.gauges  # neither asked nor told
    monkeypatch.setattr(threads, "PIECE", 1 << 62)
    threads.split(lambda a, b: None, 40, k=2)  # equal parts: held
    assert held.refused == 1


def test_without_a_fine_cpu_clock_parts_are_always_handed_off(monkeypatch):
    held = gauge.Gauges(hold=10**9)
    monkeypatch.setattr(threads, "_gauges", held)
    monkeypatch.setattr(gauge, "GAUGED", False)  # as on Windows
    seen = set()
    threads.run([lambda: seen.add(threading.get_ident())] * 2)
    assert len(seen) == 2
    assert held.refused == 0 and not held.gauges  # not consulted


def test_elementwise_split_is_exact(split_everything):
    rng = np.random.default_rng(4)
    x = rand(rng, (3, 4, 5, 6), np.float64).transpose(3, 0, 1, 2)  # NCHW view
    y = F.tanh(x)
    assert y.strides == x.strides  # the memory order is kept
    np.testing.assert_array_equal(y, np.tanh(x))
    dy = rand(rng, y.shape, np.float64)
    np.testing.assert_array_equal(F.tanh_backward(dy, y), dy * (1 - y * y))


def test_an_error_in_a_worker_reaches_the_caller(split_everything):
    done = []

    def part(i):
        def run():
            if i == 2:
                raise ZeroDivisionError("part 2")
            done.append(i)

        return run

    with pytest.raises(ZeroDivisionError, match="part 2"):
        threads.run([part(0), part(1), part(2)])
    assert sorted(done) == [0, 1]  # the others finished before the raise
    threads.run([part(0), part(1)])  # the workers are still there
    assert sorted(done) == [0, 0, 1, 1]


def test_ctrl_c_in_the_caller_waits_for_the_workers(split_everything):
    done = []

    def slow():
        time.sleep(0.2)
        done.append("worker")

    def interrupted():
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        threads.run([interrupted, slow])
    assert done == ["worker"]  # finished before the caller gave up


def test_ctrl_c_while_waiting_leaves_no_stale_result(split_everything, monkeypatch):
    """A result left in a queue would be taken for the next call's."""
    threads.run([lambda: None, lambda: None])  # the worker exists
    worker = threads._workers[0]
    real = worker.done

    class InterruptedOnce:
        hits = 0
        put = real.put  # the worker answers as before

        def get(self):
            if not self.hits:
                self.hits += 1
                raise KeyboardInterrupt
            return real.get()

    monkeypatch.setattr(worker, "done", InterruptedOnce())
    with pytest.raises(KeyboardInterrupt):
        threads.run([lambda: None, lambda: time.sleep(0.1)])
    monkeypatch.setattr(worker, "done", real)
    out = []
    threads.run([lambda: None, lambda: (time.sleep(0.1), out.append(1))])
    assert out == [1]  # this call waited for its own result


def test_workers_obey_the_callers_errstate(split_everything):
    x = np.full((3, 4, 5, 6), 1e300)
    with np.errstate(over="raise"), pytest.raises(FloatingPointError):
        threads.elementwise(lambda o, a: np.multiply(a, a, out=o), np.empty_like(x), x)
    with np.errstate(over="ignore"):
        out = threads.elementwise(
            lambda o, a: np.multiply(a, a, out=o), np.empty_like(x), x
        )
    assert np.isinf(out).all()


def test_a_part_that_splits_again_runs_serially(split_everything):
    inner = []

    def part():
        threads.run([lambda: inner.append(1), lambda: inner.append(2)])

    threads.run([part, part, part])
    assert sorted(inner) == [1, 1, 1, 2, 2, 2]
    assert threads.parts(100, 100) == 3  # and the caller splits again after


def test_two_caller_threads_both_get_right_results(split_everything):
    rng = np.random.default_rng(5)
    xs = [rand(rng, (4, 3, 12, 12), np.float64) for _ in range(2)]
    w = rand(rng, (5, 3, 3, 3), np.float64)
    expected = [TF.conv2d(torch.from_numpy(x), torch.from_numpy(w)).numpy() for x in xs]
    got = [None, None]

    def work(i):
        for _ in range(20):
            got[i] = F.conv2d(xs[i], w)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for g, e in zip(got, expected, strict=True):
        assert_close(g, e, np.float64)


def test_blas_threads_are_given_back():
    controls = blas.blas_controls()
    if controls is None:
        pytest.skip("NumPy's BLAS here is not OpenBLAS")
    get, set_ = controls
    set_(2)
    with blas.blas_single_thread():
        assert get() == 1
        with blas.blas_single_thread():  # nested
            assert get() == 1
        assert get() == 1
    assert get() == 2
    # Overlapping blocks in two threads: the last to leave gives the count back.
    inside, leave = threading.Event(), threading.Event()

    def other():
        with blas.blas_single_thread():
            inside.set()
            leave.wait()

    t = threading.Thread(target=other)
    t.start()
    inside.wait()
    with blas.blas_single_thread():
        leave.set()
        t.join()
        assert get() == 1
    assert get() == 2
    before = get()
    rng = np.random.default_rng(6)
    F.conv2d(
        rand(rng, (64, 3, 32, 32), np.float32), rand(rng, (8, 3, 5, 5), np.float32)
    )
    assert get() == before


def test_blas_controls_are_numpys_own_blas():
    """Checked against threadpoolctl, which finds NumPy's BLAS its own way."""
    threadpoolctl = pytest.importorskip("threadpoolctl")
    controls = blas.blas_controls()
    infos = [i for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"]
    numpy_blas = [i for i in infos if "numpy" in i["filepath"]]
    if not numpy_blas or numpy_blas[0]["internal_api"] != "openblas":
        pytest.skip("NumPy's BLAS here is not a bundled OpenBLAS")
    assert controls is not None
    get, set_ = controls
    before = get()
    try:
        for n in (1, 2):
            set_(n)
            info = [
                i for i in threadpoolctl.threadpool_info() if "numpy" in i["filepath"]
            ]
            assert info[0]["num_threads"] == n
    finally:
        set_(before)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_gets_fresh_workers(split_everything):
    rng = np.random.default_rng(7)
    x = rand(rng, (4, 3, 10, 10), np.float64)
    F.tanh(x)  # the parent's workers exist
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its workers were not copied; new ones must start
        ok = np.array_equal(F.tanh(x), np.tanh(x))
        os.write(w, b"1" if ok else b"0")
        os._exit(0)
    os.close(w)
    assert os.read(r, 1) == b"1"
    os.waitpid(pid, 0)


def test_parts_run_on_distinct_threads(split_everything):
    seen = []

    def part(a, b):
        seen.append((a, b, threading.get_ident()))
        time.sleep(0.01)  # so that no thread takes every piece alone

    threads.split(part, 40)
    if split_everything == "parts":
        assert sorted(s[:2] for s in seen) == [(0, 13), (13, 26), (26, 40)]
    else:  # 3 threads * PIECES pieces, each handed out once
        assert sorted(s[:2] for s in seen) == threads.ranges(40, 3 * threads.PIECES)
    assert len({s[2] for s in seen}) == 3


def test_no_piece_is_handed_out_after_an_error(split_everything):
    done = []

    def piece(a, b):
        if a == 0:
            raise RuntimeError("piece 0 failed")
        time.sleep(0.01)
        done.append(a)

    with pytest.raises(RuntimeError, match="piece 0 failed"):
        threads.split(piece, 40)
    if split_everything == "pieces":
        # The two other threads had taken one piece each when piece 0 failed.
        assert len(done) <= 2


def test_one_thread_runs_in_the_caller(one_thread):
    seen = set()
    threads.split(lambda a, b: seen.add(threading.get_ident()), 10**6)
    assert seen == {threading.get_ident()}
    assert threads.parts(10**9, 10**9) == 1


def test_default_is_the_usable_cpus():
    assert cnnumpy.get_num_threads() >= 1
    if hasattr(os, "sched_getaffinity"):
        assert threads._default_threads() == len(os.sched_getaffinity(0))


@pytest.mark.parametrize(
    ("value", "error", "match"),
    [
        (0, ValueError, r"`num_threads` must be >= 1, got 0"),
        (-2, ValueError, r"`num_threads` must be >= 1, got -2"),
        (1.5, TypeError, r"`num_threads` must be an int, got float 1.5"),
        (True, TypeError, r"`num_threads` must be an int, got bool True"),
        ("2", TypeError, r"`num_threads` must be an int, got str '2'"),
    ],
)
def test_set_num_threads_rejects_bad_values(value, error, match):
    before = cnnumpy.get_num_threads()
    with pytest.raises(error, match=match):
        cnnumpy.set_num_threads(value)
    assert cnnumpy.get_num_threads() == before


def test_ranges_cover_evenly():
    assert threads.ranges(10, 3) == [(0, 3), (3, 6), (6, 10)]
    assert threads.ranges(2, 3) == [(0, 1), (1, 2)]
    assert threads.ranges(0, 2) == []


@pytest.mark.parametrize("out_h, out_w", [(28, 28), (10, 10), (7, 3), (1, 1), (0, 5)])
@pytest.mark.parametrize("per_position", [1, 100, 2500, 15000, 1 << 17, 1 << 20])
@pytest.mark.parametrize("start_stop", [(0, 1), (0, 14), (3, 28)])
def test_conv_blocks_cover_each_position_once_in_even_blocks(
    out_h, out_w, per_position, start_stop
):
    from cnnumpy.functional import conv

    start, stop = min(start_stop[0], out_h), min(start_stop[1], out_h)
    blocks = conv._blocks(per_position, out_h, out_w)
    got = list(blocks.of(start, stop))
    seen = [(r, c) for a, b, o0, o1 in got for r in range(a, b) for c in range(o0, o1)]
    assert sorted(seen) == [(r, c) for r in range(start, stop) for c in range(out_w)]
    assert len(seen) == len(set(seen))
    sizes = [(b - a) * (o1 - o0) for a, b, o0, o1 in got]
    assert all(s <= blocks.size for s in sizes)  # the buffer holds every block
    # Blocks fit (unless one position alone is too big), are as few as fit,
    # and are even: within one row, or within one column of a row, of each other.
    fits = conv.BLOCK_ELEMENTS // per_position
    if fits >= 1:
        assert all(s <= fits for s in sizes)
    if len(got) > 1:
        if blocks.step == out_w:  # whole rows
            heights = [b - a for a, b, _, _ in got]
            assert max(heights) - min(heights) <= 1
            assert len(got) == -(-(stop - start) // blocks.rows)
        else:  # one row at a time, cut into columns
            widths = [o1 - o0 for _, _, o0, o1 in got]
            assert max(widths) - min(widths) <= 1
            assert len(got) == (stop - start) * -(-out_w // blocks.step)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("block_elements", [1, 500, 1 << 30])
@pytest.mark.parametrize(
    "kwargs",
    [
        {"padding": 1, "groups": 2, "stride": (1, 2)},
        {"padding": 2, "groups": 1, "stride": (2, 1), "dilation": (2, 1)},
        {"padding": 1, "groups": 2, "dilation": (1, 2)},  # dx by a forward conv
    ],
)
def test_conv2d_blocks_of_any_size_match_torch(
    split_everything, monkeypatch, dtype, block_elements, kwargs
):
    """Blocks of one output position (or row), of part of a row, of whole rows."""
    from cnnumpy.functional import conv

    monkeypatch.setattr(conv, "BLOCK_ELEMENTS", block_elements)
    rng = np.random.default_rng(8)
    x = rand(rng, (3, 4, 10, 9), dtype)
    w = rand(rng, (6, 4 // kwargs["groups"], 3, 3), dtype)
    b = rand(rng, (6,), dtype)
    assert_conv2d_matches_torch(rng, x, w, b, kwargs)
