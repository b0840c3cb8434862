"""Storage commitment reports kept in the index: recorded before the N-ACTION response, retried
on a new association while the requester is down, recorded as failed (and listed by
``tui-pacs commitment``) after the last attempt, retried by hand, and never sent twice once
delivered, even across a node restart. A pynetdicom SCU is the requester."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import pytest
from click.testing import CliRunner
from pydicom.uid import CTImageStorage
from pynetdicom import AE, evt
from pynetdicom.sop_class import StorageCommitmentPushModel  # type: ignore[attr-defined]

from tests.interop.test_commitment_scp import (
    REQUESTER,
    WELL_KNOWN,
    Reports,
    _associate,
    _refs,
    _request,
)
from tests.peers import free_port
from tests.store.synthetic import new_uid
from tests.worklist_data import archive_study
from tui_pacs.cli import main
from tui_pacs.config import Config
from tui_pacs.model import CommitmentState, RemoteNode
from tui_pacs.services.node import Node
from tui_pacs.store import commitment_queue as queue
from tui_pacs.store.db import thread_connection

pytestmark = pytest.mark.interop

PENDING, DELIVERED, FAILED = (
    CommitmentState.PENDING,
    CommitmentState.DELIVERED,
    CommitmentState.FAILED,
)


@dataclass
class Requester:
    """The requester's own SCP on a fixed port; down until :meth:`up`."""

    port: int = field(default_factory=free_port)
    reports: Reports = field(default_factory=Reports)
    server: Any = None

    def up(self) -> None:
        ae = AE(ae_title=REQUESTER)
        ae.add_supported_context(StorageCommitmentPushModel, scu_role=True, scp_role=True)
        self.server = ae.start_server(
            ("127.0.0.1", self.port),
            block=False,
            evt_handlers=[(evt.EVT_N_EVENT_REPORT, self.reports.handler, ["new-association"])],
        )

    def down(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server = None


@pytest.fixture
def requester() -> Iterator[Requester]:
    """A requester whose SCP is not listening yet."""
    req = Requester()
    try:
        yield req
    finally:
        req.down()


def _node(config: Config, requester: Requester, **commitment: Any) -> Node:
    node = Node(
        replace(config, nodes=(RemoteNode("requester", REQUESTER, "127.0.0.1", requester.port),))
    )
    for name, value in commitment.items():
        setattr(node.commitment, name, value)
    node.start()
    return node


def _send(node: Node, items: list[tuple[str, str]]) -> str:
    """N-ACTION, then release (the report must come on a new association); the request is in
    the table as soon as the success response is back. Returns the Transaction UID."""
    assoc = _associate(node)
    request = _request(items)
    try:
        status, _ = assoc.send_n_action(request, 1, StorageCommitmentPushModel, WELL_KNOWN)
        assert int(status.Status) == 0x0000
        with thread_connection(node.ingestor.db):
            recorded = queue.find(str(request.TransactionUID))
        assert len(recorded) == 1 and recorded[0].calling_ae_title == REQUESTER
    finally:
        assoc.release()
    return str(request.TransactionUID)


def test_requester_down_then_up_gets_the_report(config: Config, requester: Requester) -> None:
    """The first attempt finds nobody listening: the request stays pending with the reason;
    once the requester is up a retry delivers the report on a new association, with the
    committed and failed (0x0112) lists."""
    node = _node(config, requester, retry_interval=0.1, max_attempts=50)
    try:
        made = archive_study(node.ingestor, study_uid=new_uid(), per_series=2)
        unknown = (str(CTImageStorage), new_uid())
        tx = _send(node, [*made, unknown])
        assert node.commitment.wait_idle()
        with thread_connection(node.ingestor.db):
            first = queue.find(tx)[-1]
        assert first.state == PENDING and first.attempts >= 1
        assert "did not take the report" in first.last_error
        assert first.report_via == "new-association"
        requester.up()
        event_type, info, where = requester.reports.wait()
        done = node.commitment.wait_for(tx, {DELIVERED, FAILED})
    finally:
        node.stop()
    assert (event_type, where) == (2, "new-association")
    assert info.TransactionUID == tx
    assert _refs(info.ReferencedSOPSequence) == sorted((c, u, None) for c, u in made)
    assert _refs(info.FailedSOPSequence) == [(*unknown, 0x0112)]
    assert done is not None and done.state == DELIVERED and done.attempts >= 2
    assert (done.committed, done.failed, done.last_error) == (2, 1, "")
    assert len(requester.reports.received) == 1


def test_exhausted_retries_are_listed_then_retried(config: Config, requester: Requester) -> None:
    """After the last attempt the request is failed with its reason, and `tui-pacs
    commitment` lists it; `tui-pacs commitment retry` sends it once the requester is up."""
    node = _node(config, requester, retry_interval=0.01, max_attempts=3)
    cli = CliRunner()
    try:
        made = archive_study(node.ingestor, study_uid=new_uid())
        tx = _send(node, made)
        failed = node.commitment.wait_for(tx, {DELIVERED, FAILED})
        assert failed is not None and failed.state == FAILED
        assert failed.attempts == 3 and failed.finished_at is not None
        assert f"{REQUESTER}@127.0.0.1:{requester.port} did not take" in failed.last_error

        listed = cli.invoke(main, ["commitment"], obj={"config": config})
        assert listed.exit_code == 0, listed.output
        line = next(x for x in listed.output.splitlines() if x.strip().startswith(str(failed.id)))
        assert "failed" in line and REQUESTER in line and "did not take the report" in line
        as_json = json.loads(
            cli.invoke(main, ["commitment", "--json"], obj={"config": config}).output
        )
        assert [(r["transaction_uid"], r["state"], r["attempts"]) for r in as_json] == [
            (tx, "failed", 3)
        ]
        shown = cli.invoke(main, ["commitment", "show", tx], obj={"config": config})
        assert shown.exit_code == 0 and "did not take the report" in shown.output

        requester.up()
        again = cli.invoke(main, ["commitment", "retry", str(failed.id)], obj={"config": config})
        assert again.exit_code == 0, again.output
        _type, info, where = requester.reports.wait()
        done = node.commitment.wait_for(tx, {DELIVERED})
        refused = cli.invoke(main, ["commitment", "retry", str(failed.id)], obj={"config": config})
    finally:
        node.stop()
    assert where == "new-association" and info.TransactionUID == tx
    assert done is not None and done.attempts == 1
    assert refused.exit_code == 1 and "only failed ones" in refused.output
    empty = cli.invoke(main, ["commitment"], obj={"config": config})
    assert "no storage commitment requests pending or failed" in empty.output


def test_delivered_report_is_not_sent_again_after_restart(
    config: Config, requester: Requester
) -> None:
    """A report delivered on the requester's own association is recorded as such; a node
    started afterwards on the same index does not send it again (its next report, for a new
    request, is the only one the requester gets)."""
    requester.up()
    first = _node(config, requester)
    own = Reports()
    try:
        made = archive_study(first.ingestor, study_uid=new_uid())
        assoc = _associate(first, own)
        try:
            request = _request(made)
            status, _ = assoc.send_n_action(request, 1, StorageCommitmentPushModel, WELL_KNOWN)
            assert int(status.Status) == 0
            _t, info, where = own.wait()
        finally:
            assoc.release()
        tx1 = str(request.TransactionUID)
        done = first.commitment.wait_for(tx1, {DELIVERED, FAILED})
        assert done is not None and done.state == DELIVERED
        assert (done.report_via, done.attempts) == ("same-association", 1)
    finally:
        first.stop()
    second = _node(config, requester)
    try:
        tx2 = _send(second, made)
        _t, info2, where2 = requester.reports.wait()
        assert second.commitment.wait_for(tx2, {DELIVERED}) is not None
        with thread_connection(second.ingestor.db):
            again = queue.find(tx1)
    finally:
        second.stop()
    assert where == "same-association" and info.TransactionUID == tx1
    assert [r[1].TransactionUID for r in requester.reports.received] == [tx2]
    assert where2 == "new-association" and info2.TransactionUID == tx2
    assert len(own.received) == 1
    assert [(r.state, r.attempts) for r in again] == [(DELIVERED, 1)]
