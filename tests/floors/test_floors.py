"""The fast subset that `make floors` runs on the oldest Python and NumPy declared.

No torch, no hypothesis, no conftest (``pytest --noconftest``): the core ops are
checked against outputs stored in ``reference.npz``, computed once by this
module's `compute` (``python tests/floors/test_floors.py --write``) and checked
against PyTorch in the main suite (`test_reference_matches_torch`); then a few
training steps of LeNet-5 on the embedded data set, and ``cnnumpy train``.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cnnumpy import data, nn, optim
from cnnumpy import functional as F
from cnnumpy.models import create_model

REFERENCE = Path(__file__).resolve().parent / "reference.npz"
DTYPES = ("float64", "float32")
# BLAS differs between NumPy releases: sums may round differently, in the last bits.
TOLERANCE = {"float64": {"rtol": 1e-10, "atol": 1e-12}, "float32": {"rtol": 2e-5, "atol": 1e-5}}  # fmt: skip
CONV = {"stride": 2, "padding": 1, "dilation": 1, "groups": 2}
IM2COL = {"kernel_size": (3, 2), "stride": (2, 1), "padding": (1, 0), "dilation": (1, 2)}  # fmt: skip


def make_inputs(dtype: str) -> dict[str, np.ndarray]:
    """The inputs of every op, from one seeded generator."""
    rng = np.random.default_rng(0)

    def normal(*shape: int) -> np.ndarray:
        return rng.standard_normal(shape).astype(dtype)

    x_im = normal(2, 3, 7, 6)
    cols_shape = F.im2col(x_im, **IM2COL).shape
    return {
        "im2col_x": x_im,
        "col2im_cols": normal(*cols_shape),
        "conv_x": normal(2, 4, 9, 8),
        "conv_w": normal(6, 2, 3, 3),
        "conv_b": normal(6),
        "conv_dy": normal(2, 6, 5, 4),
        "lenet_conv_x": normal(3, 1, 12, 12),
        "lenet_conv_w": normal(4, 1, 5, 5),
        "lenet_conv_b": normal(4),
        "lenet_conv_dy": normal(3, 4, 12, 12),
        "maxpool_x": normal(2, 3, 8, 7),
        "maxpool_dy": normal(2, 3, 4, 4),
        "avgpool_x": normal(2, 3, 8, 8),
        "avgpool_dy": normal(2, 3, 4, 4),
        "linear_x": normal(4, 7),
        "linear_w": normal(3, 7),
        "linear_b": normal(3),
        "linear_dy": normal(4, 3),
        "ce_logits": normal(5, 10),
        "ce_target": rng.integers(0, 10, size=5),
    }


def compute(inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Each op's forward and backward outputs on ``inputs``."""
    i = inputs
    out = {
        "im2col": F.im2col(i["im2col_x"], **IM2COL),
        "col2im": F.col2im(i["col2im_cols"], i["im2col_x"].shape, **IM2COL),
    }
    for name, kwargs in (("conv", CONV), ("lenet_conv", {"padding": 2})):
        y, ctx = F.conv2d_forward(
            i[f"{name}_x"], i[f"{name}_w"], i[f"{name}_b"], **kwargs
        )
        dx, dw, db = F.conv2d_backward(i[f"{name}_dy"], ctx)
        out |= {f"{name}_y": y, f"{name}_dx": dx, f"{name}_dw": dw, f"{name}_db": db}
    y, ctx = F.max_pool2d_forward(i["maxpool_x"], 3, stride=2, padding=1)
    out |= {"maxpool_y": y, "maxpool_dx": F.max_pool2d_backward(i["maxpool_dy"], ctx)}
    y, ctx = F.avg_pool2d_forward(i["avgpool_x"], 2)
    out |= {"avgpool_y": y, "avgpool_dx": F.avg_pool2d_backward(i["avgpool_dy"], ctx)}
    out["linear_y"] = F.linear(i["linear_x"], i["linear_w"], i["linear_b"])
    dx, dw, db = F.linear_backward(i["linear_dy"], i["linear_x"], i["linear_w"])
    out |= {"linear_dx": dx, "linear_dw": dw, "linear_db": db}
    loss, probs = F.cross_entropy_forward(i["ce_logits"], i["ce_target"])
    out["ce_loss"] = np.asarray(loss)
    out["ce_dlogits"] = F.cross_entropy_backward(probs, i["ce_target"])
    return out


