"""The JSON nbflow shows and the request bodies its REST API takes, as pydantic models.

`runs --json`, `show --json`, `status --json`, `reports --json`, `graph --format json` and every answer of the REST
API are built or checked through these models, and the server reads request bodies with them. The JupyterLab
extension's types are generated from their JSON schema (`python -m nbflow.shapes | node
labextension/scripts/shapes.mjs > labextension/src/shapes.generated.ts`), so the Python and the TypeScript side
cannot drift apart unnoticed.

Kept apart from `nbflow.models`, which every layer imports, so a command that shows no JSON does not load pydantic.
"""

from __future__ import annotations

import json
from enum import Enum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel, TypeAdapter, field_validator, model_validator
from pydantic.json_schema import GenerateJsonSchema, models_json_schema

from nbflow.grids import parse_grid_values
from nbflow.models import RunState, TaskState, TaskStatus
from nbflow.params import parse_value

# -- what nbflow shows --------------------------------------------------------------------------------------------


class Shape(BaseModel):
    """A JSON object nbflow writes: exactly these fields (a field added on one side only fails the check)."""

    # defer_build: a model is built on first use, so a command pays only for the shapes it shows
    model_config = ConfigDict(extra="forbid", json_schema_serialization_defaults_required=True, defer_build=True)

    def to_json(self) -> dict[str, Any]:
        """The JSON-ready dict (enums as their values, fields by their JSON names)."""
        return self.model_dump(mode="json", by_alias=True)


class TaskErrorEntry(Shape):
    """Why a task did not succeed. `cell_index` counts the executed notebook's cells, the injected parameters cell
    included; null where no cell is to blame. `source_cell` is that cell's index in the source notebook (as the user
    sees it), `source_line` its first line."""

    ename: str
    evalue: str
    cell_index: int | None
    traceback: list[str]
    source_cell: int | None = None
    source_line: str | None = None


class CellProgressEntry(Shape):
    """How far an instance's notebook has got: cell `cell` of `cells` (from 1, in the executed notebook, the
    injected parameters cell included), that cell's first line, and the last lines its cells printed."""

    cell: int
    cells: int
    line: str
    tail: list[str]


class TaskRunEntry(Shape):
    """One task of one run (`show --json`, `GET runs/ID`); `output_notebook` is relative to the project root."""

    name: str  # the instance's name: `task`, or `task[name=value,...]` for an instance of a grid
    task: str
    grid: dict[str, Any] = {}  # the instance's grid values
    state: TaskState
    started_at: str | None
    finished_at: str | None
    duration_s: float | None
    attempts: int
    error: TaskErrorEntry | None
    output_notebook: str | None
    progress: CellProgressEntry | None = None  # while it runs (and as far as it got)


class RunSummary(Shape):
    """A run in the runs list (`runs --json`, `GET runs`), newest first; `counts` are its tasks by state."""

    id: str
    trigger: str  # cli, api, lab, schedule:NAME
    state: RunState
    started_at: str
    finished_at: str | None
    duration_s: float | None
    grid: dict[str, list[Any]] = {}  # the run's own grid (`-g`): name -> values
    counts: dict[TaskState, int]
    params: dict[str, Any] = {}  # as the run recorded them (secrets as ***)


class RunList(RootModel[list[RunSummary]]):
    """The runs list."""


class RunDetail(Shape):
    """One run with its tasks (`show --json`, `GET runs/ID`)."""

    id: str
    trigger: str
    state: RunState
    started_at: str
    finished_at: str | None
    duration_s: float | None
    grid: dict[str, list[Any]] = {}
    params: dict[str, Any]
    tasks: list[TaskRunEntry]


class TaskStatusEntry(Shape):
    """A task judged outside any run, with the parameter values in force."""

    name: str
    task: str
    grid: dict[str, Any] = {}
    status: TaskStatus
    reasons: list[str]
    last_run: str | None
    last_instance: str | None = None  # its name in `last_run`: an instance of a backfill that built these values
    last_state: TaskState | None
    duration_s: float | None


class StatusReport(Shape):
    """`status --json`."""

    tasks: list[TaskStatusEntry]


