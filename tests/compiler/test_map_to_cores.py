"""map_to_cores and the core-block accounting (compiler/loihi/cores.py), against NengoLoihi
1.1.0 itself: the same networks built with ``nengo_loihi.builder.Model`` must split into the
same blocks, report the same compartments, input axons, output axons and synapse bits per
block, and accept or reject the same block shapes."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from snnc.compiler import ops
from snnc.compiler.errors import PassError
from snnc.compiler.graph import GraphBuilder
from snnc.compiler.loihi import cores
from snnc.compiler.passes import PassManager, parse_pipeline
from snnc.compiler.passes.map_to_cores import _connections, _populations, core_usage, map_to_cores

LIMIT_KEYS = ("compartments", "input_axons", "output_axons", "synapse_bits")


# ----------------------------------------------------------------------------- graphs


def _same_pads(n_in: int, k: int, s: int) -> tuple[int, int]:
    """Top and bottom pads of ``padding="same"`` (nengo's and Keras's: the extra one below)."""
    total = max((math.ceil(n_in / s) - 1) * s + k - n_in, 0)
    return total // 2, total - total // 2


class Net:
    """A float-format Loihi graph, built layer by layer the way ``lower_loihi`` writes one:
    a host input layer sends spikes to chip populations; a host dense reads the last one."""

    def __init__(self, rng, shape, name="net", dt=0.001):
        self.rng, self.dt = rng, dt
        self.b = GraphBuilder(name, stage=ops.SPIKING)
        x = self.b.input("image", shape)
        ones, zeros = np.ones(shape[0], np.float32), np.zeros(shape[0], np.float32)
        h = self.b.add(ops.Affine(), [x], {"scale": ones, "shift": zeros}, name="host")
        self.host = self.b.add(ops.IfNeuron(amplitude=0.5), [h], name="host_spikes")

    def shape(self, value):
        return self.b.type_of(value).shape

    def conv(self, x, filters, k=3, stride=1, padding="valid", name=None, kernel=None, gain=0.7):
        c, h, w = self.shape(x)
        if padding == "same":
            (pt, pb), (pl, pr) = _same_pads(h, k, stride), _same_pads(w, k, stride)
        else:
            pt = pb = pl = pr = 0
        op = ops.LoihiSynapses("conv", filters=filters, kernel=(k, k), stride=(stride, stride), pads=(pt, pl, pb, pr))
        if kernel is None:
            kernel = self.rng.normal(0, 0.3, (filters, c, k, k)).astype(np.float32)
        syn = self.b.add(op, [x], {"weight": kernel}, name=f"{name}_syn")
        return self.population([syn], name, gain)

    def dense(self, x, units, name=None, weight=None, gain=1.3):
        if weight is None:
            weight = self.rng.normal(0, 0.1, (units, math.prod(self.shape(x)))).astype(np.float32)
        syn = self.b.add(ops.LoihiSynapses("dense", units=units), [x], {"weight": weight}, name=f"{name}_syn")
        return self.population([syn], name, gain)

    def population(self, synapses, name, gain=1.0):
        n = math.prod(self.shape(synapses[0]))
        bias = self.rng.uniform(0, 2, n).astype(np.float32)
        op = ops.LoihiCompartments(gain=gain, amplitude=0.8, dt=self.dt)
        return self.b.add(op, synapses, {"bias": bias}, name=name)

    def synapse(self, x, post_shape, name, kernel_k=3):
        """A conv synapse onto a population made later with :meth:`population` (residuals)."""
        op = ops.LoihiSynapses("conv", filters=post_shape[0], kernel=(kernel_k, kernel_k), pads=(1, 1, 1, 1))
        kernel = self.rng.normal(0, 0.3, (post_shape[0], self.shape(x)[0], kernel_k, kernel_k)).astype(np.float32)
        return self.b.add(op, [x], {"weight": kernel}, name=name)

    def build(self, last):
        units = math.prod(self.shape(last))
        weight = self.rng.normal(size=(3, units)).astype(np.float32)
        if len(self.shape(last)) > 1:
            last = self.b.add(ops.Reshape((units,)), [last], name="flatten")
        logits = self.b.add(ops.Dense(3), [last], {"weight": weight, "bias": np.zeros(3, np.float32)}, name="logits")
        self.b.output(self.b.add(ops.Readout(), [logits]))
        return self.b.build()


# ----------------------------------------------------------------------------- the reference


def nengo_reference(graph, block_shapes=None, validate=False):
    """Build ``graph``'s chip part with NengoLoihi (each population an ensemble of
    SpikingRectifiedLinear neurons with its gain and bias, each synapse a Dense or
    Convolution(channels_last=False) connection between ``.neurons``, the host layer an
    off-chip ensemble) and return per population the blocks NengoLoihi made: compartment ids
    and ``LoihiBlock.utilization()``. ``block_shapes`` default to the pass's meta."""
    import nengo
    import nengo_loihi
    from nengo_loihi.builder.builder import ValidationLevel

    if block_shapes is None:
        block_shapes = {n.name: n.meta["cores"]["block_shape"] for n in graph.nodes if "cores" in n.meta}
    ensembles, dt = {}, None
    with nengo.Network(seed=0) as net:
        nengo_loihi.add_params(net)
        for node in graph.nodes:
            n = math.prod(node.type.shape)
            if isinstance(node.op, ops.IfNeuron):
                neuron = nengo.SpikingRectifiedLinear(amplitude=node.op.amplitude)
                ensembles[node.name] = nengo.Ensemble(n, 1, neuron_type=neuron, gain=np.ones(n), bias=np.zeros(n))
                net.config[ensembles[node.name]].on_chip = False
            elif isinstance(node.op, ops.LoihiCompartments):
                dt = node.op.dt
                neuron = nengo.SpikingRectifiedLinear(amplitude=node.op.amplitude)
                gain, bias = np.full(n, node.op.gain), node.params["bias"].astype(np.float64)
                ens = ensembles[node.name] = nengo.Ensemble(n, 1, neuron_type=neuron, gain=gain, bias=bias)
                shape = tuple(block_shapes.get(node.name, node.type.shape))
                net.config[ens].block_shape = nengo_loihi.BlockShape(shape, tuple(node.type.shape))
                for name in node.inputs:
                    syn = graph.node(name)
                    pre = graph.node(syn.inputs[0])
                    transform = _nengo_transform(syn, pre.type.shape)
                    nengo.Connection(ensembles[pre.name].neurons, ens.neurons, transform=transform, synapse=None)
    model = nengo_loihi.builder.Model(dt=dt)
    if not validate:
        model.validation_level = ValidationLevel.NONE
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.build(net)
    out = {}
    for node in graph.nodes:
        if isinstance(node.op, ops.LoihiCompartments):
            blocks = model.objs[ensembles[node.name]]["out"]
            out[node.name] = [
                {
                    "members": np.array(model.block_comp_map[block].list),
                    **{_UTILIZATION[k]: v[0] for k, v in block.utilization().items()},
                }
                for block in blocks
            ]
    return out


