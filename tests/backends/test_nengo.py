"""The Nengo backend against the spiking interpreter (float64): the same spike trains and
outputs at every step, in nengo.Simulator and in nengo_dl.Simulator (minibatched).

The graphs make every neuron population and the readouts outputs, and the comparison runs
at every T = 1..steps, so the whole spike train of each population is compared. Spikes
must be identical. Readouts may differ in the last float32 bit: Nengo sums a layer's
currents in a different order than NumPy's matrix products (the summed spikes are the
same), so readouts are compared to 1e-6 relative.
"""

import numpy as np
import pytest

from snnc.backends import nengo as nengo_backend
from snnc.compiler import ops
from snnc.compiler.errors import BuildError, SnncError
from snnc.compiler.graph import GraphBuilder
from snnc.compiler.passes import PassManager
from snnc.compiler.simulate import simulate

SIMULATORS = ["nengo", pytest.param("nengo-dl", id="nengo_dl")]
READOUT_TOL = dict(rtol=1e-6, atol=1e-6)


# ----------------------------------------------------------------------------- helpers


def weights(rng, *shape, scale=None):
    fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else 1
    return (rng.normal(size=shape) * (scale or 1.5 / np.sqrt(fan_in))).astype(np.float32)


def dense(b, rng, x, units):
    n = b.type_of(x).shape[0]
    return b.add(ops.Dense(units), [x], {"weight": weights(rng, units, n), "bias": weights(rng, units, scale=0.2)})


