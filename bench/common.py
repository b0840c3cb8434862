"""Shared benchmark helpers: statistics, the three targets (our node, storescp, Orthanc), results.

Every target starts fresh in its own folder on a free loopback port and can say how many instances
it really stored, so a run that silently dropped images is caught instead of reported as fast.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.peers import (  # noqa: E402  (needs the repo root on sys.path)
    DCMTK,
    OrthancProcess,
    StorescpProcess,
    dcmtk_env,
    free_port,
    wait_for_port,
)

RESULTS = REPO / "bench" / "results"
#: DCMTK reads this in every process it runs in (storescu, storescp and Orthanc's DICOM stack).
os.environ["TCP_NODELAY"] = "1"


# -- statistics ----------------------------------------------------------------------------------


def summarize(values: Sequence[float]) -> dict[str, float]:
    """Median, min and max of a non-empty series."""
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def ratio(ours: float | None, theirs: float | None) -> float | None:
    """ours / theirs, or None when either side is missing."""
    if not ours or not theirs:
        return None
    return ours / theirs


def paired_ratio(ours: Sequence[float], theirs: Sequence[float]) -> float | None:
    """Median of run-by-run ratios: robust to a machine that gets slower during the session."""
    pairs = [a / b for a, b in zip(ours, theirs, strict=False) if b]
    return statistics.median(pairs) if pairs else None


def fmt_ratio(value: float | None) -> str:
    return f"{value:.2f}x" if value is not None else "-"


# -- targets -------------------------------------------------------------------------------------


class Target(Protocol):
    """A running C-STORE SCP under test."""

    name: str
    ae_title: str
    port: int
    #: The target's main process (CPU time is summed over it and its children).
    pid: int

    def stored(self) -> int:
        """How many instances the target has really stored."""

    def stop(self) -> None: ...


def tui_pacs_command() -> list[str]:
    """``tui-pacs`` exactly as a user runs it: the console script of this virtualenv."""
    script = Path(sys.executable).parent / "tui-pacs"
    return [str(script)] if script.exists() else [sys.executable, "-m", "tui_pacs"]


def write_node_config(folder: Path, port: int, settings: dict[str, dict[str, object]]) -> Path:
    """A plain node config on loopback: SQLite index and archive in ``folder``, defaults otherwise.

    Args:
        settings: Extra keys per section (``{"node": {"listener_processes": 2}}``).
    """
    sections: dict[str, dict[str, object]] = {
        "node": {"ae_title": "TUI_PACS", "bind_address": "127.0.0.1", "port": port},
        "storage": {
            "path": str(folder / "archive"),
            "database_url": f"sqlite:///{folder / 'index.sqlite3'}",
        },
        "logging": {"file": str(folder / "node.log")},
    }
    for section, keys in settings.items():
        sections.setdefault(section, {}).update(keys)
    lines = []
    for section, keys in sections.items():
        lines.append(f"[{section}]")
        lines.extend(f"{k} = {json.dumps(v)}" for k, v in keys.items())
        lines.append("")
    path = folder / "config.toml"
    path.write_text("\n".join(lines))
    return path


def stored_instances(folder: Path) -> int:
    """What a node in ``folder`` really stored: index rows and archived files must agree, so the
    smaller of the two counts."""
    con = sqlite3.connect(f"file:{folder / 'index.sqlite3'}?mode=ro", uri=True)
    try:
        rows = con.execute("SELECT count(*) FROM instance").fetchone()[0]
    finally:
        con.close()
    archive = folder / "archive"
    files = sum(
        1 for p in archive.rglob("*.dcm") if ".incoming" not in p.relative_to(archive).parts
    )
    return min(rows, files)


class OurNode:
    """``tui-pacs --config FILE serve`` on a fresh archive and SQLite index."""

    name = "tui-pacs"

    def __init__(
        self,
        folder: Path,
        settings: dict[str, dict[str, object]] | None = None,
        source_tree: Path | None = None,
    ) -> None:
        """Start the node.

        Args:
            settings: Extra config keys per section.
            source_tree: Run the tui_pacs package found there (an export of an older commit,
                for a before/after comparison in one session) instead of the installed one.
        """
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.ae_title = "TUI_PACS"
        self.port = free_port()
        config = write_node_config(folder, self.port, settings or {})
        self._stderr = open(folder / "serve.stderr", "wb")  # noqa: SIM115 (closed in stop)
        env = dict(os.environ)
        if source_tree is not None:
            env["PYTHONPATH"] = str(source_tree)
        self.proc = subprocess.Popen(
            [*tui_pacs_command(), "--config", str(config), "serve"],
            stdout=subprocess.DEVNULL,
            stderr=self._stderr,
            env=env,
        )
        wait_for_port(self.port, 60, self.proc)
        self._wait_ready(60)

    def _wait_ready(self, timeout: float) -> None:
        """Wait for serve's "listening on" line: with several listener processes the port opens
        before the extra processes are up, the line comes once they all listen."""
        deadline = time.monotonic() + timeout
        log = self.folder / "serve.stderr"
        while b"listening on" not in log.read_bytes():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"tui-pacs serve did not get ready; see {log}")
            time.sleep(0.05)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stored(self) -> int:
        return stored_instances(self.folder)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._stderr.close()


class Storescp:
    """DCMTK ``storescp -od FOLDER +xa --max-pdu 131072`` (tests/peers.py); it never fsyncs."""

    name = "storescp"

    def __init__(self, folder: Path) -> None:
        self.peer = StorescpProcess(folder / "received")
        self.peer.__enter__()
        self.ae_title = self.peer.ae_title
        self.port = self.peer.port
        assert self.peer.proc is not None
        self.pid = self.peer.proc.pid

    def stored(self) -> int:
        return len(self.peer.files())

    def stop(self) -> None:
        self.peer.__exit__(None, None, None)


#: Settings tests/peers.py OrthancProcess changes for the tests, put back to Orthanc's defaults.
ORTHANC_DEFAULTS_RESTORED = {"StableAge": 60, "HttpDescribeErrors": True, "DicomScpTimeout": 30}


class Orthanc:
    """Debian's Orthanc on loopback with its own config: files and SQLite index in ``folder``."""

    name = "orthanc"

    def __init__(self, folder: Path) -> None:
        self.peer = OrthancProcess(folder, extra=dict(ORTHANC_DEFAULTS_RESTORED))
        self.peer.__enter__()
        self.ae_title = self.peer.ae_title
        self.port = self.peer.dicom_port
        assert self.peer.proc is not None
        self.pid = self.peer.proc.pid

    def stored(self) -> int:
        stats = self.peer.get("/statistics")
        assert isinstance(stats, dict)
        return int(stats["CountInstances"])

    def stop(self) -> None:
        self.peer.__exit__(None, None, None)


