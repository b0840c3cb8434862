"""Screens of the console: each owns one feature and calls the services for it."""
