"""cnnumpy.inspect: feature maps, saliency and Grad-CAM of a trained LeNet-5.

The models are trained for two epochs on the bundled MNIST sample (a second
each), once per module; the checks compare with finite differences and with
PyTorch's autograd on the same weights.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from cnnumpy import data, models, nn, optim, training
from cnnumpy.data import write_idx
from cnnumpy.inspect import feature_maps, grad_cam, layer_activity, saliency
from cnnumpy.inspect.core import upsample_bilinear
from test_models import torch_lenet

MODELS = {"lenet5": models.lenet5, "lenet5-modern": models.lenet5_modern}
# Every tenth test digit of the sample: ten of each class.
PICK = np.arange(0, 1000, 10)


@pytest.fixture(scope="module")
def digits() -> tuple[data.Dataset, data.Dataset, data.Dataset]:
    """The sample's splits normalized by the train's statistics, and the raw
    (uint8) test split."""
    train, test = data.load_dataset("mnist-sample")
    mean, std = data.normalization_stats(train)
    return train.normalized(mean, std), test.normalized(mean, std), test


@pytest.fixture(scope="module")
def trained(digits) -> dict[str, nn.Sequential]:
    """Each registry model after two epochs of SGD on the MNIST sample."""
    train, _, _ = digits
    out = {}
    for name, build in MODELS.items():
        model = build(rng=np.random.default_rng(0))
        opt = optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
        training.fit(model, opt, train, epochs=2, batch_size=32)
        out[name] = model
    return out


def float64_copy(model: nn.Sequential, name: str) -> nn.Sequential:
    twin = MODELS[name](rng=np.random.default_rng(1))
    twin.load_state_dict(model.state_dict())
    return twin.to(np.float64)


def test_feature_maps_are_every_conv_and_pool_output(trained, digits):
    _, test, _ = digits
    x = test.images[:3]
    for model in trained.values():
        maps = feature_maps(model, x)
        assert {k: v.shape for k, v in maps.items()} == {
            "conv1": (3, 6, 28, 28),
            "pool1": (3, 6, 14, 14),
            "conv2": (3, 16, 10, 10),
            "pool2": (3, 16, 5, 5),
        }
        # conv1's map is the convolution's output, before the in-place activation.
        conv1 = model.conv1
        expected = conv1(x)
        np.testing.assert_array_equal(maps["conv1"], expected)
        np.testing.assert_array_equal(maps["pool2"], model[:6](x))
        mean, channel = layer_activity({k: v[0] for k, v in maps.items()})["pool1"]
        per_channel = np.abs(maps["pool1"][0]).mean(axis=(1, 2))
        assert channel == np.argmax(per_channel)
        assert mean == pytest.approx(per_channel.mean())


def test_inspecting_leaves_the_model_as_it_was(trained, digits):
    _, test, _ = digits
    model = float64_copy(trained["lenet5-modern"], "lenet5-modern")
    model.train()
    model.input_grad = False
    x = test.images[:4].astype(np.float64)
    y = test.labels[:4]
    loss = nn.CrossEntropyLoss()
    model.zero_grad()
    loss(model(x), y)
    model.backward(loss.backward())
    before = [p.grad.copy() for p in model.parameters()]
    feature_maps(model, x)
    saliency(model, x)
    grad_cam(model, x)
    assert model.training and all(m.training for m in model.modules())
    assert model.input_grad is False
    for p, grad in zip(model.parameters(), before):
        np.testing.assert_array_equal(p.grad, grad)


def ink_and_background(test: data.Dataset) -> tuple[np.ndarray, np.ndarray]:
    ink = test.images[PICK, 0] > 127  # (100, 28, 28) the digits' strokes
    return ink, ~ink


def test_saliency_is_larger_on_the_ink_than_on_the_background(trained, digits):
    _, test, raw = digits
    ink, background = ink_and_background(raw)
    grad, classes = saliency(trained["lenet5-modern"], test.images[PICK])
    assert grad.shape == (100, 1, 28, 28)
    np.testing.assert_array_equal(
        classes, np.argmax(trained["lenet5-modern"](test.images[PICK]), axis=1)
    )
    heat = np.abs(grad[:, 0])
    on_ink = [heat[i][ink[i]].mean() for i in range(len(PICK))]
    off_ink = [heat[i][background[i]].mean() for i in range(len(PICK))]
    # Per pixel, the logit is more sensitive to the strokes, digit after digit.
    assert np.mean(np.greater(on_ink, off_ink)) >= 0.95
    assert heat[ink].mean() > 2 * heat[background].mean()


@pytest.mark.parametrize("name", list(MODELS))
def test_saliency_equals_central_differences(trained, digits, name):
    _, test, raw = digits
    model = float64_copy(trained[name], name)
    x = test.images[PICK[:2]].astype(np.float64)
    grad, classes = saliency(model, x, target=3)
    assert list(classes) == [3, 3]
    ink = [np.argwhere(raw.images[k, 0] > 127) for k in PICK[:2]]
    pixels = [(n, 0, *ink[n][k]) for n in (0, 1) for k in (0, len(ink[n]) // 2, -1)]
    if name == "lenet5":
        # Background pixels too. Not with max pooling: over flat background the
        # four values of a pooling window tie, and the gradient has no value.
        pixels += [(0, 0, 3, 25), (1, 0, 20, 9)]
    eps = 1e-6
    for n, c, i, j in pixels:
        up, down = x.copy(), x.copy()
        up[n, c, i, j] += eps
        down[n, c, i, j] -= eps
        estimate = (model.eval()(up)[n, 3] - model(down)[n, 3]) / (2 * eps)
        assert grad[n, c, i, j] == pytest.approx(estimate, rel=1e-5, abs=1e-8)


def torch_grad_cam(
    twin: torch.nn.Module, x: np.ndarray, layer: torch.nn.Module
) -> np.ndarray:
    """Grad-CAM on the output of ``layer``, a module inside ``twin``, by
    autograd (a forward hook keeps the output), upsampled as cnnumpy does."""
    kept = []
    handle = layer.register_forward_hook(lambda m, inputs, out: kept.append(out))
    try:
        logits = twin(torch.from_numpy(x))
    finally:
        handle.remove()
    (maps,) = kept
    top = logits.argmax(dim=1)
    (weights,) = torch.autograd.grad(logits[torch.arange(len(x)), top].sum(), maps)
    weights = weights.mean(dim=(2, 3), keepdim=True)
    cam = torch.relu((weights * maps).sum(dim=1, keepdim=True))
    cam = torch.nn.functional.interpolate(
        cam, size=x.shape[2:], mode="bilinear", align_corners=False
    )[:, 0]
    top_value = cam.amax(dim=(1, 2), keepdim=True)
    return torch.where(top_value > 0, cam / top_value, 0).detach().numpy()


@pytest.mark.parametrize(
    ("name", "layer"),
    [(name, None) for name in MODELS]
    + [("lenet5-modern", "act2"), ("lenet5", "pool1")],
)
def test_grad_cam_equals_pytorch(trained, digits, name, layer):
    _, test, _ = digits
    model = float64_copy(trained[name], name)
    twin = torch_lenet(name == "lenet5-modern", torch.float64)
    twin.load_state_dict(
        {k: torch.from_numpy(v) for k, v in model.state_dict().items()}
    )
    x = test.images[PICK[::5]].astype(np.float64)
    cam, _ = grad_cam(model, x, layer=layer)
    # The default is the last convolution, conv2.
    expected = torch_grad_cam(twin, x, twin.get_submodule(layer or "conv2"))
    assert cam.shape == (20, 28, 28) and cam.min() >= 0 and cam.max() <= 1
    np.testing.assert_allclose(cam, expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize("size", [(28, 28), (7, 5), (3, 13), (1, 1)])
def test_upsample_bilinear_equals_pytorch(size, rng):
    a = rng.standard_normal((2, 4, 6))
    expected = torch.nn.functional.interpolate(
        torch.from_numpy(a)[:, None], size=size, mode="bilinear", align_corners=False
    )[:, 0]
    np.testing.assert_allclose(upsample_bilinear(a, size), expected, atol=1e-12)


def test_grad_cam_layer_and_target(trained, digits):
    _, test, _ = digits
    model = trained["lenet5"]
    x = test.images[:2]
    cam, classes = grad_cam(model, x, layer="pool1", target=7)
    assert cam.shape == (2, 28, 28) and list(classes) == [7, 7]
    with pytest.raises(ValueError, match=r"`layer` must be one of \['conv1'"):
        grad_cam(model, x, layer="conv9")
    with pytest.raises(ValueError, match="`layer` must have a 4-D output"):
        grad_cam(model, x, layer="fc1")
    with pytest.raises(ValueError, match="`target` must be <= 9, got 10"):
        saliency(model, x, target=10)
    with pytest.raises(ValueError, match="must have a Conv2d layer"):
        grad_cam(nn.Sequential(nn.Flatten(), nn.Linear(784, 2)), x)


# ------------------------------------------------------------- pictures and CLI


def test_pictures_are_written(trained, digits, tmp_path):
    pytest.importorskip("matplotlib")
    from cnnumpy.inspect import plot_feature_maps, plot_grad_cam, plot_saliency

    _, test, raw = digits
    model = trained["lenet5-modern"]
    x = test.images[:1]
    maps = {k: v[0] for k, v in feature_maps(model, x).items()}
    assert plot_feature_maps(tmp_path / "maps.png", maps) == 6 + 6 + 16 + 16
    assert plot_feature_maps(tmp_path / "few.png", maps, max_channels=2) == 8
    grad, _ = saliency(model, x)
    plot_saliency(tmp_path / "saliency.png", raw.images[0], grad[0])
    cam, _ = grad_cam(model, x)
    plot_grad_cam(tmp_path / "cam.png", raw.images[0], cam[0])
    for name in ("maps.png", "few.png", "saliency.png", "cam.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def cnnumpy(args: list, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cnnumpy.cli", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, "XDG_CACHE_HOME": str(cwd / "cache")},
        timeout=300,
    )


@pytest.fixture(scope="module")
def checkpoint(tiny_mnist_dir, tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("inspect-run")
    args = ["train", "--data", tiny_mnist_dir, "--epochs", "1", "--batch-size", "50"]
    done = cnnumpy([*args, "--no-plots", "--out", tmp / "run"], tmp)
    assert done.returncode == 0, done.stderr
    return tmp / "run" / "best.npz"


def test_cli_writes_pictures_and_summary(checkpoint, mnist_digits, tmp_path):
    pytest.importorskip("matplotlib")
    from PIL import Image

    images, _ = mnist_digits
    Image.fromarray(255 - images[0, 0]).save(tmp_path / "seven.png")
    write_idx(tmp_path / "two.idx", images[1:3, 0])
    done = cnnumpy(
        ["inspect", checkpoint, "seven.png", "two.idx", "--out", "pics"], tmp_path
    )
    assert done.returncode == 0, done.stderr
    names = {p.name for p in (tmp_path / "pics").iterdir()}
    stems = ("seven", "two-0", "two-1")
    kinds = ("feature-maps", "saliency", "grad-cam")
    assert names == {f"{s}-{k}.png" for s in stems for k in kinds} | {"summary.txt"}
    summary = (tmp_path / "pics" / "summary.txt").read_text()
    assert done.stdout.startswith(summary)
    lines = summary.splitlines()
    assert lines[0].startswith("seven: ") and lines[0].count("%") == 3
    assert "  most active layer: " in summary
    assert lines[1] == f"  saliency and Grad-CAM (conv2) for class {lines[0][7]}"
    assert sum(line.startswith("  conv1: mean |activation| ") for line in lines) == 3


def test_cli_limit_keeps_the_first_images(checkpoint, mnist_digits, tmp_path):
    pytest.importorskip("matplotlib")
    images, _ = mnist_digits
    write_idx(tmp_path / "digits.idx", images[:5, 0])
    args = ["inspect", checkpoint, "digits.idx", "--out", "pics", "--limit", "2"]
    done = cnnumpy(args, tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("Inspecting the first 2 of 5 images")
    names = sorted(p.name for p in (tmp_path / "pics").glob("*-saliency.png"))
    assert names == ["digits-0-saliency.png", "digits-1-saliency.png"]


def one_line_error(done: subprocess.CompletedProcess, message: str) -> None:
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert message in done.stderr


def test_cli_missing_image_is_one_line(checkpoint, tmp_path):
    done = cnnumpy(["inspect", checkpoint, "missing.png", "--out", "pics"], tmp_path)
    one_line_error(done, "file 'missing.png' does not exist")
    assert not (tmp_path / "pics").exists()


def test_cli_bad_checkpoint_is_one_line(tmp_path):
    (tmp_path / "bad.npz").write_bytes(b"not a checkpoint")
    write_idx(tmp_path / "digit.idx", np.zeros((28, 28), np.uint8))
    done = cnnumpy(["inspect", "bad.npz", "digit.idx", "--out", "pics"], tmp_path)
    one_line_error(done, "checkpoint 'bad.npz' is not a complete .npz archive")
    assert not (tmp_path / "pics").exists()
