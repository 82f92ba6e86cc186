"""Time in the IR: sequence inputs, delays and recurrence, in the float and spiking
interpreters, the checker, the text format and the Rewriter. References are plain NumPy
loops written here from the ops' equations."""

from __future__ import annotations

import numpy as np
import pytest

from rnn_testing import simple_rnn_outputs
from snnc.compiler import ops
from snnc.compiler.errors import DataError, PassError, VerificationError
from snnc.compiler.graph import Graph, GraphBuilder
from snnc.compiler.interpreter import run
from snnc.compiler.passes.rewrite import Rewriter
from snnc.compiler.simulate import simulate
from snnc.compiler.text import parse, print_graph
from snnc.compiler.types import TensorType
from snnc.compiler.wellformed import check_well_formed

F, H, O = 3, 5, 2


def rnn_weights(seed=0):
    rng = np.random.default_rng(seed)
    return {
        "w": rng.normal(0, 0.35, (H, F)).astype(np.float32),
        "u": rng.normal(0, 0.4, (H, H)).astype(np.float32),
        "b": rng.normal(0, 0.1, H).astype(np.float32),
        "v": rng.normal(0, 0.6, (O, H)).astype(np.float32),
        "c": rng.normal(0, 0.1, O).astype(np.float32),
    }


def rnn_graph(p, every_step=False, stage=ops.FLOAT, neuron=None) -> Graph:
    """``h_t = relu(W x_t + U h_{t-1} + b)``, ``y = V h + c`` (Keras SimpleRNN + Dense); with
    ``neuron`` the ReLU is that spiking op and the output a readout."""
    b = GraphBuilder("rnn", stage)
    x = b.input("x", (F,), sequence=True)
    d = b.delay(TensorType((H,), "spike" if neuron else "f32"), name="h_prev")
    wx = b.add(ops.Dense(H), [x], {"weight": p["w"], "bias": p["b"]}, name="wx")
    uh = b.add(ops.Dense(H), [d], {"weight": p["u"], "bias": np.zeros(H, np.float32)}, name="uh")
    s = b.add(ops.Add(), [wx, uh], name="sum")
    h = b.add(neuron or ops.ReLU(), [s], name="h")
    b.close_delay(d, h)
    y = b.add(ops.Dense(O), [h], {"weight": p["v"], "bias": p["c"]}, name="y")
    if neuron:
        y = b.add(ops.Readout(), [y], name="readout")
    b.output(y, sequence=every_step)
    return b.build()


@pytest.fixture
def seq(rng):
    return rng.uniform(0, 1, (7, 6, F)).astype(np.float32)


