"""refsim's compiled engine against its NumPy engine, result for result.

The NumPy engine (:func:`snnc.backends.refsim.engine.simulate_batch`, checked bit for bit
against NengoLoihi's emulator in ``test_refsim.py``) is the definition; the compiled engine
(:mod:`snnc.backends.refsim.compiled` and :mod:`~snnc.backends.refsim.kernel`: event-driven
synapses, conv weights in a row layout, channels-last populations, host layers after the chip
evaluated over all steps at once) must give the same spike rasters, spike counts, final
voltages and currents, wrap-around counts, host spike counts and outputs. Each test builds a
small integer-stage graph by hand (random integer weights, thresholds set from each
compartment's drive so that every population fires, but not at every step), runs both engines
and compares everything; then the engine choice itself: what ``"auto"`` picks, what
``"compiled"`` refuses and why.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from snnc.backends import refsim
from snnc.backends.refsim import compiled, engine
from snnc.compiler import ops
from snnc.compiler.neurons.if_ import RESETS
from snnc.compiler.errors import BuildError, DataError
from snnc.compiler.graph import GraphBuilder

VMAX = 2**23 - 1  # NengoLoihi's usual voltage ceiling
INT32_MAX = 2**31 - 1


# ----------------------------------------------------------------------------- graphs


def box_blocks(out_shape: tuple, parts: tuple[int, int, int]) -> tuple[np.ndarray, int]:
    """Core blocks that cut the output ``(F, H, W)`` into ``parts`` ranges of filters, rows
    and columns (as a BlockShape does); returns each compartment's block (CHW order) and the
    number of blocks."""
    index = [np.arange(n) * min(p, n) // n for n, p in zip(out_shape, parts)]
    f, y, x = np.meshgrid(*index, indexing="ij")
    pr, pc = min(parts[1], out_shape[1]), min(parts[2], out_shape[2])
    return ((f * pr + y) * pc + x).astype(np.int32).ravel(), math.prod(min(p, n) for n, p in zip(out_shape, parts))


class Net:
    """An integer-stage graph built layer by layer, with random integer weights (``<< 6``, as
    the chip's mantissas are) drawn from ``rng``."""

    def __init__(self, rng: np.random.Generator, name: str = "net"):
        self.rng = rng
        self.b = GraphBuilder(name, stage=ops.INTEGER)
        self.drive: dict[str, np.ndarray] = {}  # per synapse: each output's sum of weights

    def shape(self, value: str) -> tuple:
        return self.b.type_of(value).shape

    def input(self, shape: tuple, name: str = "x") -> str:
        return self.b.input(name, shape)

    def neuron(self, op: ops.Op, x: str, name: str = "inp") -> str:
        return self.b.add(op, [x], name=name)

    def dense(self, src: str, units: int, blocks: int = 1, low=-40, high=100, name=None, weight=None) -> str:
        n_in = math.prod(self.shape(src))
        if weight is None:
            weight = self.rng.integers(low, high, (units, n_in)) << 6
        weight = np.asarray(weight, np.int32)
        block = (np.arange(units) * blocks // units).astype(np.int32)
        syn = self.b.add(
            ops.LoihiSynapses("dense", "int", units=units, blocks=blocks),
            [src],
            params={"weight": weight, "block": block, "weight_exp": np.zeros(blocks, np.int32)},
            name=name or "syn",
        )
        self.drive[syn] = weight.astype(np.int64).sum(axis=1)
        return syn

    def conv(
        self,
        src: str,
        filters: int,
        kernel: tuple[int, int],
        stride: tuple[int, int] = (1, 1),
        pads: tuple[int, int, int, int] = (0, 0, 0, 0),
        parts: tuple[int, int, int] = (1, 1, 1),
        scattered: bool = False,
        pooled: bool = False,
        low: int = -40,
        high: int = 100,
        name=None,
    ) -> str:
        """Conv synapses with one kernel per core block: ``parts`` cuts the output into boxes
        of filters x rows x columns; ``scattered`` instead gives every compartment a random one
        of that many blocks; ``pooled``: kernels constant on ``stride`` tiles (an average pool
        folded into the conv)."""
        c = self.shape(src)[0]
        probe = ops.LoihiSynapses("conv", "int", filters=filters, kernel=kernel, stride=stride, pads=pads)
        out_shape = probe.out_shape(self.b.type_of(src))
        block, blocks = box_blocks(out_shape, parts)
        if scattered:
            blocks = math.prod(parts)
            block = self.rng.integers(0, blocks, math.prod(out_shape)).astype(np.int32)
        if pooled:
            sh, sw = stride
            small = self.rng.integers(low, high, (blocks, filters, c, kernel[0] // sh, kernel[1] // sw))
            weight = np.kron(small, np.ones((sh, sw), np.int64)) << 6
        else:
            weight = self.rng.integers(low, high, (blocks, filters, c, *kernel)) << 6
        weight = weight.astype(np.int32)
        syn = self.b.add(
            ops.LoihiSynapses("conv", "int", filters=filters, kernel=kernel, stride=stride, pads=pads, blocks=blocks),
            [src],
            params={"weight": weight, "block": block, "weight_exp": np.zeros(blocks, np.int32)},
            name=name or "syn",
        )
        per_kernel = weight.astype(np.int64).reshape(blocks, filters, -1).sum(axis=2)
        filter_of = np.repeat(np.arange(filters), math.prod(out_shape[1:]))
        self.drive[syn] = per_kernel[block, filter_of]
        return syn

    def pop(
        self,
        syns: list[str],
        name: str = "pop",
        vth=None,
        bias=0,
        vmin=0,
        vmax=VMAX,
        decay_u: int = 4094,
        decay_v: int = 0,
        refract_delay: int = 1,
        amplitude: float = 1.0,
        rate: float = 0.3,
    ) -> str:
        """Compartments summing ``syns``; by default each one's threshold is ``rate`` times its
        drive (the sum of its weights), at least 1000, which keeps the populations firing at
        moderate rates."""
        n = math.prod(self.shape(syns[0]))
        if vth is None:
            drive = sum(self.drive[s] for s in syns)
            vth = np.maximum(np.abs(drive) * rate, 1000)

        def full(value):
            return np.broadcast_to(np.asarray(value, np.int64), (n,)).astype(np.int32)

        op = ops.LoihiCompartments(
            "lif" if decay_v else "relu",
            "int",
            decay_u=decay_u,
            decay_v=decay_v,
            refract_delay=refract_delay,
            amplitude=amplitude,
        )
        params = {"vth": full(vth), "bias": full(bias), "vmin": full(vmin), "vmax": full(vmax)}
        return self.b.add(op, syns, params=params, name=name)

    def readout(self, src: str, units: int = 3, name: str = "output") -> str:
        """A host dense layer of the (flattened) population's spikes, time-averaged: an output."""
        flat = self.b.add(ops.Reshape((math.prod(self.shape(src)),)), [src], name=f"{src}_flat")
        n = self.shape(flat)[0]
        params = {"weight": self.rng.normal(size=(units, n)), "bias": self.rng.normal(size=units)}
        dense = self.b.add(ops.Dense(units), [flat], params=params, name=f"{src}_dense")
        return self.b.output(self.b.add(ops.Readout(), [dense], name=f"{src}_readout"), name=name)

    def output(self, value: str, name: str) -> str:
        return self.b.output(value, name=name)

    def build(self):
        return self.b.build()


def if_input(net: Net, shape: tuple, gain: float = 0.6, **kw) -> str:
    """The host input layer: IF neurons on the input (rate ``gain * x`` for x in [0, 1])."""
    return net.neuron(ops.IfNeuron(gain=gain, **kw), net.input(shape))


# ----------------------------------------------------------------------------- comparison


def simulate(graph, xs, ts, engine_name: str, overflow: bool | None = False, **kw) -> refsim.RefsimResult:
    """``refsim.simulate`` with rasters; requires a wrap-around warning exactly when
    ``overflow`` (None: either)."""
    if overflow:
        with pytest.warns(refsim.RefsimOverflowWarning):
            return refsim.simulate(graph, xs, ts, record="spikes", engine=engine_name, **kw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore" if overflow is None else "error", refsim.RefsimOverflowWarning)
        return refsim.simulate(graph, xs, ts, record="spikes", engine=engine_name, **kw)


def assert_same(ours: refsim.RefsimResult, ref: refsim.RefsimResult) -> None:
    """Every field of two integer-mode results equal (outputs: to float rounding)."""
    assert ours.mode == ref.mode == "int"
    for field in ("spikes", "spike_counts", "voltages", "currents"):
        a, b = getattr(ours, field), getattr(ref, field)
        assert a.keys() == b.keys() and a, field
        for name in b:
            assert a[name].dtype == b[name].dtype and a[name].shape == b[name].shape, (field, name)
            if not np.array_equal(a[name], b[name]):
                where = np.argwhere(a[name] != b[name])
                raise AssertionError(f"{field}[{name}]: {len(where)} differences, the first at {tuple(where[0])}")
    assert ours.overflow == ref.overflow
    assert ours.activity.keys() == ref.activity.keys()
    for name, act in ref.activity.items():
        assert ours.activity[name].spikes == act.spikes, name
        assert ours.activity[name].to_dict() == act.to_dict(), name
    assert ours.outputs.keys() == ref.outputs.keys()
    for t, outs in ref.outputs.items():
        assert ours.outputs[t].keys() == outs.keys()
        for name, value in outs.items():
            assert ours.outputs[t][name].dtype == value.dtype and ours.outputs[t][name].shape == value.shape
            np.testing.assert_allclose(ours.outputs[t][name], value, rtol=1e-12, atol=0, err_msg=f"T={t} {name}")


def assert_lively(result: refsim.RefsimResult) -> None:
    """Every chip population spiked, and not at every step of every neuron: a comparison that
    means something. (Rasters and counts agree with each other too.)"""
    for name, raster in result.spikes.items():
        np.testing.assert_array_equal(raster.sum(axis=1), result.spike_counts[name])
        assert 0 < raster.sum() < raster.size, f"{name}: {raster.sum()} spikes of {raster.size}"


def engines_agree(graph, xs, ts, *, overflow: bool | None = False, lively: bool = True, **kw) -> refsim.RefsimResult:
    """The compiled engine's result (``engine="compiled"``: the graph must fit it; ``kw``
    passed to it, e.g. batches) equals the NumPy engine's (one batch)."""
    ref = simulate(graph, xs, ts, "numpy", overflow)
    ours = simulate(graph, xs, ts, "compiled", overflow, **kw)
    assert_same(ours, ref)
    if lively:
        assert_lively(ref)
    return ours


@pytest.fixture
def count_compiled(monkeypatch):
    """How many batches each engine ran: ``{"compiled": n, "numpy": n}``."""
    calls = {"compiled": 0, "numpy": 0}
    for module, key in ((compiled, "compiled"), (engine, "numpy")):
        original = module.simulate_batch

        def counting(*args, _original=original, _key=key, **kwargs):
            calls[_key] += 1
            return _original(*args, **kwargs)

        monkeypatch.setattr(module, "simulate_batch", counting)
    return calls


# ----------------------------------------------------------------------------- dense


def test_dense_chain_with_blocks_agrees_and_auto_picks_the_compiled_engine(rng, count_compiled):
    net = Net(rng)
    s = if_input(net, (12,))
    p0 = net.pop([net.dense(s, 24, blocks=3, name="syn0")], name="pop0", bias=rng.integers(-300, 300, 24) << 6)
    p1 = net.pop([net.dense(p0, 16, blocks=2, name="syn1")], name="pop1")
    p2 = net.pop([net.dense(p1, 7, name="syn2")], name="pop2", amplitude=0.25)
    net.readout(p2)
    graph = net.build()
    xs = rng.uniform(0, 1, (5, 12))
    result = engines_agree(graph, xs, [1, 7, 20])
    assert count_compiled == {"compiled": 1, "numpy": 1}
    auto = refsim.simulate(graph, xs, [1, 7, 20], record="spikes")  # engine="auto"
    assert count_compiled == {"compiled": 2, "numpy": 1}
    assert_same(auto, result)
    assert result.activity["inp"].spikes > 0
    # the readout of the last population: amplitude * its spike counts so far, through the dense
    w, bias = graph.node("pop2_dense").params["weight"], graph.node("pop2_dense").params["bias"]
    for t in (1, 7, 20):
        mean = result.spikes["pop2"][:, :t].sum(axis=1) * 0.25 / t
        np.testing.assert_allclose(result.outputs[t]["output"], mean @ w.T + bias, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "decay_u, decay_v, refract_delay",
    [(4094, 0, 3), (3000, 200, 2), (4000, 1, 5), (0, 4095, 1), (4095, 37, 4), (1, 2048, 63)],
)
def test_leaky_refractory_compartments_with_negative_weights_agree(rng, decay_u, decay_v, refract_delay):
    net = Net(rng)
    s = if_input(net, (10,), gain=0.7)
    bias = rng.integers(-200, 400, 20) << 6
    p0 = net.pop(
        [net.dense(s, 20, blocks=2, low=-100, high=100, name="syn0")],
        name="pop0",
        bias=bias,
        vmin=-(2**20),
        decay_u=decay_u,
        decay_v=decay_v,
        refract_delay=refract_delay,
        rate=0.1,
    )
    p1 = net.pop(
        [net.dense(p0, 9, low=-120, high=60, name="syn1")],
        name="pop1",
        bias=20000,
        vmin=rng.integers(-(2**22), 1, 9),
        decay_u=decay_u,
        decay_v=decay_v,
        refract_delay=refract_delay,
    )
    net.readout(p1)
    graph = net.build()
    result = engines_agree(graph, rng.uniform(0, 1, (4, 10)), [13, 40])
    assert (result.voltages["pop0"] < 0).any()  # the negative range is in use
    if refract_delay > 1:  # no neuron spikes again within its refractory period
        raster = result.spikes["pop0"]
        for gap in range(1, refract_delay):
            assert not (raster[:, gap:] & raster[:, :-gap]).any()


def test_two_synapses_into_one_population_sum_and_dense_reads_an_image(rng):
    # residual-style: pop1 sums the input layer (skipping pop0) and pop0; the image-shaped
    # input layer and image population are read by dense synapses, channels last in the kernel
    net = Net(rng)
    s = if_input(net, (2, 4, 5))
    p0 = net.pop([net.conv(s, 3, (3, 3), pads=(1, 1, 1, 1), parts=(3, 2, 1), name="syn0")], name="pop0")
    skip = net.dense(s, 15, blocks=2, name="skip")
    main = net.dense(p0, 15, blocks=3, low=-60, high=80, name="main")
    p1 = net.pop([skip, main], name="pop1")
    twice = net.dense(p1, 6, name="twice_a")
    p2 = net.pop([twice, net.dense(p1, 6, name="twice_b"), net.dense(p0, 6, name="long")], name="pop2")
    net.readout(p2)
    graph = net.build()
    engines_agree(graph, rng.uniform(0, 1, (3, 2, 4, 5)), [25])


# ----------------------------------------------------------------------------- conv

CONV_GEOMETRIES = {
    # name: kernel, stride, pads (top, left, bottom, right)
    "3x3": ((3, 3), (1, 1), (0, 0, 0, 0)),
    "3x3_same": ((3, 3), (1, 1), (1, 1, 1, 1)),
    "3x3_stride2": ((3, 3), (2, 2), (0, 0, 0, 0)),
    "3x3_stride2_padded": ((3, 3), (2, 2), (1, 1, 1, 1)),
    "5x5_stride2": ((5, 5), (2, 2), (2, 2, 2, 2)),
    "5x5_stride2_uneven_pads": ((5, 5), (2, 2), (0, 1, 2, 0)),
    "4x4_stride2": ((4, 4), (2, 2), (1, 1, 1, 1)),
    "2x3_stride1x2": ((2, 3), (1, 2), (0, 1, 1, 0)),
    "3x5_stride3x2": ((3, 5), (3, 2), (1, 2, 0, 1)),
    "1x1_stride2": ((1, 1), (2, 2), (0, 0, 0, 0)),  # odd positions reach nothing
    "1x1_padded": ((1, 1), (1, 1), (1, 1, 1, 1)),  # the border sees only padding
    "2x2_stride3": ((2, 2), (3, 3), (1, 0, 0, 1)),
    "1x4_stride1x3": ((1, 4), (1, 3), (0, 3, 0, 2)),
}


@pytest.mark.parametrize("blocks", ["one", "boxes", "scattered"])
@pytest.mark.parametrize("geometry", CONV_GEOMETRIES)
def test_conv_synapses_agree(rng, geometry, blocks):
    kernel, stride, pads = CONV_GEOMETRIES[geometry]
    parts = {"one": (1, 1, 1), "boxes": (2, 2, 2), "scattered": (1, 1, 3)}[blocks]
    net = Net(rng)
    s = if_input(net, (2, 9, 10))
    syn = net.conv(s, 4, kernel, stride, pads, parts=parts, scattered=blocks == "scattered", name="syn0")
    p0 = net.pop([syn], name="pop0", bias=rng.integers(-100, 100) << 6)
    net.output(net.b.add(ops.Readout(), [p0], name="rate"), "rates")  # (F, H, W): IR order
    net.readout(p0)
    graph = net.build()
    used = len(np.unique(graph.node("syn0").params["block"]))
    assert used == {"one": 1, "boxes": 8, "scattered": 3}[blocks]  # boxes: filters, rows, columns halved
    engines_agree(graph, rng.uniform(0, 1, (3, 2, 9, 10)), [1, 7, 20], batch_size=2, workers=2)


@pytest.mark.parametrize("blocks", ["boxes", "scattered"])
def test_pool_folded_conv_agrees(rng, blocks):
    # kernels constant on the stride's tiles (an average pool folded into the conv)
    net = Net(rng)
    s = if_input(net, (2, 8, 9))
    syn = net.conv(s, 3, (4, 4), (2, 2), (1, 1, 1, 1), parts=(3, 2, 2), scattered=blocks == "scattered", pooled=True)
    p0 = net.pop([syn], name="pop0")
    net.readout(p0)
    graph = net.build()
    weight = graph.node("syn").params["weight"]  # an average pool folded into the conv
    assert np.array_equal(weight, np.repeat(np.repeat(weight[..., ::2, ::2], 2, axis=-2), 2, axis=-1))
    engines_agree(graph, rng.uniform(0, 1, (3, 2, 8, 9)), [20])


def test_conv_layers_chip_to_chip_with_a_residual_sum_agree(rng):
    # image input -> conv (same) -> conv stride 2 -> (+ a strided 1x1 skip from the first
    # population) -> conv 5x5 stride 2 -> dense -> readout
    net = Net(rng)
    s = if_input(net, (2, 11, 12), reset="zero", gain=0.9)
    p0 = net.pop([net.conv(s, 4, (3, 3), pads=(1, 1, 1, 1), parts=(2, 2, 3), name="syn0")], name="pop0")
    main = net.conv(p0, 5, (3, 3), (2, 2), (1, 1, 1, 1), parts=(5, 2, 1), low=-50, high=90, name="syn1")
    skip = net.conv(p0, 5, (1, 1), (2, 2), parts=(1, 3, 2), name="skip1")
    assert net.shape(main) == net.shape(skip) == (5, 6, 6)
    p1 = net.pop([main, skip], name="pop1", decay_u=3800, decay_v=300, refract_delay=2, vmin=-(2**18))
    p2 = net.pop([net.conv(p1, 3, (5, 5), (2, 2), (2, 2, 1, 1), parts=(3, 1, 2), name="syn2")], name="pop2")
    p3 = net.pop([net.dense(p2, 8, blocks=2, name="syn3")], name="pop3", amplitude=0.5)
    net.readout(p3, units=4)
    net.output(net.b.add(ops.Readout(), [p1], name="p1_rate"), "p1_rate")
    graph = net.build()
    engines_agree(graph, rng.uniform(0, 1, (5, 2, 11, 12)), [3, 30], batch_size=2, workers=2)


@st.composite
def conv_cases(draw):
    kh, kw = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    pads = tuple(draw(st.integers(0, k)) for k in (kh, kw, kh, kw))
    h = draw(st.integers(max(1, kh - pads[0] - pads[2]), 9))
    w = draw(st.integers(max(1, kw - pads[1] - pads[3]), 9))
    return {
        "shape": (draw(st.integers(1, 3)), h, w),
        "filters": draw(st.integers(1, 4)),
        "kernel": (kh, kw),
        "stride": (sh, sw),
        "pads": pads,
        "parts": (draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 3))),
        "scattered": draw(st.booleans()),
        "seed": draw(st.integers(0, 2**32 - 1)),
    }


@settings(max_examples=100, deadline=None, derandomize=True)
@given(case=conv_cases())
def test_random_conv_geometries_and_blocks_agree(case):
    rng = np.random.default_rng(case["seed"])
    net = Net(rng)
    s = if_input(net, case["shape"])
    syn = net.conv(s, case["filters"], case["kernel"], case["stride"], case["pads"], case["parts"], case["scattered"])
    p0 = net.pop([syn], name="pop0", bias=rng.integers(-50, 200) << 6)
    net.output(net.b.add(ops.Readout(), [p0], name="rate"), "rates")
    graph = net.build()
    # tiny layers can stay silent or saturate: compare all the same, liveliness aside
    engines_agree(graph, rng.uniform(0, 1, (2, *case["shape"])), [15], lively=False)


@st.composite
def dense_cases(draw):
    layers = draw(st.integers(1, 4))

    def each(strategy):
        return [draw(strategy) for _ in range(layers)]

    return {
        "inputs": draw(st.integers(1, 20)),
        "host": draw(st.sampled_from(["if", "lif", "both"])),
        "if": {
            "threshold": draw(st.floats(0.1, 3)),
            "gain": draw(st.floats(0.01, 3)),
            "reset": draw(st.sampled_from(RESETS)),
            "v_init": draw(st.floats(-1, 1)),
            "amplitude": draw(st.sampled_from([1.0, 0.5, 3.0])),
        },
        "lif": {
            "tau_ref": draw(st.sampled_from([0.0, 0.001, 0.0025, 0.0037])),
            "gain": draw(st.floats(0.5, 50)),
            "bias": draw(st.floats(-2, 3)),
        },
        "sizes": each(st.integers(1, 25)),
        "blocks": each(st.integers(1, 4)),
        "decays": each(st.tuples(st.integers(0, 4095), st.integers(0, 4095))),
        "refract": each(st.integers(1, 63)),
        "weight_bits": each(st.integers(0, 16)),  # weights up to 2**(bits + 7)
        "bias_bits": each(st.integers(0, 23)),
        "vmin": each(st.sampled_from([0, -1, -(2**12), -(2**23), -INT32_MAX])),
        "vmax": each(st.sampled_from([VMAX, INT32_MAX, 1000, 0])),
        "skip": each(st.booleans()),
        "examples": draw(st.integers(1, 5)),
        "batch_size": draw(st.integers(1, 5)),
        "timesteps": draw(st.lists(st.integers(1, 40), min_size=1, max_size=4)),
        "seed": draw(st.integers(0, 2**32 - 1)),
    }


@settings(max_examples=100, deadline=None, derandomize=True)
@given(case=dense_cases())
def test_random_dense_networks_agree(case):
    # any parameters, wrap-arounds included: host IF and/or LIF input layers, chains of
    # populations, some with a second synapse from an earlier population
    rng = np.random.default_rng(case["seed"])
    net = Net(rng)
    x = net.input((case["inputs"],))
    hosts = []
    if case["host"] in ("if", "both"):
        hosts.append(net.neuron(ops.IfNeuron(**case["if"]), x, name="host_if"))
    if case["host"] in ("lif", "both"):
        hosts.append(net.neuron(ops.LifNeuron(**case["lif"]), x, name="host_lif"))
    pre, pops = hosts[0], []
    for k, n in enumerate(case["sizes"]):
        low, high = -(1 << case["weight_bits"][k]), 2 << case["weight_bits"][k]
        syns = [net.dense(pre, n, blocks=case["blocks"][k], low=low, high=high, name=f"syn{k}")]
        if case["skip"][k]:
            earlier = pops[0] if pops and pops[0] != pre else hosts[-1]
            syns.append(net.dense(earlier, n, low=low, high=high, name=f"skip{k}"))
        decay_u, decay_v = case["decays"][k]
        bias = 1 << case["bias_bits"][k]
        pre = net.pop(
            syns,
            name=f"pop{k}",
            bias=rng.integers(-bias, bias, n),
            vmin=case["vmin"][k],
            vmax=case["vmax"][k],
            decay_u=decay_u,
            decay_v=decay_v,
            refract_delay=case["refract"][k],
            amplitude=case["if"]["amplitude"],
        )
        pops.append(pre)
    net.readout(pre)
    for host in hosts:
        net.readout(host, units=2, name=f"{host}_out")
    graph = net.build()
    xs = rng.uniform(-0.2, 1, (case["examples"], case["inputs"]))
    engines_agree(graph, xs, case["timesteps"], overflow=None, lively=False, batch_size=case["batch_size"], workers=2)


# ----------------------------------------------------------------------------- host layers


@pytest.mark.parametrize("tau_ref", [0.0, 0.002, 0.0035])
def test_host_lif_input_layer_agrees(rng, tau_ref):
    # a host linear op (static) before the input neurons, LIF neurons as nengo steps them; a
    # host dense layer reads their spikes too (worth their amplitude)
    net = Net(rng)
    x = net.input((3, 5, 4))
    conv = net.b.add(
        ops.Conv2d(2, (2, 2), (1, 1), (1, 0, 0, 1)),
        [x],
        params={"weight": rng.normal(0.5, 0.5, (2, 3, 2, 2)), "bias": np.zeros(2)},
        name="host_conv",
    )
    lif = ops.LifNeuron(tau_rc=0.02, tau_ref=tau_ref, gain=8.0, bias=1.0, amplitude=0.3)
    s = net.neuron(lif, conv)
    assert net.shape(s) == (2, 5, 4)
    p0 = net.pop([net.conv(s, 3, (3, 3), pads=(1, 1, 1, 1), parts=(1, 2, 2), name="syn0")], name="pop0")
    p1 = net.pop([net.dense(p0, 10, name="syn1")], name="pop1")
    net.readout(p1)
    net.readout(s, units=2, name="input_rates")
    graph = net.build()
    result = engines_agree(graph, rng.uniform(0, 1, (4, 3, 5, 4)), [1, 7, 30], batch_size=3, workers=2)
    assert 0 < result.activity["inp"].spikes < 4 * 40 * 30


@pytest.mark.parametrize("reset", RESETS)
def test_host_if_layers_with_gain_reset_and_amplitude_agree(rng, reset):
    # two host input layers (one through a static dense), one read by the host as well;
    # outputs: a readout, a chip population's spikes as they are, and a static host value
    net = Net(rng)
    x = net.input((9,))
    s0 = net.neuron(ops.IfNeuron(threshold=1.7, gain=0.83, reset=reset, v_init=0.4, amplitude=2.5), x, name="inp0")
    params = {"weight": rng.normal(0.3, 0.5, (6, 9)), "bias": np.full(6, 0.1)}
    lin = net.b.add(ops.Dense(6), [x], params=params, name="lin")
    s1 = net.neuron(ops.IfNeuron(threshold=0.9, gain=1.0, reset=reset), lin, name="inp1")
    syns = [net.dense(s0, 12, blocks=2, name="syn0"), net.dense(s1, 12, name="syn1")]
    p0 = net.pop(syns, name="pop0", amplitude=0.125)
    net.readout(p0)
    net.readout(s0, units=2, name="inp0_rates")
    net.output(p0, "pop0_spikes")
    net.output(lin, "static")
    graph = net.build()
    xs = rng.uniform(0, 1, (6, 9))
    result = engines_agree(graph, xs, [1, 2, 17, 30], batch_size=4, workers=2)
    for t in (1, 17):
        np.testing.assert_array_equal(result.outputs[t]["pop0_spikes"], result.spikes["pop0"][:, t - 1] * 0.125)
    assert result.activity["inp0"].spikes > 0 and result.activity["inp1"].spikes > 0


def test_two_inputs_and_host_layers_mixing_chip_and_constant_values_agree(rng):
    # two graph inputs (a vector, an image) with host IF and LIF layers; a host neuron no
    # synapse reads; host ops after the chip that join two populations and a constant
    net = Net(rng)
    a, image = net.input((5,), name="a"), net.input((2, 3, 3), name="b")
    sa = net.neuron(ops.IfNeuron(gain=0.5, amplitude=2.0), a, name="ia")
    sb = net.neuron(ops.LifNeuron(gain=20.0), image, name="ib")
    host_only = net.neuron(ops.IfNeuron(gain=0.3), a, name="host_only")
    p0 = net.pop([net.dense(sa, 6, name="s0"), net.dense(sb, 6, name="s1")], name="pop0")
    p1 = net.pop([net.conv(sb, 2, (3, 3), name="s2")], name="pop1")  # (2, 1, 1)
    joined = net.b.add(ops.Concat(axis=0), [p0, net.b.add(ops.Reshape((2,)), [p1], name="p1_flat")], name="joined")
    params = {"weight": rng.normal(size=(8, 5)), "bias": np.zeros(8)}
    total = net.b.add(ops.Add(), [joined, net.b.add(ops.Dense(8), [a], params=params, name="lin")], name="total")
    net.output(net.b.add(ops.Readout(), [total], name="mean"), "mean")
    net.output(total, "total")
    net.output(host_only, "host_only_spikes")
    net.output(sa, "ia_spikes")
    graph = net.build()
    xs = {"a": rng.uniform(0, 1, (3, 5)), "b": rng.uniform(0, 1, (3, 2, 3, 3))}
    result = engines_agree(graph, xs, [1, 5, 19], batch_size=2, workers=2)
    assert result.activity["host_only"].spikes > 0 and result.activity["ib"].spikes > 0


def test_tail_evaluated_in_chunks_of_steps_agrees(rng, monkeypatch):
    # the host layers after the chip run over several steps at once: cut them into chunks of
    # a few steps, the running means must carry over from chunk to chunk
    net = Net(rng)
    s = if_input(net, (8,))
    p0 = net.pop([net.dense(s, 10, name="syn0")], name="pop0")
    net.readout(p0, units=4)
    graph = net.build()
    xs = rng.uniform(0, 1, (3, 8))
    whole = engines_agree(graph, xs, [1, 7, 20, 33])
    monkeypatch.setattr(compiled, "TAIL_CHUNK", 3 * 10 * 4)  # 4 steps per chunk
    chunked = engines_agree(graph, xs, [1, 7, 20, 33])
    assert_same(chunked, whole)


# ----------------------------------------------------------------------------- batches


def test_batches_workers_and_recording_do_not_change_the_compiled_results(rng):
    net = Net(rng)
    s = if_input(net, (2, 6, 6))
    p0 = net.pop([net.conv(s, 3, (3, 3), (2, 2), (1, 1, 1, 1), parts=(3, 1, 1), name="syn0")], name="pop0")
    p1 = net.pop([net.dense(p0, 5, name="syn1")], name="pop1", decay_u=3500, decay_v=100, refract_delay=3)
    net.readout(p1)
    graph = net.build()
    xs = rng.uniform(0, 1, (7, 2, 6, 6))
    ts = [1, 7, 20]
    ref = simulate(graph, xs, ts, "numpy")
    assert_lively(ref)
    for batch_size, workers in ((7, 1), (3, 2), (1, 2), (2, None)):
        assert_same(simulate(graph, xs, ts, "compiled", batch_size=batch_size, workers=workers), ref)
    counts = refsim.simulate(graph, xs, ts, batch_size=3, workers=2, engine="compiled")  # record="counts"
    assert counts.spikes == {}
    for name in ref.spike_counts:
        np.testing.assert_array_equal(counts.spike_counts[name], ref.spike_counts[name])
        np.testing.assert_array_equal(counts.voltages[name], ref.voltages[name])
        np.testing.assert_array_equal(counts.currents[name], ref.currents[name])
    for t in ts:
        np.testing.assert_allclose(counts.outputs[t]["output"], ref.outputs[t]["output"], rtol=1e-12, atol=0)


# ----------------------------------------------------------------------------- wrap-arounds


def test_wrap_arounds_agree(rng):
    # one population per wrapping quantity: q (the input sum leaves 21 bits), u (a slow
    # synaptic filter integrates past 23 bits), u2 (a bias near 2**23), v (the int32 sum at
    # the edges of the voltage range, with int32 limits: upward, it wraps to vmin; downward,
    # to the top, where it is clipped to vmax and spikes)
    net = Net(rng)
    s = if_input(net, (8,), gain=0.9)
    ones = np.ones((4, 8), np.int64)
    q = net.pop([net.dense(s, 4, weight=ones << 20, name="syn_q")], name="pop_q", vth=2**22)
    u = net.pop([net.dense(s, 4, weight=ones << 17, name="syn_u")], name="pop_u", vth=2**22, decay_u=0)
    u2 = net.pop([net.dense(s, 4, weight=ones << 15, name="syn_u2")], name="pop_u2", vth=2**22, bias=2**23 - 2**12)
    drive = np.array([2**23 - 1, 2**23 - 1, -(2**23), -(2**23) + 5])
    v = net.pop(
        [net.dense(s, 4, weight=ones * 0, name="syn_v")],
        name="pop_v",
        vth=[INT32_MAX, INT32_MAX, 2**30, 2**30],
        bias=drive,
        vmin=-INT32_MAX,
        vmax=INT32_MAX,
    )
    for p in (q, u, u2, v):
        net.readout(p, name=f"{p}_out")
    graph = net.build()
    result = engines_agree(graph, rng.uniform(0.5, 1, (2, 8)), [40, 300], overflow=True, lively=False, batch_size=1)
    for name, kind in (("pop_q", "q"), ("pop_u", "u"), ("pop_u2", "u2"), ("pop_v", "v")):
        assert result.overflow[name][kind] > 0, (name, result.overflow[name])
    # the downward wrap came back from the top and spiked; the upward one never reached vth
    counts = result.spike_counts["pop_v"]
    assert (counts[:, :2] == 0).all() and (counts[:, 2:] > 0).all()


# ----------------------------------------------------------------------------- engine choice


def float_graph():
    b = GraphBuilder("real", stage=ops.SPIKING)
    s = b.add(ops.IfNeuron(gain=0.5), [b.input("x", (4,))], name="inp")
    weight = {"weight": np.full((3, 4), 0.4, np.float32)}
    syn = b.add(ops.LoihiSynapses("dense", "float", units=3), [s], params=weight, name="syn")
    pop = b.add(ops.LoihiCompartments("relu", "float"), [syn], params={"bias": np.zeros(3, np.float32)}, name="pop")
    b.output(b.add(ops.Readout(), [pop], name="readout"))
    return b.build()


def test_float_graphs_run_only_on_the_numpy_engine(rng, count_compiled):
    graph = float_graph()
    xs = rng.uniform(0.5, 1, (2, 4))
    with pytest.raises(BuildError, match="compiled engine: float mode"):
        refsim.simulate(graph, xs, [10], engine="compiled")
    auto = refsim.simulate(graph, xs, [10], record="spikes")
    numpy = refsim.simulate(graph, xs, [10], record="spikes", engine="numpy")
    assert auto.mode == "float" and auto.spike_counts["pop"].sum() > 0
    assert count_compiled == {"compiled": 0, "numpy": 2}
    np.testing.assert_array_equal(auto.spikes["pop"], numpy.spikes["pop"])
    np.testing.assert_array_equal(auto.voltages["pop"], numpy.voltages["pop"])


def test_unknown_engine_is_refused(rng):
    net = Net(rng)
    net.readout(net.pop([net.dense(if_input(net, (3,)), 2)]))
    with pytest.raises(DataError, match="engine must be one of auto, compiled, numpy, got 'bogus'"):
        refsim.simulate(net.build(), np.zeros((1, 3)), [5], engine="bogus")


def host_neuron_after_the_chip(rng):
    """A host IF layer driven by a chip population (through a host dense): its input changes
    over time, so it does not fit the compiled engine."""
    net = Net(rng)
    s = if_input(net, (6,))
    p0 = net.pop([net.dense(s, 8, name="syn0")], name="pop0")
    params = {"weight": rng.uniform(0, 1, (5, 8)), "bias": np.zeros(5)}
    flat = net.b.add(ops.Dense(5), [p0], params=params, name="host_dense")
    s1 = net.neuron(ops.IfNeuron(gain=0.7), flat, name="host_if")
    p1 = net.pop([net.dense(s1, 4, name="syn1")], name="pop1")
    net.readout(p1)
    return net.build(), "host neuron whose input changes over time"


def host_neuron_reading_the_chip(rng):
    """A host IF layer reading a chip population's spikes directly."""
    net = Net(rng)
    s = if_input(net, (6,))
    p0 = net.pop([net.dense(s, 8, name="syn0")], name="pop0")
    s1 = net.neuron(ops.IfNeuron(gain=0.6, reset="zero"), p0, name="host_if")
    p1 = net.pop([net.dense(s1, 4, name="syn1")], name="pop1")
    net.readout(p1)
    return net.build(), "host neuron whose input changes over time"


def synapses_into_two_populations(rng):
    """One synapse node read by two compartment populations."""
    net = Net(rng)
    s = if_input(net, (6,))
    syn = net.dense(s, 8, name="shared")
    a, b = net.pop([syn], name="pop_a"), net.pop([syn], name="pop_b", bias=3000)
    net.readout(a, name="out_a")
    net.readout(b, name="out_b")
    return net.build(), "synapses that feed anything but one loihi_compartments"


def input_beyond_int32(rng):
    """Weights whose sum can leave int32 (the kernel's accumulator): the NumPy engine sums in
    int64 and wraps q to 21 bits."""
    net = Net(rng)
    s = if_input(net, (6,), gain=0.9)
    weight = 2**29 + rng.integers(2**17, 2**20, (3, 6))  # what is left after the wrap: the low bits
    p0 = net.pop([net.dense(s, 3, weight=weight, name="syn0")], name="pop0", vth=2**20)
    net.readout(p0)
    return net.build(), "can exceed int32"


@pytest.mark.parametrize(
    "case",
    [host_neuron_after_the_chip, host_neuron_reading_the_chip, synapses_into_two_populations, input_beyond_int32],
)
def test_graphs_that_do_not_fit_fall_back_to_the_numpy_engine(rng, count_compiled, case):
    graph, reason = case(rng)
    assert reason in compiled.program(refsim.plan(graph))
    xs = rng.uniform(0.3, 1, (3, graph.inputs[0].type.shape[0]))
    overflow = case is input_beyond_int32
    with pytest.raises(BuildError, match=f"{graph.name} does not fit refsim's compiled engine: .*{reason}"):
        refsim.simulate(graph, xs, [20], engine="compiled")
    auto = simulate(graph, xs, [5, 20], "auto", overflow)
    numpy = simulate(graph, xs, [5, 20], "numpy", overflow)
    assert count_compiled == {"compiled": 0, "numpy": 2}
    assert_same(auto, numpy)
    assert_lively(numpy)
    if overflow:
        assert numpy.overflow["pop0"]["q"] > 0


def test_a_synapse_listed_twice_counts_twice(rng, count_compiled):
    # loihi_compartments sum their inputs' currents: a synapse listed twice adds twice
    net = Net(rng)
    syn = net.dense(if_input(net, (6,)), 4)
    net.readout(net.pop([syn, syn]))
    graph = net.build()
    xs = rng.uniform(0, 1, (2, 6))
    ref = simulate(graph, xs, [20], "numpy")
    ours = simulate(graph, xs, [20], "compiled")
    assert count_compiled["compiled"] == 1
    assert_same(ours, ref)


def test_a_host_input_layer_after_a_host_readout_in_graph_order_fits(rng, count_compiled):
    # no host layer reads the chip here, whatever the order the graph lists its nodes in
    net = Net(rng)
    x = net.input((6,))
    first = net.neuron(ops.IfNeuron(gain=0.5), x, name="inp0")
    net.readout(first, name="host_only")
    second = net.neuron(ops.IfNeuron(gain=0.7), x, name="inp1")
    net.readout(net.pop([net.dense(second, 4)]), name="chip")
    graph = net.build()
    assert isinstance(compiled.program(refsim.plan(graph)), compiled.Program)
    xs = rng.uniform(0, 1, (3, 6))
    ours = simulate(graph, xs, [7, 20], "compiled")
    assert_same(ours, simulate(graph, xs, [7, 20], "numpy"))
    assert count_compiled["compiled"] == 1
