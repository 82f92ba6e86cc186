"""A recurrent spiking graph on every backend: the spiking interpreter, nengo, nengo-dl and
refsim (the Loihi graph ``lower_loihi`` makes, in float and integer mode) against one
NumPy loop written here from the ops' equations.

The graph: a sequence input (or a constant one) -> a host IF layer ``a`` -> a recurrent IF
layer ``h`` (``W a_t + U h_{t-L}``, reset to zero from zero, as a Loihi compartment) -> a
dense readout. A delay spans one input step: ``L = T`` simulation steps with sequence inputs
(each held ``T`` steps), ``L = 1`` with constant inputs.

Its numbers are chosen so that Loihi's integers represent it exactly: the weights into ``h``
are whole multiples of ``UNIT`` (at most 28 of them per step: the chip's current keeps no
remainder), its threshold lies half a unit between two sums of weights (so ``v >= vth`` and
the chip's ``v > vth`` agree), and nothing inhibits (the chip's membrane stops at 0). One
host neuron of ``a`` never fires; its weight of 127.5 units is the largest into ``h``, so
the core block's weight scale maps every unit to exactly 2 weight steps (the largest
weight itself is clipped to 127 steps, on a neuron that never fires).

On the chip a population runs one step behind the graph (host spikes reach it one step
late), so refsim's raster of ``h`` is the reference raster one step later, and its outputs
are the readout of that later raster.
"""

from __future__ import annotations

import numpy as np
import pytest

from snnc.backends import nengo as nengo_backend
from snnc.compiler import ops
from snnc.compiler.graph import GraphBuilder
from snnc.compiler.simulate import simulate
from snnc.compiler.types import TensorType

pytestmark = pytest.mark.filterwarnings(
    "ignore:No GPU support detected",
    "error:.*does not have a native TensorFlow implementation",
)

F, A, H, O = 2, 5, 3, 2
UNIT = 1 / 8
THRESHOLD = 6.5 * UNIT  # between 6 and 7 units: never reached exactly
SILENT = A - 1  # the host neuron that never fires
READOUT_TOL = dict(rtol=1e-6, atol=1e-6)


def parameters(seed=3) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    wa = rng.uniform(0.3, 1.2, (A, F))
    wa[SILENT] = 0.0
    w = rng.integers(0, 5, (H, A)) * UNIT
    w[:, SILENT] = 0.0
    w[0, SILENT] = 127.5 * UNIT
    return {
        "wa": wa.astype(np.float32),
        "w": w.astype(np.float32),
        "u": (rng.integers(0, 5, (H, H)) * UNIT).astype(np.float32),
        "v": rng.normal(0, 1, (O, H)).astype(np.float32),
        "c": rng.normal(0, 0.1, O).astype(np.float32),
    }


def recurrent_graph(p, sequence: bool = True):
    """``a = IF(Wa x)`` (host), ``h = IF(W a + U delay(h))`` (reset to zero), ``y = V h + c``;
    outputs: the readout of ``y``, the readout of ``h`` (per window: its spike counts / T)
    and ``h`` itself (at each window's end)."""
    b = GraphBuilder("recurrent", ops.SPIKING)
    x = b.input("x", (F,), sequence=sequence)
    a = b.add(ops.Dense(A), [x], {"weight": p["wa"], "bias": np.zeros(A, np.float32)}, name="wa")
    a = b.add(ops.IfNeuron(v_init=0.5), [a], name="a")
    h_prev = b.delay(TensorType((H,), "spike"), name="h_prev")
    forward = b.add(ops.Dense(H), [a], {"weight": p["w"], "bias": np.zeros(H, np.float32)}, name="forward")
    back = b.add(ops.Dense(H), [h_prev], {"weight": p["u"], "bias": np.zeros(H, np.float32)}, name="back")
    current = b.add(ops.Add(), [forward, back])
    h = b.add(ops.IfNeuron(threshold=THRESHOLD, reset="zero", v_init=0.0), [current], name="h")
    b.close_delay(h_prev, h)
    y = b.add(ops.Dense(O), [h], {"weight": p["v"], "bias": p["c"]}, name="y")
    b.output(b.add(ops.Readout(), [y], name="y_mean"), name="output", sequence=sequence)
    b.output(b.add(ops.Readout(), [h], name="h_mean"), name="h_rate", sequence=sequence)
    b.output(h, name="h_out", sequence=sequence)
    return b.build()


