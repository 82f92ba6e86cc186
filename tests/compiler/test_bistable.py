"""BSNN (docs/bsnn.md): the bistable neuron against a hand-computed trace and its closed-form
rate, phases and synchronous neurons against path depths counted by hand on a residual graph,
the readout's integrate windows, and SIN counted by hand."""

import numpy as np
import pytest

from pass_testing import conv, dense
from snnc.compiler import interpreter, neurons, ops
from snnc.compiler.errors import PassError
from snnc.compiler.graph import GraphBuilder
from snnc.compiler.neurons.bistable import BistableNeuron, fire_steps
from snnc.compiler.passes.bistable import levels
from snnc.compiler.passes.convert_to_spiking import convert_to_spiking
from snnc.compiler.simulate import simulate

BISTABLE = neurons.by_name("bistable")


def trace(op, xs):
    """The spikes of one neuron stepped on the inputs ``xs``, one per step."""
    state = BISTABLE.initial_state(op, (1,))
    out = []
    for x in xs:
        state, spiked = BISTABLE.step(op, state, np.array([x]))
        out.append(int(spiked[0]))
    return out


def test_dynamics_against_a_hand_computed_trace():
    # period 2: phase 0 integrates at steps 1-2 and 5-6 and fires at 3-4 and 7-8; phase 1 is
    # idle at 1-2, integrates at 3-4 and 7-8, fires at 5-6. Inputs at other steps are ignored.
    xs = [0.7, 0.9, 5.0, 5.0, 0.2, -0.4, 5.0, 5.0]
    # phase 0: v = 0.5 +0.7 +0.9 = 2.1 -> fires at 3 (1.1) and 4 (0.1); 0.1 +0.2 -0.4 = -0.1: silent
    assert trace(BistableNeuron(period=2, phase=0, v_init=0.5), xs) == [0, 0, 1, 1, 0, 0, 0, 0]
    # phase 1: v = 0.5 +5 +5 = 10.5 -> at most one spike per step: 2 at 5-6, 8.5 carried over
    assert trace(BistableNeuron(period=2, phase=1, v_init=0.5), xs) == [0, 0, 0, 0, 1, 1, 0, 0]


@pytest.mark.parametrize("op", [
    BistableNeuron(period=4, threshold=1.0, gain=1.0, v_init=0.5),
    BistableNeuron(period=3, phase=2, threshold=0.7, gain=1.3, v_init=0.35, amplitude=2.0),
])
def test_rate_is_the_closed_form_over_fire_cycles(op):
    x = np.linspace(-0.5, 1.5, 41)
    steps = op.period * (op.phase + 200)
    state, counts = BISTABLE.initial_state(op, x.shape), np.zeros(x.shape)
    for _ in range(steps):
        state, spiked = BISTABLE.step(op, state, x)
        counts += spiked
    window = BISTABLE.output_steps(op, steps)
    assert window == fire_steps(op, steps) == 100 * op.period
    # the count is floor(v_init / threshold + cumulated drive), so within one spike of the rate
    np.testing.assert_allclose(counts * op.amplitude / window, BISTABLE.rates(op, x), atol=op.amplitude / window)


def test_from_relu_and_refusals():
    op = BISTABLE.from_relu(max_rate=0.5, threshold=2.0, v_init=0.5, period=8)
    assert op == BistableNeuron(period=8, phase=0, threshold=2.0, gain=1.0, v_init=1.0, amplitude=2.0)
    with pytest.raises(PassError, match="neuron=bistable resets by subtraction"):
        BISTABLE.from_relu(max_rate=1.0, reset="zero")
    with pytest.raises(PassError, match="period=0: a bistable cycle lasts at least one step"):
        BISTABLE.from_relu(max_rate=1.0, period=0)
    with pytest.raises(neurons.NeuronError, match=r"neuron bistable \(bistable_neuron\) has no loihi form"):
        neurons.form(BistableNeuron(), "loihi")


# ----------------------------------------------------------------------------- phases and synchronous neurons


