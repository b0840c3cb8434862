"""Widgets of the console: they show what they are given and post messages upwards."""