class GraphTask(Shape):
    """A task of `graph --format json`: paths relative to the project root, placeholders filled."""

    name: str
    task: str  # the task it is an instance of (the same as `name` without a grid)
    grid: dict[str, Any] = {}
    notebook: str
    inputs: list[str]
    outputs: list[str]
    upstream: list[str]
    params: dict[str, Any]


class GraphEdge(Shape):
    """`via`: the input paths that link the two tasks (empty for an `upstream` edge)."""

    from_: str = Field(alias="from")
    to: str
    via: list[str]


class Graph(Shape):
    """`graph --format json`."""

    tasks: list[GraphTask]
    edges: list[GraphEdge]


class PipelineTask(GraphTask):
    status: TaskStatusEntry


class PipelineView(Shape):
    """`GET pipeline`: the graph with each task's status; `root` is the project's folder relative to the server's
    root ("" = the root itself), `active_run` the id of a run going on, from the server or elsewhere."""

    tasks: list[PipelineTask]
    edges: list[GraphEdge]
    root: str
    active_run: str | None
    problems: list[str]


class ErrorBody(Shape):
    """What the REST API answers when it refuses a request: a paragraph for a person, and each problem found."""

    message: str
    problems: list[str] = []


class PipelineProblems(ErrorBody):
    """`GET pipeline` of an invalid pipeline (HTTP 422): no graph, every problem."""

    tasks: list[PipelineTask] = []
    edges: list[GraphEdge] = []


class RunStarted(Shape):
    """`POST runs`: the run goes on in the background; `tasks` are the ones it selected, in dependency order."""

    id: str
    state: Literal[RunState.RUNNING]
    tasks: list[str]


class RunCancelling(Shape):
    """`POST runs/ID/cancel`: the run was told to stop; `how` says by whom (this server, its scheduler, a signal)."""

    id: str
    cancelling: bool
    how: str


class NotebookJson(BaseModel):
    """An nbformat notebook as its JSON: the cells, and whatever else the file holds, kept as it is."""

    model_config = ConfigDict(extra="allow", defer_build=True)

    cells: list[dict[str, Any]]


class ExecutedNotebook(Shape):
    """`GET runs/ID/tasks/TASK/notebook`; `path` is relative to the server's root."""

    run: str
    task: str
    state: TaskState
    path: str
    notebook: NotebookJson


class ReportEntry(Shape):
    """A report a run wrote for a task instance (`reports --json`, `GET reports`). `path` is where the task declares
    it, which holds the instance's latest report; `run_copy` the run's own copy, which stays; both relative to the
    project root, each with whether the file is still there. `params` are the values the run used, `grid` the
    instance's grid values; `latest`: no later run wrote this instance's report."""

    name: str
    task: str
    grid: dict[str, Any] = {}
    run_id: str
    params: dict[str, Any]
    written_at: str
    path: str
    exists: bool
    run_copy: str
    run_copy_exists: bool
    latest: bool


class ReportList(RootModel[list[ReportEntry]]):
    """Reports by task and instance, each instance's newest first."""


class ScheduleEntry(Shape):
    """A schedule (`schedule list --json`, `GET schedules`); times are ISO 8601 in the schedule's zone, `targets`
    empty for every task, `next_fire` null while paused."""

    name: str
    cron: str | None
    every: str | None
    tz: str
    targets: list[str]
    params: dict[str, Any]
    grid: dict[str, str] = {}  # each firing's run grid: name -> values as `nbflow run -g` reads them
    paused: bool
    next_fire: str | None
    last_fired: str | None
    created_at: str | None
    on_failure_command: str | None
    on_failure_webhook: str | None
    notify_on: list[str] = []  # the events that notify: failure, success, deadline
    deadline: str | None = None  # "HH:MM" in the schedule's zone
    notify_email: list[str] = []


class SchedulerLease(Shape):
    """The scheduler that holds the project's lease; `here`: it is the one this server hosts."""

    owner: str
    host: str
    pid: int
    expires_at: str
    here: bool


class SchedulesView(Shape):
    """`GET schedules`: the schedules, the scheduler that fires them (null: none runs, nothing fires), whether this
    server hosts one (`hosted`; it may stand by while another holds the lease), its setting, and why the hosted one
    could not start."""

    schedules: list[ScheduleEntry]
    scheduler: SchedulerLease | None
    hosted: bool
    host_setting: bool
    scheduler_error: str | None


