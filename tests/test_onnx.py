"""cnnumpy.onnx: exported graphs run in onnxruntime as in cnnumpy; loaded graphs
(ours and PyTorch's) compute what they computed where they came from."""

from __future__ import annotations

import io
import warnings
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cnnumpy import models, nn, optim
from cnnumpy.training import load_trained, save_checkpoint

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from cnnumpy.onnx import OPSETS, export, load  # noqa: E402
from cnnumpy.onnx import load_trained as load_onnx_trained  # noqa: E402


def run_ort(path: Path, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


def assert_close(actual: np.ndarray, expected: np.ndarray) -> None:
    """float32 to 1e-5 relative; near zero, to 1e-5 of the output's scale.

    Two float32 computations of one sum round its terms differently: an output
    near zero (a cancellation) carries an absolute error of the size of the
    terms, which the scale of the output bounds, not its own value.
    """
    scale = float(np.abs(expected).max())
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-5 * scale)


def randomize_batch_norms(model: nn.Module, rng: np.random.Generator) -> None:
    """Running statistics and affine weights away from the identity."""
    for m in model.modules():
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            C = m.num_features
            m.running_mean[:] = rng.normal(size=C)
            m.running_var[:] = rng.uniform(0.5, 2, size=C)
            if m.weight is not None:
                m.weight.data[:] = rng.uniform(0.5, 1.5, size=C)
                m.bias.data[:] = rng.normal(size=C)


def same_weights(a: nn.Module, b: nn.Module) -> bool:
    wa, wb = list(a.state_dict().items()), list(b.state_dict().items())
    wa = [v for k, v in wa if not k.endswith("num_batches_tracked")]
    wb = [v for k, v in wb if not k.endswith("num_batches_tracked")]
    return len(wa) == len(wb) and all(
        u.dtype == v.dtype and np.array_equal(u, v) for u, v in zip(wa, wb)
    )


# ------------------------------------------------------------------ export


@pytest.mark.parametrize("name", sorted(models.MODELS))
def test_registry_models_run_in_onnxruntime_as_in_cnnumpy(tmp_path, name):
    rng = np.random.default_rng(0)
    model = models.create_model(name, rng=rng)
    randomize_batch_norms(model, rng)
    path = export(model, tmp_path / "m.onnx", (1, 28, 28))
    onnx.checker.check_model(onnx.load(path), full_check=True)
    model.eval()
    for n in (1, 3):  # the batch axis is dynamic
        x = rng.normal(size=(n, 1, 28, 28)).astype(np.float32)
        assert_close(run_ort(path, x), model(x))
    loaded = load(path)
    assert same_weights(model, loaded)
    assert np.array_equal(loaded(x), model(x))


def test_export_leaves_the_modes_and_running_statistics(tmp_path):
    model = models.resnet8(rng=np.random.default_rng(0))
    before = model.state_dict()
    export(model, tmp_path / "m.onnx", (1, 28, 28))
    assert all(m.training for m in model.modules())
    after = model.state_dict()
    assert all(np.array_equal(before[k], after[k]) for k in before)


@pytest.mark.parametrize("opset", OPSETS)
def test_every_opset_writes_gelu_and_silu(tmp_path, opset):
    rng = np.random.default_rng(1)
    model = nn.Sequential(
        nn.Linear(6, 8, rng=rng),
        nn.GELU(),
        nn.Linear(8, 8, rng=rng),
        nn.GELU("tanh"),
        nn.SiLU(),
        nn.Linear(8, 3, rng=rng),
    )
    path = export(model, tmp_path / "m.onnx", (6,), opset=opset)
    ops = {node.op_type for node in onnx.load(path).graph.node}
    assert ("Gelu" in ops) == (opset >= 20)
    x = rng.normal(size=(5, 6)).astype(np.float32) * 3
    assert_close(run_ort(path, x), model(x))
    loaded = load(path)
    assert [type(m) for m in loaded] == [type(m) for m in model]
    assert loaded[3].approximate == "tanh" and same_weights(model, loaded)


