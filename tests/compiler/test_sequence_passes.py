"""The pass pipeline on sequence inputs and recurrences: calibration over every input step,
balancing through delays (checked against the float interpreter on the unbalanced graph),
conversion of a recurrent ReLU to neurons, and the spiking result approaching the float one."""

from __future__ import annotations

import numpy as np
import pytest

from test_time import F, H, rnn_graph, rnn_weights
from snnc.compiler import ops
from snnc.compiler.datasets import Dataset
from snnc.compiler.driver import compile_model
from snnc.compiler.graph import GraphBuilder
from snnc.compiler.interpreter import run
from snnc.compiler.passes.threshold_balance import threshold_balance
from snnc.compiler.simulate import simulate
from snnc.compiler.types import TensorType


@pytest.fixture
def seqs(rng):
    return rng.uniform(0, 1, (40, 6, F)).astype(np.float32)


@pytest.mark.parametrize("per_channel", [False, True])
@pytest.mark.parametrize("every_step", [False, True])
def test_balancing_a_recurrence_keeps_the_float_outputs(seqs, per_channel, every_step):
    g = rnn_graph(rnn_weights(), every_step=every_step)
    out = threshold_balance(g, calibration={"x": seqs}, per_channel=per_channel)
    assert out.outputs[0].op.sequence == every_step
    np.testing.assert_allclose(run(out, seqs)["output"], run(g, seqs)["output"], rtol=1e-5, atol=1e-6)


def test_balanced_recurrent_weights_follow_the_derivation(seqs):
    """``W' = W / lambda_f``, ``U'[f, c] = U[f, c] lambda_c / lambda_f``, ``b' = b / lambda_f``."""
    p = rnn_weights()
    out = threshold_balance(rnn_graph(p), calibration={"x": seqs}, per_channel=True)
    lam = np.asarray(out.node("h").meta["scale"])
    np.testing.assert_allclose(out.node("wx").params["weight"], p["w"] / lam[:, None], rtol=1e-6)
    np.testing.assert_allclose(out.node("wx").params["bias"], p["b"] / lam, rtol=1e-6)
    np.testing.assert_allclose(out.node("uh").params["weight"], p["u"] * lam[None, :] / lam[:, None], rtol=1e-6)
    uniform = threshold_balance(rnn_graph(p), calibration={"x": seqs})
    np.testing.assert_allclose(uniform.node("uh").params["weight"], p["u"], rtol=1e-6)


def test_calibration_counts_every_input_step(seqs):
    """``method=max``: lambda is the largest activation over all examples and all steps."""
    g = rnn_graph(rnn_weights())
    h = run(g, seqs, keep=True)["h"]  # (N, steps, H)
    out = threshold_balance(g, calibration={"x": seqs}, method="max", per_channel=True)
    peak = h.max(axis=(0, 1))
    assert not np.allclose(peak, h[:, -1].max(axis=0))  # the last step alone would differ
    np.testing.assert_allclose(out.node("h").meta["scale"], np.where(peak > 0, peak, 1.0), rtol=1e-6)  # silent: 1
    assert out.meta["threshold_balance"]["examples"] == len(seqs)


def two_relu_loop(init: float = 0.0):
    """``z_t = relu(A x_t) + relu(B x_t + C z_{t-1})``: the delay reads an add, whose scale is
    the first relu's, not what the delay's users want (none): a rescale must close the loop."""
    rng = np.random.default_rng(3)
    b = GraphBuilder("loop")
    x = b.input("x", (F,), sequence=True)
    d = b.delay(TensorType((H,)), name="z_prev", init=init)
    a = b.add(ops.ReLU(), [b.add(ops.Dense(H), [x], {"weight": rng.normal(0, 0.5, (H, F)).astype(np.float32), "bias": np.zeros(H, np.float32)})], name="a")
    c = b.add(ops.Dense(H), [d], {"weight": rng.normal(0, 0.3, (H, H)).astype(np.float32), "bias": np.zeros(H, np.float32)})
    bx = b.add(ops.Dense(H), [x], {"weight": rng.normal(0, 2.0, (H, F)).astype(np.float32), "bias": np.full(H, 0.1, np.float32)})
    r = b.add(ops.ReLU(), [b.add(ops.Add(), [bx, c])], name="r")
    z = b.add(ops.Add(), [a, r], name="z")
    b.close_delay(d, z)
    b.output(b.add(ops.Dense(2), [z], {"weight": rng.normal(0, 1, (2, H)).astype(np.float32), "bias": np.zeros(2, np.float32)}), sequence=True)
    return b.build()


