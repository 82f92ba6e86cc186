"""Bad ONNX files and unsupported models: one clear line naming the file and what is wrong
(never a raw protobuf/onnx traceback), and exit status 2 with one line from the CLI."""

import os

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

from error_testing import raises
from onnx_testing import make_model, save
from snnc.compiler import load_model
from snnc.compiler.cli import main
from snnc.compiler.errors import ModelFormatError, UnsupportedError
from snnc.frontends.onnx import SUPPORTED_OPS

N = "N"


def relu_model(opset=13, shape=(N, 4)):
    return make_model([helper.make_node("Relu", ["x"], ["y"], name="relu")], {"x": list(shape)}, ["y"], opset=opset)


def assert_cli_error(path, tmp_path, capsys, *fragments):
    """``snnc dump`` and ``snnc run`` exit with status 2 and one line naming the file."""
    np.save(tmp_path / "x.npy", np.zeros((1, 4), np.float32))
    for argv in (
        ["dump", str(path)],
        ["run", str(path), "--input", str(tmp_path / "x.npy"), "-o", str(tmp_path / "y.npy")],
    ):
        assert main(argv) == 2
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("snnc: error: ") and str(path) in lines[0], lines
        for fragment in fragments:
            assert fragment in lines[0]


# ----------------------------------------------------------------------------- damaged files


