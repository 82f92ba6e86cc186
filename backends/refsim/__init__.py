"""refsim: a batched, cycle-accurate reference simulator of Loihi's neuron cores.

It runs a Loihi graph (``loihi_synapses`` / ``loihi_compartments`` on the chip, float host
layers around them) for a whole batch of inputs at once and is, in integer mode, bit for bit
NengoLoihi's emulator: the same phase order per step (papers.md B3), the same integer
arithmetic (:mod:`.arith`), the same one-step spike latency.
"""

from .engine import RefsimOverflowWarning, RefsimResult, plan, simulate

__all__ = ["RefsimOverflowWarning", "RefsimResult", "plan", "simulate"]
