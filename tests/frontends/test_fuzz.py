"""Fuzzing the model readers: real model files and IR text, damaged at random (truncated,
bytes flipped, archive members dropped, configs and protobuf fields corrupted), must each
either load into a graph the verifier accepts or be refused with one :class:`SnncError` line
naming the file. Any other exception (KeyError, IndexError, h5py/onnx/zipfile/json errors,
RecursionError, ...) escaping ``load_model`` is a bug in snnc.

Every test is a bounded, derandomized hypothesis property (same cases on every run). The
number of cases each mutation family ran, and how they ended, is printed at the end of the
module (``pytest -s`` shows it; it is also attached to the last test's report).
"""

from __future__ import annotations

import collections
import io
import json
import math
import re
import shutil
import zipfile
from pathlib import Path

import h5py
import numpy as np
import onnx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from snnc.compiler import interpreter, load_model, text
from snnc.compiler.errors import ModelFormatError, SnncError
from snnc.compiler.wellformed import check_well_formed

REPO = Path(__file__).resolve().parents[2]
KERAS3 = REPO / "tests" / "frontends" / "fixtures" / "keras3"
ONNX_FIXTURES = REPO / "tests" / "frontends" / "fixtures" / "onnx"
MODELS = REPO / "benchmarks" / "models"

KERAS_SEEDS = [REPO / "compiler" / "examples" / "digits_cnn.keras", KERAS3 / "func_residual.keras", KERAS3 / "nested.keras"]
H5_SEEDS = [MODELS / "mnist_mlp.h5", MODELS / "mnist_resnet_bn.h5", KERAS3 / "func_norm_dense.h5", KERAS3 / "nested.h5"]
ONNX_SEEDS = [
    ONNX_FIXTURES / "mlp_opset9.onnx",
    ONNX_FIXTURES / "lenet_bn_opset11.onnx",
    ONNX_FIXTURES / "concat_opset18.onnx",
    MODELS / "mnist_torch_cnn.onnx",
]
IR_SEEDS = [REPO / "compiler" / "examples" / "digits_cnn.keras", KERAS3 / "func_residual.keras"]

#: a graph whose values hold more elements than this is loaded but not run (cheap cases only)
RUN_LIMIT = 200_000

#: family -> Counter of outcomes ("loaded" / "refused")
CASES: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)


def fuzz(examples: int):
    """A bounded, deterministic hypothesis property."""
    return settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
    )


# ----------------------------------------------------------------------------- the oracle


def check_load(family: str, path: Path) -> None:
    """Loading ``path`` gives a verified graph (which then runs on one random input) or one
    SnncError line naming the file; anything else propagates and fails the test."""
    try:
        graph = load_model(path)
    except SnncError as exc:
        message = str(exc)
        assert "\n" not in message, message
        assert str(path) in message, message
        CASES[family]["refused"] += 1
        return
    check_well_formed(graph)  # (the frontends verify too; this also checks every parameter is finite)
    CASES[family]["loaded"] += 1
    if sum(math.prod(node.type.shape) for node in graph.nodes) <= RUN_LIMIT:
        rng = np.random.default_rng(0)
        inputs = [rng.standard_normal((1, *node.type.shape)).astype(np.float32) for node in graph.inputs]
        try:
            interpreter.run(graph, inputs)
        except SnncError:
            pass


@pytest.fixture(scope="module", autouse=True)
def case_summary(request):
    """Print how many cases each family ran once the module is done."""
    yield
    if not CASES:
        return
    parts = [f"{family} {sum(c.values())} ({c['loaded']} loaded)" for family, c in sorted(CASES.items())]
    line = f"fuzz cases: {sum(sum(c.values()) for c in CASES.values())} in all: " + "; ".join(parts)
    capture = request.config.pluginmanager.getplugin("capturemanager")
    with capture.global_and_fixture_disabled():
        print("\n" + line)


