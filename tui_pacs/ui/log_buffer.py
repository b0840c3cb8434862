"""Recent log records in memory for the log screen (the console never prints on the terminal)."""

from __future__ import annotations

import logging
import threading
from collections import deque

#: Log lines kept for the log screen.
MAX_LINES = 2000

_FORMAT = logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S")


class LogBuffer(logging.Handler):
    """A logging handler holding the last lines; readers ask for what came after a count."""

    def __init__(self, max_lines: int = MAX_LINES, level: int = logging.INFO) -> None:
        super().__init__(level)
        self.setFormatter(_FORMAT)
        self.max_lines = max_lines
        self._lines: deque[tuple[int, str]] = deque(maxlen=max_lines)
        self._total = 0
        self._guard = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:
            self.handleError(record)
            return
        with self._guard:
            self._lines.append((record.levelno, line))
            self._total += 1

    @property
    def total(self) -> int:
        """Lines logged since the buffer was made."""
        return self._total

    def since(self, seen: int) -> tuple[int, list[tuple[int, str]]]:
        """Lines logged after the first ``seen`` (those still kept), and the new total."""
        with self._guard:
            new = min(self._total - seen, len(self._lines))
            lines = list(self._lines)[len(self._lines) - new :] if new > 0 else []
            return self._total, lines