def test_a_trained_model_takes_uint8_pixels_and_names_its_classes(tmp_path):
    from test_checkpoint_hostile import checkpoint_tree

    ckpt = save_checkpoint(tmp_path / "best.npz", checkpoint_tree())
    trained = load_trained(ckpt)
    path = export(trained, tmp_path / "m.onnx")
    proto = onnx.load(path)
    assert proto.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.UINT8
    meta = {p.key: p.value for p in proto.metadata_props}
    assert meta["class_names"] == '["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"]'
    pixels = np.random.default_rng(0).integers(0, 256, (4, 1, 28, 28), np.uint8)
    expected = trained.model.eval()(trained.normalize(pixels))
    assert_close(run_ort(path, pixels), expected)
    again = load_onnx_trained(path)
    assert (again.mean, again.std) == (np.float32(0.13), np.float32(0.3))
    assert again.class_names == trained.class_names
    assert_close(again.predict_proba(pixels), trained.predict_proba(pixels))


def test_export_refuses_what_has_no_onnx_form(tmp_path):
    with pytest.raises(TypeError, match=r"CrossEntropyLoss has no ONNX form"):
        export(nn.Sequential(nn.CrossEntropyLoss()), tmp_path / "m.onnx", (3,))
    norm = nn.Sequential(nn.BatchNorm1d(3, track_running_stats=False))
    with pytest.raises(ValueError, match=r"without running statistics"):
        export(norm, tmp_path / "m.onnx", (3,))
    pool = nn.Sequential(nn.AdaptiveAvgPool2d(3))
    with pytest.raises(ValueError, match=r"from 5x5 to 3x3 has windows of different"):
        export(pool, tmp_path / "m.onnx", (1, 5, 5))
    with pytest.raises(ValueError, match=r"`input_shape`"):
        export(models.lenet5(), tmp_path / "m.onnx", (1, 2, 3, 4))
    assert list(tmp_path.iterdir()) == []


# ----------------------------------------------------- random small networks


