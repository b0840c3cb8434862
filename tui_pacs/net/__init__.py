"""DICOM networking with pynetdicom: presentation contexts, SCP handlers and SCU calls."""
