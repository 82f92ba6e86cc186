"""The ONNX frontend: ``.onnx`` files (opset 7 and newer) into the IR.

ONNX is channels first, like the IR, so tensors keep their axes: an ONNX tensor
``(N, C, H, W)`` is the IR value ``(C, H, W)``, and the first axis of every input (dynamic,
or a fixed 1 as many exports have) is the batch. Weights may be inline or in external data
files inside the model's folder. A model must pass ``onnx.checker`` and strict
``onnx.shape_inference``.

Supported ops (:data:`SUPPORTED_OPS`): Conv (groups, pads, strides, dilations, auto_pad),
Gemm, MatMul (an Add of a constant after it becomes the bias), Relu, LeakyRelu, Clip,
HardSigmoid, Sigmoid, Tanh,
BatchNormalization, AveragePool, MaxPool, GlobalAveragePool, GlobalMaxPool, ReduceMean
(over H and W), Flatten, Reshape, Transpose, Squeeze, Unsqueeze, Add, Sub, Mul, Div (by
constants: scalars or one value per channel; Add and Sub also of two tensors), Sum,
Concat, Softmax (as the last op), Pad (constant), Dropout, Identity, and Constant, Shape
and Size; Floor inside the elementwise chain of a QCFS activation (one ``qcfs`` op, see
:mod:`.patterns`); and RNN (forward, Relu or Affine, layout 0; a zero initial state, constant or
computed from the batch size as PyTorch writes it) with Squeeze, Transpose, MatMul (+ bias
Add) and Gather of the last step on its sequences (:mod:`.recurrent`: a model with an RNN
takes sequences, batch first, ``(N, steps, features)``, whatever the ONNX input's layout).
Loop and Scan (how tf2onnx writes Keras recurrent layers) are refused by node. Any node whose inputs are all constants is computed at import by onnx's reference implementation (weights
reshaped inside the graph, shape arithmetic such as ``x.view(x.size(0), -1)``).

Modules: :mod:`.files` reads and checks the file, :mod:`.structure` checks the graph's
structure, :mod:`.patterns` fuses op chains that one IR op computes (QCFS), :mod:`.fold`
computes constants, :mod:`.converters` holds one converter per op, :mod:`.recurrent` the
RNN and its sequences, and :mod:`.convert` builds the graph.
"""

from __future__ import annotations

from pathlib import Path

from snnc.compiler.graph import Graph

from .convert import SUPPORTED_OPS, convert_model
from .files import read_model

__all__ = ["SUPPORTED_OPS", "load_onnx"]


def load_onnx(path) -> Graph:
    """Import an ONNX model file into a verified float graph.

    Raises
    ------
    ModelFormatError
        The file is not a readable, valid ONNX model (names the file and the problem).
    UnsupportedError
        The model uses an op, opset or option outside snnc's op set (names the nodes and
        what is supported).
    """
    path = Path(path)
    model, opset = read_model(path)
    return convert_model(model, opset, path)
