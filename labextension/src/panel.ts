/**
 * The nbflow side panel: the graph with live task states (a grid task one node, its instances counted, listed on
 * demand: `instances.ts`; the tasks listed, `tasklist.ts`, where the graph is too wide for the panel, and counted
 * where there are more than SIDEBAR_GRAPH_LIMIT), run / cancel, parameters, a run grid, force, the run shown in
 * detail (`rundetail.ts`; a run over a run grid as a partition of values x tasks), the run history, and the
 * schedules (`schedules.ts`). It draws what the pipeline model (`model.ts`, shared with the pipeline view) holds,
 * again at each change, and reads the schedules every few seconds while it is shown (`@lumino/polling`).
 */
import { PathExt } from '@jupyterlab/coreutils';
import { Message } from '@lumino/messaging';
import { Poll } from '@lumino/polling';
import { Widget } from '@lumino/widgets';

import { IPipeline, IRunDetail, IRunSummary, ITask, cancelRun, startRun } from './api';
import { clearErrorIn, h, keepingScroll, seconds, showErrorIn, when } from './dom';
import { IGraphActions, INodeView, drawGraph } from './graph';
import { ITaskGroup, cellKey, countsText, groupTasks, partitionOf, runOf, taskEdges } from './groups';
import { renderInstances } from './instances';
import { nodeViews } from './nodeviews';
import { fitPartition } from './partition';
import { gridSummary, renderRunDetail } from './rundetail';
import { PipelineModel } from './model';
import { ParamsForm } from './params';
import { SchedulesSection } from './schedules';
import { renderTaskList } from './tasklist';
import { badge, label, runLabel } from './states';

const SIDEBAR_GRAPH_LIMIT = 40; // tasks drawn in the panel; a larger graph is counted here and drawn in the view
const HISTORY_SHOWN = 20;
const SCHEDULES_MS = 5000;

export interface IPanelOptions {
  /** Open a notebook (a path relative to the server's root) in the editor. */
  openNotebook(path: string): void;
  /** Open the executed notebook of `task` in `run`, read-only. */
  openExecuted(run: string, task: string): void;
  /** Open the Reports view. */
  openReports(): void;
  /** Open the pipeline view in the main area. */
  openView(): void;
  /** Compare `task` in `run` with the previous run that executed it. */
  compare(run: string, task: string): void;
}

/** What the open list of instances shows: a task's, or those of one row of the shown run's partition. */
interface IExpanded {
  task: string;
  row: string | null;
  run: string | null; // the run whose partition the row is of
}

