"""tui-pacs: a departmental PACS that lives in the terminal."""

from __future__ import annotations

__version__ = "0.1.0"

#: DICOM Implementation Class UID of tui-pacs (a UUID-derived 2.25 root, PS3.5 B.2).
IMPLEMENTATION_CLASS_UID = "2.25.196422306207421436355186624016423557461"
#: DICOM Implementation Version Name (at most 16 characters).
IMPLEMENTATION_VERSION_NAME = "TUI_PACS_010"
