"""Converters for the Keras layers that train networks for spiking neurons, read from their
config and weights like any other layer (no code from ``snnc.training`` or nengo-extras
runs): ``SoftLIF`` -> ``soft_lif``, ``QCFS`` -> ``qcfs``.

Their configs name them as custom classes (:data:`.config.TRAINED_LAYERS`), so another
library's class of the same name could reach these converters: each checks that the config
holds only the keys its classes write, and says so when it does not.
"""

from __future__ import annotations

from snnc.compiler import ops

from .context import LayerCall
from .layers import _number, _single, converts
from .layout import Tensor

#: keys every Keras layer config may hold (the input shape keys on a Sequential's first layer)
LAYER_KEYS = {"name", "trainable", "dtype", "batch_input_shape", "batch_shape", "input_shape"}
#: snnc.training.SoftLIF writes ``noise`` (training noise, Hz); nengo-extras' SoftLIF may write
#: ``noise_model`` and ``tau_s`` (its spike-noise model). Both only perturb training.
SOFT_LIF_KEYS = {"tau_rc", "tau_ref", "amplitude", "sigma", "noise", "noise_model", "tau_s"}
#: nengo-extras' noise models: "alpharc" perturbs every forward pass with the filtered spike
#: train's variation around the rate, whose mean over the spike phase is the rate curve itself
SOFT_LIF_NOISE_MODELS = (None, "none", "alpharc")
QCFS_KEYS = {"levels", "threshold", "shift"}


def _check_keys(call: LayerCall, known: set[str], source: str) -> None:
    unknown = sorted(set(call.config) - LAYER_KEYS - known)
    if unknown:
        raise call.unsupported(
            f"config keys {', '.join(unknown)} are not {call.kind}'s; snnc reads the {call.kind} of {source} "
            f"(keys {', '.join(sorted(known))})"
        )


@converts("SoftLIF")
def soft_lif(call, inputs):
    """``snnc.training.SoftLIF`` or nengo-extras' ``SoftLIF``: the same rate curve of the
    current above threshold, with the same ``tau_rc``, ``tau_ref``, ``amplitude``, ``sigma``."""
    _check_keys(call, SOFT_LIF_KEYS, "snnc.training or nengo-extras")
    noise_model = call.config.get("noise_model")
    if noise_model not in SOFT_LIF_NOISE_MODELS:
        raise call.unsupported(f"noise_model {noise_model!r} is not supported; supported: 'none', 'alpharc'")
    call.weights()  # none: a file holding some is not one of these classes
    x = _single(call, inputs)
    op = ops.SoftLif(*(_number(call.config[key]) for key in ("tau_rc", "tau_ref", "amplitude", "sigma")))
    return Tensor(call.add(op, [x.value]), x.perm)


@converts("QCFS")
def qcfs(call, inputs):
    """``snnc.training.QCFS``: ``levels`` and ``shift`` from the config, the threshold lambda
    from the weights (trained; the config's ``threshold`` is only its initial value)."""
    _check_keys(call, QCFS_KEYS, "snnc.training")
    (threshold,) = call.weights(("threshold", None))
    if threshold.size != 1:
        raise call.unsupported(
            f"has a threshold of shape {list(threshold.shape)}; snnc's qcfs takes one threshold (lambda) per layer"
        )
    levels = _number(call.config["levels"])
    if not levels.is_integer():
        raise call.malformed(f"levels is {levels}, not an integer")
    x = _single(call, inputs)
    op = ops.Qcfs(int(levels), float(threshold.reshape(())), _number(call.config["shift"]))
    return Tensor(call.add(op, [x.value]), x.perm)
