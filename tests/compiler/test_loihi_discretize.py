"""compiler/loihi/discretize.py against NengoLoihi's discretization, integer for integer."""

import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from loihi_testing import (
    Layer,
    Net,
    Syn,
    blocks_of,
    conv_net,
    dense_net,
    nengo_model,
    nengo_synapse_matrix,
    normal32,
    shapes_of,
    snnc_graph,
    snnc_synapse_matrix,
)

from snnc.compiler.errors import PassError
from snnc.compiler.loihi import chip, discretize, hardware

PROPERTY = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def compare_ints(net: Net):
    """Every integer NengoLoihi's discretized blocks hold equals what discretize.py computes
    from chip.py's floats; returns the per-block (info, [weight reports]) for the test."""
    graph, layers = snnc_graph(net)
    model, nengo_blocks = nengo_model(net, discretize=True)
    shapes = shapes_of(net)
    found = []
    for layer, (pop, synapses), blocks, shape in zip(net.layers, layers, nengo_blocks, shapes[1:]):
        params = chip.compartment_params(graph, pop)
        weights = [chip.synapse_weights(graph, s) for s in synapses]
        for tile, block in zip(blocks_of(shape, layer.block_shape), blocks):
            cols = chip.block_compartments(shape, tile)
            w_max = max(chip.block_weight_max(graph, s, tile, weights=w) for s, w in zip(synapses, weights))
            ints, info = discretize.discretize_compartment(chip.restrict(params, cols), w_max)
            comp = block.compartment
            np.testing.assert_array_equal(ints.vth, comp.vth)
            np.testing.assert_array_equal(ints.bias, comp.bias)
            np.testing.assert_array_equal(np.full(cols.size, ints.decay_u), comp.decay_u)
            np.testing.assert_array_equal(np.full(cols.size, ints.decay_v), comp.decay_v)
            np.testing.assert_array_equal(np.full(cols.size, ints.refract_delay), comp.refract_delay)
            assert (ints.vmin, ints.vmax) == (comp.vmin, comp.vmax)
            theirs = comp.discretize_info
            assert (info.w_max, info.w_exp, info.v_scale) == (theirs["w_max"], theirs["w_exp"], theirs["v_scale"])
            # NengoLoihi holds b_scale (and w_scale, without weights) per compartment; ours are uniform
            np.testing.assert_array_equal(np.broadcast_to(info.b_scale, np.shape(theirs["b_scale"])), theirs["b_scale"])
            np.testing.assert_array_equal(np.broadcast_to(info.w_scale, np.shape(theirs["w_scale"])), theirs["w_scale"])
            reports = []
            for syn_node, w, syn in zip(synapses, weights, block.synapses):
                keep = chip.block_weight_mask(graph, syn_node, tile)
                syn_ints, weight_exp, report = discretize.discretize_synapse_weights(
                    w, w_max, info.w_scale, info.w_exp, keep=keep
                )
                assert weight_exp == syn.synapse_cfg.weight_exp
                pre_shape = graph.node(syn_node.inputs[0]).type.shape
                mine = snnc_synapse_matrix(syn_ints, syn_node, pre_shape, cols)
                theirs_ints = nengo_synapse_matrix(model, syn, int(np.prod(pre_shape)), cols.size)
                np.testing.assert_array_equal(mine, theirs_ints)
                assert not syn_ints[~keep].any()
                reports.append(report)
            found.append((info, reports))
    return found


def test_dense_network_ints_match_nengo_loihi(rng):
    found = compare_ints(dense_net(rng))
    assert {info.w_exp for info, _ in found} == {0}


def test_small_weights_use_negative_weight_exponents_as_nengo_loihi_does(rng):
    """Weights ~1e-5 of the threshold push the block weight exponent down to -7 and the
    synapses into the chip's lossy two-part shift (5 lost bits), integer for integer. At
    ``w_exp = -7`` the synapse's weight exponent is clamped at -6 while its mantissas keep the
    block's scale, so NengoLoihi's weights come out twice as strong: the report says so."""
    found = compare_ints(dense_net(rng, weight_scale=1e-5))
    assert min(info.w_exp for info, _ in found) == -7
    assert max(r.lost_bits for _, reports in found for r in reports) == 5
    at_minus_7 = [r for info, reports in found if info.w_exp == -7 for r in reports]
    assert at_minus_7 and all(r.weight_exp == -6 and r.scale_error == 2.0 for r in at_minus_7)


def test_conv_network_ints_match_nengo_loihi(rng):
    compare_ints(conv_net(rng))


