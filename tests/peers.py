"""Real peers for the tests and benchmarks: our node as a subprocess, DCMTK tools, Orthanc.

Every peer binds to loopback on a fresh free port. DCMTK tools are called by full path (the
virtualenv has pynetdicom's own ``storescu`` and friends) with ``TCP_NODELAY=1``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Sequence
from contextlib import closing
from pathlib import Path

import pytest

DCMTK = Path("/usr/bin")
ORTHANC = Path("/usr/sbin/Orthanc")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
PYDICOM_TEST_FILES = None  # filled lazily by pydicom_test_files()


def require(path: Path, what: str) -> None:
    """Skip when a peer is missing on a developer machine; fail in CI, which must have it."""
    if not path.exists():
        message = f"{what} not installed ({path})"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)


def require_dcmtk() -> None:
    require(DCMTK / "storescu", "DCMTK (Debian package dcmtk)")


def require_orthanc() -> None:
    require(ORTHANC, "Orthanc (Debian package orthanc)")


def free_port() -> int:
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, timeout: float = 20.0, proc: subprocess.Popen | None = None) -> None:
    """Wait until something accepts TCP connections on 127.0.0.1:port."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout}s")


def dcmtk_env() -> dict[str, str]:
    env = dict(os.environ)
    env["TCP_NODELAY"] = "1"
    return env


def run_dcmtk(
    tool: str, *args: str, timeout: float = 300, check: bool = False
) -> subprocess.CompletedProcess[str]:
    """Run a DCMTK tool by full path with Nagle's algorithm off."""
    require_dcmtk()
    return subprocess.run(
        [str(DCMTK / tool), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=dcmtk_env(),
        check=check,
    )


def write_node_config(
    folder: Path,
    port: int,
    ae_title: str = "TUI_PACS",
    database_url: str | None = None,
    extra: str = "",
    duplicate_policy: str = "keep-first",
    allowed: Sequence[str] = (),
    fast_storage: bool = True,
) -> Path:
    """Write a node config file for tests; returns its path.

    ``fast_storage=False``: pynetdicom serves every association (no store acceptor).
    """
    folder.mkdir(parents=True, exist_ok=True)
    db = database_url or f"sqlite:///{folder / 'index.sqlite3'}"
    allowed_toml = ", ".join(json.dumps(a) for a in allowed)
    text = f"""
[node]
ae_title = "{ae_title}"
bind_address = "127.0.0.1"
port = {port}
allowed_calling_ae_titles = [{allowed_toml}]
fast_storage = {str(fast_storage).lower()}

[storage]
path = "{folder / 'archive'}"
database_url = "{db}"
duplicate_policy = "{duplicate_policy}"

[logging]
file = "{folder / 'node.log'}"
level = "INFO"
{extra}
"""
    path = folder / "config.toml"
    path.write_text(text)
    return path


class NodeProcess:
    """``tui-pacs serve`` as a subprocess on a free loopback port."""

    def __init__(self, folder: Path, port: int | None = None, **config_kwargs: object) -> None:
        self.folder = folder
        self.port = port or free_port()
        self.ae_title = str(config_kwargs.get("ae_title", "TUI_PACS"))
        self.config_path = write_node_config(folder, self.port, **config_kwargs)  # type: ignore[arg-type]
        self.proc: subprocess.Popen[bytes] | None = None
        self.stderr_path = folder / "serve.stderr"

    @property
    def archive(self) -> Path:
        return self.folder / "archive"

    def start(self, timeout: float = 30.0) -> NodeProcess:
        # Open for the life of the process (closed in stop()), not for a block.
        self._stderr = open(self.stderr_path, "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tui_pacs", "--config", str(self.config_path), "serve"],
            stdout=subprocess.DEVNULL,
            stderr=self._stderr,
        )
        wait_for_port(self.port, timeout, self.proc)
        return self

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        self._stderr.close()
        self.proc = None
        return code

    def kill(self) -> None:
        """kill -9: no chance to clean up."""
        self.stop(signal.SIGKILL)

    def log(self) -> str:
        return self.stderr_path.read_text(errors="replace") if self.stderr_path.exists() else ""

    def __enter__(self) -> NodeProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class StorescpProcess:
    """DCMTK ``storescp`` writing what it receives to a folder."""

    def __init__(self, folder: Path, ae_title: str = "STORESCP", port: int | None = None) -> None:
        self.folder = folder
        self.ae_title = ae_title
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> StorescpProcess:
        require_dcmtk()
        self.folder.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [str(DCMTK / "storescp"), "-aet", self.ae_title, "-od", str(self.folder),
             "+xa", "--max-pdu", "131072", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=dcmtk_env(),
        )
        wait_for_port(self.port, 20, self.proc)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    def files(self) -> list[Path]:
        return sorted(p for p in self.folder.rglob("*") if p.is_file())


