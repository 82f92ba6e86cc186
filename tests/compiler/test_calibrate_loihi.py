"""The chip's rate curve (reset to zero), the float reference of a Loihi graph, and
calibrate_loihi fitting the chip's rates to it, from a tiny network to the residual MNIST one."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from snnc.backends.refsim import simulator
from snnc.compiler import driver, ops
from snnc.compiler.errors import PassError
from snnc.compiler.graph import GraphBuilder
from snnc.compiler.passes.calibrate_loihi import calibrate_loihi, ideal_rates, relative_error

from loihi_testing import Layer, Net, Syn, snnc_graph

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared" / "data"
LOIHI_UNCALIBRATED = (
    "canonicalize,fold_batchnorm,maxpool_to_avgpool,threshold_balance,convert_to_spiking,"
    "lower_loihi{adapt=true},map_to_cores,quantize_loihi"
)


def bias_driven_population(vth: int, biases: np.ndarray, vmin: int = 0):
    """An integer Loihi graph: a host input layer whose synapses carry zero weight into
    compartments driven by their biases alone (a constant drive of ``bias`` per step)."""
    n = len(biases)
    b = GraphBuilder("bias_driven", stage=ops.INTEGER)
    x = b.input("x", (1,))
    host = b.add(ops.IfNeuron(), [x], name="host")
    syn = b.add(
        ops.LoihiSynapses("dense", "int", units=n, blocks=1),
        [host],
        params={"weight": np.zeros((n, 1), np.int32), "block": np.zeros(n, np.int32), "weight_exp": np.zeros(1, np.int32)},
        name="syn",
    )
    full = lambda v: np.full(n, v, np.int32)  # noqa: E731
    pop = b.add(
        ops.LoihiCompartments("relu", "int", decay_u=4095, decay_v=0, refract_delay=1),
        [syn],
        params={"vth": full(vth), "bias": np.asarray(biases, np.int32), "vmin": full(vmin), "vmax": full(2**23 - 1)},
        name="pop",
    )
    b.output(b.add(ops.Readout(), [pop], name="readout"))
    return b.build()


def test_chip_rate_with_reset_to_zero_is_one_over_floor_plus_one():
    """A compartment with constant drive ``x`` (no leak) reaches ``k x`` after ``k`` steps,
    fires when ``k x > vth`` (strictly) and restarts from 0, losing the remainder: one spike
    every ``floor(vth / x) + 1`` steps, not the ``x / vth`` of reset by subtraction."""
    vth, steps = 6400, 240
    biases = np.array([0, 100, 800, 1600, 1601, 2133, 3200, 3201, 4000, 6399, 6400, 6401])
    graph = bias_driven_population(vth, biases)
    counts = simulator.simulate(graph, np.zeros((1, 1)), [steps]).spike_counts["pop"][0]
    period = np.where(biases > 0, vth // np.maximum(biases, 1) + 1, 0)
    expected = np.where(period > 0, steps // np.maximum(period, 1), 0)
    np.testing.assert_array_equal(counts, expected)
    # the staircase lies below the line: a spike every 5 steps at x = vth/4 (strict threshold)
    assert counts[3] == steps // 5 and counts[4] == steps // 4
    assert np.all(counts <= steps * biases / vth)


def tiny_net(rng) -> Net:
    """host (8) -> relu dense (6) -> relu dense (4): mean drives of about 0.1..0.3 thresholds
    per step, where most of a converted network's neurons are (at higher rates the chip's
    staircase has few steps: one spike every 2 or 3 steps, nothing between)."""
    return Net(
        host_shape=(8,),
        layers=[
            Layer("relu", gain=1.0, bias=np.full(6, 50, np.float32), synapses=[Syn(-1, rng.uniform(0, 0.06, (6, 8)).astype(np.float32))]),
            Layer("relu", gain=1.0, bias=np.zeros(4, np.float32), synapses=[Syn(0, rng.uniform(-0.1, 0.3, (4, 6)).astype(np.float32))]),
        ],
    )  # fmt: skip


def test_ideal_rates_of_a_chip_graph_are_its_closed_form(rng):
    """Host rate ``clip(x, 0, 1)``; a chip layer ``clip(dt (W/dt r_pre amplitude gain + bias), 0, 1)``."""
    net = tiny_net(rng)
    graph, _ = snnc_graph(net)
    x = rng.uniform(-0.2, 1.2, (20, 8))
    rates = ideal_rates(graph, {"x": x})
    host = np.clip(x, 0, 1)
    first = np.clip(host @ net.layers[0].synapses[0].weight.T.astype(np.float64) + 50 * net.dt, 0, 1)
    second = np.clip(first @ net.layers[1].synapses[0].weight.T.astype(np.float64), 0, 1)
    np.testing.assert_allclose(rates["pop0"], first, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(rates["pop1"], second, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("fit", ["gain", "affine"])
def test_calibration_moves_the_chip_rates_to_the_float_ones(rng, fit):
    """Uncalibrated, reset to zero makes both layers fire well below their float rates; after
    calibrate_loihi each neuron's mean rate on the chip's float dynamics (refsim), on inputs
    it was not fitted on, is close to the float network's."""
    graph, _ = snnc_graph(tiny_net(rng))
    fit_x, check_x = rng.uniform(0, 1, (60, 8)), rng.uniform(0, 1, (60, 8))
    calibrated = calibrate_loihi(graph, calibration={"x": fit_x}, timesteps=64, examples=60, fit=fit)
    target = ideal_rates(graph, {"x": check_x})
    errors = {}
    for g in (graph, calibrated):
        counts = simulator.simulate(g, {"x": check_x}, [64]).spike_counts
        for name, depth in (("pop0", 1), ("pop1", 2)):
            rate = counts[name] / (64 - depth)
            mean_error = np.abs(rate.mean(0) - target[name].mean(0)) / target[name].mean(0)
            errors[g is calibrated, name] = mean_error.max(), relative_error(rate, target[name])
            if g is graph:  # every neuron fires too slowly
                assert np.all(rate.mean(0) < 0.9 * target[name].mean(0))
    for name in ("pop0", "pop1"):
        assert errors[True, name][0] < 0.1, errors
        assert errors[True, name][1] < 0.5 * errors[False, name][1], errors
    notes = [n["message"] for n in calibrated.meta["notes"] if n["pass"] == "calibrate_loihi"]
    assert len(notes) == 2 and all("chip rate error" in m for m in notes)
    assert calibrated.meta["calibrate_loihi"]["fit"] == fit
    assert len(calibrated.node("pop0").meta["chip_fit"]["gain"]) == 6