def test_blocks_without_weights_or_bias_match_nengo_loihi(rng):
    """All-zero weights: NengoLoihi scales by the bias (or, without bias, by the threshold)."""
    zeros = np.zeros((4, 3), np.float32)
    net = Net(host_shape=(3,), layers=[
        Layer("relu", 1.0, normal32(rng, 4), [Syn(-1, zeros)]),
        Layer("lif", 1.0, np.zeros(4, np.float32), [Syn(-1, zeros)]),
    ])  # fmt: skip
    [(with_bias, [r1]), (without, [r2])] = compare_ints(net)
    assert isinstance(with_bias.w_scale, np.ndarray) and r1.nonzero == r2.nonzero == 0


def test_weak_synapse_beside_a_strong_one_is_scaled_up_as_nengo_loihi_does(rng):
    """A synapse whose weights are under 2^-6 of its block's largest gets weight_exp -6 but
    keeps its 2^dw_exp mantissa scaling (``discretize_synapse``): its integers come out
    ``scale_error`` times what the block's v_scale intends. We reproduce it and report it."""
    synapses = [Syn(-1, normal32(rng, 4, 6)), Syn(-1, normal32(rng, 4, 6, scale=1e-3))]
    net = Net(host_shape=(6,), layers=[Layer("relu", 1.0, np.zeros(4, np.float32), synapses)])
    [(info, [strong, weak])] = compare_ints(net)
    assert strong.scale_error == 1.0 and weak.scale_error == 2.0 ** (weak.weight_exp - (info.w_exp - weak.dw_exp)) > 4
    graph, [(_, [_, syn])] = snnc_graph(net)
    w = chip.synapse_weights(graph, syn)
    ints, _, _ = discretize.discretize_synapse_weights(w, info.w_max, info.w_scale, info.w_exp)
    big = np.abs(ints) >= 64 * 32  # large enough that rounding is a small part
    intended = w[big] * info.v_scale * info.u_infactor  # float voltage -> integer units
    np.testing.assert_allclose(ints[big] / intended, weak.scale_error, rtol=0.1)


def test_one_huge_weight_rounds_the_others_to_zero_and_the_report_says_so():
    w = np.array([[1000.0, 0.001, -0.002, 0.0], [0.5, 3.0, -0.003, 0.004]], dtype=np.float32)
    w_max = float(np.abs(w).max())
    ints, weight_exp, report = discretize.discretize_synapse_weights(w, w_max, 255.0 / w_max, 0)
    assert weight_exp == 0 and ints[0, 0] == 127 << 1 << 6
    small = (w != 0) & (np.abs(w) < 0.5 * 2 * w_max / 255)  # under half a mantissa step
    assert (ints[small] == 0).all() and (ints[~small & (w != 0)] != 0).all()
    assert report.rounded_to_zero == np.count_nonzero(small) == 6
    assert (report.weights, report.nonzero) == (8, 7)
    assert report.clipped == 1  # the largest weight: 127.5 rounds half to even to 128, clipped to 127
    assert report.lost_bits == 0 and report.effective_bits == 7.0  # 127 mantissa levels


def test_report_counts_clipping_in_the_chip_s_two_part_shift():
    """At weight_exp -2 the mantissa 127 rounds (half to even) to 64 halves, 128, which is
    clipped back to 127 before the shift: counted; 126 is not."""
    w = np.array([[254.0], [252.0], [-254.0]], dtype=np.float32)
    ints, weight_exp, report = discretize.discretize_synapse_weights(w, 254.0, 1.0, -2)
    theirs, _ = _nengo_synapse_ints(w, np.float32(254.0), 1.0, -2)
    np.testing.assert_array_equal(ints, theirs)
    assert weight_exp == -2 and list(ints[:, 0]) == [63 << 6, 63 << 6, -64 << 6]
    assert (report.clipped, report.lost_bits) == (1, 1)


def test_report_counts_only_the_weights_the_block_holds():
    w = np.array([[1.0, 2.0], [1e6, 0.001]], dtype=np.float32)
    keep = np.array([[True, True], [False, True]])
    ints, _, report = discretize.discretize_synapse_weights(w, 2.0, 255.0 / 2.0, 0, keep=keep)
    assert ints[1, 0] == 0 and (report.weights, report.rounded_to_zero, report.clipped) == (3, 1, 1)


