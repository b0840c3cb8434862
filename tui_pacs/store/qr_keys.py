"""The keys of the Query/Retrieve information models: the level and the column of each.

PS3.4 C.6.1.1 (Patient Root) and C.6.2.1 (Study Root) list the unique, required and optional keys
of each level. Keys the index keeps map to a column of the level's table; keys it does not keep are
listed too (``column=None``) so the hierarchy check knows their level: they are returned empty
(zero length), which PS3.4 C.2.2.1.3 allows for optional keys.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import peewee as pw

from tui_pacs.store.models import Instance, Patient, Series, Study
from tui_pacs.store.retrieve import InformationModel

__all__ = ["InformationModel", "Key", "Level"]


class Level(enum.IntEnum):
    """Query/Retrieve Level (0008,0052), ordered from the top of the hierarchy down."""

    PATIENT = 0
    STUDY = 1
    SERIES = 2
    IMAGE = 3


#: The levels of each information model, top first (PS3.4 C.6.1, C.6.2).
MODEL_LEVELS: dict[InformationModel, tuple[Level, ...]] = {
    InformationModel.PATIENT_ROOT: (Level.PATIENT, Level.STUDY, Level.SERIES, Level.IMAGE),
    InformationModel.STUDY_ROOT: (Level.STUDY, Level.SERIES, Level.IMAGE),
}


#: The table of each level.
TABLES: dict[Level, type[pw.Model]] = {
    Level.PATIENT: Patient,
    Level.STUDY: Study,
    Level.SERIES: Series,
    Level.IMAGE: Instance,
}

#: The unique key of each level (PS3.4 C.6.1.1.2-5, C.6.2.1.2-4).
UNIQUE_KEYS: dict[Level, int] = {
    Level.PATIENT: 0x00100020,  # PatientID
    Level.STUDY: 0x0020000D,  # StudyInstanceUID
    Level.SERIES: 0x0020000E,  # SeriesInstanceUID
    Level.IMAGE: 0x00080018,  # SOPInstanceUID
}


@dataclass(frozen=True, slots=True)
class Key:
    """One key attribute of the information models.

    Attributes:
        tag: The attribute tag.
        keyword: Its DICOM keyword.
        vr: Its value representation (decides the matching rules that apply).
        level: The level it belongs to (Patient Root levels; in Study Root the patient keys
            are study keys, which the hierarchy rules treat the same way).
        column: The column of the level's table holding it, or None when it is not indexed.
        norm: The case-folded copy of a person name column, for case-insensitive matching.
        multi: The column holds several values joined by backslashes (ModalitiesInStudy ...).
    """

    tag: int
    keyword: str
    vr: str
    level: Level
    column: str | None = None
    norm: str | None = None
    multi: bool = False

    @property
    def field(self) -> pw.Field | None:
        """The Peewee field holding the value, if indexed."""
        return getattr(TABLES[self.level], self.column) if self.column else None

    @property
    def norm_field(self) -> pw.Field | None:
        """The Peewee field holding the case-folded value, if any."""
        return getattr(TABLES[self.level], self.norm) if self.norm else None


def _k(
    tag: int,
    keyword: str,
    vr: str,
    level: Level,
    column: str | None = None,
    norm: str | None = None,
    multi: bool = False,
) -> Key:
    return Key(tag, keyword, vr, level, column, norm, multi)


P, ST, SE, IM = Level.PATIENT, Level.STUDY, Level.SERIES, Level.IMAGE

_ALL_KEYS: tuple[Key, ...] = (
    # Patient level (PS3.4 C.6.1.1.2)
    _k(0x00100010, "PatientName", "PN", P, "patient_name", "patient_name_norm"),
    _k(0x00100020, "PatientID", "LO", P, "patient_id"),
    _k(0x00100021, "IssuerOfPatientID", "LO", P, "issuer_of_patient_id"),
    _k(0x00100030, "PatientBirthDate", "DA", P, "patient_birth_date"),
    _k(0x00100040, "PatientSex", "CS", P, "patient_sex"),
    _k(0x00201200, "NumberOfPatientRelatedStudies", "IS", P, "number_of_patient_related_studies"),
    _k(0x00201202, "NumberOfPatientRelatedSeries", "IS", P, "number_of_patient_related_series"),
    _k(
        0x00201204,
        "NumberOfPatientRelatedInstances",
        "IS",
        P,
        "number_of_patient_related_instances",
    ),
    _k(0x00100022, "TypeOfPatientID", "CS", P),
    _k(0x00100024, "IssuerOfPatientIDQualifiersSequence", "SQ", P),
    _k(0x00100032, "PatientBirthTime", "TM", P),
    _k(0x00101000, "OtherPatientIDs", "LO", P),
    _k(0x00101001, "OtherPatientNames", "PN", P),
    _k(0x00101002, "OtherPatientIDsSequence", "SQ", P),
    _k(0x00102160, "EthnicGroup", "SH", P),
    _k(0x00104000, "PatientComments", "LT", P),
    _k(0x00102201, "PatientSpeciesDescription", "LO", P),
    _k(0x00102292, "PatientBreedDescription", "LO", P),
    _k(0x00102297, "ResponsiblePerson", "PN", P),
    _k(0x00102299, "ResponsibleOrganization", "LO", P),
    # Study level (PS3.4 C.6.1.1.3)
    _k(0x00080020, "StudyDate", "DA", ST, "study_date"),
    _k(0x00080030, "StudyTime", "TM", ST, "study_time"),
    _k(0x00080050, "AccessionNumber", "SH", ST, "accession_number"),
    _k(0x00200010, "StudyID", "SH", ST, "study_id"),
    _k(0x0020000D, "StudyInstanceUID", "UI", ST, "study_instance_uid"),
    _k(
        0x00080090,
        "ReferringPhysicianName",
        "PN",
        ST,
        "referring_physician_name",
        "referring_physician_name_norm",
    ),
    _k(0x00081030, "StudyDescription", "LO", ST, "study_description"),
    _k(0x00101010, "PatientAge", "AS", ST, "patient_age"),
    _k(0x00080080, "InstitutionName", "LO", ST, "institution_name"),
    _k(0x00080061, "ModalitiesInStudy", "CS", ST, "modalities_in_study", multi=True),
    _k(0x00080062, "SOPClassesInStudy", "UI", ST, "sop_classes_in_study", multi=True),
    _k(0x00201206, "NumberOfStudyRelatedSeries", "IS", ST, "number_of_study_related_series"),
    _k(
        0x00201208,
        "NumberOfStudyRelatedInstances",
        "IS",
        ST,
        "number_of_study_related_instances",
    ),
    _k(0x00080051, "IssuerOfAccessionNumberSequence", "SQ", ST),
    _k(0x00080063, "AnatomicRegionsInStudyCodeSequence", "SQ", ST),
    _k(0x00081032, "ProcedureCodeSequence", "SQ", ST),
    _k(0x00081048, "PhysiciansOfRecord", "PN", ST),
    _k(0x00081060, "NameOfPhysiciansReadingStudy", "PN", ST),
    _k(0x00081080, "AdmittingDiagnosesDescription", "LO", ST),
    _k(0x00081110, "ReferencedStudySequence", "SQ", ST),
    _k(0x00081120, "ReferencedPatientSequence", "SQ", ST),
    _k(0x00101020, "PatientSize", "DS", ST),
    _k(0x00101030, "PatientWeight", "DS", ST),
    _k(0x00102180, "Occupation", "SH", ST),
    _k(0x001021B0, "AdditionalPatientHistory", "LT", ST),
    _k(0x00201070, "OtherStudyNumbers", "IS", ST),
    _k(0x00324000, "StudyComments", "LT", ST),
    # Series level (PS3.4 C.6.1.1.4)
    _k(0x00080060, "Modality", "CS", SE, "modality"),
    _k(0x00200011, "SeriesNumber", "IS", SE, "series_number"),
    _k(0x0020000E, "SeriesInstanceUID", "UI", SE, "series_instance_uid"),
    _k(0x0008103E, "SeriesDescription", "LO", SE, "series_description"),
    _k(0x00180015, "BodyPartExamined", "CS", SE, "body_part_examined"),
    _k(0x00080021, "SeriesDate", "DA", SE, "series_date"),
    _k(0x00080031, "SeriesTime", "TM", SE, "series_time"),
    _k(
        0x00400244,
        "PerformedProcedureStepStartDate",
        "DA",
        SE,
        "performed_procedure_step_start_date",
    ),
    _k(
        0x00400245,
        "PerformedProcedureStepStartTime",
        "TM",
        SE,
        "performed_procedure_step_start_time",
    ),
    _k(0x00181030, "ProtocolName", "LO", SE, "protocol_name"),
    _k(0x00081010, "StationName", "SH", SE, "station_name"),
    _k(
        0x00201209,
        "NumberOfSeriesRelatedInstances",
        "IS",
        SE,
        "number_of_series_related_instances",
    ),
    _k(0x00080070, "Manufacturer", "LO", SE),
    _k(0x00081040, "InstitutionalDepartmentName", "LO", SE),
    _k(0x00081050, "PerformingPhysicianName", "PN", SE),
    _k(0x00081070, "OperatorsName", "PN", SE),
    _k(0x00081090, "ManufacturerModelName", "LO", SE),
    _k(0x00081111, "ReferencedPerformedProcedureStepSequence", "SQ", SE),
    _k(0x00200060, "Laterality", "CS", SE),
    _k(0x00400009, "ScheduledProcedureStepID", "SH", SE),
    _k(0x00400253, "PerformedProcedureStepID", "SH", SE),
    _k(0x00400275, "RequestAttributesSequence", "SQ", SE),
    _k(0x00401001, "RequestedProcedureID", "SH", SE),
    # Composite object instance level (PS3.4 C.6.1.1.5): any attribute of the instance may be
    # a key here; these are the ones the index keeps.
    _k(0x00080018, "SOPInstanceUID", "UI", IM, "sop_instance_uid"),
    _k(0x00080016, "SOPClassUID", "UI", IM, "sop_class_uid"),
    _k(0x00200013, "InstanceNumber", "IS", IM, "instance_number"),
    _k(0x00080023, "ContentDate", "DA", IM, "content_date"),
    _k(0x00080033, "ContentTime", "TM", IM, "content_time"),
    _k(0x00280010, "Rows", "US", IM, "rows"),
    _k(0x00280011, "Columns", "US", IM, "columns"),
    _k(0x00280008, "NumberOfFrames", "IS", IM, "number_of_frames"),
    _k(0x00083002, "AvailableTransferSyntaxUID", "UI", IM, "transfer_syntax_uid"),
)

#: Every key of the information models, by tag.
KEYS: dict[int, Key] = {key.tag: key for key in _ALL_KEYS}
#: Every key, by keyword.
KEYS_BY_KEYWORD: dict[str, Key] = {key.keyword: key for key in _ALL_KEYS}

#: Pairs of (date, time) keys that combined date-time matching joins (PS3.4 C.2.2.2.5.1).
DATE_TIME_PAIRS: tuple[tuple[int, int], ...] = (
    (0x00080020, 0x00080030),  # StudyDate, StudyTime
    (0x00080021, 0x00080031),  # SeriesDate, SeriesTime
    (0x00080023, 0x00080033),  # ContentDate, ContentTime
    (0x00400244, 0x00400245),  # PerformedProcedureStepStart{Date,Time}
)

SPECIFIC_CHARACTER_SET = 0x00080005
QUERY_RETRIEVE_LEVEL = 0x00080052
QUERY_RETRIEVE_VIEW = 0x00080053
RETRIEVE_AE_TITLE = 0x00080054
INSTANCE_AVAILABILITY = 0x00080056
TIMEZONE_OFFSET_FROM_UTC = 0x00080201
RETRIEVE_URL = 0x00081190
STORAGE_MEDIA_FILE_SET_ID = 0x00880130
STORAGE_MEDIA_FILE_SET_UID = 0x00880140

#: Attributes that belong to no level: they describe the query or the response itself.
GLOBAL_TAGS: frozenset[int] = frozenset(
    {
        SPECIFIC_CHARACTER_SET,
        QUERY_RETRIEVE_LEVEL,
        QUERY_RETRIEVE_VIEW,
        RETRIEVE_AE_TITLE,
        INSTANCE_AVAILABILITY,
        TIMEZONE_OFFSET_FROM_UTC,
        RETRIEVE_URL,
        STORAGE_MEDIA_FILE_SET_ID,
        STORAGE_MEDIA_FILE_SET_UID,
    }
)
