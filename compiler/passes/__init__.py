"""The pass pipeline: each pass a pure ``Graph -> Graph`` function in its own module,
registered by name with typed options (see :mod:`.registry`), run by the :class:`PassManager`
which verifies the IR after each pass.

Default pipeline (``PIPELINES["default"]``)::

    canonicalize -> fold_batchnorm -> threshold_balance -> convert_to_spiking
"""

from . import canonicalize, convert_to_spiking, fold_batchnorm, lower_loihi, map_to_cores, maxpool, maxpool_relu, quantize_loihi, threshold_balance  # noqa: F401  (register)
from . import calibrate  # noqa: F401  (register; listed after the passes it follows)
from . import calibrate_loihi  # noqa: F401  (after the others: it imports lower_loihi, and the registry lists passes in import order)
from .manager import PassManager, PassRecord, format_timings
from .registry import PASSES, PIPELINES, PassSpec, PipelineError, parse_pipeline

__all__ = ["PASSES", "PIPELINES", "PassManager", "PassRecord", "PassSpec", "PipelineError", "format_timings", "parse_pipeline"]
