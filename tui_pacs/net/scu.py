"""SCU calls: C-ECHO and C-STORE to a remote node, as plain functions and progress generators."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

from pydicom import dcmread
from pydicom.uid import UID, ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import AE
from pynetdicom.association import Association
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

from tui_pacs.errors import NetworkError
from tui_pacs.model import EchoResult, RemoteNode, SendProgress
from tui_pacs.net import status as st
from tui_pacs.net.scp import NODELAY_HANDLER

log = logging.getLogger(__name__)

MAX_CONTEXTS = 128
_UNCOMPRESSED = [str(ExplicitVRLittleEndian), str(ImplicitVRLittleEndian)]


def _ae(own_ae_title: str, timeout: float) -> AE:
    ae = AE(ae_title=own_ae_title)
    ae.acse_timeout = timeout
    ae.connection_timeout = timeout  # a silent host: give up like qr_scu does
    ae.dimse_timeout = max(timeout, 30)
    ae.network_timeout = max(timeout, 30)
    ae.maximum_pdu_size = 0
    return ae


def association_failure(assoc: Association, own_ae_title: str, node: RemoteNode) -> str:
    """Why an association we asked for is not established, and what to check.

    Args:
        assoc: the association ``AE.associate`` returned, not established.
        own_ae_title: the calling AE title we used.
        node: the peer.
    """
    where = f"association with {node.ae_title}@{node.host}:{node.port}"
    if assoc.is_rejected:
        return (
            f"{where} was rejected (does the node accept our AE title {own_ae_title}, "
            f"and is {node.ae_title} its own?)"
        )
    if assoc.rejected_contexts and not assoc.accepted_contexts:
        names = sorted({UID(cx.abstract_syntax or "").name for cx in assoc.rejected_contexts})
        return (
            f"{where} could not be established: the node accepted none of the services "
            f"asked for ({', '.join(names[:3])}{', ...' if len(names) > 3 else ''})"
        )
    return (
        f"{where} could not be established (nothing answered: is the node running, "
        "and are its host and port right?)"
    )


def echo(own_ae_title: str, node: RemoteNode, timeout: float = 10.0) -> EchoResult:
    """Send a C-ECHO to ``node``; never raises, the result says what happened."""
    ae = _ae(own_ae_title, timeout)
    ae.add_requested_context(Verification)
    started = time.perf_counter()
    now = datetime.now(UTC)
    assoc = ae.associate(
        node.host, node.port, ae_title=node.ae_title, evt_handlers=[NODELAY_HANDLER]
    )
    if not assoc.is_established:
        reason = "association rejected" if assoc.is_rejected else "no association (unreachable?)"
        return EchoResult(node.name, False, None, None, reason, now)
    try:
        rsp = assoc.send_c_echo()
    finally:
        assoc.release()
    latency = (time.perf_counter() - started) * 1e3
    status = rsp.get("Status") if rsp else None
    ok = status == st.SUCCESS
    message = st.describe(status) if status is not None else "no response (aborted?)"
    return EchoResult(node.name, ok, latency if ok else None, status, message, now)


def _header(path: Path) -> tuple[str, str]:
    ds = dcmread(path, stop_before_pixels=True, specific_tags=["SOPClassUID", "SOPInstanceUID"])
    sop_class = str(ds.file_meta.get("MediaStorageSOPClassUID") or ds.SOPClassUID)
    ts = str(ds.file_meta.get("TransferSyntaxUID") or ImplicitVRLittleEndian)
    return sop_class, ts


def send_files(
    own_ae_title: str,
    node: RemoteNode,
    files: Sequence[Path],
    should_stop: Callable[[], bool] = lambda: False,
    timeout: float = 30.0,
) -> Iterator[SendProgress]:
    """C-STORE ``files`` to ``node``, yielding progress after each one.

    Each file is proposed in its own transfer syntax (plus uncompressed fallbacks), so compressed
    images go out as they are archived. Files are sent over as many associations as the 128
    presentation context limit needs.

    Raises:
        NetworkError: No association could be established.
    """
    total = len(files)
    completed = failed = warning = 0
    groups: list[tuple[list[tuple[str, str]], list[tuple[Path, str, str]]]] = []
    current_keys: list[tuple[str, str]] = []
    current_files: list[tuple[Path, str, str]] = []
    unreadable: list[tuple[Path, str]] = []
    for path in files:
        try:
            sop_class, ts = _header(Path(path))
        except Exception as exc:
            unreadable.append((Path(path), f"unreadable: {exc}"))
            continue
        needed = [k for k in ((sop_class, ts), (sop_class, "*")) if k not in current_keys]
        if len(current_keys) + len(needed) > MAX_CONTEXTS:
            groups.append((current_keys, current_files))
            current_keys, current_files = [], []
            needed = [(sop_class, ts), (sop_class, "*")]
        current_keys.extend(needed)
        current_files.append((Path(path), sop_class, ts))
    if current_files:
        groups.append((current_keys, current_files))

    for path, reason in unreadable:
        failed += 1
        yield SendProgress(total, completed, failed, warning, str(path), None, reason)

    for keys, group_files in groups:
        if should_stop():
            return
        ae = _ae(own_ae_title, timeout)
        for sop_class, ts in keys:
            syntaxes = _UNCOMPRESSED if ts == "*" else [ts]
            ae.add_requested_context(sop_class, syntaxes)
        assoc = ae.associate(
            node.host, node.port, ae_title=node.ae_title, evt_handlers=[NODELAY_HANDLER]
        )
        if not assoc.is_established:
            raise NetworkError(association_failure(assoc, own_ae_title, node), "Send failed")
        try:
            for path, _sop_class, _ts in group_files:
                if should_stop():
                    return
                error = ""
                status: int | None = None
                try:
                    ds = dcmread(path)
                    rsp = assoc.send_c_store(ds)
                    status = rsp.get("Status") if rsp else None
                except Exception as exc:  # e.g. no accepted context for a compressed syntax
                    error = str(exc)
                if status is None and not error:
                    error = "no response from the peer (association aborted?)"
                uid = ""
                if status == st.SUCCESS:
                    completed += 1
                elif status is not None and 0xB000 <= status <= 0xBFFF:
                    warning += 1
                    completed += 1
                else:
                    failed += 1
                    error = error or st.describe(status)
                uid = str(path)
                yield SendProgress(total, completed, failed, warning, uid, status, error)
                if not assoc.is_established:
                    raise NetworkError(
                        f"association with {node.ae_title} was aborted: {error}", "Send failed"
                    )
        finally:
            if assoc.is_established:
                assoc.release()
