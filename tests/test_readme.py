"""README's two set-up commands are what CI runs (CI runs exactly README's test command)."""

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def setup_commands() -> list[str]:
    readme = (REPO / "README.md").read_text()
    section = readme.split("## Set-up", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.*?)\n\s*```", section, flags=re.S)


def test_readme_has_exactly_two_setup_commands():
    commands = [c.strip() for c in setup_commands()]
    assert len(commands) == 2
    assert commands[0].startswith("python3.11 -m venv .venv && ")
    assert " snnc " in commands[0] or "/snnc " in commands[0]  # command 1 runs the main job


def test_ci_installs_as_readme_and_runs_its_test_command():
    install, tests = (c.strip() for c in setup_commands())
    ci_lines = [l.strip() for l in (REPO / ".ci" / "run").read_text().splitlines()]
    install_part = install.rsplit(" && ", 1)[0]  # command 1 without the main job
    assert install_part in ci_lines
    assert tests in ci_lines
