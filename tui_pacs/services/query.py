"""Queries of the local archive: the node's C-FIND SCP and the console's study search.

Both run the same matching engine (:mod:`tui_pacs.store.query`). :class:`QueryService` builds the
engine's options from the ``[query]`` config section and what the SCU negotiated, and hands the
listener its C-FIND handlers; :meth:`QueryService.search_studies` answers the console with
:class:`~tui_pacs.model.StudySummary` values, a page at a time.
"""

from __future__ import annotations

import logging

import peewee as pw
from pydicom.dataset import Dataset
from pynetdicom.presentation import PresentationContext

from tui_pacs.config import Config
from tui_pacs.model import StudySummary
from tui_pacs.net.find_scp import (
    ExtendedNegotiationPolicy,
    FindCallable,
    FindRequest,
    find_contexts,
    find_handlers,
    quiet_identifier_logging,
)
from tui_pacs.net.scp import AuthorizeCallable, allow_all
from tui_pacs.store.db import thread_connection
from tui_pacs.store.models import Study
from tui_pacs.store.qr_keys import InformationModel
from tui_pacs.store.query import FindStream, QueryOptions, compile_query, find

log = logging.getLogger(__name__)

#: Keys a local study search returns, in :class:`StudySummary` order.
_SUMMARY_KEYS = (
    "StudyInstanceUID",
    "PatientID",
    "PatientName",
    "PatientBirthDate",
    "PatientSex",
    "StudyDate",
    "StudyTime",
    "AccessionNumber",
    "StudyDescription",
    "ReferringPhysicianName",
    "ModalitiesInStudy",
    "NumberOfStudyRelatedSeries",
    "NumberOfStudyRelatedInstances",
)


class QueryService:
    """C-FIND and local search over one index database.

    Args:
        config: The ``[query]`` settings and our AE title (the Retrieve AE Title returned).
        db: The index database (shared by every thread; each uses its own connection).
    """

    def __init__(self, config: Config, db: pw.Database) -> None:
        self.config = config
        self.db = db
        self.policy = ExtendedNegotiationPolicy(
            relational=config.query_relational,
            combined_datetime=config.query_combined_datetime != "never",
        )

    def options(self, *, relational: bool = False, combined_datetime: bool = False) -> QueryOptions:
        """Matching options from the config and what was negotiated."""
        cfg = self.config
        return QueryOptions(
            case_sensitive_names=cfg.query_case_sensitive_names,
            combined_datetime=(
                cfg.query_combined_datetime == "always"
                or (cfg.query_combined_datetime == "negotiated" and combined_datetime)
            ),
            relational=relational and cfg.query_relational,
            strict_hierarchy=cfg.query_strict_hierarchy,
            max_results=cfg.query_max_results,
            retrieve_ae_title=cfg.ae_title,
        )

    def find(self, request: FindRequest) -> FindStream:
        """The C-FIND handler's ``find`` callable: compile the identifier, stream its matches."""
        options = self.options(
            relational=request.relational, combined_datetime=request.combined_datetime
        )
        return find(
            request.identifier,
            InformationModel(request.information_model),
            options,
            self.db,
            implicit_vr=request.implicit_vr,
            little_endian=request.little_endian,
        )

    def handlers(
        self, authorize: AuthorizeCallable = allow_all, mwl_find: FindCallable | None = None
    ) -> list[tuple]:
        """Event bindings of the C-FIND SCP for the listener.

        Args:
            mwl_find: Answers Modality Worklist queries on the same handler (one C-FIND
                handler per listener).
        """
        quiet_identifier_logging(self.config.log_level == "DEBUG")
        return find_handlers(self.find, self.policy, authorize, mwl_find)

    def contexts(self) -> list[PresentationContext]:
        """Presentation contexts of the C-FIND SCP for the listener."""
        return find_contexts()

    def search_studies(
        self,
        *,
        patient_id: str = "",
        patient_name: str = "",
        accession_number: str = "",
        study_date: str = "",
        modality: str = "",
        study_description: str = "",
        limit: int = 100,
        offset: int = 0,
    ) -> list[StudySummary]:
        """Studies of the local archive, newest first, one page at a time.

        Every criterion uses C-FIND matching: ``*`` and ``?`` wildcards, ``YYYYMMDD-YYYYMMDD``
        date ranges (open ends allowed), names without regard to case (unless configured
        otherwise); ``modality`` matches any modality of the study, several separated by
        backslashes. Empty criteria match everything.

        Raises:
            QueryError: A criterion cannot be matched (a malformed date range ...).
        """
        identifier = Dataset()
        identifier.QueryRetrieveLevel = "STUDY"
        for keyword in _SUMMARY_KEYS:
            setattr(identifier, keyword, "")
        identifier.PatientID = patient_id
        identifier.PatientName = patient_name
        identifier.AccessionNumber = accession_number
        identifier.StudyDate = study_date
        identifier.ModalitiesInStudy = modality
        identifier.StudyDescription = study_description
        options = self.options(relational=True)
        compiled = compile_query(identifier, InformationModel.STUDY_ROOT, options, self.db)
        order = (Study.study_date.desc(), Study.study_time.desc(), Study.created_at.desc())
        with thread_connection(self.db):
            rows = list(compiled.dicts(self.db, limit=limit, offset=offset, order_by=order))
        return [_summary(row) for row in rows]


def _summary(row: dict[str, object]) -> StudySummary:
    def text(keyword: str) -> str:
        value = row.get(keyword)
        return "" if value is None else str(value)

    def number(keyword: str) -> int:
        value = row.get(keyword)
        return int(value) if isinstance(value, int) else 0

    modalities = text("ModalitiesInStudy")
    return StudySummary(
        study_instance_uid=text("StudyInstanceUID"),
        patient_id=text("PatientID"),
        patient_name=text("PatientName"),
        patient_birth_date=text("PatientBirthDate"),
        patient_sex=text("PatientSex"),
        study_date=text("StudyDate"),
        study_time=text("StudyTime"),
        accession_number=text("AccessionNumber"),
        study_description=text("StudyDescription"),
        referring_physician_name=text("ReferringPhysicianName"),
        modalities_in_study=tuple(m for m in modalities.split("\\") if m),
        number_of_study_related_series=number("NumberOfStudyRelatedSeries"),
        number_of_study_related_instances=number("NumberOfStudyRelatedInstances"),
    )
