"""Helpers for the ONNX frontend tests: tiny models built with onnx.helper, and the
differential check of snnc's interpreter against onnxruntime."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from snnc.compiler import load_model, run_model

RTOL = ATOL = 1e-5


def make_model(nodes, inputs: dict, outputs, initializers: dict | None = None, opset: int = 13):
    """A model of ``nodes`` with float inputs ``{name: shape}`` (``"N"``: dynamic) and
    initializers ``{name: array}``. ``outputs`` is a list of names, whose types shape
    inference fills in, or ``{name: shape}`` for graphs it cannot take (a cycle)."""
    shaped = isinstance(outputs, dict)
    graph = helper.make_graph(
        nodes,
        "test",
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, shape) for name, shape in inputs.items()],
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, outputs[name] if shaped else None) for name in outputs],
        [numpy_helper.from_array(np.asarray(a), name) for name, a in (initializers or {}).items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="snnc-tests")
    model.ir_version = min(model.ir_version, 10)  # onnxruntime reads IR versions up to 10
    return model if shaped else onnx.shape_inference.infer_shapes(model, data_prop=True)


def save(model, folder: Path, name: str = "model.onnx") -> Path:
    path = Path(folder) / name
    onnx.save_model(model, path)
    return path


def ort_outputs(path: Path, inputs: list[np.ndarray]) -> list[np.ndarray]:
    """onnxruntime's outputs, without graph optimizations (which change the arithmetic)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    return session.run(None, dict(zip(names, inputs)))


def random_inputs(model, rng, batch: int = 3) -> list[np.ndarray]:
    """Random float32 data for each real input (initializers excluded); a fixed first
    axis keeps its size."""
    initializers = {t.name for t in model.graph.initializer}
    arrays = []
    for value in model.graph.input:
        if value.name in initializers:
            continue
        dims = [d.dim_value if d.HasField("dim_value") else batch for d in value.type.tensor_type.shape.dim]
        arrays.append(rng.normal(size=dims).astype(np.float32))
    return arrays


def assert_matches_onnxruntime(path: Path, inputs: list[np.ndarray]):
    """snnc's interpreter on the imported model equals onnxruntime on the file; returns
    the graph."""
    graph = load_model(path)
    ours = list(run_model(graph, inputs).values())
    theirs = ort_outputs(path, inputs)
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs):
        assert a.shape == b.shape, (a.shape, b.shape)
        np.testing.assert_allclose(a, b, rtol=RTOL, atol=ATOL)
    return graph


def check(model, tmp_path: Path, rng, batch: int = 3):
    """Save ``model``, import it, and check it against onnxruntime on random inputs."""
    path = save(model, tmp_path)
    return assert_matches_onnxruntime(path, random_inputs(model, rng, batch))