@st.composite
def networks(draw) -> tuple[nn.Sequential, tuple[int, ...]]:
    """A random stack of every exportable module, with its input shape."""
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    C, H = draw(st.integers(1, 3)), draw(st.integers(6, 10))
    shape = input_shape = (C, H, H)
    layers: list[nn.Module] = []
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(
            st.sampled_from(
                [
                    "conv",
                    "same",
                    "convT",
                    "max",
                    "avg",
                    "adaptive",
                    "bn",
                    "act",
                    "residual",
                    "dropout",
                    "identity",
                    "reshape",
                ]
            )
        )
        C, H = shape[0], shape[1]
        out = draw(st.integers(1, 4))
        if kind == "conv" and H >= 3:
            k, s, p = (
                draw(st.integers(1, 3)),
                draw(st.integers(1, 2)),
                draw(st.integers(0, 1)),
            )
            d = draw(st.integers(1, 2)) if H >= 5 else 1
            g = draw(
                st.sampled_from([g for g in (1, 2) if C % g == 0 and out % g == 0])
            )
            layers.append(
                nn.Conv2d(C, out, k, s, p, d, g, draw(st.booleans()), rng=rng)
            )
            H = (H + 2 * p - d * (k - 1) - 1) // s + 1
            shape = (out, H, H)
        elif kind == "same":
            layers.append(
                nn.Conv2d(C, out, draw(st.integers(1, 4)), padding="same", rng=rng)
            )
            shape = (out, H, H)
        elif kind == "convT" and H <= 12:
            k, s = draw(st.integers(1, 3)), draw(st.integers(1, 2))
            p = draw(st.integers(0, (k - 1) // 2))
            op = draw(st.integers(0, s - 1))
            layers.append(
                nn.ConvTranspose2d(
                    C, out, k, s, p, op, bias=draw(st.booleans()), rng=rng
                )
            )
            shape = (out, (H - 1) * s - 2 * p + k + op, (H - 1) * s - 2 * p + k + op)
        elif kind in ("max", "avg") and H >= 3:
            k = draw(st.integers(2, 3))
            s, p = draw(st.integers(1, 2)), draw(st.integers(0, k // 2))
            layers.append((nn.MaxPool2d if kind == "max" else nn.AvgPool2d)(k, s, p))
            H = (H + 2 * p - k) // s + 1
            shape = (C, H, H)
        elif kind == "adaptive":
            size = draw(st.sampled_from([d for d in (1, 2, H) if H % d == 0]))
            layers.append(nn.AdaptiveAvgPool2d(size))
            shape = (C, size, size)
        elif kind == "bn":
            layers.append(nn.BatchNorm2d(C, eps=draw(st.sampled_from([1e-5, 1e-3]))))
        elif kind == "act":
            layers.append(draw(activations()))
        elif kind == "residual":
            body = nn.Sequential(
                nn.Conv2d(C, C, 3, padding=1, rng=rng), draw(activations())
            )
            short = draw(st.sampled_from([None, nn.Conv2d(C, C, 1, rng=rng)]))
            layers.append(nn.Residual(body, short))
        elif kind == "dropout":
            layers.append(nn.Dropout(0.3))
        elif kind == "reshape":  # flattened and split back, one way or another
            layers.append(nn.Flatten())
            split = draw(st.sampled_from([shape, (C, -1, H), (-1, H * H)]))
            layers.append(nn.Unflatten(1, split))
            if len(split) == 2:
                layers.append(nn.Unflatten(2, (H, H)))
        else:
            layers.append(nn.Identity())
    layers.append(nn.Flatten())
    features = int(np.prod(shape))
    layers.append(nn.Linear(features, 5, rng=rng))
    layers.append(draw(st.sampled_from([nn.BatchNorm1d(5), nn.Identity()])))
    layers.append(draw(activations()))
    layers.append(nn.Linear(5, 3, bias=draw(st.booleans()), rng=rng))
    layers.append(
        draw(st.sampled_from([nn.Softmax(1), nn.LogSoftmax(-1), nn.Identity()]))
    )
    model = nn.Sequential(*layers)
    randomize_batch_norms(model, rng)
    return model, input_shape


def activations():
    return st.sampled_from(
        [
            nn.ReLU,
            nn.Tanh,
            nn.Sigmoid,
            nn.SiLU,
            nn.GELU,
            lambda: nn.GELU("tanh"),
            lambda: nn.LeakyReLU(0.2),
        ]
    ).map(lambda make: make())


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(net=networks(), opset=st.sampled_from(OPSETS), n=st.integers(1, 3))
def test_random_networks_export_and_load_back(tmp_path_factory, net, opset, n):
    model, shape = net
    path = export(model, tmp_path_factory.mktemp("onnx") / "m.onnx", shape, opset=opset)
    model.eval()
    x = np.random.default_rng(n).normal(size=(n, *shape)).astype(np.float32)
    expected = model(x)
    assert_close(run_ort(path, x), expected)
    loaded = load(path)
    assert same_weights(model, loaded)
    assert_close(loaded(x), expected)


# ------------------------------------------------------ graphs from PyTorch

torch = pytest.importorskip("torch")
tnn = torch.nn
TF = torch.nn.functional


class TorchLeNet(tnn.Module):
    """LeNet-5 written as PyTorch users do: functional ops and a view."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = tnn.Conv2d(1, 6, 5, padding=2)
        self.conv2 = tnn.Conv2d(6, 16, 5)
        self.fc1 = tnn.Linear(400, 120)
        self.fc2 = tnn.Linear(120, 84)
        self.fc3 = tnn.Linear(84, 10)

    def forward(self, x):
        x = TF.avg_pool2d(torch.tanh(self.conv1(x)), 2)
        x = TF.max_pool2d(torch.relu(self.conv2(x)), 2)
        x = x.view(x.size(0), -1)
        return self.fc3(TF.gelu(self.fc2(TF.silu(self.fc1(x)))))


class TorchBlock(tnn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = tnn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = tnn.BatchNorm2d(cout)
        self.conv2 = tnn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = tnn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = tnn.Sequential(
                tnn.Conv2d(cin, cout, 1, stride, bias=False), tnn.BatchNorm2d(cout)
            )

    def forward(self, x):
        y = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
        return torch.relu(y + (x if self.downsample is None else self.downsample(x)))


def torch_resnet():
    return tnn.Sequential(
        OrderedDict(
            conv1=tnn.Conv2d(3, 8, 3, padding=1, bias=False),
            bn1=tnn.BatchNorm2d(8),
            relu=tnn.ReLU(),
            layer1=tnn.Sequential(TorchBlock(8, 8, 1), TorchBlock(8, 16, 2)),
            pool=tnn.AdaptiveAvgPool2d(1),
            flatten=tnn.Flatten(),
            fc=tnn.Linear(16, 5),
            bn=tnn.BatchNorm1d(5),
        )
    )


def torch_decoder():
    """From a latent vector: a Linear, then Unflatten into feature maps."""
    return tnn.Sequential(
        tnn.Linear(8, 256),
        tnn.ReLU(),
        tnn.Unflatten(1, (16, 4, 4)),
        tnn.ConvTranspose2d(16, 8, 3, stride=2, padding=1, output_padding=1),
        tnn.BatchNorm2d(8),
        tnn.LeakyReLU(0.2),
        tnn.ConvTranspose2d(8, 4, 4, stride=2, padding=1, groups=2),
        tnn.Dropout(0.5),
        tnn.Sigmoid(),
    )


def torch_export(model, shape, path: Path, opset: int, dynamo: bool = False) -> Path:
    """``torch.onnx.export`` with a dynamic batch axis, by either exporter.

    The TorchScript exporter (``dynamo=False``) says it is deprecated, and the
    torch.export-based one (which needs onnxscript) trips on a FutureWarning
    inside torch's own pytree code: neither is this library's to fix.
    """
    x = torch.zeros(2, *shape)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", category=FutureWarning)
        if dynamo:
            pytest.importorskip("onnxscript")
            batch = {0: torch.export.Dim("N")}
            program = torch.onnx.export(
                model, (x,), dynamo=True, opset_version=opset,
                dynamic_shapes=(batch,), verbose=False,
            )  # fmt: skip
            program.save(str(path))
            return path
        buffer = io.BytesIO()
        torch.onnx.export(
            model, (x,), buffer, dynamo=False, opset_version=opset,
            input_names=["x"], output_names=["y"],
            dynamic_axes={"x": {0: "N"}, "y": {0: "N"}},
        )  # fmt: skip
    path.write_bytes(buffer.getvalue())
    return path


TORCH_MODELS = {
    "lenet5": (TorchLeNet, (1, 28, 28)),
    "resnet": (torch_resnet, (3, 16, 16)),
    "decoder": (torch_decoder, (8,)),
}


@pytest.mark.parametrize(
    ("opset", "dynamo"), [(17, False), (20, False), (20, True)], ids=str
)
@pytest.mark.parametrize("name", sorted(TORCH_MODELS))
def test_pytorch_exports_load_with_pytorchs_outputs(tmp_path, name, opset, dynamo):
    torch.manual_seed(0)
    make, shape = TORCH_MODELS[name]
    model = make()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (tnn.BatchNorm1d, tnn.BatchNorm2d)):
                m.running_mean.uniform_(-1, 1)
                m.running_var.uniform_(0.5, 2)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-1, 1)
    model.eval()
    path = torch_export(model, shape, tmp_path / "m.onnx", opset, dynamo)
    loaded = load(path)
    x = torch.randn(5, *shape)
    with torch.no_grad():
        expected = model(x).numpy()
    assert_close(loaded(x.numpy()), expected)
    assert not any(m.training for m in loaded.modules())


def test_a_loaded_model_fine_tunes(tmp_path):
    torch.manual_seed(0)
    path = torch_export(TorchLeNet().eval(), (1, 28, 28), tmp_path / "m.onnx", 17)
    model = load(path).train()
    x = np.random.default_rng(0).normal(size=(8, 1, 28, 28)).astype(np.float32)
    labels = np.arange(8) % 10
    loss_fn = nn.CrossEntropyLoss()
    opt = optim.SGD(model.parameters(), lr=0.1)
    losses = []
    for _ in range(3):
        loss = loss_fn(model(x), labels)
        model.zero_grad()
        model.backward(loss_fn.backward())
        opt.step()
        losses.append(loss)
    assert all(isinstance(p, nn.Parameter) for p in model.parameters())
    assert losses[-1] < losses[0]


def test_predict_and_export_on_the_command_line(tmp_path):
    from PIL import Image

    from test_checkpoint_hostile import checkpoint_tree
    from test_cli_hostile import cnnumpy

    ckpt = save_checkpoint(tmp_path / "best.npz", checkpoint_tree())
    result = cnnumpy(["export", ckpt, tmp_path / "m.onnx", "--opset", "17"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert "input 'pixels' uint8 (N, 1, 28, 28)" in result.stdout
    digit = np.zeros((28, 28), np.uint8)
    digit[6:22, 12:16] = 255
    Image.fromarray(digit).save(tmp_path / "digit.png")
    by_onnx = cnnumpy(
        ["predict", tmp_path / "m.onnx", tmp_path / "digit.png"], tmp_path
    )
    by_ckpt = cnnumpy(["predict", ckpt, tmp_path / "digit.png"], tmp_path)
    assert by_onnx.returncode == 0, by_onnx.stderr
    assert by_onnx.stdout == by_ckpt.stdout != ""


def test_a_foreign_classifier_takes_pixels_scaled_to_one(tmp_path):
    torch.manual_seed(0)
    model = TorchLeNet().eval()
    trained = load_onnx_trained(
        torch_export(model, (1, 28, 28), tmp_path / "m.onnx", 18)
    )
    assert trained.class_names == tuple(str(i) for i in range(10))
    assert (trained.mean, trained.std, trained.input_shape) == (0.0, 1.0, (1, 28, 28))
    pixels = np.random.default_rng(0).integers(0, 256, (3, 1, 28, 28), np.uint8)
    with torch.no_grad():
        logits = model(torch.from_numpy(pixels.astype(np.float32) / 255))
    assert_close(trained.predict_proba(pixels), torch.softmax(logits, 1).numpy())


def test_linear_and_batch_norm_over_a_sequence_axis(tmp_path):
    rng = np.random.default_rng(2)
    model = nn.Sequential(nn.BatchNorm1d(3), nn.Linear(5, 4, rng=rng), nn.GELU())
    randomize_batch_norms(model, rng)
    path = export(model, tmp_path / "m.onnx", (3, 5))
    assert "MatMul" in {n.op_type for n in onnx.load(path).graph.node}
    model.eval()
    x = rng.normal(size=(2, 3, 5)).astype(np.float32)
    assert_close(run_ort(path, x), model(x))
    loaded = load(path)
    assert same_weights(model, loaded) and isinstance(loaded[0], nn.BatchNorm1d)
    assert_close(loaded(x), model(x))


def test_a_float64_model_is_exported_in_float32(tmp_path):
    model = models.lenet5(rng=np.random.default_rng(0), dtype=np.float64).eval()
    path = export(model, tmp_path / "m.onnx", (1, 28, 28))
    x = np.random.default_rng(1).normal(size=(2, 1, 28, 28))
    assert_close(run_ort(path, x.astype(np.float32)), model(x))
    assert load(path)[0].weight.dtype == np.float32


@pytest.mark.parametrize("keepdims", [0, 1])
def test_a_mean_over_height_and_width_is_global_average_pooling(tmp_path, keepdims):
    from onnx import TensorProto, helper

    out = ["N", 3] if not keepdims else ["N", 3, 1, 1]
    graph = helper.make_graph(
        [
            helper.make_node(
                "ReduceMean", ["x"], ["y"], axes=[-2, -1], keepdims=keepdims
            )
        ],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 5, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, out)],
    )
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    path = tmp_path / "m.onnx"
    path.write_bytes(proto.SerializeToString())
    x = np.random.default_rng(0).normal(size=(2, 3, 5, 4)).astype(np.float32)
    assert_close(load(path)(x), run_ort(path, x))
    expected = (2, 3, 1, 1) if keepdims else (2, 3)
    assert load(path)(x).shape == expected


def test_unflatten_exports_as_a_reshape_and_loads_back(tmp_path):
    """A decoder from a latent vector: any batch size in onnxruntime, the same
    module structure and weights after loading."""
    rng = np.random.default_rng(0)
    model = nn.Sequential(
        nn.Linear(6, 32, rng=rng),
        nn.Unflatten(1, (2, 4, -1)),
        nn.ConvTranspose2d(2, 3, 3, stride=2, padding=1, rng=rng),
        nn.Sigmoid(),
    )
    path = export(model, tmp_path / "decoder.onnx", (6,))
    for n in (1, 3):
        x = rng.standard_normal((n, 6)).astype(np.float32)
        assert_close(run_ort(path, x), model(x))
    loaded = load(path)
    assert [type(m).__name__ for m in loaded] == [
        "Linear", "Unflatten", "ConvTranspose2d", "Sigmoid",
    ]  # fmt: skip
    assert loaded[1].dim == 1 and loaded[1].unflattened_size == (2, 4, 4)
    assert same_weights(model, loaded)
    x = rng.standard_normal((2, 6)).astype(np.float32)
    assert_close(loaded(x), model(x))


def test_unflatten_of_the_batch_is_refused_on_export(tmp_path):
    model = nn.Sequential(nn.Unflatten(0, (1, -1)), nn.Flatten(0, 1))
    with pytest.raises(ValueError, match=r"Unflatten of the batch axis \(dim=0\)"):
        export(model, tmp_path / "m.onnx", (4,))
    assert not list(tmp_path.iterdir())