def snnc_discretize(net: Net):
    """Discretize every block of ``net`` with chip.py and discretize.py alone."""
    graph, layers = snnc_graph(net)
    for layer, (pop, synapses), shape in zip(net.layers, layers, shapes_of(net)[1:]):
        params = chip.compartment_params(graph, pop)
        for tile in blocks_of(shape, layer.block_shape):
            w_max = max(chip.block_weight_max(graph, s, tile) for s in synapses)
            discretize.discretize_compartment(chip.restrict(params, chip.block_compartments(shape, tile)), w_max)


def test_threshold_too_large_for_the_weights_is_an_error_as_in_nengo_loihi(rng):
    import nengo.exceptions

    weight = normal32(rng, 2, 3, scale=1e-7)
    net = Net(host_shape=(3,), layers=[Layer("relu", 1.0, np.zeros(2, np.float32), [Syn(-1, weight)])])
    with pytest.raises(nengo.exceptions.BuildError, match="appropriate weight exponent"):
        nengo_model(net, discretize=True)
    with pytest.raises(PassError, match="no weight exponent"):
        snnc_discretize(net)


def test_weights_too_large_for_the_threshold_is_an_error_where_nengo_loihi_asserts(rng):
    weight = normal32(rng, 2, 3, scale=1e4)
    net = Net(host_shape=(3,), layers=[Layer("relu", 1.0, np.zeros(2, np.float32), [Syn(-1, weight)])])
    with pytest.raises(AssertionError):
        nengo_model(net, discretize=True)
    with pytest.raises(PassError, match="threshold rounds to zero"):
        snnc_discretize(net)


def test_refractory_delay_beyond_the_chip_is_an_error():
    params = chip.CompartmentParams(
        vth=np.ones(2), bias=np.zeros(2), decay_u=1.0, decay_v=0.1, scale_u=True, scale_v=True,
        refract_delay=hardware.REFRACT_DELAY_MAX + 1, vmin=0.0, vmax=np.inf,
    )  # fmt: skip
    with pytest.raises(PassError, match="1..63"):
        discretize.discretize_compartment(params, 1.0)


# ------------------------------------------------- float32 where NengoLoihi computes in float32


def _nengo_synapse_ints(w, w_max, w_scale, w_exp):
    from nengo_loihi.block import Synapse
    from nengo_loihi.builder import discretize as ref

    syn = Synapse(w.shape[0])
    syn.set_weights(w.copy())  # NengoLoihi discretizes in place, through views of its input
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref.discretize_synapse(syn, w_max, w_scale, w_exp)
    return np.array([row[0] for row in syn.weights]), syn.synapse_cfg.weight_exp


def test_weights_are_scaled_in_float32_as_in_nengo_loihi():
    """NengoLoihi scales its float32 weights by the float64 w_scale in float32; a weight
    whose float32 and float64 products round to different mantissas shows it."""
    w = (np.random.default_rng(0).normal(size=2_000_000) * 100).astype(np.float32)
    w_max = np.abs(w).max()
    w_scale = 255.0 / w_max
    in_f32 = np.round(w * np.float32(w_scale) / 2.0)
    in_f64 = np.round(w.astype(np.float64) * w_scale / 2.0)
    picked = np.concatenate([w[in_f32 != in_f64], [w_max]]).reshape(-1, 1)
    assert picked.size > 1
    theirs, _ = _nengo_synapse_ints(picked, w_max, w_scale, 0)
    ints, _, _ = discretize.discretize_synapse_weights(picked, float(w_max), w_scale, 0)
    np.testing.assert_array_equal(ints, theirs)
    float64_ints = np.round(picked[:-1, 0].astype(np.float64) * w_scale / 2.0).astype(np.int32) << 1 << 6
    assert (ints[:-1, 0] != float64_ints).all()


def test_weight_exponent_ratio_is_float32_as_in_nengo_loihi():
    """``dw_exp = floor(log2(w_max / w_max_i))`` in float32: a block maximum just under
    8 times the synapse's gives 3 (float64 would give 2), as NengoLoihi does."""
    synapse_max = np.float32(3.3)
    w_max = np.nextafter(np.float32(8 * synapse_max), np.float32(0))
    assert np.floor(np.log2(np.float64(w_max) / np.float64(synapse_max))) == 2
    w = np.array([[synapse_max], [-1.0], [0.25]], dtype=np.float32)
    theirs, their_exp = _nengo_synapse_ints(w, w_max, 255.0 / w_max, 0)
    ints, weight_exp, report = discretize.discretize_synapse_weights(w, float(w_max), 255.0 / w_max, 0)
    np.testing.assert_array_equal(ints, theirs)
    assert weight_exp == their_exp == -3 and report.dw_exp == 3


