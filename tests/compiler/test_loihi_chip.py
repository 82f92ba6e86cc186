"""compiler/loihi/chip.py against NengoLoihi's own float blocks and split synapses."""

import numpy as np
import pytest
from loihi_testing import (
    Layer,
    Net,
    Syn,
    normal32,
    blocks_of,
    conv_net,
    dense_net,
    nengo_model,
    nengo_synapse_matrix,
    shapes_of,
    snnc_graph,
    snnc_synapse_matrix,
)

from snnc.compiler.errors import PassError
from snnc.compiler.loihi import chip, hardware


def compare_floats(net: Net):
    """Every float NengoLoihi's split blocks hold equals what chip.py computes."""
    graph, layers = snnc_graph(net)
    model, nengo_blocks = nengo_model(net)
    shapes = shapes_of(net)
    for layer, (pop, synapses), blocks, shape in zip(net.layers, layers, nengo_blocks, shapes[1:]):
        params = chip.compartment_params(graph, pop)
        weights = [chip.synapse_weights(graph, s) for s in synapses]
        tiles = blocks_of(shape, layer.block_shape)
        assert len(tiles) == len(blocks)
        for tile, block in zip(tiles, blocks):
            cols = chip.block_compartments(shape, tile)
            np.testing.assert_array_equal(cols, model.block_comp_map[block].list)
            comp, mine = block.compartment, chip.restrict(params, cols)
            np.testing.assert_array_equal(mine.vth, comp.vth)
            np.testing.assert_array_equal(mine.bias, comp.bias)
            np.testing.assert_array_equal(np.full(cols.size, mine.decay_u, np.float32), comp.decay_u)
            np.testing.assert_array_equal(np.full(cols.size, mine.decay_v, np.float32), comp.decay_v)
            np.testing.assert_array_equal(np.full(cols.size, mine.refract_delay), comp.refract_delay)
            flags = (mine.scale_u, mine.scale_v, mine.vmin, mine.vmax)
            assert flags == (comp.scale_u, comp.scale_v, comp.vmin, comp.vmax)
            assert len(block.synapses) == len(synapses)
            for syn_node, w, syn in zip(synapses, weights, block.synapses):
                pre_shape = graph.node(syn_node.inputs[0]).type.shape
                n_pre = int(np.prod(pre_shape))
                theirs = nengo_synapse_matrix(model, syn, n_pre, cols.size)
                np.testing.assert_array_equal(snnc_synapse_matrix(w, syn_node, pre_shape, cols), theirs)
                assert chip.block_weight_max(graph, syn_node, tile) == syn.max_abs_weight()
                assert chip.block_weight_max(graph, syn_node, tile, weights=w) == syn.max_abs_weight()
    return graph, layers


def test_dense_network_floats_match_nengo_loihi(rng):
    graph, layers = compare_floats(dense_net(rng))
    relu, lif = (chip.compartment_params(graph, pop) for pop, _ in layers)
    # the numbers themselves, not just agreement: configure_relu and configure_lif
    assert relu.vth[0] == 1000.0 and relu.decay_v == 0.0 and relu.refract_delay == 1 and not relu.scale_v
    assert lif.vth[0] == 1.0 and lif.refract_delay == 4 and lif.scale_v
    assert lif.decay_v == np.float32(-np.expm1(-0.001 / 0.03))
    assert relu.decay_u == lif.decay_u == 1.0 and relu.vmax == np.inf


def test_small_weights_floats_match_nengo_loihi(rng):
    compare_floats(dense_net(rng, weight_scale=1e-3))


def test_conv_network_floats_match_nengo_loihi(rng):
    compare_floats(conv_net(rng))


