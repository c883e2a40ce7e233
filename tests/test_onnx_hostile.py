"""Hostile ONNX files: each refused with one line naming the node or tensor,
before any large allocation; nothing in a file is followed or run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cnnumpy import models, nn

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper  # noqa: E402

from cnnumpy.onnx import ONNXError, export, load, load_trained  # noqa: E402
from cnnumpy.onnx import read as onnx_read  # noqa: E402


@pytest.fixture
def lenet(tmp_path) -> onnx.ModelProto:
    model = models.lenet5_modern(rng=np.random.default_rng(0))
    return onnx.load(export(model, tmp_path / "good.onnx", (1, 28, 28)))


def save(proto: onnx.ModelProto, path: Path) -> Path:
    path.write_bytes(proto.SerializeToString())
    return path


def node(proto: onnx.ModelProto, op: str) -> onnx.NodeProto:
    return next(n for n in proto.graph.node if n.op_type == op)


def refused(path: Path, *fragments: str) -> str:
    with pytest.raises(ONNXError) as info:
        load(path)
    message = str(info.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, message
    return message


def test_an_unsupported_operator_is_named(tmp_path, lenet):
    node(lenet, "Relu").op_type = "Loop"
    refused(save(lenet, tmp_path / "m.onnx"), "node '/act1/Relu'", "'Loop'")


def test_an_operator_of_another_domain_is_refused(tmp_path, lenet):
    node(lenet, "Relu").domain = "com.microsoft"
    refused(save(lenet, tmp_path / "m.onnx"), "com.microsoft.Relu")


def test_an_unknown_attribute_is_named(tmp_path, lenet):
    node(lenet, "Conv").attribute.append(helper.make_attribute("foo", 1))
    refused(save(lenet, tmp_path / "m.onnx"), "node '/conv1/Conv'", "'foo'")


@pytest.mark.parametrize(
    ("op", "name", "value", "fragment"),
    [
        ("MaxPool", "ceil_mode", 1, "ceil_mode=1"),
        ("Conv", "auto_pad", "SAME_LOWER", "auto_pad='SAME_LOWER'"),
        ("Conv", "pads", [1, 1, 0, 0], "asymmetric pads"),
        ("Gemm", "transA", 1, "transA=1"),
        ("Gemm", "alpha", 2.0, "alpha=2.0"),
    ],
)
def test_an_unsupported_attribute_value_is_named(
    tmp_path, lenet, op, name, value, fragment
):
    target = node(lenet, op)
    kept = [a for a in target.attribute if a.name != name]
    del target.attribute[:]
    target.attribute.extend([*kept, helper.make_attribute(name, value)])
    refused(save(lenet, tmp_path / "m.onnx"), f"({op})", fragment)


def test_a_cycle_is_refused(tmp_path, lenet):
    conv, relu = node(lenet, "Conv"), node(lenet, "Relu")
    conv.input[0] = relu.output[0]
    refused(save(lenet, tmp_path / "m.onnx"), "cycle through node")


def test_a_dangling_input_is_named(tmp_path, lenet):
    node(lenet, "Relu").input[0] = "nowhere"
    refused(save(lenet, tmp_path / "m.onnx"), "'/act1/Relu'", "'nowhere'")


def test_a_weight_that_is_not_a_constant_is_named(tmp_path, lenet):
    conv = node(lenet, "Conv")
    conv.input[1] = node(lenet, "Relu").output[0]
    refused(save(lenet, tmp_path / "m.onnx"))


@pytest.mark.parametrize("field", ["raw", "typed"])
def test_a_tensor_whose_size_disagrees_with_its_data_is_named(tmp_path, lenet, field):
    t = lenet.graph.initializer[0]
    if field == "typed":
        values = onnx.numpy_helper.to_array(t).reshape(-1)
        t.ClearField("raw_data")
        t.float_data.extend(values[:-1].tolist())
    t.dims[0] += 1
    refused(save(lenet, tmp_path / "m.onnx"), f"tensor {t.name!r}", "declares shape")


def test_external_data_is_never_followed(tmp_path, lenet):
    secret = tmp_path / "weights.bin"
    secret.write_bytes(b"\0" * 4 * 150)
    t = lenet.graph.initializer[0]
    t.ClearField("raw_data")
    t.data_location = TensorProto.EXTERNAL
    entry = t.external_data.add()
    entry.key, entry.value = "location", str(secret)
    refused(save(lenet, tmp_path / "m.onnx"), f"tensor {t.name!r}", "external data")


def test_a_huge_declared_tensor_is_refused_before_allocation(tmp_path, lenet):
    t = lenet.graph.initializer[0]
    t.ClearField("raw_data")
    del t.dims[:]
    t.dims.extend([2**20, 2**20, 2**10])
    refused(save(lenet, tmp_path / "m.onnx"), f"tensor {t.name!r}", "more than the")


def test_a_huge_constant_node_is_refused(tmp_path, lenet):
    huge = TensorProto(name="big", data_type=TensorProto.FLOAT, dims=[2**40])
    lenet.graph.node.insert(0, helper.make_node("Constant", [], ["c"], value=huge))
    refused(save(lenet, tmp_path / "m.onnx"), "'big'", "1,099,511,627,776 elements")


@pytest.mark.parametrize(
    "content",
    [b"", b"hello, this is text\n", bytes(range(256)) * 4, b"PK\x03\x04" + b"\0" * 60],
    ids=["empty", "text", "bytes", "zip"],
)
def test_a_file_that_is_not_onnx_is_refused(tmp_path, content):
    path = tmp_path / "m.onnx"
    path.write_bytes(content)
    refused(path, "'", "not an ONNX model")


def test_a_file_too_large_is_refused_before_reading(tmp_path, lenet, monkeypatch):
    monkeypatch.setattr(onnx_read, "MAX_FILE_BYTES", 1000)
    refused(save(lenet, tmp_path / "m.onnx"), "more than the 1,000 allowed")


def test_an_old_opset_is_refused(tmp_path, lenet):
    lenet.opset_import[0].version = 9
    refused(save(lenet, tmp_path / "m.onnx"), "opset 9")


def test_a_graph_attribute_is_refused(tmp_path, lenet):
    body = helper.make_graph([], "g", [], [])
    node(lenet, "Relu").attribute.append(helper.make_attribute("then_branch", body))
    refused(save(lenet, tmp_path / "m.onnx"), "'then_branch'")


def test_branches_that_are_no_residual_are_refused(tmp_path):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])
    nodes = [
        helper.make_node("Relu", ["x"], ["a"], name="r"),
        helper.make_node("Tanh", ["x"], ["b"], name="t"),
        helper.make_node("Mul", ["a", "b"], ["y"], name="m"),
    ]
    graph = helper.make_graph(nodes, "g", [x], [y])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    refused(save(proto, tmp_path / "m.onnx"), "meet at node 'm' (Mul)")


def test_arithmetic_that_is_no_known_activation_is_refused(tmp_path):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])
    nodes = [
        helper.make_node("Tanh", ["x"], ["a"], name="t"),
        helper.make_node("Mul", ["x", "a"], ["y"], name="m"),
    ]
    graph = helper.make_graph(nodes, "g", [x], [y])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    refused(save(proto, tmp_path / "m.onnx"), "none of the activations")


def test_a_reshape_that_is_not_a_flatten_is_refused(tmp_path):
    model = nn.Sequential(nn.Flatten(1, 2))
    path = export(model, tmp_path / "ok.onnx", (2, 3, 4))
    assert load(path)(np.ones((1, 2, 3, 4), np.float32)).shape == (1, 6, 4)
    proto = onnx.load(path)
    shape = next(t for t in proto.graph.initializer if "shape" in t.name)
    shape.CopyFrom(onnx.numpy_helper.from_array(np.array([0, 4, 6]), shape.name))
    refused(save(proto, tmp_path / "m.onnx"), "(Reshape)", "neither a flatten nor")


def test_load_trained_refuses_a_graph_that_is_no_classifier(tmp_path):
    path = export(nn.Sequential(nn.ReLU()), tmp_path / "m.onnx", (1, 4, 4))
    with pytest.raises(ONNXError, match=r"takes \(N, C, H, W\) images"):
        load_trained(path)


def test_the_command_line_reports_one_line(tmp_path, lenet):
    from test_cli_hostile import cnnumpy, one_error_line

    node(lenet, "Relu").op_type = "NonMaxSuppression"
    save(lenet, tmp_path / "m.onnx")
    (tmp_path / "d.png").write_bytes(b"")
    result = cnnumpy(["predict", tmp_path / "m.onnx", tmp_path / "d.png"], tmp_path)
    one_error_line(result, "'NonMaxSuppression' is not supported")
    (tmp_path / "t.onnx").write_text("not onnx")
    result = cnnumpy(["predict", tmp_path / "t.onnx", tmp_path / "d.png"], tmp_path)
    one_error_line(result, "not an ONNX model")


READER = """
import json, resource, sys, traceback
limit = int(sys.argv[1])
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
from cnnumpy.onnx import ONNXError, load
for line in sys.stdin:
    path = json.loads(line)
    try:
        load(path)
        outcome = "ok"
    except ONNXError:
        outcome = "typed"
    except BaseException as err:
        tail = " / ".join(traceback.format_exc().splitlines()[-3:])
        outcome = f"{type(err).__name__}: {err!s:.200} | {tail}"
    print(json.dumps([path, outcome]), flush=True)