def test_decays_are_discretized_in_float32_as_in_nengo_loihi():
    """``round(decay_v * 4095)`` on NengoLoihi's float32 decay: a tau_rc where float32 and
    float64 products round apart, through configure_lif and discretize_compartment."""
    dt = 0.001
    tau = np.linspace(0.002, 1.0, 2_000_000)
    decay = (-np.expm1(-dt / tau)).astype(np.float32)
    apart = np.round(decay * np.float32(4095)) != np.round(decay.astype(np.float64) * 4095)
    tau_rc = float(tau[apart][0])
    layer = Layer("lif", 1.0, np.zeros(2, np.float32), [Syn(-1, np.eye(2, dtype=np.float32))], tau_rc=tau_rc)
    net = Net(host_shape=(2,), layers=[layer])
    compare_ints(net)
    graph, [(pop, _)] = snnc_graph(net)
    ints, _ = discretize.discretize_compartment(chip.compartment_params(graph, pop), 1000.0)
    assert ints.decay_v != np.round(np.float64(np.float32(-np.expm1(-dt / tau_rc))) * 4095)


# ----------------------------------------------------------------------------- properties


@PROPERTY
@given(st.integers(0, 4095), st.sampled_from([0, 1]), st.sampled_from([2**21, 1000, 7.5]))
def test_decay_magnitude_is_nengo_loihi_s(decay, offset, x0):
    from nengo_loihi.builder import discretize as ref

    with np.errstate(all="ignore"):
        np.testing.assert_array_equal(
            discretize.decay_magnitude(decay, x0=x0, offset=offset), ref.decay_magnitude(decay, x0=x0, offset=offset)
        )


@PROPERTY
@given(st.lists(st.floats(-1.2 * hardware.BIAS_MAX, 1.2 * hardware.BIAS_MAX), min_size=1, max_size=8))
def test_bias_to_manexp_is_nengo_loihi_s(values):
    from nengo_loihi.builder import discretize as ref

    bias = np.round(np.array(values))  # NengoLoihi rounds the scaled bias first
    try:
        want = ref.bias_to_manexp(bias)
    except AssertionError:
        with pytest.raises(PassError, match="bias"):
            discretize.bias_to_manexp(bias)
        return
    man, exp = discretize.bias_to_manexp(bias)
    np.testing.assert_array_equal(man, want[0])
    np.testing.assert_array_equal(exp, want[1])
    assert (np.abs(man) <= hardware.BIAS_MAN_MAX).all() and (0 <= exp).all() and (exp <= hardware.BIAS_EXP_MAX).all()


@PROPERTY
@given(st.lists(st.floats(0, 1.01 * hardware.VTH_MAX), min_size=1, max_size=8))
def test_vth_to_manexp_is_nengo_loihi_s(values):
    from nengo_loihi.builder import discretize as ref

    vth = np.round(np.array(values))
    try:
        want = ref.vth_to_manexp(vth)
    except AssertionError:
        with pytest.raises(PassError, match="threshold"):
            discretize.vth_to_manexp(vth)
        return
    man, exp = discretize.vth_to_manexp(vth)
    np.testing.assert_array_equal(man, want[0])
    np.testing.assert_array_equal(exp, want[1])


def _nengo_compartment(params):
    from nengo_loihi.block import Compartment

    comp = Compartment(params.n_compartments)
    comp.vth[:], comp.bias[:] = params.vth, params.bias
    comp.decay_u[:], comp.decay_v[:] = params.decay_u, params.decay_v
    comp.scale_u, comp.scale_v = params.scale_u, params.scale_v
    comp.refract_delay[:] = params.refract_delay
    comp.vmin, comp.vmax = params.vmin, params.vmax
    return comp


@st.composite
def compartments(draw):
    n = draw(st.integers(1, 5))
    dt = 0.001
    vth = draw(st.sampled_from([1.0, 1.0 / dt, draw(st.floats(1e-3, 1e5))]))
    lif = draw(st.booleans())
    tau_rc = draw(st.floats(2e-3, 1.0))
    decay_v = float(np.float32(-np.expm1(-dt / tau_rc))) if lif else 0.0
    tau_s = draw(st.sampled_from([0.0, 0.005, draw(st.floats(1e-3, 0.5))]))
    decay_u = 1.0 if tau_s == 0 else float(np.float32(-np.expm1(-dt / tau_s)))
    bias_scale = draw(st.sampled_from([0.0, 1e-9, 1.0, draw(st.floats(1e-6, 1e6))]))
    bias = np.float32(np.array(draw(st.lists(st.floats(-1, 1), min_size=n, max_size=n))) * bias_scale)
    return chip.CompartmentParams(
        vth=np.full(n, np.float32(vth), dtype=np.float64), bias=bias.astype(np.float64),
        decay_u=decay_u, decay_v=decay_v, scale_u=True, scale_v=lif,
        refract_delay=draw(st.integers(1, 63)), vmin=0.0, vmax=np.inf,
    )  # fmt: skip


