"""The neuron registry (compiler/neurons/): lookups and refusals, each neuron's step against its
equations, its rate curve against long runs of its step, the TensorFlow step against the NumPy
step, and the generated reference in docs/neurons.md."""

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pytest

from snnc.compiler import neurons, ops
from snnc.compiler.errors import PassError, SnncError
from snnc.compiler.graph import GraphBuilder
from snnc.compiler.neurons import _reference
from snnc.compiler.passes.lower_loihi import lower_loihi

IF_OPS = [
    ops.IfNeuron(threshold=1.0, gain=1.0, reset="subtract"),
    ops.IfNeuron(threshold=0.7, gain=1.3, reset="subtract", v_init=0.35, amplitude=2.0),
    ops.IfNeuron(threshold=1.5, gain=0.8, reset="zero", amplitude=0.5),
    ops.IfNeuron(threshold=1.0, gain=1.0, reset="subtract", v_init=0.5, v_min=0.0),
    ops.IfNeuron(threshold=0.5, gain=1.2, reset="subtract", v_init=0.25, amplitude=0.25, bursts=4),
]
LIF_OPS = [
    ops.LifNeuron(),
    ops.LifNeuron(tau_rc=0.05, tau_ref=0.004, dt=0.001, gain=3.0, bias=1.0, amplitude=0.5),
    ops.LifNeuron(tau_rc=0.02, tau_ref=0.001, dt=0.0005, gain=5.0, bias=0.5),
    ops.LifNeuron(tau_rc=0.02, tau_ref=0.002, dt=0.002, gain=2.0, bias=1.0, tau_s=0.005),
]
SIGMA_DELTA_OPS = [
    ops.SigmaDeltaNeuron(),
    ops.SigmaDeltaNeuron(gain=700.0, bits=3, amplitude=0.25, v_init=0.0, dt=0.001),
    ops.SigmaDeltaNeuron(base="lif", gain=3.0, bits=2, dt=0.002, amplitude=0.5),
    ops.SigmaDeltaNeuron(base="lif", gain=1.5, bits=1, tau_rc=0.05, tau_ref=0.004, dt=0.001, v_init=0.2),
]


def run(op, x, steps):
    """Spike counts of ``steps`` steps of ``op``'s neurons on the constant input ``x``."""
    neuron = neurons.by_op(op)
    state = neuron.initial_state(op, x.shape)
    counts = np.zeros(x.shape)
    for _ in range(steps):
        state, spiked = neuron.step(op, state, x)
        counts += spiked
    return counts


# ----------------------------------------------------------------------------- registry


def test_lookups_by_name_and_op():
    assert neurons.by_name("if").OP is ops.IfNeuron and neurons.by_name("lif").OP is ops.LifNeuron
    assert neurons.by_op(ops.IfNeuron()) is neurons.by_name("if")
    assert neurons.by_op(ops.LifNeuron) is neurons.by_name("lif")
    assert neurons.by_op(ops.Dense(3)) is None
    assert ops.OPS["if_neuron"] is ops.IfNeuron and ops.OPS["lif_neuron"] is ops.LifNeuron
    assert set(neurons.op_types()) <= set(ops.NEURON_OPS) and set(neurons.op_types()) <= set(ops.STATEFUL_OPS)


def test_unknown_names_and_missing_forms_are_refused_by_name():
    with pytest.raises(SnncError, match="unknown neuron .izhikevich.; neurons: bistable, if, lif, sigma_delta"):
        neurons.by_name("izhikevich")
    with pytest.raises(SnncError, match="dense is not a neuron op"):
        neurons.form(ops.Dense(3), "nengo")
    with pytest.raises(SnncError, match=r"neuron if \(if_neuron\) has no chip form \(it has: loihi, nengo"):
        neurons.form(ops.IfNeuron(), "chip")


# ----------------------------------------------------------------------------- one step


