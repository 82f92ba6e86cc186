"""Activations beyond ReLU through balancing and conversion: clipped ReLU (relu6, hard
sigmoid), leaky ReLU, and sigmoid / tanh / softmax as the last op before an output. Each
balanced graph is checked against the float interpreter, and each spiking network's readout
must approach the float network's output as T grows."""

import numpy as np
import pytest

from pass_testing import assert_same_outputs, dense, notes, op_names
from snnc.compiler import interpreter, ops
from snnc.compiler.errors import PassError
from snnc.compiler.graph import GraphBuilder
from snnc.compiler.passes import PassManager
from snnc.compiler.passes.threshold_balance import threshold_balance
from snnc.compiler.simulate import simulate

TIMESTEPS = (8, 64, 512)
PIPELINE = "canonicalize,threshold_balance,convert_to_spiking"


def mlp(rng, hidden_activation, head=None, gain=1.0):
    """input(8) -> dense(16) -> ``hidden_activation`` (list of ops applied in order, each
    with params) -> dense(4) -> ``head`` -> output. ``gain`` scales the first layer's weights
    (to push a clipped activation into saturation)."""
    b = GraphBuilder("act")
    x = dense(b, rng, b.input("input", (8,)), 16, name="fc1")
    for op, params in hidden_activation(16):
        x = b.add(op, [x], params)
    if gain != 1.0:
        x = b.add(ops.Affine(), [x], {"scale": np.full(16, gain, np.float32), "shift": np.zeros(16, np.float32)})
    y = dense(b, rng, x, 4, name="logits")
    if head is not None:
        y = b.add(head, [y], name="head")
    b.output(y)
    return b.build()


def relu(**kw):
    return lambda c: [(ops.ReLU(**kw), None)]


def hard_sigmoid(c):
    line = {"scale": np.full(c, 0.2, np.float32), "shift": np.full(c, 0.5, np.float32)}
    return [(ops.Affine(), line), (ops.ReLU(max_value=1.0), None)]


def data(rng, n=64):
    return rng.uniform(-1, 1, size=(n, 8)).astype(np.float32)


def spiking_errors(ann, x, pipeline=PIPELINE):
    """Mean absolute error of the spiking readout at each T against the float network, and
    the float output's mean magnitude."""
    snn, _ = PassManager(pipeline).run(ann, calibration=x)
    want = interpreter.run(ann, x)["output"]
    result = simulate(snn, x, TIMESTEPS)
    return snn, [float(np.abs(result.outputs[t]["output"] - want).mean()) for t in TIMESTEPS], float(np.abs(want).mean())


def assert_converges(errors, scale, bound):
    assert all(later < earlier for earlier, later in zip(errors, errors[1:])), errors
    assert errors[-1] < errors[0] / 4, errors
    assert errors[-1] < bound * scale, (errors, scale)


def fc1_relu(graph):
    return next(n for n in graph.nodes if isinstance(n.op, ops.ReLU))


# ----------------------------------------------------------------------------- clipped relu


def test_a_saturating_clip_becomes_the_neurons_saturation(rng):
    """A relu6 that saturates often: the scale is exactly 6, so the clip is max_value 1."""
    ann = mlp(rng, relu(max_value=6.0), gain=1.0)
    x = data(rng) * 20  # most units beyond 6
    balanced = threshold_balance(ann, calibration=x)
    node = fc1_relu(balanced)
    assert node.op.max_value == 1.0
    assert node.meta["scale"] == 6.0 and node.meta["clip"] == "at saturation"
    assert_same_outputs(ann, balanced, x)


def test_a_clip_not_reached_keeps_the_statistic(rng):
    """A clip above every calibration activation: the scale is the percentile, below 6."""
    ann = mlp(rng, relu(max_value=6.0))
    x = data(rng) * 0.5
    balanced = threshold_balance(ann, calibration=x)
    node = fc1_relu(balanced)
    assert node.meta["scale"] < 6.0 and node.op.max_value == pytest.approx(6.0 / node.meta["scale"])
    assert node.meta["clip"] == "max_value 6 above the scale"
    assert_same_outputs(ann, balanced, x)


