"""The spiking interpreter: each stateful op against a plain-Python (or nengo) reference run
step by step, the readout, outputs at several T from one run, precision, and errors."""

import math

import numpy as np
import pytest

from pass_testing import conv, dense
from snnc.compiler import ops
from snnc.compiler.errors import DataError, SnncError
from snnc.compiler.graph import GraphBuilder
from snnc.compiler.passes import PassManager
from snnc.compiler.simulate import EventTally, LayerActivity, overall_bits, significant_bits, simulate


def per_step(graph, x, steps, name="output"):
    """The value of output ``name`` at every step 1..steps: ``(steps, N, ...)``."""
    outputs = simulate(graph, x, range(1, steps + 1)).outputs
    return np.stack([outputs[t][name] for t in range(1, steps + 1)])


def if_reference(currents, threshold, gain, reset, v_init, amplitude):
    """Integrate-and-fire neurons stepped one by one in plain Python: ``currents[t][i]`` is
    neuron i's input at step t + 1; returns each step's outputs."""
    v = [float(v_init)] * len(currents[0])
    out = []
    for x_t in currents:
        row = []
        for i, x in enumerate(x_t):
            v[i] += gain * float(x)
            spiked = v[i] >= threshold
            if spiked:
                v[i] = v[i] - threshold if reset == "subtract" else 0.0
            row.append(amplitude if spiked else 0.0)
        out.append(row)
    return np.array(out)


IF_PARAMS = [
    dict(threshold=1.0, gain=1.0, reset="subtract", v_init=0.0, amplitude=1.0),
    dict(threshold=1.0, gain=1.0, reset="zero", v_init=0.0, amplitude=1.0),
    dict(threshold=2.0, gain=0.5, reset="subtract", v_init=1.0, amplitude=3.0),
    dict(threshold=0.7, gain=2.0, reset="zero", v_init=0.35, amplitude=0.5),
]


@pytest.mark.parametrize("params", IF_PARAMS, ids=lambda p: f"{p['reset']}-vth{p['threshold']}-g{p['gain']}")
def test_if_neuron_on_constant_input(params):
    x = np.float32([[-0.5, 0.0, 0.1, 0.3, 0.5, 0.7, 1.0, 1.3, 2.5]])
    b = GraphBuilder("g", stage="spiking")
    b.output(b.add(ops.IfNeuron(**params), [b.input("x", (9,))]))
    steps = 25
    want = if_reference([x[0]] * steps, **params)
    np.testing.assert_array_equal(per_step(b.build(), x, steps)[:, 0], want)


@pytest.mark.parametrize("params", IF_PARAMS, ids=lambda p: f"{p['reset']}-vth{p['threshold']}-g{p['gain']}")
def test_if_neuron_on_spike_currents(params, rng):
    """Input that changes each step, positive and negative: spikes of a first IF layer
    through an affine."""
    n = 6
    x = rng.uniform(0, 1, (1, n)).astype(np.float32)
    scale = np.float32([1.5, -1.0, 0.8, 2.0, -0.4, 1.0])
    shift = np.float32([0.0, 0.6, -0.2, 0.1, 0.3, -0.5])
    b = GraphBuilder("g", stage="spiking")
    first = b.add(ops.IfNeuron(), [b.input("x", (n,))])
    b.output(b.add(ops.IfNeuron(**params), [b.add(ops.Affine(), [first], {"scale": scale, "shift": shift})]))
    steps = 40
    spikes = if_reference([x[0]] * steps, 1.0, 1.0, "subtract", 0.0, 1.0)
    currents = spikes * scale.astype(np.float64) + shift.astype(np.float64)
    np.testing.assert_array_equal(per_step(b.build(), x, steps)[:, 0], if_reference(currents, **params))


