"""Build the IR graph of a checked ONNX model: inputs (the first axis is the batch), every
node that reaches an output (folded if its inputs are constants, else converted), outputs.
Before converting, every op is checked, so one error lists all the unsupported ones."""

from __future__ import annotations

from pathlib import Path

from snnc.compiler.errors import UnsupportedError, VerificationError
from snnc.compiler.graph import Graph, GraphBuilder, sanitize_name
from snnc.compiler.types import default_layout

from .context import ModelContext, NodeCall
from .converters import CONVERTERS
from .files import initializer_arrays
from .fold import SHAPE_OPS, FoldError, SequenceShape, fold_node, is_foldable
from .patterns import FUSED_CONVERTERS, FUSED_DOMAIN, QCFS_CHAIN, fuse_qcfs_chains
from .recurrent import SEQUENCE_CONVERTERS, TimeTensor, add_sequence_input, convert_sequence_node, is_recurrent, reads_time
from .recurrent import output as sequence_output
from .structure import node_label

#: ops folded at import whatever their inputs (besides any op whose inputs are constants)
FOLDED_OPS = ("Constant", *SHAPE_OPS)
#: every op snnc reads, for messages
SUPPORTED_OPS = tuple(sorted({*CONVERTERS, *SEQUENCE_CONVERTERS, *FOLDED_OPS}))
#: ops that run a subgraph in a loop: how tf2onnx writes Keras's recurrent layers
LOOP_OPS = ("Loop", "Scan")
#: how many node names an unsupported-op message lists per op
NAMES_SHOWN = 5
#: how a node is imported: computed from constants (done first, so converters see every
#: constant, e.g. a bias a later Constant node holds), computed from shapes, or converted
CONSTANT, SHAPE, CONVERTED = "constant", "shape", "converted"


def convert_model(model, opset: int, path: Path) -> Graph:
    """The verified float graph of a checked, shape-inferred ONNX ``model``."""
    graph = model.graph
    if graph.sparse_initializer:
        raise UnsupportedError(
            f"{path}: sparse initializers ({graph.sparse_initializer[0].values.name!r}) are not supported"
        )
    initializers = initializer_arrays(graph, path)
    floor_reasons = fuse_qcfs_chains(model, initializers, opset)
    nodes = _live_nodes(graph)
    builder = GraphBuilder(graph.name or path.stem)
    ctx = ModelContext(
        path, opset, builder, dict(initializers), _readers(nodes), frozenset(o.name for o in graph.output)
    )
    _add_inputs(ctx, [v for v in graph.input if v.name not in initializers], is_recurrent(nodes))
    plan = _plan(nodes, set(initializers), path, floor_reasons)
    shapes = _inferred_shapes(model)
    for index, node, how in sorted(plan, key=lambda step: step[2] != CONSTANT):
        if all(name in ctx.values for name in node.output if name):
            continue  # computed along with an earlier node (a MatMul's bias Add)
        call = NodeCall(ctx, node, index)
        if how != CONVERTED:
            outputs = _fold(call)
        else:
            outputs = convert_sequence_node(call) if reads_time(call) else _convert(call, shapes)
        ctx.values.update({name: value for name, value in zip(node.output, outputs) if name})
    for output in graph.output:
        value = ctx.values[output.name]
        if isinstance(value, TimeTensor):
            sequence_output(ctx, output.name, value)
            continue
        if not isinstance(value, str):
            raise UnsupportedError(
                f"{path}: graph output {output.name!r} is a constant; snnc needs outputs computed from the inputs"
            )
        builder.output(value, name=output.name, source_layout=builder.type_of(value).layout)
    try:
        return builder.build(meta=_source_meta(model, opset, path))
    except VerificationError as exc:  # e.g. a softmax that is not the last op
        raise UnsupportedError(f"{path}: {exc}") from None


# ----------------------------------------------------------------------------- planning


def _live_nodes(graph) -> list[tuple[int, object]]:
    """``(index, node)`` of the nodes some graph output depends on, in graph order (dead
    nodes, such as an unused Dropout mask's consumers, are not converted)."""
    producer = {name: i for i, node in enumerate(graph.node) for name in node.output if name}
    wanted = [o.name for o in graph.output]
    live = set()
    while wanted:
        name = wanted.pop()
        index = producer.get(name)
        if index is not None and index not in live:
            live.add(index)
            wanted.extend(n for n in graph.node[index].input if n)
    return [(i, graph.node[i]) for i in sorted(live)]


