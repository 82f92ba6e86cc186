"""Sigma-delta neurons (compiler/neurons/sigma_delta.py): the step against its equations and
against keras-spiking's quantizer, the running error of the quantizer (papers.md A1), the cap,
the IF neurons it equals on Loihi and the refusals there, and a host population in refsim."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pass_testing import notes
from snnc.compiler import neurons, ops
from snnc.compiler.errors import PassError
from snnc.compiler.graph import GraphBuilder
from snnc.compiler.neurons.sigma_delta import SigmaDeltaNeuron, as_if_neuron
from snnc.compiler.passes.lower_loihi import lower_loihi
from snnc.compiler.simulate import simulate

SD = neurons.by_name("sigma_delta")


def trace(op, xs):
    """Events and membranes of one neuron per input of the sequence ``xs`` (steps first)."""
    state = SD.initial_state(op, np.shape(xs[0]))
    events, membranes = [], []
    for x in xs:
        state, n = SD.step(op, state, np.asarray(x, dtype=np.float64))
        events.append(n)
        membranes.append(state["v"])
    return np.array(events), np.array(membranes)


def test_step_trace_by_hand():
    """bits=2 (cap 3), dt=0.5, gain 2 (so dt * relu(gain x) = relu(x), all exact in binary),
    from v = 0.5: x = 1.25 -> v 1.75, 1 event, 0.75 left; -4 -> ignored, none; 5.5 -> 6.25, 3
    (the cap), 3.25 left; 0 -> 3 more, 0.25 left; 0.5 -> 0.75, none."""
    op = SigmaDeltaNeuron(gain=2.0, bits=2, dt=0.5, amplitude=0.5, v_init=0.5)
    events, v = trace(op, [[1.25], [-4.0], [5.5], [0.0], [0.5]])
    np.testing.assert_array_equal(events[:, 0], [1, 0, 3, 3, 0])
    np.testing.assert_array_equal(v[:, 0], [0.75, 0.75, 3.25, 0.25, 0.75])
    assert SD.bits_per_event(op) == 2.0 and SD.bits_per_event(SigmaDeltaNeuron()) == 1.0


def test_step_is_keras_spikings_quantizer():
    """Without the cap (bits large enough), the step is ``SpikingActivationCell.call_inference``
    with relu (amplitude ``1 / dt``, its ``n / dt``) started from the same voltages."""
    tf = pytest.importorskip("tensorflow")
    keras_spiking = pytest.importorskip("keras_spiking")
    rng = np.random.default_rng(3)
    dt = 0.01
    xs = rng.normal(40.0, 60.0, (30, 2, 7))
    cell = keras_spiking.layers.SpikingActivationCell(size=7, activation=tf.nn.relu, dt=dt, seed=1)
    start = cell.get_initial_state(batch_size=2, dtype=tf.float64)[0].numpy()
    op = SigmaDeltaNeuron(gain=1.0, bits=16, dt=dt, amplitude=1 / dt)
    state = {"v": start}
    voltage = tf.constant(start)
    for x in xs:
        state, n = SD.step(op, state, x)
        spikes, (voltage,) = cell.call_inference(tf.constant(x), (voltage,))
        np.testing.assert_allclose(n * op.amplitude, spikes.numpy(), rtol=1e-12)
        np.testing.assert_allclose(state["v"], voltage.numpy(), rtol=0, atol=1e-12)


@settings(max_examples=60, deadline=None)
@given(
    bits=st.integers(1, 4),
    v_init=st.floats(0.0, 0.99),
    xs=st.lists(st.floats(-2.0, 1.0), min_size=1, max_size=60),
)
def test_running_error_stays_below_one_event(bits, v_init, xs):
    """Below the cap, ``|sum_t (n_t - dt f(gain x_t))| < 1`` at every step (it is ``v_t -
    v_0``), for any input sequence, negative parts included (relu: they add nothing)."""
    cap = 2**bits - 1
    op = SigmaDeltaNeuron(gain=cap, bits=bits, dt=1.0, v_init=v_init)  # x <= 1 stays within the cap
    events, _ = trace(op, [[x] for x in xs])
    error = np.cumsum(events[:, 0] - cap * np.maximum(xs, 0.0))
    assert np.all(np.abs(error) < 1.0 + 1e-9), error


def test_graded_events_sum_to_the_analog_input(rng):
    """from_relu(bits=4): a varying activation ``a_t`` in [0, 1], each event worth 1/15; the
    summed output equals the summed input to within half an event at every step (``v`` starts
    at half an event: the running sum is rounded to nearest)."""
    op = SD.from_relu(max_rate=1.0, bits=4)
    a = rng.uniform(0.0, 1.0, (200, 50))
    events, _ = trace(op, a)
    assert events.max() == 15 and set(np.unique(events)) <= set(range(16))
    drift = np.abs(np.cumsum(events * op.amplitude - a, axis=0))
    assert drift.max() <= op.amplitude / 2 * (1 + 1e-9)
    assert drift.max() > op.amplitude * 0.45  # the bound is reached, not loose


def test_the_excess_at_the_cap_is_sent_later():
    """Above the cap the output saturates and the excess stays in the membrane; when the
    input falls the neuron pays it back, so the totals agree again to within one event."""
    op = SigmaDeltaNeuron(gain=1.0, bits=2, dt=1.0, v_init=0.5)
    events, v = trace(op, [[5.0]] * 4 + [[0.0]] * 8)
    np.testing.assert_array_equal(events[:4, 0], [3, 3, 3, 3])  # 2 per step owed
    assert v[3, 0] == 8.5
    np.testing.assert_array_equal(events[4:, 0], [3, 3, 2, 0, 0, 0, 0, 0])
    assert events.sum() == 20 and v[-1, 0] == 0.5


@pytest.mark.parametrize("bits, max_rate", [(1, 1.0), (4, 1.0), (4, 0.5), (8, 0.25)])
def test_from_relu_saturates_where_if_does(bits, max_rate):
    op = SD.from_relu(max_rate=max_rate, bits=bits)
    a = np.array([-1.0, 0.0, 0.3, 1.0, 1.0 / max_rate, 5.0])
    np.testing.assert_allclose(SD.rates(op, a), np.clip(a, 0, 1 / max_rate), rtol=1e-12)
    assert SD.bits_per_event(op) == bits and op.base == "relu"


def test_from_relu_refusals():
    with pytest.raises(PassError, match="option max_rate=2.0: a sigma-delta neuron sends at most 2\\^bits - 1 events"):
        SD.from_relu(max_rate=2.0)
    with pytest.raises(PassError, match="option bursts=3 is integrate-and-fire's; sigma-delta events are sized by bits"):
        SD.from_relu(max_rate=1.0, bursts=3)


@pytest.mark.parametrize(
    "params, message",
    [
        (dict(base="tanh"), "base must be one of relu, lif, got 'tanh'"),
        (dict(bits=0), "bits must be a positive integer"),
        (dict(v_init=1.0), r"v_init must be in \[0, 1\)"),
        (dict(dt=0.0), "dt"),
    ],
)
def test_bad_parameters(params, message):
    with pytest.raises(ops.OpTypeError, match=message):
        SigmaDeltaNeuron(**params).infer_type([ops.TensorType((3,))])


# ----------------------------------------------------------------------------- Loihi


def test_one_bit_relu_steps_as_the_if_neurons_it_lowers_to(rng):
    """With input that is never negative, one-bit relu sigma-delta neurons and their IF
    neurons (the ones the loihi form lowers) give the same spikes and membranes; negative
    input moves the IF membrane and not the sigma-delta one (the difference the form reports).
    gain * dt = 1/4 and inputs in steps of 1/8 keep every sum exact."""
    op = SigmaDeltaNeuron(gain=0.5, bits=1, dt=0.5, v_init=0.5, amplitude=2.0)
    ifn, IF = as_if_neuron(op), neurons.by_name("if")
    xs = rng.integers(0, 24, (80, 30)) / 8.0
    sd_state, if_state = SD.initial_state(op, xs[0].shape), IF.initial_state(ifn, xs[0].shape)
    for x in xs:
        sd_state, n = SD.step(op, sd_state, x)
        if_state, spiked = IF.step(ifn, if_state, x)
        np.testing.assert_array_equal(n, spiked)
        np.testing.assert_array_equal(sd_state["v"], if_state["v"])
    assert xs.mean() * 0.25 < 1 and n.any()  # not saturated, and spiking
    _, n = SD.step(op, {"v": np.array([0.875])}, np.array([-1.0]))
    _, spiked = IF.step(ifn, {"v": np.array([0.875])}, np.array([-1.0]))
    assert not n[0] and not spiked[0]
    after_sd, _ = SD.step(op, {"v": np.array([0.875])}, np.array([-1.0]))
    after_if, _ = IF.step(ifn, {"v": np.array([0.875])}, np.array([-1.0]))
    assert after_sd["v"][0] == 0.875 and after_if["v"][0] == 0.625


def chain(host, chip):
    """A host population feeding a chip population through a dense identity."""
    b = GraphBuilder("g", stage="spiking")
    h = b.add(host, [b.input("x", (4,))], name="host")
    params = {"weight": np.eye(4, dtype=np.float32), "bias": np.zeros(4, np.float32)}
    c = b.add(chip, [b.add(ops.Dense(4), [h], params)], name="chip")
    b.output(b.add(ops.Readout(), [c]))
    return b.build()


def test_lower_loihi_runs_one_bit_relu_as_if_and_refuses_graded_events():
    one_bit = SigmaDeltaNeuron(gain=3.0, dt=0.5, amplitude=0.25, v_init=0.0)
    lowered = lower_loihi(chain(ops.IfNeuron(), one_bit), adapt=True)
    if_lowered = lower_loihi(chain(ops.IfNeuron(), as_if_neuron(one_bit)), adapt=True)
    assert lowered.node("chip").op == if_lowered.node("chip").op
    np.testing.assert_array_equal(lowered.node("chip").params["bias"], if_lowered.node("chip").params["bias"])
    assert any(node == "chip" and "negative input currents lower the membrane" in message for node, message in notes(lowered))
    with pytest.raises(PassError, match="%chip = sigma_delta_neuron: .*Loihi integrates the input current"):
        lower_loihi(chain(ops.IfNeuron(), one_bit))
    graded = SigmaDeltaNeuron(bits=3)
    with pytest.raises(PassError, match=r"%chip = sigma_delta_neuron: sigma-delta events of 3 bits: Loihi 1 spikes carry 1 bit "
                                        r"\(graded spikes are Loihi 2\); convert with convert_to_spiking\{bits=1\}"):
        lower_loihi(chain(ops.IfNeuron(), graded), adapt=True)
    with pytest.raises(PassError, match=r"%host = sigma_delta_neuron: sends events of 3.00 bits .* whose spikes carry 1 bit "
                                        r"\(graded spikes are Loihi 2\)"):
        lower_loihi(chain(graded, ops.IfNeuron()), adapt=True)
    with pytest.raises(PassError, match="base=lif: Loihi 1 compartments integrate their input"):
        lower_loihi(chain(ops.IfNeuron(), SigmaDeltaNeuron(base="lif")), adapt=True)


def test_refsim_steps_a_host_sigma_delta_population_as_the_interpreter(rng):
    """refsim's host layers step with the neuron's own step: the host population's spikes
    are the interpreter's (the chip part is IF's and tested elsewhere)."""
    from snnc.backends import refsim
    from snnc.compiler.passes import PassManager

    host = SigmaDeltaNeuron(gain=900.0, dt=0.001, v_init=0.5, amplitude=0.5)
    graph = chain(host, ops.IfNeuron(reset="zero", gain=0.8))
    lowered, _ = PassManager("lower_loihi{adapt=true},map_to_cores,quantize_loihi").run(graph)
    xs = rng.uniform(-0.5, 1.0, (5, 4))
    steps = 30
    ours = refsim.simulate(lowered, xs, [steps]).activity["host"]
    want = simulate(graph, xs, [steps], precision="float64").activity["host"]
    assert ours.spikes == want.spikes > 0