_UTILIZATION = {"compartments": "compartments", "in-axons": "input_axons", "out-axons": "output_axons", "synapses": "synapse_bits"}


def _nengo_transform(syn, pre_shape):
    import nengo

    weight = syn.params["weight"]
    if syn.op.kind == "dense":
        return nengo.Dense(weight.shape, init=weight)
    c, h, w = pre_shape
    k = syn.op.kernel
    pt, pl, pb, pr = syn.op.pads
    if (pt, pl, pb, pr) == (0, 0, 0, 0):
        padding = "valid"
    else:
        assert ((pt, pb), (pl, pr)) == (_same_pads(h, k[0], syn.op.stride[0]), _same_pads(w, k[1], syn.op.stride[1]))
        padding = "same"
    return nengo.Convolution(
        weight.shape[0],
        (c, h, w),
        kernel_size=k,
        strides=syn.op.stride,
        padding=padding,
        channels_last=False,
        init=np.transpose(weight, (2, 3, 1, 0)),
    )


def assert_same_as_nengo_loihi(graph, block_shapes):
    """Partition and every block's four resource counts equal NengoLoihi's."""
    ref = nengo_reference(graph, block_shapes)
    ours = core_usage(graph, block_shapes)
    assert ours.keys() == ref.keys()
    for name, blocks in ref.items():
        node = graph.node(name)
        shape, block_shape = node.type.shape, tuple(block_shapes.get(name, node.type.shape))
        members = cores.block_members(shape, block_shape)
        assert len(members) == len(blocks) == len(ours[name])
        index = cores.block_index(shape, block_shape)
        for b, (block, use) in enumerate(zip(blocks, ours[name])):
            np.testing.assert_array_equal(members[b], block["members"])
            np.testing.assert_array_equal(np.flatnonzero(index == b), block["members"])
            assert {k: getattr(use, k) for k in LIMIT_KEYS} == {k: block[k] for k in LIMIT_KEYS}, f"%{name} block {b}"
    return ours


