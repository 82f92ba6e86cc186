"""The IR text format: one line per node, parameters summarized (or inline), parsed back exactly.

::

    graph @lenet : float {
      %input = input() {shape=[1,28,28], dtype="f32", source_layout="CHW"} : f32[1,28,28]
      %conv1 = conv2d(%input) {filters=6, kernel=[5,5], ..., weight=<6x1x5x5 f32 #a91c03d2>, bias=<6 f32 #0c3e11aa>} : f32[6,24,24]
      %relu1 = relu(%conv1) {max_value=none, negative_slope=0.0, threshold=0.0} : f32[6,24,24] meta {"scale": 0.034}
      ...
    }

A parameter is written ``<shape dtype #hash>`` with its array stored in an ``.npz`` beside the
text (key ``node.param``, loaded with ``allow_pickle=False``), or inline as
``<shape dtype = [values]>``. ``parse(print_graph(g), params) == g``. Lines starting with
``#`` are comments.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import zipfile
from pathlib import Path

import numpy as np

from . import fileio
from .errors import ParseError, VerificationError
from .graph import Graph, Meta, Node, Params
from .ops import OPS
from .types import DTYPES, TensorType, dtype_name


# ----------------------------------------------------------------------------- printing


def param_hash(array: np.ndarray) -> str:
    """Short content hash of an array (dtype, shape and bytes)."""
    h = hashlib.sha256(f"{array.dtype.str}{array.shape}".encode())
    h.update(np.ascontiguousarray(array).tobytes())
    return h.hexdigest()[:8]


def _format_scalar(value) -> str:
    if value is None:
        return "none"
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return repr(float(value))
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, (tuple, list)):
        return "[" + ",".join(_format_scalar(v) for v in value) + "]"
    raise TypeError(f"cannot print attribute value {value!r}")


def _format_param(array: np.ndarray, inline: bool) -> str:
    dims = "x".join(map(str, array.shape))
    head = f"{dims} {dtype_name(array.dtype)}" if dims else dtype_name(array.dtype)
    if inline:
        return f"<{head} = {_format_scalar(array.ravel().tolist())}>"
    return f"<{head} #{param_hash(array)}>"


def _shown_attributes(op) -> dict:
    """Attributes that differ from their defaults (required ones always): short lines."""
    shown = {}
    for f in dataclasses.fields(op):
        value = getattr(op, f.name)
        if f.default is dataclasses.MISSING or value != f.default:
            shown[f.name] = value
    return shown


def format_node(node: Node, inline_params: bool = False) -> str:
    """One line of IR text for ``node``."""
    args = ", ".join(f"%{i}" for i in node.inputs)
    items = [f"{k}={_format_scalar(v)}" for k, v in _shown_attributes(node.op).items()]
    items += [f"{k}={_format_param(v, inline_params)}" for k, v in node.params.items()]
    body = f" {{{', '.join(items)}}}" if items else ""
    line = f"%{node.name} = {node.op.NAME}({args}){body} : {node.type}"
    if node.meta:
        line += f" meta {node.meta.to_json()}"
    return line


def print_graph(graph: Graph, inline_params: bool = False) -> str:
    """The whole graph as IR text (ends with a newline)."""
    head = f"graph @{graph.name} : {graph.stage}"
    if graph.meta:
        head += f" meta {graph.meta.to_json()}"
    lines = [head + " {"]
    lines += ["  " + format_node(n, inline_params) for n in graph.nodes]
    lines.append("}")
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- parsing

_TOKEN = re.compile(
    r"""\s*(?:
      (?P<string>"(?:[^"\\]|\\.)*")
    | (?P<number>[-+]?(?:inf|nan|\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?)(?![A-Za-z0-9_]))
    | (?P<value>%[A-Za-z_][A-Za-z0-9_]*)
    | (?P<word>[A-Za-z_][A-Za-z0-9_]*)
    | (?P<hash>\#[0-9a-f]+)
    | (?P<punct>[][(){}<>=,:@])
    )""",
    re.VERBOSE,
)


class _Cursor:
    """A tokenizer over one line with one token of look-ahead."""

    def __init__(self, text: str, lineno: int):
        self.text, self.pos, self.lineno = text, 0, lineno

    def error(self, message: str) -> ParseError:
        return ParseError(f"line {self.lineno}: {message} at column {self.pos + 1}: {self.text.strip()}")

    def peek(self):
        m = _TOKEN.match(self.text, self.pos)
        if not m:
            return None, None, self.pos
        kind = m.lastgroup
        return kind, m.group(kind), m.end()

    def next(self):
        kind, tok, end = self.peek()
        if kind is None:
            raise self.error("unexpected text")
        self.pos = end
        return kind, tok

    def expect(self, tok: str) -> None:
        kind, got = self.next()
        if got != tok:
            raise self.error(f"expected {tok!r}, got {got!r}")

    def accept(self, tok: str) -> bool:
        kind, got, end = self.peek()
        if got == tok:
            self.pos = end
            return True
        return False

    def rest(self) -> str:
        return self.text[self.pos :].strip()


def _parse_number(tok: str):
    if re.fullmatch(r"[-+]?\d+", tok):
        return int(tok)
    return float(tok)


def _parse_value(cur: _Cursor, node: str, key: str, params: dict, store):
    kind, tok = cur.next()
    if kind == "number":
        return _parse_number(tok)
    if kind == "string":
        return json.loads(tok)
    if kind == "word" and tok in ("true", "false", "none"):
        return {"true": True, "false": False, "none": None}[tok]
    if tok == "[":
        items = []
        if not cur.accept("]"):
            while True:
                items.append(_parse_value(cur, node, key, params, store))
                if cur.accept("]"):
                    break
                cur.expect(",")
        return tuple(items)
    if tok == "<":
        params[key] = _parse_param(cur, node, key, store)
        return _PARAM
    raise cur.error(f"unexpected {tok!r} in the value of {key}")


_PARAM = object()  # marks an attribute slot that held a parameter


_PARAM_HEAD = re.compile(r"\s*(?:(\d+(?:x\d+)*)\s+)?([a-z0-9]+)")


def _parse_param(cur: _Cursor, node: str, key: str, store) -> np.ndarray:
    m = _PARAM_HEAD.match(cur.text, cur.pos)
    if not m:
        raise cur.error(f"expected '<shape dtype ...>' in parameter {key}")
    cur.pos = m.end()
    dims = [int(d) for d in m.group(1).split("x")] if m.group(1) else []
    tok = m.group(2)
    if tok not in DTYPES:
        raise cur.error(f"unknown element type {tok!r} (known: {', '.join(DTYPES)})")
    dtype = DTYPES[tok]
    kind, tok = cur.next()
    if tok == "=":
        values = _parse_value(cur, node, key, {}, store)
        array = np.array(values, dtype=dtype).reshape(dims)
    elif kind == "hash":
        full_key = f"{node}.{key}"
        if store is None or full_key not in store:
            raise cur.error(f"parameter {full_key} is not in the parameter file")
        array = np.asarray(store[full_key])
        if array.shape != tuple(dims) or array.dtype != dtype or param_hash(array) != tok[1:]:
            raise cur.error(f"parameter {full_key} in the parameter file does not match the text")
    else:
        raise cur.error(f"expected '#hash' or '= [values]' in parameter {key}")
    cur.expect(">")
    return array


def _parse_type(cur: _Cursor) -> TensorType:
    kind, dtype = cur.next()
    cur.expect("[")
    dims = []
    if not cur.accept("]"):
        while True:
            dims.append(int(cur.next()[1]))
            if cur.accept("]"):
                break
            cur.expect(",")
    layout = ""
    if cur.accept("@"):
        layout = cur.next()[1]
    try:
        return TensorType(tuple(dims), dtype, layout)
    except ValueError as exc:
        raise cur.error(str(exc)) from None


def _parse_meta(cur: _Cursor, rest: str) -> Meta:
    if not rest:
        return Meta()
    if not rest.startswith("meta "):
        raise cur.error("expected 'meta {...}' or the end of the line")
    try:
        return Meta(json.loads(rest[5:]))
    except json.JSONDecodeError as exc:
        raise cur.error(f"bad metadata JSON ({exc.msg})") from None


def _parse_node(line: str, lineno: int, store) -> Node:
    cur = _Cursor(line, lineno)
    kind, tok = cur.next()
    if kind != "value":
        raise cur.error("a node line starts with %name")
    name = tok[1:]
    cur.expect("=")
    kind, op_name = cur.next()
    if op_name not in OPS:
        raise cur.error(f"unknown op {op_name!r} (known: {', '.join(sorted(OPS))})")
    cur.expect("(")
    inputs = []
    if not cur.accept(")"):
        while True:
            kind, tok = cur.next()
            if kind != "value":
                raise cur.error("op inputs are %names")
            inputs.append(tok[1:])
            if cur.accept(")"):
                break
            cur.expect(",")
    attrs, params = {}, {}
    if cur.accept("{"):
        while True:
            kind, key = cur.next()
            cur.expect("=")
            value = _parse_value(cur, name, key, params, store)
            if value is not _PARAM:
                attrs[key] = value
            if cur.accept("}"):
                break
            cur.expect(",")
    cur.expect(":")
    out_type = _parse_type(cur)
    meta = _parse_meta(cur, cur.rest())
    try:
        op = OPS[op_name](**attrs)
    except TypeError as exc:
        raise cur.error(f"bad attributes for {op_name}: {exc}") from None
    for f in dataclasses.fields(op):
        if not _fits(getattr(op, f.name), f.type):
            raise cur.error(f"attribute {f.name} of {op_name} is {_format_scalar(getattr(op, f.name))}, not {f.type}")
    return Node(name, op, tuple(inputs), out_type, Params(params), meta)


#: the attribute types ops declare (their dataclass fields' annotations), as checks
_SCALAR_TYPES = {
    "int": lambda v: type(v) is int,
    "float": lambda v: type(v) in (int, float),
    "bool": lambda v: type(v) is bool,
    "str": lambda v: type(v) is str,
    "None": lambda v: v is None,
}


def _fits(value, annotation: str) -> bool:
    """Whether a parsed attribute value has the type an op field declares (``int``,
    ``float | None``, ``tuple[int, int]``, ``tuple[int, ...]``, ...); the ops' type checks
    assume it."""
    if "|" in annotation:
        return any(_fits(value, a.strip()) for a in annotation.split("|"))
    if annotation.startswith("tuple[") and annotation.endswith("]"):
        items = [a.strip() for a in annotation[len("tuple[") : -1].split(",")]
        if not isinstance(value, tuple):
            return False
        if items[-1] == "...":
            return all(_fits(v, items[0]) for v in value)
        return len(value) == len(items) and all(_fits(v, a) for v, a in zip(value, items))
    check = _SCALAR_TYPES.get(annotation)
    return check is None or check(value)


_HEADER = re.compile(r"graph @([A-Za-z_][A-Za-z0-9_]*) : (\w+)(?: meta (.*))? \{$")


def parse(text: str, params=None) -> Graph:
    """Parse IR text; ``params`` maps ``node.param`` to arrays (e.g. an opened ``.npz``).

    The result is verified.
    """
    from .wellformed import check_well_formed

    lines = [(i + 1, l.strip()) for i, l in enumerate(text.splitlines())]
    lines = [(i, l) for i, l in lines if l and not l.startswith("#")]
    if not lines:
        raise ParseError("empty IR text")
    lineno, head = lines[0]
    m = _HEADER.match(head)
    if not m:
        raise ParseError(f"line {lineno}: expected 'graph @name : stage {{', got: {head}")
    if lines[-1][1] != "}":
        raise ParseError(f"line {lines[-1][0]}: expected the closing '}}' of the graph")
    try:
        graph_meta = Meta(json.loads(m.group(3))) if m.group(3) else Meta()
    except json.JSONDecodeError as exc:
        raise ParseError(f"line {lineno}: bad graph metadata JSON ({exc.msg})") from None
    nodes = [_parse_node(l, i, params) for i, l in lines[1:-1]]
    return check_well_formed(Graph(m.group(1), tuple(nodes), m.group(2), graph_meta))


# ----------------------------------------------------------------------------- files


def params_path(text_path) -> Path:
    """Where the parameters of the IR text file ``text_path`` are stored."""
    return Path(text_path).with_suffix(".npz")


def save(graph: Graph, text_path) -> Path:
    """Write ``graph`` as IR text at ``text_path`` and its parameters in the ``.npz`` beside it."""
    text_path = Path(text_path)
    arrays = {f"{n.name}.{k}": v for n in graph.nodes for k, v in n.params.items()}
    fileio.save_npz(params_path(text_path), arrays)
    fileio.write_text(text_path, print_graph(graph))
    return text_path


def load(text_path) -> Graph:
    """Read a graph written by :func:`save` (parameters loaded without pickle). Errors name
    the file."""
    text_path = Path(text_path)
    store_path = params_path(text_path)
    try:
        text = text_path.read_text()
    except UnicodeDecodeError as exc:
        raise ParseError(f"{text_path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    try:
        if not store_path.exists():
            if re.search(r"<[^>]*#[0-9a-f]+>", text):
                raise ParseError(f"parameter file {store_path} is missing")
            return parse(text)
        with np.load(store_path, allow_pickle=False) as store:
            return parse(text, {k: store[k] for k in store.files})
    except (ParseError, VerificationError) as exc:
        raise type(exc)(f"{text_path}: {exc}") from None
    except (ValueError, OSError, zipfile.BadZipFile) as exc:
        raise ParseError(f"{text_path}: unreadable parameter file {store_path} ({exc})") from None