@pytest.mark.parametrize(
    "tau_rc, tau_ref, gain, bias, amplitude",
    [(0.02, 0.002, 1.0, 1.0, 1.0), (0.05, 0.004, 3.0, 0.5, 0.25), (0.01, 0.0, 2.0, 1.0, 2.0)],
)
def test_lif_neuron_steps_as_nengo_lif(tau_rc, tau_ref, gain, bias, amplitude, rng):
    """Constant and changing input currents; the membrane and refractory state must follow
    ``nengo.LIF.step`` exactly, so the spike trains are equal."""
    import nengo

    dt, n, steps = 0.001, 8, 300
    x = rng.uniform(-0.5, 3.0, (2, n)).astype(np.float32)
    b = GraphBuilder("g", stage="spiking")
    inp = b.input("x", (n,))
    lif = ops.LifNeuron(tau_rc, tau_ref, dt, gain, bias, amplitude)
    b.output(b.add(lif, [inp]))  # constant current
    first = b.add(ops.IfNeuron(threshold=2.0), [inp])
    current = b.add(ops.Affine(), [first], {"scale": np.full(n, 2.5, np.float32), "shift": np.zeros(n, np.float32)})
    b.output(b.add(lif, [current]), name="varying")
    graph = b.build()

    nengo_lif = nengo.LIF(tau_rc=tau_rc, tau_ref=tau_ref, amplitude=amplitude)
    x64 = x.astype(np.float64).ravel()
    if_spikes = np.stack(
        [if_reference([row] * steps, 2.0, 1.0, "subtract", 0.0, 1.0) for row in x.astype(np.float64)], axis=1
    )
    for name, currents in (("output", [x64] * steps), ("varying", [s.ravel() * 2.5 for s in if_spikes])):
        voltage, refractory, out = np.zeros(2 * n), np.zeros(2 * n), np.zeros(2 * n)
        want = []
        for cur in currents:
            nengo_lif.step(dt, gain * cur + bias, out, voltage, refractory)
            want.append((out * dt).reshape(2, n).copy())
        got = per_step(graph, x, steps, name)
        np.testing.assert_allclose(got, np.array(want), rtol=1e-12, atol=0, err_msg=name)
        assert got.sum() > 0


def gate_reference(values, kernel, stride, pads):
    """The max gate in plain loops: each window outputs how much the largest input it has
    accumulated so far grew this step (padding never wins)."""
    steps, n, c, h, w = values.shape
    (kh, kw), (sh, sw), (pt, pl, pb, pr) = kernel, stride, pads
    ho, wo = (h + pt + pb - kh) // sh + 1, (w + pl + pr - kw) // sw + 1
    acc = np.zeros((n, c, h, w))
    previous = np.zeros((n, c, ho, wo))
    out = np.zeros((steps, n, c, ho, wo))
    for t in range(steps):
        acc += values[t]
        for b_, ch, i, j in np.ndindex(n, c, ho, wo):
            best = max(
                acc[b_, ch, r, q]
                for r in range(i * sh - pt, i * sh - pt + kh)
                for q in range(j * sw - pl, j * sw - pl + kw)
                if 0 <= r < h and 0 <= q < w
            )
            out[t, b_, ch, i, j] = best - previous[b_, ch, i, j]
            previous[b_, ch, i, j] = best
    return out


@pytest.mark.parametrize(
    "kernel, stride, pads",
    [((2, 2), (2, 2), (0, 0, 0, 0)), ((3, 3), (2, 2), (1, 1, 1, 1)), ((2, 3), (1, 2), (0, 1, 1, 0))],
)
@pytest.mark.parametrize("currents", [False, True], ids=["spikes", "currents"])
def test_max_gate(kernel, stride, pads, currents, rng):
    shape = (2, 4, 5)
    x = rng.uniform(0, 1, (2, *shape)).astype(np.float32)
    b = GraphBuilder("g", stage="spiking")
    gated = b.add(ops.IfNeuron(), [b.input("x", shape)])
    if currents:  # signed values that change each step
        gated = b.add(ops.Affine(), [gated], {"scale": np.float32([1.0, -2.0]), "shift": np.float32([0.25, 0.5])})
    b.output(gated, name="gated")
    b.output(b.add(ops.SpikeMaxPool2d(kernel, stride, pads), [gated]))
    graph = b.build()
    steps = 12
    inputs = per_step(graph, x, steps, "gated").astype(np.float64)
    np.testing.assert_array_equal(per_step(graph, x, steps), gate_reference(inputs, kernel, stride, pads))


