"""Open an ``.onnx`` file as a checked model: parse the protobuf, check the opset, load
external data from inside the model's folder, check the graph's structure, then run
``onnx.checker`` and strict ``onnx.shape_inference``.

Every failure is a :class:`~snnc.compiler.errors.ModelFormatError` (or, for an opset snnc
does not read, an :class:`~snnc.compiler.errors.UnsupportedError`) whose one-line message
names the file.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath, PureWindowsPath

import numpy as np

from snnc.compiler.errors import ModelFormatError, UnsupportedError

from .structure import check_conv_ranks, check_structure

#: the oldest default-domain opset snnc reads (the first with today's BatchNormalization)
MIN_OPSET = 7
DEFAULT_DOMAINS = ("", "ai.onnx")


def read_model(path: Path):
    """The model in ``path`` with external data loaded, checked, and with inferred shapes."""
    import onnx

    model = _parse(path, _read_bytes(path))
    opset = default_opset(model, path)
    load_external_data(model, path)
    check_structure(model.graph, path)
    check_conv_ranks(model.graph, path)
    try:
        onnx.checker.check_model(model)
    except (onnx.checker.ValidationError, ValueError) as exc:  # ValueError: e.g. an unknown data type, bad UTF-8
        raise ModelFormatError(f"{path}: fails the ONNX checker: {_one_line(exc)}") from None
    try:
        # strict: an op whose shapes do not fit is an error here, not a surprise later
        model = onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True, data_prop=True)
    except (onnx.shape_inference.InferenceError, onnx.checker.ValidationError, ValueError) as exc:
        raise ModelFormatError(f"{path}: fails ONNX shape inference: {_one_line(exc)}") from None
    return model, opset


def initializer_arrays(graph, path: Path) -> dict[str, np.ndarray]:
    """The graph's initializers as arrays, by name (onnx.checker does not check that a
    tensor's data fits its dims and type: a damaged one fails here)."""
    from onnx import numpy_helper

    arrays = {}
    for tensor in graph.initializer:
        try:
            arrays[tensor.name] = numpy_helper.to_array(tensor)
        except (ValueError, TypeError, KeyError) as exc:
            raise ModelFormatError(
                f"{path}: initializer {tensor.name!r} does not hold the data its dims and type say "
                f"({_one_line(exc)})"
            ) from None
    return arrays


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:400] or type(exc).__name__


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ModelFormatError(f"{path}: cannot read: {exc.strerror or exc}") from None


def _parse(path: Path, data: bytes):
    import onnx
    from google.protobuf.message import DecodeError

    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except DecodeError:
        raise ModelFormatError(f"{path}: not an ONNX model, or truncated (the protobuf does not parse)") from None
    # Protobuf is lenient: other bytes may parse into an empty message.
    if not model.HasField("graph") or not model.ir_version:
        raise ModelFormatError(f"{path}: not an ONNX model (no graph or no IR version in the protobuf)")
    _check_names(model.graph, path)
    return model


def _check_names(graph, path: Path) -> None:
    """Protobuf hands a string field that is not UTF-8 back as bytes; names must be text."""
    values = [*graph.input, *graph.output, *graph.value_info]
    names = [graph.name, *(v.name for v in values), *(t.name for t in graph.initializer)]
    for node in graph.node:
        names += [node.name, node.op_type, node.domain, *node.input, *node.output]
        names += [a.name for a in node.attribute]
    if not all(isinstance(name, str) for name in names):
        raise ModelFormatError(f"{path}: a name in the graph is not valid UTF-8 text (a damaged file?)")


def default_opset(model, path: Path) -> int:
    """The model's version of the default (``ai.onnx``) operator set, checked to be one snnc
    and the installed onnx read (onnx.checker accepts opsets newer than it knows)."""
    import onnx

    versions = [o.version for o in model.opset_import if o.domain in DEFAULT_DOMAINS]
    if not versions:
        raise ModelFormatError(f"{path}: imports no version of the default ONNX operator set")
    opset, newest = versions[0], onnx.defs.onnx_opset_version()
    if opset < MIN_OPSET:
        raise UnsupportedError(f"{path}: opset {opset}; snnc reads ONNX opsets {MIN_OPSET} to {newest}")
    if opset > newest:
        raise ModelFormatError(
            f"{path}: opset {opset} is newer than the installed onnx {onnx.__version__} knows "
            f"(opsets {MIN_OPSET} to {newest})"
        )
    return opset


# ----------------------------------------------------------------------------- external data


def load_external_data(model, path: Path) -> None:
    """Read every tensor stored outside the protobuf into it, from files inside the model's
    folder only (resolved, so ``..``, absolute paths and symlinks out are refused)."""
    import onnx

    folder = path.resolve().parent
    for tensor in _all_tensors(model.graph):
        if tensor.data_location != onnx.TensorProto.EXTERNAL:
            continue
        info = {entry.key: entry.value for entry in tensor.external_data}
        file = _data_file(folder, info.get("location", ""), path, tensor.name)
        tensor.raw_data = _read_range(file, info, path, tensor)
        del tensor.external_data[:]
        tensor.data_location = onnx.TensorProto.DEFAULT


def _all_tensors(graph):
    """Initializers and tensors in node attributes (``Constant`` values), where exporters
    put external data."""
    yield from graph.initializer
    for node in graph.node:
        for attribute in node.attribute:
            if attribute.HasField("t"):
                yield attribute.t
            yield from attribute.tensors


def _data_file(folder: Path, location: str, path: Path, tensor: str) -> Path:
    where = f"{path}: external data {location!r} of tensor {tensor!r}"
    if not location:
        raise ModelFormatError(f"{path}: tensor {tensor!r} is stored externally but names no file")
    if PurePosixPath(location).is_absolute() or PureWindowsPath(location).is_absolute():
        raise ModelFormatError(f"{where} is an absolute path; it must be a file in the model's folder")
    file = (folder / location).resolve()
    if not file.is_relative_to(folder):
        raise ModelFormatError(f"{where} is outside the model's folder {folder}")
    if not file.is_file():
        raise ModelFormatError(f"{where}: no such file in {folder}")
    return file


def _read_range(file: Path, info: dict, path: Path, tensor) -> bytes:
    from onnx.helper import tensor_dtype_to_np_dtype

    try:
        itemsize = tensor_dtype_to_np_dtype(tensor.data_type).itemsize
    except KeyError:
        raise ModelFormatError(f"{path}: tensor {tensor.name!r} has unknown element type {tensor.data_type}") from None
    expected = int(np.prod(tensor.dims, dtype=np.int64)) * itemsize
    try:
        offset, length = int(info.get("offset", 0)), int(info.get("length", expected))
    except ValueError:
        raise ModelFormatError(
            f"{path}: tensor {tensor.name!r} has a non-numeric external data offset or length"
        ) from None
    if length != expected:
        raise ModelFormatError(
            f"{path}: tensor {tensor.name!r} needs {expected} bytes, its external data entry says {length}"
        )
    try:
        with open(file, "rb") as f:
            f.seek(offset)
            data = f.read(length)
    except OSError as exc:
        raise ModelFormatError(f"{path}: cannot read external data {file.name}: {exc.strerror or exc}") from None
    if len(data) != length:
        raise ModelFormatError(
            f"{path}: external data {file.name} ends before tensor {tensor.name!r} "
            f"({len(data)} of {length} bytes from offset {offset})"
        )
    return data
