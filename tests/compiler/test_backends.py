"""The backend registry: every backend builds and runs through the one interface, and the
driver and the CLI use whatever is registered (a fake backend becomes usable by registering
it), with one-line refusals for unknown names and networks a backend does not run."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest

from snnc.compiler import backends, ops
from snnc.compiler.cli import build_parser, main
from snnc.compiler.datasets import Dataset
from snnc.compiler.driver import compile_model, compiled_inputs, evaluate, write_artifact
from snnc.compiler.errors import SnncError
from snnc.compiler.graph import GraphBuilder
from snnc.compiler.simulate import SimulationResult, simulate

READOUT_TOL = dict(rtol=1e-6, atol=1e-6)  # float sums in another order (Nengo's)
STEPS = (4, 12)


def tiny_ann(rng):
    """8 inputs -> relu 6 -> relu 5 -> 3 classes: one host layer and one chip layer on Loihi."""
    b = GraphBuilder("tiny")
    x = b.input("x", (8,))
    for units in (6, 5):
        weight = rng.normal(size=(units, b.type_of(x).shape[0]))
        x = b.add(ops.ReLU(), [b.add(ops.Dense(units), [x], {"weight": weight, "bias": rng.normal(0.1, 0.1, units)})])
    b.output(b.add(ops.Dense(3), [x], {"weight": rng.normal(size=(3, 5)), "bias": np.zeros(3)}))
    return b.build()


@pytest.fixture(scope="module")
def loihi_compiled():
    """A network compiled for Loihi (it holds all three graphs), and data for it."""
    rng = np.random.default_rng(7)
    data = Dataset(rng.uniform(0, 1, (6, 8)).astype(np.float32), rng.integers(0, 3, 6), "uniform")
    compiled = compile_model(tiny_ann(rng), data, target="loihi")
    return compiled, data


@pytest.fixture(scope="module")
def references(loihi_compiled):
    """Independent results: the interpreter on the spiking graph, refsim on the chip's integers."""
    from snnc.backends import refsim

    compiled, data = loihi_compiled
    x, _ = compiled_inputs(compiled, data)
    return {
        "spiking": simulate(compiled.spiking, x, STEPS),
        "integer": refsim.simulate(compiled.model, x, STEPS, engine="numpy"),
    }


def test_the_registry_lists_the_backends():
    assert backends.names()[:6] == ("interp", "nengo", "nengo-dl", "refsim", "refsim-float", "loihi")
    assert backends.default_for(ops.SPIKING).name == "interp"
    assert backends.default_for(ops.INTEGER).name == "refsim"


@pytest.mark.parametrize("name", ["interp", "nengo", "nengo-dl", "refsim", "refsim-float", "loihi"])
def test_every_backend_builds_and_runs_through_the_one_interface(name, loihi_compiled, references):
    compiled, data = loihi_compiled
    spec = backends.get(name)
    x, _ = compiled_inputs(compiled, data)
    result = spec.build(compiled.graph_for(spec.graph)).run(x, list(STEPS), batch_size=4, progress=False, **spec.options)
    assert isinstance(result, SimulationResult)
    assert sorted(result.outputs) == list(STEPS)
    assert result.outputs[STEPS[-1]]["output"].shape == (len(data), 3)
    if spec.graph == "spiking":  # the interpreter's spikes exactly, readouts to rounding
        want = references["spiking"]
        for t in STEPS:
            np.testing.assert_allclose(result.outputs[t]["output"], want.outputs[t]["output"], **READOUT_TOL)
        assert {k: a.to_dict() for k, a in result.activity.items()} == {k: a.to_dict() for k, a in want.activity.items()}
    elif name in ("refsim", "loihi"):  # the chip's integers: NengoLoihi's emulator is refsim's spec bit for bit
        want = references["integer"]
        for t in STEPS:
            np.testing.assert_array_equal(result.outputs[t]["output"], want.outputs[t]["output"])
    else:  # refsim-float: the same chip network with NengoLoihi's float parameters
        assert result.mode == "float"
        assert result.activity.keys() == references["integer"].activity.keys()
    assert any(a.spikes for a in result.activity.values()), "vacuous: nothing spiked"


def test_unknown_names_and_networks_a_backend_does_not_run_are_refused(loihi_compiled, rng):
    compiled, data = loihi_compiled
    with pytest.raises(SnncError, match=r"^unknown backend 'bogus'; backends: interp, nengo, nengo-dl, refsim, "):
        evaluate(compiled, data, backend="bogus")
    nengo_compiled = compile_model(tiny_ann(rng), data)
    with pytest.raises(SnncError, match=r"^backend loihi runs networks compiled for Loihi \(snnc compile --target loihi\)"):
        evaluate(nengo_compiled, data, backend="loihi")


class FakeBuilt:
    """Runs the interpreter and records each call."""

    calls: list = []

    def __init__(self, graph):
        self.graph = graph

    def run(self, inputs, timesteps, *, batch_size, progress, reference=None):
        FakeBuilt.calls.append((self.graph.stage, list(timesteps), batch_size, reference is not None))
        return simulate(self.graph, inputs, timesteps, batch_size=batch_size, reference=reference)


@pytest.fixture
def fake_backend(monkeypatch):
    """A backend called ``fake`` in a module of its own, registered for this test."""
    module = types.ModuleType("snnc_fake_backend")
    module.build = FakeBuilt
    monkeypatch.setitem(sys.modules, module.__name__, module)
    FakeBuilt.calls = []
    spec = backends.Backend(
        "fake", module.__name__, "spiking", (ops.SPIKING, ops.INTEGER), "a test double", accepts=frozenset({"reference"})
    )
    backends.register(spec)
    yield spec
    backends.unregister("fake")


def test_a_registered_backend_is_usable_from_the_driver(fake_backend, loihi_compiled):
    compiled, data = loihi_compiled
    ours = evaluate(compiled, data, timesteps=[4, 12], backend="fake", batch_size=5)
    assert FakeBuilt.calls == [(ops.SPIKING, [4, 12], 5, True)]  # the spiking graph, and the options it accepts
    interp = evaluate(compiled, data, timesteps=[4, 12], backend="interp", batch_size=5)
    assert ours.backend == "fake" and ours.snn_accuracy == interp.snn_accuracy and ours.layers == interp.layers


def test_a_registered_backend_is_a_cli_choice(fake_backend, loihi_compiled, tmp_path, capsys):
    compiled, data = loihi_compiled
    evaluate_parser = build_parser()._subparsers._group_actions[0].choices["evaluate"]
    backend_choices = next(a.choices for a in evaluate_parser._actions if "--backend" in a.option_strings)
    assert "fake" in backend_choices
    artifact = write_artifact(compiled, tmp_path / "tiny")
    np.savez(tmp_path / "data.npz", x=data.x, y=data.y)
    assert main(["evaluate", str(artifact), "--data", str(tmp_path / "data.npz"), "--backend", "fake",
                 "--timesteps", "4,12", "--json"]) == 0
    assert FakeBuilt.calls and FakeBuilt.calls[0][:2] == (ops.SPIKING, [4, 12])
    assert '"backend": "fake"' in capsys.readouterr().out