@pytest.mark.parametrize(
    "kernel, stride, pads",
    [((2, 2), (2, 2), (0, 0, 0, 0)), ((3, 3), (2, 2), (0, 0, 0, 0)), ((3, 3), (2, 2), (1, 1, 1, 1))],
    ids=["2x2", "3x3_stride2", "3x3_stride2_padded"],
)
def test_max_gate_counts_the_windows_largest_spike_count(kernel, stride, pads, rng):
    """Constant inputs through IF neurons (threshold 1, v_init 0.5): neuron i has fired
    ``floor(t * x_i + 1/2)`` times after t steps. At every step the gate's output count is the
    largest of these in its window, overlapping windows included (closed form, plain loops)."""
    shape, steps = (3, 7, 7), 24
    x = rng.uniform(0, 1, (2, *shape))
    b = GraphBuilder("g", stage="spiking")
    spikes = b.add(ops.IfNeuron(v_init=0.5), [b.input("x", shape)])
    b.output(b.add(ops.SpikeMaxPool2d(kernel, stride, pads), [spikes]))
    gate_counts = np.cumsum(per_step(b.build(), x.astype(np.float32), steps), axis=0)
    (kh, kw), (sh, sw), (pt, pl, _, _) = kernel, stride, pads
    for t in range(1, steps + 1):
        counts = np.floor(t * x.astype(np.float32).astype(np.float64) + 0.5)
        for n, c, i, j in np.ndindex(gate_counts.shape[1:]):
            rows = range(max(i * sh - pt, 0), min(i * sh - pt + kh, shape[1]))
            cols = range(max(j * sw - pl, 0), min(j * sw - pl + kw, shape[2]))
            want = max(counts[n, c, r, q] for r in rows for q in cols)
            assert gate_counts[t - 1, n, c, i, j] == want, (t, n, c, i, j)


def test_burst_activity_counts_events_and_reports_bits():
    """bursts=3 on inputs 0.5 (one event every other step), 1.5 and 9 (three per step, the
    cap): counts are events, saturation means three per step, an event carries log2(4) bits."""
    x = np.array([[0.5, 1.5, 9.0]], dtype=np.float32)
    b = GraphBuilder("g", stage="spiking")
    spikes = b.add(ops.IfNeuron(bursts=3, amplitude=0.5), [b.input("x", (3,))], name="bursty")
    b.output(spikes, name="spikes")
    result = simulate(b.build(), x, [8])
    activity = result.activity["bursty"].to_dict()
    # events over 8 steps: 4, floor(8 * 1.5) = 12, 3 * 8 = 24; each worth 0.5
    assert activity["spikes_per_example"] == 4 + 12 + 24
    assert activity["max_neuron_rate"] == 3.0 and activity["saturated_fraction"] == pytest.approx(1 / 3)
    assert activity["bits_per_event"] == 2.0
    # step 8: v = 0.5 + 0.5 -> 1 event; 0.5 + 1.5 -> 2; 3 (the cap), each worth 0.5
    np.testing.assert_array_equal(result.outputs[8]["spikes"], [[0.5, 1.0, 1.5]])
    b = GraphBuilder("g", stage="spiking")
    b.output(b.add(ops.IfNeuron(), [b.input("x", (3,))], name="binary"))
    binary = simulate(b.build(), x, [8]).activity["binary"].to_dict()
    assert "bits_per_event" not in binary and binary["saturated_fraction"] == pytest.approx(2 / 3)


