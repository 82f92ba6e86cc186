"""The backend registry: every simulator snnc runs a compiled network on, by name.

A backend is a module with one function, ``build(graph) -> Built``, where ``Built`` has::

    Built.run(inputs, timesteps, *, batch_size, progress, **options) -> SimulationResult

(:class:`~snnc.compiler.simulate.SimulationResult`: each output after each requested T, and
the spike statistics of each neuron population). Its :class:`Backend` spec here says which
of a compiled network's graphs it runs, which compiled networks it takes, which of the
driver's run options it understands, and where its module is; the module is imported when
the backend is first built, so heavy libraries (Nengo, NengoLoihi, TensorFlow) stay unloaded
until then. The driver and the CLI look backends up here and never branch on their names;
:func:`register` adds one.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from .errors import SnncError
from .ops import INTEGER, SPIKING

#: which graph of a compiled network a backend runs (``driver.Compiled.graph_for``):
#: ``spiking`` the spiking graph (before any Loihi lowering), ``chip`` the float Loihi graph
#: (NengoLoihi's float parameters), ``integer`` the chip's integers (the final graph)
GRAPHS = ("spiking", "chip", "integer")

#: the compile target that makes a network of each final stage
TARGET_OF_STAGE = {SPIKING: "nengo", INTEGER: "loihi"}
STAGE_OF_TARGET = {target: stage for stage, target in TARGET_OF_STAGE.items()}


@dataclass(frozen=True)
class Backend:
    """One registered backend.

    ``graph``: which compiled graph it runs (one of :data:`GRAPHS`). ``stages``: the final
    stages of the compiled networks it takes (a network compiled for Loihi is integer).
    ``default_for``: the final stages for which it is the default backend. ``accepts``: the
    driver's run options it understands, beyond ``batch_size`` and ``progress``
    (``precision``, ``reference``). ``options``: fixed keyword arguments of its ``run``
    (e.g. which Nengo simulator).
    """

    name: str
    module: str
    graph: str
    stages: tuple[str, ...]
    summary: str
    default_for: tuple[str, ...] = ()
    accepts: frozenset[str] = frozenset()
    options: Mapping[str, object] = field(default_factory=dict)

    def __post_init__(self):
        if self.graph not in GRAPHS:
            raise ValueError(f"backend {self.name}: graph must be one of {', '.join(GRAPHS)}, got {self.graph!r}")
        object.__setattr__(self, "options", MappingProxyType(dict(self.options)))

    def runs(self, stage: str) -> bool:
        """Whether it runs networks whose final graph is of ``stage``."""
        return stage in self.stages

    def targets(self) -> list[str]:
        """The compile targets (``snnc compile --target``) whose networks it runs."""
        return [TARGET_OF_STAGE[s] for s in self.stages if s in TARGET_OF_STAGE]

    def refusal(self, stage: str) -> str:
        """Why a network of final ``stage`` is not for it: one line, naming the target to compile for."""
        targets = self.targets()
        wanted = " or ".join(t.capitalize() for t in targets)
        hint = " or ".join(f"snnc compile --target {t}" for t in targets)
        return f"backend {self.name} runs networks compiled for {wanted} ({hint}), not {stage} networks"

    def build(self, graph):
        """Its module's ``build(graph)`` (the module is imported now)."""
        return importlib.import_module(self.module).build(graph)

    def run(self, graph, inputs, timesteps, *, batch_size: int, progress, **options):
        """Build ``graph`` and run it; ``options`` it does not accept are left out."""
        accepted = {k: v for k, v in options.items() if k in self.accepts}
        built = self.build(graph)
        return built.run(inputs, timesteps, batch_size=batch_size, progress=progress, **accepted, **self.options)


_REGISTRY: dict[str, Backend] = {}


def register(backend: Backend) -> Backend:
    """Add ``backend`` (replacing one of the same name); returns it."""
    _REGISTRY[backend.name] = backend
    return backend


def unregister(name: str) -> None:
    _REGISTRY.pop(name, None)


def names() -> tuple[str, ...]:
    """The registered backends' names, in registration order."""
    return tuple(_REGISTRY)


def get(name: str) -> Backend:
    """The backend called ``name``; an unknown name is refused with the list of known ones."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise SnncError(f"unknown backend {name!r}; backends: {', '.join(_REGISTRY)}") from None


def default_for(stage: str) -> Backend:
    """The backend that runs networks of final ``stage`` unless another is asked for."""
    for backend in _REGISTRY.values():
        if stage in backend.default_for:
            return backend
    raise SnncError(f"no backend runs {stage} graphs; backends: {', '.join(_REGISTRY)}")


register(Backend(
    "interp", "snnc.compiler.simulate", "spiking", (SPIKING, INTEGER),
    "the batched NumPy interpreter of the spiking graph",
    default_for=(SPIKING,), accepts=frozenset({"precision", "reference"}),
))
register(Backend(
    "nengo", "snnc.backends.nengo", "spiking", (SPIKING, INTEGER),
    "nengo.Simulator, one example at a time", options={"simulator": "nengo"},
))
register(Backend(
    "nengo-dl", "snnc.backends.nengo", "spiking", (SPIKING, INTEGER),
    "nengo_dl.Simulator, in minibatches", options={"simulator": "nengo-dl"},
))
register(Backend(
    "refsim", "snnc.backends.refsim", "integer", (INTEGER,),
    "refsim: the chip's integers, bit for bit NengoLoihi's emulator",
    default_for=(INTEGER,), accepts=frozenset({"reference"}),
))
register(Backend(
    "refsim-float", "snnc.backends.refsim", "chip", (INTEGER,),
    "refsim on the same chip network with NengoLoihi's float parameters (the emulator's float mode)",
    accepts=frozenset({"reference"}),
))
register(Backend(
    "loihi", "snnc.backends.loihi", "chip", (INTEGER,),
    "NengoLoihi's emulator (or the chip, where NxSDK is installed)",
))
