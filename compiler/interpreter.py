"""NumPy interpreter for the float IR: the oracle every frontend and pass is checked against.

Values are batched arrays ``(N, *type.shape)`` in the IR's layout. Arithmetic runs in float64
(parameters are float32) so the interpreter's own rounding stays far below the tolerances
it is used to check. Each op's evaluator is a small function registered in
:data:`EVALUATORS`; spiking stages add theirs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from . import ops
from .errors import DataError, SnncError
from .graph import Graph, Node
from .neurons.if_ import qcfs
from .neurons.lif import soft_lif_rate

Evaluator = Callable[[Node, list[np.ndarray]], np.ndarray]
EVALUATORS: dict[type, Evaluator] = {}


def evaluates(op_type):
    def register(fn):
        EVALUATORS[op_type] = fn
        return fn

    return register


def _p(node: Node, key: str, like: np.ndarray | None = None) -> np.ndarray:
    """A parameter in the precision of the values it meets (float64 unless ``like`` says)."""
    dtype = like.dtype if like is not None and like.dtype == np.float32 else np.float64
    return node.params[key].astype(dtype)


def pad_images(x: np.ndarray, pads, value: float) -> np.ndarray:
    pt, pl, pb, pr = pads
    if not any(pads):
        return x
    return np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)), constant_values=value)


def window_view(x: np.ndarray, kernel, stride, dilation=(1, 1)) -> np.ndarray:
    """``(N, C, Ho, Wo, kh, kw)`` view of the sliding windows of a padded ``(N, C, H, W)``."""
    kh, kw = kernel
    dh, dw = dilation
    span = (dh * (kh - 1) + 1, dw * (kw - 1) + 1)
    win = sliding_window_view(x, span, axis=(2, 3))
    return win[:, :, :: stride[0], :: stride[1], ::dh, ::dw]


@evaluates(ops.Output)
def _output(node, xs):
    return xs[0]


@evaluates(ops.Dense)
def _dense(node, xs):
    return xs[0] @ _p(node, "weight", xs[0]).T + _p(node, "bias", xs[0])


@evaluates(ops.Conv2d)
def _conv2d(node, xs):
    op = node.op
    x = pad_images(xs[0], op.pads, 0.0)
    w = _p(node, "weight", x)
    win = window_view(x, op.kernel, op.stride, op.dilation)  # N, C, Ho, Wo, kh, kw
    g = op.groups
    cg, fg = x.shape[1] // g, op.filters // g
    outs = []
    for k in range(g):
        wk = w[k * fg : (k + 1) * fg]  # fg, cg, kh, kw
        xk = win[:, k * cg : (k + 1) * cg]
        outs.append(np.tensordot(xk, wk, axes=([1, 4, 5], [1, 2, 3])))  # N, Ho, Wo, fg
    y = np.concatenate(outs, axis=-1) if g > 1 else outs[0]
    return y.transpose(0, 3, 1, 2) + _p(node, "bias", x)[None, :, None, None]


def window_offsets(kernel, stride, out_hw) -> list[tuple[slice, slice]]:
    """One ``(rows, cols)`` strided slice per window position ``(u, v)``, in row-major
    order: element ``(u, v)`` of every window at once."""
    (kh, kw), (sh, sw), (ho, wo) = kernel, stride, out_hw
    return [
        (slice(u, u + sh * (ho - 1) + 1, sh), slice(v, v + sw * (wo - 1) + 1, sw))
        for u in range(kh)
        for v in range(kw)
    ]


def _window_reduce(x: np.ndarray, kernel, stride, out_hw, reduce) -> np.ndarray:
    """Reduce each pooling window over its kh*kw offsets: each offset is one strided slice,
    so the work stays vectorized (a reduction over a window view is slow)."""
    result = None
    for rows, cols in window_offsets(kernel, stride, out_hw):
        part = x[:, :, rows, cols]
        result = part.copy() if result is None else reduce(result, part, out=result)
    return result


@evaluates(ops.AvgPool2d)
def _avg_pool(node, xs):
    op = node.op
    x = xs[0]
    out_hw = node.type.shape[1:]
    sums = _window_reduce(pad_images(x, op.pads, 0.0), op.kernel, op.stride, out_hw, np.add)
    if op.count_include_pad or not any(op.pads):
        return sums / (op.kernel[0] * op.kernel[1])
    ones = pad_images(np.ones((1, 1, *x.shape[2:]), dtype=x.dtype), op.pads, 0.0)
    counts = _window_reduce(ones, op.kernel, op.stride, out_hw, np.add)
    return sums / counts


def max_pool(x: np.ndarray, op, out_hw) -> np.ndarray:
    """``max_pool2d`` of a batch ``(N, C, H, W)`` with ``op``'s window (padded positions are
    ``-inf``) to ``out_hw``; the spiking max gate applies it to accumulated input."""
    return _window_reduce(pad_images(x, op.pads, -np.inf), op.kernel, op.stride, out_hw, np.maximum)


@evaluates(ops.MaxPool2d)
def _max_pool(node, xs):
    return max_pool(xs[0], node.op, node.type.shape[1:])


@evaluates(ops.GlobalAvgPool)
def _global_avg_pool(node, xs):
    return xs[0].mean(axis=(2, 3), keepdims=node.op.keepdims)


@evaluates(ops.Reshape)
def _reshape(node, xs):
    return xs[0].reshape((xs[0].shape[0], *node.op.shape))


@evaluates(ops.Transpose)
def _transpose(node, xs):
    return xs[0].transpose(0, *(p + 1 for p in node.op.perm))


@evaluates(ops.Pad2d)
def _pad2d(node, xs):
    if not node.op.per_channel:
        return pad_images(xs[0], node.op.pads, node.op.value)
    # pad each channel with its own value: the zero-padded input plus the values on the border
    values = _p(node, "values", xs[0])
    border = pad_images(np.zeros(xs[0][:1].shape, values.dtype), node.op.pads, 1.0)
    return pad_images(xs[0], node.op.pads, 0.0) + border * _per_channel(values, 3)


def _per_channel(array: np.ndarray, rank: int) -> np.ndarray:
    """Shape a ``(C,)`` parameter to broadcast over a batched rank-``rank`` value."""
    return array.reshape((1, -1) + (1,) * (rank - 1))


@evaluates(ops.BatchNorm)
def _batch_norm(node, xs):
    x = xs[0]
    r = x.ndim - 1
    scale = _p(node, "gamma") / np.sqrt(_p(node, "var") + node.op.epsilon)
    return (x - _per_channel(_p(node, "mean"), r)) * _per_channel(scale, r) + _per_channel(
        _p(node, "beta"), r
    )


@evaluates(ops.Affine)
def _affine(node, xs):
    r = xs[0].ndim - 1
    return xs[0] * _per_channel(_p(node, "scale", xs[0]), r) + _per_channel(_p(node, "shift", xs[0]), r)


@evaluates(ops.ReLU)
def _relu(node, xs):
    op = node.op
    x = xs[0]
    y = np.where(x >= op.threshold, x, op.negative_slope * (x - op.threshold))
    if op.max_value is not None:
        y = np.minimum(y, op.max_value)
    return y


@evaluates(ops.SoftLif)
def _soft_lif(node, xs):
    op = node.op
    return op.amplitude * soft_lif_rate(xs[0], op.tau_rc, op.tau_ref, op.sigma)


@evaluates(ops.Qcfs)
def _qcfs(node, xs):
    op = node.op
    return qcfs(xs[0], op.levels, op.threshold, op.shift)


@evaluates(ops.SpikingRelu)
def _spiking_relu(node, xs):
    return np.maximum(xs[0], 0.0)


@evaluates(ops.Add)
def _add(node, xs):
    return sum(xs[1:], xs[0])


@evaluates(ops.Concat)
def _concat(node, xs):
    return np.concatenate(xs, axis=node.op.axis + 1)


@evaluates(ops.Softmax)
def _softmax(node, xs):
    axis = node.op.axis + 1
    z = xs[0] - xs[0].max(axis=axis, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=axis, keepdims=True)


@evaluates(ops.Sigmoid)
def _sigmoid(node, xs):
    # tanh form: no overflow in exp for large |x|
    return 0.5 * (1.0 + np.tanh(0.5 * xs[0]))


@evaluates(ops.Tanh)
def _tanh(node, xs):
    return np.tanh(xs[0])


# ----------------------------------------------------------------------------- running


def name_inputs(graph: Graph, inputs) -> dict[str, np.ndarray]:
    """``inputs`` (one array, a list in input order, or a dict by name) by input name."""
    names = [n.name for n in graph.inputs]
    if isinstance(inputs, Mapping):
        missing = [n for n in names if n not in inputs]
        if missing:
            raise DataError(f"no data for input {missing[0]} (inputs: {', '.join(names)})")
        return {n: inputs[n] for n in names}
    seq = [inputs] if isinstance(inputs, np.ndarray) else list(inputs)
    if len(seq) != len(names):
        raise DataError(f"graph {graph.name} takes {len(names)} inputs, got {len(seq)}")
    return dict(zip(names, seq))


def bind_inputs(graph: Graph, inputs) -> dict[str, np.ndarray]:
    """:func:`name_inputs`, checking each array's per-example shape against the graph's
    input type (a sequence input: ``(N, steps, *shape)``, every sequence of one length) and
    that all inputs have one batch size."""
    arrays = name_inputs(graph, inputs)
    batch = steps = None
    for name, array in arrays.items():
        node = graph.node(name)
        want = node.type.shape
        array = np.asarray(array)
        got = array.shape[2:] if node.op.sequence else array.shape[1:]
        if got != want or (node.op.sequence and array.ndim < 2):
            what = "sequences of examples" if node.op.sequence else "examples"
            layout = "(N, steps, " + ", ".join(map(str, want)) + ")" if node.op.sequence else str(list(want))
            raise DataError(f"input %{name} expects {what} of shape {layout}, got data of shape {list(array.shape)}")
        if batch is not None and array.shape[0] != batch:
            raise DataError(f"inputs have different batch sizes ({batch} and {array.shape[0]})")
        if node.op.sequence:
            if steps is not None and array.shape[1] != steps:
                raise DataError(f"sequence inputs have different numbers of steps ({steps} and {array.shape[1]})")
            steps = array.shape[1]
            if steps == 0:
                raise DataError(f"input %{name}: the sequences have no steps")
        batch = array.shape[0]
        arrays[name] = array
    return arrays


def sequence_steps(graph: Graph, arrays: Mapping[str, np.ndarray]) -> int:
    """The number of input steps of bound ``arrays`` (1 when no input is a sequence)."""
    for node in graph.inputs:
        if node.op.sequence:
            return arrays[node.name].shape[1]
    return 1


def input_step(graph: Graph, arrays: Mapping[str, np.ndarray], step: int) -> dict[str, np.ndarray]:
    """The inputs' values at input step ``step`` (0-based): a sequence's slice, a constant's
    value."""
    return {n.name: arrays[n.name][:, step] if n.op.sequence else arrays[n.name] for n in graph.inputs}


def step_samples(graph: Graph, values: np.ndarray) -> np.ndarray:
    """One value's batch ``values`` as samples for per-layer statistics: in a sequence graph
    ``(N, steps, *shape)`` flattened to ``(N * steps, *shape)`` (every input step of every
    example is one sample); otherwise unchanged."""
    return values.reshape(-1, *values.shape[2:]) if graph.sequence else values


def run(
    graph: Graph,
    inputs,
    batch_size: int = 256,
    keep: bool = False,
    progress: bool | None = False,
) -> dict[str, np.ndarray]:
    """Run ``graph`` on batched ``inputs``; returns ``{output name: array}`` (float32).

    With sequence inputs an output is its value at the last input step, or ``(N, steps,
    ...)`` at every step (``Output.sequence``). With ``keep=True`` every node's value is
    returned (for per-layer statistics; ``(N, steps, ...)`` in a sequence graph). Work is
    done ``batch_size`` examples at a time to bound memory; ``progress`` shows a bar
    (``None``: when stderr is a terminal).
    """
    from .progress import progress as progress_bar

    if graph.stage != ops.FLOAT:
        raise SnncError(
            f"graph {graph.name} is a {graph.stage} graph; the float interpreter runs float graphs "
            "(spiking graphs run with snnc.compiler.simulate)"
        )
    arrays = bind_inputs(graph, inputs)
    n = next(iter(arrays.values())).shape[0]
    wanted = [node.name for node in graph.nodes] if keep else [node.name for node in graph.outputs]
    chunks = {name: [] for name in wanted}
    starts = range(0, max(n, 1), batch_size)
    for start in progress_bar(starts, len(starts), f"running {graph.name}", progress):
        values = run_batch(graph, {k: v[start : start + batch_size] for k, v in arrays.items()})
        for name in wanted:
            chunks[name].append(values[name])
    results = {k: np.concatenate(v).astype(np.float32) for k, v in chunks.items()}
    if graph.sequence and not keep:
        results = {n.name: results[n.name] if n.op.sequence else results[n.name][:, -1] for n in graph.outputs}
    return results


def run_batch(graph: Graph, arrays: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Evaluate every node on one batch; returns all values (float64). In a graph with
    sequence inputs the graph runs once per input step, each delay giving its input's value
    from the step before, and every value is ``(B, steps, *shape)``."""
    if not graph.sequence:
        return run_step(graph, arrays, {})
    per_step, delayed = [], {}
    for step in range(sequence_steps(graph, arrays)):
        values = run_step(graph, input_step(graph, arrays, step), delayed)
        delayed = {d.name: values[d.inputs[0]] for d in graph.delays}
        per_step.append(values)
    return {name: np.stack([values[name] for values in per_step], axis=1) for name in per_step[0]}


def run_step(graph: Graph, arrays: Mapping[str, np.ndarray], delayed: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Evaluate every node once: ``arrays`` are this step's inputs, ``delayed[d]`` the value
    the delay ``d`` gives (its ``init`` where absent: the first step)."""
    values: dict[str, np.ndarray] = {k: np.asarray(v, dtype=np.float64) for k, v in arrays.items()}
    batch = next(iter(values.values())).shape[0]
    for node in graph.nodes:
        if isinstance(node.op, ops.Input):
            continue
        if isinstance(node.op, ops.Delay):
            values[node.name] = delayed.get(node.name, np.full((batch, *node.type.shape), node.op.init))
            continue
        evaluator = EVALUATORS.get(type(node.op))
        if evaluator is None:
            raise SnncError(f"%{node.name}: the interpreter has no evaluator for op {node.op.NAME}")
        values[node.name] = evaluator(node, [values[i] for i in node.inputs])
    return values
