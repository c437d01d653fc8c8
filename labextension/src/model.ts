/**
 * What the pipeline view shows, kept up to date: the pipeline (graph and statuses), the recent runs, and the run
 * shown in detail (the one going on, else the latest, or the one the user chose). The server pushes each change of
 * a run and of its tasks (`GET events`, server-sent events), which is applied here as it comes; a poll
 * (`@lumino/polling`) reads everything again, often when the push channel is down, rarely when it is up (a missed
 * event is healed), and conditional requests keep an unchanged answer from being sent again.
 */
import { IDisposable } from '@lumino/disposable';
import { Poll } from '@lumino/polling';
import { ISignal, Signal } from '@lumino/signaling';

import {
  IPipeline,
  IRunDetail,
  IRunSummary,
  IStoreEvent,
  ITaskRun,
  eventsUrl,
  getPipeline,
  getRun,
  getRuns
} from './api';

const RUNS_KEPT = 50;
const PUSHED_MS = 30000; // with the push channel up, everything is read again this often
const LIVE_MS = 1000; // without it, while a run goes on
const IDLE_MS = 5000;

export class PipelineModel implements IDisposable {
  pipeline: IPipeline | null = null;
  runs: IRunSummary[] = [];
  shown: IRunDetail | null = null;
  /** The user chose the shown run: a new run does not replace it. */
  pinned = false;
  /** The last error reading the server, null once a read succeeds again. */
  error: unknown = null;
  /** The push channel is open. */
  pushed = false;

  constructor() {
    this.poll = new Poll({
      factory: () => this.refresh(),
      frequency: { interval: IDLE_MS, backoff: true, max: 60000 },
      standby: 'when-hidden',
      name: 'nbflow:pipeline'
    });
    this.connect();
  }

  get changed(): ISignal<this, void> {
    return this._changed;
  }

  get isDisposed(): boolean {
    return this._disposed;
  }

  /** The run going on (the newest one), if any. */
  get activeId(): string | null {
    return this.runs.find(r => r.state === 'running')?.id ?? null;
  }

  isLive(): boolean {
    return this.shown?.state === 'running' || !!this.activeId;
  }

  /** Show the run `id` (pinned: it stays shown), or with null the run going on or the latest again. */
  async show(id: string | null): Promise<void> {
    this.pinned = id !== null;
    this.shownId = id ?? this.activeId ?? this.runs[0]?.id ?? null;
    await this.readShown();
    this.emit();
  }

  /** Follow the run `id` just started here. */
  async follow(id: string): Promise<void> {
    this.pinned = false;
    this.shownId = id;
    await this.refresh();
  }

  /** Read everything again now. */
  async refresh(): Promise<void> {
    try {
      const [pipeline, runs] = await Promise.all([getPipeline(), getRuns(RUNS_KEPT)]);
      this.pipeline = pipeline;
      this.runs = runs;
      if (!this.pinned) {
        // the run going on, else the latest: a run that started and ended between two pushed looks (everything
        // up to date) is shown too, not the one shown before it
        this.shownId = this.activeId ?? runs[0]?.id ?? null;
      }
      await this.readShown();
      this.error = null;
    } catch (error) {
      this.error = error;
    }
    this.schedule();
    this.emit();
  }

  dispose(): void {
    if (this._disposed) {
      return;
    }
    this._disposed = true;
    this.source?.close();
    window.clearTimeout(this.reconnect);
    this.poll.dispose();
    Signal.clearData(this);
  }

  // -- the push channel --------------------------------------------------------------------------------------

  private connect(): void {
    if (this._disposed || typeof EventSource === 'undefined') {
      return;
    }
    const source = new EventSource(eventsUrl(), { withCredentials: true });
    this.source = source;
    source.onopen = () => {
      this.pushed = true;
      this.schedule();
      void this.refresh(); // what happened while it was down
    };
    source.onerror = () => {
      // the browser retries by itself while the server is there; a closed stream (403, server gone) does not
      this.pushed = false;
      this.schedule();
      this.emit();
      if (source.readyState === EventSource.CLOSED) {
        this.reconnect = window.setTimeout(() => this.connect(), IDLE_MS);
      }
    };
    for (const type of ['run', 'task', 'resync']) {
      source.addEventListener(type, event => this.apply(JSON.parse((event as MessageEvent).data) as IStoreEvent));
    }
  }

  private apply(event: IStoreEvent): void {
    if (event.type === 'resync') {
      void this.refresh();
      return;
    }
    if (event.type === 'run' && event.run) {
      const run = event.run;
      const at = this.runs.findIndex(r => r.id === run.id);
      const before = at >= 0 ? this.runs[at] : null;
      if (before) {
        this.runs[at] = run;
      } else {
        this.runs = [run, ...this.runs].slice(0, RUNS_KEPT);
      }
      if (!before && !this.pinned) {
        // a run started anywhere (or started and ended between two pushed looks): shown, the list and the run's
        // tasks drawn together once its tasks are read (the list alone would sit above the run shown before)
        this.shownId = run.id;
        if (run.state === 'running') {
          void this.readShown().then(() => this.emit());
        } else {
          void this.refresh(); // it ended: the statuses changed, and refresh reads the run with them
        }
        return;
      }
      if (this.shown?.id === run.id) {
        Object.assign(this.shown, {
          state: run.state,
          finished_at: run.finished_at,
          duration_s: run.duration_s
        });
      }
      if (run.state !== 'running' && (!before || before.state === 'running')) {
        void this.refresh(); // it ended: the statuses changed
      }
    } else if (event.type === 'task' && event.task && this.shown?.id === event.run_id) {
      this.upsert(this.shown, event.task);
    }
    this.emit();
  }

  private upsert(run: IRunDetail, task: ITaskRun): void {
    const at = run.tasks.findIndex(t => t.name === task.name);
    if (at >= 0) {
      run.tasks[at] = task;
    } else {
      run.tasks.push(task);
    }
  }

  // -- reading -------------------------------------------------------------------------------------------------

  private async readShown(): Promise<void> {
    const id = this.shownId;
    const run = id ? await getRun(id) : null;
    if (this.shownId === id) {
      this.shown = run; // not a slower answer about a run no longer shown
    }
  }

  private schedule(): void {
    const interval = this.pushed ? PUSHED_MS : this.isLive() ? LIVE_MS : IDLE_MS;
    if (this.poll.frequency.interval !== interval) {
      this.poll.frequency = { ...this.poll.frequency, interval };
    }
  }

  /** Tell the views, once per frame however many events came. */
  private emit(): void {
    if (this.frame !== undefined || this._disposed) {
      return;
    }
    this.frame = window.requestAnimationFrame(() => {
      this.frame = undefined;
      this._changed.emit();
    });
  }

  private _changed = new Signal<this, void>(this);
  private _disposed = false;
  private poll: Poll;
  private source: EventSource | null = null;
  private reconnect: number | undefined;
  private shownId: string | null = null;
  private frame: number | undefined;
}