@PROPERTY
@given(compartments(), st.sampled_from([0.0, 1e-9, 1.0, 255.0, 3e4]) | st.floats(1e-6, 1e7))
def test_discretize_compartment_is_nengo_loihi_s(params, w_max):
    import nengo.exceptions
    from nengo_loihi.builder import discretize as ref

    comp = _nengo_compartment(params)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            theirs = ref.discretize_compartment(comp, np.float32(w_max))
    except (nengo.exceptions.BuildError, AssertionError):
        with pytest.raises(PassError):
            discretize.discretize_compartment(params, w_max)
        return
    ints, info = discretize.discretize_compartment(params, w_max)
    for name in ("vth", "bias", "decay_u", "decay_v", "refract_delay"):
        np.testing.assert_array_equal(np.broadcast_to(getattr(ints, name), comp.vth.shape), getattr(comp, name))
    assert (ints.vmin, ints.vmax) == (comp.vmin, comp.vmax)
    assert (info.w_max, info.w_exp, info.v_scale) == (theirs["w_max"], theirs["w_exp"], theirs["v_scale"])
    np.testing.assert_array_equal(np.broadcast_to(info.b_scale, comp.vth.shape), theirs["b_scale"])
    np.testing.assert_array_equal(np.broadcast_to(info.w_scale, np.shape(theirs["w_scale"])), theirs["w_scale"])
    np.testing.assert_array_equal(ints.vth_mantissa << ints.vth_exponent, ints.vth)
    np.testing.assert_array_equal(ints.bias_mantissa << ints.bias_exponent, ints.bias)


@PROPERTY
@given(
    st.lists(st.floats(-1, 1, width=32), min_size=1, max_size=12),
    st.integers(1, 3),
    st.floats(1.0, 2**12),
    st.integers(-7, 0),
    st.booleans(),
)
def test_discretize_synapse_weights_is_nengo_loihi_s(values, n_post, headroom, w_exp, array_scale):
    """Random weights, block maxima at or above the synapse's, every block weight exponent,
    and both a scalar w_scale (weights scaled in float32) and a per-compartment array
    (float64), against NengoLoihi's discretize_synapse."""
    from nengo_loihi.block import Synapse
    from nengo_loihi.builder import discretize as ref

    values = values + [0.0] * (-len(values) % n_post)
    w = (np.array(values, dtype=np.float32) * np.float32(1000)).reshape(-1, n_post)
    w_max = np.float32(max(float(np.abs(w).max()), 1e-3) * headroom)
    w_scale = 255.0 / w_max
    syn = Synapse(w.shape[0])
    syn.set_weights(w.copy())  # NengoLoihi discretizes in place, through views of its input
    scale = np.full(n_post, w_scale) if array_scale else w_scale
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref.discretize_synapse(syn, w_max, scale, w_exp)
    theirs = np.array([row[0] for row in syn.weights])
    mine_scale = np.array([w_scale]) if array_scale else float(w_scale)
    ints, weight_exp, report = discretize.discretize_synapse_weights(w, float(w_max), mine_scale, w_exp)
    np.testing.assert_array_equal(ints, theirs)
    assert weight_exp == syn.synapse_cfg.weight_exp
    stored = discretize.stored_weights(ints, weight_exp)
    assert (stored >= hardware.STORED_WEIGHT_MIN).all() and (stored <= hardware.STORED_WEIGHT_MAX).all()
    assert report.rounded_to_zero == np.count_nonzero((w != 0) & (ints == 0))


@PROPERTY
@given(st.lists(st.floats(-255, 255, width=32), min_size=1, max_size=16), st.integers(-6, 7))
def test_discretize_weights_is_nengo_loihi_s(values, weight_exp):
    from nengo_loihi.block import SynapseConfig
    from nengo_loihi.builder import discretize as ref

    w = np.array(values, dtype=np.float32)
    cfg = SynapseConfig(weight_bits=7, fanout_type=1, weight_exp=weight_exp)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = ref.discretize_weights(cfg, w)
    np.testing.assert_array_equal(discretize.discretize_weights(w, weight_exp), want)