# ----------------------------------------------------------------------------- the reference


def reference_rasters(p, x, hold: int, delay: int):
    """The spikes of ``a`` and ``h`` at every step ``(N, steps * hold, n)`` for input steps
    ``x (N, steps, F)`` each held ``hold`` steps, ``h``'s spikes fed back ``delay`` steps later."""
    f64 = {k: v.astype(np.float64) for k, v in p.items()}
    n, steps = x.shape[:2]
    va, vh = np.full((n, A), 0.5), np.zeros((n, H))
    a_raster, h_raster = [], []
    for t in range(steps * hold):
        va += x[:, t // hold].astype(np.float64) @ f64["wa"].T
        a = (va >= 1.0).astype(np.float64)
        va -= a
        fed_back = h_raster[t - delay] if t >= delay else np.zeros((n, H))
        vh += a @ f64["w"].T + fed_back @ f64["u"].T
        h = (vh >= THRESHOLD).astype(np.float64)
        vh[h > 0] = 0.0
        a_raster.append(a)
        h_raster.append(h)
    return np.stack(a_raster, axis=1), np.stack(h_raster, axis=1)


def windowed(p, h_raster, hold: int) -> dict[str, np.ndarray]:
    """The graph's outputs per window of ``hold`` steps from ``h``'s raster: the readouts'
    window means and ``h`` at each window's last step."""
    n, total, _ = h_raster.shape
    windows = h_raster.reshape(n, total // hold, hold, H)
    y = h_raster @ p["v"].T.astype(np.float64) + p["c"]
    return {
        "output": y.reshape(n, total // hold, hold, O).mean(axis=2),
        "h_rate": windows.mean(axis=2),
        "h_out": windows[:, :, -1],
    }


@pytest.fixture
def sequences(rng):
    return rng.uniform(0, 1, (4, 5, F)).astype(np.float32)


def test_the_reference_is_not_vacuous(sequences):
    """Both layers fire, the recurrence changes h's spikes, and the silent neuron is silent."""
    p = parameters()
    a, h = reference_rasters(p, sequences, 3, 3)
    assert a[..., :SILENT].any() and not a[..., SILENT].any()
    assert 0.1 < h.mean() < 0.9
    _, h_open = reference_rasters({**p, "u": np.zeros_like(p["u"])}, sequences, 3, 3)
    assert (h != h_open).any()
    # at most 28 units of current per step reach h (the chip's current then keeps no remainder)
    units = (np.abs(p["w"][:, :SILENT]).sum(axis=1) + np.abs(p["u"]).sum(axis=1)) / UNIT
    assert units.max() <= 28


# ----------------------------------------------------------------------------- interpreter, nengo


def assert_outputs(got: dict, want: dict, where: str):
    """Spikes and spike rates (window counts / T, as float32) exactly; the readout of ``y``
    to READOUT_TOL (backends sum the dense layer in different orders)."""
    for name, expected in want.items():
        if name == "output":
            np.testing.assert_allclose(got[name], expected, **READOUT_TOL, err_msg=f"{name} {where}")
        else:
            np.testing.assert_array_equal(got[name], expected.astype(np.float32), err_msg=f"{name} {where}")


@pytest.mark.parametrize("hold", [1, 3])
def test_interpreter_runs_the_recurrence_as_the_reference(sequences, hold):
    p = parameters()
    _, h = reference_rasters(p, sequences, hold, hold)
    got = simulate(recurrent_graph(p), sequences, [hold]).outputs[hold]
    assert_outputs(got, windowed(p, h, hold), f"T={hold}")


@pytest.mark.parametrize("simulator", ["nengo", "nengo-dl"])
def test_nengo_runs_the_recurrence_spike_for_spike(sequences, simulator):
    """T = 1 (the whole raster at the window ends) and T = 3 (per-window spike counts)."""
    p = parameters()
    graph = recurrent_graph(p)
    got = nengo_backend.simulate(graph, sequences, [1, 3], simulator=simulator, batch_size=3)
    want = simulate(graph, sequences, [1, 3], precision="float64")
    for hold in (1, 3):
        _, h = reference_rasters(p, sequences, hold, hold)
        assert_outputs(got.outputs[hold], windowed(p, h, hold), f"T={hold} ({simulator})")
    for name, activity in want.activity.items():
        assert got.activity[name].to_dict() == activity.to_dict(), name


@pytest.mark.parametrize("simulator", ["nengo", "nengo-dl"])
def test_constant_input_recurrence(sequences, simulator):
    """Constant inputs: the delay spans one step; outputs after every T = 1..12 (so ``h_out``
    is the whole raster) on the interpreter and nengo / nengo-dl."""
    p = parameters()
    graph = recurrent_graph(p, sequence=False)
    x = sequences[:, 0]
    _, h = reference_rasters(p, x[:, None], 12, 1)
    ts = range(1, 13)
    interpreted = simulate(graph, x, ts).outputs
    in_nengo = nengo_backend.simulate(graph, x, ts, simulator=simulator, batch_size=3).outputs
    for t in ts:
        want = {k: v[:, 0] for k, v in windowed(p, h[:, :t], t).items()}
        assert_outputs(interpreted[t], want, f"interpreter T={t}")
        assert_outputs(in_nengo[t], want, f"{simulator} T={t}")


def test_a_delay_with_an_initial_value_in_nengo(sequences):
    """``init`` is the delay's value until its input arrives."""
    b = GraphBuilder("init", ops.SPIKING)
    x = b.input("x", (F,), sequence=True)
    d = b.delay(TensorType((F,)), name="late", init=0.25)
    b.close_delay(d, x)
    b.output(b.add(ops.Readout(), [b.add(ops.Add(), [x, d])]), sequence=True)
    graph = b.build()
    want = simulate(graph, sequences, [2]).outputs[2]["output"]
    shifted = np.concatenate([np.full_like(sequences[:, :1], 0.25), sequences[:, :-1]], axis=1)
    np.testing.assert_allclose(want, sequences + shifted, rtol=1e-6)
    got = nengo_backend.simulate(graph, sequences, [2]).outputs[2]["output"]
    np.testing.assert_allclose(got, want, **READOUT_TOL)


# ----------------------------------------------------------------------------- Loihi lowering


def loihi_graphs(sequence: bool = True):
    """The recurrent graph lowered for Loihi (float chip parameters) and quantized."""
    from snnc.compiler.passes.lower_loihi import lower_loihi
    from snnc.compiler.passes.map_to_cores import map_to_cores
    from snnc.compiler.passes.quantize_loihi import quantize_loihi

    lowered = lower_loihi(recurrent_graph(parameters(), sequence))
    return lowered, quantize_loihi(map_to_cores(lowered))


def test_lowering_makes_the_recurrence_a_delayed_synapse():
    from snnc.compiler.text import parse, print_graph

    lowered, quantized = loihi_graphs()
    recurrent = lowered.node("h_from_h_prev")
    assert recurrent.op.delay == 1 and recurrent.inputs == ("h_prev",)
    assert lowered.node("h_prev").inputs == ("h",)
    assert lowered.node("h_from_a").op.delay == 0
    np.testing.assert_array_equal(recurrent.params["weight"], parameters()["u"])
    params = {f"{n.name}.{k}": v for n in quantized.nodes for k, v in n.params.items()}
    assert parse(print_graph(quantized), params) == quantized


def test_the_chip_integers_represent_the_graph_exactly():
    """Every weight unit is 2 weight steps of 64 (2^6, weight exponent 0) and the threshold
    13 steps: the chip's ``v > 13 * 64`` on sums of even steps is the graph's ``v >= 6.5``
    units. Only the silent neuron's weight is clipped."""
    _, quantized = loihi_graphs()
    p = parameters()
    step = 64
    forward, back = quantized.node("h_from_a").params, quantized.node("h_from_h_prev").params
    np.testing.assert_array_equal(forward["weight_exp"], [0])
    np.testing.assert_array_equal(forward["weight"][:, :SILENT], np.rint(p["w"][:, :SILENT] / UNIT) * 2 * step)
    np.testing.assert_array_equal(back["weight"], np.rint(p["u"] / UNIT) * 2 * step)
    np.testing.assert_array_equal(quantized.node("h").params["vth"], 13 * step)
    np.testing.assert_array_equal(quantized.node("h").params["bias"], 0)


def test_map_to_cores_counts_a_split_recurrent_population():
    """Split into two blocks, ``h``'s spikes reach both of its own blocks: its output axons
    are counted with its final block shape, as for any other connection."""
    from snnc.compiler.passes.map_to_cores import core_usage, map_to_cores

    lowered, _ = loihi_graphs()
    cores = map_to_cores(lowered, max_compartments=2).node("h").meta["cores"]
    assert len(cores["blocks"]) == 2
    want = core_usage(lowered, {"h": tuple(cores["block_shape"])})["h"]
    assert [b["output_axons"] for b in cores["blocks"]] == [u.output_axons for u in want]
    assert [b["input_axons"] for b in cores["blocks"]] == [u.input_axons for u in want]
    assert [u.output_axons for u in want] == [2 * 2, 1 * 2]  # each neuron: an axon to each block


def test_lowering_refuses_a_recurrence_it_cannot_place(rng):
    """A delay of the host layer into the chip, and a delay that starts with spikes."""
    from snnc.compiler.errors import PassError
    from snnc.compiler.passes.lower_loihi import lower_loihi

    graph = recurrent_graph(parameters())
    nodes = [n.replace(inputs=("a",), type=TensorType((A,), "spike")) if n.name == "h_prev" else n for n in graph.nodes]
    ones = np.ones((H, A), np.float32)
    nodes = [n.replace(params={**n.params, "weight": ones}) if n.name == "back" else n for n in nodes]
    with pytest.raises(PassError, match="h_prev = delay.*delays %a \\(if_neuron\\), not a chip population"):
        lower_loihi(graph.replace(nodes=nodes))
    nodes = [n.replace(op=ops.Delay(init=1.0)) if n.name == "h_prev" else n for n in graph.nodes]
    with pytest.raises(PassError, match="starts at init=1; a delay of chip spikes starts with no spikes"):
        lower_loihi(graph.replace(nodes=nodes))


def test_the_loihi_backend_refuses_recurrence_by_name():
    from snnc.backends.loihi.builder import partition
    from snnc.compiler.errors import BuildError

    lowered, _ = loihi_graphs(sequence=False)
    with pytest.raises(BuildError, match="h_from_h_prev: a recurrent synapse delayed one input step"):
        partition(lowered)
    with pytest.raises(BuildError, match="input %x is a sequence"):
        partition(loihi_graphs()[0])


# ----------------------------------------------------------------------------- refsim


def chip_lag(raster: np.ndarray) -> np.ndarray:
    """``raster`` one step later: what a chip population does (host spikes reach it a step
    late), with nothing in its first step."""
    return np.concatenate([np.zeros_like(raster[:, :1]), raster[:, :-1]], axis=1)


@pytest.mark.parametrize("mode", ["float", "int"])
@pytest.mark.parametrize("hold", [1, 3])
def test_refsim_runs_the_recurrence_one_step_later(sequences, mode, hold):
    """The chip's raster of ``h`` is the reference's one step later (the recurrent synapse's
    latency of exactly T steps keeps the loop's timing); the outputs read that raster."""
    from snnc.backends import refsim

    p = parameters()
    lowered, quantized = loihi_graphs()
    result = refsim.simulate(lowered if mode == "float" else quantized, sequences, [hold], record="spikes")
    _, h = reference_rasters(p, sequences, hold, hold)
    later = chip_lag(h)
    np.testing.assert_array_equal(result.spikes["h"], later.astype(bool))
    assert_outputs(result.outputs[hold], windowed(p, later, hold), f"refsim {mode} T={hold}")


@pytest.mark.parametrize("mode", ["float", "int"])
def test_refsim_constant_input_recurrence(sequences, mode):
    from snnc.backends import refsim

    p = parameters()
    lowered, quantized = loihi_graphs(sequence=False)
    x = sequences[:, 0]
    result = refsim.simulate(lowered if mode == "float" else quantized, x, range(1, 13), record="spikes")
    _, h = reference_rasters(p, x[:, None], 12, 1)
    later = chip_lag(h)
    np.testing.assert_array_equal(result.spikes["h"], later.astype(bool))
    for t in range(1, 13):
        want = {k: v[:, 0] for k, v in windowed(p, later[:, :t], t).items()}
        assert_outputs(result.outputs[t], want, f"refsim {mode} T={t}")


def test_refsim_leaves_recurrence_to_its_numpy_engine(sequences):
    """``engine="auto"`` falls back to the specification; asking for the kernel says why not."""
    from snnc.backends import refsim
    from snnc.compiler.errors import BuildError

    _, quantized = loihi_graphs()
    with pytest.raises(BuildError, match="compiled engine: sequence inputs and delays .* run on the NumPy engine"):
        refsim.simulate(quantized, sequences, [2], engine="compiled")
    auto = refsim.simulate(quantized, sequences, [2]).outputs[2]
    spec = refsim.simulate(quantized, sequences, [2], engine="numpy").outputs[2]
    for name in auto:
        np.testing.assert_array_equal(auto[name], spec[name])


# ----------------------------------------------------------------------------- a float recurrence compiled for Loihi


def float_rnn(seed=0):
    """``a = relu(Wa x_t + b)``, ``h_t = relu(W a_t + U h_{t-1})``, ``y_t = V h_t``."""
    rng = np.random.default_rng(seed)
    n_a, n_h = 16, 12
    b = GraphBuilder("float_rnn")
    x = b.input("x", (F,), sequence=True)
    wa = {"weight": rng.uniform(-0.2, 0.45, (n_a, F)).astype(np.float32), "bias": np.full(n_a, 0.05, np.float32)}
    a = b.add(ops.ReLU(), [b.add(ops.Dense(n_a), [x], wa, name="wa")], name="a")
    h_prev = b.delay(TensorType((n_h,)), name="h_prev")
    w = {"weight": rng.uniform(-0.1, 0.22, (n_h, n_a)).astype(np.float32), "bias": np.zeros(n_h, np.float32)}
    u = {"weight": rng.uniform(-0.15, 0.15, (n_h, n_h)).astype(np.float32), "bias": np.zeros(n_h, np.float32)}
    forward, back = b.add(ops.Dense(n_h), [a], w, name="forward"), b.add(ops.Dense(n_h), [h_prev], u, name="back")
    s = b.add(ops.Add(), [forward, back])
    h = b.add(ops.ReLU(), [s], name="h")
    b.close_delay(h_prev, h)
    v = {"weight": rng.normal(0, 1, (O, n_h)).astype(np.float32), "bias": np.zeros(O, np.float32)}
    b.output(b.add(ops.Dense(O), [h], v, name="y"), sequence=True)
    return b.build()


def test_a_float_recurrence_compiled_for_loihi_runs_on_refsim():
    """The loihi pipeline (``--target loihi``) compiles the recurrence to chip integers, and
    refsim runs it about as accurately as the spiking interpreter runs the same neurons.

    ``lower_loihi{adapt=true}`` makes the chip population reset to zero from zero (the
    spiking graph's resets by subtraction from 0.5): the reference is the interpreter on
    that adapted graph (relative error 0.27 at T=32 here, against 0.08 with subtraction:
    the reset, not the recurrence, costs the rest; a feed-forward version loses as much).
    refsim adds the chip's one-step lag, ``v > vth`` and quantization on top: its error may
    exceed the reference's by 0.05, and its outputs approach the reference's as T grows."""
    import dataclasses

    from snnc.backends import refsim
    from snnc.compiler.interpreter import run
    from snnc.compiler.passes import PassManager

    graph = float_rnn()
    x = np.random.default_rng(1).uniform(0, 1, (32, 6, F)).astype(np.float32)
    want = run(graph, x)["output"]
    compiled, records = PassManager("loihi", keep_graphs=True).run(graph, calibration=x)
    assert compiled.stage == ops.INTEGER and compiled.node("h_from_h_prev").op.delay == 1
    spiking = next(r.graph for r in records if r.spec.name == "convert_to_spiking")
    chip_neurons = dataclasses.replace(spiking.node("h").op, reset="zero", v_init=0.0)
    adapted = spiking.replace(nodes=[n.replace(op=chip_neurons) if n.name == "h" else n for n in spiking.nodes])
    scale = np.abs(want).mean()
    error, apart = {}, {}
    for t in (8, 32):
        interpreted = simulate(adapted, x, [t]).outputs[t]["output"]
        on_chip = refsim.simulate(compiled, x, [t]).outputs[t]["output"]
        error[t] = np.abs(interpreted - want).mean() / scale, np.abs(on_chip - want).mean() / scale
        apart[t] = np.abs(on_chip - interpreted).mean() / scale
    assert error[32][0] < error[8][0] and error[32][1] < error[8][1], error
    assert error[32][1] < error[32][0] + 0.05, error
    assert apart[32] < apart[8] / 2 and apart[32] < 0.2, apart