"""
# As in test_fuzz.py: Python, NumPy, onnx's protobuf and the project fit well
# under it; a reader that trusted a declared size of gigabytes would hit it.
ADDRESS_SPACE = 768 * 2**20


def test_mutated_files_load_or_fail_with_onnx_error(tmp_path, lenet):
    """Bit flips, truncations and insertions of real files, read under a memory
    cap: each loads or fails with ONNXError, never another exception."""
    import json
    import random
    import subprocess
    import sys

    resource = pytest.importorskip("resource")  # POSIX only
    del resource
    rng = random.Random(17)
    resnet = models.resnet8(rng=np.random.default_rng(0))
    sources = [
        lenet.SerializeToString(),
        export(resnet, tmp_path / "r.onnx", (1, 12, 12), opset=17).read_bytes(),
    ]
    paths = []
    for i in range(400):
        out = bytearray(sources[i % 2])
        if i % 4 == 0:
            out = out[: rng.randrange(len(out))]
        elif i % 4 == 1:
            j = rng.randrange(len(out))
            out[j:j] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 9)))
        else:
            for _ in range(rng.randint(1, 6)):
                j = rng.randrange(len(out))
                out[j] ^= 1 << rng.randrange(8)
        path = tmp_path / f"m{i}.onnx"
        path.write_bytes(bytes(out))
        paths.append(str(path))
    proc = subprocess.run(
        [sys.executable, "-c", READER, str(ADDRESS_SPACE)],
        input="".join(json.dumps(p) + "\n" for p in paths),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    outcomes = dict(json.loads(line) for line in proc.stdout.splitlines())
    assert len(outcomes) == len(paths), proc.stderr[-2000:]
    bad = {p: o for p, o in outcomes.items() if o not in ("ok", "typed")}
    assert not bad, f"{len(bad)} mutations escaped ONNXError: {bad}"
    assert sum(o == "typed" for o in outcomes.values()) > len(paths) // 4


def test_without_onnx_the_command_says_what_to_install(tmp_path, lenet):
    import subprocess
    import sys

    save(lenet, tmp_path / "m.onnx")
    code = (
        "import sys\nsys.modules['onnx'] = None\n"
        "from cnnumpy.cli import main\n"
        f"sys.exit(main(['predict', {str(tmp_path / 'm.onnx')!r}, "
        f"{str(tmp_path / 'm.onnx')!r}]))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 2
    assert result.stderr == (
        "cnnumpy: error: ONNX files need onnx: pip install 'cnnumpy[onnx]'\n"
    )


def _shape_arithmetic_model(
    mod_by: int, reshape_to: list[int], allowzero: int = 0
) -> onnx.ModelProto:
    """Relu, then a Reshape whose shape is worked out from integer constants, as
    PyTorch's exporter writes an Unflatten: Mod, Reshape of constants."""
    h = onnx.helper
    const = [
        h.make_node("Constant", [], [name], value=onnx.numpy_helper.from_array(v))
        for name, v in (
            ("one", np.array([1], np.int64)),
            ("by", np.array(mod_by, np.int64)),
            ("as", np.array(reshape_to, np.int64)),
        )
    ]
    nodes = [
        *const,
        h.make_node("Mod", ["one", "by"], ["dim"], name="the mod"),
        h.make_node(
            "Reshape", ["dim", "as"], ["dims"], name="the reshape", allowzero=allowzero
        ),
        h.make_node("Relu", ["x"], ["y"]),
    ]
    graph = h.make_graph(
        nodes,
        "g",
        [h.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["N", 4])],
        [h.make_tensor_value_info("y", onnx.TensorProto.FLOAT, ["N", 4])],
    )
    return h.make_model(graph, opset_imports=[h.make_opsetid("", 17)])


def test_shape_arithmetic_on_constants_is_worked_out_or_refused(tmp_path):
    ok = save(_shape_arithmetic_model(2, [1]), tmp_path / "ok.onnx")
    assert load(ok)(np.full((3, 4), -1, np.float32)).max() == 0
    refused(
        save(_shape_arithmetic_model(0, [1]), tmp_path / "m.onnx"),
        "'the mod'", "Mod by non-zero",
    )  # fmt: skip
    refused(
        save(_shape_arithmetic_model(2, [2, 3]), tmp_path / "r.onnx"),
        "'the reshape'", "cannot reshape",
    )  # fmt: skip
    # A 0 copies the input's size there, unless allowzero asks for a real 0.
    assert load(save(_shape_arithmetic_model(2, [0]), tmp_path / "z.onnx"))
    refused(
        save(_shape_arithmetic_model(2, [0], allowzero=1), tmp_path / "a.onnx"),
        "'the reshape'", "cannot reshape (1,) to [0]",
    )  # fmt: skip
