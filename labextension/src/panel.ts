/**
 * The nbflow side panel: the graph with live task states, run / cancel, parameters, force, the run shown in
 * detail, the run history, and the schedules (`schedules.ts`). It polls the server: every second while a run is going (started here or anywhere
 * else: the CLI, a schedule, a kernel), every few seconds when idle.
 */
import { PathExt } from '@jupyterlab/coreutils';
import { Message } from '@lumino/messaging';
import { Widget } from '@lumino/widgets';

import { IPipeline, IRunDetail, IRunSummary, ITask, cancelRun, getPipeline, getRun, getRuns, startRun } from './api';
import { clearErrorIn, h, when, showErrorIn } from './dom';
import { INodeView, drawGraph } from './graph';
import { SchedulesSection } from './schedules';
import { isFinished, label, paintBadge, runLabel } from './states';

const LIVE_MS = 1000;
const IDLE_MS = 5000;
const HIDDEN_MS = 15000;

export interface IPanelOptions {
  /** Open a notebook (a path relative to the server's root) in the editor. */
  openNotebook(path: string): void;
  /** Open the executed notebook of `task` in `run`, read-only. */
  openExecuted(run: string, task: string): void;
}

interface IParamField {
  key: string; // "name" or "task.name"
  initial: unknown;
  read(): string; // the value as text (read on the server as `nbflow run -p NAME VALUE` reads it), or throws
  changed(): boolean;
}

/** Where an error happened, as the Python side words it: the cell as the user sees it in the source notebook
 * (its index and first line), else the executed notebook's cell. */
