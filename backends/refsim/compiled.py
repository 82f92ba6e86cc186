"""The compiled engine: integer-mode graphs as :mod:`.kernel`'s flat tables, one kernel call per
batch, then the host layers after the chip evaluated over all steps at once.

It runs the graphs ``lower_loihi`` makes: host neurons driven by values that do not change over
time, chip synapses and compartments, and after the chip only stateless host ops and
readouts. :func:`program` says why any other graph does not fit; the NumPy engine
(:func:`.engine.simulate_batch`) then runs it. Both give the same spikes, voltages, currents and
wrap-around counts (tested on every network of the test suite).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from snnc.compiler import ops
from snnc.compiler.graph import Node
from snnc.compiler import neurons
from snnc.compiler.simulate import check_timesteps, evaluator

from . import kernel as k
from .compartments import OVERFLOW_KINDS, Overflow
from .plan import BatchResult, static_values

#: a batch's per-step host values are evaluated this many numbers at a time
TAIL_CHUNK = 1 << 22


@dataclass
class Population:
    node: Node
    kind: int
    state_at: int  # where its state starts in the kernel's arrays of its kind
    perm: np.ndarray  # kernel order -> the IR's flat order


@dataclass
class Program:
    """A graph as the kernel's tables (batch-independent)."""

    populations: list[Population]
    tables: dict[str, np.ndarray]
    n_raster: int
    recorded: list[str]  # populations host ops read: their rasters are always kept
    tail: list[Node]


def kernel_order(shape: tuple) -> np.ndarray:
    """Channels last for a ``(C, H, W)`` population, else the IR's order: ``perm[i]`` is the IR
    index of the kernel's neuron ``i``."""
    index = np.arange(math.prod(shape))
    if len(shape) == 3:
        return index.reshape(shape).transpose(1, 2, 0).ravel()
    return index


def program(plan) -> Program | str:
    """The kernel's tables for ``plan`` (an integer-mode :class:`.plan.Plan`), or the reason
    the graph does not fit the compiled engine."""
    graph = plan.graph
    if plan.mode != "int":
        return "float mode runs on the NumPy engine"
    if graph.sequence or graph.delays:
        return "sequence inputs and delays (recurrences) run on the NumPy engine"
    populations, tail, names = [], [], {}
    sizes = {k.HOST_RASTER: 0, k.CHIP: 0}
    for node in plan.dynamic:
        op = node.op
        if isinstance(op, ops.LoihiSynapses):
            continue
        if isinstance(op, ops.NEURON_OPS):
            if isinstance(op, ops.LoihiCompartments):
                if not all(isinstance(graph.node(i).op, ops.LoihiSynapses) for i in node.inputs):
                    return f"%{node.name}: compartments fed by something other than loihi_synapses"
                kind = k.CHIP
            elif any(i not in plan.static for i in node.inputs):
                return f"%{node.name}: a host neuron whose input changes over time"
            else:
                kind = k.HOST_RASTER
            names[node.name] = len(populations)
            populations.append(Population(node, kind, sizes[kind], kernel_order(node.type.shape)))
            sizes[kind] += node.type.size
        elif isinstance(op, ops.STATEFUL_OPS) and not isinstance(op, ops.Readout):
            return f"%{node.name}: {op.name} after the chip"
        else:
            tail.append(node)
    # one row per input of each population: a synapse listed twice adds its current twice
    synapses = [graph.node(i) for p in populations if p.kind == k.CHIP for i in p.node.inputs]
    tables = _tables(plan, populations, names, synapses, sizes)
    if isinstance(tables, str):
        return tables
    read_by_host = {i for n in tail for i in n.inputs if i in names}
    read_by_host |= {n.name for n in graph.outputs if n.name in names}
    recorded = [p.node.name for p in populations if p.node.name in read_by_host]
    return Program(populations, tables, sizes[k.HOST_RASTER], recorded, tail)