def residual_graph(rng):
    """Levels by hand (neuron populations on the longest path, itself included): r1 1, r2 2,
    r3 3, r4 4, r5 5. add1 joins c4 (level 3) and r1 (1): 2 synchronous neurons on r1;
    add2 joins c5 (4) and the 1x1 conv of r2 (2): 2 on r2, before that conv; add3 joins the
    last dense (5) and a dense of the input (0, constant): none."""
    b = GraphBuilder("residual")
    x = b.input("x", (2, 4, 4))
    r1 = b.add(ops.ReLU(), [conv(b, rng, x, 3)], name="r1")
    r2 = b.add(ops.ReLU(), [conv(b, rng, r1, 3)], name="r2")
    r3 = b.add(ops.ReLU(), [conv(b, rng, r2, 3)], name="r3")
    add1 = b.add(ops.Add(), [conv(b, rng, r3, 3, name="c4"), r1], name="add1")
    r4 = b.add(ops.ReLU(), [add1], name="r4")
    shortcut = conv(b, rng, r2, 3, k=1, pad=0, name="shortcut")
    add2 = b.add(ops.Add(), [conv(b, rng, r4, 3, name="c5"), shortcut], name="add2")
    r5 = b.add(ops.ReLU(), [add2], name="r5")
    flat = b.add(ops.Reshape((48,)), [r5])
    flat_x = b.add(ops.Reshape((32,)), [x])
    add3 = b.add(ops.Add(), [dense(b, rng, flat, 4), dense(b, rng, flat_x, 4)], name="add3")
    b.output(add3)
    return b.build()


def test_phases_and_synchronous_delays_equal_path_depths(rng):
    float_graph = residual_graph(rng)
    assert set(levels(float_graph).values()) == {0}  # no neurons yet
    # after synchronization the shortcut conv reads r2 two levels later: level 4, as add2's other input
    want = {"r1": 1, "r2": 2, "r3": 3, "r4": 4, "r5": 5, "add1": 3, "shortcut": 4, "add2": 4, "add3": 5}
    snn = convert_to_spiking(float_graph, neuron="bistable", period=2)
    nodes = {n.name: n for n in snn.nodes}
    assert {k: levels(snn)[k] for k in want} == want
    # each population's phase is its depth: the populations before it on the longest path
    phases = {n.name: n.op.phase for n in snn.nodes if isinstance(n.op, BistableNeuron)}
    assert phases == {"r1": 0, "r2": 1, "r3": 2, "r4": 3, "r5": 4, "r1_sync1": 1, "r1_sync2": 2, "r2_sync1": 2, "r2_sync2": 3}
    # chains: r1 -> r1_sync1 -> r1_sync2 -> add1; r2 -> r2_sync1 -> r2_sync2 -> shortcut -> add2
    assert nodes["add1"].inputs == ("c4", "r1_sync2") and nodes["r1_sync2"].inputs == ("r1_sync1",)
    assert nodes["add2"].inputs == ("c5", "shortcut") and nodes["shortcut"].inputs == ("r2_sync2",)
    assert nodes["r2_sync1"].inputs == ("r2",) and nodes[nodes["r3"].inputs[0]].inputs == ("r2",)  # r2's other user too
    for relay in ("r1_sync1", "r2_sync2"):
        op = nodes[relay].op
        assert (op.gain, op.threshold, op.amplitude, op.v_init, op.period) == (1.0, 1.0, 1.0, 0.5, 2)
    readout = next(n.op for n in snn.nodes if isinstance(n.op, ops.Readout))
    assert readout == ops.Readout(period=2, phase=5)
    # every join now reads spike-carrying inputs of one level
    level = levels(snn)
    for node in snn.nodes:
        spiking = {level[i] for i in node.inputs if level[i] > 0}
        assert len(spiking) <= 1, node.name