@pytest.mark.parametrize("reset, after", [("subtract", [0.25, -0.5, 0.0, 0.25]), ("zero", [0.0, -0.5, 0.0, 0.0])])
def test_if_step_formula(reset, after):
    op = ops.IfNeuron(threshold=1.0, gain=0.5, reset=reset, v_init=0.5)
    x = np.array([1.5, -2.0, 1.0, 7.5])  # v = 0.5 + 0.5 x = 1.25, -0.5, 1.0 (fires: >=), 4.25
    state, spiked = neurons.by_name("if").step(op, neurons.by_name("if").initial_state(op, x.shape), x)
    np.testing.assert_array_equal(spiked, [True, False, True, True])
    want = np.array(after) if reset == "zero" else np.array([0.25, -0.5, 0.0, 3.25])
    np.testing.assert_array_equal(state["v"], want)


def test_if_burst_step_trace():
    """bursts=3, threshold 1, from v = 0 (all values exact in binary), by hand:
    v = 2.5 -> 2 events, 0.5 left; 0.75 -> none; 4.75 -> 3 (the cap), 1.75 left; 0.75 -> none;
    1.25 -> 1, 0.25 left."""
    op = ops.IfNeuron(threshold=1.0, gain=1.0, reset="subtract", bursts=3)
    neuron = neurons.by_op(op)
    state = neuron.initial_state(op, (1,))
    events, voltages = [], []
    for x in [2.5, 0.25, 4.0, -1.0, 0.5]:
        state, n = neuron.step(op, state, np.array([x]))
        events.append(float(n[0]))
        voltages.append(float(state["v"][0]))
    assert events == [2, 0, 3, 0, 1]
    assert voltages == [0.5, 0.75, 1.75, 0.75, 0.25]
    assert neuron.bits_per_event(op) == pytest.approx(2.0) and neuron.bits_per_event(ops.IfNeuron()) == 1.0


@pytest.mark.parametrize(
    "params, message",
    [
        (dict(bursts=0), "bursts must be a positive integer"),
        (dict(bursts=2.0), "bursts must be a positive integer"),
        (dict(bursts=2, reset="zero"), r"bursts=2 needs reset=subtract"),
    ],
)
def test_if_bursts_are_checked(params, message):
    b = GraphBuilder("g", stage="spiking")
    with pytest.raises(SnncError, match=rf"%if_neuron = if_neuron: if_neuron {message}"):
        b.add(ops.IfNeuron(**params), [b.input("x", (3,))])


def test_if_membrane_floor_forgets_negative_input():
    """20 steps of input -0.5 then 20 of +0.25: floored at 0 the membrane stays 0 through the
    negative stretch and the neuron fires relu(0.25) * 20 = 5 times after it; unbounded it
    sinks to -10 and stays silent (-10 + 20 * 0.25 = -5 < 1)."""
    neuron = neurons.by_name("if")
    x = np.concatenate([np.full(20, -0.5), np.full(20, 0.25)])
    counts = {}
    for v_min in (0.0, None):
        op = ops.IfNeuron(v_init=0.0, v_min=v_min)
        state, count = neuron.initial_state(op, (1,)), 0
        for value in x:
            state, spiked = neuron.step(op, state, np.array([value]))
            count += int(spiked[0])
            assert v_min is None or state["v"][0] >= v_min
        counts[v_min] = count
    assert counts == {0.0: 5, None: 0}


def test_if_membrane_floor_above_the_start_is_refused():
    with pytest.raises(ops.OpTypeError, match="v_min=0.2 must be at most 0"):
        ops.IfNeuron(v_init=0.5, v_min=0.2).infer_type([ops.TensorType((3,))])


def test_step_leaves_its_inputs_alone():
    op, x = IF_OPS[1], np.full(3, 2.0)
    state = neurons.by_op(op).initial_state(op, x.shape)
    before = state["v"].copy()
    neurons.by_op(op).step(op, state, x)
    np.testing.assert_array_equal(state["v"], before)