# ----------------------------------------------------------------------------- byte-level mutations


def truncations(size: int):
    return st.integers(0, size - 1)


def flips(size: int):
    """Up to eight ``(offset, xor mask)`` pairs."""
    return st.lists(st.tuples(st.integers(0, size - 1), st.integers(1, 255)), min_size=1, max_size=8)


def flipped(data: bytes, changes) -> bytes:
    out = bytearray(data)
    for offset, mask in changes:
        out[offset] ^= mask
    return bytes(out)


def write(folder: Path, name: str, data: bytes) -> Path:
    path = folder / name
    path.write_bytes(data)
    return path


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


# ----------------------------------------------------------------------------- JSON mutations

#: values a config field is replaced by: wrong types, nulls, negative and huge numbers,
#: deep nesting, wrong class names and shapes
ODD_VALUES = [
    None, "", "x", "relu", "same", "channels_first", "Conv2D", "Bogus", 0, -1, -3, 1, 2, 10**12, 2**63,
    1e308, -1e308, 0.5, True, False, [], {}, [None], [0], [-1, -1], [1, 2, 3, 4, 5], [10**9, 10**9],
    {"class_name": "Bogus", "config": {}}, {"class_name": "__numpy__", "config": {"value": "x"}},
]


def json_paths(value, prefix=()):
    """Every path (tuple of keys/indices) into a JSON value, the root excluded."""
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, child in items:
        yield (*prefix, key)
        yield from json_paths(child, (*prefix, key))


@st.composite
def json_mutations(draw, value):
    """``value`` (a parsed JSON config) with one field deleted, retyped or replaced."""
    paths = list(json_paths(value))
    path = paths[draw(st.integers(0, len(paths) - 1))]
    value = json.loads(json.dumps(value))  # a copy
    parent = value
    for key in path[:-1]:
        parent = parent[key]
    key, old = path[-1], parent[path[-1]]
    how = draw(st.sampled_from(["delete", "replace", "wrap", "stringify", "negate", "scale"]))
    if how == "delete":
        del parent[key]
    elif how == "replace":
        parent[key] = draw(st.sampled_from(ODD_VALUES))
    elif how == "wrap":  # string -> list, int -> list
        parent[key] = [old]
    elif how == "stringify":  # int -> string
        parent[key] = str(old)
    elif isinstance(old, (int, float)) and not isinstance(old, bool):
        parent[key] = -old if how == "negate" else old * 1000 + 1
    elif isinstance(old, list) and old:  # a shape or list of layers: one entry more or less
        parent[key] = old[:-1] if how == "negate" else [*old, old[-1]]
    else:
        parent[key] = None
    return value


def deeply_nested(depth: int = 100_000) -> str:
    return "[" * depth + "]" * depth


# ----------------------------------------------------------------------------- Keras .keras archives


