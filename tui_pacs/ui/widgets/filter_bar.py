"""The study filter bar: patient name, ID, accession, study date preset or range, modality."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.message import Message
from textual.timer import Timer
from textual.widgets import Input, Label, Select

from tui_pacs.model import StudyFilter
from tui_pacs.services.browse import date_range, parse_date
from tui_pacs.ui.field_keys import FIELD_NAVIGATION

DATE_PRESETS: list[tuple[str, str]] = [
    ("Any date", "any"),
    ("Today", "today"),
    ("Yesterday", "yesterday"),
    ("Last 7 days", "last-7-days"),
    ("Last 30 days", "last-30-days"),
    ("Range…", "custom"),
]
MODALITIES = ("CT", "MR", "CR", "DX", "US", "MG", "NM", "PT", "XA", "RF", "OT", "SR")


class FilterBar(Horizontal):
    """Edits a :class:`StudyFilter`; posts :class:`FilterBar.Changed` when it changes.

    Text fields apply after a short pause in typing (or at once on Enter); the selects at once.

    Args:
        today: Gives the day the date presets count from.
        delay: Seconds of typing pause before a text change applies.
    """

    BINDINGS = FIELD_NAVIGATION  # a burst "smith<Tab>123" fills two fields (see field_keys)

    # One row of borderless fields. !important: these must beat the inner widgets' own state
    # rules (Input:focus and Select:focus draw a tall border); an app's CSS still overrides
    # them, since any app or screen rule outranks every DEFAULT_CSS rule.
    DEFAULT_CSS = """
    FilterBar {
        height: 1 !important;
        background: $boost !important;
    }
    FilterBar .filter-label {
        padding: 0 1 0 1 !important;
        color: $text-muted !important;
    }
    FilterBar Input {
        border: none !important;
        height: 1 !important;
        padding: 0 !important;
        background: $surface !important;
    }
    FilterBar Input:focus {
        background: $primary 30% !important;
    }
    FilterBar Input.-invalid {
        background: $error 40% !important;
    }
    FilterBar .filter-text {
        width: 1fr !important;
        max-width: 24 !important;
    }
    FilterBar .filter-date-input {
        width: 11 !important;
        margin-left: 1 !important;
    }
    FilterBar Select {
        width: 16 !important;
        margin-left: 1 !important;
        height: 1 !important;
    }
    FilterBar #filter-modality {
        width: 13 !important;
    }
    FilterBar SelectCurrent {
        border: none !important;
        height: 1 !important;
        padding: 0 1 !important;
        background: $surface !important;
    }
    FilterBar Select:focus > SelectCurrent {
        background: $primary 30% !important;
    }
    FilterBar SelectOverlay {
        width: 20 !important;
    }
    """

    class Changed(Message):
        """The filter changed."""

        def __init__(self, study_filter: StudyFilter) -> None:
            super().__init__()
            self.study_filter = study_filter

    def __init__(self, today: Callable[[], date], delay: float = 0.15, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.today = today
        self.delay = delay
        self._timer: Timer | None = None
        self._last: StudyFilter | None = None

    def compose(self) -> ComposeResult:
        yield Label("Name", classes="filter-label")
        yield Input(placeholder="name", id="filter-name", classes="filter-text")
        yield Label("ID", classes="filter-label")
        yield Input(placeholder="patient ID", id="filter-id", classes="filter-text")
        yield Label("Acc", classes="filter-label")
        yield Input(placeholder="accession", id="filter-accession", classes="filter-text")
        yield Select(DATE_PRESETS, value="any", allow_blank=False, id="filter-date")
        yield Input(placeholder="from", id="filter-from", classes="filter-date-input")
        yield Input(placeholder="to", id="filter-to", classes="filter-date-input")
        yield Select([(m, m) for m in MODALITIES], prompt="Modality", id="filter-modality")

    def on_mount(self) -> None:
        self._show_range(False)
        self._last = self.current_filter()

    def _show_range(self, show: bool) -> None:
        for widget in self.query(".filter-date-input"):
            widget.display = show

    def current_filter(self) -> StudyFilter | None:
        """The filter as the fields stand, or None when a custom date is invalid."""
        preset = self.query_one("#filter-date", Select).value
        valid = True
        if preset == "custom":
            ends = []
            for field_id in ("#filter-from", "#filter-to"):
                box = self.query_one(field_id, Input)
                try:
                    ends.append(parse_date(box.value))
                    box.remove_class("-invalid")
                except ValueError:
                    box.add_class("-invalid")
                    ends.append("")
                    valid = False
            start, end = ends
        else:
            start, end = date_range(str(preset), self.today())
        if not valid:
            return None
        modality = self.query_one("#filter-modality", Select).value
        return StudyFilter(
            patient_name=self.query_one("#filter-name", Input).value,
            patient_id=self.query_one("#filter-id", Input).value,
            accession_number=self.query_one("#filter-accession", Input).value,
            study_date_from=start,
            study_date_to=end,
            modality=modality if isinstance(modality, str) else "",
        )

    def set_values(
        self,
        *,
        patient_name: str | None = None,
        patient_id: str | None = None,
        accession_number: str | None = None,
        date_preset: str | None = None,
        modality: str | None = None,
    ) -> None:
        """Set fields programmatically (the command palette, tests); applies at once."""
        for field_id, value in (
            ("#filter-name", patient_name),
            ("#filter-id", patient_id),
            ("#filter-accession", accession_number),
        ):
            if value is not None:
                with self.prevent(Input.Changed):
                    self.query_one(field_id, Input).value = value
        with self.prevent(Select.Changed):
            if date_preset is not None:
                self.query_one("#filter-date", Select).value = date_preset
                self._show_range(date_preset == "custom")
            if modality is not None:
                select = self.query_one("#filter-modality", Select)
                if modality:
                    select.value = modality
                else:
                    select.clear()
        self.apply()

    def clear(self) -> None:
        """Empty every field."""
        self.set_values(
            patient_name="", patient_id="", accession_number="", date_preset="any", modality=""
        )

    def apply(self, force: bool = False) -> None:
        """Post the filter now if it changed (or always, with ``force``)."""
        if self._timer is not None:
            self._timer.stop()
            self._timer = None
        current = self.current_filter()
        if current is None or (current == self._last and not force):
            return
        self._last = current
        self.post_message(self.Changed(current))

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        if self._timer is not None:
            self._timer.stop()
            self._timer = None
        if self.delay > 0:
            self._timer = self.set_timer(self.delay, self.apply)
        else:
            self.call_later(self.apply)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        # Not stopped: the screen moves the focus to the list.
        self.apply()

    def on_select_changed(self, event: Select.Changed) -> None:
        event.stop()
        if event.select.id == "filter-date":
            custom = event.value == "custom"
            self._show_range(custom)
            if custom:
                self.query_one("#filter-from", Input).focus()
                return
        self.apply()
