"""The pass registry and pipeline strings.

A pass is a function ``fn(graph, *, option=default, ...) -> Graph`` registered by name. Its
keyword-only parameters are its options; their annotations (``str``, ``int``, ``float``,
``bool``) type the values parsed from a pipeline string::

    canonicalize,fold_batchnorm,threshold_balance{method=percentile,p=99.9},convert_to_spiking

A pipeline item that names a pipeline in :data:`PIPELINES` expands to that pipeline's passes.
Passes that need calibration data take a keyword ``calibration`` (inputs in the IR layout,
by input name) that the pass manager supplies; it is not a pipeline option. Passes that
compare a spiking graph with the float graph it was converted from take a keyword
``float_graph``: the manager supplies the last float graph of the pipeline (the one
``convert_to_spiking`` started from).
"""

from __future__ import annotations

import inspect
import re
import typing
from collections.abc import Callable
from dataclasses import dataclass, field

from ..errors import PassError, SnncError
from ..graph import Graph


class PipelineError(SnncError):
    """A pipeline string that names an unknown pass or option, or a bad option value."""


@dataclass(frozen=True)
class PassInfo:
    name: str
    fn: Callable[..., Graph]
    options: dict[str, tuple[type, object]]  # name -> (type, default)
    needs_calibration: bool
    needs_float_graph: bool = False

    @property
    def summary(self) -> str:
        return (inspect.getdoc(self.fn) or "").split("\n\n")[0].replace("\n", " ")


PASSES: dict[str, PassInfo] = {}

#: named pipelines; ``snnc compile --target T`` picks ``PIPELINES[T]`` unless one is given
PIPELINES: dict[str, str] = {
    # the best measured post-training method for T <= 32 (docs/results.md, "Low-latency
    # conversion"): per-channel balancing, then the initial membranes calibrated on the SNN's own
    # activity (Li et al. 2021) for T = 16
    "default": "canonicalize,fold_batchnorm,threshold_balance{per_channel=auto},convert_to_spiking,"
    "calibrate{mode=potential,timesteps=16}",
    # plain rate conversion (Rueckauer et al. 2017 with the membrane from half the threshold)
    "rate": "canonicalize,fold_batchnorm,threshold_balance,convert_to_spiking",
    "rate_v0": "canonicalize,fold_batchnorm,threshold_balance,convert_to_spiking{v_init=0.0}",
    # burst spikes (Li & Zeng 2022): up to 2 events per step, each worth half a spike
    "burst": "canonicalize,fold_batchnorm,threshold_balance{per_channel=auto},convert_to_spiking{bursts=2},"
    "calibrate{mode=potential,timesteps=16}",
    # targets that cannot gate: max pooling as relus computing the same maximum (exact)
    "maxpool_relu": "canonicalize,fold_batchnorm,maxpool_to_relu,threshold_balance,convert_to_spiking",
    # targets that cannot gate spikes by rate: replace max pooling (reported) before conversion
    "avgpool": "canonicalize,fold_batchnorm,maxpool_to_avgpool,threshold_balance,convert_to_spiking",
    # Loihi: max pooling after a relu becomes relus (exact), any other is averaged (noted);
    # the host input layer keeps reset by subtraction from half the threshold, chip
    # neurons reset to zero from zero (noted) with their voltage floor one threshold below
    # zero, their drive then fitted to the chip's own rates (docs/loihi.md: both together
    # recover the reset's loss); core blocks are chosen before quantization because
    # NengoLoihi discretizes each core block separately
    "loihi": "canonicalize,fold_batchnorm,maxpool_to_relu,maxpool_to_avgpool,threshold_balance,"
    "convert_to_spiking,lower_loihi{adapt=true,vmin=-1},calibrate_loihi,map_to_cores,quantize_loihi",
    "float": "canonicalize,fold_batchnorm",
    # BSNN (Li, Zeng & Zhao 2021; docs/bsnn.md): bistable neurons, synchronous residual branches
    "bsnn": "canonicalize,fold_batchnorm,threshold_balance,convert_to_spiking{neuron=bistable}",
    # Loihi with every max pool averaged (fewer neurons than maxpool_to_relu, less accurate)
    "loihi_avgpool": "canonicalize,fold_batchnorm,maxpool_to_avgpool,threshold_balance,"
    "convert_to_spiking,lower_loihi{adapt=true,vmin=-1},calibrate_loihi,map_to_cores,quantize_loihi",
}