# Measured with seed 0 (MAE at T = 8, 64, 512 | mean |output|), error ~ 1/T as for plain relu:
#   relu6 0.077 0.010 0.0013 | 5.6;  hard_sigmoid 0.026 0.0034 0.0004 | 1.1;  leaky 0.074 0.010 0.0014 | 0.75
#   sigmoid 0.015 0.0020 0.0003 | 0.48;  tanh 0.043 0.0059 0.0008 | 0.54;  softmax 0.011 0.0017 0.0002 | 0.25
# so the bound (1 % of the mean |output| at T=512) leaves a margin of about 5.
@pytest.mark.parametrize("activation, scale_x", [(relu(max_value=6.0), 20.0), (hard_sigmoid, 6.0)], ids=["relu6", "hard_sigmoid"])
def test_clipped_relus_spike_towards_the_clipped_output(activation, scale_x, rng):
    ann = mlp(rng, activation)
    x = data(rng) * scale_x  # many units saturate: the clip matters
    clipped = interpreter.run(ann, x, keep=True)[fc1_relu(ann).name]
    assert (clipped == fc1_relu(ann).op.max_value).mean() > 0.2, "the test is vacuous: the clip is not reached"
    snn, errors, scale = spiking_errors(ann, x)
    assert_converges(errors, scale, 0.01)


# ----------------------------------------------------------------------------- leaky relu


def test_leaky_relu_is_balanced_as_two_rectifiers(rng):
    ann = mlp(rng, relu(negative_slope=0.2))
    x = data(rng)
    balanced = threshold_balance(ann, calibration=x)
    names = op_names(balanced)
    assert names.count("relu") == 2 and names.count("add") == 1 and "relu" not in names[names.index("add"):]
    scales = [n.meta["scale"] for n in balanced.nodes if isinstance(n.op, ops.ReLU)]
    assert len(scales) == 2 and scales[0] != scales[1]  # each part by its own statistic
    assert_same_outputs(ann, balanced, x)


@pytest.mark.parametrize("pipeline, scale_x", [(PIPELINE, 1.0), ("convert_to_spiking", 0.3)], ids=["balanced", "unbalanced"])
def test_leaky_relu_spikes_towards_the_float_output(pipeline, scale_x, rng):
    """Unbalanced, the parts are in the neurons' range only for small inputs."""
    ann = mlp(rng, relu(negative_slope=0.2))
    x = data(rng) * scale_x
    assert (interpreter.run(ann, x, keep=True)[fc1_relu(ann).name] < 0).mean() > 0.2
    snn, errors, scale = spiking_errors(ann, x, pipeline)
    assert sum(isinstance(n.op, ops.IfNeuron) for n in snn.nodes) == 2
    assert_converges(errors, scale, 0.01)


def test_leaky_relu_with_threshold_is_refused(rng):
    ann = mlp(rng, relu(negative_slope=0.2, threshold=0.1))
    with pytest.raises(PassError, match=r"%relu = relu: only a plain or clipped relu .* \(negative_slope=0.2, threshold=0.1\)"):
        PassManager("convert_to_spiking").run(ann)


# ----------------------------------------------------------------------------- decoded activations


@pytest.mark.parametrize("head", [ops.Sigmoid(), ops.Tanh(), ops.Softmax()], ids=["sigmoid", "tanh", "softmax"])
def test_output_activations_run_on_the_decoded_value(head, rng):
    ann = mlp(rng, relu(), head=head)
    x = data(rng)
    snn, errors, scale = spiking_errors(ann, x, "threshold_balance,convert_to_spiking")
    assert op_names(snn)[-3:] == ["readout", head.NAME, "output"]
    assert ("head", f"{head.NAME} has no spiking form: it runs on the host on the time-averaged readout") in notes(snn)
    assert_converges(errors, scale, 0.01)


@pytest.mark.parametrize("inner", [ops.Sigmoid(), ops.Tanh()], ids=["sigmoid", "tanh"])
def test_inner_sigmoid_and_tanh_are_refused(inner, rng):
    ann = mlp(rng, lambda c: [(inner, None)])
    x = data(rng)
    assert_same_outputs(ann, threshold_balance(ann, calibration=x), x)  # the float passes take them
    message = rf"%{inner.NAME} = {inner.NAME}: cannot be spiking neurons \(read by %logits\); sigmoid, tanh and softmax"
    with pytest.raises(PassError, match=message):
        PassManager(PIPELINE).run(ann, calibration=x)