def test_significant_bits_are_the_binary_digits_of_the_event_sizes():
    for size in range(300):
        assert significant_bits(np.array([float(size)])) == size.bit_length(), size
    sizes = np.arange(0, 70).reshape(7, 10)
    assert significant_bits(sizes) == sum(int(n).bit_length() for n in sizes.ravel())
    assert significant_bits(np.array([True, False, True])) == 2


def test_event_bits_in_closed_form():
    """Two examples, three neurons, three steps of known events (one neuron sends negative
    ones): per neuron the widest range over steps and examples, 0 included."""
    events = np.array([  # (step, example, neuron)
        [[0, 3, -2], [0, 1, 0]],
        [[1, 0, 0], [0, 12, 1]],
        [[0, 3, -1], [0, 0, 0]],
    ], dtype=np.float64)
    tally = EventTally((2, 3))
    for step in events:
        tally.add(step)
    activity = LayerActivity(3, bits_per_event=np.log2(13))
    activity.add_batch(np.abs(events).sum(axis=0), 3, events=tally)
    # ranges: {0, 1} -> log2 2; {0, 1, 3, 12} -> log2 13; {-2, -1, 0, 1} -> log2 4
    assert activity.bits_per_activity == pytest.approx((1 + np.log2(13) + 2) / 3)
    # nonzero events 1, 3, 1, 3, 12, -2, 1, -1: 1 + 2 + 1 + 2 + 4 + 2 + 1 + 1 significant bits
    assert activity.nonzero_events == 8
    assert activity.significant_bits_per_weight == pytest.approx(14 / 8)


def test_binary_event_bits_follow_from_the_spike_counts(rng):
    """Binary events tallied step by step and derived from their counts alone (what backends
    that report counts give) agree exactly."""
    raster = rng.random((20, 5, 7)) < 0.1  # (step, example, neuron)
    raster[:, :, 0] = False  # a silent neuron
    stepped = EventTally((5, 7))
    for step in raster:
        stepped.add(step)
    counts = raster.sum(axis=0)
    derived = EventTally.of_binary(counts)
    np.testing.assert_array_equal(derived.high, stepped.high)
    np.testing.assert_array_equal(derived.low, stepped.low)
    assert derived.nonzero == stepped.nonzero == counts.sum()
    assert derived.significant_bits == stepped.significant_bits == counts.sum()
    from_counts, from_steps = LayerActivity(7), LayerActivity(7)
    from_counts.add_batch(counts, 20)
    from_steps.add_batch(counts, 20, events=stepped)
    assert from_counts.to_dict() == from_steps.to_dict()
    assert from_counts.bits_per_activity == pytest.approx(np.mean(raster.any(axis=(0, 1))))


def test_burst_bits_against_a_hand_count_of_the_interpreters_events(rng):
    """IF with bursts=3 on a small graph: bits per activity and significant bits from the
    events the interpreter emitted at every step (its outputs), counted by hand."""
    b = GraphBuilder("g", stage="spiking")
    x = b.input("x", (6,))
    first = b.add(ops.IfNeuron(bursts=3, amplitude=0.5, gain=1.7), [x], name="first")
    b.output(first, name="first_out")
    second = b.add(ops.IfNeuron(bursts=3, amplitude=0.5, threshold=2.0), [dense(b, rng, first, 4)], name="second")
    b.output(second, name="second_out")
    graph = b.build()
    data = rng.uniform(-0.5, 2.5, (5, 6)).astype(np.float32)
    steps = 12
    result = simulate(graph, data, range(1, steps + 1), batch_size=2)  # several batches
    overall_bits_sum, overall_events, overall_neurons, overall_width = 0, 0, 0, 0.0
    for name in ("first", "second"):
        # events per (step, example, neuron), exact small integers: output / amplitude
        events = np.stack([result.outputs[t][f"{name}_out"] for t in range(1, steps + 1)]) / 0.5
        sizes = [int(n) for n in np.rint(events).ravel() if n]
        widths = [math.log2(1 + int(np.rint(events[:, :, i].max()))) for i in range(events.shape[2])]
        assert 1 in sizes and max(sizes) > 1, "vacuous: the layer needs single spikes and bursts"
        activity = result.activity[name]
        assert activity.nonzero_events == len(sizes)
        assert activity.significant_bits_per_weight == pytest.approx(sum(n.bit_length() for n in sizes) / len(sizes))
        assert activity.bits_per_activity == pytest.approx(sum(widths) / len(widths))
        overall_bits_sum += sum(n.bit_length() for n in sizes)
        overall_events += len(sizes)
        overall_neurons += len(widths)
        overall_width += sum(widths)
    assert overall_bits(result.activity) == {
        "bits_per_activity": pytest.approx(overall_width / overall_neurons),
        "significant_bits_per_weight": pytest.approx(overall_bits_sum / overall_events),
    }