def archive_members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def zipped(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


keras_seeds = st.sampled_from(KERAS_SEEDS)


@fuzz(120)
@given(seed=keras_seeds, data=st.data())
def test_keras_archive_truncated(work, seed, data):
    raw = seed.read_bytes()
    check_load("keras truncate", write(work, "model.keras", raw[: data.draw(truncations(len(raw)))]))


@fuzz(150)
@given(seed=keras_seeds, data=st.data())
def test_keras_archive_bytes_flipped(work, seed, data):
    raw = seed.read_bytes()
    check_load("keras flip", write(work, "model.keras", flipped(raw, data.draw(flips(len(raw))))))


@fuzz(150)
@given(seed=keras_seeds, data=st.data())
def test_keras_archive_weights_flipped(work, seed, data):
    """Flips inside the (uncompressed) weights file: damaged HDF5 structure or weights."""
    members = archive_members(seed)
    weights = members["model.weights.h5"]
    members["model.weights.h5"] = flipped(weights, data.draw(flips(len(weights))))
    check_load("keras weights flip", write(work, "model.keras", zipped(members)))


@fuzz(12)
@given(seed=keras_seeds, member=st.sampled_from(["config.json", "model.weights.h5", "metadata.json"]))
def test_keras_archive_member_dropped(work, seed, member):
    members = archive_members(seed)
    del members[member]
    check_load("keras drop member", write(work, "model.keras", zipped(members)))


@fuzz(400)
@given(seed=keras_seeds, data=st.data())
def test_keras_archive_config_corrupted(work, seed, data):
    members = archive_members(seed)
    config = json.loads(members["config.json"])
    members["config.json"] = json.dumps(data.draw(json_mutations(config))).encode()
    check_load("keras config", write(work, "model.keras", zipped(members)))


@fuzz(10)
@given(seed=keras_seeds, member=st.sampled_from(["config.json", "metadata.json"]), junk=st.sampled_from(
    [deeply_nested(), "[1, 2]", "null", '"text"', "{", "\udcff", "NaN"]
))
def test_keras_archive_json_replaced(work, seed, member, junk):
    members = archive_members(seed)
    members[member] = junk.encode("utf-8", "surrogateescape")
    check_load("keras json text", write(work, "model.keras", zipped(members)))


# ----------------------------------------------------------------------------- Keras .h5 files

h5_seeds = st.sampled_from(H5_SEEDS)


@fuzz(120)
@given(seed=h5_seeds, data=st.data())
def test_h5_truncated(work, seed, data):
    raw = seed.read_bytes()
    check_load("h5 truncate", write(work, "model.h5", raw[: data.draw(truncations(len(raw)))]))


@fuzz(200)
@given(seed=h5_seeds, data=st.data())
def test_h5_bytes_flipped(work, seed, data):
    raw = seed.read_bytes()
    check_load("h5 flip", write(work, "model.h5", flipped(raw, data.draw(flips(len(raw))))))


def h5_copy(work: Path, seed: Path) -> Path:
    path = work / "model.h5"
    shutil.copyfile(seed, path)
    return path


@fuzz(300)
@given(seed=h5_seeds, data=st.data())
def test_h5_model_config_corrupted(work, seed, data):
    path = h5_copy(work, seed)
    with h5py.File(path, "r+") as f:
        config = json.loads(f.attrs["model_config"])
        f.attrs["model_config"] = json.dumps(data.draw(json_mutations(config)))
    check_load("h5 config", path)


def weight_datasets(group) -> list[str]:
    names = []
    group.visit(lambda name: names.append(name) if isinstance(group[name], h5py.Dataset) else None)
    return names


#: how a weight dataset is replaced: by an array of another shape or type
RESHAPES = ["drop axis", "add axis", "grow", "shrink", "scalar", "empty", "int", "string", "complex"]


def reshaped(array: np.ndarray, how: str) -> np.ndarray:
    if how == "drop axis":
        return array.reshape(-1) if array.ndim > 1 else array[:0]
    if how == "add axis":
        return array[..., None]
    if how == "grow":
        return np.concatenate([array, array], axis=0) if array.ndim else array.reshape(1)
    if how == "shrink":
        return array[: max(len(array) - 1, 0)] if array.ndim else array.reshape(1)
    if how == "scalar":
        return np.asarray(array.reshape(-1)[:1].sum())
    if how == "empty":
        return np.zeros((0,), array.dtype)
    if how == "int":
        return array.astype(np.int32)
    if how == "string":
        return np.asarray([b"w"] * max(array.size, 1)).reshape(array.shape or (1,))
    return array.astype(np.complex64)


@fuzz(150)
@given(seed=h5_seeds, data=st.data())
def test_h5_weight_dataset_changed(work, seed, data):
    path = h5_copy(work, seed)
    with h5py.File(path, "r+") as f:
        group = f["model_weights"]
        names = weight_datasets(group)
        name = names[data.draw(st.integers(0, len(names) - 1))]
        how = data.draw(st.sampled_from(["delete", *RESHAPES]))
        array = group[name][()]
        del group[name]
        if how != "delete":
            group[name] = reshaped(array, how)
    check_load("h5 weights", path)


# ----------------------------------------------------------------------------- ONNX files

onnx_seeds = st.sampled_from(ONNX_SEEDS)
ONNX_MODELS = {seed: onnx.load(seed) for seed in ONNX_SEEDS}


@fuzz(120)
@given(seed=onnx_seeds, data=st.data())
def test_onnx_truncated(work, seed, data):
    raw = seed.read_bytes()
    check_load("onnx truncate", write(work, "model.onnx", raw[: data.draw(truncations(len(raw)))]))


@fuzz(200)
@given(seed=onnx_seeds, data=st.data())
def test_onnx_bytes_flipped(work, seed, data):
    raw = seed.read_bytes()
    check_load("onnx flip", write(work, "model.onnx", flipped(raw, data.draw(flips(len(raw))))))


OP_TYPES = ["Relu", "Conv", "Gemm", "MatMul", "Add", "Mul", "Softmax", "Reshape", "Transpose", "Flatten",
            "MaxPool", "AveragePool", "Identity", "Concat", "Sigmoid", "Foo", ""]
ATTRIBUTES = ["kernel_shape", "strides", "pads", "perm", "axis", "dilations", "group", "auto_pad", "transB",
              "alpha", "epsilon", "keepdims", "ceil_mode", "allowzero"]
ATTRIBUTE_VALUES = st.one_of(
    st.integers(-5, 10),
    st.sampled_from([2**40, -(2**40)]),
    st.lists(st.integers(-3, 8), min_size=1, max_size=6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["SAME_UPPER", "VALID", "NOTSET", "bogus", ""]),
)
DATA_TYPES = [onnx.TensorProto.UNDEFINED, onnx.TensorProto.DOUBLE, onnx.TensorProto.INT64, onnx.TensorProto.INT8,
              onnx.TensorProto.STRING, onnx.TensorProto.BOOL, onnx.TensorProto.FLOAT16, 999]


def pick(data, items):
    return items[data.draw(st.integers(0, len(items) - 1))]


def mutate_onnx(model, data) -> None:
    """One structured corruption of ``model`` (in place)."""
    graph = model.graph
    how = data.draw(st.sampled_from([
        "remove initializer", "op type", "drop attribute", "set attribute", "initializer dims",
        "initializer type", "input dims", "input type", "dangling input", "opset", "ir version",
    ]))
    if how == "remove initializer" and graph.initializer:
        graph.initializer.remove(pick(data, graph.initializer))
    elif how == "op type":
        pick(data, graph.node).op_type = data.draw(st.sampled_from(OP_TYPES))
    elif how == "drop attribute":
        node = pick(data, graph.node)
        if node.attribute:
            node.attribute.remove(pick(data, node.attribute))
    elif how == "set attribute":
        node = pick(data, graph.node)
        name = data.draw(st.sampled_from(ATTRIBUTES))
        for attribute in [a for a in node.attribute if a.name == name]:
            node.attribute.remove(attribute)
        node.attribute.append(onnx.helper.make_attribute(name, data.draw(ATTRIBUTE_VALUES)))
    elif how == "initializer dims" and graph.initializer:
        tensor = pick(data, graph.initializer)
        dims = data.draw(st.lists(st.integers(-2, 70), max_size=5))
        del tensor.dims[:]
        tensor.dims.extend(dims)
    elif how == "initializer type" and graph.initializer:
        pick(data, graph.initializer).data_type = data.draw(st.sampled_from(DATA_TYPES))
    elif how == "input dims":
        shape = pick(data, graph.input).type.tensor_type.shape
        dims = data.draw(st.lists(st.one_of(st.integers(-2, 40), st.none()), max_size=5))
        del shape.dim[:]
        for d in dims:
            dim = shape.dim.add()
            if d is None:
                dim.dim_param = "N"
            else:
                dim.dim_value = d
    elif how == "input type":
        pick(data, graph.input).type.tensor_type.elem_type = data.draw(st.sampled_from(DATA_TYPES))
    elif how == "dangling input":
        node = pick(data, graph.node)
        if node.input:
            node.input[data.draw(st.integers(0, len(node.input) - 1))] = "nowhere"
    elif how == "opset":
        model.opset_import[0].version = data.draw(st.sampled_from([-1, 0, 1, 6, 7, 12, 13, 21, 99, 2**62]))
    elif how == "ir version":
        model.ir_version = data.draw(st.sampled_from([0, 1, 3, 99]))


@fuzz(500)
@given(seed=onnx_seeds, data=st.data())
def test_onnx_structure_corrupted(work, seed, data):
    model = onnx.ModelProto()
    model.CopyFrom(ONNX_MODELS[seed])
    for _ in range(data.draw(st.integers(1, 2))):
        mutate_onnx(model, data)
    check_load("onnx structure", write(work, "model.onnx", model.SerializeToString()))


# ----------------------------------------------------------------------------- IR text and .npz


@pytest.fixture(scope="module")
def ir_seeds(tmp_path_factory) -> dict[str, tuple[str, dict[str, np.ndarray]]]:
    """IR text and parameters of real models: name -> (text, arrays)."""
    folder = tmp_path_factory.mktemp("ir")
    seeds = {}
    for model in IR_SEEDS:
        path = text.save(load_model(model), folder / f"{model.stem}.ir")
        with np.load(text.params_path(path)) as store:
            seeds[model.stem] = (path.read_text(), {k: store[k] for k in store.files})
    return seeds


def write_ir(work: Path, source: str | bytes, arrays: dict[str, np.ndarray] | bytes) -> Path:
    path = work / "model.ir"
    path.write_bytes(source if isinstance(source, bytes) else source.encode())
    npz = text.params_path(path)
    if isinstance(arrays, bytes):
        npz.write_bytes(arrays)
    else:
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        npz.write_bytes(buffer.getvalue())
    return path


ir_names = st.sampled_from([model.stem for model in IR_SEEDS])
IR_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[%#]?[A-Za-z0-9_.+-]+|\S')
TOKENS = ["%image", "%nowhere", "[", "]", "(", ")", "{", "}", "<", ">", "=", ",", ":", "@", "0", "-1", "7",
          "99999999999", "1e400", "nan", "inf", "none", "true", '"x"', "f32", "i8", "u1", "#deadbeef",
          "conv2d", "dense", "relu", "input", "output", "meta", "{}", "8x1x3x3", "HWC", ""]


@fuzz(150)
@given(name=ir_names, data=st.data())
def test_ir_lines_deleted(ir_seeds, work, name, data):
    source, arrays = ir_seeds[name]
    lines = source.splitlines()
    gone = data.draw(st.sets(st.integers(0, len(lines) - 1), min_size=1, max_size=3))
    check_load("ir delete lines", write_ir(work, "\n".join(l for i, l in enumerate(lines) if i not in gone), arrays))


@fuzz(400)
@given(name=ir_names, data=st.data())
def test_ir_tokens_substituted(ir_seeds, work, name, data):
    source, arrays = ir_seeds[name]
    tokens = list(IR_TOKEN.finditer(source))
    for _ in range(data.draw(st.integers(1, 3))):
        token = pick(data, tokens)
        replacement = data.draw(st.one_of(st.sampled_from(TOKENS), st.sampled_from([t.group() for t in tokens])))
        source = source[: token.start()] + replacement + source[token.end() :]
        tokens = list(IR_TOKEN.finditer(source))
    check_load("ir tokens", write_ir(work, source, arrays))


@fuzz(100)
@given(name=ir_names, data=st.data())
def test_ir_text_truncated_or_flipped(ir_seeds, work, name, data):
    source, arrays = ir_seeds[name]
    raw = source.encode()
    if data.draw(st.booleans()):
        raw = raw[: data.draw(truncations(len(raw)))]
    else:
        raw = flipped(raw, data.draw(flips(len(raw))))
    check_load("ir text bytes", write_ir(work, raw, arrays))


@fuzz(150)
@given(name=ir_names, data=st.data())
def test_ir_params_changed(ir_seeds, work, name, data):
    source, arrays = ir_seeds[name]
    arrays = dict(arrays)
    key = pick(data, sorted(arrays))
    how = data.draw(st.sampled_from(["missing", "extra", "nan", *RESHAPES]))
    if how == "missing":
        del arrays[key]
    elif how == "extra":
        arrays["stray.weight"] = np.ones(3, np.float32)
    elif how == "nan":
        arrays[key] = np.full_like(arrays[key], np.nan)
    else:
        arrays[key] = reshaped(arrays[key], how)
    check_load("ir npz arrays", write_ir(work, source, arrays))


@fuzz(100)
@given(name=ir_names, data=st.data())
def test_ir_npz_bytes_damaged(ir_seeds, work, name, data):
    source, arrays = ir_seeds[name]
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    raw = buffer.getvalue()
    if data.draw(st.booleans()):
        raw = raw[: data.draw(truncations(len(raw)))]
    else:
        raw = flipped(raw, data.draw(flips(len(raw))))
    check_load("ir npz bytes", write_ir(work, source, raw))


# ----------------------------------------------------------------------------- what the fuzzer found
# One case of each bug the families above found, kept as plain tests: each raised something
# other than a SnncError (or loaded a wrong graph) before its fix.


def load_error(path: Path) -> str:
    with pytest.raises(SnncError) as info:
        load_model(path)
    message = str(info.value)
    assert "\n" not in message and str(path) in message, message
    return message


def test_nan_keras_weight_is_refused_naming_the_layer(tmp_path):
    """A flipped exponent byte gives NaN weights: refused, naming the layer and the weight
    (before: UnsupportedError naming an IR node)."""
    path = h5_copy(tmp_path, MODELS / "mnist_mlp.h5")
    with h5py.File(path, "r+") as f:
        f["model_weights/dense2/dense2/kernel:0"][0, 0] = np.nan
    message = load_error(path)
    assert "layer 'dense2' (Dense)" in message and "weight kernel has 1 NaN" in message


def test_infinite_onnx_initializer_is_refused_naming_the_node(tmp_path):
    model = onnx.load(ONNX_FIXTURES / "mlp_opset9.onnx")
    tensor = model.graph.initializer[2]  # fc2.weight
    array = onnx.numpy_helper.to_array(tensor).copy()
    array[3, 4] = np.inf
    tensor.CopyFrom(onnx.numpy_helper.from_array(array, tensor.name))
    message = load_error(write(tmp_path, "model.onnx", model.SerializeToString()))
    assert "node '/fc2/Gemm' (Gemm)" in message and "1 NaN or infinite" in message


def test_damaged_hdf5_weights_are_a_format_error(tmp_path):
    """A byte flip in an HDF5 B-tree (found by test_h5_bytes_flipped; before: h5py's RuntimeError)."""
    raw = (KERAS3 / "func_norm_dense.h5").read_bytes()
    with pytest.raises(ModelFormatError, match="cannot read its weights"):
        load_model(write(tmp_path, "model.h5", flipped(raw, [(11480, 2)])))


def keras_config_changed(tmp_path: Path, change) -> Path:
    members = archive_members(REPO / "compiler" / "examples" / "digits_cnn.keras")
    config = json.loads(members["config.json"])
    change(config["config"]["layers"])
    members["config.json"] = json.dumps(config).encode()
    return write(tmp_path, "model.keras", zipped(members))


def conv1(layers) -> dict:
    return next(layer["config"] for layer in layers if layer["config"].get("name") == "conv1")


@pytest.mark.parametrize(
    "change, fragment",
    [
        (lambda layers: layers[1].update(config=None), "is a NoneType, not an object"),  # before: AttributeError
        (lambda layers: layers[1].update(config=[1]), "is a list, not an object"),  # before: AttributeError
        (lambda layers: conv1(layers).update(name=None), "is None, not a string"),  # before: TypeError
        (lambda layers: conv1(layers).update(data_format=["x"]), "unknown data_format"),  # before: TypeError
        (lambda layers: layers[0]["config"].update(batch_input_shape=7), "malformed shape"),  # before: TypeError
        (lambda layers: layers[0]["config"].update(batch_input_shape=[None, 8, -8, 1]), "malformed shape"),
        # before: loaded, and the interpreter failed on the negative dilation / zero stride
        (lambda layers: conv1(layers).update(dilation_rate=[-1, 1]), "sizes are positive"),
        (lambda layers: conv1(layers).update(strides=0), "sizes are positive"),
    ],
)
def test_malformed_keras_config_is_a_format_error(tmp_path, change, fragment):
    with pytest.raises(ModelFormatError, match=re.escape(fragment)):
        load_model(keras_config_changed(tmp_path, change))


def test_onnx_initializer_data_that_does_not_fit_its_dims(tmp_path):
    """(before: NumPy's ValueError from numpy_helper.to_array)"""
    model = onnx.load(ONNX_FIXTURES / "mlp_opset9.onnx")
    tensor = model.graph.initializer[1]  # fc1.bias, 16 values
    del tensor.dims[:]
    tensor.dims.extend([4, 5])
    message = load_error(write(tmp_path, "model.onnx", model.SerializeToString()))
    assert "initializer 'fc1.bias' does not hold the data" in message


def test_onnx_unknown_data_type_is_a_format_error(tmp_path):
    """(before: onnx's ValueError "Invalid tensor data type")"""
    model = onnx.load(ONNX_FIXTURES / "mlp_opset9.onnx")
    model.graph.initializer[1].data_type = 999
    with pytest.raises(ModelFormatError, match="Invalid tensor data type 999"):
        load_model(write(tmp_path, "model.onnx", model.SerializeToString()))


@pytest.fixture
def digits_ir(tmp_path) -> Path:
    return text.save(load_model(REPO / "compiler" / "examples" / "digits_cnn.keras"), tmp_path / "digits.ir")


@pytest.mark.parametrize(
    "old, new, fragment",
    [
        ("kernel=[3,3]", 'kernel="x"', 'attribute kernel of conv2d is "x", not tuple[int, int]'),  # TypeError
        ("kernel=[3,3]", "kernel=[3]", "attribute kernel of conv2d is [3], not tuple[int, int]"),  # IndexError
        ("perm=[1,2,0]", 'perm=[1,"a",0]', "attribute perm of transpose"),  # TypeError
        ("units=10", "units=1.5", "attribute units of dense is 1.5, not int"),
        # before: ZeroDivisionError in the verifier, or loaded and failed in the interpreter
        ("kernel=[2,2], stride=[2,2]", "kernel=[2,2], stride=[0,2]", "stride and dilation of at least 1"),
        ("pads=[1,1,1,1], weight=<8x", "pads=[1,-1,1,1], weight=<8x", "pads of at least 0"),
    ],
)
def test_ir_attribute_of_the_wrong_type_or_range(digits_ir, old, new, fragment):
    source = digits_ir.read_text()
    assert old in source
    digits_ir.write_text(source.replace(old, new, 1))
    assert fragment in load_error(digits_ir)


def test_ir_text_that_is_not_utf8(digits_ir):
    """(before: UnicodeDecodeError from read_text)"""
    digits_ir.write_bytes(digits_ir.read_bytes().replace(b"conv1", b"conv\xc71", 1))
    assert "not UTF-8 text" in load_error(digits_ir)
