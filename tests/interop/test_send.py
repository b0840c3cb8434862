"""``tui-pacs send`` and ``tui-pacs echo`` against DCMTK storescp, and against nothing at all."""

from __future__ import annotations

import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from pydicom import dcmread

from tests.interop.synth import write_series
from tests.net.archive_audit import dataset_differences
from tests.peers import (
    DCMTK,
    StorescpProcess,
    free_port,
    pydicom_test_files,
    require_dcmtk,
    write_node_config,
)

pytestmark = pytest.mark.interop


def cli(config: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run ``tui-pacs --config CONFIG ARGS...`` in a subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "tui_pacs", "--config", str(config), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture
def our_config(tmp_path: Path) -> Path:
    """Our own side: a loopback port of its own (the command may run a node in-process)."""
    return write_node_config(tmp_path / "ours", free_port(), ae_title="TUI_SEND")


def _dcmtk_reads(path: Path) -> bool:
    return (
        subprocess.run([str(DCMTK / "dcmdump"), "-q", str(path)], capture_output=True).returncode
        == 0
    )


def one_file_per_transfer_syntax() -> list[Path]:
    """A pydicom test file for each transfer syntax among them (distinct SOP Instance UIDs)."""
    chosen: dict[str, Path] = {}
    uids: set[str] = set()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for path in pydicom_test_files():
            if "truncated" in path.name:
                continue
            ds = dcmread(path, stop_before_pixels=True)
            ts, uid = str(ds.file_meta.TransferSyntaxUID), str(ds.SOPInstanceUID)
            if ts in chosen or uid in uids or not _dcmtk_reads(path):
                continue
            chosen[ts] = path
            uids.add(uid)
    return list(chosen.values())


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_send_folder_to_storescp(tmp_path: Path, our_config: Path) -> None:
    """Files sent by ``tui-pacs send`` reach storescp intact, each in its own transfer syntax."""
    require_dcmtk()
    outgoing = tmp_path / "outgoing"
    files = write_series(outgoing / "series", 5)
    for path in one_file_per_transfer_syntax():
        files.append(Path(shutil.copy(path, outgoing / path.name)))
    with StorescpProcess(tmp_path / "storescp") as scp:
        r = cli(
            our_config, "send", str(outgoing), "--to", f"{scp.ae_title}@127.0.0.1:{scp.port}", "-q"
        )
        received = {str(dcmread(p).SOPInstanceUID): p for p in scp.files()}
    assert r.returncode == 0, r.stdout + r.stderr
    assert len(received) == len(files)
    for path in files:
        sent = dcmread(path)
        got = dcmread(received[str(sent.SOPInstanceUID)])
        assert got.file_meta.TransferSyntaxUID == sent.file_meta.TransferSyntaxUID, path.name
        assert dataset_differences(sent, got, through_dcmtk=True) == [], path.name


def test_echo_storescp(tmp_path: Path, our_config: Path) -> None:
    """``tui-pacs echo AE@HOST:PORT`` succeeds against storescp."""
    with StorescpProcess(tmp_path / "storescp") as scp:
        r = cli(our_config, "echo", f"{scp.ae_title}@127.0.0.1:{scp.port}")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "OK" in r.stdout


def test_send_to_closed_port_fails_clearly(tmp_path: Path, our_config: Path) -> None:
    """Sending to a port nobody listens on names the destination and exits 1, no traceback."""
    [image] = write_series(tmp_path / "outgoing", 1)
    port = free_port()
    r = cli(our_config, "send", str(image), "--to", f"NOBODY@127.0.0.1:{port}", "-q")
    assert r.returncode == 1, r.stdout + r.stderr
    assert f"127.0.0.1:{port}" in r.stderr
    assert "Traceback" not in r.stderr


def test_echo_closed_port_fails(our_config: Path) -> None:
    """Echoing a port nobody listens on reports FAILED and exits 1."""
    r = cli(our_config, "echo", f"NOBODY@127.0.0.1:{free_port()}")
    assert r.returncode == 1
    assert "FAILED" in r.stdout
    assert "Traceback" not in r.stderr
