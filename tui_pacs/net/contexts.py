"""Presentation contexts: every storage SOP class pynetdicom knows, every transfer syntax pydicom knows."""

from __future__ import annotations

from pydicom.uid import AllTransferSyntaxes, UID
from pynetdicom import AllStoragePresentationContexts
from pynetdicom.presentation import PresentationContext, build_context
from pynetdicom.sop_class import Verification

#: Transfer syntaxes the SCP accepts, preferred first: what a sender proposes is stored as it comes.
ACCEPTED_TRANSFER_SYNTAXES: list[str] = [str(ts) for ts in AllTransferSyntaxes]

STORAGE_SOP_CLASSES: list[str] = [str(cx.abstract_syntax) for cx in AllStoragePresentationContexts]


def storage_scp_contexts() -> list[PresentationContext]:
    """Contexts for a C-STORE SCP: all storage SOP classes x all transfer syntaxes."""
    return [build_context(sop, ACCEPTED_TRANSFER_SYNTAXES) for sop in STORAGE_SOP_CLASSES]


def verification_context() -> PresentationContext:
    return build_context(Verification)


def is_storage_sop_class(uid: str) -> bool:
    return uid in _STORAGE_SET


def transfer_syntax_name(uid: str) -> str:
    return UID(uid).name


_STORAGE_SET = frozenset(STORAGE_SOP_CLASSES)