PreviewKind = Literal["table", "image", "text"]


class FileEntry(Shape):
    """One declared input or output of a task (`GET tasks/NAME`): `path` relative to the project root as declared
    and filled, what it is, whether it is there, its size in bytes and when it last changed (a folder's or a
    glob's: of all the files it holds, `files` of them, counted up to FILES_COUNTED), and what `GET files/preview`
    can show of it (null: nothing, or it is a folder or glob: preview its files)."""

    path: str
    kind: Literal["file", "folder", "glob"]
    exists: bool
    size: int | None
    modified: str | None
    files: int | None
    preview: PreviewKind | None


class TaskDetail(Shape):
    """`GET tasks/NAME`: one task instance as the drawer shows it. `notebook` is relative to the server's root
    (openable), `report` too (the file the task writes, null without one); `last` is its entry in the latest run
    that had it (`last_run`), with its error and progress."""

    name: str
    task: str
    grid: dict[str, Any] = {}
    notebook: str
    status: TaskStatusEntry
    params: dict[str, Any]
    inputs: list[FileEntry]
    outputs: list[FileEntry]
    upstream: list[str]
    downstream: list[str]
    report: str | None
    last_run: str | None
    last: TaskRunEntry | None


class FilePreview(Shape):
    """`GET files/preview?path=PATH`: the first rows of a table (CSV, TSV, JSON, JSON lines, Parquet), an image as
    a data URL, or the first lines of a text; `note` says what was left out (more rows, columns, a long cell)."""

    path: str
    kind: PreviewKind
    columns: list[str] = []
    rows: list[list[str]] = []
    total_rows: int | None = None  # where known without reading the whole file
    text: str | None = None
    data_url: str | None = None
    note: str | None = None


class StoreEvent(Shape):
    """One server-sent event of `GET events`: `run` (the run's summary: it started, its counts or state changed),
    `task` (one instance's entry: its state or progress changed), or `resync` (this stream missed events: read the
    pipeline and the runs again). The event's name is its `type`."""

    type: Literal["run", "task", "resync"]
    run_id: str
    run: RunSummary | None = None
    task: TaskRunEntry | None = None


class Health(Shape):
    """`GET health`: whether the store can be read (`store_error` says why not), whether a live scheduler holds the
    project's lease (`scheduler`: which; `here`: hosted by this server), and when a scheduler holding it last ticked
    (each tick renews the lease; the time stays after it stops): `seconds_since_tick` well past the lease's
    30 s means no scheduler fires."""

    store_readable: bool
    store_error: str | None
    scheduler_running: bool
    scheduler: SchedulerLease | None
    last_tick: str | None
    last_tick_owner: str | None
    seconds_since_tick: float | None


class Change(str, Enum):
    """How something differs from run A to run B."""

    ADDED = "added"  # only in B
    REMOVED = "removed"  # only in A
    CHANGED = "changed"


class ParamChange(Shape):
    """A parameter whose value differs: `before` in run A, `after` in run B (null on the side it is absent from,
    which `change` says); a secret is `***` on both sides."""

    name: str
    change: Change
    before: Any = None
    after: Any = None


class InputChange(Shape):
    """An input file (folder, glob) whose SHA-256 differs; null: it did not exist when that run judged the task."""

    path: str
    change: Change
    before: str | None
    after: str | None


class OutputChange(Shape):
    """One output of a cell that differs. `kind`: `stdout`, `stderr`, `error` or a MIME type (`text/plain`,
    `image/png`, `text/html`...); `before`/`after` its text (truncated), null on the side without it or for what is
    not text, which `note` then describes ("image changed")."""

    kind: str
    change: Change
    before: str | None = None
    after: str | None = None
    note: str | None = None


class CellDiff(Shape):
    """A cell whose source or outputs differ, paired by nbdime. `cell_a`/`cell_b` are its indices in the source
    notebook (the injected parameters cell not counted), null on the side it is absent from. `before`/`after` are
    its source lines in A and B (at most a bound of them, `lines_more` the rest); `removed`/`added` the indices of
    the lines that changed in each; `outputs` what changed in its outputs."""

    cell_a: int | None
    cell_b: int | None
    change: Change
    cell_type: str
    first_line: str
    source_changed: bool
    before: list[str]
    after: list[str]
    removed: list[int]
    added: list[int]
    lines_more: int = 0
    outputs: list[OutputChange] = []


