"""snnc.compiler: the IR, the interpreter, the passes and the driver (Python API and CLI).

Public API (heavy libraries are imported only by the functions that need them)::

    from snnc.compiler import load_model, run_model, print_graph, parse
"""

from .api import load_model, run_model
from .errors import SnncError
from .graph import Graph, GraphBuilder, Node
from .text import load, parse, print_graph, save
from .types import TensorType

__version__ = "0.1.0"

__all__ = [
    "Graph", "GraphBuilder", "Node", "SnncError", "TensorType",
    "load", "load_model", "parse", "print_graph", "run_model", "save", "__version__",
]