class OrthancProcess:
    """A real Orthanc on loopback with a generated configuration (no authentication)."""

    def __init__(
        self,
        folder: Path,
        ae_title: str = "ORTHANC",
        dicom_port: int | None = None,
        http_port: int | None = None,
        modalities: dict[str, tuple[str, str, int]] | None = None,
        extra: dict | None = None,
    ) -> None:
        self.folder = folder
        self.ae_title = ae_title
        self.dicom_port = dicom_port or free_port()
        self.http_port = http_port or free_port()
        self.modalities = modalities or {}
        self.extra = extra or {}
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def __enter__(self) -> OrthancProcess:
        require_orthanc()
        self.folder.mkdir(parents=True, exist_ok=True)
        config = {
            "Name": "tui-pacs-test",
            "StorageDirectory": str(self.folder / "storage"),
            "IndexDirectory": str(self.folder / "storage"),
            "DicomAet": self.ae_title,
            "DicomPort": self.dicom_port,
            "HttpPort": self.http_port,
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": False,
            "DicomCheckCalledAet": False,
            "DicomAlwaysAllowEcho": True,
            "DicomAlwaysAllowStore": True,
            "DicomAlwaysAllowFind": True,
            "DicomAlwaysAllowGet": True,
            "DicomAlwaysAllowMove": True,
            "UnknownSopClassAccepted": True,
            "DicomModalities": {
                name: [aet, host, port] for name, (aet, host, port) in self.modalities.items()
            },
            "Plugins": [],
            "StableAge": 1,
            "HttpDescribeErrors": True,
            "DicomScpTimeout": 30,
            "ConcurrentJobs": 2,
        }
        config.update(self.extra)
        path = self.folder / "orthanc.json"
        path.write_text(json.dumps(config, indent=2))
        self._log = open(self.folder / "orthanc.log", "ab")
        self.proc = subprocess.Popen(
            [str(ORTHANC), f"--logdir={self.folder}", str(path)],
            stdout=self._log,
            stderr=self._log,
        )
        wait_for_port(self.http_port, 60, self.proc)
        wait_for_port(self.dicom_port, 60, self.proc)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
            self._log.close()

    def get(self, path: str) -> object:
        with urllib.request.urlopen(self.url + path, timeout=60) as rsp:
            return json.loads(rsp.read())

    def post(self, path: str, body: object) -> object:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method="POST")
        with urllib.request.urlopen(req, timeout=300) as rsp:
            raw = rsp.read()
        return json.loads(raw) if raw else None


def pydicom_test_files() -> list[Path]:
    """Every image/data file bundled with pydicom that pydicom reads fully and that has SOP UIDs."""
    import warnings

    import pydicom
    from pydicom import dcmread

    global PYDICOM_TEST_FILES
    if PYDICOM_TEST_FILES is None:
        base = Path(pydicom.__file__).parent / "data"
        found = []
        for path in sorted([*base.glob("test_files/*.dcm"), *base.glob("charset_files/*.dcm")]):
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    ds = dcmread(path)
                    if "SOPInstanceUID" not in ds or "StudyInstanceUID" not in ds:
                        continue
                    if "SeriesInstanceUID" not in ds or "SOPClassUID" not in ds:
                        continue
            except Exception:
                continue
            found.append(path)
        PYDICOM_TEST_FILES = found
    return list(PYDICOM_TEST_FILES)


def have(tool: str) -> bool:
    return shutil.which(tool) is not None
