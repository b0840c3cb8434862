"""Tab and Shift+Tab between fields, handled before the keys queued behind them.

Keys that arrive in one burst (a paste, a fast typist on a slow SSH link: ``smith<Tab>john``) are
all queued at once. With Textual's ordinary Tab binding, the focused field receives every key of
the burst before Tab bubbles up to move the focus, so ``john`` lands in the first field too. As a
priority binding, Tab moves the focus when the app reads it, and what follows goes to the next
field.
"""

from __future__ import annotations

from textual.binding import Binding, BindingType

FIELD_NAVIGATION: list[BindingType] = [
    Binding("tab", "app.focus_next", "Next field", show=False, priority=True),
    Binding("shift+tab", "app.focus_previous", "Previous field", show=False, priority=True),
]
