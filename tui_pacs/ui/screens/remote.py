"""The remote screen: query a node of the registry, look at its studies and series, retrieve them.

The filter bar is the archive's (same fields, same meaning: text is a prefix); Enter or ``f``
runs the study-level C-FIND in a thread worker, which a new query cancels (C-CANCEL). Enter on a
study lists its series (a series-level C-FIND). Space marks rows; ``r`` queues one retrieve job
per marked study, or one job for the marked series of the study; ``p`` asks the node for every
study of the highlighted study's patient (its priors).
"""

from __future__ import annotations

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.widgets import DataTable, Input, Label
from textual.worker import get_current_worker

from tui_pacs.model import JobInfo, RemoteNode, SeriesSummary, StudyFilter, StudySummary
from tui_pacs.services import jobs as job_service
from tui_pacs.services import qr
from tui_pacs.services.nodes import CHANGE_KIND as NODE_CHANGE_KIND
from tui_pacs.services.nodes import NodeRegistry
from tui_pacs.ui.messages import ChangesArrived
from tui_pacs.ui.screens.base import ConsoleScreen
from tui_pacs.ui.widgets.filter_bar import FilterBar
from tui_pacs.ui.widgets.node_bar import NodeBar
from tui_pacs.ui.widgets.remote_tables import RemoteSeriesTable, RemoteStudyTable
from tui_pacs.ui.widgets.study_table import format_name

#: Most studies one query shows; past it the query is cancelled (C-CANCEL) and the title says so.
MAX_RESULTS = 500


def retrieve_label(study: StudySummary | None, series_uids: list[str]) -> str:
    """A retrieve job's object in words: ``2 series of the study of DOE, John (CT HEAD)``."""
    if study is None:
        return ""
    label = f"the study of {format_name(study.patient_name)}"
    if study.study_description:
        label += f" ({study.study_description})"
    if series_uids:
        label = f"{len(series_uids)} series of {label}"
    return label


