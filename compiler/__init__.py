"""snnc.compiler: the IR, the interpreter, the passes and the driver (Python API and CLI).

Public API (heavy libraries are imported only by the functions that need them)::

    from snnc.compiler import load_model, run_model, print_graph, parse
    from snnc.compiler import compile_model, evaluate, load_dataset, run_spiking
    from snnc.compiler.simulate import simulate    # the spiking interpreter itself
"""

# the neuron types register their ops (ops.IfNeuron, ...) before anything uses the op set
from . import neurons  # noqa: F401,I001  isort: skip
from .api import load_model, run_model, run_spiking
from .datasets import load_dataset
from .driver import compile_model, evaluate, load_compiled, write_artifact
from .errors import SnncError
from .graph import Graph, GraphBuilder, Node
from .text import load, parse, print_graph, save
from .types import TensorType

__version__ = "0.1.0"

__all__ = [
    "Graph", "GraphBuilder", "Node", "SnncError", "TensorType",
    "compile_model", "evaluate", "load", "load_compiled", "load_dataset", "load_model", "parse",
    "print_graph", "run_model", "run_spiking", "save", "write_artifact", "__version__",
]
