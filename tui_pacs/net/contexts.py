"""Presentation contexts: every storage SOP class pynetdicom knows, every syntax pydicom knows."""

from __future__ import annotations

from pydicom.uid import UID, AllTransferSyntaxes, ExplicitVRLittleEndian
from pynetdicom import AllStoragePresentationContexts
from pynetdicom.presentation import PresentationContext, build_context
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

#: Transfer syntaxes the SCP accepts, preferred first: what a sender proposes is stored as it comes.
#: pynetdicom picks, per context, the first of these the requestor proposed, so Explicit VR Little
#: Endian leads (as in DCMTK and Orthanc): offered both, we keep the VRs rather than Implicit VR,
#: and a C-GET sends instances archived in Explicit VR (the common case) without conversion.
ACCEPTED_TRANSFER_SYNTAXES: list[str] = [
    str(ExplicitVRLittleEndian),
    *(str(ts) for ts in AllTransferSyntaxes if ts != ExplicitVRLittleEndian),
]

STORAGE_SOP_CLASSES: list[str] = [str(cx.abstract_syntax) for cx in AllStoragePresentationContexts]


def storage_scp_contexts() -> list[PresentationContext]:
    """Contexts for a C-STORE SCP: all storage SOP classes x all transfer syntaxes.

    They also accept SCP/SCU Role Selection (PS3.7 D.3.3.4), which C-GET needs: a C-GET SCU
    proposes the SCP role for the storage classes it wants to receive, and we act as their SCU
    on its association (PS3.4 C.4.3.3). With both roles allowed on our side, pynetdicom keeps
    the default roles when the requestor proposes no role item or only the SCU role (plain
    C-STORE to us), inverts them when it proposes only the SCP role (C-GET), and allows both
    when it proposes both.
    """
    contexts = [build_context(sop, ACCEPTED_TRANSFER_SYNTAXES) for sop in STORAGE_SOP_CLASSES]
    for cx in contexts:
        cx.scu_role = True
        cx.scp_role = True
    return contexts


class _AcceptorContext(PresentationContext):
    """A supported presentation context that is cheap to deep-copy.

    pynetdicom deep-copies every supported context for each association it accepts. With every
    storage SOP class times every transfer syntax that is some 6,600 UIDs, each rebuilt and
    re-validated: about 100 ms of CPU before an association is even answered, which dwarfs a
    C-ECHO or a selective C-FIND. Negotiation only reads the supported contexts, so a copy that
    owns its lists but shares the (immutable) UIDs is as safe.
    """

    def __deepcopy__(self, memo: dict[int, object]) -> _AcceptorContext:
        clone = _AcceptorContext.__new__(_AcceptorContext)
        clone.__dict__.update(
            {k: list(v) if isinstance(v, list) else v for k, v in self.__dict__.items()}
        )
        return clone


def cheap_to_copy(contexts: list[PresentationContext]) -> list[PresentationContext]:
    """The same contexts as :class:`_AcceptorContext` objects, for a listener (see there)."""
    out: list[PresentationContext] = []
    for cx in contexts:
        clone = _AcceptorContext.__new__(_AcceptorContext)
        clone.__dict__.update(cx.__dict__)
        out.append(clone)
    return out


def verification_context() -> PresentationContext:
    return build_context(Verification)


def is_storage_sop_class(uid: str) -> bool:
    return uid in _STORAGE_SET


def transfer_syntax_name(uid: str) -> str:
    return UID(uid).name


_STORAGE_SET = frozenset(STORAGE_SOP_CLASSES)