def test_lif_first_step_and_spike_time():
    op = ops.LifNeuron(tau_rc=0.02, tau_ref=0.002, dt=0.001, gain=1.0, bias=0.0)
    lif = neurons.by_name("lif")
    x = np.array([0.5, 30.0])
    state, spiked = lif.step(op, lif.initial_state(op, x.shape), x)
    v_exact = x * (1 - np.exp(-op.dt / op.tau_rc))  # v(dt) from v(0) = 0 at constant J
    np.testing.assert_array_equal(spiked, v_exact > 1)
    assert state["v"][0] == pytest.approx(v_exact[0], rel=1e-12) and state["v"][1] == 0.0
    # the spiking neuron crossed 1 at t* with J (1 - exp(-t*/tau)) = 1, so tau_ref - (dt - t*) of its
    # refractory period is left after this step; stored plus dt, which the next step subtracts first
    t_cross = -op.tau_rc * np.log1p(-1 / x[1])
    assert state["refractory"][1] == pytest.approx(op.tau_ref + t_cross, rel=1e-9)
    assert state["refractory"][0] == -op.dt


# ----------------------------------------------------------------------------- rates


@pytest.mark.parametrize("op", IF_OPS, ids=str)
def test_if_rates_are_simulated_rates(op):
    """The rate curve to within one spike in T; with reset by subtraction exactly
    floor((v_init + gain x T) / threshold) spikes in T steps (capped at T)."""
    steps = 4000
    x = np.linspace(-1.0, 2.0, 61)
    simulated = run(op, x, steps) * op.amplitude / steps
    expected = neurons.by_op(op).rates(op, x)
    np.testing.assert_allclose(simulated, expected, rtol=0, atol=op.amplitude * 1.01 / steps)
    if op.reset == "subtract":  # exact in closed form, counting the start
        counts = np.minimum(np.floor((op.v_init + op.gain * np.maximum(x, 0) * steps) / op.threshold + 1e-9), steps * op.bursts)
        np.testing.assert_array_equal(run(op, np.maximum(x, 0), steps), counts)


@pytest.mark.parametrize("op", LIF_OPS, ids=str)
def test_lif_rates_are_simulated_rates(op):
    """nengo.LIF's step interpolates spike times, so the simulated rate is the closed form to
    within the count's resolution (one spike in T) and a small discretisation error."""
    steps = 8000
    x = np.linspace(-0.45, 3.05, 36)  # no J within rounding of 1, where v > 1 may never hold in float
    simulated = run(op, x, steps) * op.amplitude / steps
    expected = neurons.by_op(op).rates(op, x)
    np.testing.assert_allclose(simulated, expected, rtol=2e-3, atol=op.amplitude * 1.01 / steps)
    assert (expected[op.gain * x + op.bias <= 1] == 0).all() and (expected > 0).any()


@pytest.mark.parametrize("op", SIGMA_DELTA_OPS, ids=str)
def test_sigma_delta_rates_are_simulated_rates(op):
    """The running error stays below one event, so T steps give the rate curve (the base
    activation per step, capped at ``2^bits - 1`` events) to within one event in T."""
    steps = 4000
    x = np.linspace(-1.0, 3.0, 81) * sigma_delta_scale(op)
    simulated = run(op, x, steps) * op.amplitude / steps
    expected = neurons.by_op(op).rates(op, x)
    np.testing.assert_allclose(simulated, expected, rtol=0, atol=op.amplitude * 1.01 / steps)
    capped = expected == op.amplitude * (2**op.bits - 1)
    assert capped.any() == (op.base == "relu") and ((0 < expected) & ~capped).sum() > 10


def sigma_delta_scale(op) -> float:
    """The input that a relu base turns into ``2^bits - 1`` events per step (up to which
    ``x`` in [-1, 3] times it reaches the cap); LIF-rate bases fire below it anyway."""
    return (2**op.bits - 1) / (op.gain * op.dt) if op.base == "relu" else 1.0