def test_float_recurrence_matches_a_numpy_loop(seq):
    p = rnn_weights()
    want = simple_rnn_outputs(p, seq)
    np.testing.assert_allclose(run(rnn_graph(p), seq)["output"], want[:, -1], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(run(rnn_graph(p, every_step=True), seq)["output"], want, rtol=1e-5, atol=1e-6)


def test_keep_gives_every_value_at_every_step(seq):
    values = run(rnn_graph(rnn_weights()), seq, keep=True)
    assert values["h"].shape == (7, 6, H)
    np.testing.assert_array_equal(values["h_prev"][:, 1:], values["h"][:, :-1])
    np.testing.assert_array_equal(values["h_prev"][:, 0], 0.0)


def test_text_round_trip_with_a_forward_reference():
    g = rnn_graph(rnn_weights(), every_step=True)
    text = print_graph(g)
    assert "%h_prev = delay(%h)" in text and "sequence=true" in text
    assert parse(text, {f"{n.name}.{k}": v for n in g.nodes for k, v in n.params.items()}) == g


def test_only_a_delay_may_read_a_later_value():
    g = rnn_graph(rnn_weights())
    nodes = list(g.nodes)
    at = next(i for i, n in enumerate(nodes) if n.name == "uh")
    nodes[at] = nodes[at].replace(inputs=("h",))  # a cycle that skips the delay
    with pytest.raises(VerificationError, match="uh = dense: input %h is defined after it"):
        check_well_formed(g.replace(nodes=nodes))


def test_a_delay_has_its_inputs_type():
    g = rnn_graph(rnn_weights())
    nodes = [n.replace(type=TensorType((H,), "spike")) if n.name == "h_prev" else n for n in g.nodes]
    with pytest.raises(VerificationError, match="h_prev = delay"):
        check_well_formed(g.replace(nodes=nodes))


def test_builder_refuses_an_open_delay():
    b = GraphBuilder("open")
    x = b.input("x", (F,), sequence=True)
    b.delay(TensorType((F,)))
    b.output(x)
    with pytest.raises(VerificationError, match="has no input"):
        b.build()


def test_a_sequence_output_needs_a_sequence_input():
    b = GraphBuilder("flat")
    b.output(b.input("x", (F,)), sequence=True)
    with pytest.raises(VerificationError, match="sequence output needs a sequence input"):
        b.build()


def test_sequence_data_are_checked(seq):
    g = rnn_graph(rnn_weights())
    with pytest.raises(DataError, match=r"sequences of examples of shape \(N, steps, 3\)"):
        run(g, seq[:, 0])
    with pytest.raises(DataError, match="no steps"):
        run(g, seq[:, :0])


def test_rewriter_resolves_a_delay_of_a_value_written_later(seq):
    """A pass replacing the recurrent ReLU by a new node (another name) keeps the loop."""
    g = rnn_graph(rnn_weights())
    rw = Rewriter(g, "rename")
    for node in g.nodes:
        if node.name == "h":
            rw.forward(node, rw.insert(node.op, [rw.value(i) for i in node.inputs], name="h_new"))
        else:
            rw.keep(node)
    out = rw.finish()
    assert out.node("h_prev").inputs == ("h_new",)
    np.testing.assert_allclose(run(out, seq)["output"], run(g, seq)["output"])


def test_rewriter_retypes_a_loop_that_becomes_spiking():
    g = rnn_graph(rnn_weights())
    rw = Rewriter(g, "spike")
    for node in g.nodes:
        rw.keep(node, op=ops.IfNeuron() if node.name == "h" else None)
    out = rw.finish(stage=ops.SPIKING)
    assert out.node("h_prev").type == TensorType((H,), "spike")


def test_rewriter_refuses_what_does_not_type(seq):
    """A loop whose value changes shape: the users after it no longer type."""
    g = rnn_graph(rnn_weights())
    rw = Rewriter(g, "bad")
    with pytest.raises(PassError, match="dense takes a rank-1 input"):
        for node in g.nodes:
            rw.keep(node, op=ops.Reshape((H, 1)) if node.name == "h" else None)
        rw.finish()


# ----------------------------------------------------------------------------- spiking


def spiking_reference(p, x, hold, threshold=1.0):
    """IF neurons (subtract reset, v from 0), the recurrent spikes delayed ``hold`` steps,
    each input step held ``hold`` steps; the readout averaged per window."""
    n, steps = x.shape[:2]
    v = np.zeros((n, H))
    history = [np.zeros((n, H))] * hold
    outs = []
    for k in range(steps):
        total = np.zeros((n, O))
        for _ in range(hold):
            s_prev = history[-hold]
            v = v + (x[:, k] @ p["w"].T.astype(np.float64) + p["b"]) + s_prev @ p["u"].T.astype(np.float64)
            s = (v >= threshold).astype(np.float64)
            v = v - s * threshold
            history.append(s)
            total += s @ p["v"].T.astype(np.float64) + p["c"]
        outs.append(total / hold)
    return np.stack(outs, axis=1)


@pytest.mark.parametrize("hold", [1, 3, 8])
def test_spiking_recurrence_matches_a_numpy_loop(seq, hold):
    p = rnn_weights()
    g = rnn_graph(p, every_step=True, stage=ops.SPIKING, neuron=ops.IfNeuron(v_init=0.0))
    got = simulate(g, seq, [hold]).outputs[hold]["output"]
    np.testing.assert_allclose(got, spiking_reference(p, seq, hold), rtol=1e-5, atol=1e-6)


def test_spiking_rates_approach_the_float_recurrence(seq):
    """Window rates stand for the float activations: the error shrinks as T grows."""
    p = rnn_weights()
    want = run(rnn_graph(p, every_step=True), seq)["output"]
    g = rnn_graph(p, every_step=True, stage=ops.SPIKING, neuron=ops.IfNeuron(v_init=0.5))
    result = simulate(g, seq, [4, 64])
    errors = [np.abs(result.outputs[t]["output"] - want).mean() for t in (4, 64)]
    assert errors[1] < errors[0] / 3 and errors[1] < 0.05 * np.abs(want).mean() + 0.02


def test_constant_inputs_delay_one_step(rng):
    """A recurrence on a constant input: the delay spans one simulation step."""
    b = GraphBuilder("osc", ops.SPIKING)
    x = b.input("x", (1,))
    d = b.delay(TensorType((1,), "spike"))
    inhibit = b.add(ops.Affine(), [d], {"scale": np.array([-0.5], np.float32), "shift": np.zeros(1, np.float32)})
    s = b.add(ops.IfNeuron(), [b.add(ops.Add(), [x, inhibit])], name="s")
    b.close_delay(d, s)
    b.output(b.add(ops.Readout(), [s]))
    g = b.build()
    v, prev, total = 0.0, 0.0, 0.0
    for _ in range(20):
        v += 0.7 - 0.5 * prev
        prev = float(v >= 1.0)
        v -= prev
        total += prev
    assert simulate(g, np.array([[0.7]], np.float32), [20]).outputs[20]["output"][0, 0] == pytest.approx(total / 20)
