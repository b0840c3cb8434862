"""Run DCMTK storescu against a node; read from its verbose output which files were acknowledged."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.peers import DCMTK, dcmtk_env, require_dcmtk

_SENDING = re.compile(r"^I: Sending file: (?P<path>.+?)\s*$")
_RESPONSE = re.compile(r"^I: Received Store Response \((?P<status>.*)\)\s*$")


def parse_responses(output: str) -> dict[Path, str]:
    """Map each file storescu sent to the response it printed ("Success", "Unknown Status: 0x111").

    A file sent without a response (the association died) is absent.
    """
    responses: dict[Path, str] = {}
    current: Path | None = None
    for line in output.splitlines():
        if m := _SENDING.match(line):
            current = Path(m["path"])
        elif (m := _RESPONSE.match(line)) and current is not None:
            responses[current] = m["status"]
            current = None
    return responses


def status_code(response: str) -> int | None:
    """The DIMSE status in a storescu response text: 0 for "Success", else the hex it names."""
    if response == "Success":
        return 0
    m = re.search(r"0x([0-9a-fA-F]{1,4})\b", response)
    return int(m[1], 16) if m else None


@dataclass
class StoreRun:
    """A finished storescu run."""

    returncode: int
    output: str

    @property
    def responses(self) -> dict[Path, str]:
        return parse_responses(self.output)

    @property
    def statuses(self) -> dict[Path, int | None]:
        """Status code of each file that got a response (None: a text without a code)."""
        return {p: status_code(text) for p, text in self.responses.items()}

    @property
    def succeeded(self) -> set[Path]:
        """Files the peer acknowledged with a success status."""
        return {p for p, status in self.responses.items() if status == "Success"}


def storescu_command(
    port: int,
    paths: Sequence[Path | str],
    *,
    called_ae: str = "TUI_PACS",
    calling_ae: str = "STORESCU",
    flags: Sequence[str] = (),
) -> list[str]:
    """The storescu command line: verbose, no halt on failure, given proposal flags."""
    return [
        str(DCMTK / "storescu"), "-v", "-nh", "-aet", calling_ae, "-aec", called_ae,
        *flags, "127.0.0.1", str(port), *(str(p) for p in paths),
    ]  # fmt: skip


def run_storescu(
    port: int,
    paths: Sequence[Path | str],
    *,
    called_ae: str = "TUI_PACS",
    calling_ae: str = "STORESCU",
    flags: Sequence[str] = (),
    timeout: float = 120,
) -> StoreRun:
    """Run storescu to completion (stdout and stderr merged, as its log lines interleave)."""
    require_dcmtk()
    proc = subprocess.run(
        storescu_command(port, paths, called_ae=called_ae, calling_ae=calling_ae, flags=flags),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
        timeout=timeout,
        env=dcmtk_env(),
    )
    return StoreRun(proc.returncode, proc.stdout)


class BackgroundStorescu:
    """storescu running in the background, its output going to a file."""

    def __init__(self, port: int, paths: Sequence[Path | str], log: Path, **kwargs: object) -> None:
        require_dcmtk()
        self.log = log
        self._out = open(log, "wb")  # noqa: SIM115 (closed by wait())
        self.proc = subprocess.Popen(
            storescu_command(port, paths, **kwargs),  # type: ignore[arg-type]
            stdout=self._out,
            stderr=subprocess.STDOUT,
            env=dcmtk_env(),
        )

    def wait(self, timeout: float = 120) -> StoreRun:
        try:
            code = self.proc.wait(timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            self._out.close()
        return StoreRun(code, self.log.read_text(errors="replace"))