export class NbflowPanel extends Widget {
  /** `model` holds what the panel shows (the pipeline, the runs, the run shown); the pipeline view shares it. */
  constructor(
    private model: PipelineModel,
    private options: IPanelOptions
  ) {
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
    refresh.addEventListener('click', () => void this.refresh());
    const reports = h(
      'button',
      { class: 'jp-Button nbflow-open-reports', title: 'The reports the tasks write, with their earlier versions' },
      'Reports'
    );
    reports.addEventListener('click', () => this.options.openReports());
    const openView = h(
      'button',
      { class: 'jp-Button nbflow-open-view', title: 'The pipeline view: graph, timeline, runs and each task in full' },
      'Open view'
    );
    openView.addEventListener('click', () => this.options.openView());
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
    this.instancesBox = h('div', { class: 'nbflow-instances-box' });
    this.runBox = h('div', { class: 'nbflow-run' });
    this.params = new ParamsForm();
    this.paramsForm = this.params.node;
    this.historyBox = h('div', { class: 'nbflow-history' });

    const paramsSection = h('details', { class: 'nbflow-params' }, h('summary', {}, 'Parameters'), this.paramsForm);
    this.gridNames = h('datalist', { id: 'nbflow-grid-names' });
    this.gridName = h('input', {
      type: 'text',
      class: 'jp-mod-styled nbflow-grid-name',
      list: 'nbflow-grid-names',
      placeholder: 'name',
      title: 'A parameter the tasks assign (or put in a path), such as report_date'
    });
    this.gridValues = h('input', {
      type: 'text',
      class: 'jp-mod-styled nbflow-grid-values',
      placeholder: '2026-11-01..2026-11-07 or a,b,c',
      title: 'A comma list, or a range of dates (2026-11-01..2026-11-30) or whole numbers (1..10), step /7d or /2'
    });
    this.gridTitle = h('summary', {}, 'Run grid');
    for (const input of [this.gridName, this.gridValues]) {
      input.addEventListener('input', () => this.updateGridSummary());
    }
    const gridSection = h(
      'details',
      { class: 'nbflow-grid-section' },
      this.gridTitle,
      h(
        'div',
        { class: 'nbflow-hint' },
        'The next run makes every selected task that uses the name one instance per value (a backfill).'
      ),
      h('div', { class: 'nbflow-grid-fields' }, this.gridName, h('span', {}, '='), this.gridValues, this.gridNames)
    );
    const historySection = h(
      'details',
      { class: 'nbflow-history-section', open: '' },
      h('summary', {}, 'Run history'),
      this.historyBox
    );
    this.schedules = new SchedulesSection();
    this.node.append(
      h(
        'div',
        { class: 'nbflow-header' },
        h('span', { class: 'nbflow-title' }, 'nbflow'),
        h('span', { class: 'nbflow-header-buttons' }, openView, reports)
      ),
      this.projectLabel,
      h('div', { class: 'nbflow-toolbar' }, this.runAllButton, this.cancelButton, refresh, forceLabel),
      this.errorBox,
      this.problemsBox,
      this.graphBox,
      this.instancesBox,
      this.runBox,
      paramsSection,
      gridSection,
      historySection,
      this.schedules.node
    );
    this.updateButtons();
    // schedules are not pushed: read while the panel is shown
    this.schedulesPoll = new Poll({
      auto: false,
      factory: () => this.schedules.refresh(), // its errors show in its own section
      frequency: { interval: SCHEDULES_MS, backoff: false },
      standby: () => !this.isVisible || 'when-hidden',
      name: 'nbflow:panel-schedules'
    });
    model.changed.connect(this.onChanged, this);
  }

  get pipeline(): IPipeline | null {
    return this.model.pipeline;
  }

  get runs(): IRunSummary[] {
    return this.model.runs;
  }

  get shown(): IRunDetail | null {
    return this.model.shown;
  }

  /** The path (relative to the server root) of a task's notebook. */
  notebookPath(task: { notebook: string }): string {
    return this.pipeline?.root ? PathExt.join(this.pipeline.root, task.notebook) : task.notebook;
  }

  /** The task whose notebook is `path` (relative to the server root), loading the pipeline if need be. */
  async taskFor(path: string): Promise<ITask | null> {
    if (!this.pipeline) {
      await this.refresh();
    }
    const clean = PathExt.normalize(path);
    return this.pipeline?.tasks.find(t => PathExt.normalize(this.notebookPath(t)) === clean) ?? null;
  }

  /** Start a run of `targets` (null: all) and their upstream, with the form's parameters and force, over `grid` or
   * else the form's run grid. */
  async run(targets: string[] | null, grid?: { [name: string]: unknown[] }): Promise<string | null> {
    let params: { [key: string]: string };
    let gridText: { [name: string]: string };
    try {
      params = this.params.read();
      gridText = grid ? {} : this.readGrid();
    } catch (error) {
      this.showError(String((error as Error).message ?? error));
      return null;
    }
    this.runAllButton.disabled = true;
    try {
      const started = await startRun({
        targets,
        params_text: params,
        force: this.force.checked,
        grid: grid ?? {},
        grid_text: gridText
      });
      this.clearError();
      await this.model.follow(started.id);
      return started.id;
    } catch (error) {
      this.showError(error);
      return null;
    } finally {
      this.updateButtons();
    }
  }

  async cancel(): Promise<void> {
    const id = this.shown?.state === 'running' ? this.shown.id : this.model.activeId;
    if (!id) {
      this.showError('No run is going on.');
      return;
    }
    try {
      await cancelRun(id);
      this.clearError();
      await this.model.refresh();
    } catch (error) {
      this.showError(error);
    }
  }

