"""The archive screen: filter the local studies, page through them, open a series and its tags.

Every database read runs in a thread worker of its own group; workers post a message with
their result, and the handlers draw it. New arrivals come in through the change feed and reload
the page in place (same filter, same page, cursor kept on the same study).
"""

from __future__ import annotations

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.events import Resize
from textual.message import Message
from textual.timer import Timer
from textual.widget import Widget
from textual.widgets import DataTable, Input, Label
from textual.worker import get_current_worker

from tui_pacs.model import InstanceSummary, SeriesSummary, StudyFilter, TagNode
from tui_pacs.services.browse import STUDY_CHANGE_KINDS
from tui_pacs.ui.messages import ChangesArrived
from tui_pacs.ui.screens.base import ConsoleScreen
from tui_pacs.ui.widgets.filter_bar import FilterBar
from tui_pacs.ui.widgets.instance_panel import InstancePanel
from tui_pacs.ui.widgets.series_table import SeriesTable
from tui_pacs.ui.widgets.study_list import StudyList
from tui_pacs.ui.widgets.study_table import StudyTable
from tui_pacs.ui.widgets.worklist_pane import WorklistPane

#: Below this width the instance panel takes the whole body when opened, instead of a column.
NARROW = 120


class ArchiveScreen(ConsoleScreen):
    """Local studies, their series and the tags of an instance."""

    CSS_PATH = "archive.tcss"

    BINDINGS = [
        # Priority: handled before the keys queued behind it, so "/smith" arriving in one burst
        # (a paste, a slow SSH link) lands "smith" in the name field, not on the list's keys.
        Binding("slash", "focus_filter", "Filter", priority=True),
        Binding("x", "clear_filter", "Clear filter"),
        Binding("s", "cycle_sort", "Sort"),
        Binding("r", "reverse_sort", "Reverse"),
        Binding("n", "next_page", "Next page"),
        Binding("p", "previous_page", "Prev page"),
        Binding("g", "first_page", "First page", show=False),
        Binding("G", "last_page", "Last page", show=False),
        Binding("t", "toggle_tags", "Tags"),
        Binding("f", "find_tag", "Find tag"),
        Binding("S", "send", "Send"),
        Binding("v", "view", "View"),
        Binding("w", "worklist", "Worklist"),
        Binding("W", "worklist_size", "Worklist size", show=False),
        Binding("right_square_bracket", "step_instance(1)", "Next image", show=False),
        Binding("left_square_bracket", "step_instance(-1)", "Prev image", show=False),
        Binding("ctrl+r", "reload", "Reload", show=False),
        Binding("escape", "back", "Back", show=False),
    ]

    #: Re-exported: what the study list posts (tests and the bench wait for them).
    PageShown = StudyList.PageShown
    CountShown = StudyList.CountShown

    class SeriesShown(Message):
        """The series of ``study_instance_uid`` are on screen."""

        def __init__(self, study_instance_uid: str, series: list[SeriesSummary]) -> None:
            super().__init__()
            self.study_instance_uid = study_instance_uid
            self.series = series

    class _InstancesLoaded(Message):
        def __init__(self, series_instance_uid: str, instances: list[InstanceSummary]) -> None:
            super().__init__()
            self.series_instance_uid = series_instance_uid
            self.instances = instances

    class _TagsLoaded(Message):
        def __init__(self, sop_instance_uid: str, nodes: list[TagNode]) -> None:
            super().__init__()
            self.sop_instance_uid = sop_instance_uid
            self.nodes = nodes

    def __init__(self) -> None:
        super().__init__()
        self.study_uid: str | None = None
        self.series_uid: str | None = None
        self._focus_before_tags: Widget | None = None
        #: The study :meth:`show_study` puts the cursor on once its page is drawn.
        self._show_uid: str | None = None
        #: Series whose instances the panel holds (or is loading).
        self._instances_of: str | None = None
        #: The tech stepped through the series in the instance panel: the viewer opens there
        #: rather than at the middle image the preview shows.
        self._stepped = False
        self._detail_timer: Timer | None = None

    # -- layout --------------------------------------------------------------------------------

    def compose_body(self) -> ComposeResult:
        yield FilterBar(self.context.today, self.context.filter_delay, id="filter-bar")
        with Horizontal(id="browser"):
            with Vertical(id="lists"):
                # The day's orders (issue 6): hidden until there are orders today.
                yield WorklistPane(self.context.config, self.context.today, id="worklist-pane")
                yield StudyList(self.context.browser, self.context.page_size, id="study-list")
                yield Label("Series", id="series-title", classes="section-title")
                yield SeriesTable(id="series")
            yield InstancePanel(id="instance-panel")

    def on_mount(self) -> None:
        # The image preview (issue 5) fills the instance panel's preview slot.
        from tui_pacs.ui.widgets.preview import PreviewPane

        self.query_one("#preview").mount(PreviewPane(id="preview-pane"))
        self.query_one(StudyTable).focus()
        self._narrow(self.app.size.width)
        self.studies.set_filter(
            self.query_one(FilterBar).current_filter() or StudyFilter(), reason="start"
        )

    @property
    def studies(self) -> StudyList:
        """The paged study list."""
        return self.query_one(StudyList)

    def on_resize(self, event: Resize) -> None:
        self._narrow(event.size.width)
        self.query_one(WorklistPane).fit(event.size.height)

    def _narrow(self, width: int) -> None:
        self.set_class(width < NARROW, "-narrow")
        if self.is_mounted:
            self._load_instances_soon()

    # -- workers -------------------------------------------------------------------------------

    @work(thread=True, exclusive=True, group="series", exit_on_error=False)
    def load_series(self, study_instance_uid: str) -> None:
        """Fetch the series of a study."""
        series = self.context.browser.series(study_instance_uid)
        if not get_current_worker().is_cancelled:
            self.post_message(self.SeriesShown(study_instance_uid, series))

    @work(thread=True, exclusive=True, group="instances", exit_on_error=False)
    def load_instances(self, series_instance_uid: str) -> None:
        """Fetch the instances of a series."""
        instances = self.context.browser.instances(series_instance_uid)
        if not get_current_worker().is_cancelled:
            self.post_message(self._InstancesLoaded(series_instance_uid, instances))

    @work(thread=True, exclusive=True, group="tags", exit_on_error=False)
    def load_tags(self, sop_instance_uid: str) -> None:
        """Read an instance from the archive and build its tag tree."""
        nodes = self.context.browser.tag_tree(sop_instance_uid)
        if not get_current_worker().is_cancelled:
            self.post_message(self._TagsLoaded(sop_instance_uid, nodes))

    # -- results -------------------------------------------------------------------------------

    @on(StudyList.PageShown)
    def _page_shown(self, message: StudyList.PageShown) -> None:
        if not message.page.studies:
            self._select_study(None)
        shown = self._show_uid is not None and message.reason != "changes"
        if shown and not self._place_shown_study():
            self._show_uid = None  # not among the studies of its patient: left alone

    @on(SeriesShown)
    def _series_shown(self, message: SeriesShown) -> None:
        if message.study_instance_uid != self.study_uid:
            return
        table = self.query_one(SeriesTable)
        table.show_series(message.series, keep_uid=self.series_uid)
        self._series_title()
        if not message.series:
            self._select_series(None)

    @on(_InstancesLoaded)
    def _instances_loaded(self, message: _InstancesLoaded) -> None:
        if message.series_instance_uid != self.series_uid:
            return
        panel = self.query_one(InstancePanel)
        current = panel.current
        keep = current.sop_instance_uid if current is not None else None
        panel.show_instances(message.instances, keep_uid=keep)

    @on(_TagsLoaded)
    def _tags_loaded(self, message: _TagsLoaded) -> None:
        panel = self.query_one(InstancePanel)
        current = panel.current
        if current is not None and current.sop_instance_uid == message.sop_instance_uid:
            panel.show_tags(message.nodes)

    @on(InstancePanel.InstanceChosen)
    def _instance_chosen(self, message: InstancePanel.InstanceChosen) -> None:
        self.load_tags(message.instance.sop_instance_uid)

    def _series_title(self) -> None:
        title = "Series"
        table = self.query_one(StudyTable)
        if self.study_uid is not None and table.row_count:
            row = table.get_row(self.study_uid)
            title = f"Series of {row[0]} · {row[4]}"
        self.query_one("#series-title", Label).update(title)

    # -- selection -----------------------------------------------------------------------------

    def _select_study(self, uid: str | None) -> None:
        if uid == self.study_uid:
            return
        self.study_uid = uid
        self.series_uid = None
        if uid is None:
            self.query_one(SeriesTable).clear()
            self._series_title()
            self._select_series(None)
            return
        self.load_series(uid)

    def _select_series(self, uid: str | None) -> None:
        if uid == self.series_uid:
            return
        self.series_uid = uid
        panel = self.query_one(InstancePanel)
        panel.instances = []
        self._instances_of = None
        self._stepped = False
        if uid is None:
            panel.show_instances([])
            for pane in self.query("#preview-pane"):
                pane.clear()  # type: ignore[attr-defined]
            return
        self._load_instances_soon()

    @property
    def panel_visible(self) -> bool:
        """The instance panel is on screen (always when wide; when opened when narrow)."""
        return not self.has_class("-narrow") or self.has_class("-show-instance")

    def _load_instances_soon(self) -> None:
        """Load the instances (and the tags) of the series once the cursor rests on it.

        Each load reads a file from the archive: while the cursor runs down the study list,
        and while the panel is hidden, none is read.
        """
        if self._detail_timer is not None:
            self._detail_timer.stop()
            self._detail_timer = None
        if not self.panel_visible or self.series_uid is None:
            return
        if self.series_uid == self._instances_of:
            return
        delay = self.context.detail_delay
        if delay > 0:
            self._detail_timer = self.set_timer(delay, self._load_instances_now)
        else:
            self._load_instances_now()

    def _load_instances_now(self) -> None:
        self._detail_timer = None
        if self.series_uid is not None and self.series_uid != self._instances_of:
            self._instances_of = self.series_uid
            self.load_instances(self.series_uid)
            if self.study_uid is not None:
                for pane in self.query("#preview-pane"):
                    pane.show_series(self.study_uid, self.series_uid)  # type: ignore[attr-defined]

    @on(DataTable.RowHighlighted, "#studies")
    def _study_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._select_study(event.row_key.value)

    @on(DataTable.RowHighlighted, "#series")
    def _series_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._select_series(event.row_key.value)

    @on(DataTable.RowSelected, "#studies")
    def _study_selected(self, event: DataTable.RowSelected) -> None:
        # Enter on a study: its selected series (the first until one is picked) in the viewer.
        self._select_study(event.row_key.value)
        if self.series_uid is not None:
            self.action_view()
        elif self.study_uid is not None:  # its series are still loading
            self.load_study_for_viewer(self.study_uid)

    @on(DataTable.RowSelected, "#series")
    def _series_selected(self, event: DataTable.RowSelected) -> None:
        # Enter on a series: the viewer (the tag panel is on t).
        self._select_series(event.row_key.value)
        self.action_view()

    # -- filter, sort, paging ------------------------------------------------------------------

    @on(FilterBar.Changed)
    def _filter_changed(self, message: FilterBar.Changed) -> None:
        self.studies.set_filter(message.study_filter)

    def action_focus_filter(self) -> None:
        """Put the cursor in the patient name filter."""
        if self.has_class("-show-instance"):
            self.action_toggle_tags(show=False)
        # At once, not after the queued events (as focus() does): the keys typed right after
        # the slash belong in the field.
        self.set_focus(self.query_one("#filter-name"))

    def action_clear_filter(self) -> None:
        """Empty every filter field."""
        self.query_one(FilterBar).clear()

    def action_cycle_sort(self) -> None:
        """Sort by the next column."""
        self.studies.next_sort()

    def action_reverse_sort(self) -> None:
        """Reverse the sort order."""
        self.studies.set_sort(self.studies.sort, not self.studies.descending)

    def action_next_page(self) -> None:
        """Show the next page of studies."""
        self.studies.next_page()

    def action_previous_page(self) -> None:
        """Show the previous page of studies."""
        self.studies.previous_page()

    def action_first_page(self) -> None:
        """Show the first page."""
        self.studies.first_page()

    def action_last_page(self) -> None:
        """Show the last page."""
        self.studies.last_page()

    def action_reload(self) -> None:
        """Read the current page again."""
        self.studies.reload()
        if self.study_uid is not None:
            self.load_series(self.study_uid)

    # -- instance panel ------------------------------------------------------------------------

    def action_toggle_tags(self, show: bool | None = None) -> None:
        """Open (or close) the instance panel with the tag tree."""
        showing = self.has_class("-show-instance")
        show = not showing if show is None else show
        if show == showing:
            return
        self.set_class(show, "-show-instance")
        if show:
            self._load_instances_soon()
            self._focus_before_tags = self.focused
            self.query_one("#tag-tree").focus()
            return
        back = self._focus_before_tags
        self._focus_before_tags = None
        if back is None or not back.is_attached or not back.focusable:
            back = self.query_one(StudyTable)
        back.focus()

    def action_find_tag(self) -> None:
        """Search the tag tree by keyword, tag or value."""
        self.action_toggle_tags(show=True)
        self.query_one(InstancePanel).focus_search()

    def action_step_instance(self, delta: int) -> None:
        """Show the next or previous instance of the series."""
        self._stepped = True
        self.query_one(InstancePanel).step(delta)

    def action_back(self) -> None:
        """Leave the tag panel or the filter, back to the lists."""
        if self.has_class("-show-instance"):
            self.action_toggle_tags(show=False)
        elif self.focused is not None and self.focused.id == "series":
            self.query_one(StudyTable).focus()
        else:
            self.query_one(StudyTable).focus()

    # -- viewer --------------------------------------------------------------------------------

    def action_view(self) -> None:
        """Open the selected series in the viewer, at the image the preview shows.

        When the tech has stepped through the instance panel, the viewer opens at that instance.
        """
        panel = self.query_one(InstancePanel)
        if self.series_uid is None:
            self.notify("No series selected", severity="warning")
            return
        if panel.instances and self._instances_of == self.series_uid:
            instances = list(panel.instances)
            index = panel.position if self._stepped else len(instances) // 2
            self._push_viewer(instances, index)
        else:  # narrow terminal: the panel has not loaded them
            self.load_for_viewer(self.series_uid)

    @work(thread=True, exclusive=True, group="viewer", exit_on_error=False)
    def load_for_viewer(self, series_instance_uid: str) -> None:
        """Fetch the instances of a series, then open the viewer at its middle image."""
        instances = self.context.browser.instances(series_instance_uid)
        if not get_current_worker().is_cancelled:
            self.app.call_from_thread(self._push_viewer, instances, len(instances) // 2)

    @work(thread=True, exclusive=True, group="viewer", exit_on_error=False)
    def load_study_for_viewer(self, study_instance_uid: str) -> None:
        """Fetch the first series of a study and its instances, then open the viewer."""
        series = self.context.browser.series(study_instance_uid)
        if not series:
            self.app.call_from_thread(self.notify, "This study has no series", severity="warning")
            return
        instances = self.context.browser.instances(series[0].series_instance_uid)
        if not get_current_worker().is_cancelled:
            self.app.call_from_thread(self._push_viewer, instances, len(instances) // 2)

    def _push_viewer(self, instances: list[InstanceSummary], index: int) -> None:
        if not instances:
            self.notify("This series has no images", severity="warning")
            return
        from tui_pacs.ui.screens.viewer import ViewerScreen

        self.app.push_screen(ViewerScreen(instances, index))

    # -- send ----------------------------------------------------------------------------------

    def action_send(self) -> None:
        """Send the selected study (or, from the series list, the series) to a remote node."""
        if self.study_uid is None:
            self.notify("No study selected", severity="warning")
            return
        study = self.query_one(StudyTable).get_row(self.study_uid)
        series = self.series_uid if self.focused is self.query_one(SeriesTable) else None
        what = f"the study of {study[0]} ({study[4]})"
        if series is not None:
            what = f"series {self.query_one(SeriesTable).get_row(series)[2]} of {study[0]}"
        # Imported here: the send dialog pulls in the network stack, which start-up does without.
        from tui_pacs.ui.dialogs.node_picker import send_to_node

        send_to_node(self, what=what, study_instance_uid=self.study_uid, series_instance_uid=series)

    # -- live arrivals -------------------------------------------------------------------------

    def on_changes_arrived(self, message: ChangesArrived) -> None:
        self.query_one(WorklistPane).changes_arrived(message.kinds)
        if not message.kinds & STUDY_CHANGE_KINDS:
            return
        self.studies.reload(reason="changes")
        if self.study_uid is not None:
            self.load_series(self.study_uid)
        if self.series_uid is not None and self.series_uid == self._instances_of:
            self.load_instances(self.series_uid)

    @on(Input.Submitted, "#filter-bar Input")
    def _filter_submitted(self, event: Input.Submitted) -> None:
        # Enter in a filter field: the list is where the person looks next.
        self.query_one(StudyTable).focus()

    # -- the worklist pane (issue 6) -----------------------------------------------------------

    def show_study(
        self, study_instance_uid: str, *, patient_id: str = "", accession_number: str = ""
    ) -> None:
        """Put the cursor on a study in the study list, the list focused.

        A study on the page shown is selected where it is; otherwise the filter becomes its
        patient (or accession number), any date, and the cursor goes to the study once that
        page is drawn.
        """
        if self.has_class("-show-instance"):
            self.action_toggle_tags(show=False)
        self._show_uid = study_instance_uid
        if self._place_shown_study():
            return
        self.query_one(FilterBar).set_values(
            patient_name="",
            patient_id=patient_id,
            accession_number="" if patient_id else accession_number,
            date_preset="any",
            modality="",
        )
        if self.query_one(FilterBar).current_filter() == self.studies.study_filter:
            self.studies.reload(reason="show-study")  # same filter: read the page again

    def _place_shown_study(self) -> bool:
        uid = self._show_uid
        table = self.query_one(StudyTable)
        if uid is None or uid not in table.rows:
            return False
        self._show_uid = None
        table.move_cursor(row=table.get_row_index(uid), animate=False, scroll=True)
        table.focus()
        return True

    @on(WorklistPane.OpenStudy)
    def _open_study(self, message: WorklistPane.OpenStudy) -> None:
        self.show_study(
            message.study_instance_uid,
            patient_id=message.patient_id,
            accession_number=message.accession_number,
        )

    def action_worklist(self) -> None:
        """Show the worklist pane and move to it; from the pane, back to the studies."""
        pane = self.query_one(WorklistPane)
        if not pane.display:
            pane.set_shown(True)
        elif self.focused is not None and pane in self.focused.ancestors_with_self:
            self.query_one(StudyTable).focus()
            return
        pane.focus_list()

    def action_worklist_size(self) -> None:
        """The worklist pane: compact, large, hidden, compact again."""
        pane = self.query_one(WorklistPane)
        if not pane.display:
            pane.set_class(False, "-large")
            pane.set_shown(True)
            pane.focus_list()
        elif not pane.has_class("-large"):
            pane.add_class("-large")
            pane.fit(self.app.size.height)
        else:
            pane.remove_class("-large")
            pane.set_shown(False)
            self.query_one(StudyTable).focus()