def test_readout_averages_its_integrate_cycles_only():
    op = ops.Readout(period=2, phase=1)
    assert [op.counts(t) for t in range(1, 11)] == [False, False, True, True, False, False, True, True, False, False]
    b = GraphBuilder("g", stage="spiking")
    b.output(b.add(op, [b.input("x", (1,))]))
    # a constant input: the average is the input from the first counted step on, 0 before
    out = simulate(b.build(), np.float32([[3.0]]), [2, 3, 10]).outputs
    assert [float(out[t]["output"][0, 0]) for t in (2, 3, 10)] == [0.0, 3.0, 3.0]


def test_bistable_readout_approaches_the_float_network(rng):
    # balanced by construction: the relu activations stay below 1 (the neurons' saturation)
    b = GraphBuilder("small")
    x = b.input("x", (6,))
    h = b.add(ops.ReLU(), [b.add(ops.Dense(5), [x], {"weight": rng.uniform(-0.15, 0.15, (5, 6)).astype(np.float32),
                                                     "bias": np.full(5, 0.1, np.float32)})], name="h")
    y = b.add(ops.Dense(3), [h], {"weight": rng.uniform(-1, 1, (3, 5)).astype(np.float32), "bias": np.zeros(3, np.float32)})
    b.output(y)
    graph = b.build()
    data = rng.uniform(0, 1, (20, 6)).astype(np.float32)
    want = interpreter.run(graph, data)["output"]
    snn = convert_to_spiking(graph, neuron="bistable", period=4)
    # level 1: the readout integrates cycles 1, 3, 5, ...; after K of them the error is at
    # most one spike (worth 1) of each hidden neuron over K * 4 steps
    out = simulate(snn, data, [4 * (1 + 2 * 25)]).outputs
    got = next(iter(out.values()))["output"]
    bound = np.abs(graph.node(y).params["weight"]).sum(axis=1) / (25 * 4)
    assert np.all(np.abs(got - want) <= bound + 1e-9)


def test_sequence_graphs_are_refused():
    b = GraphBuilder("seq")
    b.output(b.add(ops.ReLU(), [b.input("x", (3,), sequence=True)]))
    with pytest.raises(PassError, match="neuron=bistable needs constant inputs"):
        convert_to_spiking(b.build(), neuron="bistable")


# ----------------------------------------------------------------------------- SIN


def two_layer(stage, neuron):
    """x -> h -> dense [1, -2] -> o; ``neuron``: the relu (float) or its population."""
    b = GraphBuilder("two", stage=stage)
    h = b.add(neuron(), [b.input("x", (2,))], name="h")
    d = b.add(ops.Dense(1), [h], {"weight": np.float32([[1.0, -2.0]]), "bias": np.zeros(1, np.float32)}, name="d")
    b.output(b.add(neuron(), [d], name="o"))
    return b.build()


def test_sin_counts_spikes_of_neurons_inactive_in_the_ann():
    # IF, threshold 1, v_init 0, T = 4. Example 1, x = (1, 0.5): the ANN gives o = relu(1 - 1) = 0.
    # h fires 1111 and 0101; o's input is 1, -1, 1, -1, so o fires at step 1 only: 1 SIN spike
    # (phase lead: the positive input arrived first). Example 2, x = (1, 0.25): o = 0.5 > 0; h
    # fires 1111 and 0001, o's input 1, 1, 1, -1: 3 spikes, none SIN. h is active everywhere.
    ann = two_layer("float", ops.ReLU)
    snn = two_layer("spiking", lambda: ops.IfNeuron(v_init=0.0))
    x = np.float32([[1.0, 0.5], [1.0, 0.25]])
    activity = simulate(snn, x, [4], reference=ann).activity
    o, h = activity["o"].to_dict(), activity["h"].to_dict()
    assert (o["spikes_per_example"], o["sin_spikes_per_example"], o["sin_fraction"]) == (2.0, 0.5, 0.25)
    assert (h["sin_spikes_per_example"], h["sin_fraction"]) == (0.0, 0.0)
    # bistable (period 2): o integrates h's whole cycle, 0.5 + 2 - 2 < 1: no SIN
    snn = convert_to_spiking(ann, neuron="bistable", period=2)
    activity = simulate(snn, x, [12], reference=ann).activity
    assert activity["o"].to_dict()["sin_fraction"] == 0.0