  /** Read everything again now (the model tells the panel, which draws it). */
  async refresh(): Promise<void> {
    await Promise.all([this.model.refresh(), this.schedules.refresh()]);
  }

  isLive(): boolean {
    return this.model.isLive();
  }

  showError(error: unknown): void {
    showErrorIn(this.errorBox, error);
  }

  clearError(): void {
    clearErrorIn(this.errorBox);
  }

  // -- rendering --------------------------------------------------------------------------------------------

  private render(): void {
    if (this.model.error) {
      this.readFailed = true;
      this.showError(this.model.error);
    } else if (this.readFailed) {
      this.readFailed = false;
      this.clearError();
    }
    const pipeline = this.pipeline;
    if (!pipeline) {
      return;
    }
    const tasks = [...new Set(pipeline.tasks.map(t => t.task))];
    if (tasks.join('\n') !== this.scheduledTasks) {
      this.scheduledTasks = tasks.join('\n');
      this.schedules.setTasks(tasks);
    }
    const where = pipeline.root ? `/${pipeline.root}` : 'the server root';
    const instances = tasks.length === pipeline.tasks.length ? '' : ` (${pipeline.tasks.length} instances)`;
    this.projectLabel.textContent = `${tasks.length} task(s)${instances} in ${where}`;
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
    this.renderInstances();
    this.renderRun();
    this.params.render(this.pipeline);
    this.gridNames.replaceChildren(...this.params.names().map(name => h('option', { value: name })));
    this.renderHistory();
    this.updateButtons();
  }

  private nodeViews(groups: ITaskGroup[]): Map<string, INodeView> {
    const views = nodeViews(groups, this.pipeline!, group =>
      group.grouped
        ? 'Click to list its instances; ▶ runs every one of them with its upstream.'
        : 'Click to open the notebook; ▶ runs it with its upstream.'
    );
    this.executedRuns.clear();
    for (const group of groups) {
      const view = views.get(group.task)!;
      view.expanded = group.grouped && this.expanded?.task === group.task && this.expanded.row === null;
      const instance = group.instances[0];
      if (!group.grouped) {
        this.executedRuns.set(group.task, instance.executedRun ? [instance.executedRun, instance.executedAs] : null);
      }
    }
    return views;
  }

  private drawGraph(): void {
    const pipeline = this.pipeline;
    // grouped again with every drawing: the pipeline may have been reloaded since the last one
    this.groups = pipeline ? groupTasks(pipeline, this.shown) : [];
    if (!pipeline || !pipeline.tasks.length) {
      this.graphBox.replaceChildren();
      return;
    }
    const groups = this.groups;
    if (groups.length > SIDEBAR_GRAPH_LIMIT) {
      this.graphBox.replaceChildren(...this.summary(groups));
      return;
    }
    const width = this.graphBox.clientWidth || this.node.clientWidth || 280;
    const font = getComputedStyle(this.graphBox).fontFamily || 'sans-serif';
    const views = this.nodeViews(groups);
    const actions: IGraphActions = {
      open: name => {
        const group = groups.find(g => g.task === name);
        if (group) {
          this.options.openNotebook(this.notebookPath(group));
        }
      },
      run: name => void this.run([name]),
      openExecuted: name => {
        const executed = this.executedRuns.get(name);
        if (executed) {
          this.options.openExecuted(...executed);
        }
      },
      expand: name => this.expand(this.expanded?.task === name && this.expanded.row === null ? null : name, null)
    };
    const tasks = groups.map(g => g.task);
    const svg = drawGraph({ nodes: tasks, edges: taskEdges(pipeline) }, views, width, actions, font);
    // a graph wider than the panel even top to bottom (a wide layer of tasks) would scroll sideways: list the
    // tasks instead, and leave the graph to the pipeline view
    if (Number(svg.getAttribute('width')) > width) {
      this.graphBox.replaceChildren(renderTaskList(tasks, views, actions), this.toTheView('The graph'));
    } else {
      this.graphBox.replaceChildren(svg);
    }
  }