@pytest.mark.parametrize("name, max_rate", [("if", 1.0), ("if", 0.25), ("lif", 0.1), ("lif", 0.4), ("sigma_delta", 1.0)])
def test_from_relu_fires_max_rate_at_activation_one(name, max_rate):
    neuron = neurons.by_name(name)
    op = neuron.from_relu(max_rate=max_rate)
    assert neuron.rates(op, np.array([1.0]))[0] == pytest.approx(1.0, rel=1e-9)  # max_rate spikes of 1/max_rate
    assert neuron.rates(op, np.array([0.0]))[0] == 0.0


@pytest.mark.parametrize("max_rate", [1.0, 0.5])
def test_from_relu_bursts_resolve_each_step_finer(max_rate):
    """bursts=4: ``a`` fires ``4 * max_rate * a`` events per step, each worth ``1 / (4 *
    max_rate)``: the same saturation at ``a = 1 / max_rate``, four times finer steps. With
    v_init 1/2, after one step the output is ``a`` rounded to the nearest quarter step."""
    neuron = neurons.by_name("if")
    op = neuron.from_relu(max_rate=max_rate, bursts=4)
    a = np.array([0.0, 0.3, 0.55, 1.0, 3.0]) / max_rate
    np.testing.assert_allclose(neuron.rates(op, a), np.minimum(a, 1 / max_rate), rtol=1e-12)
    state, n = neuron.step(op, neuron.initial_state(op, a.shape), a)
    np.testing.assert_array_equal(n, [0, 1, 2, 4, 4])  # round(4 * [0, .3, .55, 1]) and the cap
    binary = neuron.from_relu(max_rate=max_rate)
    _, spiked = neuron.step(binary, neuron.initial_state(binary, a.shape), a)
    np.testing.assert_array_equal(spiked, [0, 0, 1, 1, 1])


def test_from_relu_refuses_rates_the_neuron_cannot_reach():
    with pytest.raises(PassError, match="fires at most once per step"):
        neurons.by_name("if").from_relu(max_rate=1.5)
    with pytest.raises(PassError, match="limit 1/tau_ref"):
        neurons.by_name("lif").from_relu(max_rate=0.5, tau_ref=0.002, dt=0.001)
    with pytest.raises(PassError, match="bursts=2: lif neurons fire at most once per step; burst spikes need neuron=if"):
        neurons.by_name("lif").from_relu(max_rate=0.1, bursts=2)
    with pytest.raises(PassError, match="bursts=2 needs reset=subtract"):
        neurons.by_name("if").from_relu(max_rate=1.0, bursts=2, reset="zero")


# ----------------------------------------------------------------------------- TensorFlow


@pytest.mark.parametrize("op", IF_OPS + LIF_OPS + SIGMA_DELTA_OPS, ids=str)
def test_tensorflow_step_equals_numpy_step(op, rng):
    tf = pytest.importorskip("tensorflow")
    neuron, xp = neurons.by_op(op), neurons.tensorflow_math()
    x = rng.normal(0.4, 1.0, (5, 40)) * (20 if isinstance(op, ops.LifNeuron) else 1)
    x *= sigma_delta_scale(op) if isinstance(op, ops.SigmaDeltaNeuron) else 1
    state = neuron.initial_state(op, x.shape)
    tf_state = {k: tf.constant(v) for k, v in state.items()}
    # IF: bit for bit (nengo-dl runs it so); LIF: TensorFlow's expm1 and log1p may differ from
    # NumPy's in the last bit (nengo-dl steps nengo.LIF with its own builder); sigma-delta:
    # bit for bit with a relu base, as LIF with a LIF-rate base (TensorFlow's log1p)
    exact = isinstance(op, ops.IfNeuron) or getattr(op, "base", None) == "relu"
    for _ in range(60):
        state, spiked = neuron.step(op, state, x)
        tf_state, tf_spiked = neuron.step(op, tf_state, tf.constant(x), xp)
        np.testing.assert_array_equal(tf_spiked.numpy(), spiked)
        for k in state:
            if exact:
                np.testing.assert_array_equal(tf_state[k].numpy(), state[k])
            else:
                np.testing.assert_allclose(tf_state[k].numpy(), state[k], rtol=1e-9, atol=1e-15)


