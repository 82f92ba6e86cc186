"""The Keras layers of :mod:`snnc.training`; their formulas are the IR's own
(:func:`snnc.compiler.neurons.lif.soft_lif_rate`, :func:`snnc.compiler.neurons.if_.qcfs`),
evaluated on tensors."""

from __future__ import annotations

from types import SimpleNamespace

import tensorflow as tf

from snnc.compiler.neurons import tensorflow_math
from snnc.compiler.neurons.if_ import qcfs
from snnc.compiler.neurons.lif import soft_lif_rate

#: the package name under which Keras registers the layers ("snnc>SoftLIF", "snnc>QCFS")
PACKAGE = "snnc"


@tf.function(jit_compile=True)
def _fused_soft_lif_rate(x, tau_rc: float, tau_ref: float, sigma: float):
    """:func:`soft_lif_rate` compiled by XLA, which fuses its dozen elementwise operations (and
    their gradients') into single loops: about 3x faster on a CPU, where they dominate a
    SoftLIF network's training step. The time constants are Python floats (constants)."""
    return soft_lif_rate(x, tau_rc, tau_ref, sigma, tensorflow_math())


@tf.keras.utils.register_keras_serializable(package=PACKAGE)
class SoftLIF(tf.keras.layers.Layer):
    """Soft-LIF activation (Hunsberger & Eliasmith 2015): the firing rate of a LIF neuron whose
    input current above threshold is ``x``, times ``amplitude``, with the hard rate curve's
    corner smoothed by a softplus of width ``sigma``::

        y = amplitude / (tau_ref + tau_rc * log1p(1 / rho(x))),  rho(x) = sigma * log1p(exp(x / sigma))

    While training, Gaussian noise of standard deviation ``noise`` (in spikes per second, times
    ``amplitude``) is added where the neuron fires, so the network learns to tolerate the
    variability of real spike trains (the paper's training noise); at inference there is none.
    Defaults: Nengo's LIF time constants and the amplitude of nengo-extras' spiking-CNN example
    (outputs of order 1 for rates of order 10-100 Hz), ``sigma = 0.02`` and ``noise = 10`` Hz
    from the paper's ranges."""

    def __init__(self, tau_rc=0.02, tau_ref=0.002, amplitude=0.063, sigma=0.02, noise=10.0, **kwargs):
        super().__init__(**kwargs)
        if not (tau_rc > 0 and tau_ref >= 0 and amplitude > 0 and sigma > 0 and noise >= 0):
            raise ValueError(
                f"SoftLIF needs tau_rc > 0, tau_ref >= 0, amplitude > 0, sigma > 0 and noise >= 0; got tau_rc={tau_rc}, "
                f"tau_ref={tau_ref}, amplitude={amplitude}, sigma={sigma}, noise={noise}"
            )
        self.tau_rc, self.tau_ref, self.amplitude = float(tau_rc), float(tau_ref), float(amplitude)
        self.sigma, self.noise = float(sigma), float(noise)

    def call(self, inputs, training=None):
        x = tf.cast(inputs, self.compute_dtype)
        rate = _fused_soft_lif_rate(x, self.tau_rc, self.tau_ref, self.sigma)
        if training and self.noise > 0:
            firing = tf.cast(x > 0, rate.dtype)
            rate = rate + firing * tf.random.normal(tf.shape(rate), stddev=self.noise, dtype=rate.dtype)
        return self.amplitude * rate

    def get_config(self):
        return {
            **super().get_config(),
            "tau_rc": self.tau_rc,
            "tau_ref": self.tau_ref,
            "amplitude": self.amplitude,
            "sigma": self.sigma,
            "noise": self.noise,
        }


def _straight_through_floor(x):
    """``floor(x)`` forward, the identity backward (QCFS's ``GradFloor``)."""
    return x + tf.stop_gradient(tf.math.floor(x) - x)


@tf.function(jit_compile=True)
def _fused_qcfs(x, levels: int, threshold, shift: float):
    """:func:`qcfs` with a straight-through floor, compiled by XLA (as :func:`_fused_soft_lif_rate`)."""
    xp = SimpleNamespace(**{**vars(tensorflow_math()), "floor": _straight_through_floor})
    return qcfs(x, levels, threshold, shift, xp)


@tf.keras.utils.register_keras_serializable(package=PACKAGE)
class QCFS(tf.keras.layers.Layer):
    """Quantization-clip-floor-shift activation (Bu et al. 2022)::

        y = lambda * clip(floor(x * levels / lambda + shift) / levels, 0, 1)

    ``levels`` is the number of quantization steps ``L`` (the time steps at which conversion
    is exact), ``lambda`` the trainable threshold (one per layer, initial value ``threshold``),
    ``shift`` the floor's shift (0.5 makes the quantization error zero-mean). The floor passes
    gradients straight through, as in the authors' code; ``lambda`` learns by the chain rule.
    Defaults: ``L = 8`` and ``lambda`` starting at 4, from the authors' code."""

    def __init__(self, levels=8, threshold=4.0, shift=0.5, **kwargs):
        super().__init__(**kwargs)
        if not (int(levels) == levels and levels >= 1 and threshold > 0):
            raise ValueError(f"QCFS needs an integer levels >= 1 and threshold > 0; got levels={levels}, threshold={threshold}")
        self.levels, self.initial_threshold, self.shift = int(levels), float(threshold), float(shift)

    def build(self, input_shape):
        self.threshold = self.add_weight(
            name="threshold", shape=(), initializer=tf.keras.initializers.Constant(self.initial_threshold), trainable=True
        )
        super().build(input_shape)

    def call(self, inputs):
        x = tf.cast(inputs, self.compute_dtype)
        return _fused_qcfs(x, self.levels, tf.cast(self.threshold, x.dtype), self.shift)

    def get_config(self):
        return {**super().get_config(), "levels": self.levels, "threshold": self.initial_threshold, "shift": self.shift}