# ----------------------------------------------------------------------------- partition


@pytest.mark.parametrize(
    "shape, block_shape",
    [((10,), (3,)), ((40,), (40,)), ((4, 5, 6), (3, 2, 4)), ((32, 11, 11), (8, 6, 11)), ((3, 7, 7), (1, 1, 1)), ((2, 9), (2, 4))],
)
def test_block_partition_is_nengo_loihis_split(shape, block_shape):
    from nengo_loihi.block import LoihiBlock
    from nengo_loihi.builder.split_blocks import split_block
    from nengo_loihi.config import BlockShape

    old = LoihiBlock(math.prod(shape))
    split = split_block(old, {old: BlockShape(block_shape, shape)})
    want = [np.array(ids.list) for ids in split.values()]
    got = cores.block_members(shape, block_shape)
    assert len(got) == len(want) == cores.n_blocks(shape, block_shape)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)
    index = cores.block_index(shape, block_shape)
    for b, w in enumerate(want):
        np.testing.assert_array_equal(np.flatnonzero(index == b), w)
    tiles = cores.block_tiles(shape, block_shape)
    assert [math.prod(t) for _, t in tiles] == [len(w) for w in want]
    full = np.arange(math.prod(shape)).reshape(shape)
    for (origin, tile), w in zip(tiles, want):
        np.testing.assert_array_equal(full[tuple(slice(o, o + t) for o, t in zip(origin, tile))].ravel(), w)


def test_bits_per_axon_formula():
    # groups of 64 weights of 8 (+ index) bits plus a 10-bit header, rounded up to 64 bits
    assert cores.bits_per_axon(1) == 64
    assert cores.bits_per_axon(64) == 576  # 64 * 8 + 10 = 522 -> 576
    assert cores.bits_per_axon(65) == 576 + 64
    assert cores.bits_per_axon(10, 6) == 192  # 10 * 14 + 10 = 150 -> 192
    assert cores.index_bits(0) == 0 and cores.index_bits(1) == 6 and cores.index_bits(64) == 7 and cores.index_bits(4095) == 12
    assert cores.index_bits(5000) == 12  # NengoLoihi's idx_bits -1 reads INDEX_BITS_MAP[-1]
    from nengo_loihi.block import SynapseConfig

    cfg = SynapseConfig(n_synapses=63, weight_bits=7, compression=0, idx_bits=3)  # 8 index bits
    for n in (1, 63, 64, 100, 1000):
        assert cores.bits_per_axon(n, 8) == cfg.bits_per_axon(n)


# ----------------------------------------------------------------------------- accounting vs NengoLoihi


