/**
 * Generated from nbflow/shapes.py by scripts/shapes.mjs: do not edit. Regenerate with
 *   python -m nbflow.shapes | node scripts/shapes.mjs > src/shapes.generated.ts
 */

/**
 * Where a run stands.
 */
export type RunState = 'running' | 'succeeded' | 'failed' | 'cancelled' | 'interrupted' | 'skipped';
/**
 * Where a task stands within one run.
 */
export type TaskState =
  'pending' | 'waiting' | 'running' | 'succeeded' | 'failed' | 'upstream_failed' | 'skipped' | 'cancelled';
/**
 * A task judged outside any run, with the parameter values in force (`nbflow status`).
 */
export type TaskStatus = 'up_to_date' | 'stale' | 'never_run' | 'failed';
/**
 * How something differs from run A to run B.
 */
export type Change = 'added' | 'removed' | 'changed';

/**
 * Every shape by name: an index for the type generator, never sent.
 */
export interface NbflowShapes {
  RunSummary: RunSummary;
  RunDetail: RunDetail;
  StatusReport: StatusReport;
  Graph: Graph;
  PipelineView: PipelineView;
  PipelineProblems: PipelineProblems;
  ErrorBody: ErrorBody;
  RunStarted: RunStarted;
  RunCancelling: RunCancelling;
  ExecutedNotebook: ExecutedNotebook;
  ReportEntry: ReportEntry;
  SchedulesView: SchedulesView;
  Health: Health;
  RunDiff: RunDiff;
  StoreEvent: StoreEvent;
  TaskDetail: TaskDetail;
  FilePreview: FilePreview;
  RunRequest: RunRequest;
  ScheduleRequest: ScheduleRequest;
  TaskState: TaskState;
  RunState: RunState;
  TaskStatus: TaskStatus;
}
/**
 * A run in the runs list (`runs --json`, `GET runs`), newest first; `counts` are its tasks by state.
 */
export interface RunSummary {
  id: string;
  trigger: string;
  state: RunState;
  started_at: string;
  finished_at: string | null;
  duration_s: number | null;
  grid: {
    [k: string]: unknown[];
  };
  counts: {
    [k: string]: number;
  };
  params: {
    [k: string]: unknown;
  };
}
/**
 * One run with its tasks (`show --json`, `GET runs/ID`).
 */
export interface RunDetail {
  id: string;
  trigger: string;
  state: RunState;
  started_at: string;
  finished_at: string | null;
  duration_s: number | null;
  grid: {
    [k: string]: unknown[];
  };
  params: {
    [k: string]: unknown;
  };
  tasks: TaskRunEntry[];
}
/**
 * One task of one run (`show --json`, `GET runs/ID`); `output_notebook` is relative to the project root.
 */
export interface TaskRunEntry {
  name: string;
  task: string;
  grid: {
    [k: string]: unknown;
  };
  state: TaskState;
  started_at: string | null;
  finished_at: string | null;
  duration_s: number | null;
  attempts: number;
  error: TaskErrorEntry | null;
  output_notebook: string | null;
  progress: CellProgressEntry | null;
}
/**
 * Why a task did not succeed. `cell_index` counts the executed notebook's cells, the injected parameters cell
 * included; null where no cell is to blame. `source_cell` is that cell's index in the source notebook (as the user
 * sees it), `source_line` its first line.
 */
export interface TaskErrorEntry {
  ename: string;
  evalue: string;
  cell_index: number | null;
  traceback: string[];
  source_cell: number | null;
  source_line: string | null;
}
/**
 * How far an instance's notebook has got: cell `cell` of `cells` (from 1, in the executed notebook, the
 * injected parameters cell included), that cell's first line, and the last lines its cells printed.
 */
export interface CellProgressEntry {
  cell: number;
  cells: number;
  line: string;
  tail: string[];
}
/**
 * `status --json`.
 */
export interface StatusReport {
  tasks: TaskStatusEntry[];
}
/**
 * A task judged outside any run, with the parameter values in force.
 */
export interface TaskStatusEntry {
  name: string;
  task: string;
  grid: {
    [k: string]: unknown;
  };
  status: TaskStatus;
  reasons: string[];
  last_run: string | null;
  last_instance: string | null;
  last_state: TaskState | null;
  duration_s: number | null;
}
/**
 * `graph --format json`.
 */
