"""C-MOVE and C-GET SCP handlers (PS3.4 C.4.2, C.4.3), Patient Root and Study Root.

The handlers follow pynetdicom's retrieve protocol: C-MOVE yields the destination's address
(and the contexts to propose to it), then the number of sub-operations, then one
``(0xFF00, dataset)`` per instance; C-GET yields the number, then the same pairs. pynetdicom
runs the C-STORE sub-operations, sends a pending response with the Remaining / Completed /
Failed / Warning counts after each one, and ends with Success, Warning 0xB000 (with the Failed
SOP Instance UID List) or Failure 0xA702 when every sub-operation failed. A C-CANCEL is checked
before each instance and answered with 0xFE00 and the counts so far.

What is sent: each file as archived. The sub-association proposes every instance's stored
transfer syntax, plus uncompressed fallbacks where we can convert (pydicom decodes the pixel
data only when the peer accepted no context in the stored syntax and a decoder exists).
pynetdicom's retrieve SCPs take a decoded ``Dataset``, not a file path, so
``_config.STORE_SEND_CHUNKED_DATASET`` cannot apply here. ``dcmread`` keeps every element's raw
value and pydicom writes it back unchanged in the same transfer syntax, so the data set arrives
byte for byte as archived, except that retired group length elements (gggg,0000) are dropped,
an empty element with an explicit UN VR gets its dictionary VR, and a deflated data set is
deflated anew; the pixel data is never decoded for that.

Failures before any sub-operation: pynetdicom sends a C-MOVE status other than 0xA801 only
after it has opened the sub-association, so a refused (0x0124) or invalid (0xA900) C-MOVE to a
known destination opens a Verification-only association to it, sends nothing and closes it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.pixels import get_decoder
from pydicom.uid import UID, ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import evt
from pynetdicom.presentation import PresentationContext, build_context
from pynetdicom.sop_class import (  # type: ignore[attr-defined]  # generated at import
    PatientRootQueryRetrieveInformationModelGet,
    PatientRootQueryRetrieveInformationModelMove,
    StudyRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelMove,
)

from tui_pacs.errors import RetrieveIdentifierError
from tui_pacs.model import ArchivedInstance, DimseService, InformationModel, RemoteNode
from tui_pacs.net import status as st
from tui_pacs.net.contexts import verification_context
from tui_pacs.net.scp import NODELAY_HANDLER, AuthorizeCallable, allow_all, refused

log = logging.getLogger(__name__)

#: ``locate(identifier, model)``: the archived instances a retrieve identifier names.
LocateCallable = Callable[[Dataset, InformationModel], Sequence[ArchivedInstance]]
#: ``destination(ae_title)``: the registry node a C-MOVE destination AE title names, or None.
DestinationCallable = Callable[[str], RemoteNode | None]

MOVE_MODELS: dict[str, InformationModel] = {
    str(PatientRootQueryRetrieveInformationModelMove): InformationModel.PATIENT_ROOT,
    str(StudyRootQueryRetrieveInformationModelMove): InformationModel.STUDY_ROOT,
}
GET_MODELS: dict[str, InformationModel] = {
    str(PatientRootQueryRetrieveInformationModelGet): InformationModel.PATIENT_ROOT,
    str(StudyRootQueryRetrieveInformationModelGet): InformationModel.STUDY_ROOT,
}
#: A requestor proposes at most 128 presentation contexts (PS3.8 9.3.2.2, odd IDs 1-255).
MAX_CONTEXTS = 128
_UNCOMPRESSED_LE = (str(ExplicitVRLittleEndian), str(ImplicitVRLittleEndian))


def retrieve_contexts() -> list[PresentationContext]:
    """The C-MOVE and C-GET SOP classes we serve, with pynetdicom's default transfer syntaxes."""
    return [build_context(uid) for uid in (*MOVE_MODELS, *GET_MODELS)]


def retrieve_handlers(
    locate: LocateCallable,
    destination: DestinationCallable,
    authorize: AuthorizeCallable = allow_all,
) -> list[tuple]:
    """Event bindings for the listener's ``extra_handlers``."""
    return [
        (evt.EVT_C_MOVE, handle_move, [locate, destination, authorize]),
        (evt.EVT_C_GET, handle_get, [locate, authorize]),
    ]