def _plan(nodes, initializers: set[str], path: Path, floor_reasons: dict[str, str]) -> list[tuple[int, object, str]]:
    """``(index, node, how)`` for each node, ``how`` being :data:`CONSTANT` (folded from
    constants alone), :data:`SHAPE` (folded from shapes of computed tensors) or
    :data:`CONVERTED`; raises one UnsupportedError naming every node whose op snnc cannot
    convert (and, for a Floor, why it is not part of a QCFS chain: ``floor_reasons``)."""
    plan, unsupported = [], {}
    constants, folded = set(initializers), set(initializers)
    for index, node in nodes:
        if is_foldable(node, folded):
            pure = node.op_type not in SHAPE_OPS and all(name in constants for name in node.input if name)
            how = CONSTANT if pure else SHAPE
            folded.update(node.output)
            constants.update(node.output if pure else ())
        else:
            how = CONVERTED
            if node.domain == FUSED_DOMAIN:
                pass  # made by .patterns
            elif node.domain not in ("", "ai.onnx") or node.op_type not in {*CONVERTERS, *SEQUENCE_CONVERTERS}:
                op = f"{node.domain}.{node.op_type}" if node.domain not in ("", "ai.onnx") else node.op_type
                unsupported.setdefault(op, []).append(node_label(node, index))
        plan.append((index, node, how))
    if unsupported:
        floor = next(
            (f"{node_label(node, i)}: {floor_reasons[node.output[0]]}" for i, node in nodes if node.output[0] in floor_reasons),
            None,
        )
        raise UnsupportedError(f"{path}: {_unsupported_message(unsupported, floor)}")
    return plan


def _unsupported_message(unsupported: dict[str, list[str]], floor_reason: str | None = None) -> str:
    """One line naming every unsupported op's nodes; ``floor_reason`` says why a Floor node
    is not part of a QCFS chain (:mod:`.patterns`)."""
    count = sum(map(len, unsupported.values()))
    parts = []
    for op, labels in unsupported.items():
        more = f" and {len(labels) - NAMES_SHOWN} more" if len(labels) > NAMES_SHOWN else ""
        parts.append(f"{op} (nodes {', '.join(labels[:NAMES_SHOWN])}{more})")
    loops = [op for op in LOOP_OPS if op in unsupported]
    hint = (
        f". snnc does not convert {' or '.join(loops)} (how tf2onnx writes Keras recurrent layers): "
        "give it a model whose recurrence is an ONNX RNN node (PyTorch's nn.RNN exports one), or the Keras file"
        if loops
        else ""
    )
    if floor_reason:
        hint += f". snnc converts Floor only inside a QCFS activation chain ({QCFS_CHAIN}, one scalar λ); {floor_reason}"
    return (
        f"{count} node{'s' if count > 1 else ''} use{'' if count > 1 else 's'} ops snnc does not support: "
        f"{'; '.join(parts)}{hint}. Supported ops: {', '.join(SUPPORTED_OPS)} "
        "(and any op whose inputs are all constants, which is computed at import)"
    )


def _readers(nodes) -> dict[str, list]:
    readers: dict[str, list] = {}
    for _, node in nodes:
        for name in dict.fromkeys(n for n in node.input if n):
            readers.setdefault(name, []).append(node)
    return readers


# ----------------------------------------------------------------------------- inputs


def _add_inputs(ctx: ModelContext, inputs, recurrent: bool) -> None:
    """IR inputs for the graph inputs: the first axis is the batch (dynamic, or a fixed 1
    as many exports have); every other axis needs a fixed size. ONNX is channels first, as
    the IR, except for inputs that the model itself moves to channels first (see
    :func:`_add_channels_last_input`). A recurrent model's inputs are sequences
    (:func:`.recurrent.add_sequence_input`)."""
    if recurrent:
        for value in inputs:
            add_sequence_input(ctx, value, ctx.path)
        return
    dims = {v.name: _dims(ctx.path, v) for v in inputs}
    ctx.batch_is_one = bool(dims) and all(d[0] == 1 for d in dims.values())
    for name, shape in dims.items():
        per_example = shape[1:]
        to_channels_first = _channels_first_transposes(ctx, name, len(shape))
        if to_channels_first:
            _add_channels_last_input(ctx, name, per_example, to_channels_first)
        else:
            layout = default_layout(len(per_example))
            ctx.values[name] = ctx.builder.input(sanitize_name(name), per_example, source_layout=layout)


def _channels_first_transposes(ctx: ModelContext, name: str, rank: int) -> list:
    """The Transpose nodes reading graph input ``name`` that move its last axis to axis 1
    (``perm=[0,3,1,2]`` for an image): how tf2onnx and keras2onnx open a channels-last
    model before its convolutions and pooling."""
    from onnx.helper import get_attribute_value

    if rank < 3:
        return []
    channels_first = [0, rank - 1, *range(1, rank - 1)]
    return [
        node
        for node in ctx.readers.get(name, [])
        if node.op_type == "Transpose"
        and node.domain in ("", "ai.onnx")
        and [list(get_attribute_value(a)) for a in node.attribute if a.name == "perm"] == [channels_first]
    ]