def test_calibration_refuses_graphs_it_cannot_fit(rng):
    graph, _ = snnc_graph(tiny_net(rng))
    with pytest.raises(PassError, match="fit=.*not one of"):
        calibrate_loihi(graph, calibration={"x": np.zeros((2, 8))}, fit="cubic")
    with pytest.raises(PassError, match="iterations=0"):
        calibrate_loihi(graph, calibration={"x": np.zeros((2, 8))}, iterations=0)
    lif = Net(host_shape=(8,), layers=[Layer("lif", gain=1.0, bias=np.zeros(3, np.float32), synapses=[Syn(-1, np.ones((3, 8), np.float32))])])
    with pytest.raises(PassError, match="relu compartments"):
        calibrate_loihi(snnc_graph(lif)[0], calibration={"x": np.zeros((2, 8))})


def mnist_accuracy(model, pipeline, n_test, timesteps):
    from snnc.compiler.api import load_model
    from snnc.compiler.datasets import load_dataset

    folder = SHARED / "mnist"
    if not folder.is_dir():
        pytest.skip("MNIST is absent from the shared data")
    train, test = load_dataset(folder, split="train"), load_dataset(folder).head(n_test)
    compiled = driver.compile_model(load_model(model), train, pipeline=pipeline, target="loihi", calibration_examples=200)
    return driver.evaluate(compiled, test, timesteps=timesteps, progress=False)


