"""Keep the CLI's stderr to snnc's own lines: the libraries' noise only under ``--verbose``.

Two kinds of noise reach a user who runs ``snnc`` on a CPU machine:

- Python warnings from TensorFlow, nengo-dl and NengoLoihi ("No GPU support detected",
  "convolution with channels_last=False", weight rounding): filtered by module. The
  information that matters (bits lost in rounding) is reported by snnc itself, as numbers.
- TensorFlow's native log lines ("TF-TRT Warning: Could not find TensorRT", oneDNN and CUDA
  notices), written by C++ straight to file descriptor 2, below Python. nengo-dl sets
  ``TF_CPP_MIN_LOG_LEVEL=1`` when imported, so the environment variable alone cannot hide
  them: while the CLI runs, file descriptor 2 goes through a pipe that drops those lines.
"""

from __future__ import annotations

import os
import re
import sys
import threading
import warnings
from contextlib import contextmanager

#: modules whose Python warnings the CLI hides
NOISY_MODULES = r"(tensorflow|keras|nengo|nengo_dl|nengo_loihi|absl|pkg_resources|setuptools)(\..*)?$"
#: a native log line of TensorFlow/absl: "2026-12-03 09:43:31.589120: W tensorflow/..." or "W0000 ..."
NATIVE_LOG = re.compile(rb"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: [IWE] |[IW]\d{4} \d\d:\d\d:\d\d\.\d+ +\d+ )")


def hide_library_warnings() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    warnings.filterwarnings("ignore", module=NOISY_MODULES)


@contextmanager
def native_logs_filtered():
    """Route file descriptor 2 through a pipe that drops native log lines for the duration.
    Python's own ``sys.stderr`` writes go the same way, so their order is kept."""
    try:
        real = os.dup(2)
        read, write = os.pipe()
    except OSError:  # no file descriptor 2 (a daemon): nothing to filter
        yield
        return
    sys.stderr.flush()
    os.dup2(write, 2)
    os.close(write)

    def pump() -> None:
        with os.fdopen(read, "rb") as source:
            for line in source:
                if not NATIVE_LOG.match(line):
                    os.write(real, line)

    thread = threading.Thread(target=pump, name="snnc-stderr", daemon=True)
    thread.start()
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(real, 2)  # closes the pipe's last write end: the pump reads to the end and stops
        thread.join(timeout=5)
        os.close(real)
