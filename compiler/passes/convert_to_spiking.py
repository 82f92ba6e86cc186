"""convert_to_spiking: a (balanced) float graph becomes a spiking graph."""

from __future__ import annotations

import math

from .. import neurons, ops
from ..errors import PassError
from ..graph import Graph, Node
from ..neurons.if_ import IfNeuron
from ..neurons.lif import LifNeuron
from ..neurons.sigma_delta import SigmaDeltaNeuron
from .bistable import synchronize
from .leaky import split_leaky_relus
from .registry import check_choice, register_pass
from .rewrite import Rewriter

READOUTS = ("membrane", "spikes")
MAXPOOLS = ("gate", "avg")
FLOORS = ("auto", "zero", "none")


@register_pass("convert_to_spiking")
def convert_to_spiking(
    graph: Graph,
    *,
    neuron: str = "if",
    reset: str = "subtract",
    threshold: float = 1.0,
    v_init: float = 0.5,
    floor: str = "auto",
    max_rate: float = 1.0,
    bursts: int = 1,
    bits: int = 1,
    readout: str = "membrane",
    maxpool: str = "gate",
    tau_rc: float = 0.02,
    tau_ref: float = 0.002,
    dt: float = 0.001,
    period: int = 2,
    synapse: float = 0.005,
) -> Graph:
    """Replace each ReLU by a neuron population and read the outputs out over time.

    - ``neuron=if``: integrate-and-fire with ``reset`` by ``subtract`` (Rueckauer et al. 2017)
      or to ``zero``, firing threshold ``threshold``, membrane starting at ``v_init`` times
      the threshold (0.5 centres the rounding error of the rate code; Bu et al. 2022), the
      membrane floored at zero (``floor=zero``) or unbounded below (``floor=none``);
      ``floor=auto`` floors it in graphs with sequence inputs, whose currents change with
      each input step (an unbounded membrane would carry one step's negative input into the
      next ones, where the ReLU forgets it), and leaves it unbounded for constant inputs. A
      balanced activation ``a`` fires at ``max_rate * a`` spikes per step (gain
      ``threshold * max_rate``), each spike worth ``1 / max_rate``, so the mean output
      approaches ``min(a, 1 / max_rate)``. ``bursts=G > 1`` (reset by subtraction only) lets
      a neuron fire up to ``G`` spikes per step (burst spikes, Li & Zeng 2022; ``log2(G + 1)``
      bits per event) with its threshold effectively ``G`` times lower: ``a`` fires
      ``G * max_rate * a`` spikes per step, each worth ``1 / (G * max_rate)``. The saturation
      stays at ``a = 1 / max_rate``, and each step resolves ``G`` times finer, so the rate
      code's rounding error after T steps shrinks from ``1 / (max_rate * T)`` to ``1 / (G *
      max_rate * T)``: what helps at low T (raising the saturation instead would only help
      activations beyond the balanced range). Loihi fires one spike per step: it refuses bursts.
    - ``neuron=lif``: ``nengo.LIF`` dynamics (``tau_rc``, ``tau_ref``, step ``dt`` seconds),
      gain set so ``a = 1`` fires at ``max_rate`` spikes per step; its rate curve is not
      linear, so expect lower accuracy than ``if`` on ReLU-trained networks.
    - ``synapse``: the time constant ``tau_s`` (seconds) of a lowpass synapse on the input of
      every LIF population (``lif_neuron{tau_s}``: ``nengo.Lowpass`` on Nengo, the current
      decay on Loihi); ``0``: none, each spike a one-step current pulse. A LIF neuron resets
      to zero, so pulses fire it below its mean current's rate; the synapse gives that rate
      back (docs/results.md, ``softlif-synapse``) at the cost of about ``tau_s / dt`` steps of
      latency per layer. IF neurons integrate exactly and take no synapse.
    - ``neuron=sigma_delta``: sigma-delta neurons over a relu (Voelker et al. 2020): each step
      adds ``max_rate * (2^bits - 1) * a`` to ``v`` and sends ``floor(v)`` events (at most
      ``2^bits - 1``, ``bits`` bits), each worth ``1 / (max_rate * (2^bits - 1))``, keeping the
      rest; ``v_init`` as for ``if``. ``bits`` and ``bursts`` both cap the events per step
      (``bits=B`` as ``bursts=2^B - 1``) but quantize different things: an IF membrane
      integrates the input and rectifies its output, a sigma-delta neuron rectifies each
      step's input (negative input is ignored, not subtracted from what came before), as
      models trained with keras-spiking's ``SpikingActivation`` expect. ``bits`` is
      sigma-delta's option, ``bursts`` IF's; Loihi 1 refuses ``bits > 1``.
    - ``neuron=bistable``: bistable integrate-and-fire (BSNN, docs/bsnn.md), cycles of
      ``period`` steps, each layer integrating during one cycle and firing during the next;
      phases follow the levels of the graph and synchronous neurons delay early residual
      branches (:mod:`.bistable`); readouts average over their integrate cycles, so the
      first output comes after ``depth * period`` steps.
    - The first layer takes the analog input as a constant current at every step.
    - ``max_pool2d`` becomes a ``spike_max_pool2d`` gate (``maxpool=gate``) or average
      pooling (``maxpool=avg``, reported).
    - ``readout=membrane``: each output is the time-averaged current into the output layer
      (its accumulated membrane over T); ``readout=spikes``: the output layer gets neurons
      too and the output is their spike count over T (for rectified outputs).
    - A clipped relu ``min(relu(x), m)`` is exact where ``m = 1 / max_rate``, the neuron's
      saturation (threshold balancing makes ``m = 1`` where the clip is reached); any other
      clip is reported.
    - A leaky relu becomes two neuron layers, ``relu(x) - a * relu(-x)`` (:mod:`.leaky`).
    - Activations trained for spiking neurons (``ops.TRAINED_OPS``) convert to the neurons they
      were trained for, whatever ``neuron``, ``reset``, ``threshold``, ``max_rate`` and ``bursts``
      say (those configure the neurons that stand in for ReLUs; ``v_init`` and ``bits`` apply to
      ``spiking_relu`` too); each population's
      metadata says ``"trained": op name``, which ``calibrate`` and the driver read:

      ``qcfs{levels=L, threshold=lambda, shift}`` becomes ``if_neuron{threshold=lambda, gain=1,
      amplitude=lambda, v_init=shift*lambda, reset=subtract}`` (one spike per step; the membrane
      floored at 0 where ``floor`` floors it, which changes nothing for a constant input): in
      T steps of a constant input it fires ``clip(floor(x T / lambda + shift), 0, T)`` spikes,
      so its mean output is the qcfs activation exactly at ``T = L`` (Bu et al. 2022), and at
      other T the same formula with ``levels = T`` (the clipped ReLU to within ``lambda *
      max(shift, 1 - shift) / T``); ``meta["spiking"]["recommended_timesteps"]`` is the largest
      ``L``, and a note says "T >= L recommended". With ``neuron=lif`` the qcfs layers stay ``if`` (a LIF curve would undo the trained
      quantization; a note says so); ``neuron=bistable`` is refused (its cycles need every
      population bistable).

      ``soft_lif{tau_rc, tau_ref, amplitude, sigma}`` becomes ``lif_neuron{tau_rc, tau_ref,
      gain=1, bias=1, amplitude=amplitude/dt, dt, tau_s}`` (``dt``: this pass's option, seconds
      per step; ``tau_s``: ``synapse``): its mean output per step is ``amplitude`` times the hard
      LIF rate curve in Hz, the trained curve with ``sigma = 0`` (the smoothing only served the
      gradients).

      ``spiking_relu{dt}`` (keras-spiking's ``SpikingActivation("relu")``) becomes
      ``sigma_delta_neuron{base=relu, gain=1, dt, amplitude=1/dt, bits, v_init}`` with the
      trained ``dt`` (not this pass's) and this pass's ``bits`` and ``v_init``: each step it adds
      ``relu(x) dt`` to ``v`` and sends ``floor(v)`` events of height ``1 / dt``, keras-spiking's
      ``call_inference``, except that ``v`` starts at ``v_init`` (keras-spiking draws it from
      U[0, 1)) and that at most ``2^bits - 1`` events leave per step (keras-spiking has no
      cap). With sequence inputs held T steps, one input step is T such steps: T = 1 is
      keras-spiking's own time axis.
    - sigmoid, tanh and softmax cannot spike: just before an output they run on the host on
      the readout's time-averaged value, ``output(f(readout(x)))``; anywhere else they are
      refused.
    """
    check_choice("neuron", neuron, tuple(neurons.NEURONS))
    check_choice("reset", reset, neurons.if_.RESETS)
    check_choice("readout", readout, READOUTS)
    check_choice("maxpool", maxpool, MAXPOOLS)
    check_choice("floor", floor, FLOORS)
    for key, value in (("threshold", threshold), ("max_rate", max_rate), ("dt", dt), ("tau_rc", tau_rc), ("bursts", bursts), ("bits", bits)):
        if not value > 0:
            raise PassError(f"option {key}={value} must be positive")
    if neuron == "bistable" and graph.sequence:
        raise PassError("neuron=bistable needs constant inputs: its cycles would cut across the input steps of a sequence")
    floored = floor == "zero" or (floor == "auto" and graph.sequence)
    if synapse < 0:
        raise PassError(f"option synapse={synapse} must be 0 (none) or a positive time constant in seconds")
    options = dict(
        threshold=threshold, reset=reset, v_init=v_init, v_min=0.0 if floored else None, tau_rc=tau_rc, tau_ref=tau_ref, dt=dt,
        period=period,
        bursts=bursts, bits=bits,
        tau_s=synapse,
    )
    neuron_op = neurons.by_name(neuron).from_relu(max_rate=max_rate, **options)
    trained_sigma_delta = any(isinstance(n.op, ops.SpikingRelu) for n in graph.nodes)
    if bits != 1 and neurons.by_name(neuron).bits_per_event(neuron_op) != bits and not trained_sigma_delta:
        raise PassError(f"option bits={bits} sizes sigma-delta events (neuron=sigma_delta, or spiking_relu layers); "
                        f"neuron={neuron} does not take it")
    if graph.stage != ops.FLOAT:
        raise PassError(f"runs on float graphs; this one is {graph.stage}")
    graph = split_leaky_relus(graph, "convert_to_spiking")
    rw = Rewriter(graph, "convert_to_spiking")
    balanced = "threshold_balance" in graph.meta
    if not balanced:
        rw.note(graph.nodes[0], "the graph is not threshold-balanced: neurons fire at the raw activation values")
    trained = [node for node in graph.nodes if isinstance(node.op, ops.TRAINED_OPS)]
    if trained and neuron == "bistable":
        raise rw.fail(trained[0], "neuron=bistable cannot convert activations trained for IF or LIF neurons "
                                  "(its cycles need every population bistable); use neuron=if")
    for node in graph.nodes:
        op = node.op
        if isinstance(op, ops.ReLU):
            _check_relu(rw, node, max_rate)
            rw.keep(node, op=neuron_op)
            if neuron == "sigma_delta" and node is next(n for n in graph.nodes if isinstance(n.op, ops.ReLU)):
                # measured in tests/compiler/test_convert_to_spiking.py: bits=1 plateaus far from the ANN
                rw.note(node, "sigma-delta neurons rectify each step's input: a layer fed by events keeps an error that "
                              "T does not average away (it shrinks with bits)")
        elif isinstance(op, ops.TRAINED_OPS):
            trained_op = trained_neurons(op, floored=floored, dt=dt, tau_s=synapse, bits=bits, v_init=v_init)
            rw.keep(node, op=trained_op, meta={**node.meta, "trained": op.NAME})
            if isinstance(op, ops.Qcfs) and neuron != "if":
                rw.note(node, f"qcfs layers stay integrate-and-fire neurons (neuron={neuron} applies to relu layers)")
            if isinstance(op, ops.SoftLif) and op.sigma > 0:
                # the float graph keeps the softened curve; say where the two part
                rw.note(node, f"LIF neurons fire on the hard LIF curve: the trained curve's smoothing sigma={op.sigma:g} "
                              "(below and just above the threshold) is not kept")
        elif isinstance(op, ops.MaxPool2d):
            if maxpool == "gate":
                rw.keep(node, op=ops.SpikeMaxPool2d(op.kernel, op.stride, op.pads))
            else:
                rw.keep(node, op=ops.AvgPool2d(op.kernel, op.stride, op.pads))
                rw.note(node, "max pooling replaced by average pooling (maxpool=avg); accuracy may drop")
        elif isinstance(op, ops.Output):
            if isinstance(graph.node(node.inputs[0]).op, ops.DECODED_OPS):
                rw.keep(node)  # its input already reads the readout
            else:
                rw.keep(node, inputs=[_read_out(rw, node.inputs[0], readout, neuron_op)])
        elif isinstance(op, ops.DECODED_OPS):
            _check_decoded(rw, graph, node)
            if isinstance(graph.node(node.inputs[0]).op, ops.DECODED_OPS):
                rw.keep(node)
            else:
                rw.keep(node, inputs=[_read_out(rw, node.inputs[0], readout, neuron_op)])
                rw.note(node, f"{op.NAME} has no spiking form: it runs on the host on the time-averaged readout")
        elif isinstance(op, ops.BatchNorm):
            raise rw.fail(node, "has no spiking form; run fold_batchnorm before convert_to_spiking")
        else:
            rw.keep(node)
    if not any(isinstance(n.op, (ops.ReLU, *ops.TRAINED_OPS)) for n in graph.nodes):
        # the "spiking" network would be the ANN itself, its output read as a constant current
        raise PassError(
            f"{graph.name} has no relu layer, so no layer becomes spiking neurons; "
            "convert_to_spiking turns relu activations (plain or clipped), qcfs, soft_lif and spiking_relu into neurons"
        )
    cycles = {"period": period} if neuron == "bistable" else {}
    bursting = {"bursts": bursts} if bursts > 1 else {}
    bursting |= {"bits": bits} if bits > 1 else {}
    levels = {n.name: n.op.levels for n in trained if isinstance(n.op, ops.Qcfs)}
    recommended = {"recommended_timesteps": max(levels.values())} if levels else {}
    if levels:
        longest = max(levels, key=levels.get)
        rw.note(longest, f"QCFS trained with L={levels[longest]}: T >= {levels[longest]} recommended "
                         "(its neurons compute the trained activation exactly at T = L)")
    meta = {**graph.meta, "spiking": {
        "neuron": neuron, "max_rate": max_rate, "readout": readout, **cycles, **bursting, **recommended,
    }}
    spiking = rw.finish(stage=ops.SPIKING, meta=meta)
    return synchronize(spiking, period) if neuron == "bistable" else spiking


