"""The reference for recurrent tests: a Keras SimpleRNN(relu) + Dense as a plain NumPy loop."""

from __future__ import annotations

import numpy as np


def simple_rnn_outputs(p: dict, x: np.ndarray) -> np.ndarray:
    """Every step's output ``y_t = V h_t + c`` with ``h_t = relu(W x_t + U h_{t-1} + b)``,
    ``h_0 = 0``; ``p`` holds ``w, u, b, v, c``, ``x`` is ``(N, steps, features)``. Returns
    ``(N, steps, outputs)`` in float64."""
    w, u, v = (p[k].astype(np.float64) for k in ("w", "u", "v"))
    h, ys = np.zeros((len(x), u.shape[0])), []
    for t in range(x.shape[1]):
        h = np.maximum(x[:, t] @ w.T + h @ u.T + p["b"], 0.0)
        ys.append(h @ v.T + p["c"])
    return np.stack(ys, axis=1)
