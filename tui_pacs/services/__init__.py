"""The headless facade: one call per user action, wiring store, net and imaging together."""