function cellNamed(error: {
  cell_index?: number | null;
  source_cell?: number | null;
  source_line?: string | null;
}): string {
  if (error.source_cell !== null && error.source_cell !== undefined) {
    return ` in cell ${error.source_cell}${error.source_line ? ` (\`${error.source_line}\`)` : ''}`;
  }
  return error.cell_index !== null && error.cell_index !== undefined ? ` in cell ${error.cell_index}` : '';
}

/** A task's state (or, with `words`, a run's) as a small coloured label. */
function badge(state: string, words = label): HTMLElement {
  const node = h('span', { class: 'nbflow-badge' }, words(state));
  paintBadge(node, state);
  return node;
}

function seconds(value: number | null | undefined): string {
  if (value === null || value === undefined) {
    return '';
  }
  return value < 60 ? `${value.toFixed(1)}s` : `${Math.floor(value / 60)}m${Math.round(value % 60)}s`;
}

function display(value: unknown): string {
  return typeof value === 'string' ? value : JSON.stringify(value);
}

export class NbflowPanel extends Widget {
  pipeline: IPipeline | null = null;
  runs: IRunSummary[] = [];
  shown: IRunDetail | null = null;

  constructor(private options: IPanelOptions) {
    super();
    this.id = 'nbflow-panel';
    this.addClass('nbflow-Panel');
    this.title.caption = 'nbflow pipeline';

    this.runAllButton = h(
      'button',
      { class: 'jp-Button nbflow-run-all', title: 'Run every task (what is up to date is skipped)' },
      'Run all'
    );
    this.runAllButton.addEventListener('click', () => void this.run(null));
    this.cancelButton = h('button', { class: 'jp-Button nbflow-cancel', title: 'Cancel the run going on' }, 'Cancel');
    this.cancelButton.addEventListener('click', () => void this.cancel());
    const refresh = h('button', { class: 'jp-Button nbflow-refresh', title: 'Refresh now' }, 'Refresh');
    refresh.addEventListener('click', () => void this.refresh(true));
    this.force = h('input', { type: 'checkbox', class: 'nbflow-force' });
    const forceLabel = h(
      'label',
      { class: 'nbflow-force-label', title: 'Rerun the selected tasks even when up to date' },
      this.force,
      'force'
    );

    this.projectLabel = h('div', { class: 'nbflow-project' }, 'nbflow');
    this.errorBox = h('div', { class: 'nbflow-error', role: 'alert' });
    this.errorBox.hidden = true;
    this.problemsBox = h('div', { class: 'nbflow-problems' });
    this.graphBox = h('div', { class: 'nbflow-graph-box' });
    this.runBox = h('div', { class: 'nbflow-run' });
    this.paramsForm = h('div', { class: 'nbflow-params-form' });
    this.historyBox = h('div', { class: 'nbflow-history' });

    const paramsSection = h('details', { class: 'nbflow-params' }, h('summary', {}, 'Parameters'), this.paramsForm);
    const historySection = h(
      'details',
      { class: 'nbflow-history-section', open: '' },
      h('summary', {}, 'Run history'),
      this.historyBox
    );
    this.schedules = new SchedulesSection();
    this.node.append(
      h('div', { class: 'nbflow-header' }, h('span', { class: 'nbflow-title' }, 'nbflow'), this.projectLabel),
      h('div', { class: 'nbflow-toolbar' }, this.runAllButton, this.cancelButton, refresh, forceLabel),
      this.errorBox,
      this.problemsBox,
      this.graphBox,
      this.runBox,
      paramsSection,
      historySection,
      this.schedules.node
    );
    this.updateButtons();
  }

  /** The path (relative to the server root) of a task's notebook. */
  notebookPath(task: ITask): string {
    return this.pipeline?.root ? PathExt.join(this.pipeline.root, task.notebook) : task.notebook;
  }

  /** The task whose notebook is `path` (relative to the server root), loading the pipeline if need be. */
  async taskFor(path: string): Promise<ITask | null> {
    if (!this.pipeline) {
      await this.refresh(true);
    }
    const clean = PathExt.normalize(path);
    return this.pipeline?.tasks.find(t => PathExt.normalize(this.notebookPath(t)) === clean) ?? null;
  }

  /** Start a run of `targets` (null: all) and their upstream, with the form's parameters and force. */
  async run(targets: string[] | null): Promise<string | null> {
    let params: { [key: string]: string };
    try {
      params = this.readParams();
    } catch (error) {
      this.showError(String((error as Error).message ?? error));
      return null;
    }
    this.runAllButton.disabled = true;
    try {
      const started = await startRun({ targets, params_text: params, force: this.force.checked });
      this.clearError();
      this.pinned = false;
      this.followed = started.id;
      this.shownId = started.id;
      await this.refresh(true);
      return started.id;
    } catch (error) {
      this.showError(error);
      return null;
    } finally {
      this.updateButtons();
    }
  }

  async cancel(): Promise<void> {
    const id = this.shown?.state === 'running' ? this.shown.id : this.activeId;
    if (!id) {
      this.showError('No run is going on.');
      return;
    }
    try {
      await cancelRun(id);
      this.clearError();
      await this.refresh(false);
    } catch (error) {
      this.showError(error);
    }
  }

  /** Fetch what changed and redraw; `full` also reloads the pipeline (the graph and each task's status). */
  async refresh(full = true): Promise<void> {
    if (this.refreshing) {
      this.again = this.again || full;
      return;
    }
    this.refreshing = true;
    try {
      const wasLive = this.isLive();
      if (full || !this.pipeline || !wasLive || this.tick % 3 === 0) {
        this.pipeline = await getPipeline();
        this.schedules.setTasks(this.pipeline.tasks.map(t => t.name));
        await this.schedules.refresh(); // its errors show in its own section
      }
      this.runs = await getRuns(20);
      // One run at a time holds the project's lock, so a run going on is the newest one.
      const active = this.runs[0]?.state === 'running' ? this.runs[0].id : null;
      this.activeId = active;
      if (active && active !== this.followed) {
        this.followed = active; // a run started anywhere: follow it
        this.pinned = false;
      }
      if (!this.pinned) {
        this.shownId = active ?? this.runs[0]?.id ?? null;
      }
      this.shown = this.shownId ? await getRun(this.shownId) : null;
      if (wasLive && !this.isLive()) {
        this.pipeline = await getPipeline(); // the run ended: statuses changed
      }
      if (this.refreshFailed) {
        this.clearError();
        this.refreshFailed = false;
      }
      this.render();
    } catch (error) {
      this.refreshFailed = true;
      this.showError(error);
    } finally {
      this.refreshing = false;
      this.tick += 1;
      if (this.again) {
        this.again = false;
        void this.refresh(true);
      }
    }
  }

  isLive(): boolean {
    return this.shown?.state === 'running' || !!this.activeId;
  }

  showError(error: unknown): void {
    showErrorIn(this.errorBox, error);
  }

  clearError(): void {
    clearErrorIn(this.errorBox);
  }

  // -- rendering --------------------------------------------------------------------------------------------

  private render(): void {
    const pipeline = this.pipeline;
    if (!pipeline) {
      return;
    }
    const where = pipeline.root ? `/${pipeline.root}` : 'the server root';
    this.projectLabel.textContent = `${pipeline.tasks.length} task(s) in ${where}`;
    if (pipeline.problems.length) {
      this.problemsBox.replaceChildren(
        h('div', { class: 'nbflow-problems-title' }, 'The pipeline has problems; fix them and it reloads:'),
        h('ul', {}, ...pipeline.problems.map(p => h('li', { class: 'nbflow-pre' }, p)))
      );
    } else if (!pipeline.tasks.length) {
      this.problemsBox.replaceChildren(
        h(
          'div',
          { class: 'nbflow-empty' },
          'No task notebooks here. A notebook is a task when its cell tagged ' +
            '`parameters` assigns `inputs`, `outputs` or `upstream`.'
        )
      );
    } else {
      this.problemsBox.replaceChildren();
    }
    this.drawGraph();
    this.renderRun();
    this.renderParams();
    this.renderHistory();
    this.updateButtons();
  }

  private nodeViews(): Map<string, INodeView> {
    const views = new Map<string, INodeView>();
    const inRun = new Map((this.shown?.tasks ?? []).map(t => [t.name, t]));
    for (const task of this.pipeline?.tasks ?? []) {
      const status = task.status;
      const reasons = status?.reasons?.length ? `\n  ${status.reasons.join('\n  ')}` : '';
      const title =
        `${task.name}: ${this.notebookPath(task)}\nstatus: ${label(status?.status ?? 'unknown')}${reasons}\n` +
        'Click to open the notebook; ▶ runs it with its upstream.';
      const ran = inRun.get(task.name);
      if (ran) {
        const executed = !!ran.output_notebook && isFinished(ran.state) && ran.state !== 'skipped';
        const took = ran.state === 'skipped' ? '' : seconds(ran.duration_s);
        views.set(task.name, {
          state: ran.state,
          detail: [label(ran.state), took].filter(Boolean).join(' · '),
          title,
          executed
        });
        this.executedRuns.set(task.name, executed ? this.shown!.id : null);
      } else {
        const state = status?.status ?? 'never_run';
        const lastRun =
          status?.last_run &&
          status.last_state &&
          !['skipped', 'pending', 'running', 'upstream_failed'].includes(status.last_state)
            ? status.last_run
            : null;
        views.set(task.name, { state, detail: label(state), title, executed: !!lastRun });
        this.executedRuns.set(task.name, lastRun);
      }
    }
    return views;
  }

  private drawGraph(): void {
    const pipeline = this.pipeline;
    if (!pipeline || !pipeline.tasks.length) {
      this.graphBox.replaceChildren();
      return;
    }
    const width = this.graphBox.clientWidth || this.node.clientWidth || 280;
    const font = getComputedStyle(this.graphBox).fontFamily || 'sans-serif';
    const svg = drawGraph(
      pipeline,
      this.nodeViews(),
      width,
      {
        open: name => {
          const task = pipeline.tasks.find(t => t.name === name);
          if (task) {
            this.options.openNotebook(this.notebookPath(task));
          }
        },
        run: name => void this.run([name]),
        openExecuted: name => {
          const run = this.executedRuns.get(name);
          if (run) {
            this.options.openExecuted(run, name);
          }
        }
      },
      font
    );
    this.graphBox.replaceChildren(svg);
  }

  private renderRun(): void {
    const run = this.shown;
    if (!run) {
      this.runBox.replaceChildren(h('div', { class: 'nbflow-empty' }, 'No run yet.'));
      return;
    }
    const head = h(
      'div',
      { class: 'nbflow-run-head', title: `run ${run.id}` },
      badge(run.state, runLabel),
      ` run ${when(run.started_at)} · ${run.trigger}${run.duration_s !== null ? ' · ' + seconds(run.duration_s) : ''}`
    );
    if (this.pinned) {
      const latest = h('a', { class: 'nbflow-link', href: '#' }, 'show the latest');
      latest.addEventListener('click', event => {
        event.preventDefault();
        this.pinned = false;
        void this.refresh(false);
      });
      head.append(' (', latest, ')');
    }
    const params = Object.entries(run.params ?? {});
    const rows = run.tasks.map(task => {
      const error = task.error ? `${task.error.ename}${cellNamed(task.error)}: ${task.error.evalue}` : '';
      const cells: (Node | string)[] = [];
      if (task.output_notebook && isFinished(task.state) && task.state !== 'skipped') {
        const open = h(
          'a',
          {
            class: 'nbflow-link nbflow-open-executed',
            href: '#',
            title: `Open the executed notebook, read-only (${task.output_notebook})`
          },
          'open'
        );
        open.addEventListener('click', event => {
          event.preventDefault();
          this.options.openExecuted(run.id, task.name);
        });
        cells.push(open);
      }
      const row = h(
        'tr',
        { 'data-task': task.name },
        h('td', { class: 'nbflow-task-name' }, task.name),
        h('td', {}, badge(task.state)),
        h(
          'td',
          {},
          task.state === 'skipped' ? '' : seconds(task.duration_s) + (task.attempts > 1 ? ` ×${task.attempts}` : '')
        ),
        h('td', {}, ...cells)
      );
      if (task.attempts > 1) {
        row.title = `${task.attempts} attempts`;
      }
      return error
        ? [
            row,
            h(
              'tr',
              { class: 'nbflow-task-error-row' },
              h('td', { class: 'nbflow-task-error nbflow-pre', colspan: '4' }, error)
            )
          ]
        : [row];
    });
    this.runBox.replaceChildren(
      head,
      ...(params.length
        ? [
            h(
              'div',
              { class: 'nbflow-run-params' },
              'params: ' + params.map(([k, v]) => `${k}=${display(v)}`).join(', ')
            )
          ]
        : []),
      h('table', { class: 'nbflow-tasks' }, h('tbody', {}, ...rows.flat()))
    );
  }

  private renderParams(): void {
    const tasks = this.pipeline?.tasks ?? [];
    const byName = new Map<string, { task: string; value: unknown }[]>();
    for (const task of tasks) {
      for (const [name, value] of Object.entries(task.params)) {
        byName.set(name, [...(byName.get(name) ?? []), { task: task.name, value }]);
      }
    }
    const rows: { key: string; value: unknown; note: string }[] = [];
    for (const [name, uses] of [...byName.entries()].sort()) {
      const same = uses.every(u => JSON.stringify(u.value) === JSON.stringify(uses[0].value));
      if (same) {
        rows.push({ key: name, value: uses[0].value, note: uses.map(u => u.task).join(', ') });
      } else {
        uses.forEach(u => rows.push({ key: `${u.task}.${name}`, value: u.value, note: u.task }));
      }
    }
    const signature = JSON.stringify(rows);
    if (signature === this.paramsSignature) {
      return;
    }
    this.paramsSignature = signature;
    this.paramFields = [];
    if (!rows.length) {
      this.paramsForm.replaceChildren(h('div', { class: 'nbflow-empty' }, 'No parameters.'));
      return;
    }
    const table = h('table', { class: 'nbflow-params-table' });
    for (const row of rows) {
      let input: HTMLInputElement;
      let field: IParamField;
      if (typeof row.value === 'boolean') {
        input = h('input', { type: 'checkbox', 'data-param': row.key });
        input.checked = row.value;
        field = {
          key: row.key,
          initial: row.value,
          read: () => (input.checked ? 'True' : 'False'),
          changed: () => input.checked !== row.value
        };
      } else {
        const initialText = display(row.value);
        input = h('input', { type: 'text', class: 'jp-mod-styled', 'data-param': row.key });
        input.value = initialText;
        field = {
          key: row.key,
          initial: row.value,
          changed: () => input.value !== initialText,
          read: () => {
            // the server parses the text; a number field only refuses what could never be a number
            if (typeof row.value === 'number' && (input.value.trim() === '' || !Number.isFinite(Number(input.value)))) {
              throw new Error(`Parameter ${row.key}: ${JSON.stringify(input.value)} is not a number.`);
            }
            return input.value;
          }
        };
      }
      this.paramFields.push(field);
      table.append(h('tr', {}, h('td', { title: `assigned by ${row.note}` }, row.key), h('td', {}, input)));
    }
    const reset = h('button', { class: 'jp-Button nbflow-params-reset' }, 'Reset to defaults');
    reset.addEventListener('click', () => {
      this.paramsSignature = '';
      this.renderParams();
    });
    this.paramsForm.replaceChildren(
      h('div', { class: 'nbflow-hint' }, 'Changed values are passed to the next run (defaults otherwise).'),
      table,
      reset
    );
  }

  private readParams(): { [key: string]: string } {
    const params: { [key: string]: string } = {};
    for (const field of this.paramFields) {
      if (field.changed()) {
        params[field.key] = field.read();
      }
    }
    return params;
  }

  private renderHistory(): void {
    if (!this.runs.length) {
      this.historyBox.replaceChildren(h('div', { class: 'nbflow-empty' }, 'No runs yet.'));
      return;
    }
    const rows = this.runs.map(run => {
      const counts = Object.entries(run.counts)
        .map(([state, n]) => `${n} ${label(state)}`)
        .join(', ');
      const row = h(
        'div',
        {
          class: 'nbflow-history-row' + (run.id === this.shownId ? ' nbflow-selected' : ''),
          'data-run': run.id,
          title: `run ${run.id}: click to show it`
        },
        h(
          'div',
          {},
          badge(run.state, runLabel),
          ` ${when(run.started_at)} · ${run.trigger}` + (run.duration_s !== null ? ` · ${seconds(run.duration_s)}` : '')
        ),
        h('div', { class: 'nbflow-counts' }, counts)
      );
      row.addEventListener('click', () => {
        this.pinned = true;
        this.shownId = run.id;
        void this.refresh(false);
      });
      return row;
    });
    this.historyBox.replaceChildren(...rows);
  }

  private updateButtons(): void {
    this.cancelButton.disabled = !this.isLive();
    this.runAllButton.disabled =
      !this.pipeline || !!this.pipeline.problems.length || !this.pipeline.tasks.length || this.isLive();
    this.runAllButton.title = this.isLive()
      ? 'A run is going on: wait for it, or cancel it'
      : 'Run every task (what is up to date is skipped)';
  }

  // -- polling ------------------------------------------------------------------------------------------------

  protected onAfterAttach(msg: Message): void {
    super.onAfterAttach(msg);
    this.schedule(0);
  }

  protected onBeforeDetach(msg: Message): void {
    window.clearTimeout(this.timer);
    this.timer = undefined;
    super.onBeforeDetach(msg);
  }

  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    this.schedule(0);
  }

  protected onResize(msg: Widget.ResizeMessage): void {
    super.onResize(msg);
    this.drawGraph();
  }

  dispose(): void {
    window.clearTimeout(this.timer);
    super.dispose();
  }

  private schedule(delay: number): void {
    window.clearTimeout(this.timer);
    this.timer = window.setTimeout(async () => {
      await this.refresh(false);
      if (!this.isDisposed && this.isAttached) {
        this.schedule(!this.isVisible ? HIDDEN_MS : this.isLive() ? LIVE_MS : IDLE_MS);
      }
    }, delay);
  }

  private runAllButton: HTMLButtonElement;
  private cancelButton: HTMLButtonElement;
  private force: HTMLInputElement;
  private projectLabel: HTMLElement;
  private errorBox: HTMLElement;
  private problemsBox: HTMLElement;
  private graphBox: HTMLElement;
  private runBox: HTMLElement;
  private paramsForm: HTMLElement;
  private historyBox: HTMLElement;
  private schedules: SchedulesSection;
  private paramFields: IParamField[] = [];
  private paramsSignature = '';
  private executedRuns = new Map<string, string | null>();
  private shownId: string | null = null;
  private followed: string | null = null;
  private activeId: string | null = null;
  private pinned = false;
  private refreshing = false;
  private refreshFailed = false;
  private again = false;
  private tick = 0;
  private timer: number | undefined;
}