export interface Graph {
  tasks: GraphTask[];
  edges: GraphEdge[];
}
/**
 * A task of `graph --format json`: paths relative to the project root, placeholders filled.
 */
export interface GraphTask {
  name: string;
  task: string;
  grid: {
    [k: string]: unknown;
  };
  notebook: string;
  inputs: string[];
  outputs: string[];
  upstream: string[];
  params: {
    [k: string]: unknown;
  };
}
/**
 * `via`: the input paths that link the two tasks (empty for an `upstream` edge).
 */
export interface GraphEdge {
  from: string;
  to: string;
  via: string[];
}
/**
 * `GET pipeline`: the graph with each task's status; `root` is the project's folder relative to the server's
 * root ("" = the root itself), `active_run` the id of a run going on, from the server or elsewhere.
 */
export interface PipelineView {
  tasks: PipelineTask[];
  edges: GraphEdge[];
  root: string;
  active_run: string | null;
  problems: string[];
}
export interface PipelineTask {
  name: string;
  task: string;
  grid: {
    [k: string]: unknown;
  };
  notebook: string;
  inputs: string[];
  outputs: string[];
  upstream: string[];
  params: {
    [k: string]: unknown;
  };
  status: TaskStatusEntry;
}
/**
 * `GET pipeline` of an invalid pipeline (HTTP 422): no graph, every problem.
 */
export interface PipelineProblems {
  message: string;
  problems: string[];
  tasks: PipelineTask[];
  edges: GraphEdge[];
}
/**
 * What the REST API answers when it refuses a request: a paragraph for a person, and each problem found.
 */
export interface ErrorBody {
  message: string;
  problems: string[];
}
/**
 * `POST runs`: the run goes on in the background; `tasks` are the ones it selected, in dependency order.
 */
export interface RunStarted {
  id: string;
  state: 'running';
  tasks: string[];
}
/**
 * `POST runs/ID/cancel`: the run was told to stop; `how` says by whom (this server, its scheduler, a signal).
 */
export interface RunCancelling {
  id: string;
  cancelling: boolean;
  how: string;
}
/**
 * `GET runs/ID/tasks/TASK/notebook`; `path` is relative to the server's root.
 */
export interface ExecutedNotebook {
  run: string;
  task: string;
  state: TaskState;
  path: string;
  notebook: NotebookJson;
}
/**
 * An nbformat notebook as its JSON: the cells, and whatever else the file holds, kept as it is.
 */
export interface NotebookJson {
  cells: {
    [k: string]: unknown;
  }[];
  [k: string]: unknown;
}
/**
 * A report a run wrote for a task instance (`reports --json`, `GET reports`). `path` is where the task declares
 * it, which holds the instance's latest report; `run_copy` the run's own copy, which stays; both relative to the
 * project root, each with whether the file is still there. `params` are the values the run used, `grid` the
 * instance's grid values; `latest`: no later run wrote this instance's report.
 */
export interface ReportEntry {
  name: string;
  task: string;
  grid: {
    [k: string]: unknown;
  };
  run_id: string;
  params: {
    [k: string]: unknown;
  };
  written_at: string;
  path: string;
  exists: boolean;
  run_copy: string;
  run_copy_exists: boolean;
  latest: boolean;
}
/**
 * `GET schedules`: the schedules, the scheduler that fires them (null: none runs, nothing fires), whether this
 * server hosts one (`hosted`; it may stand by while another holds the lease), its setting, and why the hosted one
 * could not start.
 */
export interface SchedulesView {
  schedules: ScheduleEntry[];
  scheduler: SchedulerLease | null;
  hosted: boolean;
  host_setting: boolean;
  scheduler_error: string | null;
}
/**
 * A schedule (`schedule list --json`, `GET schedules`); times are ISO 8601 in the schedule's zone, `targets`
 * empty for every task, `next_fire` null while paused.
 */
export interface ScheduleEntry {
  name: string;
  cron: string | null;
  every: string | null;
  tz: string;
  targets: string[];
  params: {
    [k: string]: unknown;
  };
  grid: {
    [k: string]: string;
  };
  paused: boolean;
  next_fire: string | null;
  last_fired: string | null;
  created_at: string | null;
  on_failure_command: string | null;
  on_failure_webhook: string | null;
  notify_on: string[];
  deadline: string | null;
  notify_email: string[];
}
/**
 * The scheduler that holds the project's lease; `here`: it is the one this server hosts.
 */