@pytest.mark.slow
def test_loihi_pipeline_recovers_lenet5_on_the_chip():
    """LeNet-5 (max pools replaced): uncalibrated the chip stays far below the float graph
    after the Loihi passes; the loihi pipeline (vmin=-1, calibrate_loihi) reaches it."""
    model = SHARED / "models" / "snn_toolbox" / "lenet5" / "keras" / "99.14.h5"
    if not model.is_file():
        pytest.skip("LeNet-5 is absent from the shared data")
    before = mnist_accuracy(model, LOIHI_UNCALIBRATED, 200, [64])
    after = mnist_accuracy(model, None, 200, [64])
    assert before.snn_accuracy[64] < before.float_accuracy - 0.05
    assert after.snn_accuracy[64] >= after.float_accuracy - 0.01


def test_loihi_pipeline_keeps_lenet5_at_its_float_graph_reduced():
    """The fast tier's version of the headline (docs/results.md: 98.6 % at T=64 on 1000 images,
    float graph 98.7 %): the loihi pipeline (max pools as relus, vmin=-1, calibrate_loihi) on
    100 test images, on refsim's integers, within one image of the float graph."""
    model = SHARED / "models" / "snn_toolbox" / "lenet5" / "keras" / "99.14.h5"
    if not model.is_file():
        pytest.skip("LeNet-5 is absent from the shared data")
    after = mnist_accuracy(model, None, 100, [64])
    assert after.float_accuracy == after.ann_accuracy  # the max pools stay exact
    assert after.snn_accuracy[64] >= after.float_accuracy - 0.01


@pytest.mark.slow
def test_loihi_pipeline_brings_the_residual_network_to_the_ann():
    """The residual MNIST network on refsim (the chip's integers), 200 test images at T=64:
    within 0.5 pt of the ANN (1 image), where the uncalibrated chip loses several points."""
    model = REPO / "benchmarks" / "models" / "mnist_resnet_bn.h5"
    after = mnist_accuracy(model, None, 200, [16, 64])
    assert after.snn_accuracy[64] >= after.ann_accuracy - 0.005
    before = mnist_accuracy(model, LOIHI_UNCALIBRATED, 200, [64])
    assert before.snn_accuracy[64] < after.snn_accuracy[64]


def with_vmin(graph, vmin: float):
    """``graph`` with every chip population's voltage floor at ``vmin`` thresholds."""
    from snnc.compiler.passes.rewrite import Rewriter

    rw = Rewriter(graph, "test")
    for node in graph.nodes:
        floored = isinstance(node.op, ops.LoihiCompartments)
        rw.keep(node, op=dataclasses.replace(node.op, vmin=vmin) if floored else None)
    return rw.finish()


def test_vmin_is_the_floor_nengo_loihi_builds(rng):
    """A floor of -1 threshold: snnc's integers are NengoLoihi's for every core block (its
    builder sets the block's vmin), about one threshold below zero (a power of two less 1)."""
    from snnc.backends import loihi
    from snnc.compiler.passes.map_to_cores import map_to_cores
    from snnc.compiler.passes.quantize_loihi import quantize_loihi

    net = tiny_net(rng)
    cored = map_to_cores(with_vmin(snnc_graph(net)[0], -1.0))
    ints = quantize_loihi(cored)
    blocks = loihi.discretized(loihi.build(cored))
    for name, population in blocks.items():
        for block in population:
            ours = ints.node(name).params["vmin"][block.compartments]
            np.testing.assert_array_equal(ours, block.vmin)
            vth = ints.node(name).params["vth"][block.compartments]
            assert np.all(ours < 0) and np.all((-ours + 1) & -ours == 0)  # -(2^k - 1)
            assert np.all(-ours > vth / 2) and np.all(-ours < 2 * vth)
    assert sum(len(p) for p in blocks.values()) == 2
    with pytest.raises(PassError, match="vmin=0.5 must be at most 0"):
        with_vmin(snnc_graph(net)[0], 0.5)
