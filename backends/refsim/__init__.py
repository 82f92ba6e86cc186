"""refsim: a batched, cycle-accurate reference simulator of Loihi's neuron cores.

:func:`build` checks a Loihi graph (``loihi_synapses`` / ``loihi_compartments`` on the chip,
float host layers around them); :meth:`Refsim.run` (or :func:`simulate`, both at once) runs
it for a whole data set, a batch of examples at a time, and returns a :class:`RefsimResult`: the outputs at each requested T, every chip population's
spike counts (and rasters with ``record="spikes"``), final voltages and currents, firing
statistics per population and the wrap-arounds of the fixed-width arithmetic.

- Integer mode (an integer-stage graph, ``format="int"``): bit for bit NengoLoihi's emulator
  (``target="sim"``): the same phase order per step (papers.md B3), the same integer
  arithmetic (:mod:`.arith`, each rule a small function with its formula), the same
  one-step spike latency from host and chip populations alike.
- Float mode (a spiking-stage graph, ``format="float"``): the emulator's float mode
  (``target="simreal"``) with NengoLoihi's float parameters (:mod:`snnc.compiler.loihi.chip`):
  float32 state and formulas as the emulator has them; synaptic input is summed in float64
  and rounded once where the emulator adds spike by spike in float32, so voltages agree to a
  few float32 ulps.

Modules: the specification, :mod:`.arith` (integer helpers), :mod:`.synapses` (weighted spike
sums: dense, and conv with one kernel per core block), :mod:`.compartments` (the update) and
:mod:`.engine` (the NumPy engine: one batch, step by step, in the emulator's phase order);
:mod:`.plan` (a graph checked and prepared, shared by both engines); :mod:`.compiled` and
:mod:`.kernel` (the compiled, event-driven engine for integer mode: the same results, several
times faster, tested against the specification); :mod:`.simulator` (:func:`build` and
:meth:`Refsim.run`: the backend interface, batches in threads, results).
"""

from .plan import plan
from .simulator import Refsim, RefsimOverflowWarning, RefsimResult, build, simulate

__all__ = ["Refsim", "RefsimOverflowWarning", "RefsimResult", "build", "plan", "simulate"]