def test_bits_of_multi_spike_events_from_counts_alone_are_not_measured():
    """A backend that reports only spike totals cannot tell a burst of 2 from two single
    spikes: the bits are None (and so is the overall measure), not a guess."""
    bursts = LayerActivity(2, bits_per_event=2.0)
    bursts.add_batch(np.array([[4, 0]]), 4)
    binary = LayerActivity(2)
    binary.add_batch(np.array([[3, 0]]), 4)
    assert bursts.to_dict()["bits_per_activity"] is None and bursts.to_dict()["significant_bits_per_weight"] is None
    assert not bursts.bits_measured and binary.bits_measured
    assert overall_bits({"a": bursts, "b": binary}) == {"bits_per_activity": None, "significant_bits_per_weight": None}
    assert overall_bits({"b": binary}) == {"bits_per_activity": 0.5, "significant_bits_per_weight": 1.0}


def test_readout_is_the_running_mean(rng):
    x = rng.uniform(0, 1, (3, 5)).astype(np.float32)
    b = GraphBuilder("g", stage="spiking")
    inp = b.input("x", (5,))
    spikes = b.add(ops.IfNeuron(amplitude=0.5), [inp])
    b.output(spikes, name="spikes")
    b.output(b.add(ops.Readout(), [spikes]), name="mean")
    b.output(b.add(ops.Readout(), [inp]), name="constant")
    graph = b.build()
    steps = 30
    s = per_step(graph, x, steps, "spikes").astype(np.float64)
    running_mean = np.cumsum(s, axis=0) / np.arange(1, steps + 1)[:, None, None]
    np.testing.assert_allclose(per_step(graph, x, steps, "mean"), running_mean, rtol=1e-6)
    np.testing.assert_array_equal(per_step(graph, x, steps, "constant"), np.broadcast_to(x, (steps, *x.shape)))


# ----------------------------------------------------------------------------- whole networks


@pytest.fixture
def snn(rng):
    """A small converted CNN (gate, if neurons, membrane readout) and inputs for it."""
    b = GraphBuilder("cnn")
    x = b.input("input", (2, 6, 6))
    x = b.add(ops.ReLU(), [conv(b, rng, x, 4)])
    x = b.add(ops.MaxPool2d((2, 2), (2, 2)), [x])
    x = b.add(ops.ReLU(), [conv(b, rng, x, 4)])
    x = b.add(ops.ReLU(), [dense(b, rng, b.add(ops.Reshape((36,)), [x]), 10)])
    b.output(dense(b, rng, x, 3))
    data = rng.uniform(0, 1, (20, 2, 6, 6)).astype(np.float32)
    graph, _ = PassManager("default").run(b.build(), calibration=data)
    return graph, data


def test_one_run_records_every_requested_t(snn):
    graph, x = snn
    together = simulate(graph, x, [40, 5, 17, 5]).outputs
    assert sorted(together) == [5, 17, 40]
    for t in (5, 17, 40):
        np.testing.assert_array_equal(together[t]["output"], simulate(graph, x, [t]).outputs[t]["output"])