def can_decode(transfer_syntax: str) -> bool:
    """True when pydicom has a working decoder for this (compressed) transfer syntax."""
    try:
        return bool(get_decoder(UID(transfer_syntax)).is_available)
    except (NotImplementedError, ValueError):
        return False


def _syntaxes_for(transfer_syntax: str) -> list[list[str]]:
    """Transfer syntax lists to propose for an instance stored in ``transfer_syntax``.

    One context per list: the acceptor picks one syntax per context, so the stored syntax gets a
    context of its own whenever the fallback would need a conversion pynetdicom cannot make by
    itself (compressed pixel data, big endian, deflate).
    """
    ts = UID(transfer_syntax)
    if str(ts) in _UNCOMPRESSED_LE:
        # pynetdicom converts between these two on the fly.
        return [[str(ts), *[t for t in _UNCOMPRESSED_LE if t != str(ts)]]]
    lists = [[str(ts)]]
    if ts.is_deflated or (ts.is_compressed and can_decode(str(ts))):
        lists.append(list(_UNCOMPRESSED_LE))
    return lists


def sub_operation_contexts(instances: Sequence[ArchivedInstance]) -> list[PresentationContext]:
    """Presentation contexts to propose to a C-MOVE destination for ``instances``.

    At most :data:`MAX_CONTEXTS`; instances whose contexts do not fit fail their sub-operation.
    """
    wanted: dict[tuple[str, tuple[str, ...]], None] = {}
    for item in instances:
        for syntaxes in _syntaxes_for(item.transfer_syntax_uid):
            wanted[(item.sop_class_uid, tuple(syntaxes))] = None
    if len(wanted) > MAX_CONTEXTS:
        log.warning(
            "retrieve needs %d presentation contexts; proposing the first %d, instances of the "
            "others will fail", len(wanted), MAX_CONTEXTS,
        )
    return [build_context(sop, list(syntaxes)) for sop, syntaxes in list(wanted)[:MAX_CONTEXTS]]


def _unsendable(item: ArchivedInstance) -> Dataset:
    """A data set pynetdicom refuses to send, so the sub-operation fails with this UID listed.

    ``send_c_store`` raises before anything goes on the wire (no File Meta Information, hence
    no transfer syntax); the retrieve SCP counts that as a failed sub-operation and adds the
    SOP Instance UID to the Failed SOP Instance UID List.
    """
    ds = Dataset()
    ds.SOPClassUID = item.sop_class_uid
    ds.SOPInstanceUID = item.sop_instance_uid
    return ds


def load_for_peer(item: ArchivedInstance, accepted: Sequence[PresentationContext]) -> Dataset:
    """Read an archived instance, ready to go out over one of the ``accepted`` contexts.

    Sent as stored when the peer accepted its transfer syntax (or one pynetdicom converts to);
    decoded to Explicit VR Little Endian when the peer accepted only uncompressed syntaxes for
    its SOP class and pydicom can decode it. Otherwise pynetdicom fails the sub-operation.
    """
    try:
        ds = dcmread(item.path)
    except Exception as exc:
        log.error("retrieve: cannot read %s (%s): %s", item.sop_instance_uid, item.path, exc)
        return _unsendable(item)
    stored = UID(str(getattr(ds.file_meta, "TransferSyntaxUID", "") or item.transfer_syntax_uid))
    syntaxes = {
        str(cx.transfer_syntax[0])
        for cx in accepted
        if cx.abstract_syntax == item.sop_class_uid and cx.as_scu
    }
    if not syntaxes or str(stored) in syntaxes or not stored.is_compressed:
        return ds
    if syntaxes.intersection(_UNCOMPRESSED_LE) and can_decode(str(stored)):
        try:
            ds.decompress(generate_instance_uid=False)
        except Exception as exc:
            log.error("retrieve: cannot decode %s (%s): %s", item.sop_instance_uid, stored.name,
                      exc)
            return _unsendable(item)
        log.info("retrieve: %s decoded from %s (peer accepts no compressed syntax for it)",
                 item.sop_instance_uid, stored.name)
    return ds


