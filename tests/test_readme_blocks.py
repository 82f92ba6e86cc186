"""README.md runs as written: every ```bash line outside the Set-up section (tests/test_readme.py
holds those to CI) and every ```python block, from a copy of the repository root where
``../shared/data`` is the shared data, as README's paths assume.

A line with placeholders (``MODEL``, ``OUT``, ``[--opt]``) is a usage synopsis: its subcommand's
``--help`` must run and name every option and choice the synopsis shows. Every other line runs
through the ``snnc`` script beside this Python, and must exit 0 without an error line; a line
that writes an artifact (``-o``) runs before the later lines of its block. Lines too long for
the fast tier (:func:`fast_variant`) run as written under ``-m slow`` and, shortened, in the
fast tier.
"""

import ast
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("SNNC_SHARED_DATA", REPO.parent / "shared" / "data"))  # as tests/conftest.py
SNNC_SCRIPT = Path(sys.executable).with_name("snnc")  # the console script README runs, where installed
SNNC = [str(SNNC_SCRIPT)] if SNNC_SCRIPT.is_file() else [sys.executable, "-m", "snnc.compiler.cli"]
PLACEHOLDER = re.compile(r"\[|\b[A-Z][A-Z_]*\b")  # an option in brackets or an upper-case name
FAST_EXAMPLES = "500"  # test images the fast tier evaluates where README evaluates all 10,000
FAST_VERIFY_INPUTS = "1"  # inputs the fast tier verifies where README runs NengoLoihi's emulator on 20 (13 s each)


def readme_blocks(language: str) -> list[str]:
    """The README's code blocks in ``language``, without the Set-up section's."""
    text = (REPO / "README.md").read_text()
    before, rest = text.split("## Set-up", 1)
    after = rest.split("\n## ", 1)[1]
    return re.findall(rf"```{language}\n(.*?)```", before + after, flags=re.S)


def command_blocks() -> list[list[list[str]]]:
    """Each bash block as its commands, each command as argv (comments dropped; a line may hold
    several synopses separated by commas, ``snnc --help, snnc COMMAND --help``)."""
    blocks = []
    for block in readme_blocks("bash"):
        commands = []
        for line in block.splitlines():
            for command in re.split(r",\s+(?=snnc )", line.split("  #", 1)[0].strip()):
                if command:
                    commands.append(command.split() if is_synopsis(command) else shlex.split(command))
        blocks.append(commands)
    return blocks


def is_synopsis(command: str) -> bool:
    return PLACEHOLDER.search(command) is not None


def fast_variant(argv: list[str]) -> list[str]:
    """What the fast tier runs for ``argv``: ``evaluate`` on the first 500 test images where the
    line evaluates the whole test set, ``verify`` on 1 input where it runs more; else argv.

    Today that shortens three README lines: ``snnc evaluate out/lenet_snn`` (10,000 images up
    to T=64 in the interpreter, minutes on 2 cores), ``snnc evaluate out/cnn_loihi`` (10,000
    on refsim) and ``snnc verify out/cnn_loihi ... -n 20`` (NengoLoihi's emulator, about 13 s
    an input on 2 shared cores); :func:`test_long_readme_command_runs_as_written` runs them as
    written under ``-m slow``."""
    if argv[1] == "evaluate" and "-n" not in argv:
        return [*argv, "-n", FAST_EXAMPLES]
    if argv[1] == "verify" and "-n" in argv:
        i = argv.index("-n") + 1
        return [*argv[:i], FAST_VERIFY_INPUTS, *argv[i + 1 :]]
    return argv


BLOCKS = command_blocks()
SYNOPSES = [" ".join(c) for block in BLOCKS for c in block if is_synopsis(" ".join(c))]
COMMANDS = [(b, i) for b, block in enumerate(BLOCKS) for i, c in enumerate(block) if not is_synopsis(" ".join(c))]
LONG = [(b, i) for b, i in COMMANDS if fast_variant(BLOCKS[b][i]) != BLOCKS[b][i]]


def needs_data(where) -> bool:
    """The command, or an earlier one of its block it depends on, reads ../shared/data."""
    b, i = where
    return any("../shared/" in arg for command in BLOCKS[b][: i + 1] for arg in command)


def with_data_mark(wheres) -> list:
    return [pytest.param(w, marks=pytest.mark.data) if needs_data(w) else w for w in wheres]


def command_id(where) -> str:
    return " ".join(BLOCKS[where[0]][where[1]][1:3])