@pytest.mark.parametrize("init", [0.0, 0.3])
def test_a_delay_reading_a_value_at_another_scale_gets_a_rescale(seqs, init):
    g = two_relu_loop(init)
    out = threshold_balance(g, calibration={"x": seqs})
    assert any(isinstance(n.op, ops.Affine) for n in out.nodes)
    assert out.node("z_prev").inputs != ("z",)
    np.testing.assert_allclose(run(out, seqs)["output"], run(g, seqs)["output"], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("every_step", [True, False])
def test_the_default_pipeline_turns_a_recurrent_relu_into_neurons(seqs, every_step):
    """Through the driver: the recurrence carries spikes, the output keeps its sequence flag
    and gets a readout, and the SNN approaches the float RNN as T (steps per input step)
    grows."""
    g = rnn_graph(rnn_weights(), every_step=every_step)
    compiled = compile_model(g, Dataset(seqs, None, "seqs"))
    snn = compiled.model
    assert isinstance(snn.node("h").op, ops.IfNeuron)
    assert snn.node("h_prev").type == TensorType((H,), "spike")
    assert snn.outputs[0].op.sequence == every_step
    assert isinstance(snn.node(snn.outputs[0].inputs[0]).op, ops.Readout)
    want = run(g, seqs)["output"]
    result = simulate(snn, seqs, [4, 64])
    errors = [np.abs(result.outputs[t]["output"] - want).mean() for t in (4, 64)]
    assert errors[1] < errors[0] / 3
    assert errors[1] < 0.08 * np.abs(want).mean()


@pytest.mark.parametrize("floor, want", [("auto", 0.0), ("zero", 0.0), ("none", None)])
def test_neurons_of_a_sequence_graph_have_their_membrane_floored(seqs, floor, want):
    """Currents change with every input step, so by default (floor=auto) the membrane stops
    at zero instead of storing one step's negative input for the next ones."""
    g = rnn_graph(rnn_weights())
    pipeline = f"canonicalize,fold_batchnorm,threshold_balance,convert_to_spiking{{floor={floor}}}"
    snn = compile_model(g, Dataset(seqs, None, "seqs"), pipeline=pipeline).model
    assert snn.node("h").op.v_min == want


def test_neurons_of_a_constant_input_graph_keep_an_unbounded_membrane():
    b = GraphBuilder("mlp")
    x = b.input("x", (4,))
    fc = b.add(ops.Dense(3), [x], {"weight": np.eye(3, 4, dtype=np.float32), "bias": np.zeros(3, np.float32)}, name="fc")
    b.output(b.add(ops.ReLU(), [fc], name="h"))
    calib = Dataset(np.ones((8, 4), np.float32), None, "ones")
    assert compile_model(b.build(), calib).model.node("h").op.v_min is None
    floored = compile_model(b.build(), calib, pipeline="threshold_balance,convert_to_spiking{floor=zero}")
    assert floored.model.node("h").op.v_min == 0.0


def test_the_default_pipeline_leaves_a_sequence_model_uncalibrated_and_says_so(seqs):
    """calibrate matches each layer's mean output over one run of constant input; a sequence
    network's rates follow its input steps, so the default pipeline skips it, with a note."""
    from snnc.compiler.passes import PassManager

    graph, records = PassManager("default").run(rnn_graph(rnn_weights()), calibration={"x": seqs})
    assert records[-1].spec.name == "calibrate"
    assert [n["message"] for n in records[-1].notes] == [
        "not calibrated: calibration corrects networks with constant inputs, this one has sequence inputs"
    ]
    assert "calibrate" not in graph.meta