_OPTION_TYPES = (str, int, float, bool)


def register_pass(name: str):
    """Decorator: register ``fn`` as the pass ``name``; options come from its signature."""

    def register(fn):
        hints = typing.get_type_hints(fn)
        options, needs_calibration, needs_float_graph = {}, False, False
        for param in inspect.signature(fn).parameters.values():
            if param.kind is not inspect.Parameter.KEYWORD_ONLY:
                continue
            if param.name == "calibration":
                needs_calibration = True
                continue
            if param.name == "float_graph":
                needs_float_graph = True
                continue
            kind = hints.get(param.name)
            if kind not in _OPTION_TYPES or param.default is inspect.Parameter.empty:
                raise TypeError(f"pass {name}: option {param.name} needs a default and a str/int/float/bool type")
            options[param.name] = (kind, param.default)
        PASSES[name] = PassInfo(name, fn, options, needs_calibration, needs_float_graph)
        return fn

    return register


@dataclass(frozen=True)
class PassSpec:
    """One pipeline item: a pass and the options given for it."""

    name: str
    options: dict = field(default_factory=dict)

    @property
    def info(self) -> PassInfo:
        return PASSES[self.name]

    def __str__(self) -> str:
        if not self.options:
            return self.name
        return self.name + "{" + ",".join(f"{k}={_format_option(v)}" for k, v in self.options.items()) + "}"


def _format_option(value) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


_ITEM = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*(?:\{([^{}]*)\})?\s*(?:,|$)")


def parse_pipeline(text: str) -> list[PassSpec]:
    """Parse ``"pass{opt=value,...},pass,..."``; named pipelines expand in place."""
    specs, pos, text = [], 0, text.strip()
    if not text:
        raise PipelineError("empty pipeline; passes: " + ", ".join(PASSES))
    if text.endswith(","):
        raise PipelineError(f"empty item at the end of the pipeline {text!r}; write pass{{option=value,...}},pass,...")
    while pos < len(text):
        m = _ITEM.match(text, pos)
        if not m and text[pos:].lstrip().startswith(","):
            raise PipelineError(f"empty item in the pipeline {text!r} at {text[pos:]!r}; write pass{{option=value,...}},pass,...")
        if not m:
            raise PipelineError(f"cannot parse the pipeline at {text[pos:]!r}; write pass{{option=value,...}},pass,...")
        name, body = m.group(1), m.group(2)
        pos = m.end()
        if name in PIPELINES and name not in PASSES:
            if body:
                raise PipelineError(f"pipeline {name} takes no options; give them to its passes")
            specs += parse_pipeline(PIPELINES[name])
            continue
        specs.append(_spec(name, body or ""))
    return specs


def _spec(name: str, body: str) -> PassSpec:
    info = PASSES.get(name)
    if info is None:
        known = ", ".join(PASSES) + "; pipelines: " + ", ".join(PIPELINES)
        raise PipelineError(f"unknown pass {name!r}; passes: {known}")
    options = {}
    for item in filter(None, (s.strip() for s in body.split(","))):
        key, eq, raw = item.partition("=")
        key = key.strip()
        if not eq and key in info.options:
            raise PipelineError(f"pass {name}: option {key} needs a value ({key}=...)")
        if not eq or key not in info.options:
            choices = ", ".join(f"{k} ({t.__name__}, default {_format_option(d)})" for k, (t, d) in info.options.items())
            raise PipelineError(f"pass {name}: unknown option {item!r}; options: {choices or 'none'}")
        options[key] = _convert(name, key, info.options[key][0], raw.strip())
    return PassSpec(name, options)


def _convert(pass_name: str, key: str, kind: type, raw: str):
    try:
        if kind is bool:
            if raw.lower() not in ("true", "false", "1", "0"):
                raise ValueError
            return raw.lower() in ("true", "1")
        return kind(raw)
    except ValueError:
        article = "an" if kind is int else "a"
        raise PipelineError(f"pass {pass_name}: option {key}={raw!r} is not {article} {kind.__name__}") from None


def check_choice(key: str, value, choices) -> None:
    """Raise a :class:`PassError` unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise PassError(f"option {key}={value!r} is not one of {', '.join(map(str, choices))}")