def lenet_steps(steps: int = 3) -> np.ndarray:
    """Losses of ``steps`` Adam steps of LeNet-5 (float64) on 64 sample digits,
    then the loss after the last step."""
    train, _ = data.load_dataset("mnist-sample")
    pick = np.random.default_rng(0).permutation(len(train))[:64]
    x = train.images[pick].astype(np.float64) / 255.0  # (64, 1, 28, 28)
    y = train.labels[pick]
    model = create_model("lenet5", rng=np.random.default_rng(0), dtype="float64")
    criterion = nn.CrossEntropyLoss()
    optimizer = optim.Adam(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(steps):
        optimizer.zero_grad()
        losses.append(criterion(model(x), y))
        model.backward(criterion.backward())
        optimizer.step()
    losses.append(criterion(model(x), y))
    return np.array(losses)


def write_reference(path: Path = REFERENCE) -> None:
    arrays = {"lenet_losses": lenet_steps()}
    for dtype in DTYPES:
        inputs = make_inputs(dtype)
        arrays |= {f"{dtype}/in/{k}": v for k, v in inputs.items()}
        arrays |= {f"{dtype}/out/{k}": v for k, v in compute(inputs).items()}
    np.savez_compressed(path, **arrays)


@pytest.fixture(scope="module")
def reference() -> dict[str, np.ndarray]:
    with np.load(REFERENCE, allow_pickle=False) as npz:
        return {name: npz[name] for name in npz.files}


def split(reference: dict[str, np.ndarray], dtype: str, part: str) -> dict:
    prefix = f"{dtype}/{part}/"
    return {k[len(prefix) :]: v for k, v in reference.items() if k.startswith(prefix)}


@pytest.mark.parametrize("dtype", DTYPES)
def test_ops_match_the_stored_reference(reference, dtype):
    inputs = split(reference, dtype, "in")
    # The same generator gives the same inputs on every NumPy since 1.17.
    for name, array in make_inputs(dtype).items():
        np.testing.assert_array_equal(array, inputs[name], err_msg=name)
    expected = split(reference, dtype, "out")
    actual = compute(inputs)
    assert sorted(actual) == sorted(expected) and len(actual) == 20
    for name, array in actual.items():
        assert array.dtype == expected[name].dtype, name
        assert array.shape == expected[name].shape, name
        np.testing.assert_allclose(
            array, expected[name], err_msg=name, **TOLERANCE[dtype]
        )


def test_lenet_training_steps_match_the_stored_losses(reference):
    losses = lenet_steps()
    np.testing.assert_allclose(losses, reference["lenet_losses"], rtol=1e-9)
    assert losses[-1] < losses[0]  # it learns


def test_reference_matches_torch(reference):
    """The stored outputs are right, not only repeatable (where torch is)."""
    torch = pytest.importorskip("torch")
    tf = torch.nn.functional
    i = split(reference, "float64", "in")
    out = split(reference, "float64", "out")
    t = {
        k: torch.from_numpy(v).requires_grad_(v.dtype.kind == "f") for k, v in i.items()
    }
    for name, kwargs in (("conv", CONV), ("lenet_conv", {"padding": 2})):
        y = tf.conv2d(t[f"{name}_x"], t[f"{name}_w"], t[f"{name}_b"], **kwargs)
        y.backward(t[f"{name}_dy"])
        for got, want in (
            (y, "y"),
            (t[f"{name}_x"].grad, "dx"),
            (t[f"{name}_w"].grad, "dw"),
            (t[f"{name}_b"].grad, "db"),
        ):
            np.testing.assert_allclose(
                out[f"{name}_{want}"], got.detach().numpy(), rtol=1e-10, atol=1e-12
            )
    cols = tf.unfold(t["im2col_x"], **IM2COL)  # (N, C*kH*kW, L)
    K = cols.shape[1]
    np.testing.assert_allclose(
        out["im2col"].reshape(K, -1, 2).transpose(2, 0, 1),  # (N, K, L): batch fastest
        cols.detach().numpy(),
    )
    y = tf.max_pool2d(t["maxpool_x"], 3, stride=2, padding=1)
    y.backward(t["maxpool_dy"])
    np.testing.assert_allclose(out["maxpool_y"], y.detach().numpy())
    np.testing.assert_allclose(out["maxpool_dx"], t["maxpool_x"].grad.numpy())
    loss = tf.cross_entropy(t["ce_logits"], t["ce_target"])
    loss.backward()
    np.testing.assert_allclose(out["ce_loss"], loss.item(), rtol=1e-12)
    np.testing.assert_allclose(out["ce_dlogits"], t["ce_logits"].grad.numpy())


def test_cli_trains_on_the_embedded_sample(tmp_path):
    train = ["train", "--epochs", "1", "--quiet", "--no-plots"]
    result = subprocess.run(
        [sys.executable, "-m", "cnnumpy.cli", *train, "--out", str(tmp_path / "run")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    match = re.fullmatch(
        r"Test accuracy: ([\d.]+)% \(loss [\d.]+\) on 1,000 images of mnist-sample\n",
        result.stdout,
    )
    assert match is not None, result.stdout
    assert float(match.group(1)) > 50  # one epoch; chance is 10%


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit(f"usage: python {sys.argv[0]} --write  (rewrites {REFERENCE.name})")
    write_reference()
    print(f"wrote {REFERENCE}")