export interface SchedulerLease {
  owner: string;
  host: string;
  pid: number;
  expires_at: string;
  here: boolean;
}
/**
 * `GET health`: whether the store can be read (`store_error` says why not), whether a live scheduler holds the
 * project's lease (`scheduler`: which; `here`: hosted by this server), and when a scheduler holding it last ticked
 * (each tick renews the lease; the time stays after it stops): `seconds_since_tick` well past the lease's
 * 30 s means no scheduler fires.
 */
export interface Health {
  store_readable: boolean;
  store_error: string | null;
  scheduler_running: boolean;
  scheduler: SchedulerLease | null;
  last_tick: string | null;
  last_tick_owner: string | null;
  seconds_since_tick: number | null;
}
/**
 * `nbflow diff A B --json`, `GET runs/A/diff/B`: what changed for each task instance from run A to run B.
 * `tasks` lists the instances that differ (`tasks_more` not listed); `unchanged` counts the others compared.
 */
export interface RunDiff {
  a: RunSummary;
  b: RunSummary;
  selector: string | null;
  tasks: TaskDiff[];
  tasks_more: number;
  unchanged: number;
}
/**
 * One task instance that differs between the runs: its state in each (null: not in that run), the parameters
 * and input files that differ (from the fingerprint each run judged it with), and the cells of its executed
 * notebooks that differ (`cells_more` not listed); `notes` say what could not be compared and why.
 */
export interface TaskDiff {
  name: string;
  task: string;
  grid: {
    [k: string]: unknown;
  };
  change: Change;
  state_a: TaskState | null;
  state_b: TaskState | null;
  params: ParamChange[];
  code_changed: boolean;
  inputs: InputChange[];
  cells: CellDiff[];
  cells_more: number;
  notes: string[];
}
/**
 * A parameter whose value differs: `before` in run A, `after` in run B (null on the side it is absent from,
 * which `change` says); a secret is `***` on both sides.
 */
export interface ParamChange {
  name: string;
  change: Change;
  before: {
    [k: string]: unknown;
  };
  after: {
    [k: string]: unknown;
  };
}
/**
 * An input file (folder, glob) whose SHA-256 differs; null: it did not exist when that run judged the task.
 */
export interface InputChange {
  path: string;
  change: Change;
  before: string | null;
  after: string | null;
}
/**
 * A cell whose source or outputs differ, paired by nbdime. `cell_a`/`cell_b` are its indices in the source
 * notebook (the injected parameters cell not counted), null on the side it is absent from. `before`/`after` are
 * its source lines in A and B (at most a bound of them, `lines_more` the rest); `removed`/`added` the indices of
 * the lines that changed in each; `outputs` what changed in its outputs.
 */
export interface CellDiff {
  cell_a: number | null;
  cell_b: number | null;
  change: Change;
  cell_type: string;
  first_line: string;
  source_changed: boolean;
  before: string[];
  after: string[];
  removed: number[];
  added: number[];
  lines_more: number;
  outputs: OutputChange[];
}
/**
 * One output of a cell that differs. `kind`: `stdout`, `stderr`, `error` or a MIME type (`text/plain`,
 * `image/png`, `text/html`...); `before`/`after` its text (truncated), null on the side without it or for what is
 * not text, which `note` then describes ("image changed").
 */
export interface OutputChange {
  kind: string;
  change: Change;
  before: string | null;
  after: string | null;
  note: string | null;
}
/**
 * One server-sent event of `GET events`: `run` (the run's summary: it started, its counts or state changed),
 * `task` (one instance's entry: its state or progress changed), or `resync` (this stream missed events: read the
 * pipeline and the runs again). The event's name is its `type`.
 */
export interface StoreEvent {
  type: 'run' | 'task' | 'resync';
  run_id: string;
  run: RunSummary | null;
  task: TaskRunEntry | null;
}
/**
 * `GET tasks/NAME`: one task instance as the drawer shows it. `notebook` is relative to the server's root
 * (openable), `report` too (the file the task writes, null without one); `last` is its entry in the latest run
 * that had it (`last_run`), with its error and progress.
 */