def test_conv_chain_counts_equal_nengo_loihi(rng):
    """Host conv input, a conv population split by channels and space, a dense population
    split in blocks of 7 (its weights partly repeated: equal rows share synapse memory)."""
    net = Net(rng, (3, 13, 13))
    a = net.conv(net.host, 6, name="conv1")
    b = net.conv(a, 8, k=3, stride=2, padding="same", name="conv2")
    units = math.prod(net.shape(b))
    weight = rng.normal(0, 0.1, (20, units)).astype(np.float32)
    weight[:, 1::3] = weight[:, :1]  # columns equal to the first: repeated rows on the chip
    c = net.dense(b, 20, name="fc", weight=weight)
    graph = net.build(c)
    assert_same_as_nengo_loihi(graph, {"conv1": (2, 6, 11), "conv2": (8, 3, 4), "fc": (7,)})
    assert_same_as_nengo_loihi(graph, {"conv1": (6, 11, 11), "conv2": (3, 6, 6), "fc": (20,)})


def test_large_tiles_counts_equal_nengo_loihi(rng):
    """Tiles over 256 compartments (axon bases kept below 256, the rest in the indices), an
    unsplit conv population of 2 * 20 * 26 compartments, strides, a constant kernel whose
    weight arrays repeat, and one compartment per block."""
    net = Net(rng, (2, 22, 28))
    a = net.conv(net.host, 2, name="wide")
    b = net.conv(a, 3, k=4, stride=1, padding="same", name="tiles", kernel=np.full((3, 2, 4, 4), 0.25, np.float32))
    c = net.conv(b, 2, k=3, stride=3, name="strided")
    graph = net.build(c)
    assert_same_as_nengo_loihi(graph, {"tiles": (2, 13, 20), "strided": (1, 1, 1)})
    assert_same_as_nengo_loihi(graph, {"wide": (1, 20, 26), "tiles": (3, 7, 28), "strided": (2, 7, 3)})


def test_residual_counts_equal_nengo_loihi(rng):
    """One population feeding two, a population summing two synapses."""
    net = Net(rng, (2, 8, 8))
    a = net.conv(net.host, 4, padding="same", name="a")
    b = net.conv(a, 4, padding="same", name="b")
    s1, s2 = net.synapse(a, (4, 8, 8), "c_from_a"), net.synapse(b, (4, 8, 8), "c_from_b")
    c = net.population([s1, s2], "c")
    graph = net.build(net.dense(c, 10, name="fc"))
    assert_same_as_nengo_loihi(graph, {"a": (4, 3, 8), "b": (2, 5, 5), "c": (4, 4, 3), "fc": (5,)})


def test_grouped_and_dilated_kernels_count_as_nengo_loihi(rng):
    """What lower_loihi makes of a depthwise conv (a kernel zero off its diagonal channel
    blocks) and of a dilated grouped one (zero between the taps too): NengoLoihi stores those
    zeros, and the counts, split by channels and space or not, equal its own."""
    net = Net(rng, (4, 9, 9))
    depthwise = rng.normal(0, 0.3, (4, 4, 3, 3)).astype(np.float32) * np.eye(4, dtype=np.float32)[:, :, None, None]
    a = net.conv(net.host, 4, padding="same", name="depthwise", kernel=depthwise)
    dilated = np.zeros((6, 4, 5, 5), np.float32)
    for f in range(6):
        group = slice(0, 2) if f < 3 else slice(2, 4)
        dilated[f, group, ::2, ::2] = rng.normal(0, 0.3, (2, 3, 3))
    b = net.conv(a, 6, k=5, padding="same", name="dilated", kernel=dilated)
    graph = net.build(b)
    assert_same_as_nengo_loihi(graph, {"depthwise": (4, 9, 9), "dilated": (6, 9, 9)})
    assert_same_as_nengo_loihi(graph, {"depthwise": (1, 5, 9), "dilated": (3, 4, 4)})


