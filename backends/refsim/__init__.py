"""refsim: a batched, cycle-accurate reference simulator of Loihi's neuron cores.

:func:`simulate` runs a Loihi graph (``loihi_synapses`` / ``loihi_compartments`` on the chip,
float host layers around them) for a whole data set, a batch of examples at a time, and
returns a :class:`RefsimResult`: the outputs at each requested T, every chip population's
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

Modules: :mod:`.arith` (integer helpers), :mod:`.synapses` (weighted spike sums: dense, and
conv with one kernel per core block), :mod:`.compartments` (the update), :mod:`.engine` (the
NumPy engine's step loop, batches, results), :mod:`.compiled` and :mod:`.kernel` (the compiled,
event-driven engine for integer mode: the same results, several times faster).
"""

from .engine import RefsimOverflowWarning, RefsimResult, plan, simulate

__all__ = ["RefsimOverflowWarning", "RefsimResult", "plan", "simulate"]
