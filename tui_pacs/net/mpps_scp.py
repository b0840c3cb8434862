"""The Modality Performed Procedure Step SCP (PS3.4 F.7): N-CREATE and N-SET.

The handlers are plain functions taking their dependencies, ``create`` and ``update`` callables
from the services layer, as extra arguments. They map the domain errors those raise to the
statuses of PS3.4 F.7.2: Duplicate SOP Instance (0x0111) for a second N-CREATE of an instance,
No such SOP Instance (0x0112) for an N-SET of an unknown one, Processing failure (0x0110, Error ID
0xA710 "Performed Procedure Step Object may no longer be updated") for an N-SET after COMPLETED
or DISCONTINUED, Missing attribute (0x0120) and Invalid attribute value (0x0106).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydicom.dataset import Dataset
from pynetdicom import evt
from pynetdicom.presentation import PresentationContext, build_context
from pynetdicom.sop_class import ModalityPerformedProcedureStep  # type: ignore[attr-defined]

from tui_pacs.errors import (
    DuplicateProcedureStepError,
    InvalidProcedureStepError,
    PacsError,
    ProcedureStepStateError,
    UnknownProcedureStepError,
)
from tui_pacs.model import DimseService
from tui_pacs.net import status as st
from tui_pacs.net.scp import AuthorizeCallable, allow_all, refuse_n_request

log = logging.getLogger(__name__)

#: Modality Performed Procedure Step SOP Class (PS3.4 F.7.1).
MPPS_SOP_CLASS = str(ModalityPerformedProcedureStep)


def mpps_contexts() -> list[PresentationContext]:
    """Presentation contexts of the MPPS SCP (the uncompressed transfer syntaxes)."""
    from tui_pacs.net.find_scp import FIND_TRANSFER_SYNTAXES

    return [build_context(MPPS_SOP_CLASS, FIND_TRANSFER_SYNTAXES)]


@dataclass(frozen=True, slots=True)
class ProcedureStepRequest:
    """One N-CREATE or N-SET of an MPPS instance.

    Attributes:
        sop_instance_uid: The Affected (N-CREATE) or Requested (N-SET) SOP Instance UID; empty
            when an N-CREATE left it to us.
        attributes: The Attribute List (N-CREATE) or Modification List (N-SET), decoded.
        calling_ae_title: Who sent it.
    """

    sop_instance_uid: str
    attributes: Dataset
    calling_ae_title: str


#: ``create(request)`` returns the SOP Instance UID of the new step (assigned when empty).
CreateCallable = Callable[[ProcedureStepRequest], str]
#: ``update(request)`` applies the modification list.
UpdateCallable = Callable[[ProcedureStepRequest], None]


def _error_status(exc: Exception, what: str, calling: str) -> Dataset:
    if isinstance(exc, DuplicateProcedureStepError):
        log.warning("MPPS %s from %s: %s", what, calling, exc)
        return st.failure(st.DUPLICATE_SOP_INSTANCE, str(exc))
    if isinstance(exc, UnknownProcedureStepError):
        log.warning("MPPS %s from %s: %s", what, calling, exc)
        return st.failure(st.NO_SUCH_SOP_INSTANCE, str(exc))
    if isinstance(exc, ProcedureStepStateError):
        log.warning("MPPS %s from %s refused: %s", what, calling, exc)
        return st.failure(
            st.PROCESSING_FAILURE, str(exc), error_id=st.ERROR_ID_MAY_NO_LONGER_BE_UPDATED
        )
    if isinstance(exc, InvalidProcedureStepError):
        log.warning("MPPS %s from %s refused: %s", what, calling, exc)
        status = st.MISSING_ATTRIBUTE if exc.missing else st.INVALID_ATTRIBUTE_VALUE
        return st.failure(status, str(exc))
    if isinstance(exc, PacsError):
        log.error("MPPS %s from %s failed: %s", what, calling, exc)
        return st.failure(st.PROCESSING_FAILURE, str(exc))
    log.error("MPPS %s from %s: unexpected failure", what, calling, exc_info=exc)
    return st.failure(st.PROCESSING_FAILURE, f"{what} failed: {exc}")


def _decoded(event: evt.Event, keyword: str, calling: str) -> Dataset | None:
    try:
        ds = getattr(event, keyword)
    except Exception as exc:
        log.warning("MPPS from %s: the data set cannot be decoded: %s", calling, exc)
        return None
    return ds if ds is not None else Dataset()


def handle_n_create(
    event: evt.Event, create: CreateCallable, authorize: AuthorizeCallable = allow_all
) -> tuple[int | Dataset, Dataset | None]:
    """EVT_N_CREATE: create an MPPS instance (PS3.4 F.7.2.1)."""
    calling = event.assoc.requestor.ae_title
    request: Any = event.request
    sop_class = str(request.AffectedSOPClassUID or "")
    refusal = refuse_n_request(
        event, sop_class, MPPS_SOP_CLASS, "N-CREATE", DimseService.MPPS, authorize
    )
    if refusal is not None:
        return refusal, None
    attributes = _decoded(event, "attribute_list", calling)
    if attributes is None:
        return st.failure(st.PROCESSING_FAILURE, "attribute list cannot be decoded"), None
    requested = str(request.AffectedSOPInstanceUID or "")
    try:
        uid = create(ProcedureStepRequest(requested, attributes, calling))
    except Exception as exc:
        return _error_status(exc, "N-CREATE", calling), None
    log.info("MPPS %s created by %s (IN PROGRESS)", uid, calling)
    if requested:
        return st.SUCCESS, None
    assigned = Dataset()
    assigned.AffectedSOPInstanceUID = uid  # pynetdicom moves it into the response command
    return st.SUCCESS, assigned


def handle_n_set(
    event: evt.Event, update: UpdateCallable, authorize: AuthorizeCallable = allow_all
) -> tuple[int | Dataset, Dataset | None]:
    """EVT_N_SET: update an MPPS instance still IN PROGRESS (PS3.4 F.7.2.2)."""
    calling = event.assoc.requestor.ae_title
    request: Any = event.request
    sop_class = str(request.RequestedSOPClassUID or "")
    refusal = refuse_n_request(
        event, sop_class, MPPS_SOP_CLASS, "N-SET", DimseService.MPPS, authorize
    )
    if refusal is not None:
        return refusal, None
    modifications = _decoded(event, "modification_list", calling)
    if modifications is None:
        return st.failure(st.PROCESSING_FAILURE, "modification list cannot be decoded"), None
    uid = str(request.RequestedSOPInstanceUID or "")
    try:
        update(ProcedureStepRequest(uid, modifications, calling))
    except Exception as exc:
        return _error_status(exc, "N-SET", calling), None
    status = modifications.get("PerformedProcedureStepStatus", "")
    log.info("MPPS %s updated by %s%s", uid, calling, f" ({status})" if status else "")
    return st.SUCCESS, None


def mpps_handlers(
    create: CreateCallable, update: UpdateCallable, authorize: AuthorizeCallable = allow_all
) -> list[tuple]:
    """Event bindings of the MPPS SCP for the listener's ``extra_handlers``."""
    return [
        (evt.EVT_N_CREATE, handle_n_create, [create, authorize]),
        (evt.EVT_N_SET, handle_n_set, [update, authorize]),
    ]