class TaskDiff(Shape):
    """One task instance that differs between the runs: its state in each (null: not in that run), the parameters
    and input files that differ (from the fingerprint each run judged it with), and the cells of its executed
    notebooks that differ (`cells_more` not listed); `notes` say what could not be compared and why."""

    name: str
    task: str
    grid: dict[str, Any] = {}
    change: Change
    state_a: TaskState | None
    state_b: TaskState | None
    params: list[ParamChange]
    code_changed: bool  # its code cells' fingerprint differs (also where its notebooks could not be compared)
    inputs: list[InputChange]
    cells: list[CellDiff]
    cells_more: int = 0
    notes: list[str] = []


class RunDiff(Shape):
    """`nbflow diff A B --json`, `GET runs/A/diff/B`: what changed for each task instance from run A to run B.
    `tasks` lists the instances that differ (`tasks_more` not listed); `unchanged` counts the others compared."""

    a: RunSummary
    b: RunSummary
    selector: str | None  # the `-t` / `task` given
    tasks: list[TaskDiff]
    tasks_more: int = 0
    unchanged: int


# -- what the REST API takes ---------------------------------------------------------------------------------------
# Each field's description is the noun phrase an error message uses: "`force` must be true or false".


class Request(BaseModel):
    """A request body: only these fields, of exactly these types (no "yes" for true, no 60 for "60")."""

    model_config = ConfigDict(extra="forbid", strict=True, defer_build=True)


class ParamsRequest(Request):
    """The targets and parameter values of a run or a schedule: typed JSON in `params`, or text in `params_text`
    read as `nbflow run -p NAME VALUE` reads it (`True` a bool, `3` an int, `{date}` text)."""

    targets: list[str] | None = Field(
        None, description="a list of task names (each run with its upstream), or null for all tasks"
    )
    params: dict[str, Any] = Field(default_factory=dict, description='an object: {name: value} or {"task.name": value}')
    params_text: dict[str, str] = Field(
        default_factory=dict,
        description='an object of text values: {name: "text"} or {"task.name": "text"}, each read as the command '
        "line reads it",
    )

    @model_validator(mode="after")
    def _each_parameter_once(self) -> ParamsRequest:
        both = sorted(set(self.params) & set(self.params_text))
        if both:
            raise ValueError(f"parameter `{both[0]}` is given in both `params` and `params_text`; give it once.")
        return self

    def param_values(self) -> dict[str, Any]:
        """Every parameter value, the text ones read."""
        return {**self.params, **{name: parse_value(text) for name, text in self.params_text.items()}}


class RunRequest(ParamsRequest):
    """`POST runs`."""

    force: bool = Field(False, description="true or false: run the selected tasks even if they are up to date")
    no_wait: bool = Field(
        False, description="true or false: answer 409 rather than wait where another run holds a task instance"
    )
    grid: dict[str, list[Any]] = Field(
        default_factory=dict, description="an object: {name: [values]}, every selected task using a name run per value"
    )
    grid_text: dict[str, str] = Field(
        default_factory=dict,
        description='an object of text: {name: "a,b,c"} or {name: "2026-11-01..2026-11-30"} (step "/7d"), read as '
        "`nbflow run -g NAME VALUES` reads it",
    )
    upstream: bool = Field(
        True, description="true or false: run the targets' upstream too (false: taken as done, its outputs there)"
    )
    downstream: bool = Field(
        False,
        description="true or false: run what lies downstream of the targets too (with force and upstream false: "
        '"run from here")',
    )
    rerun_failed: str | None = Field(
        None,
        description="a run id: run its failed and cancelled tasks again, and their downstream, with its parameters "
        "and grid, forced, their upstream taken as done (give no targets, parameters or grid with it)",
    )

    @model_validator(mode="after")
    def _each_grid_name_once(self) -> RunRequest:
        both = sorted(set(self.grid) & set(self.grid_text))
        if both:
            raise ValueError(f"grid name `{both[0]}` is given in both `grid` and `grid_text`; give it once.")
        given = [name for name in ("targets", "params", "params_text", "grid", "grid_text") if getattr(self, name)]
        if self.rerun_failed is not None and given:
            raise ValueError(
                f"`rerun_failed` takes the targets, parameters and grid of the run it reruns; leave out `{given[0]}`."
            )
        return self

    def grid_values(self) -> dict[str, list[Any]]:
        """The run's grid, the text ones read."""
        return {**self.grid, **{name: parse_grid_values(name, text) for name, text in self.grid_text.items()}}