export interface TaskDetail {
  name: string;
  task: string;
  grid: {
    [k: string]: unknown;
  };
  notebook: string;
  status: TaskStatusEntry;
  params: {
    [k: string]: unknown;
  };
  inputs: FileEntry[];
  outputs: FileEntry[];
  upstream: string[];
  downstream: string[];
  report: string | null;
  last_run: string | null;
  last: TaskRunEntry | null;
}
/**
 * One declared input or output of a task (`GET tasks/NAME`): `path` relative to the project root as declared
 * and filled, what it is, whether it is there, its size in bytes and when it last changed (a folder's or a
 * glob's: of all the files it holds, `files` of them, counted up to FILES_COUNTED), and what `GET files/preview`
 * can show of it (null: nothing, or it is a folder or glob: preview its files).
 */
export interface FileEntry {
  path: string;
  kind: 'file' | 'folder' | 'glob';
  exists: boolean;
  size: number | null;
  modified: string | null;
  files: number | null;
  preview: ('table' | 'image' | 'text') | null;
}
/**
 * `GET files/preview?path=PATH`: the first rows of a table (CSV, TSV, JSON, JSON lines, Parquet), an image as
 * a data URL, or the first lines of a text; `note` says what was left out (more rows, columns, a long cell).
 */
export interface FilePreview {
  path: string;
  kind: 'table' | 'image' | 'text';
  columns: string[];
  rows: string[][];
  total_rows: number | null;
  text: string | null;
  data_url: string | null;
  note: string | null;
}
/**
 * `POST runs`.
 */
export interface RunRequest {
  /**
   * a list of task names (each run with its upstream), or null for all tasks
   */
  targets?: string[] | null;
  /**
   * an object: {name: value} or {"task.name": value}
   */
  params?: {
    [k: string]: unknown;
  };
  /**
   * an object of text values: {name: "text"} or {"task.name": "text"}, each read as the command line reads it
   */
  params_text?: {
    [k: string]: string;
  };
  /**
   * true or false: run the selected tasks even if they are up to date
   */
  force?: boolean;
  /**
   * true or false: answer 409 rather than wait where another run holds a task instance
   */
  no_wait?: boolean;
  /**
   * an object: {name: [values]}, every selected task using a name run per value
   */
  grid?: {
    [k: string]: unknown[];
  };
  /**
   * an object of text: {name: "a,b,c"} or {name: "2026-11-01..2026-11-30"} (step "/7d"), read as `nbflow run -g NAME VALUES` reads it
   */
  grid_text?: {
    [k: string]: string;
  };
  /**
   * true or false: run the targets' upstream too (false: taken as done, its outputs there)
   */
  upstream?: boolean;
  /**
   * true or false: run what lies downstream of the targets too (with force and upstream false: "run from here")
   */
  downstream?: boolean;
  /**
   * a run id: run its failed and cancelled tasks again, and their downstream, with its parameters and grid, forced, their upstream taken as done (give no targets, parameters or grid with it)
   */
  rerun_failed?: string | null;
}
/**
 * `POST schedules`: `cron` or `every`, one of them; `tz` defaults to the server machine's zone.
 */
export interface ScheduleRequest {
  /**
   * a list of task names (each run with its upstream), or null for all tasks
   */
  targets?: string[] | null;
  /**
   * an object: {name: value} or {"task.name": value}
   */
  params?: {
    [k: string]: unknown;
  };
  /**
   * an object of text values: {name: "text"} or {"task.name": "text"}, each read as the command line reads it
   */
  params_text?: {
    [k: string]: string;
  };
  /**
   * a string: the schedule's name (letters, digits, '_', '-' and '.')
   */
  name: string;
  /**
   * a string: a cron expression such as "0 17 * * *"
   */
  cron?: string | null;
  /**
   * a string: an interval such as "10m", "2h" or "1h30m"
   */
  every?: string | null;
  /**
   * a string: an IANA time zone such as Europe/Paris, or null
   */
  tz?: string | null;
  /**
   * a string: a shell command run when a run fails
   */
  on_failure_command?: string | null;
  /**
   * a string: an http:// or https:// URL
   */
  on_failure_webhook?: string | null;
  /**
   * a list of events among "failure", "success" and "deadline", or null for failures
   */
  notify_on?: string[] | null;
  /**
   * a string: a time of day "HH:MM" in the schedule's zone
   */
  deadline?: string | null;
  /**
   * a list of e-mail addresses
   */
  notify_email?: string[];
  /**
   * an object of text: each firing's run grid, {name: "north,south"} or {name: "2026-11-01..{date}"}
   */
  grid_text?: {
    [k: string]: string;
  };
}