def test_cheap_bounds_agree_with_exact_counts(rng):
    """The quick counts the search uses: input/output axons exact, synapse bits a lower
    bound, and one compartment per block the least any shape needs."""
    net = Net(rng, (3, 12, 12))
    a = net.conv(net.host, 5, k=3, name="a")
    b = net.conv(a, 4, k=4, stride=2, padding="same", name="b")
    graph = net.build(net.dense(b, 6, name="fc"))
    for block_shapes in ({"a": (2, 4, 10), "b": (3, 2, 5), "fc": (4,)}, {"a": (1, 1, 1), "b": (1, 1, 1), "fc": (1,)}):
        usage = core_usage(graph, block_shapes)
        pops = _populations(graph)
        inputs, outputs = _connections(graph, pops)
        for node in pops:
            outs = [(conn, block_shapes[post]) for conn, post in outputs[node.name]]
            quick = cores._quick_usage(node.type.shape, block_shapes[node.name], inputs[node.name], outs)
            exact = usage[node.name]
            np.testing.assert_array_equal(quick["input_axons"], [u.input_axons for u in exact])
            np.testing.assert_array_equal(quick["output_axons"], [u.output_axons for u in exact])
            assert np.all(quick["synapse_bits"] <= [u.synapse_bits for u in exact])
            if block_shapes[node.name] == (1,) * len(node.type.shape):
                least = cores.smallest_block_usage(node.type.shape, inputs[node.name], outs)
                assert least == {k: max(getattr(u, k) for u in exact) for k in LIMIT_KEYS}
    assert_same_as_nengo_loihi(graph, {"a": (1, 1, 1), "b": (1, 1, 1), "fc": (1,)})


def _nengo_accepts(graph, block_shapes) -> bool:
    from nengo.exceptions import BuildError

    try:
        nengo_reference(graph, block_shapes, validate=True)
    except BuildError:
        return False
    return True


def _fits(graph, block_shapes) -> bool:
    return all(u.fits() for blocks in core_usage(graph, block_shapes).values() for u in blocks)


@pytest.mark.parametrize(
    "case, block_shapes, fits",
    [
        ("dense_bits", {"fc": (40,)}, False),  # 3872 axons x 40 weights: 1,486,848 synapse bits
        ("dense_bits", {"fc": (20,)}, True),
        ("compartments", {"conv": (32, 11, 11), "fc": (20,)}, False),  # 3872 compartments
        ("compartments", {"conv": (16, 8, 8), "fc": (20,)}, True),  # 1024: just fits
        ("out_axons", {"fc": (8,)}, False),  # 968 compartments x 5 post blocks: 4840 output axons
        ("out_axons", {"conv": (4, 11, 11), "fc": (8,)}, True),
        ("in_axons", {"fc": (2,)}, False),  # 4107 presynaptic neurons
        ("in_axons", {"fc": (2,), "pre": (4096,)}, True),
    ],
)
def test_fit_agrees_with_nengo_loihi_validation(rng, case, block_shapes, fits):
    """Our verdict and NengoLoihi's (``validate_model`` after splitting and discretizing)
    agree, on a block shape that fits and one that does not for each limit."""
    if case == "in_axons":
        net = Net(rng, (block_shapes.pop("pre", (4107,))[0],))
        graph = net.build(net.dense(net.host, 2, name="fc"))
    else:
        net = Net(rng, (16, 13, 13))
        conv = net.conv(net.host, 32, name="conv")
        graph = net.build(net.dense(conv, 40, name="fc"))
    block_shapes = {"conv": (8, 11, 11), **block_shapes}
    assert _fits(graph, block_shapes) == fits
    assert _nengo_accepts(graph, block_shapes) == fits


# ----------------------------------------------------------------------------- the pass


def _conv_net(rng):
    net = Net(rng, (16, 13, 13))
    conv2 = net.conv(net.host, 32, name="conv2_relu")  # 32 x 11 x 11 = 3872 compartments
    return net.build(net.dense(conv2, 10, name="fc"))