def _tables(plan, populations, names, synapses, sizes) -> dict[str, np.ndarray] | str:
    pops = np.zeros((len(populations), 5), np.int64)
    chip_table = np.zeros((len(populations), 3), np.int64)
    comp = np.zeros((4, sizes[k.CHIP]), np.int32)
    count_at = 0
    for i, p in enumerate(populations):
        op, n = p.node.op, p.node.type.size
        pops[i, [k.KIND, k.SIZE, k.COUNT_AT, k.STATE_AT]] = p.kind, n, count_at, p.state_at
        count_at += n
        if p.kind == k.CHIP:
            chip_table[i] = 4095 - op.decay_u, 4096 - op.decay_v, op.refract_delay
            for row, key in ((k.VTH, "vth"), (k.BIAS, "bias"), (k.VMIN, "vmin"), (k.VMAX, "vmax")):
                comp[row, p.state_at : p.state_at + n] = p.node.params[key][p.perm]
    syns = np.zeros((len(synapses), 6), np.int64)
    geometry = np.zeros((len(synapses), 12), np.int64)
    weights, patterns, pattern_ends, reaches = [], [], [], []
    weights_at = patterns_at = reach_at = 0
    bound = np.zeros(len(populations))
    for s, node in enumerate(synapses):
        users = plan.graph.users(node.name)
        if len(users) != 1 or not isinstance(users[0].op, ops.LoihiCompartments):
            return f"%{node.name}: synapses that feed anything but one loihi_compartments"
        if node.inputs[0] not in names:
            return f"%{node.name}: synapses whose input is not a neuron population"
        src, dst = names[node.inputs[0]], names[users[0].name]
        if node.op.kind == "conv" and len(populations[src].node.type.shape) != 3:
            return f"%{node.name}: conv synapses from a population that is not (C, H, W)"
        syns[s] = (k.DENSE if node.op.kind == "dense" else k.CONV), src, dst, weights_at, patterns_at, reach_at
        w = node.params["weight"]
        if node.op.kind == "dense":
            flat = w.T[np.ix_(populations[src].perm, populations[dst].perm)]  # (n_src, n_dst)
            bound[dst] += np.abs(w, dtype=np.int64).sum(axis=1).max(initial=0)
        else:
            flat, geometry[s], pattern = _conv_tables(node, populations[src].node.type.shape)
            patterns.append(pattern)
            pattern_ends.append(_pattern_ends(pattern.reshape(node.type.shape[1:])))
            reaches.append(conv_reach(geometry[s], pattern.reshape(node.type.shape[1:])))
            reach_at += reaches[-1].shape[0]
            patterns_at += pattern.size
            bound[dst] += np.abs(w, dtype=np.int64).reshape(*w.shape[:2], -1).sum(axis=2).max(initial=0)
        weights.append(np.ascontiguousarray(flat, dtype=np.int32).ravel())
        weights_at += weights[-1].size
    if bound.max(initial=0) >= 2**31:
        return "a compartment's input can exceed int32"
    return {
        "pops": pops,
        "chip_table": chip_table,
        "comp": comp,
        "syns": syns,
        "geometry": geometry,
        "weights": np.concatenate(weights) if weights else np.zeros(0, np.int32),
        "patterns": np.concatenate(patterns) if patterns else np.zeros(0, np.int64),
        "pattern_ends": np.concatenate(pattern_ends) if pattern_ends else np.zeros(0, np.int64),
        "reach": np.concatenate(reaches) if reaches else np.zeros((0, 9), np.int64),
    }


def _conv_tables(node: Node, src_shape: tuple):
    """A conv synapse's kernels as ``(patterns, C, kh, kw, F)``, its geometry row, and per
    output position the pattern it takes. NengoLoihi discretizes each core block on its own, so
    the filters of one position may take the kernels of different blocks; a pattern is one
    such combination (``K[block[f, y, x], f]`` for every filter ``f``)."""
    op, w = node.op, node.params["weight"]
    f_out, h_out, w_out = node.type.shape
    geometry = (*src_shape, f_out, h_out, w_out, *op.kernel, *op.stride, op.pads[0], op.pads[1])
    per_position = node.params["block"].reshape(f_out, h_out * w_out).T
    combinations, pattern = np.unique(per_position, axis=0, return_inverse=True)
    filters = np.arange(f_out)
    kernels = np.stack([w[blocks, filters] for blocks in combinations])  # patterns, F, C, kh, kw
    return conv_rows(kernels.transpose(0, 2, 3, 4, 1), op.stride), geometry, pattern.astype(np.int64).ravel()


