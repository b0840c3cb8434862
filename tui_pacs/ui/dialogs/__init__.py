"""Modal dialogs: the one error dialog and the confirmation of destructive actions."""