def test_batches_do_not_change_the_result(snn):
    graph, x = snn
    whole = simulate(graph, x, [16]).outputs[16]["output"]
    np.testing.assert_array_equal(simulate(graph, x, [16], batch_size=7).outputs[16]["output"], whole)


def test_float32_precision_is_close_to_float64(snn):
    # measured on this net: no spike differs; outputs differ by float32 rounding (mean ~1e-8,
    # max ~1e-7). A membrane within rounding of the threshold could move one spike, so the
    # bound is on the mean.
    graph, x = snn
    t = (8, 64)
    double = simulate(graph, x, t).outputs
    single = simulate(graph, x, t, precision="float32").outputs
    for steps in t:
        diff = np.abs(single[steps]["output"] - double[steps]["output"])
        assert diff.mean() < 1e-5, steps


def test_activity_statistics():
    # threshold 1, v_init 0: inputs 0, 0.5, 1 fire 0, 2 and 4 times in 4 steps
    b = GraphBuilder("g", stage="spiking")
    b.output(b.add(ops.IfNeuron(), [b.input("x", (3,))], name="neurons"))
    x = np.float32([[0.0, 0.5, 1.0], [0.0, 0.5, 1.0]])
    activity = simulate(b.build(), x, [2, 4], batch_size=1).activity["neurons"]
    assert activity.to_dict() == {
        "neurons": 3,
        "mean_rate": 0.5,
        "max_neuron_rate": 1.0,
        "silent_fraction": pytest.approx(1 / 3),
        "saturated_fraction": pytest.approx(1 / 3),
        "spikes_per_example": 6.0,
        "bits_per_activity": pytest.approx(2 / 3),  # two of three neurons spiked: 1 bit each
        "significant_bits_per_weight": 1.0,  # every event is one spike
        "error_vs_ann": None,  # no reference given
    }


# ----------------------------------------------------------------------------- errors


def test_empty_data_is_a_data_error(snn):
    graph, x = snn
    with pytest.raises(DataError, match=r"no examples to simulate \(the data is empty\)"):
        simulate(graph, x[:0], [8])


@pytest.mark.parametrize("timesteps", [[], [0], [4, -1]])
def test_bad_timesteps(snn, timesteps):
    graph, x = snn
    with pytest.raises(DataError, match="time steps must be positive integers"):
        simulate(graph, x, timesteps)


def test_bad_input_shape(snn):
    graph, x = snn
    with pytest.raises(DataError, match=r"input %input expects examples of shape \[2, 6, 6\]"):
        simulate(graph, x[:, :1], [8])


def test_float_graphs_and_bad_precision_are_refused(snn):
    graph, x = snn
    b = GraphBuilder("ann")
    b.output(b.add(ops.ReLU(), [b.input("x", (2,))]))
    with pytest.raises(SnncError, match="graph ann is a float graph; simulate runs spiking graphs"):
        simulate(b.build(), np.zeros((1, 2), np.float32), [4])
    with pytest.raises(SnncError, match="precision must be float32 or float64, got 'float16'"):
        simulate(graph, x, [4], precision="float16")


def test_layer_error_against_the_float_network_falls_with_t(rng):
    """With the balanced float graph as reference, each population's mean output is compared
    with its ReLU's activations: the error is where accuracy goes, and the rate code shrinks it."""
    from pass_testing import inputs_for, residual_net

    graph = residual_net(rng)
    x = inputs_for(graph, rng, 64)
    manager = PassManager("rate", keep_graphs=True)
    spiking, records = manager.run(graph, calibration=x)
    balanced = records[-2].graph
    errors = {t: simulate(spiking, x, [t], reference=balanced).activity for t in (4, 64)}
    assert set(errors[4]) == {n.name for n in spiking.nodes if n.op.NAME == "if_neuron"}
    for name in errors[4]:
        early, late = errors[4][name].error_vs_ann, errors[64][name].error_vs_ann
        assert 0 < late < early, (name, early, late)
    assert simulate(spiking, x, [4]).activity[name].error_vs_ann is None  # no reference, no error
