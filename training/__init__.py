"""Keras layers that train a network for spiking neurons, one import away::

    from snnc.training import SoftLIF, QCFS

- :class:`SoftLIF`: the soft-LIF rate curve with training noise (Hunsberger & Eliasmith 2015);
  ``snnc`` converts it to LIF neurons with the trained ``tau_rc``, ``tau_ref`` and ``amplitude``.
- :class:`QCFS`: the quantization-clip-floor-shift activation with a trainable threshold
  (Bu et al. 2022); ``snnc`` converts it to integrate-and-fire neurons with that threshold,
  membrane starting at half of it, exact at ``T = levels`` steps.

Both save with ``model.save`` (``.keras`` and ``.h5``) and are read back by ``snnc``'s Keras
frontend from their config, without running this code. TensorFlow is imported here (and in
no other ``snnc`` package at import time).
"""

from .layers import QCFS, SoftLIF
from .recipes import ACTIVATIONS, fit, fixed_dt, load_images, sigma_delta_cnn, spiking_cnn

__all__ = ["ACTIVATIONS", "QCFS", "SoftLIF", "fit", "fixed_dt", "load_images", "sigma_delta_cnn", "spiking_cnn"]
