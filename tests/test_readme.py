"""The README's commands are the ones CI runs and the one that starts the node."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
CI_RUN = (ROOT / ".ci" / "run").read_text(encoding="utf-8")


def _command_after(heading: str) -> str:
    """The first line of the first fenced block after the line that says ``heading``."""
    m = re.search(re.escape(heading) + r"\s*\n+```[a-z]*\n(.+?)\n", README)
    assert m, f"no fenced command after {heading!r} in README.md"
    return m.group(1).strip()


def _last_command(script: str) -> str:
    lines = [ln.strip() for ln in script.splitlines()]
    commands = [ln for ln in lines if ln and not ln.startswith("#")]
    return commands[-1]


def test_readme_test_command_is_what_ci_runs() -> None:
    """The README's test command is exactly the last command line of .ci/run."""
    assert _command_after("Run the whole test suite:") == _last_command(CI_RUN)


def test_readme_test_command_runs_pytest_with_the_test_extra() -> None:
    """The test command installs the test extra and runs pytest from a fresh venv."""
    command = _command_after("Run the whole test suite:")
    assert "pip install" in command and "'.[test]'" in command
    assert command.endswith(("-m pytest", "-m pytest -n 2"))


def test_readme_run_command_starts_the_node() -> None:
    """The README's run command (after 'Run the node') ends by starting `tui-pacs serve`."""
    m = re.search(r"Run the node[^\n]*(?:\n[^\n`]+)*\n+```[a-z]*\n(.+?)\n", README)
    assert m, "no fenced command after 'Run the node' in README.md"
    command = m.group(1).strip()
    assert re.search(r"(^|&& )(\S*/)?tui-pacs serve\b", command), command
    assert command.split("&&")[-1].strip().endswith("tui-pacs serve")