def trained_neurons(op, *, floored: bool, dt: float, tau_s: float, bits: int, v_init: float):
    """The population an activation of ``ops.TRAINED_OPS`` was trained for."""
    if isinstance(op, ops.Qcfs):
        return qcfs_neurons(op, floored)
    if isinstance(op, ops.SoftLif):
        return soft_lif_neurons(op, dt, tau_s)
    return spiking_relu_neurons(op, bits, v_init)


def qcfs_neurons(op: ops.Qcfs, floored: bool) -> IfNeuron:
    """The IF population whose mean output over ``T = levels`` steps of a constant input is
    ``op`` exactly: threshold and amplitude lambda, membrane from ``shift * lambda``, reset by
    subtraction (floored at 0 where ``floored``, or at the start if that is lower)."""
    start = op.shift * op.threshold
    return IfNeuron(
        threshold=op.threshold, gain=1.0, reset="subtract", v_init=start, amplitude=op.threshold,
        v_min=min(0.0, start) if floored else None,
    )


def soft_lif_neurons(op: ops.SoftLif, dt: float, tau_s: float) -> LifNeuron:
    """The LIF population with the trained time constants whose mean output per step of ``dt``
    seconds is ``op.amplitude`` times its rate in Hz (bias 1: the input is the current above
    the threshold, as in the op), its input through a synapse of ``tau_s`` seconds."""
    return LifNeuron(tau_rc=op.tau_rc, tau_ref=op.tau_ref, dt=dt, gain=1.0, bias=1.0, amplitude=op.amplitude / dt, tau_s=tau_s)