def conv_rows(kernels: np.ndarray, stride) -> np.ndarray:
    """Kernels ``(P, C, kh, kw, F)`` as :func:`.kernel.add_conv` reads them,
    ``(P, C, sh, sw, ceil(kh / sh), ceil(kw / sw), F)``: for each phase ``(u mod sh, v mod sw)``,
    that phase's rows and columns from the last to the first, the order in which successive
    output rows and columns meet them."""
    (sh, sw), (patterns, c, kh, kw, f) = stride, kernels.shape
    out = np.zeros((patterns, c, sh, sw, -(-kh // sh), -(-kw // sw), f), kernels.dtype)
    for phase_y, phase_x in itertools.product(range(sh), range(sw)):
        rows, columns = list(range(phase_y, kh, sh))[::-1], list(range(phase_x, kw, sw))[::-1]
        out[:, :, phase_y, phase_x, : len(rows), : len(columns)] = kernels[:, :, rows][:, :, :, columns]
    return out


def conv_reach(g, pattern: np.ndarray) -> np.ndarray:
    """Per source position ``(y, x)`` of a conv synapse (geometry row ``g``): the first and
    last output rows and columns its spikes reach; its row and column phases; the indices, in
    :func:`conv_rows`' order, of the taps it meets at the first output row and column; and
    whether all the outputs it reaches take one pattern (``pattern``: ``(Ho, Wo)``)."""
    h_in, w_in = g[k.H_IN], g[k.W_IN]
    ty = np.arange(h_in)[:, None] + g[k.PAD_TOP] + np.zeros((1, w_in), np.int64)
    tx = np.arange(w_in)[None, :] + g[k.PAD_LEFT] + np.zeros((h_in, 1), np.int64)
    oy_first, oy_last, phase_y, my = _reach_1d(ty, g[k.KH], g[k.SH], g[k.H_OUT])
    ox_first, ox_last, phase_x, mx = _reach_1d(tx, g[k.KW], g[k.SW], g[k.W_OUT])
    uniform = np.zeros((h_in, w_in), np.int64)
    for y, x in itertools.product(range(h_in), range(w_in)):
        window = pattern[oy_first[y, x] : oy_last[y, x] + 1, ox_first[y, x] : ox_last[y, x] + 1]
        uniform[y, x] = window.size > 0 and bool((window == window.flat[0]).all())
    columns = (oy_first, oy_last, ox_first, ox_last, phase_y, phase_x, my, mx, uniform)
    return np.stack([c.ravel() for c in columns], axis=1).astype(np.int64)


def _reach_1d(t, kernel: int, stride: int, size: int):
    """Along one axis, for padded input coordinates ``t``: the first and last outputs
    ``o`` with ``o * stride + tap = t`` for a tap in ``0..kernel-1``, the phase ``t mod
    stride`` and the index of the first output's tap among its phase's taps, last to first."""
    first, last = np.maximum(0, -((kernel - 1 - t) // stride)), np.minimum(t // stride, size - 1)
    phase = t % stride
    taps = (kernel - phase + stride - 1) // stride
    return first, last, phase, taps - 1 - (t - first * stride - phase) // stride


def _pattern_ends(pattern: np.ndarray) -> np.ndarray:
    """For each output ``(oy, ox)``, the last column ``>= ox`` up to which row ``oy`` keeps the
    same pattern."""
    ends = np.empty_like(pattern)
    ends[:, -1] = pattern.shape[1] - 1
    for ox in range(pattern.shape[1] - 2, -1, -1):
        ends[:, ox] = np.where(pattern[:, ox] == pattern[:, ox + 1], ends[:, ox + 1], ox)
    return ends.ravel()


def to_ir_order(values: np.ndarray, perm: np.ndarray) -> np.ndarray:
    """Kernel order (last axis) back to the IR's."""
    out = np.empty_like(values)
    out[..., perm] = values
    return out


def simulate_batch(prog: Program, plan, arrays: dict[str, np.ndarray], timesteps, record="counts", rasters=None):
    """:func:`.engine.simulate_batch` on the compiled kernel (same arguments and result)."""
    ts = check_timesteps(timesteps)
    steps = ts[-1]
    values = static_values(plan, arrays)
    batch = next(iter(arrays.values())).shape[0]
    kept = set(prog.recorded) | ({p.node.name for p in prog.populations if p.kind == k.CHIP} if record == "spikes" else set())
    pops = prog.tables["pops"].copy()
    record_at = 0
    for i, p in enumerate(prog.populations):
        pops[i, k.RECORD_AT] = record_at if p.node.name in kept else -1
        record_at += p.node.type.size if p.node.name in kept else 0
    counts = np.zeros((batch, sum(p.node.type.size for p in prog.populations)), np.int32)
    raster = np.zeros((batch, steps, record_at), np.uint8)
    n_chip = prog.tables["comp"].shape[1]
    u_out, v_out = np.zeros((batch, n_chip), np.int32), np.zeros((batch, n_chip), np.int32)
    overflow = np.zeros((len(prog.populations), len(OVERFLOW_KINDS)), np.int64)
    host_raster = host_rasters(prog, values, batch, steps)
    t = prog.tables
    k.run(
        steps, pops, t["chip_table"], t["comp"], t["syns"], t["geometry"], t["weights"],
        t["patterns"], t["pattern_ends"], t["reach"], host_raster, counts, raster, u_out, v_out, overflow,
    )  # fmt: skip
    rasters = ({} if rasters is None else rasters) if record == "spikes" else {}
    result = BatchResult({}, {}, rasters, {}, {}, {}, {})
    spikes_of = {}
    for i, p in enumerate(prog.populations):
        name, n = p.node.name, p.node.type.size
        at, count_at = pops[i, k.STATE_AT], pops[i, k.COUNT_AT]
        count = to_ir_order(counts[:, count_at : count_at + n], p.perm)
        if pops[i, k.RECORD_AT] >= 0:
            r = pops[i, k.RECORD_AT]
            spikes_of[name] = to_ir_order(raster[:, :, r : r + n], p.perm)
        if p.kind != k.CHIP:
            result.host_counts[name] = count.reshape(batch, *p.node.type.shape)
            continue
        result.counts[name] = count
        result.voltages[name] = to_ir_order(v_out[:, at : at + n], p.perm)
        result.currents[name] = to_ir_order(u_out[:, at : at + n], p.perm)
        result.overflow[name] = Overflow(dict(zip(OVERFLOW_KINDS, map(int, overflow[i]))))
        if record == "spikes":
            if name in rasters:  # the caller's view of the whole run's rasters
                rasters[name][...] = spikes_of[name]
            else:
                rasters[name] = spikes_of[name].astype(bool)
    result.outputs = _tail_outputs(prog, plan, values, spikes_of, batch, ts)
    return result


def host_rasters(prog: Program, values: dict, batch: int, steps: int) -> np.ndarray:
    """The host neurons' spikes ``(T, B, n_raster)``, in kernel order. Host neurons are fed
    constants, so their spikes do not depend on the chip: each population steps with its
    neuron type's NumPy step (:meth:`snnc.compiler.neurons.Neuron.step`, as the interpreter)."""
    host_raster = np.zeros((steps if prog.n_raster else 1, batch, prog.n_raster), np.uint8)
    for p in (p for p in prog.populations if p.kind == k.HOST_RASTER):
        op, n = p.node.op, p.node.type.size
        neuron = neurons.by_op(op)
        x = np.broadcast_to(values[p.node.inputs[0]], (batch, *p.node.type.shape)).reshape(batch, n)
        if not np.array_equal(p.perm, np.arange(n)):
            x = x[:, p.perm]  # elementwise neurons: stepping in kernel order gives the same spikes
        state = neuron.initial_state(op, x.shape)
        columns = host_raster[:, :, p.state_at : p.state_at + n]
        for t in range(steps):
            state, columns[t] = neuron.step(op, state, x)
    return host_raster


def _tail_outputs(prog: Program, plan, values: dict, spikes_of: dict, batch: int, ts: list[int]) -> dict:
    """The graph's outputs at each requested step from the host ops after the chip, evaluated
    for a chunk of steps at once (steps become part of the batch: ``(B * S, ...)``); a readout
    is the running mean, a cumulative sum in step order as its stepper adds."""
    graph, steps = plan.graph, ts[-1]
    widest = max([n.type.size for n in prog.tail] + [1])
    chunk = max(1, min(steps, TAIL_CHUNK // (batch * widest)))
    totals: dict[str, np.ndarray] = {}
    outputs: dict[int, dict[str, np.ndarray]] = {t: {} for t in ts}
    for t0 in range(0, steps, chunk):
        t1 = min(steps, t0 + chunk)
        s = t1 - t0
        now: dict[str, np.ndarray] = {}

        def value(name: str) -> np.ndarray:
            if name in now:
                return now[name]
            node = graph.node(name)
            if name in spikes_of:
                v = spikes_of[name][:, t0:t1] * float(node.op.amplitude)
            else:  # a constant: the same at every step
                v = np.broadcast_to(values[name][:, None], (batch, s, *node.type.shape))
            return v.reshape(batch * s, *node.type.shape)

        for node in prog.tail:
            xs = [value(i) for i in node.inputs]
            if isinstance(node.op, ops.Readout):
                x = xs[0].reshape(batch, s, -1)
                start = totals.get(node.name, np.zeros((batch, 1, x.shape[2])))
                running = np.cumsum(np.concatenate([start, x], axis=1), axis=1)[:, 1:]
                totals[node.name] = running[:, -1:]
                y = running / np.arange(t0 + 1, t1 + 1, dtype=np.float64)[None, :, None]
            else:
                y = evaluator(node)(node, xs)
            now[node.name] = np.asarray(y, dtype=np.float64).reshape(batch * s, *node.type.shape)
        for t in ts:
            if t0 < t <= t1:
                for out in graph.outputs:
                    outputs[t][out.name] = value(out.name).reshape(batch, s, *out.type.shape)[:, t - 1 - t0].astype(np.float32)
    return outputs