def test_conv_population_split_over_cores_matches_nengo_loihi(rng):
    graph = _conv_net(rng)
    mapped = map_to_cores(graph)
    cores_meta = mapped.node("conv2_relu").meta["cores"]
    shape = mapped.node("conv2_relu").type.shape
    assert math.prod(shape) == 3872
    blocks = cores_meta["blocks"]
    assert len(blocks) == 4 == cores.n_blocks(shape, cores_meta["block_shape"])  # ceil(3872 / 1024)
    tiles = cores.block_tiles(shape, cores_meta["block_shape"])
    assert [(b["origin"], b["shape"]) for b in blocks] == [(list(o), list(t)) for o, t in tiles]
    assert [b["core"] for b in blocks] == [0, 1, 2, 3] and {b["chip"] for b in blocks} == {0}
    assert sum(b["compartments"] for b in blocks) == 3872
    fc = mapped.node("fc").meta["cores"]["blocks"]
    assert [b["core"] for b in fc] == list(range(4, 4 + len(fc)))

    # what NengoLoihi reports for the chosen shapes, and it accepts them
    ref = nengo_reference(mapped, validate=True)
    for name in ("conv2_relu", "fc"):
        got = mapped.node(name).meta["cores"]["blocks"]
        assert [{k: b[k] for k in LIMIT_KEYS} for b in got] == [{k: b[k] for k in LIMIT_KEYS} for b in ref[name]]

    core_map = mapped.meta["core_map"]
    assert core_map["cores"] == 4 + len(fc) and core_map["chips"] == 1
    assert core_map["compartments"] == 3872 + 10
    assert core_map["synapse_bits"] == sum(b["synapse_bits"] for b in blocks + fc)
    summary = core_map["populations"]["conv2_relu"]
    assert summary["cores"] == 4 and summary["block_shape"] == cores_meta["block_shape"]
    assert summary["largest"] == {k: max(b[k] for b in blocks) for k in LIMIT_KEYS}
    assert summary["closest_limit"] == "compartments"
    messages = [n["message"] for n in mapped.meta["notes"] if n["node"] == "conv2_relu"]
    assert any("split into 4 core blocks" in m and "3872 compartments exceed the 1024 of one core" in m for m in messages)
    # parameters and everything else unchanged
    for before, after in zip(graph.nodes, mapped.nodes):
        assert before.params == after.params and before.op == after.op


def test_conv_split_prefers_few_input_axons(rng):
    """Two blocks either way: halving the channels keeps every one of the 16 x 16 input
    pixels (256 input axons per block); halving the columns (or rows) needs only 16 x 9."""
    net = Net(rng, (4, 16, 16))
    graph = net.build(net.conv(net.host, 8, padding="same", name="c"))  # 8 x 16 x 16 = 2048
    mapped = map_to_cores(graph)
    meta = mapped.node("c").meta["cores"]
    assert len(meta["blocks"]) == 2
    assert max(b["input_axons"] for b in meta["blocks"]) == 16 * 9 < 16 * 16
    assert meta["block_shape"][0] == 8


def test_max_compartments_spreads_the_load(rng):
    graph = _conv_net(rng)
    mapped = PassManager("map_to_cores{max_compartments=300}").run(graph)[0]
    for node in mapped.nodes:
        if "cores" in node.meta:
            assert all(b["compartments"] <= 300 for b in node.meta["cores"]["blocks"])
    assert len(mapped.node("conv2_relu").meta["cores"]["blocks"]) >= math.ceil(3872 / 300)
    assert mapped.meta["core_map"]["limits"]["compartments"] == 300
    assert any("(max_compartments=300)" in n["message"] for n in mapped.meta["notes"])
    assert_same_as_nengo_loihi(mapped, {n.name: n.meta["cores"]["block_shape"] for n in mapped.nodes if "cores" in n.meta})


@pytest.mark.parametrize("value", [0, 1025, -3])
def test_max_compartments_must_be_1_to_1024(rng, value):
    with pytest.raises(PassError, match=rf"option max_compartments={value} must be 1\.\.1024"):
        map_to_cores(_conv_net(rng), max_compartments=value)


def test_split_none_names_the_layer_and_the_limit(rng):
    with pytest.raises(PassError) as info:
        PassManager("map_to_cores{split=none}").run(_conv_net(rng))
    assert "%conv2_relu: 3872 compartments exceed the 1024 of one core; allow splitting (map_to_cores{split=auto})" in str(info.value)
    with pytest.raises(PassError, match="option split='some' is not one of auto, none"):
        map_to_cores(_conv_net(rng), split="some")


