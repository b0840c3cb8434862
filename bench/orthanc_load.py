"""Load the studies of our index into Orthanc as tiny DICOM instances (one per series, no pixels).

For the query benchmark Orthanc must hold the same studies as our index, and what gets queried is
Orthanc's own index, filled the way Orthanc always fills it: by storing instances. Each series of
our index becomes one instance carrying the patient, study and series attributes a study-level
C-FIND returns (so Orthanc computes ModalitiesInStudy from the same series modalities we hold).
The instances are encoded by hand (Explicit VR Little Endian, a few hundred bytes each, tens of
microseconds) and POSTed to Orthanc's REST ``/instances`` over several keep-alive connections.

Orthanc computes NumberOfStudyRelatedInstances from what it stores (one per series), so that
count differs from ours; matching, which the benchmark compares, does not depend on it.
"""

from __future__ import annotations

import http.client
import queue
import struct
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import peewee as pw

#: Secondary Capture Image Storage, and Basic Text SR for SR series: Orthanc stores any SOP class.
SC_STORAGE = "1.2.840.10008.5.1.4.1.1.7"
TEXT_SR_STORAGE = "1.2.840.10008.5.1.4.1.1.88.11"
EXPLICIT_VR_LE = "1.2.840.10008.1.2.1"
IMPLEMENTATION_UID = "1.2.826.0.1.3680043.8.498.1"
_LONG_VRS = {b"OB", b"OW", b"OF", b"SQ", b"UT", b"UN", b"UC", b"UR", b"OD", b"OL", b"OV"}

#: Settings that only make the one-time load faster (the query phase runs Orthanc's defaults).
FAST_LOAD_SETTINGS: dict[str, object] = {
    "SyncStorageArea": False,
    "StoreMD5ForAttachments": False,
    "SaveJobs": False,
}

_SQL = """
SELECT p.patient_id, p.patient_name, p.patient_birth_date, p.patient_sex,
       st.study_instance_uid, st.study_date, st.study_time, st.accession_number, st.study_id,
       st.study_description, st.referring_physician_name, st.institution_name,
       se.series_instance_uid, se.modality, se.series_number, se.series_description
FROM series se JOIN study st ON se.study_id = st.id JOIN patient p ON st.patient_id = p.id
ORDER BY se.id
"""


def _element(tag: int, vr: bytes, value: bytes) -> bytes:
    if len(value) % 2:
        value += b"\0" if vr == b"UI" else b" "
    group, elem = tag >> 16, tag & 0xFFFF
    if vr in _LONG_VRS:
        return struct.pack("<HH2s2xI", group, elem, vr, len(value)) + value
    return struct.pack("<HH2sH", group, elem, vr, len(value)) + value


def encode_instance(row: tuple) -> bytes:
    """A DICOM file (Part 10) for one series row of :data:`_SQL`, UTF-8 text."""
    (
        patient_id,
        name,
        birth,
        sex,
        study_uid,
        study_date,
        study_time,
        accession,
        study_id,
        description,
        referrer,
        institution,
        series_uid,
        modality,
        series_number,
        series_description,
    ) = row
    sop_class = TEXT_SR_STORAGE if modality == "SR" else SC_STORAGE
    sop_uid = f"{series_uid}.1"
    meta_body = b"".join(
        (
            _element(0x00020001, b"OB", b"\0\1"),
            _element(0x00020002, b"UI", sop_class.encode()),
            _element(0x00020003, b"UI", sop_uid.encode()),
            _element(0x00020010, b"UI", EXPLICIT_VR_LE.encode()),
            _element(0x00020012, b"UI", IMPLEMENTATION_UID.encode()),
        )
    )
    meta = _element(0x00020000, b"UL", struct.pack("<I", len(meta_body))) + meta_body

    def text(value: object) -> bytes:
        return ("" if value is None else str(value)).encode("utf-8")

    data = b"".join(
        (
            _element(0x00080005, b"CS", b"ISO_IR 192"),
            _element(0x00080016, b"UI", sop_class.encode()),
            _element(0x00080018, b"UI", sop_uid.encode()),
            _element(0x00080020, b"DA", text(study_date)),
            _element(0x00080021, b"DA", text(study_date)),
            _element(0x00080030, b"TM", text(study_time)),
            _element(0x00080050, b"SH", text(accession)),
            _element(0x00080060, b"CS", text(modality)),
            _element(0x00080080, b"LO", text(institution)),
            _element(0x00080090, b"PN", text(referrer)),
            _element(0x00081030, b"LO", text(description)),
            _element(0x0008103E, b"LO", text(series_description)),
            _element(0x00100010, b"PN", text(name)),
            _element(0x00100020, b"LO", text(patient_id)),
            _element(0x00100030, b"DA", text(birth)),
            _element(0x00100040, b"CS", text(sex)),
            _element(0x0020000D, b"UI", text(study_uid)),
            _element(0x0020000E, b"UI", text(series_uid)),
            _element(0x00200010, b"SH", text(study_id)),
            _element(0x00200011, b"IS", text(series_number)),
            _element(0x00200013, b"IS", b"1"),
        )
    )
    return b"\0" * 128 + b"DICM" + meta + data


def series_rows(db: pw.Database) -> Iterator[tuple]:
    """Every series of the index with its study and patient attributes, in insertion order."""
    cursor = db.execute_sql(_SQL)
    try:
        yield from cursor
    finally:
        cursor.close()


@dataclass(frozen=True, slots=True)
class LoadSummary:
    instances: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.instances / self.seconds if self.seconds else 0.0


class LoadError(RuntimeError):
    """Orthanc refused an instance."""


def post_instances(
    http_port: int,
    rows: Iterator[tuple],
    *,
    connections: int = 4,
    progress_every: int = 20_000,
) -> LoadSummary:
    """POST one tiny instance per row to Orthanc's ``/instances`` over ``connections`` threads."""
    jobs: queue.Queue[bytes | None] = queue.Queue(maxsize=connections * 64)
    errors: list[str] = []
    sent = [0]
    lock = threading.Lock()

    def worker() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", http_port, timeout=120)
        try:
            while True:
                body = jobs.get()
                if body is None:
                    return
                if errors:
                    continue  # drain the queue so the producer never blocks
                try:
                    conn.request(
                        "POST",
                        "/instances",
                        body=body,
                        headers={"Content-Type": "application/dicom"},
                    )
                    rsp = conn.getresponse()
                    text = rsp.read()
                    if rsp.status != 200:
                        errors.append(f"HTTP {rsp.status}: {text[:200]!r}")
                except (OSError, http.client.HTTPException) as exc:
                    errors.append(f"{type(exc).__name__}: {exc}")
                with lock:
                    sent[0] += 1
        finally:
            conn.close()

    started = time.perf_counter()
    threads = [threading.Thread(target=worker, daemon=True) for _ in range(connections)]
    for t in threads:
        t.start()
    count = 0
    for row in rows:
        jobs.put(encode_instance(row))
        count += 1
        if progress_every and count % progress_every == 0:
            rate = count / (time.perf_counter() - started)
            print(f"  orthanc: {count} instances posted ({rate:.0f}/s)", flush=True)
        if errors:
            break
    for _ in threads:
        jobs.put(None)
    for t in threads:
        t.join()
    if errors:
        raise LoadError(f"Orthanc refused an instance: {errors[0]}")
    return LoadSummary(count, time.perf_counter() - started)
