/**
 * The REST client of the nbflow server extension (`/nbflow/api/`). Requests go through
 * `ServerConnection.makeRequest`, which adds the token and the XSRF header. The shapes of requests and answers are
 * generated from the server's models (`shapes.generated.ts`); the names below are the ones the extension uses.
 */
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

import {
  CellDiff,
  ErrorBody,
  ExecutedNotebook,
  FileEntry,
  FilePreview,
  GraphEdge,
  PipelineProblems,
  PipelineTask,
  PipelineView,
  OutputChange,
  ReportEntry,
  RunCancelling,
  RunDetail,
  RunDiff,
  RunRequest,
  RunStarted,
  RunSummary,
  ScheduleEntry,
  ScheduleRequest,
  SchedulerLease,
  SchedulesView,
  StoreEvent,
  TaskDetail,
  TaskDiff,
  TaskErrorEntry,
  TaskRunEntry,
  TaskStatusEntry
} from './shapes.generated';

export type ITaskStatus = TaskStatusEntry;
export type ITask = PipelineTask;
export type IEdge = GraphEdge;
/** The graph with each task's status; an invalid pipeline has no tasks, its `problems` and a `message`. */
export type IPipeline = PipelineView & { message?: string };
export type IRunSummary = RunSummary;
export type ITaskError = TaskErrorEntry;
export type ITaskRun = TaskRunEntry;
export type IRunDetail = RunDetail;
export type IRunRequest = RunRequest;
export type IExecutedNotebook = ExecutedNotebook;
/** Two runs compared (`nbflow diff --json`): each instance that differs, its cells and outputs. */
export type IRunDiff = RunDiff;
export type ITaskDiff = TaskDiff;
export type ICellDiff = CellDiff;
export type IOutputChange = OutputChange;
/** A schedule, in the shape of `nbflow schedule list --json`; times are ISO 8601 in the schedule's zone. */
export type ISchedule = ScheduleEntry;
/** The scheduler holding the project's lease (`here`: the one this server hosts). */
export type ISchedulerStatus = SchedulerLease;
export type ISchedules = SchedulesView;
export type IScheduleRequest = ScheduleRequest;
/** A report a run wrote for a task instance. */
export type IReport = ReportEntry;
/** One task instance as the pipeline view's drawer shows it, with its files. */
export type ITaskDetail = TaskDetail;
export type IFileEntry = FileEntry;
export type IFilePreview = FilePreview;
/** What `GET events` pushes: a run's summary, one instance's entry, or `resync`. */
export type IStoreEvent = StoreEvent;

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

// The last answer to each GET, by URL, with its ETag: asked again, the server answers 304 when nothing changed.
const answered = new Map<string, { etag: string; status: number; text: string }>();
const ANSWERS_KEPT = 50;

async function request<T>(path: string[], init: RequestInit = {}, accept: number[] = [], query = ''): Promise<T> {
  const settings = ServerConnection.makeSettings();
  const url = URLExt.join(settings.baseUrl, 'nbflow', 'api', ...path.map(encodeURIComponent)) + query;
  const reading = !init.method || init.method === 'GET';
  const kept = reading ? answered.get(url) : undefined;
  if (kept) {
    init = { ...init, headers: { ...(init.headers as Record<string, string>), 'If-None-Match': kept.etag } };
  }
  let response: Response;
  try {
    response = await ServerConnection.makeRequest(url, init, settings);
  } catch (error) {
    throw new ApiError(`Cannot reach the Jupyter server: ${error}`, 0);
  }
  let text: string;
  let status = response.status;
  if (status === 304 && kept) {
    text = kept.text;
    status = kept.status;
  } else {
    text = await response.text();
    const etag = response.headers.get('ETag');
    if (reading && etag && response.ok) {
      answered.delete(url);
      answered.set(url, { etag, status, text });
      if (answered.size > ANSWERS_KEPT) {
        answered.delete(answered.keys().next().value as string);
      }
    }
  }
  const ok = status >= 200 && status < 300;
  let data: unknown;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null; // not the API's JSON (an HTML error page, a proxy): say what the status says
  }
  if (!ok && !accept.includes(status)) {
    const error = data as Partial<ErrorBody> | null;
    if (status === 404 && !error?.message) {
      throw new ApiError('The nbflow server extension is not enabled on this Jupyter server.', 404);
    }
    throw new ApiError(error?.message || `${status} ${response.statusText}`, status, error?.problems || []);
  }
  return data as T;
}

/** The graph with each task's status; an invalid pipeline comes back with its `problems` (HTTP 422). */
export function getPipeline(): Promise<IPipeline> {
  return request<PipelineView | PipelineProblems>(['pipeline'], {}, [422]).then(data =>
    'message' in data ? { ...data, root: '', active_run: null } : data
  );
}

export function getRuns(limit = 20): Promise<IRunSummary[]> {
  return request<RunSummary[]>(['runs'], {}, [], `?limit=${limit}`);
}

export function getRun(id: string): Promise<IRunDetail> {
  return request<RunDetail>(['runs', id]);
}

export function startRun(body: IRunRequest): Promise<RunStarted> {
  return request(['runs'], { method: 'POST', body: JSON.stringify(body) });
}

export function getTask(name: string): Promise<ITaskDetail> {
  return request(['tasks', ...name.split('/')]);
}

/** The first rows of a table, an image or a text a task declares (`path` relative to the project root). */
export function getPreview(path: string): Promise<IFilePreview> {
  return request(['files', 'preview'], {}, [], `?path=${encodeURIComponent(path)}`);
}

/** Where the server pushes run and task events (`EventSource`; the token, if any, in the query). */
export function eventsUrl(): string {
  const settings = ServerConnection.makeSettings();
  const url = URLExt.join(settings.baseUrl, 'nbflow', 'api', 'events');
  return settings.token ? `${url}?token=${encodeURIComponent(settings.token)}` : url;
}

export function cancelRun(id: string): Promise<RunCancelling> {
  return request(['runs', id, 'cancel'], { method: 'POST', body: '{}' });
}

export function getExecutedNotebook(run: string, task: string): Promise<IExecutedNotebook> {
  return request(['runs', run, 'tasks', task, 'notebook']);
}

/** An instance of a run compared with the previous run that executed it. */
export function getTaskDiff(run: string, task: string): Promise<IRunDiff> {
  return request(['runs', run, 'tasks', task, 'diff']);
}

export function getSchedules(): Promise<ISchedules> {
  return request<SchedulesView>(['schedules']);
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

/** The latest report of each instance; with `every`, each version the runs kept; `task`: one task or instance. */
export function getReports(options: { every?: boolean; task?: string } = {}): Promise<IReport[]> {
  const query = new URLSearchParams();
  if (options.every) {
    query.set('all', 'true');
  }
  if (options.task) {
    query.set('task', options.task);
  }
  const text = query.toString();
  return request<IReport[]>(['reports'], {}, [], text ? `?${text}` : '');
}

/** Where the server answers the report `run` wrote for `instance`, as that run kept it (a page of its own). */
export function reportUrl(run: string, instance: string): string {
  const settings = ServerConnection.makeSettings();
  return URLExt.join(
    settings.baseUrl,
    'nbflow',
    'api',
    'reports',
    encodeURIComponent(run),
    encodeURIComponent(instance)
  );
}