def test_split_none_keeps_populations_that_fit(rng):
    net = Net(rng, (2, 6, 6))
    graph = net.build(net.dense(net.conv(net.host, 3, name="c"), 5, name="fc"))
    mapped = map_to_cores(graph, split="none")
    assert [len(n.meta["cores"]["blocks"]) for n in mapped.nodes if "cores" in n.meta] == [1, 1]
    assert mapped.meta["core_map"]["cores"] == 2
    assert_same_as_nengo_loihi(mapped, {})


def test_max_cores(rng):
    graph = _conv_net(rng)
    assert map_to_cores(graph, max_cores=6).meta["core_map"]["cores"] <= 6
    with pytest.raises(PassError, match=r"needs \d+ cores \(1 chip\(s\)\), more than max_cores=3; the most: %conv2_relu"):
        map_to_cores(graph, max_cores=3)


def test_fan_in_over_4096_axons_cannot_fit(rng):
    net = Net(rng, (4107,))
    graph = net.build(net.dense(net.host, 2, name="wide_fc"))
    with pytest.raises(PassError, match="%wide_fc: 4107 input axons exceed the 4096 of one core even with one compartment per core"):
        map_to_cores(graph)
    with pytest.raises(PassError, match="%wide_fc: 4107 input axons exceed the 4096 of one core even with one"):
        map_to_cores(graph, split="none")  # splitting would not help: said so, not "allow splitting"
    assert not _nengo_accepts(graph, {"wide_fc": (1,)})


def test_synapse_rows_over_a_cores_memory_cannot_fit(rng):
    """One output compartment of a 6 x 6 conv over 4096 channels holds 36 arrays of 4096
    weights: 36 * 36864 bits, over the 1,048,576 of a core, whatever the split."""
    net = Net(rng, (4096, 6, 6))
    graph = net.build(net.conv(net.host, 1, k=6, name="deep"))
    with pytest.raises(PassError, match="%deep: 1327104 synapse bits exceed the 1048576 of one core even with one compartment"):
        map_to_cores(graph)


def test_more_presynaptic_populations_than_a_cores_synapse_formats(rng):
    net = Net(rng, (4,))
    layers = [net.dense(net.host, 2, name=f"l{i}") for i in range(16)]
    synapses = [net.b.add(ops.LoihiSynapses("dense", units=3), [x], {"weight": np.ones((3, 2), np.float32)}, name=f"from_{x}") for x in layers]
    graph = net.build(net.population(synapses, "sum"))
    with pytest.raises(PassError, match="%sum: 16 presynaptic populations need as many synapse formats, more than the 15 of one core"):
        map_to_cores(graph)


def test_the_pipeline_string_configures_the_pass():
    (spec,) = parse_pipeline("map_to_cores{split=none,max_compartments=512,max_cores=8}")
    assert spec.options == {"split": "none", "max_compartments": 512, "max_cores": 8}


def test_needs_a_loihi_graph(rng):
    b = GraphBuilder("g", stage=ops.SPIKING)
    x = b.input("x", (4,))
    b.output(b.add(ops.IfNeuron(), [b.add(ops.Dense(4), [x], {"weight": np.eye(4, dtype=np.float32), "bias": np.zeros(4, np.float32)})]))
    with pytest.raises(PassError, match="no loihi_compartments populations; run lower_loihi first"):
        map_to_cores(b.build())


def test_large_conv_layer_is_mapped_quickly(rng):
    """A 64 x 32 x 32 layer over 32 channels (65,536 compartments): at least 64 cores, each
    within every limit, chosen in well under the test budget."""
    import time

    net = Net(rng, (32, 32, 32))
    graph = net.build(net.conv(net.host, 64, padding="same", name="big"))
    start = time.perf_counter()
    mapped = map_to_cores(graph)
    assert time.perf_counter() - start < 10
    blocks = mapped.node("big").meta["cores"]["blocks"]
    assert len(blocks) >= 64
    for b in blocks:
        use = cores.BlockUsage(b["compartments"], b["input_axons"], b["output_axons"], b["synapse_bits"])
        assert use.fits()