  /** A line saying that `what` is drawn in the pipeline view, with a button opening it. */
  private toTheView(what: string): HTMLElement {
    const open = h('button', { class: 'jp-Button nbflow-open-view-large' }, 'Open the pipeline view');
    open.addEventListener('click', () => this.options.openView());
    return h(
      'div',
      { class: 'nbflow-graph-summary' },
      h('div', { class: 'nbflow-hint' }, `${what} is drawn in the pipeline view, which pans and zooms.`),
      open
    );
  }

  /** A graph too large for the panel, in words: its tasks counted by state, and the way to the view. */
  private summary(groups: ITaskGroup[]): HTMLElement[] {
    const counts = countsText(groups.flatMap(g => g.instances));
    return [
      h('div', { class: 'nbflow-graph-count' }, `${groups.length} tasks: ${counts}.`),
      this.toTheView('A graph this large')
    ];
  }

  /** Open the list of a task's instances (of one row of the shown run's partition, with `row`); null closes it. */
  private expand(task: string | null, row: string | null): void {
    this.expanded = task ? { task, row, run: row === null ? null : (this.shown?.id ?? null) } : null;
    this.drawGraph();
    this.renderRun();
    this.renderInstances();
    const list = this.node.querySelector('.nbflow-instances');
    if (list instanceof HTMLElement && typeof list.scrollIntoView === 'function') {
      list.scrollIntoView({ block: 'nearest' });
    }
  }

  /** The open list of instances, or null: under the graph for a task's, under the partition for a row's. */
  private instancesList(): HTMLElement | null {
    const expanded = this.expanded;
    const group = expanded && this.groups.find(g => g.task === expanded.task);
    if (!expanded || !group) {
      return null;
    }
    let instances = group.instances;
    let title = group.task;
    if (expanded.row !== null) {
      const partition = this.shown && this.shown.id === expanded.run ? partitionOf(this.shown) : null;
      const row = partition?.rows.find(r => r.key === expanded.row);
      if (!partition || !row) {
        return null;
      }
      instances = partition.cells.get(cellKey(row.key, group.task)) ?? [];
      title = `${group.task} for ${row.label}`;
    }
    return renderInstances(group.task, title, instances, {
      openNotebook: () => this.options.openNotebook(this.notebookPath(group)),
      openExecuted: instance => this.options.openExecuted(instance.executedRun!, instance.executedAs),
      run: instance => {
        const { targets, grid } = runOf(instance, this.pipeline!);
        void this.run(targets, Object.keys(grid).length ? grid : undefined);
      },
      close: () => this.expand(null, null)
    });
  }

  private renderInstances(): void {
    const list = this.expanded?.row === null ? this.instancesList() : null;
    if (this.expanded && this.expanded.row === null && !list) {
      this.expanded = null; // the task is gone from the pipeline
    }
    keepingScroll(this.instancesBox, ['.nbflow-instances-scroll'], () =>
      this.instancesBox.replaceChildren(...(list ? [list] : []))
    );
  }

  private renderRun(): void {
    const run = this.shown;
    if (!run) {
      this.runBox.replaceChildren(h('div', { class: 'nbflow-empty' }, 'No run yet.'));
      return;
    }
    const expanded = this.expanded;
    const listed =
      expanded?.row !== null && expanded?.run === run.id ? { task: expanded.task, row: expanded.row } : null;
    const { nodes, partition } = renderRunDetail(run, {
      pinned: this.model.pinned,
      showLatest: () => void this.model.show(null),
      openExecuted: (id, instance) => this.options.openExecuted(id, instance),
      compare: (id, instance) => this.options.compare(id, instance),
      listed,
      list: (task, row) => this.expand(listed?.task === task && listed.row === row ? null : task, row),
      instances: listed ? this.instancesList() : null,
      everyOpen: this.everyOpen,
      toggleEvery: open => (this.everyOpen = open)
    });
    keepingScroll(this.runBox, ['.nbflow-partition-scroll', '.nbflow-instances-scroll'], () =>
      this.runBox.replaceChildren(...nodes)
    );
    fitPartition(partition);
  }