def spiking_relu_neurons(op: ops.SpikingRelu, bits: int, v_init: float) -> SigmaDeltaNeuron:
    """keras-spiking's spiking relu: sigma-delta neurons stepping every trained ``dt``
    seconds, gain 1, events of height ``1 / dt`` (so the mean output is the trained rate
    ``relu(x)``), up to ``2^bits - 1`` per step, ``v`` from ``v_init`` of an event."""
    return SigmaDeltaNeuron(base="relu", gain=1.0, bits=bits, amplitude=1.0 / op.dt, v_init=v_init, dt=op.dt)


def _read_out(rw: Rewriter, name: str, readout: str, neuron_op) -> str:
    """The time-averaged value of the old graph's value ``name`` (through neurons first
    for ``readout=spikes``)."""
    x = rw.value(name)
    if readout == "spikes":
        x = rw.insert(neuron_op, [x], name=f"{name}_neurons")
    return rw.insert(ops.Readout(), [x], name=f"{name}_readout")


def _check_decoded(rw: Rewriter, graph: Graph, node: Node) -> None:
    """Sigmoid, tanh and softmax convert only where nothing but outputs (or another of them
    on the way to an output) reads them."""
    ok = (ops.Output, *ops.DECODED_OPS)
    users = graph.users(node.name)
    if not all(isinstance(u.op, ok) for u in users):
        reader = next(u for u in users if not isinstance(u.op, ok))
        raise rw.fail(
            node,
            f"cannot be spiking neurons (read by %{reader.name}); sigmoid, tanh and softmax convert only as the "
            "last operation before an output, where they run on the host on the time-averaged value; spiking "
            "layers take relu, clipped relu (relu6, hard sigmoid) or leaky relu",
        )


def _check_relu(rw: Rewriter, node: Node, max_rate: float) -> None:
    op = node.op
    if op.negative_slope != 0 or op.threshold != 0:
        raise rw.fail(
            node,
            "only a plain or clipped relu converts to spiking neurons, or a leaky one without threshold "
            f"(negative_slope={op.negative_slope}, threshold={op.threshold})",
        )
    if op.max_value is not None and not math.isclose(op.max_value, 1 / max_rate, rel_tol=1e-6):
        rw.note(node, f"clipped relu (max {op.max_value:g} after balancing) becomes a neuron that saturates at {1 / max_rate:g}")