def test_conv_block_mask_keeps_only_taps_inside_the_input(rng):
    """A corner block of a padded conv holds no weights on the taps that only see padding:
    its max ignores a huge weight there, which the whole synapse's max includes."""
    kernel = normal32(rng, 2, 1, 3, 3)
    kernel[:, :, 0, 0] = 1000.0  # the top-left tap: outside the input for output row/col 0
    net = Net(host_shape=(1, 4, 4), layers=[Layer("relu", 1.0, np.zeros(32, np.float32), block_shape=(2, 1, 1),
              synapses=[Syn(-1, kernel, kind="conv", padding="same")])])  # fmt: skip
    graph, [(pop, [syn])] = snnc_graph(net)
    corner = {"origin": [0, 0, 0], "shape": [2, 1, 1]}
    mask = chip.block_weight_mask(graph, syn, corner)
    assert mask[:, :, 1:, 1:].all() and not mask[:, :, 0, :].any() and not mask[:, :, :, 0].any()
    weights = chip.synapse_weights(graph, syn)
    assert chip.block_weight_max(graph, syn, corner) == np.abs(weights[:, :, 1:, 1:]).max() < 1000.0 / net.dt
    inner = {"origin": [0, 1, 1], "shape": [2, 1, 1]}
    assert chip.block_weight_max(graph, syn, inner) == 1000.0 / net.dt
    model, [blocks] = nengo_model(net)
    assert blocks[0].synapses[0].max_abs_weight() == chip.block_weight_max(graph, syn, corner)
    assert blocks[5].synapses[0].max_abs_weight() == chip.block_weight_max(graph, syn, inner)


def test_dense_and_conv_scale_by_dt_as_nengo_loihi_does(rng):
    """Dense weights are multiplied by 1.0/dt, conv kernels divided by dt: for dt = 0.003
    the two round differently on a few weights; each matches its NengoLoihi path."""
    dt = 0.003
    candidates = normal32(rng, 200_000).astype(np.float64)
    differ = candidates[(candidates * (1.0 / dt)).astype(np.float32) != (candidates / dt).astype(np.float32)]
    w = differ[:3].astype(np.float32).reshape(3, 1, 1, 1)
    assert w.size == 3
    zeros = np.zeros(3, np.float32)
    dense = Net(host_shape=(1,), dt=dt, layers=[Layer("relu", 1.0, zeros, [Syn(-1, w[:, :, 0, 0])])])
    conv = Net(host_shape=(1, 1, 1), dt=dt, layers=[Layer("relu", 1.0, zeros, [Syn(-1, w, kind="conv")])])
    results = []
    for net in (dense, conv):
        graph, [(_, [syn])] = compare_floats(net)
        results.append(chip.synapse_weights(graph, syn).reshape(-1))
    assert (results[0] != results[1]).all()


def test_lif_with_too_long_tau_rc_is_an_error_as_in_nengo_loihi(rng):
    import nengo.exceptions

    layer = Layer("lif", 1.0, np.zeros(2, np.float32), [Syn(-1, normal32(rng, 2, 2))], tau_rc=10.0)
    net = Net(host_shape=(2,), layers=[layer])
    graph, [(pop, _)] = snnc_graph(net)
    with pytest.raises(PassError, match="tau_rc=10.0"):
        chip.compartment_params(graph, pop)
    with pytest.raises(nengo.exceptions.BuildError, match="tau_rc"):
        nengo_model(net)


def test_hardware_constants_are_nengo_loihi_s():
    from nengo_loihi import block
    from nengo_loihi.builder import discretize
    from nengo_loihi.hardware import nxsdk_objects

    for name in ("MAX_COMPARTMENTS", "MAX_IN_AXONS", "MAX_OUT_AXONS", "MAX_SYNAPSE_BITS"):
        assert getattr(hardware, name) == getattr(block, name)
    for name in ("VTH_MAN_MAX", "VTH_EXP", "VTH_MAX", "BIAS_MAN_MAX", "BIAS_EXP_MAX", "BIAS_MAX", "Q_BITS", "U_BITS"):
        assert getattr(hardware, name) == getattr(discretize, name)
    assert hardware.REFRACT_DELAY_MAX == nxsdk_objects.CompartmentConfig.REFRACT_DELAY_MAX
    assert hardware.MAX_DECAY == nxsdk_objects.CompartmentConfig.DECAY_U_MAX
    assert hardware.DECAY_SCALE_TH == block.Compartment.DECAY_SCALE_TH
    cfg = block.SynapseConfig(weight_bits=7, fanout_type=1)
    assert (hardware.REAL_WEIGHT_BITS, hardware.WEIGHT_SHIFT_BITS) == (cfg.real_weight_bits, cfg.shift_bits)
