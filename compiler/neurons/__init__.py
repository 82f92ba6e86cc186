"""Neuron types: one module per type (as in ``nengo.neurons``), found through one registry.

A neuron type is a :class:`Neuron` subclass in ``compiler/neurons/<name>.py`` that declares

- ``OP``: its IR op (a frozen dataclass registered in :data:`snnc.compiler.ops.OPS`);
- :meth:`~Neuron.initial_state` and :meth:`~Neuron.step`: THE float definition of its dynamics,
  written over arrays, ``step(p, state, x, xp) -> (new state, events)``, so that the same
  function steps NumPy arrays (the interpreter, refsim's host layers, the Nengo neuron type)
  and TensorFlow tensors (the nengo-dl builder): ``xp`` is :data:`NUMPY` or :func:`tensorflow_math`;
- :meth:`~Neuron.rates`: the steady-state rate curve (events' mean value per step for a
  constant input), which balancing, conversion, reports and training layers use;
- :meth:`~Neuron.from_relu`: the population ``convert_to_spiking`` puts in place of a ReLU;
- where it has them, its forms for the backends, by name in ``FORMS`` (``loihi``: what
  ``lower_loihi`` makes of it; ``nengo``, ``loihi_host``, ``nengo_dl``: the builders).

A backend asks :func:`form` for a neuron's form and gets a :class:`NeuronError` naming the neuron
and the backend when there is none; it never switches over neuron classes. Every module of this
package is loaded with the package (:func:`load_modules`), and the package with
:mod:`snnc.compiler`, so the registry and :data:`snnc.compiler.ops.OPS` are complete wherever
ops are used.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, ClassVar

import numpy as np

from ..errors import SnncError

#: the forms a neuron may have (:meth:`Neuron.forms` returns a subset), and what each is; not the
#: names of :mod:`snnc.compiler.backends` (``loihi_host``, ``nengo_dl`` serve parts of backends):
#: ``loihi``: ``(op, b, dt) -> LoihiForm`` for the input's constant part ``b``; ``nengo`` and
#: ``loihi_host``: ``(op, dt) -> NengoNeuron``, a spike output worth ``amplitude`` in Nengo, or a
#: NengoLoihi host population whose type's ``amplitude`` is the op's; ``nengo_dl``: ``()``, which
#: registers TensorFlow builders for the ``nengo`` form's neuron types
FORMS = ("loihi", "nengo", "loihi_host", "nengo_dl")

#: the array functions a step may use, on NumPy arrays (:func:`tensorflow_math` for tensors)
NUMPY = SimpleNamespace(
    where=np.where, zeros_like=np.zeros_like, clip=np.clip, maximum=np.maximum, floor=np.floor, expm1=np.expm1,
    log1p=np.log1p, exp=np.exp, log=np.log, minimum=np.minimum,
)


@dataclass(frozen=True)
class ChipDifference:
    """How a chip population differs from the neurons it stands for: ``note`` when
    ``lower_loihi{adapt=true}`` runs it anyway, ``refusal`` (with the fix) otherwise."""

    note: str
    refusal: str


@dataclass(frozen=True)
class LoihiForm:
    """What ``lower_loihi`` makes of a population: the ``loihi_compartments`` op (NengoLoihi's
    float parameters), the compartments' bias (one per neuron) and how the chip differs."""

    compartments: Any
    bias: np.ndarray
    differs: ChipDifference | None


@dataclass(frozen=True)
class NengoNeuron:
    """A population's Nengo form: the ``nengo.neurons.NeuronType``, the ensemble's gain
    and bias (``J = gain * x + bias`` with ``x`` the population's input) and the synapse of
    the connection that brings ``x`` (None: unfiltered, in the same step)."""

    neuron_type: Any
    gain: float
    bias: float
    synapse: Any = None


class NeuronError(SnncError):
    """A neuron asked for by a name, op or backend form that the registry does not know."""