def _add_channels_last_input(ctx: ModelContext, name: str, per_example: list, transposes: list) -> None:
    """A channels-last input (``[N,H,W,C]``) becomes an IR input in the IR's channels-first
    layout whose ``source_layout`` is the model's own (``HWC``), so data is transposed at
    the border; the Transposes to channels first read it as it is (nothing to convert), and
    any other reader gets it transposed back to the model's layout."""
    ir_shape = (per_example[-1], *per_example[:-1])
    layout = default_layout(len(ir_shape))
    value = ctx.builder.input(sanitize_name(name), ir_shape, source_layout=layout[1:] + layout[0])
    for node in transposes:
        ctx.values[node.output[0]] = value
    if name in ctx.graph_outputs or any(node not in transposes for node in ctx.readers.get(name, [])):
        back = (*range(1, len(ir_shape)), 0)
        ctx.values[name] = ctx.transpose(value, back, f"{sanitize_name(name)}_channels_last")


def _dims(path: Path, value) -> list:
    """The dimensions of a graph input (int, or None for a dynamic batch), checked."""
    from onnx import TensorProto

    tensor = value.type.tensor_type
    if not value.type.HasField("tensor_type") or not tensor.HasField("shape"):
        raise UnsupportedError(f"{path}: input {value.name!r} declares no tensor shape; snnc needs one")
    if tensor.elem_type != TensorProto.FLOAT:
        kind = TensorProto.DataType.Name(tensor.elem_type).lower()
        raise UnsupportedError(f"{path}: input {value.name!r} holds {kind}; snnc takes float32 inputs")
    dims = [d.dim_value if d.HasField("dim_value") else None for d in tensor.shape.dim]
    shown = (
        "["
        + ",".join(str(d.dim_value) if d.HasField("dim_value") else d.dim_param or "?" for d in tensor.shape.dim)
        + "]"
    )
    if len(dims) < 2:
        raise UnsupportedError(
            f"{path}: input {value.name!r} has shape {shown}; snnc needs a batch axis and at least one more"
        )
    if dims[0] not in (None, 1):
        raise UnsupportedError(
            f"{path}: input {value.name!r} has shape {shown}; the first axis is the batch and must be dynamic or 1"
        )
    if any(d is None or d < 1 for d in dims[1:]):
        raise UnsupportedError(
            f"{path}: input {value.name!r} has shape {shown}; snnc needs a fixed size for every axis but the first (batch)"
        )
    return dims


# ----------------------------------------------------------------------------- nodes


def _fold(call: NodeCall) -> list:
    inputs = [call.input(i) for i in range(len(call.node.input))]
    inputs = [_shape_of(call, x) for x in inputs]  # computed: only its shape is read
    try:
        return fold_node(call.node, inputs, call.opset)
    except FoldError as exc:
        raise call.unsupported(f"cannot compute this constant at import ({exc})") from None


def _shape_of(call: NodeCall, x):
    """What folding sees of input ``x``: the shape of a computed tensor, else ``x``."""
    if isinstance(x, str):
        return call.type(x)
    if isinstance(x, TimeTensor):
        return SequenceShape(call.shape(x.value), x.batch, x.time)
    return x


def _convert(call: NodeCall, shapes: dict) -> list[str]:
    converters = FUSED_CONVERTERS if call.node.domain == FUSED_DOMAIN else CONVERTERS
    if call.op_type not in converters:  # converted only where it reads a sequence
        raise call.unsupported(
            f"reads a tensor that is not a sequence; snnc converts {call.op_type} only on the outputs of an RNN"
        )
    value = converters[call.op_type](call)
    for k, name in enumerate(call.node.output[1:], start=1):
        if name and (call.readers(k) or name in call.model.graph_outputs):
            raise call.unsupported(
                f"its output {k} ({name!r}) is used; snnc converts only the first output of {call.op_type}"
            )
    _check_shape(call, value, shapes.get(call.node.output[0]))
    return [value]


def _inferred_shapes(model) -> dict[str, list]:
    """Value name -> dims ONNX shape inference found (None where unknown)."""
    shapes = {}
    for v in [*model.graph.value_info, *model.graph.output]:
        if v.type.HasField("tensor_type") and v.type.tensor_type.HasField("shape"):
            shapes[v.name] = [d.dim_value if d.HasField("dim_value") else None for d in v.type.tensor_type.shape.dim]
    return shapes


def _check_shape(call: NodeCall, value: str, onnx_dims: list | None) -> None:
    """The converted value's shape must be what ONNX infers for the node's output (without
    the batch axis): a cheap guard against a conversion that changed the meaning."""
    if onnx_dims is None:
        return
    ir_shape = call.shape(value)
    known = all(d is not None for d in onnx_dims[1:])
    if known and (len(onnx_dims) != len(ir_shape) + 1 or tuple(onnx_dims[1:]) != ir_shape):
        shown = ["N" if d is None else d for d in onnx_dims]
        raise call.unsupported(
            f"ONNX infers an output of shape {shown}, snnc converts it to [N,{','.join(map(str, ir_shape))}]"
        )


def _source_meta(model, opset: int, path: Path) -> dict:
    info = {"frontend": "onnx", "file": path.name, "opset": opset}
    if model.producer_name:
        info["producer"] = f"{model.producer_name} {model.producer_version}".strip()
    return {"source": info}