class ScheduleRequest(ParamsRequest):
    """`POST schedules`: `cron` or `every`, one of them; `tz` defaults to the server machine's zone."""

    name: str = Field(description="a string: the schedule's name (letters, digits, '_', '-' and '.')")
    cron: str | None = Field(None, description='a string: a cron expression such as "0 17 * * *"')
    every: str | None = Field(None, description='a string: an interval such as "10m", "2h" or "1h30m"')
    tz: str | None = Field(None, description="a string: an IANA time zone such as Europe/Paris, or null")
    on_failure_command: str | None = Field(None, description="a string: a shell command run when a run fails")
    on_failure_webhook: str | None = Field(None, description="a string: an http:// or https:// URL")
    notify_on: list[str] | None = Field(
        None, description='a list of events among "failure", "success" and "deadline", or null for failures'
    )
    deadline: str | None = Field(None, description='a string: a time of day "HH:MM" in the schedule\'s zone')
    notify_email: list[str] = Field(default_factory=list, description="a list of e-mail addresses")
    grid_text: dict[str, str] = Field(
        default_factory=dict,
        description='an object of text: each firing\'s run grid, {name: "north,south"} or {name: "2026-11-01..{date}"}',
    )

    @field_validator("cron", "every", "tz", "on_failure_command", "on_failure_webhook", "deadline", mode="after")
    @classmethod
    def _blank_is_none(cls, value: str | None) -> str | None:
        return value or None

    @field_validator("name", mode="after")
    @classmethod
    def _name_given(cls, value: str) -> str:
        if not value:
            raise ValueError("`name` is required: the schedule's name.")
        return value

    @model_validator(mode="after")
    def _one_timing(self) -> ScheduleRequest:
        if (self.cron is None) == (self.every is None):
            raise ValueError('give a schedule either `cron` ("0 17 * * *") or `every` ("10m"), one of them.')
        return self


# -- the schema the TypeScript types are generated from ---------------------------------------------------------------

RESPONSES: tuple[type[BaseModel], ...] = (
    RunSummary,
    RunDetail,
    StatusReport,
    Graph,
    PipelineView,
    PipelineProblems,
    ErrorBody,
    RunStarted,
    RunCancelling,
    ExecutedNotebook,
    ReportEntry,
    SchedulesView,
    Health,
    RunDiff,
    StoreEvent,
    TaskDetail,
    FilePreview,
)
REQUESTS: tuple[type[BaseModel], ...] = (RunRequest, ScheduleRequest)
STATES: tuple[type[Enum], ...] = (TaskState, RunState, TaskStatus)


class _UntitledFields(GenerateJsonSchema):
    """pydantic's schema without a title per field, which generators would turn into one type alias per field."""

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False


def json_schema() -> dict[str, Any]:
    """One JSON schema: every shape, request body and state in `$defs`, and an object naming each of them at the
    root, so a generator emits them all."""
    _, schema = models_json_schema(
        [(model, "serialization") for model in RESPONSES] + [(model, "validation") for model in REQUESTS],
        schema_generator=_UntitledFields,
    )
    defs = schema["$defs"]
    for state in STATES:
        defs.setdefault(state.__name__, TypeAdapter(state).json_schema(schema_generator=_UntitledFields))
    names = [model.__name__ for model in (*RESPONSES, *REQUESTS, *STATES)]
    return {
        "title": "NbflowShapes",
        "description": "Every shape by name: an index for the type generator, never sent.",
        "type": "object",
        "properties": {name: {"$ref": f"#/$defs/{name}"} for name in names},
        "required": names,
        "additionalProperties": False,
        "$defs": defs,
    }


if __name__ == "__main__":
    print(json.dumps(json_schema(), indent=2))