  /** The form's run grid as text, sent as `grid_text` (read on the server as `nbflow run -g NAME VALUES`). */
  private readGrid(): { [name: string]: string } {
    const [name, values] = [this.gridName.value.trim(), this.gridValues.value.trim()];
    if (!name && !values) {
      return {};
    }
    if (!name || !values) {
      throw new Error(
        `Run grid: give both a name and its values (for example report_date = 2026-11-01..2026-11-07), or neither.`
      );
    }
    return { [name]: values };
  }

  private updateGridSummary(): void {
    const [name, values] = [this.gridName.value.trim(), this.gridValues.value.trim()];
    this.gridTitle.textContent = name && values ? `Run grid: ${name} = ${values}` : 'Run grid';
  }

  private renderHistory(): void {
    if (!this.runs.length) {
      this.historyBox.replaceChildren(h('div', { class: 'nbflow-empty' }, 'No runs yet.'));
      return;
    }
    const rows = this.runs.slice(0, HISTORY_SHOWN).map(run => {
      const counts = Object.entries(run.counts)
        .map(([state, n]) => `${n} ${label(state)}`)
        .join(', ');
      const row = h(
        'div',
        {
          class: 'nbflow-history-row' + (run.id === this.shown?.id ? ' nbflow-selected' : ''),
          'data-run': run.id,
          title: `run ${run.id}: click to show it`
        },
        h(
          'div',
          {},
          badge(run.state, runLabel),
          ` ${when(run.started_at)} · ${run.trigger}` + (run.duration_s !== null ? ` · ${seconds(run.duration_s)}` : '')
        ),
        ...(Object.keys(run.grid ?? {}).length
          ? [h('div', { class: 'nbflow-counts nbflow-history-grid' }, 'grid: ' + gridSummary(run.grid))]
          : []),
        h('div', { class: 'nbflow-counts' }, counts)
      );
      row.addEventListener('click', () => void this.model.show(run.id));
      return row;
    });
    this.historyBox.replaceChildren(...rows);
  }

  private updateButtons(): void {
    this.cancelButton.disabled = !this.isLive();
    this.runAllButton.disabled = !this.pipeline || !!this.pipeline.problems.length || !this.pipeline.tasks.length;
    // runs go side by side; an instance another run holds waits for it
    this.runAllButton.title = this.isLive()
      ? 'Run every task (what is up to date is skipped); what the run going on holds waits for it'
      : 'Run every task (what is up to date is skipped)';
  }

  // -- following the model ---------------------------------------------------------------------------------

  protected onAfterAttach(msg: Message): void {
    super.onAfterAttach(msg);
    void this.schedulesPoll.start();
  }

  protected onBeforeDetach(msg: Message): void {
    void this.schedulesPoll.stop();
    super.onBeforeDetach(msg);
  }

  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    this.render();
    void this.schedulesPoll.refresh();
  }

  protected onResize(msg: Widget.ResizeMessage): void {
    super.onResize(msg);
    this.drawGraph();
    fitPartition(this.runBox.querySelector('.nbflow-partition'));
  }

  dispose(): void {
    this.schedulesPoll.dispose();
    this.model.changed.disconnect(this.onChanged, this);
    super.dispose();
  }

  /** The model changed (the server pushed a change, or the model read the server): draw it, if shown. */
  private onChanged(): void {
    if (this.isVisible && !this.isDisposed) {
      this.render();
    }
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
  private instancesBox: HTMLElement;
  private gridName: HTMLInputElement;
  private gridValues: HTMLInputElement;
  private gridNames: HTMLDataListElement;
  private gridTitle: HTMLElement;
  private groups: ITaskGroup[] = [];
  private expanded: IExpanded | null = null;
  private everyOpen = false;
  private params: ParamsForm;
  private executedRuns = new Map<string, [run: string, name: string] | null>(); // by task: its executed notebook
  private scheduledTasks = '';
  private readFailed = false;
  private schedulesPoll: Poll;
}