def conv(b, rng, x, filters, k=3, stride=1, pads=(1, 1, 1, 1), groups=1, dilation=(1, 1)):
    c = b.type_of(x).shape[0]
    op = ops.Conv2d(filters, (k, k), (stride, stride), pads, dilation, groups)
    params = {"weight": weights(rng, filters, c // groups, k, k), "bias": weights(rng, filters, scale=0.2)}
    return b.add(op, [x], params)


def spiking(name: str) -> GraphBuilder:
    return GraphBuilder(name, stage="spiking")


def neurons(b, x, **params):
    """An IF population whose spike train is also a graph output."""
    spikes = b.add(ops.IfNeuron(**{"v_init": 0.5, **params}), [x])
    b.output(spikes, name=f"{spikes}_out")
    return spikes


def readout(b, x, name="output"):
    b.output(b.add(ops.Readout(), [x]), name=name)


def compare(graph, x, steps, simulator, batch_size=3):
    """Run both; returns the interpreter's and the backend's results at T = 1..steps."""
    ts = range(1, steps + 1)
    want = simulate(graph, x, ts, precision="float64")
    got = nengo_backend.simulate(graph, x, ts, simulator=simulator, batch_size=batch_size)
    return want, got


def assert_agree(graph, x, steps, simulator, batch_size=3):
    """Identical spike trains (outputs of neurons and gates), readouts to READOUT_TOL,
    identical spike statistics."""
    want, got = compare(graph, x, steps, simulator, batch_size)
    readouts = {n.name for n in graph.outputs if isinstance(graph.node(n.inputs[0]).op, ops.Readout)}
    fired = 0
    for t in want.outputs:
        assert got.outputs[t].keys() == want.outputs[t].keys()
        for name, expected in want.outputs[t].items():
            assert got.outputs[t][name].shape == expected.shape and got.outputs[t][name].dtype == np.float32
            if name in readouts:
                np.testing.assert_allclose(got.outputs[t][name], expected, **READOUT_TOL, err_msg=f"{name} at T={t}")
            else:
                np.testing.assert_array_equal(got.outputs[t][name], expected, err_msg=f"{name} at T={t}")
                fired += int(np.count_nonzero(expected))
    assert fired > 0, "the test is vacuous: nothing spiked"
    assert got.activity.keys() == want.activity.keys()
    for name, activity in want.activity.items():
        assert got.activity[name].to_dict() == activity.to_dict(), name
    return want, got


# ----------------------------------------------------------------------------- graphs


def dense_net(rng, **if_params):
    b = spiking("dense")
    h = neurons(b, dense(b, rng, b.input("x", (6,)), 10), **if_params)
    h = neurons(b, dense(b, rng, h, 8), **if_params)
    readout(b, dense(b, rng, h, 3))
    return b.build()


def conv_pool_net(rng):
    """Conv 'same', average pooling, a strided conv with asymmetric pads, flatten, dense."""
    b = spiking("conv_pool")
    h = neurons(b, conv(b, rng, b.input("x", (2, 8, 8)), 4))
    h = b.add(ops.AvgPool2d((2, 2), (2, 2)), [h])
    h = neurons(b, conv(b, rng, h, 5, k=3, stride=2, pads=(0, 1, 1, 0)))
    h = b.add(ops.Reshape((b.type_of(h).size,)), [h])
    readout(b, dense(b, rng, h, 3))
    return b.build()


def residual_net(rng):
    """A residual add of a conv and the spikes before it, through an affine."""
    b = spiking("residual")
    a = neurons(b, conv(b, rng, b.input("x", (3, 6, 6)), 4))
    r = neurons(b, conv(b, rng, a, 4))
    scale = {"scale": rng.uniform(0.5, 1.5, 4).astype(np.float32), "shift": rng.normal(0, 0.2, 4).astype(np.float32)}
    s = neurons(b, b.add(ops.Add(), [conv(b, rng, r, 4), b.add(ops.Affine(), [a], scale)]))
    readout(b, dense(b, rng, b.add(ops.GlobalAvgPool(), [s]), 3))
    return b.build()


def concat_net(rng):
    """Concats along channels and along height, padding with a value, a grouped and a
    dilated conv, a Keras-style flatten (transpose to HWC, reshape)."""
    b = spiking("concat")
    x = b.input("x", (2, 6, 6))
    a = neurons(b, conv(b, rng, x, 4, groups=2))
    c = neurons(b, conv(b, rng, x, 2, k=2, pads=(2, 2, 0, 0), dilation=(2, 2)))
    h = b.add(ops.Concat(0), [a, c])
    h = b.add(ops.Concat(1), [h, h])
    h = neurons(b, conv(b, rng, b.add(ops.Pad2d((0, 1, 2, 1), 0.25), [h]), 3, pads=(0, 0, 0, 0)))
    h = b.add(ops.Transpose((1, 2, 0)), [h])
    readout(b, dense(b, rng, b.add(ops.Reshape((b.type_of(h).size,)), [h]), 4))
    return b.build()


def lif_net(rng, dt=0.001):
    b = spiking("lif")
    lif = ops.LifNeuron(tau_rc=0.02, tau_ref=0.002, dt=dt, gain=30.0, bias=1.0, amplitude=0.5)
    h = b.add(lif, [dense(b, rng, b.input("x", (6,)), 10)])
    b.output(h, name="lif_out")
    h = b.add(ops.IfNeuron(v_init=0.5), [dense(b, rng, h, 8)])
    b.output(h, name="if_out")
    readout(b, dense(b, rng, h, 3))
    return b.build()


def max_gate_net(rng, kernel=(2, 2), stride=(2, 2), pads=(0, 0, 0, 0)):
    b = spiking("gate")
    h = neurons(b, conv(b, rng, b.input("x", (2, 6, 6)), 3))
    gated = b.add(ops.SpikeMaxPool2d(kernel, stride, pads), [h])
    b.output(gated, name="gated")
    readout(b, dense(b, rng, b.add(ops.Reshape((b.type_of(gated).size,)), [gated]), 3))
    return b.build()


def inputs(rng, graph, n=4):
    return rng.uniform(0, 1, (n, *graph.inputs[0].type.shape)).astype(np.float32)


# ----------------------------------------------------------------------------- agreement

IF_PARAMS = {
    "subtract": dict(),
    "zero": dict(reset="zero"),
    "v_init_0": dict(v_init=0.0),
    "gain_amplitude": dict(threshold=2.0, gain=3.0, amplitude=0.5, v_init=1.0),
}


@pytest.mark.parametrize("simulator", SIMULATORS)
@pytest.mark.parametrize("params", IF_PARAMS.values(), ids=IF_PARAMS.keys())
def test_dense_if(params, simulator, rng):
    graph = dense_net(rng, **params)
    assert_agree(graph, inputs(rng, graph), 30, simulator)


GRAPHS = {"conv_pool": conv_pool_net, "residual": residual_net, "concat": concat_net}


@pytest.mark.parametrize("simulator", SIMULATORS)
@pytest.mark.parametrize("make", GRAPHS.values(), ids=GRAPHS.keys())
def test_conv_graphs(make, simulator, rng):
    graph = make(rng)
    assert_agree(graph, inputs(rng, graph), 20, simulator)


@pytest.mark.parametrize("simulator", SIMULATORS)
def test_lif(simulator, rng):
    graph = lif_net(rng)
    assert_agree(graph, inputs(rng, graph), 60, simulator)


GATES = {"2x2": ((2, 2), (2, 2), (0, 0, 0, 0)), "3x3_padded": ((3, 3), (2, 2), (1, 1, 1, 1)), "2x3": ((2, 3), (1, 2), (0, 1, 1, 0))}


@pytest.mark.parametrize("simulator", SIMULATORS)
@pytest.mark.parametrize("window", GATES.values(), ids=GATES.keys())
def test_max_gate(window, simulator, rng):
    graph = max_gate_net(rng, *window)
    assert_agree(graph, inputs(rng, graph), 20, simulator)