class BarePynetdicom:
    """bench/bare_scp.py: pynetdicom writing each data set to a file, fsynced; nothing else."""

    name = "pynetdicom"

    def __init__(self, folder: Path) -> None:
        self.folder = folder / "received"
        self.ae_title = "BARE"
        self.port = free_port()
        self._stderr = open(folder / "bare.stderr", "wb")  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen(
            [sys.executable, str(REPO / "bench" / "bare_scp.py"), str(self.port), str(self.folder)],
            stdout=subprocess.DEVNULL,
            stderr=self._stderr,
        )
        self.pid = self.proc.pid
        wait_for_port(self.port, 60, self.proc)

    def stored(self) -> int:
        return sum(1 for _ in self.folder.iterdir())

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)
        self._stderr.close()


TARGETS = ("tui-pacs", "orthanc", "storescp", "pynetdicom")


def start_target(
    name: str,
    folder: Path,
    node_settings: dict[str, dict[str, object]] | None = None,
    source_tree: Path | None = None,
) -> Target:
    """Start a fresh target in an emptied ``folder``.

    Args:
        name: One of ``TARGETS``, or ``tui-pacs[LABEL]`` for a variant of our node.
        node_settings: Extra config keys of our node (``tui-pacs`` and its variants).
        source_tree: Where our node's code comes from (see :class:`OurNode`).
    """
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    if name == "tui-pacs" or name.startswith("tui-pacs["):
        return OurNode(folder, node_settings, source_tree)
    if name == "storescp":
        return Storescp(folder)
    if name == "orthanc":
        return Orthanc(folder)
    if name == "pynetdicom":
        return BarePynetdicom(folder)
    raise ValueError(f"unknown target {name!r}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its live descendants (Linux /proc).

    On a shared machine CPU time per instance is steadier than wall time: it hardly depends
    on what else runs, so it shows what a change saved even when throughput is noisy.
    """
    tick = os.sysconf("SC_CLK_TCK")
    stats: dict[int, tuple[int, float]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # After the command: state, ppid, ... utime (14th field of the line), stime (15th).
        stats[int(entry.name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / tick)
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        if current in stats:
            total += stats[current][1]
        todo.extend(p for p, (ppid, _) in stats.items() if ppid == current)
    return total


# -- sending -------------------------------------------------------------------------------------


class SendError(RuntimeError):
    """A storescu process failed."""


def storescu(
    target: Target, groups: Iterable[Sequence[Path]], log_folder: Path, timeout: float = 900
) -> float:
    """Send each group of folders with its own ``storescu`` process (one association each), all
    at once; return the wall seconds.

    The clock runs from just before the first process starts until the last one has exited.
    """
    log_folder.mkdir(parents=True, exist_ok=True)
    procs: list[tuple[subprocess.Popen[bytes], Path]] = []
    env = dcmtk_env()
    groups = [list(g) for g in groups]
    logs = [open(log_folder / f"storescu{i}.log", "wb") for i in range(len(groups))]  # noqa: SIM115
    started = time.perf_counter()
    try:
        for group, log in zip(groups, logs, strict=True):
            cmd = [
                str(DCMTK / "storescu"), "-aet", "BENCH", "-aec", target.ae_title,
                "+sd", "+r", "127.0.0.1", str(target.port), *map(str, group),
            ]  # fmt: skip
            procs.append((subprocess.Popen(cmd, stdout=log, stderr=log, env=env), group))
        deadline = started + timeout
        for proc, _ in procs:
            proc.wait(max(1.0, deadline - time.perf_counter()))
        elapsed = time.perf_counter() - started
    finally:
        for proc, _ in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        for log in logs:
            log.close()
    for i, (proc, group) in enumerate(procs):
        if proc.returncode != 0:
            tail = (log_folder / f"storescu{i}.log").read_text(errors="replace")[-2000:]
            raise SendError(f"storescu {group[0]}... exited with {proc.returncode}:\n{tail}")
    return elapsed


# -- results -------------------------------------------------------------------------------------


@dataclass
class Results:
    """Raw figures of a benchmark session, written as JSON to bench/results/."""

    bench: str
    options: dict[str, object]
    started: str = field(default_factory=lambda: datetime.now(UTC).isoformat())
    environment: dict[str, object] = field(default_factory=lambda: environment())
    measurements: list[dict[str, object]] = field(default_factory=list)
    summary: list[dict[str, object]] = field(default_factory=list)

    def write(self) -> Path:
        RESULTS.mkdir(parents=True, exist_ok=True)
        stamp = self.started[:19].replace(":", "").replace("-", "")
        path = RESULTS / f"{self.bench}-{stamp}.json"
        path.write_text(json.dumps(self.__dict__, indent=2, default=str))
        return path


def environment() -> dict[str, object]:
    """Where the figures come from: machine, versions, commit."""

    def out(*cmd: str) -> str:
        try:
            return subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    import pydicom
    import pynetdicom

    return {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "pydicom": pydicom.__version__,
        "pynetdicom": pynetdicom.__version__,
        "git_commit": out("git", "-C", str(REPO), "rev-parse", "--short", "HEAD"),
        "git_dirty": bool(out("git", "-C", str(REPO), "status", "--porcelain", "--", "tui_pacs")),
        # A baseline is measured by pointing PYTHONPATH at an export of an older commit.
        "node_pythonpath": os.environ.get("PYTHONPATH", ""),
        "dcmtk": out(str(DCMTK / "storescu"), "--version").splitlines()[0:1],
        "orthanc": out("/usr/sbin/Orthanc", "--version").splitlines()[0:1],
        "loadavg_at_start": os.getloadavg(),
    }


def table(rows: list[list[str]], header: list[str]) -> str:
    """A plain text table with right-aligned figures."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    for r in rows:
        cells = [
            str(c).ljust(w) if i == 0 else str(c).rjust(w)
            for i, (c, w) in enumerate(zip(r, widths, strict=True))
        ]
        lines.append("  ".join(cells))
    return "\n".join(lines)
