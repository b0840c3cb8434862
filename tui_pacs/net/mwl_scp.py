"""The Modality Worklist C-FIND SCP (PS3.4 K.6): its presentation context and request model.

pynetdicom lets one handler answer every C-FIND, so the handler of
:mod:`tui_pacs.net.find_scp` serves worklist queries too: it hands a request made under the
Modality Worklist Information Model - FIND SOP class to the ``mwl_find`` callable the services
layer gives it (checking the ``mwl`` permission instead of ``find``), and streams its matches the
same way, C-CANCEL and the result cap included.
"""

from __future__ import annotations

from pynetdicom.presentation import PresentationContext, build_context
from pynetdicom.sop_class import ModalityWorklistInformationFind  # type: ignore[attr-defined]

#: Modality Worklist Information Model - FIND (PS3.4 K.6.1).
MWL_SOP_CLASS = str(ModalityWorklistInformationFind)
#: The ``FindRequest.information_model`` of worklist queries.
MWL_MODEL = "modality-worklist"


def mwl_contexts() -> list[PresentationContext]:
    """Presentation contexts of the worklist SCP (the C-FIND transfer syntaxes)."""
    from tui_pacs.net.find_scp import FIND_TRANSFER_SYNTAXES

    return [build_context(MWL_SOP_CLASS, FIND_TRANSFER_SYNTAXES)]
