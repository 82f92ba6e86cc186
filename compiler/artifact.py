"""The compiled artifact: a self-describing directory that ``snnc compile`` writes.

::

    OUT/
      manifest.json     what was compiled, how, from what: versions, source hash, target,
                        pipeline and options, per-pass records and notes, calibration statistics
      model.ir  (.npz)  the compiled graph (spiking)
      ann.ir    (.npz)  the imported float graph, for ANN-vs-SNN comparisons
      float.ir  (.npz)  the float graph that entered convert_to_spiking (after canonicalize,
                        fold_batchnorm, max-pool replacement and balancing)

    and for the Loihi target, where model.ir is the integer graph (chip integers, core map):
      snn.ir    (.npz)  the spiking graph convert_to_spiking made (what the interpreter runs)
      chip.ir   (.npz)  the Loihi graph with NengoLoihi's float parameters and the core map
                        (what the NengoLoihi backend builds, and refsim's float mode runs)

The directory is written next to its destination and renamed into place, so a reader never
sees half an artifact.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from .errors import ModelFormatError, SnncError
from .graph import Graph

FORMAT = "snnc-artifact"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
GRAPH_FILES = {"model": "model.ir", "ann": "ann.ir", "float": "float.ir"}
#: graphs only some targets write
OPTIONAL_GRAPH_FILES = {"snn": "snn.ir", "chip": "chip.ir"}
#: packages whose versions the manifest records (read from metadata, not imported)
RECORDED_PACKAGES = ("numpy", "tensorflow", "keras", "onnx", "nengo", "nengo-dl", "nengo-loihi")


@dataclass(frozen=True)
class Artifact:
    path: Path
    manifest: dict
    model: Graph
    ann: Graph
    float: Graph
    snn: Graph | None = None
    chip: Graph | None = None


def is_artifact(path) -> bool:
    return Path(path).is_dir() and (Path(path) / MANIFEST).is_file()


def file_sha256(path) -> str:
    """SHA-256 of a file, or of a directory's files in sorted order (SavedModel)."""
    path = Path(path)
    h = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for f in files:
        h.update(str(f.relative_to(path)).encode() if path.is_dir() else b"")
        with open(f, "rb") as stream:
            for block in iter(lambda: stream.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def package_versions() -> dict[str, str]:
    import platform
    from importlib.metadata import PackageNotFoundError, version

    versions = {"python": platform.python_version()}
    for name in ("snnc", *RECORDED_PACKAGES):
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            continue
    return versions


def save_artifact(out, manifest: dict, graphs: dict[str, Graph], force: bool = False) -> Path:
    """Write the artifact directory ``out``, replacing an earlier artifact there for the same
    target (for another target only with ``force``: a user's Loihi build is not silently
    lost to a Nengo one)."""
    from .fileio import make_staging_dir, naming, write_text
    from .text import save

    out = Path(out)
    check_replaceable(out, manifest.get("target"), force)
    staging = make_staging_dir(out)
    try:
        with naming(out):
            for key, filename in {**GRAPH_FILES, **OPTIONAL_GRAPH_FILES}.items():
                if key in GRAPH_FILES or graphs.get(key) is not None:
                    save(graphs[key], staging / filename)
            full = {"format": FORMAT, "format_version": FORMAT_VERSION, **manifest}
            write_text(staging / MANIFEST, json.dumps(full, indent=2, sort_keys=False) + "\n")
            _swap_into_place(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out


def check_replaceable(out, target: str | None, force: bool = False) -> None:
    """Refuse to write an artifact for ``target`` at ``out`` when that would destroy something
    else: a file or directory that is not an artifact, or (without ``force``) an artifact
    compiled for another target."""
    out = Path(out)
    if out.exists() and not is_artifact(out) and (not out.is_dir() or any(out.iterdir())):
        raise ModelFormatError(f"{out}: exists and is not an snnc artifact; not overwriting it")
    if is_artifact(out) and not force:
        old = _recorded_target(out)
        if old != target:
            raise SnncError(f"{out}: holds an artifact compiled for {old}; not replacing it with one for {target} (give --force to overwrite it)")


def _recorded_target(path: Path) -> str:
    try:
        return str(json.loads((path / MANIFEST).read_text()).get("target", "an unknown target"))
    except (OSError, ValueError, AttributeError):
        return "an unknown target (its manifest is unreadable)"


def _swap_into_place(staging: Path, out: Path) -> None:
    if out.exists():
        old = out.with_name(f".{out.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        out.rename(old)
        staging.rename(out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        staging.rename(out)


def load_artifact(path) -> Artifact:
    from .text import load

    path = Path(path)
    try:
        manifest = json.loads((path / MANIFEST).read_text())
    except (OSError, ValueError) as exc:
        raise ModelFormatError(f"{path / MANIFEST}: not a readable manifest ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ModelFormatError(f"{path}: {MANIFEST} is not an snnc artifact manifest")
    version = manifest.get("format_version", 0)
    if not isinstance(version, int) or isinstance(version, bool):
        raise ModelFormatError(f"{path}: {MANIFEST} has format_version {version!r}; an integer is expected")
    if version > FORMAT_VERSION:
        raise ModelFormatError(
            f"{path}: artifact format {manifest['format_version']} is newer than this snnc reads ({FORMAT_VERSION})"
        )
    graphs = {key: load(path / filename) for key, filename in GRAPH_FILES.items()}
    graphs.update({key: load(path / name) for key, name in OPTIONAL_GRAPH_FILES.items() if (path / name).exists()})
    return Artifact(path, manifest, **graphs)