# ----------------------------------------------------------------------------- synopses


def snnc(argv: list[str], cwd) -> subprocess.CompletedProcess:
    assert argv[0] == "snnc", argv
    return subprocess.run([*SNNC, *argv[1:]], cwd=cwd, capture_output=True, text=True, timeout=1800)


@pytest.mark.parametrize("synopsis", SYNOPSES)
def test_synopsis_matches_the_commands_help(synopsis):
    words = synopsis.split()
    subcommand = [] if words[1].startswith("-") or words[1].isupper() else [words[1]]
    result = snnc(["snnc", *subcommand, "--help"], REPO)
    assert result.returncode == 0, result.stderr
    options = re.findall(r"(?<![\w-])--?[a-z][\w-]*", synopsis)
    choices = [c for group in re.findall(r"\b[a-z][\w-]*(?:\|[a-z][\w-]*)+", synopsis) for c in group.split("|")]
    missing = [w for w in options + choices if not re.search(rf"(?<![\w-]){re.escape(w)}(?![\w-])", result.stdout)]
    assert not missing, f"{synopsis!r}: snnc {' '.join(subcommand)} --help does not show {missing}"


def test_readme_has_synopses_and_commands_to_run():
    """The parsing above finds what README holds (a change of format would silently test nothing)."""
    assert any(s.startswith("snnc compile MODEL") for s in SYNOPSES)
    assert {BLOCKS[b][i][1] for b, i in COMMANDS} >= {"compile", "evaluate", "verify"}
    assert {BLOCKS[b][i][1] for b, i in LONG} >= {"evaluate", "verify"}
    assert len(readme_blocks("python")) >= 1


# ----------------------------------------------------------------------------- commands


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    """A stand-in for the repository root (its entries linked, a fresh ``out/``) with
    ``../shared/data`` the shared data where it exists, so README's paths resolve and its
    outputs stay in tmp."""
    top = tmp_path_factory.mktemp("readme")
    if SHARED_DATA.is_dir():
        (top / "shared").mkdir()
        (top / "shared" / "data").symlink_to(SHARED_DATA.resolve())
    root = top / "repo"
    root.mkdir()
    for entry in REPO.iterdir():
        if entry.name not in {"out", ".git"}:
            (root / entry.name).symlink_to(entry)
    return root


@pytest.fixture(scope="module")
def run_line(root):
    """Runs a README command from ``root``, once each, after the earlier lines of its block
    that write an artifact."""
    done = {}

    def run(where, argv=None):
        b, i = where
        for j, earlier in enumerate(BLOCKS[b][:i]):
            if (b, j) in COMMANDS and "-o" in earlier and (b, j) not in done:
                run((b, j))
        argv = argv or BLOCKS[b][i]
        result = snnc(argv, root)
        assert result.returncode == 0, f"{' '.join(argv)} (README block {b + 1}) exited {result.returncode}: {result.stderr[-2000:]}"
        assert "snnc: error" not in result.stderr, result.stderr
        done[where] = result
        return result

    return run


@pytest.mark.parametrize("where", with_data_mark(COMMANDS), ids=command_id)
def test_readme_command_runs(where, run_line, root, request):
    """As written, or shortened by fast_variant (the line as written: the slow test below)."""
    if needs_data(where):
        request.getfixturevalue("shared_data")  # skips where it is absent
    argv = BLOCKS[where[0]][where[1]]
    result = run_line(where, fast_variant(argv))
    if argv[1] == "compile":
        assert (root / argv[argv.index("-o") + 1] / "manifest.json").is_file()
    if argv[1] == "evaluate":
        assert "SNN accuracy" in result.stdout


@pytest.mark.slow
@pytest.mark.parametrize("where", with_data_mark(LONG), ids=command_id)
def test_long_readme_command_runs_as_written(where, run_line, request):
    if needs_data(where):
        request.getfixturevalue("shared_data")
    run_line(where)


@pytest.mark.data
@pytest.mark.parametrize("index", range(len(readme_blocks("python"))))
def test_readme_python_runs(index, root, shared_data):
    code = readme_blocks("python")[index]
    result = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=1800)
    assert result.returncode == 0, result.stderr[-3000:]
    if "evaluate(" in code:  # the snippet ends printing the SNN's accuracy per T
        accuracy = ast.literal_eval(result.stdout.strip().splitlines()[-1])
        assert all(0 <= a <= 1 for a in accuracy.values()), accuracy