class Neuron:
    """Base class of neuron types; subclasses hold no state (one instance is registered)."""

    #: the name ``convert_to_spiking{neuron=...}`` and the docs use
    NAME: ClassVar[str] = ""
    #: the IR op of a population of these neurons
    OP: ClassVar[type] = object
    #: whether :meth:`rates` is a clipped line through 0, as a ReLU's (then a balanced ReLU
    #: network converts without a rate-curve error; otherwise the driver measures that error)
    LINEAR_RATES: ClassVar[bool] = False

    def initial_state(self, p, shape: tuple[int, ...]) -> dict[str, np.ndarray]:
        """The state at ``t = 0`` of neurons with parameters ``p`` (the op), float64."""
        raise NotImplementedError

    def step(self, p, state: dict, x, xp=NUMPY) -> tuple[dict, object]:
        """One step: ``state`` and input ``x`` in, the new state and the events (booleans, who
        spiked, or each neuron's count of spikes) out. ``p`` has the op's parameters as
        attributes (scalars, or per-neuron tensors in nengo-dl); the inputs are not modified."""
        raise NotImplementedError

    def rates(self, p, x: np.ndarray) -> np.ndarray:
        """Mean output per step (events times amplitude) for the constant input ``x``."""
        raise NotImplementedError

    def output_steps(self, p, steps: int) -> int:
        """The steps that a population's output over a run of ``steps`` steps stands for: the
        denominator of its mean output (all of them; bistable neurons: their fire cycles')."""
        return steps

    def bits_per_event(self, p) -> float:
        """Bits one event of neurons ``p`` carries (1: a spike or none); reports show it, and
        Loihi, whose spikes are 1 bit, refuses more."""
        return 1.0

    def from_relu(self, *, max_rate: float, **options):
        """The op that stands in for a balanced ReLU (activation ``a`` -> rate ``max_rate * a``
        spikes per step, each worth ``1 / max_rate``); ``options``: convert_to_spiking's."""
        raise NotImplementedError

    def forms(self) -> dict:
        """Per form name (of :data:`FORMS`), the function that builds this neuron there."""
        return {}


NEURONS: dict[str, Neuron] = {}
_BY_OP: dict[type, Neuron] = {}


def register(cls: type[Neuron]) -> type[Neuron]:
    """Class decorator: make a neuron type known by its name and its op (which becomes one of
    ``ops.NEURON_OPS`` and ``ops.STATEFUL_OPS``)."""
    neuron = cls()
    if cls.NAME in NEURONS or cls.OP in _BY_OP:
        raise ValueError(f"neuron {cls.NAME} (op {cls.OP.NAME}) is already registered")
    cls.OP.NEURON = cls.OP.STATEFUL = True
    NEURONS[cls.NAME] = neuron
    _BY_OP[cls.OP] = neuron
    return cls


def unregister(name: str) -> None:
    """Remove a neuron type (tests register throwaway ones)."""
    neuron = NEURONS.pop(name)
    del _BY_OP[neuron.OP]


def by_name(name: str) -> Neuron:
    if name not in NEURONS:
        raise NeuronError(f"unknown neuron {name!r}; neurons: {', '.join(sorted(NEURONS))}")
    return NEURONS[name]


def by_op(op) -> Neuron | None:
    """The neuron type whose op ``op`` is (an op or an op class), or None for other ops."""
    return _BY_OP.get(op if isinstance(op, type) else type(op))


def op_types() -> tuple[type, ...]:
    """The ops of all registered neuron types."""
    return tuple(_BY_OP)


def form(op, backend: str):
    """The function that builds neurons of op ``op`` on ``backend``; a :class:`NeuronError`
    naming both when the neuron has none there."""
    neuron = by_op(op)
    if neuron is None:
        raise NeuronError(f"{op.NAME} is not a neuron op")
    build = neuron.forms().get(backend)
    if build is None:
        have = ", ".join(neuron.forms()) or "none"
        raise NeuronError(f"neuron {neuron.NAME} ({op.NAME}) has no {backend} form (it has: {have})")
    return build


def tensorflow_math():
    """:data:`NUMPY`'s functions on TensorFlow tensors (imports TensorFlow)."""
    import tensorflow as tf

    return SimpleNamespace(
        where=tf.where,
        zeros_like=tf.zeros_like,
        clip=tf.clip_by_value,
        maximum=tf.maximum,
        floor=tf.math.floor,
        expm1=tf.math.expm1,
        log1p=tf.math.log1p,
        exp=tf.math.exp,
        log=tf.math.log,
        minimum=tf.minimum,
    )


def load_modules() -> None:
    """Import every neuron module of this package (each registers itself)."""
    for info in pkgutil.iter_modules(__path__):
        if not info.name.startswith("_"):
            importlib.import_module(f"{__name__}.{info.name}")


load_modules()