# ----------------------------------------------------------------------------- lower_loihi


@pytest.fixture
def chipless_neuron():
    """A registered neuron type with a step and rates but no Loihi form."""

    @ops.register
    @dataclass(frozen=True)
    class TestHoldNeuron(ops.Op):
        """Fires whenever its input is positive."""

        NAME: ClassVar[str] = "test_hold_neuron"
        ALLOWED_STAGES: ClassVar[tuple[str, ...]] = ops.SPIKING_STAGES
        amplitude: float = 1.0

        def infer_type(self, inputs):
            return ops.spikes_like(inputs[0])

    @neurons.register
    class Hold(neurons.Neuron):
        NAME = "test_hold"
        OP = TestHoldNeuron

        def forms(self):
            return {"nengo": lambda op, dt: None}

    try:
        yield TestHoldNeuron
    finally:
        neurons.unregister("test_hold")
        del ops.OPS["test_hold_neuron"]


def test_lower_loihi_refuses_a_neuron_without_a_loihi_form(chipless_neuron):
    b = GraphBuilder("g", stage="spiking")
    host = b.add(ops.IfNeuron(reset="zero"), [b.input("x", (4,))], name="host")
    params = {"weight": np.eye(4, dtype=np.float32), "bias": np.zeros(4, np.float32)}
    hold = b.add(chipless_neuron(), [b.add(ops.Dense(4), [host], params)], name="hold")
    b.output(b.add(ops.Readout(), [hold]))
    with pytest.raises(PassError, match=r"%hold.*neuron test_hold \(test_hold_neuron\) has no loihi form .*cannot run on the chip"):
        lower_loihi(b.build())


def burst_chain(host_bursts=1, chip_bursts=1):
    """A host IF layer feeding a chip IF layer through a dense identity."""
    b = GraphBuilder("g", stage="spiking")
    host = b.add(ops.IfNeuron(bursts=host_bursts), [b.input("x", (4,))], name="host")
    params = {"weight": np.eye(4, dtype=np.float32), "bias": np.zeros(4, np.float32)}
    chip = b.add(ops.IfNeuron(gain=2.0, amplitude=0.25, bursts=chip_bursts), [b.add(ops.Dense(4), [host], params)], name="chip")
    b.output(b.add(ops.Readout(), [chip]))
    return b.build()


def test_lower_loihi_refuses_burst_spikes():
    """The chip's spikes are 1 bit: bursts from a host layer are refused; on a chip layer they
    are a chip difference (refused, or with adapt single spikes worth ``bursts`` of them,
    which keeps the layer's rate curve at binary resolution)."""
    with pytest.raises(PassError, match=r"%host = if_neuron: sends events of 2.00 bits \(burst or graded spikes\) to the chip.*convert_to_spiking\{bursts=1\}"):
        lower_loihi(burst_chain(host_bursts=3))
    with pytest.raises(PassError, match=r"%chip = if_neuron: Loihi fires one spike per step at most \(this layer: bursts=4\); convert with convert_to_spiking\{bursts=1\}"):
        lower_loihi(burst_chain(chip_bursts=4))
    adapted = lower_loihi(burst_chain(chip_bursts=4), adapt=True).node("chip").op
    assert adapted.gain == pytest.approx(2.0 / 4) and adapted.amplitude == pytest.approx(0.25 * 4)


# ----------------------------------------------------------------------------- docs


def test_docs_reference_is_current():
    current = _reference.DOCS.read_text()
    assert _reference.document(current) == current, (
        "docs/neurons.md's generated tables are out of date: run `python -m snnc.compiler.neurons --write`"
    )
