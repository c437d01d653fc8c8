/**
 * The REST client of the nbflow server extension (`/nbflow/api/`). Requests go through
 * `ServerConnection.makeRequest`, which adds the token and the XSRF header.
 */
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

export interface ITaskStatus {
  name: string;
  status: 'up_to_date' | 'stale' | 'never_run' | 'failed' | string;
  reasons: string[];
  last_run: string | null;
  last_state: string | null;
  duration_s: number | null;
}

export interface ITask {
  name: string;
  notebook: string; // relative to the project root
  inputs: string[];
  outputs: string[];
  upstream: string[];
  params: { [name: string]: unknown };
  status?: ITaskStatus;
}

export interface IEdge {
  from: string;
  to: string;
  via: string[];
}

export interface IPipeline {
  tasks: ITask[];
  edges: IEdge[];
  root: string; // the project's folder, relative to the server's root ("" = the root)
  active_run: string | null;
  problems: string[];
  message?: string;
}

export interface IRunSummary {
  id: string;
  trigger: string;
  state: string;
  started_at: string;
  finished_at: string | null;
  duration_s: number | null;
  counts: { [state: string]: number };
}

export interface ITaskError {
  ename: string;
  evalue: string;
  cell_index: number | null;
  traceback: string[] | string | null;
}

export interface ITaskRun {
  name: string;
  state: string;
  started_at: string | null;
  finished_at: string | null;
  duration_s: number | null;
  attempts: number;
  error: ITaskError | null;
  output_notebook: string | null;
}

export interface IRunDetail extends Omit<IRunSummary, 'counts'> {
  params: { [name: string]: unknown };
  tasks: ITaskRun[];
}

export interface IRunRequest {
  targets?: string[] | null;
  params?: { [name: string]: unknown };
  force?: boolean;
}

export interface IExecutedNotebook {
  run: string;
  task: string;
  state: string;
  path: string;
  notebook: any;
}

/** An error answered by the API (or the network), with the message to show and the pipeline's problems. */
export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly problems: string[] = []
  ) {
    super(message);
  }
}

async function request<T>(path: string[], init: RequestInit = {}, accept: number[] = [], query = ''): Promise<T> {
  const settings = ServerConnection.makeSettings();
  const url = URLExt.join(settings.baseUrl, 'nbflow', 'api', ...path.map(encodeURIComponent)) + query;
  let response: Response;
  try {
    response = await ServerConnection.makeRequest(url, init, settings);
  } catch (error) {
    throw new ApiError(`Cannot reach the Jupyter server: ${error}`, 0);
  }
  const text = await response.text();
  let data: any = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null; // not the API's JSON (an HTML error page, a proxy): say what the status says
  }
  if (!response.ok && !accept.includes(response.status)) {
    if (response.status === 404 && !(data && data.message)) {
      throw new ApiError('The nbflow server extension is not enabled on this Jupyter server.', 404);
    }
    throw new ApiError(
      (data && data.message) || `${response.status} ${response.statusText}`,
      response.status,
      (data && data.problems) || []
    );
  }
  return data as T;
}

/** The graph with each task's status; an invalid pipeline comes back with its `problems` (HTTP 422). */
export function getPipeline(): Promise<IPipeline> {
  return request<IPipeline>(['pipeline'], {}, [422]).then(data => ({
    ...data,
    root: data.root ?? '',
    active_run: data.active_run ?? null,
    problems: data.problems ?? []
  }));
}

export function getRuns(limit = 20): Promise<IRunSummary[]> {
  return request<IRunSummary[]>(['runs'], {}, [], `?limit=${limit}`);
}

export function getRun(id: string): Promise<IRunDetail> {
  return request<IRunDetail>(['runs', id]);
}

export function startRun(body: IRunRequest): Promise<{ id: string; tasks: string[] }> {
  return request(['runs'], { method: 'POST', body: JSON.stringify(body) });
}

export function cancelRun(id: string): Promise<{ id: string; cancelling: boolean }> {
  return request(['runs', id, 'cancel'], { method: 'POST', body: '{}' });
}

export function getExecutedNotebook(run: string, task: string): Promise<IExecutedNotebook> {
  return request(['runs', run, 'tasks', task, 'notebook']);
}

/** A schedule, in the shape of `nbflow schedule list --json`; times are ISO 8601 in the schedule's zone. */
export interface ISchedule {
  name: string;
  cron: string | null;
  every: string | null; // "10m"
  tz: string;
  targets: string[]; // [] = every task
  params: { [name: string]: unknown };
  paused: boolean;
  next_fire: string | null; // null when paused
  last_fired: string | null;
  created_at: string | null;
  on_failure_command: string | null;
  on_failure_webhook: string | null;
}

/** The scheduler holding the project's lease (`here`: the one this server hosts). */
export interface ISchedulerStatus {
  owner: string;
  host: string;
  pid: number;
  expires_at: string;
  here?: boolean;
}

export interface ISchedules {
  schedules: ISchedule[];
  scheduler: ISchedulerStatus | null; // null: no scheduler runs, schedules do not fire
  hosted: boolean; // this server hosts a scheduler (c.NbflowApp.scheduler = True)
  host_setting: boolean;
  scheduler_error: string | null;
}

export interface IScheduleRequest {
  name: string;
  cron?: string | null;
  every?: string | null;
  tz?: string | null;
  targets?: string[] | null;
  params?: { [name: string]: unknown };
  on_failure_command?: string | null;
  on_failure_webhook?: string | null;
}

export function getSchedules(): Promise<ISchedules> {
  return request<ISchedules>(['schedules']);
}

export function addSchedule(body: IScheduleRequest): Promise<ISchedule> {
  return request(['schedules'], { method: 'POST', body: JSON.stringify(body) });
}

export function pauseSchedule(name: string): Promise<ISchedule> {
  return request(['schedules', name, 'pause'], { method: 'POST', body: '{}' });
}

export function resumeSchedule(name: string): Promise<ISchedule> {
  return request(['schedules', name, 'resume'], { method: 'POST', body: '{}' });
}

export function removeSchedule(name: string): Promise<void> {
  return request(['schedules', name], { method: 'DELETE' });
}
