"""Frozen data for the snapshots of the remote, transfers and nodes screens.

Times are fixed and shown in UTC (:func:`utc_clock`), so a snapshot looks the same on every
machine; no peer is involved (query results are the demo archive's own studies, posted to the
remote screen as if a node had returned them).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest

from tui_pacs.config import Config
from tui_pacs.model import EchoResult, JobState, RemoteNode
from tui_pacs.services import jobs as job_service
from tui_pacs.services.nodes import NodeRegistry
from tui_pacs.store import jobs as store_jobs
from tui_pacs.store.db import use_database
from tui_pacs.store.models import Job

#: A config-file node and two database nodes.
HOSPITAL = RemoteNode(
    "hospital-pacs", "HOSP_PACS", "10.20.0.5", 104, description="Hospital PACS (read-only here)"
)
#: When everything in the frozen data happened (UTC; the console clock says 12:00).
T0 = datetime(2026, 11, 20, 11, 0, 0)


@pytest.fixture
def utc_clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Local time is UTC for the test (times from the index are shown in local time)."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def add_nodes(config: Config) -> None:
    """Two database nodes beside HOSPITAL, with echo results at fixed times."""
    registry = NodeRegistry(config)
    registry.add("orthanc-research", "ORTHANC", "127.0.0.1", 4242, retrieve_method="get")
    registry.add("ct-scanner-1", "CT1", "ct1.radiology.local", 11112, allowed_services="echo,store")
    registry.record_echo(EchoResult("orthanc-research", True, 3.2, 0, "0x0000 Success", T0))
    registry.record_echo(EchoResult("hospital-pacs", False, None, None, "association rejected", T0))


def add_jobs(config: Config) -> None:
    """Five jobs, one in each state, with fixed times and counts."""
    use_database(config.effective_database_url)
    node = RemoteNode("hospital-pacs", "HOSP_PACS", "10.20.0.5", 104)
    orthanc = RemoteNode("orthanc-research", "ORTHANC", "127.0.0.1", 4242, retrieve_method="get")

    def at(minutes: float) -> datetime:
        return T0 + timedelta(minutes=minutes)

    done = job_service.queue_retrieve(config, node, "1.2.826.0.1.3680043.8.498.1001")
    store_jobs.claim(done.id, "node-a")
    store_jobs.finish(
        done.id, "node-a", JobState.COMPLETED, last_status=0x0000, total=14, completed=14,
        failed=0, warning=0, remaining=0,
    )  # fmt: skip
    failed = job_service.queue_send(
        config, orthanc, study_instance_uids=["1.2.826.0.1.3680043.8.498.1002"]
    )
    store_jobs.claim(failed.id, "node-a")
    store_jobs.finish(
        failed.id, "node-a", JobState.FAILED, last_status=0xA700, total=12, completed=5,
        failed=7, warning=0, remaining=0,
        error="7 of 12 instance(s) not sent; last error: 0xA700 Refused: Out of Resources",
    )  # fmt: skip
    cancelled = job_service.queue_retrieve(config, node, "1.2.826.0.1.3680043.8.498.1003")
    job_service.cancel_job(config, cancelled.id)
    running = job_service.queue_retrieve(config, node, "1.2.826.0.1.3680043.8.498.1004")
    store_jobs.claim(running.id, "node-a")
    store_jobs.record_progress(
        running.id, "node-a", total=60, completed=27, failed=1, warning=0, remaining=32,
        last_status=0xFF00,
    )  # fmt: skip
    job_service.queue_retrieve(config, orthanc, "1.2.826.0.1.3680043.8.498.1005")
    times = {
        done.id: (at(0), at(0.5), at(1), at(1)),
        failed.id: (at(5), at(5), at(6), at(6)),
        cancelled.id: (at(10), None, at(11), at(11)),
        running.id: (at(20), at(20), None, at(20.5)),
    }
    for job_id, (created, started, finished, updated) in times.items():
        Job.update(
            created_at=created, started_at=started, finished_at=finished, updated_at=updated
        ).where(Job.id == job_id).execute()
    Job.update(created_at=at(21), updated_at=at(21)).where(Job.id.not_in(list(times))).execute()
