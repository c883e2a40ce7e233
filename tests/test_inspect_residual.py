"""cnnumpy.inspect on the nested models: resnet8, resnet20 and vgg-bn.

Their layers sit inside stages and residual blocks, addressed by their path in
``named_modules()``; Grad-CAM is compared with PyTorch's autograd on twins with
the same weights (random, batch norm's statistics too).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cnnumpy import models, nn
from cnnumpy.data import write_idx
from cnnumpy.inspect import feature_maps, grad_cam, layer_activity, saliency
from cnnumpy.inspect.core import upsample_bilinear
from cnnumpy.inspect.layers import cam_layer
from conftest import numpy_state, write_mnist_dir
from test_inspect import cnnumpy, torch_grad_cam
from test_models_cnn import TWINS
from test_nn_residual import randomize_bn


def twins(name: str) -> tuple[nn.Sequential, torch.nn.Module]:
    """A float64 model of the registry and its torch twin, same weights, in
    evaluation mode."""
    rng = np.random.default_rng(5)
    theirs = TWINS[name](10, 1).to(torch.float64)
    randomize_bn(theirs, rng)
    ours = models.create_model(name, rng=rng, dtype=np.float64)
    ours.load_state_dict(numpy_state(theirs))
    return ours, theirs.eval()


@pytest.fixture(scope="module")
def x(mnist_digits) -> np.ndarray:
    images, _ = mnist_digits
    return (images[:6] / 255 - 0.13) / 0.31  # (6, 1, 28, 28) float64


@pytest.mark.parametrize(
    ("name", "layer", "default"),
    [
        ("resnet8", None, "layer3.0"),
        ("resnet20", None, "layer3.2"),
        ("vgg-bn", None, "features.17"),
        ("resnet8", "layer3.0.residual", None),
        ("resnet8", "layer2.0.residual.body.conv2", None),
        ("resnet8", "layer3.0.residual.shortcut.0", None),
        ("vgg-bn", "features.20", None),
    ],
)
def test_grad_cam_equals_pytorch(x, name, layer, default):
    ours, theirs = twins(name)
    if layer is None:
        # The last residual block's output (after its ReLU), else the last conv.
        assert cam_layer(ours) == default
    cam, classes = grad_cam(ours, x, layer=layer)
    expected = torch_grad_cam(theirs, x, theirs.get_submodule(layer or default))
    assert cam.shape == (6, 28, 28) and cam.max() == 1
    np.testing.assert_array_equal(classes, np.argmax(ours.eval()(x), axis=1))
    np.testing.assert_allclose(cam, expected, rtol=0, atol=1e-6)


def test_default_grad_cam_of_a_resnet_is_the_class_activation_map(x):
    # On the maps the global average pooling reads, the gradient of a logit is
    # fc's weight over h * w everywhere: Grad-CAM is Zhou et al.'s CAM.
    model, _ = twins("resnet8")
    cam, classes = grad_cam(model, x)
    maps = feature_maps(model, x)["layer3.0"]  # (6, 64, 7, 7)
    weights = model.fc.weight.data[classes]  # (6, 64)
    expected = np.maximum(np.einsum("nk,nkhw->nhw", weights, maps), 0)
    expected = upsample_bilinear(expected, (28, 28))
    expected /= expected.max(axis=(1, 2), keepdims=True)
    np.testing.assert_allclose(cam, expected, rtol=0, atol=1e-12)


def test_feature_maps_reach_inside_the_blocks(x):
    model, _ = twins("resnet8")
    maps = feature_maps(model, x)
    body, shortcut = ".residual.body.conv", ".residual.shortcut.0"
    expected = [("conv1", (16, 28, 28))]
    for stage, (width, size) in enumerate([(16, 28), (32, 14), (64, 7)], start=1):
        names = [f"layer{stage}.0{body}1", f"layer{stage}.0{body}2"]
        names += [f"layer{stage}.0{shortcut}"] if stage > 1 else []
        expected += [(n, (width, size, size)) for n in [*names, f"layer{stage}.0"]]
    # In the order they finish: a block after the layers inside it.
    assert [(k, v.shape[1:]) for k, v in maps.items()] == expected
    model.eval()
    stage2 = model.layer2[0].residual
    np.testing.assert_array_equal(
        maps["layer2.0.residual.body.conv1"], stage2.body.conv1(model[:4](x))
    )
    np.testing.assert_array_equal(
        maps["layer2.0.residual.shortcut.0"], stage2.shortcut[0](model[:4](x))
    )
    np.testing.assert_array_equal(maps["layer3.0"], model[:6](x))
    activity = layer_activity({k: v[0] for k, v in maps.items()})
    assert list(activity) == [k for k, _ in expected]
    vgg, _ = twins("vgg-bn")
    convs_and_pools = [0, 3, 6, 7, 10, 13, 14, 17, 20]
    assert list(feature_maps(vgg, x)) == [f"features.{i}" for i in convs_and_pools]


def test_inspecting_leaves_the_model_as_it_was(x):
    model, _ = twins("resnet8")
    model.train()
    model.input_grad = False
    loss = nn.CrossEntropyLoss()
    loss(model(x), np.arange(6))
    model.backward(loss.backward())
    before = [p.grad.copy() for p in model.parameters()]
    conv = model.layer3[0].residual.body.conv2
    conv.forward = spy = conv.forward  # a spy of the caller's, kept

    feature_maps(model, x)
    saliency(model, x)
    grad_cam(model, x, layer="layer3.0.residual.body.conv2")
    with pytest.raises(ValueError, match="`layer` must have a 4-D output"):
        grad_cam(model, x, layer="fc")

    assert all(m.training for m in model.modules()) and model.input_grad is False
    for p, grad in zip(model.parameters(), before):
        np.testing.assert_array_equal(p.grad, grad)
    assert vars(conv)["forward"] is spy
    del conv.forward
    assert not any({"forward", "backward"} & set(vars(m)) for m in model.modules())


def test_grad_cam_refuses_a_layer_that_runs_twice(x):
    rng = np.random.default_rng(0)
    conv = nn.Conv2d(1, 1, 3, padding=1, rng=rng, dtype=np.float64)
    model = nn.Sequential(
        conv,
        nn.ReLU(),
        conv,
        nn.Flatten(),
        nn.Linear(784, 2, rng=rng, dtype=np.float64),
    )
    assert [name for name, _ in model.named_modules()] == ["", "0", "1", "3", "4"]
    with pytest.raises(ValueError, match=r"`layer` must run once .* '0' ran 2 times"):
        grad_cam(model, x)


def test_cli_inspects_a_resnet8_checkpoint(tmp_path, mnist_digits):
    pytest.importorskip("matplotlib")
    (tmp_path / "data").mkdir()
    data = write_mnist_dir(tmp_path / "data", 100, 40)
    args = ["train", "--data", data, "--model", "resnet8", "--epochs", "1"]
    done = cnnumpy(
        [*args, "--batch-size", "50", "--no-plots", "--out", "run"], tmp_path
    )
    assert done.returncode == 0, done.stderr
    images, _ = mnist_digits
    write_idx(tmp_path / "two.idx", images[:2, 0])
    done = cnnumpy(["inspect", "run/best.npz", "two.idx", "--out", "pics"], tmp_path)
    assert done.returncode == 0, done.stderr
    names = {p.name for p in (tmp_path / "pics").iterdir()}
    kinds = ("feature-maps", "saliency", "grad-cam")
    assert names == {f"two-{i}-{k}.png" for i in (0, 1) for k in kinds} | {
        "summary.txt"
    }
    lines = (tmp_path / "pics" / "summary.txt").read_text().splitlines()
    assert lines[1].startswith("  saliency and Grad-CAM (layer3.0) for class ")
    layers = [line.split(":")[0].strip() for line in lines[2:14]]
    assert layers[:4] == [
        "conv1",
        "layer1.0.residual.body.conv1",
        "layer1.0.residual.body.conv2",
        "layer1.0",
    ]
    assert layers[-2:] == ["layer3.0.residual.shortcut.0", "layer3.0"]
    assert lines[14].startswith("  most active layer: ")