def test_truncated_protobuf(tmp_path, capsys):
    path = save(relu_model(), tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    raises(ModelFormatError, path, "truncated")
    assert_cli_error(path, tmp_path, capsys, "truncated")


def test_not_a_model(tmp_path):
    path = tmp_path / "notes.onnx"
    path.write_bytes(b"")
    raises(ModelFormatError, path, "not an ONNX model")


@pytest.mark.parametrize(
    "opset, error_type, fragment", [(6, UnsupportedError, "opset 6"), (99, ModelFormatError, "opset 99 is newer")]
)
def test_opset_outside_the_supported_range(opset, error_type, fragment, tmp_path, capsys):
    path = save(relu_model(opset=opset), tmp_path)
    raises(error_type, path, fragment, "opsets 7 to")
    assert_cli_error(path, tmp_path, capsys, fragment)


def test_checker_failure(tmp_path, capsys):
    model = relu_model()
    model.graph.node[0].op_type = "Relu2"  # no such op
    path = save(model, tmp_path)
    raises(ModelFormatError, path, "fails the ONNX checker", "Relu2")
    assert_cli_error(path, tmp_path, capsys, "ONNX checker")


def test_shape_inference_failure(tmp_path):
    model = make_model(
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        {"x": [N, 4]},
        {"y": [N, 3]},
        {"w": np.ones((5, 3), np.float32)},
    )
    raises(ModelFormatError, save(model, tmp_path), "fails ONNX shape inference")


def test_conv_weight_of_another_rank(tmp_path, capsys):
    """onnx's shape inference crashes the process on this: it must be refused before."""
    model = make_model(
        [helper.make_node("Conv", ["x", "w"], ["y"])],
        {"x": [N, 2, 10]},
        {"y": [N, 4, 8]},
        {"w": np.ones((4, 2, 1, 3), np.float32)},
    )
    path = save(model, tmp_path)
    raises(ModelFormatError, path, "Conv node", "input 'x' has rank 3 but weight 'w' has rank 4")
    assert_cli_error(path, tmp_path, capsys, "has rank 3 but weight")


def test_cycle(tmp_path, capsys):
    nodes = [
        helper.make_node("Add", ["x", "b"], ["a"], name="first"),
        helper.make_node("Relu", ["a"], ["b"], name="second"),
        helper.make_node("Relu", ["b"], ["y"], name="last"),
    ]
    path = save(make_model(nodes, {"x": [N, 4]}, {"y": [N, 4]}), tmp_path)
    message = raises(ModelFormatError, path, "cycle", "'first'", "'second'")
    assert "'last'" not in message  # downstream of the cycle, not in it
    assert_cli_error(path, tmp_path, capsys, "cycle")


def test_dangling_input(tmp_path, capsys):
    path = save(
        make_model([helper.make_node("Add", ["x", "ghost"], ["y"], name="add")], {"x": [N, 4]}, {"y": [N, 4]}), tmp_path
    )
    raises(ModelFormatError, path, "'add'", "'ghost'", "no node, initializer or graph input defines")
    assert_cli_error(path, tmp_path, capsys, "ghost")


def test_output_never_computed(tmp_path):
    model = make_model([helper.make_node("Relu", ["x"], ["r"])], {"x": [N, 4]}, {"y": [N, 4]})
    raises(ModelFormatError, save(model, tmp_path), "graph output 'y' is never computed")


def test_value_defined_twice(tmp_path):
    nodes = [helper.make_node("Relu", ["x"], ["y"], name="a"), helper.make_node("Relu", ["x"], ["y"], name="b")]
    raises(
        ModelFormatError, save(make_model(nodes, {"x": [N, 4]}, {"y": [N, 4]}), tmp_path), "'y' is defined twice", "'b'"
    )


def test_nodes_out_of_order_are_sorted(tmp_path):
    nodes = [
        helper.make_node("Relu", ["r"], ["y"], name="second"),
        helper.make_node("Relu", ["x"], ["r"], name="first"),
    ]
    graph = load_model(save(make_model(nodes, {"x": [N, 4]}, {"y": [N, 4]}), tmp_path))
    assert [n.name for n in graph.nodes] == ["x", "first", "second", "y"]


# ----------------------------------------------------------------------------- external data


def external_model(folder, location=None):
    """A Gemm whose weights are external data in ``weights.bin`` (or ``location``)."""
    w = np.arange(12, dtype=np.float32).reshape(4, 3)
    model = make_model([helper.make_node("Gemm", ["x", "w"], ["y"])], {"x": [N, 4]}, ["y"], {"w": w})
    onnx.save_model(model, folder / "model.onnx", save_as_external_data=True, location="weights.bin", size_threshold=0)
    if location is not None:
        model = onnx.load_model(folder / "model.onnx", load_external_data=False)
        for entry in model.graph.initializer[0].external_data:
            if entry.key == "location":
                entry.value = location
        onnx.save_model(model, folder / "model.onnx")
    return folder / "model.onnx", w


def test_external_data_inside_the_folder(tmp_path, rng):
    path, w = external_model(tmp_path)
    graph = load_model(path)
    np.testing.assert_array_equal(graph.nodes[1].params["weight"], w.T)


@pytest.mark.parametrize("location", ["../weights.bin", "sub/../../weights.bin"])
def test_external_data_escaping_the_folder(location, tmp_path, capsys):
    folder = tmp_path / "model"
    folder.mkdir()
    path, _ = external_model(folder, location)
    (folder / "weights.bin").rename(tmp_path / "weights.bin")
    raises(ModelFormatError, path, "outside the model's folder")
    assert_cli_error(path, tmp_path, capsys, "outside the model's folder")


def test_external_data_absolute_path(tmp_path):
    path, _ = external_model(tmp_path, str(tmp_path / "weights.bin"))
    raises(ModelFormatError, path, "absolute path")


def test_external_data_symlink_out_of_the_folder(tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    path, _ = external_model(folder)
    (folder / "weights.bin").rename(tmp_path / "weights.bin")
    os.symlink(tmp_path / "weights.bin", folder / "weights.bin")
    raises(ModelFormatError, path, "outside the model's folder")


def test_external_data_missing_or_short(tmp_path):
    path, _ = external_model(tmp_path)
    data = (tmp_path / "weights.bin").read_bytes()
    (tmp_path / "weights.bin").write_bytes(data[:20])
    raises(ModelFormatError, path, "ends before tensor 'w'")
    (tmp_path / "weights.bin").unlink()
    raises(ModelFormatError, path, "no such file")


# ----------------------------------------------------------------------------- unsupported models


def test_every_unsupported_op_is_listed_in_one_error(tmp_path, capsys):
    nodes = [
        helper.make_node("Sin", ["x"], ["s"], name="sine"),
        helper.make_node("Elu", ["s"], ["t1"], name="elu_1"),
        helper.make_node("Elu", ["t1"], ["t2"], name="elu_2"),
        helper.make_node("Relu", ["t2"], ["r"], name="fine"),
        helper.make_node("Softplus", ["r"], ["y"]),  # no name: named by position
    ]
    path = save(make_model(nodes, {"x": [N, 4]}, ["y"]), tmp_path)
    message = raises(
        UnsupportedError,
        path,
        "4 nodes",
        "Sin (nodes 'sine')",
        "Elu (nodes 'elu_1', 'elu_2')",
        "Softplus (nodes #4 (Softplus))",
    )
    assert ", ".join(SUPPORTED_OPS) in message and "'fine'" not in message
    assert_cli_error(path, tmp_path, capsys, "Sin", "Elu", "Softplus")


def test_ops_on_constants_only_are_folded_whatever_they_are(tmp_path):
    nodes = [helper.make_node("Sin", ["k"], ["sk"]), helper.make_node("Mul", ["x", "sk"], ["y"])]
    graph = load_model(save(make_model(nodes, {"x": [N, 3]}, ["y"], {"k": np.float32(0.5)}), tmp_path))
    np.testing.assert_allclose(graph.nodes[1].params["scale"], np.full(3, np.sin(0.5)), rtol=1e-6)


UNSUPPORTED_NODES = {
    "mul_of_tensors": ([helper.make_node("Mul", ["x", "x"], ["y"], name="n")], {}, "Mul of two computed tensors"),
    "matmul_of_tensors": (
        [
            helper.make_node("Transpose", ["x"], ["t"], perm=[0, 1, 3, 2]),
            helper.make_node("MatMul", ["x", "t"], ["y"], name="n"),
        ],
        {},
        "matrix B ('t') is computed from the model's inputs",
    ),
    "broadcast_add": (
        [helper.make_node("Add", ["x", "k"], ["y"], name="n")],
        {"k": np.ones((2, 3, 4), np.float32)},
        "one value per channel",
    ),
    "reshape_merging_batch": (
        [helper.make_node("Reshape", ["x", "s"], ["y"], name="n")],
        {"s": np.array([-1, 4])},
        "keep axis 0 as the batch",
    ),
    "transpose_of_batch": (
        [helper.make_node("Transpose", ["x"], ["y"], name="n", perm=[1, 0, 2, 3])],
        {},
        "moves the batch axis",
    ),
    "concat_on_batch": ([helper.make_node("Concat", ["x", "x"], ["y"], name="n", axis=0)], {}, "batch axis"),
    "reflect_pad": (
        [helper.make_node("Pad", ["x", "p"], ["y"], name="n", mode="reflect")],
        {"p": np.array([0, 0, 1, 1, 0, 0, 1, 1])},
        "mode='reflect'",
    ),
    "softmax_not_last": (
        [helper.make_node("Softmax", ["x"], ["s"], name="n"), helper.make_node("Relu", ["s"], ["y"], name="after")],
        {},
        "last op",
    ),
    "pool_dilations": (
        [helper.make_node("MaxPool", ["x"], ["y"], name="n", kernel_shape=[2, 2], dilations=[2, 2])],
        {},
        "dilations",
    ),
}


@pytest.mark.parametrize("nodes, inits, fragment", UNSUPPORTED_NODES.values(), ids=UNSUPPORTED_NODES.keys())
def test_unsupported_use_of_a_supported_op(nodes, inits, fragment, tmp_path):
    model = make_model(nodes, {"x": [N, 2, 3, 4]}, ["y"], inits)
    raises(UnsupportedError, save(model, tmp_path), "node 'n'", fragment)


def test_squeeze_without_axes(tmp_path):
    model = make_model([helper.make_node("Squeeze", ["x"], ["y"], name="n")], {"x": [1, 1, 3]}, ["y"], opset=11)
    raises(UnsupportedError, save(model, tmp_path), "node 'n'", "needs axes")


@pytest.mark.parametrize(
    "shape, fragment",
    [
        ([4, 3], "must be dynamic or 1"),
        ([N, "H", 3], "fixed size for every axis but the first"),
        ([N], "needs a batch axis"),
    ],
)
def test_input_shapes(shape, fragment, tmp_path, capsys):
    path = save(relu_model(shape=shape), tmp_path)
    raises(UnsupportedError, path, "input 'x'", fragment)
    assert_cli_error(path, tmp_path, capsys, "input 'x'")


def test_non_float_input(tmp_path):
    graph = helper.make_graph(
        [helper.make_node("Cast", ["x"], ["y"], to=1)],
        "g",
        [helper.make_tensor_value_info("x", onnx.TensorProto.INT64, [N, 3])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [N, 3])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    raises(UnsupportedError, save(model, tmp_path), "input 'x' holds int64", "float32")


def test_constant_output(tmp_path):
    model = make_model(
        [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Identity", ["k"], ["c"])],
        {"x": [N, 3]},
        ["r", "c"],
        {"k": numpy_helper.to_array(numpy_helper.from_array(np.ones(3, np.float32)))},
    )
    raises(UnsupportedError, save(model, tmp_path), "graph output 'c' is a constant")


def test_used_second_output(tmp_path):
    graph = helper.make_graph(
        [helper.make_node("Dropout", ["x"], ["d", "mask"], name="drop", ratio=0.5)],
        "g",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [N, 3])],
        [
            helper.make_tensor_value_info(name, t, [N, 3])
            for name, t in (("d", onnx.TensorProto.FLOAT), ("mask", onnx.TensorProto.BOOL))
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 10)])
    raises(UnsupportedError, save(model, tmp_path), "node 'drop'", "output 1 ('mask') is used")