class _SubAssociation:
    """Catches the C-MOVE sub-association when it is accepted, to learn what the peer took."""

    def __init__(self) -> None:
        self.accepted: list[PresentationContext] = []

    def on_accepted(self, event: evt.Event) -> None:
        self.accepted = list(event.assoc.accepted_contexts)


def _model(event: evt.Event, models: dict[str, InformationModel]) -> InformationModel:
    return models[str(event.request.AffectedSOPClassUID)]


def _locate(
    event: evt.Event, locate: LocateCallable, model: InformationModel, what: str
) -> tuple[Sequence[ArchivedInstance] | None, int]:
    """Run ``locate`` on the request's identifier: (instances, 0) or (None, failure status)."""
    calling = event.assoc.requestor.ae_title
    try:
        return locate(event.identifier, model), st.SUCCESS
    except RetrieveIdentifierError as exc:
        log.warning("%s from %s: invalid identifier: %s", what, calling, exc)
        return None, st.IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS
    except Exception:
        log.exception("%s from %s: cannot list the instances", what, calling)
        return None, st.OUT_OF_RESOURCES_UNABLE_TO_CALCULATE_MATCHES


def _pending(
    event: evt.Event,
    instances: Sequence[ArchivedInstance],
    accepted: Callable[[], Sequence[PresentationContext]],
    what: str,
) -> Iterator[tuple[int, Dataset | None]]:
    for index, item in enumerate(instances):
        if event.is_cancelled:
            log.info("%s from %s cancelled after %d of %d sub-operations", what,
                     event.assoc.requestor.ae_title, index, len(instances))
            yield st.CANCEL, None
            return
        yield st.PENDING, load_for_peer(item, accepted())


def handle_move(
    event: evt.Event,
    locate: LocateCallable,
    destination: DestinationCallable,
    authorize: AuthorizeCallable = allow_all,
) -> Iterator[Any]:
    """EVT_C_MOVE: send what the identifier names to the registry node called Move Destination."""
    calling = event.assoc.requestor.ae_title
    dest_title = str(event.move_destination or "").strip()
    node = destination(dest_title)
    if node is None:
        log.warning("C-MOVE from %s: move destination %r is not in the node registry", calling,
                    dest_title)
        yield None, None  # pynetdicom answers 0xA801 Move Destination unknown
        return
    failure = None
    if refused(authorize, event, DimseService.MOVE):
        failure = st.REFUSED_NOT_AUTHORIZED
    else:
        instances, failure = _locate(event, locate, _model(event, MOVE_MODELS), "C-MOVE")
    if failure:
        yield node.host, node.port, {
            "contexts": [verification_context()],
            "evt_handlers": [NODELAY_HANDLER],
        }
        yield 1
        yield failure, None
        return
    assert instances is not None
    log.info("C-MOVE from %s to %s (%s:%d): %d instance(s)", calling, dest_title, node.host,
             node.port, len(instances))
    sub = _SubAssociation()
    yield node.host, node.port, {
        "contexts": sub_operation_contexts(instances) or [verification_context()],
        # TCP_NODELAY: without it the C-STOREs wait on delayed acknowledgements.
        "evt_handlers": [(evt.EVT_ACCEPTED, sub.on_accepted), NODELAY_HANDLER],
    }
    yield len(instances)
    yield from _pending(event, instances, lambda: sub.accepted, "C-MOVE")


def handle_get(
    event: evt.Event, locate: LocateCallable, authorize: AuthorizeCallable = allow_all
) -> Iterator[Any]:
    """EVT_C_GET: send what the identifier names back over the requestor's own association."""
    if refused(authorize, event, DimseService.GET):
        failure = st.REFUSED_NOT_AUTHORIZED
    else:
        instances, failure = _locate(event, locate, _model(event, GET_MODELS), "C-GET")
    if failure:
        # pynetdicom answers a count of 0 with Success; with 1 it takes our failure status.
        yield 1
        yield failure, None
        return
    assert instances is not None
    log.info("C-GET from %s: %d instance(s)", event.assoc.requestor.ae_title, len(instances))
    yield len(instances)
    accepted = list(event.assoc.accepted_contexts)
    yield from _pending(event, instances, lambda: accepted, "C-GET")
