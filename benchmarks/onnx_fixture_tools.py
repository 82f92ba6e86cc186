"""What the ONNX fixture-export scripts (``make_*_fixtures.py``, run in their own exporter
environments) share: onnxruntime's reference outputs and a model's entry in a fixture manifest."""

from __future__ import annotations

import platform
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort


def new_manifest(**exporters: str) -> dict:
    """An empty fixture manifest recording the versions that made it: Python, the exporter
    libraries given (name=version), onnx and onnxruntime."""
    versions = {"python": platform.python_version(), **exporters, "onnx": onnx.__version__, "onnxruntime": ort.__version__}
    return {"versions": versions, "exports": {}}


def onnxruntime_outputs(path: Path, x: np.ndarray) -> np.ndarray:
    """The first output of the model in ``path`` on ``x``, without graph optimisations (the
    reference is the graph as exported)."""
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


def describe(path: Path, exporter: str, file: str | None = None, **extra) -> dict:
    """The manifest entry of an exported model: its file, exporter, default-domain opset,
    input shape (symbolic dimensions by name), ``extra`` facts, and the ops it uses."""
    model = onnx.load(str(path), load_external_data=False)
    opset = next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    dims = [d.dim_param or d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    return {
        "file": file or path.name,
        "exporter": exporter,
        "opset": opset,
        "input_shape": dims,
        **extra,
        "ops": sorted({n.op_type for n in model.graph.node}),
    }
