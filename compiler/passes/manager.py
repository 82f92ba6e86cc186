"""The pass manager: runs a pipeline, verifies after each pass, and runs the instruments
(``--dump-after``, ``--dump-dir``, ``--time-passes``)."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, TextIO

from ..errors import PassError, VerificationError, reraise_internal
from ..graph import Graph
from ..ops import FLOAT
from ..wellformed import check_well_formed
from .registry import PASSES, PassSpec, PipelineError, parse_pipeline


@dataclass
class PassRecord:
    """What one pass did: its options, time, node counts and the notes it added."""

    spec: PassSpec
    seconds: float
    nodes_before: int
    nodes_after: int
    notes: list[dict]
    graph: Graph | None = None  # the pass's output, with PassManager(keep_graphs=True)

    def to_dict(self) -> dict:
        return {
            "pass": self.spec.name,
            "options": dict(self.spec.options),
            "seconds": round(self.seconds, 6),
            "nodes_before": self.nodes_before,
            "nodes_after": self.nodes_after,
            "notes": self.notes,
        }


@dataclass
class PassManager:
    """Runs ``pipeline`` (a pipeline string or parsed specs) on graphs.

    ``dump_after``: pass names (or ``"all"``) whose output IR is written to ``stream``;
    ``dump_dir``: one numbered ``.ir`` file (and ``.npz``) per pass, ``00_input.ir`` first;
    ``time_passes``: a timing table on ``stream`` at the end; ``on_note``: called with each
    note a pass adds (the CLI prints them); ``keep_graphs``: each record keeps its pass's
    output graph.
    """

    pipeline: str | list[PassSpec]
    dump_after: tuple[str, ...] = ()
    dump_dir: Path | None = None
    time_passes: bool = False
    stream: TextIO = field(default_factory=lambda: sys.stderr)
    on_note: Callable[[dict], None] | None = None
    keep_graphs: bool = False

    def __post_init__(self):
        if isinstance(self.pipeline, str):
            self.pipeline = parse_pipeline(self.pipeline)
        self.dump_after = tuple(self.dump_after)
        unknown = [p for p in self.dump_after if p != "all" and p not in PASSES]
        if unknown:
            raise PipelineError(f"--dump-after {unknown[0]}: no such pass; passes: {', '.join(PASSES)}")
        ran = [spec.name for spec in self.pipeline]
        absent = [p for p in self.dump_after if p != "all" and p not in ran]
        if absent:  # nothing would be dumped, and nothing said
            raise PipelineError(f"--dump-after {absent[0]}: the pipeline does not run it; it runs {', '.join(ran)}")

    @property
    def needs_calibration(self) -> bool:
        return any(spec.info.needs_calibration for spec in self.pipeline)

    def run(self, graph: Graph, calibration=None) -> tuple[Graph, list[PassRecord]]:
        """Run every pass in order; returns the final graph and one record per pass."""
        check_well_formed(graph)
        self._dump(0, "input", graph)
        records: list[PassRecord] = []
        float_graph = None
        for index, spec in enumerate(self.pipeline, start=1):
            notes_before, nodes_before = len(graph.meta.get("notes", [])), len(graph.nodes)
            if graph.stage == FLOAT:
                float_graph = graph
            start = time.perf_counter()
            graph = self._run_one(spec, graph, calibration, float_graph, records)
            notes = list(graph.meta.get("notes", []))[notes_before:]
            seconds = time.perf_counter() - start
            kept = graph if self.keep_graphs else None
            records.append(PassRecord(spec, seconds, nodes_before, len(graph.nodes), notes, kept))
            if self.on_note:
                for note in notes:
                    self.on_note(note)
            if "all" in self.dump_after or spec.name in self.dump_after:
                from ..text import print_graph

                self.stream.write(f"# IR after {spec}\n{print_graph(graph)}")
            self._dump(index, spec.name, graph)
        if self.time_passes:
            self.stream.write(format_timings(records))
        return graph, records

    def _run_one(self, spec: PassSpec, graph: Graph, calibration, float_graph: Graph | None, records) -> Graph:
        kwargs = dict(spec.options)
        if spec.info.needs_calibration:
            if calibration is None:
                raise PassError(f"pass {spec.name} needs calibration data (snnc compile --calib DATA)")
            kwargs["calibration"] = calibration
        if spec.info.needs_float_graph:
            kwargs["float_graph"] = float_graph  # the last float graph (what was converted), or None
        try:
            return check_well_formed(spec.info.fn(graph, **kwargs))
        except (PassError, VerificationError) as exc:
            ran = ", ".join(r.spec.name for r in records) or "none"
            raise PassError(f"pass {spec.name} failed: {exc} (passes run before it: {ran})") from exc
        except BaseException as exc:
            reraise_internal(f"pass {spec.name}", exc)

    def _dump(self, index: int, name: str, graph: Graph) -> None:
        if self.dump_dir is None:
            return
        from ..text import save

        # (save makes the directory, naming a file that stands in the way)
        save(graph, Path(self.dump_dir) / f"{index:02d}_{name}.ir")


def format_timings(records: list[PassRecord]) -> str:
    """The ``--time-passes`` table."""
    total = sum(r.seconds for r in records) or 1e-12
    lines = ["# pass timings", f"#  {'seconds':>9}  {'share':>6}  {'nodes':>11}  pass"]
    for r in records:
        nodes = f"{r.nodes_before}->{r.nodes_after}"
        lines.append(f"#  {r.seconds:9.4f}  {100 * r.seconds / total:5.1f}%  {nodes:>11}  {r.spec}")
    lines.append(f"#  {total:9.4f}  100.0%  {'':>11}  total")
    return "\n".join(lines) + "\n"