class RemoteScreen(ConsoleScreen):
    """Query/Retrieve against one remote node at a time."""

    CSS_PATH = "remote.tcss"

    BINDINGS = [
        Binding("slash", "focus_filter", "Filter"),
        Binding("f", "find", "Find"),
        Binding("o", "choose_node", "Choose node"),
        Binding("space", "toggle_mark", "Mark"),
        Binding("s", "show_series", "Series"),
        Binding("r", "retrieve", "Retrieve"),
        Binding("p", "priors", "Priors"),
        Binding("x", "clear_filter", "Clear filter", show=False),
        Binding("escape", "back", "Back", show=False),
    ]

    class QueryDone(Message, bubble=False):
        """A study query ended; ``studies`` are on screen (``truncated``: the cap stopped it)."""

        def __init__(
            self,
            node: RemoteNode,
            query: qr.FindQuery,
            studies: list[StudySummary],
            truncated: bool,
            priors_of: StudySummary | None,
        ) -> None:
            super().__init__()
            self.node = node
            self.query = query
            self.studies = studies
            self.truncated = truncated
            self.priors_of = priors_of

    class SeriesShown(Message, bubble=False):
        """The series of ``study_instance_uid`` on the node are on screen."""

        def __init__(self, study_instance_uid: str, series: list[SeriesSummary]) -> None:
            super().__init__()
            self.study_instance_uid = study_instance_uid
            self.series = series

    class RetrieveQueued(Message, bubble=False):
        """Retrieve jobs were queued (one per study, or one for some series of a study)."""

        def __init__(self, jobs: list[JobInfo]) -> None:
            super().__init__()
            self.jobs = jobs

    class _NodesLoaded(Message, bubble=False):
        def __init__(self, nodes: list[RemoteNode]) -> None:
            super().__init__()
            self.nodes = nodes

    def __init__(self) -> None:
        super().__init__()
        self.study_filter = StudyFilter()
        #: The study whose series are listed.
        self.series_of: StudySummary | None = None
        self.querying = False
        self._title_text = "Studies"

    @property
    def node(self) -> RemoteNode | None:
        """The node queries go to."""
        return self.query_one(NodeBar).node

    @property
    def nodes(self) -> dict[str, RemoteNode]:
        """The registry's nodes, by name."""
        return self.query_one(NodeBar).nodes

    # -- layout ----------------------------------------------------------------------------

    def compose_body(self) -> ComposeResult:
        yield NodeBar(id="node-bar")
        yield FilterBar(self.context.today, self.context.filter_delay, id="filter-bar")
        yield Label("Studies", id="remote-studies-title", classes="section-title")
        yield RemoteStudyTable(id="remote-studies")
        yield Label("Series", id="remote-series-title", classes="section-title")
        yield RemoteSeriesTable(id="remote-series")

    def on_mount(self) -> None:
        self.study_filter = self.query_one(FilterBar).current_filter() or StudyFilter()
        self.query_one(RemoteStudyTable).focus()
        self._studies_title("Choose a node (o), fill the filter (/), then Enter or f to query")
        self.load_nodes()

    # -- nodes -----------------------------------------------------------------------------

    @work(thread=True, exclusive=True, group="nodes", exit_on_error=False)
    def load_nodes(self) -> None:
        """Read the node registry (for the node select)."""
        nodes = NodeRegistry(self.context.config).nodes()
        if not get_current_worker().is_cancelled:
            self.post_message(self._NodesLoaded(nodes))

    @on(_NodesLoaded)
    def _nodes_loaded(self, message: _NodesLoaded) -> None:
        self.query_one(NodeBar).show_nodes(message.nodes)

    def on_changes_arrived(self, message: ChangesArrived) -> None:
        if NODE_CHANGE_KIND in message.kinds:
            self.load_nodes()

    @on(NodeBar.Chosen)
    def _node_chosen(self, message: NodeBar.Chosen) -> None:
        self.workers.cancel_group(self, "find")
        self.workers.cancel_group(self, "series")
        self.query_one(RemoteStudyTable).show_studies([])
        self._clear_series()
        name = message.node.name if message.node else None
        self._studies_title(f"Enter or f queries {name}" if name else "Choose a node")

    def action_choose_node(self) -> None:
        """Open the node list."""
        self.query_one(NodeBar).open()

    # -- query -----------------------------------------------------------------------------

    @on(FilterBar.Changed)
    def _filter_changed(self, message: FilterBar.Changed) -> None:
        # A remote query costs the peer: it runs on Enter or f, not at every key.
        self.study_filter = message.study_filter

    @on(Input.Submitted, "#filter-bar Input")
    def _filter_submitted(self, event: Input.Submitted) -> None:
        self.action_find()
        self.query_one(RemoteStudyTable).focus()

    def action_find(self) -> None:
        """Run the query on the node."""
        node = self.node
        if node is None:
            self.notify("Choose a node first (o)", severity="warning")
            return
        current = self.query_one(FilterBar).current_filter()
        if current is None:
            self.notify("The date range is not valid", severity="error")
            return
        self.study_filter = current
        self.run_query(node, qr.study_query(current))
        # From the node select, Enter would open the node list again instead of the study.
        self.query_one(RemoteStudyTable).focus()

    def action_priors(self) -> None:
        """Ask the node for every study of the highlighted study's patient."""
        node = self.node
        study = self.series_of if self._series_focused() else None
        study = study or self.query_one(RemoteStudyTable).current
        if node is None or study is None:
            self.notify("Highlight a study first", severity="warning")
            return
        if not study.patient_id:
            self.notify("This study has no Patient ID to search by", severity="warning")
            return
        self.query_one(FilterBar).set_values(
            patient_name="",
            patient_id=study.patient_id,
            accession_number="",
            date_preset="any",
            modality="",
        )
        query = qr.FindQuery(level="STUDY", root="study", patient_id=study.patient_id)
        self.run_query(node, query, priors_of=study)

    def run_query(
        self, node: RemoteNode, query: qr.FindQuery, priors_of: StudySummary | None = None
    ) -> None:
        """Start the C-FIND (a running one is cancelled)."""
        self.querying = True
        what = f"priors of {format_name(priors_of.patient_name)}" if priors_of else "studies"
        self._studies_title(f"Querying {node.name} for {what}…")
        self._clear_series()
        self._find(node, query, priors_of)

    @work(thread=True, exclusive=True, group="find", exit_on_error=False)
    def _find(self, node: RemoteNode, query: qr.FindQuery, priors_of: StudySummary | None) -> None:
        worker = get_current_worker()
        studies: list[StudySummary] = []

        def should_stop() -> bool:
            return worker.is_cancelled or len(studies) >= MAX_RESULTS

        try:
            for study in qr.find_studies(self.context.config, node, query, should_stop):
                studies.append(study)
                if len(studies) >= MAX_RESULTS:
                    break
        except BaseException:
            if not worker.is_cancelled:
                self.app.call_from_thread(self._query_failed, node)
            raise
        if worker.is_cancelled:
            return
        studies.sort(key=lambda s: (s.study_date, s.study_time), reverse=True)
        truncated = len(studies) >= MAX_RESULTS
        self.post_message(self.QueryDone(node, query, studies, truncated, priors_of))

    def _query_failed(self, node: RemoteNode) -> None:
        self.querying = False
        self._studies_title(f"The query on {node.name} failed")

    @on(QueryDone)
    def _query_done(self, message: QueryDone) -> None:
        if self.node is None or message.node.name != self.node.name:
            return  # the answer of a node no longer chosen
        self.querying = False
        table = self.query_one(RemoteStudyTable)
        keep = message.priors_of.study_instance_uid if message.priors_of else None
        table.show_studies(message.studies, keep=keep)
        count = f"{len(message.studies)}{'+' if message.truncated else ''}"
        if message.priors_of is not None:
            who = message.priors_of
            title = (
                f"Priors of {format_name(who.patient_name)} ({who.patient_id}) on "
                f"{message.node.name} · {count} studies"
            )
        else:
            title = f"Studies on {message.node.name} · {count} found"
        if message.truncated:
            title += f" (first {MAX_RESULTS}; narrow the query)"
        self._studies_title(title)

    def _studies_title(self, text: str) -> None:
        marked = len(self.query_one(RemoteStudyTable).marked)
        suffix = f" · {marked} marked" if marked else ""
        self.query_one("#remote-studies-title", Label).update(text + suffix)
        self._title_text = text

    # -- series ----------------------------------------------------------------------------

    @on(DataTable.RowSelected, "#remote-studies")
    def _study_selected(self, event: DataTable.RowSelected) -> None:
        self.action_show_series()

    @on(DataTable.RowHighlighted, "#remote-studies")
    def _study_highlighted(self, event: DataTable.RowHighlighted) -> None:
        study = self.query_one(RemoteStudyTable).current
        if self.series_of is not None and (
            study is None or study.study_instance_uid != self.series_of.study_instance_uid
        ):
            self._clear_series()

    def action_show_series(self) -> None:
        """List the series of the highlighted study (a series-level C-FIND)."""
        node, study = self.node, self.query_one(RemoteStudyTable).current
        if node is None or study is None:
            return
        self.series_of = study
        self.query_one("#remote-series-title", Label).update(
            f"Series of {format_name(study.patient_name)} · {study.study_description} · querying…"
        )
        self._find_series(node, study.study_instance_uid)

    @work(thread=True, exclusive=True, group="series", exit_on_error=False)
    def _find_series(self, node: RemoteNode, study_instance_uid: str) -> None:
        worker = get_current_worker()
        series = qr.find_series(
            self.context.config, node, study_instance_uid, lambda: worker.is_cancelled
        )
        if not worker.is_cancelled:
            self.post_message(self.SeriesShown(study_instance_uid, series))

    @on(SeriesShown)
    def _series_shown(self, message: SeriesShown) -> None:
        study = self.series_of
        if study is None or study.study_instance_uid != message.study_instance_uid:
            return
        table = self.query_one(RemoteSeriesTable)
        table.show_series(message.series)
        self._series_title()
        if message.series:
            table.focus()

    def _series_title(self) -> None:
        study = self.series_of
        if study is None:
            title = "Series (Enter on a study lists them)"
        else:
            table = self.query_one(RemoteSeriesTable)
            title = (
                f"Series of {format_name(study.patient_name)} · {study.study_description} · "
                f"{table.row_count}"
            )
            if table.marked:
                title += f" · {len(table.marked)} marked"
        self.query_one("#remote-series-title", Label).update(title)

    def _clear_series(self) -> None:
        self.workers.cancel_group(self, "series")
        self.series_of = None
        self.query_one(RemoteSeriesTable).show_series([])
        self._series_title()

    def _series_focused(self) -> bool:
        return self.focused is self.query_one(RemoteSeriesTable)

    # -- marks and retrieve ----------------------------------------------------------------

    def action_toggle_mark(self) -> None:
        """Mark (or unmark) the row under the cursor for a retrieve."""
        if self._series_focused():
            table = self.query_one(RemoteSeriesTable)
            table.toggle_mark()
            self._series_title()
            table.action_cursor_down()
            return
        studies = self.query_one(RemoteStudyTable)
        studies.toggle_mark()
        self._studies_title(self._title_text)
        studies.action_cursor_down()

    def action_retrieve(self) -> None:
        """Retrieve the marked studies (or series), else the one under the cursor, as jobs."""
        node = self.node
        if node is None:
            self.notify("Choose a node first (o)", severity="warning")
            return
        requests: list[tuple[str, list[str]]]
        if self._series_focused() and self.series_of is not None:
            series = self.query_one(RemoteSeriesTable).chosen()
            if not series:
                return
            requests = [(self.series_of.study_instance_uid, series)]
        else:
            requests = [(uid, []) for uid in self.query_one(RemoteStudyTable).chosen()]
        if not requests:
            self.notify("Nothing to retrieve: run a query first", severity="warning")
            return
        studies = self.query_one(RemoteStudyTable).studies
        if self.series_of is not None:
            studies = {**studies, self.series_of.study_instance_uid: self.series_of}
        self._queue_retrieves(
            node,
            [(uid, series, retrieve_label(studies.get(uid), series)) for uid, series in requests],
        )

    @work(thread=True, group="retrieve", exit_on_error=False)
    def _queue_retrieves(
        self, node: RemoteNode, requests: list[tuple[str, list[str], str]]
    ) -> None:
        config = self.context.config
        jobs = [
            job_service.queue_retrieve(config, node, study_uid, series_uids, label=label)
            for study_uid, series_uids, label in requests
        ]
        self.post_message(self.RetrieveQueued(jobs))

    @on(RetrieveQueued)
    def _retrieve_queued(self, message: RetrieveQueued) -> None:
        jobs = message.jobs
        ids = ", ".join(str(job.id) for job in jobs)
        noun = "job" if len(jobs) == 1 else "jobs"
        self.notify(f"Retrieve {noun} {ids} queued (see Transfers, key 3)", title="Retrieve")
        studies = self.query_one(RemoteStudyTable)
        series = self.query_one(RemoteSeriesTable)
        for table in (studies, series):
            for key in list(table.marked):
                table.toggle_mark(key)
        self._studies_title(self._title_text)
        self._series_title()

    # -- filter and focus ------------------------------------------------------------------

    def action_focus_filter(self) -> None:
        """Put the cursor in the patient name filter."""
        self.query_one("#filter-name").focus()

    def action_clear_filter(self) -> None:
        """Empty every filter field."""
        self.query_one(FilterBar).clear()

    def action_back(self) -> None:
        """From the series back to the studies."""
        self.query_one(RemoteStudyTable).focus()
