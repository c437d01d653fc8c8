/**
 * The pipeline view, in JupyterLab's main area: the graph (left to right, pan and zoom, a legend, edges labelled
 * with their files, a grid task one node with its instances counted), the shown run's timeline, and the run
 * history with a page per run; a drawer at the right shows the selected task. Everything follows the model
 * (`model.ts`), which the server's pushed events keep current, so states and cell progress change as they happen.
 */
import { Message } from '@lumino/messaging';
import { Poll } from '@lumino/polling';
import { Widget } from '@lumino/widgets';

import { IRunRequest, ITaskDetail, cancelRun, getPreview, getTask, startRun } from './api';
import { clearErrorIn, h, seconds, showErrorIn } from './dom';
import { IDrawerActions, IPreviewState, renderGroupDrawer, renderTaskDrawer } from './drawer';
import { INodeView, drawGraph } from './graph';
import { ITaskGroup, groupTasks, taskEdges } from './groups';
import { nodeViews } from './nodeviews';
import { PipelineModel } from './model';
import { ParamsForm } from './params';
import { IRunsActions, IRunsFilter, renderRunPage, renderRunsTable } from './runstable';
import { badge, runLabel } from './states';
import { renderTimeline } from './timeline';
import { PanZoom } from './zoom';

export interface IPipelineViewOptions {
  openNotebook(path: string): void; // relative to the server's root
  openExecuted(run: string, instance: string): void;
  openReport(run: string, instance: string): void;
  compare(run: string, instance: string): void;
}

type Tab = 'graph' | 'timeline' | 'runs';

const LEGEND = [
  'never_run',
  'stale',
  'up_to_date',
  'pending',
  'waiting',
  'running',
  'succeeded',
  'skipped',
  'failed',
  'upstream_failed',
  'cancelled'
];

export class PipelineView extends Widget {
  constructor(
    readonly model: PipelineModel,
    private options: IPipelineViewOptions
  ) {
    super();
    this.addClass('nbflow-View');
    this.title.label = 'Pipeline';
    this.title.caption = 'nbflow: the pipeline, its runs and their timeline';

    const runAll = h(
      'button',
      { class: 'jp-Button nbflow-run-all', title: 'Run every task (what is up to date is skipped)' },
      'Run all'
    );
    runAll.addEventListener('click', () => void this.run({ targets: null }));
    const cancel = h('button', { class: 'jp-Button nbflow-cancel', title: 'Cancel the run going on' }, 'Cancel');
    cancel.addEventListener('click', () => void this.cancel());
    this.force = h('input', { type: 'checkbox', class: 'nbflow-force' });
    this.runAll = runAll;
    this.cancelButton = cancel;
    this.projectLabel = h('span', { class: 'nbflow-project' });
    this.liveLabel = h('span', { class: 'nbflow-live' });
    this.errorBox = h('div', { class: 'nbflow-error', role: 'alert' });
    this.errorBox.hidden = true;
    this.problemsBox = h('div', { class: 'nbflow-problems' });
    this.params = new ParamsForm();
    const paramsSection = h(
      'details',
      { class: 'nbflow-params nbflow-view-params' },
      h('summary', {}, 'Parameters'),
      this.params.node
    );

    this.tabs = new Map(
      (['graph', 'timeline', 'runs'] as Tab[]).map(tab => {
        const text = { graph: 'Graph', timeline: 'Timeline', runs: 'Runs' }[tab];
        const node = h('button', { class: 'nbflow-tab', 'data-tab': tab, role: 'tab' }, text);
        node.addEventListener('click', () => this.showTab(tab));
        return [tab, node];
      })
    );
    this.shownLabel = h('span', { class: 'nbflow-shown-run' });

    this.graphBox = h('div', { class: 'nbflow-graph-viewport' });
    this.zoom = new PanZoom(this.graphBox);
    const tool = (text: string, title: string, act: () => void) => {
      const node = h('button', { class: 'jp-Button nbflow-zoom', title }, text);
      node.addEventListener('click', act);
      return node;
    };
    const tools = h(
      'div',
      { class: 'nbflow-graph-tools' },
      tool('−', 'Zoom out', () => this.zoom.zoomBy(1 / 1.25)),
      tool('+', 'Zoom in', () => this.zoom.zoomBy(1.25)),
      tool('Fit', 'The whole graph', () => this.zoom.fit())
    );
    const legend = h(
      'div',
      { class: 'nbflow-legend' },
      ...LEGEND.map(state => h('span', { class: 'nbflow-legend-item' }, badge(state)))
    );
    this.graphPane = h('div', { class: 'nbflow-graph-pane' }, this.graphBox, tools, legend);
    this.timelinePane = h('div', { class: 'nbflow-timeline-pane' });
    this.runsPane = h('div', { class: 'nbflow-runs-pane' });
    this.drawer = h('aside', { class: 'nbflow-drawer' });
    this.drawer.hidden = true;

    this.node.append(
      h(
        'div',
        { class: 'nbflow-view-header' },
        h('span', { class: 'nbflow-title' }, 'nbflow'),
        this.projectLabel,
        h('span', { class: 'nbflow-spacer' }),
        runAll,
        cancel,
        h(
          'label',
          { class: 'nbflow-force-label', title: 'Rerun the selected tasks even when up to date' },
          this.force,
          'force'
        ),
        this.liveLabel
      ),
      this.errorBox,
      this.problemsBox,
      paramsSection,
      h('div', { class: 'nbflow-tabs', role: 'tablist' }, ...this.tabs.values(), this.shownLabel),
      h(
        'div',
        { class: 'nbflow-view-body' },
        h('div', { class: 'nbflow-view-main' }, this.graphPane, this.timelinePane, this.runsPane),
        this.drawer
      )
    );
    this.showTab('graph');
    model.changed.connect(this.render, this);
    // while a run goes on, its tasks' elapsed times and the timeline's bars grow between the pushed changes
    this.clock = new Poll({
      factory: async () => {
        if (this.model.isLive()) {
          this.render();
        }
      },
      frequency: { interval: 1000, backoff: false },
      standby: 'when-hidden',
      name: 'nbflow:view-clock'
    });
  }

  /** Select an instance or a task (its drawer opens), or nothing. */
  select(name: string | null): void {
    this.selected = name;
    this.detail = null;
    this.preview = null;
    this.render();
    const group = name ? this.groupOf(name) : undefined;
    if (name && !(group?.grouped && group.task === name)) {
      void this.readDetail(name); // an instance (a grouped task's drawer lists its instances instead)
    }
  }

  showTab(tab: Tab): void {
    this.tab = tab;
    for (const [name, node] of this.tabs) {
      node.classList.toggle('nbflow-tab-active', name === tab);
      node.setAttribute('aria-selected', String(name === tab));
    }
    this.graphPane.hidden = tab !== 'graph';
    this.timelinePane.hidden = tab !== 'timeline';
    this.runsPane.hidden = tab !== 'runs';
    this.render();
  }

  async run(request: Partial<IRunRequest>): Promise<string | null> {
    let params: { [key: string]: string } = {};
    if (!request.rerun_failed) {
      try {
        params = this.params.read();
      } catch (error) {
        this.showError(error);
        return null;
      }
    }
    try {
      const body: IRunRequest = request.rerun_failed
        ? { rerun_failed: request.rerun_failed }
        : { targets: null, params_text: params, force: this.force.checked, ...request };
      const started = await startRun(body);
      clearErrorIn(this.errorBox);
      await this.model.follow(started.id);
      return started.id;
    } catch (error) {
      this.showError(error);
      return null;
    }
  }

  async cancel(run?: string): Promise<void> {
    const id = run ?? (this.model.shown?.state === 'running' ? this.model.shown.id : this.model.activeId);
    if (!id) {
      this.showError('No run is going on.');
      return;
    }
    try {
      await cancelRun(id);
      clearErrorIn(this.errorBox);
    } catch (error) {
      this.showError(error);
    }
  }

  showError(error: unknown): void {
    showErrorIn(this.errorBox, error);
  }

  dispose(): void {
    this.model.changed.disconnect(this.render, this);
    this.clock.dispose();
    super.dispose();
  }

  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    this.render();
  }

  protected onResize(msg: Widget.ResizeMessage): void {
    super.onResize(msg);
    this.render();
  }

  // -- rendering --------------------------------------------------------------------------------------------

  private render(): void {
    if (!this.isVisible) {
      return;
    }
    const { pipeline, shown } = this.model;
    if (this.model.error) {
      this.showError(this.model.error);
    }
    if (!pipeline) {
      return;
    }
    const tasks = new Set(pipeline.tasks.map(t => t.task)).size;
    const instances = tasks === pipeline.tasks.length ? '' : ` (${pipeline.tasks.length} instances)`;
    this.projectLabel.textContent = `${tasks} task(s)${instances} in ${pipeline.root ? `/${pipeline.root}` : 'the server root'}`;
    this.liveLabel.textContent = this.model.pushed ? '● live' : '○ polling';
    this.liveLabel.title = this.model.pushed
      ? 'The server pushes each change as it happens'
      : 'The server cannot push changes now: read every few seconds';
    this.problemsBox.replaceChildren(
      ...(pipeline.problems.length
        ? [
            h('div', { class: 'nbflow-problems-title' }, 'The pipeline has problems; fix them and it reloads:'),
            h('ul', {}, ...pipeline.problems.map(p => h('li', { class: 'nbflow-pre' }, p)))
          ]
        : [])
    );
    this.params.render(pipeline);
    this.runAll.disabled = !!pipeline.problems.length || !pipeline.tasks.length;
    this.cancelButton.disabled = !this.model.isLive();
    this.shownLabel.replaceChildren(...this.shownRunLabel());
    this.groups = groupTasks(pipeline, shown);
    if (this.tab === 'graph') {
      this.renderGraph();
    } else if (this.tab === 'timeline') {
      this.timelinePane.replaceChildren(renderTimeline(shown, this.selected, { select: name => this.select(name) }));
    } else {
      this.renderRuns();
    }
    this.renderDrawer();
  }

  private shownRunLabel(): (Node | string)[] {
    const run = this.model.shown;
    if (!run) {
      return ['No run yet'];
    }
    const parts: (Node | string)[] = [
      'Showing run ',
      h('code', {}, run.id),
      ' ',
      badge(run.state, runLabel),
      run.duration_s !== null ? ` ${seconds(run.duration_s)}` : ''
    ];
    if (this.model.pinned) {
      const latest = h('button', { class: 'jp-Button nbflow-show-latest' }, 'Show latest');
      latest.addEventListener('click', () => void this.model.show(null));
      parts.push(' ', latest);
    }
    return parts;
  }

  private nodeViews(): Map<string, INodeView> {
    const views = nodeViews(this.groups, this.model.pipeline!, group =>
      group.grouped ? 'Click to list them.' : 'Click for its details.'
    );
    for (const group of this.groups) {
      const view = views.get(group.task)!;
      view.expanded = group.grouped && this.selected === group.task;
      view.selected = this.selected === group.task || group.instances.some(i => i.name === this.selected);
    }
    return views;
  }

  private renderGraph(): void {
    const pipeline = this.model.pipeline!;
    if (!pipeline.tasks.length) {
      this.graphBox.replaceChildren(
        h(
          'div',
          { class: 'nbflow-empty' },
          'No task notebooks here. A notebook is a task when its cell tagged `parameters` assigns `inputs`, ' +
            '`outputs` or `upstream`.'
        )
      );
      return;
    }
    const nodes = this.groups.map(g => g.task);
    const edges = taskEdges(pipeline);
    const font = getComputedStyle(this.node).fontFamily || 'sans-serif';
    const svg = drawGraph(
      { nodes, edges },
      this.nodeViews(),
      this.graphBox.clientWidth || 1000,
      {
        open: name => this.select(name),
        run: name => void this.run({ targets: [name] }),
        openExecuted: name => {
          const instance = this.groupOf(name)?.instances[0];
          if (instance?.executedRun) {
            this.options.openExecuted(instance.executedRun, instance.executedAs);
          }
        },
        expand: name => this.select(this.selected === name ? null : name)
      },
      font,
      { leftToRight: true, edgeLabels: true }
    );
    const box = svg.viewBox.baseVal;
    this.zoom.show(svg, box.width, box.height, JSON.stringify([nodes, edges.map(e => [e.from, e.to])]));
  }

  private renderRuns(): void {
    const actions: IRunsActions = {
      open: id => {
        this.runPage = id;
        void this.model.show(id);
      },
      back: () => {
        this.runPage = null;
        this.render();
      },
      showInGraph: id => {
        void this.model.show(id);
        this.showTab('graph');
      },
      rerunFailed: id => void this.run({ rerun_failed: id }),
      cancel: id => void this.cancel(id),
      openExecuted: (run, instance) => this.options.openExecuted(run, instance),
      compare: (run, instance) => this.options.compare(run, instance),
      select: name => this.select(name)
    };
    const shown = this.model.shown;
    if (this.runPage && shown?.id === this.runPage) {
      this.runsPane.replaceChildren(renderRunPage(shown, actions));
      return;
    }
    const filter = this.filter;
    const focused = document.activeElement?.classList.contains('nbflow-runs-filter');
    this.runsPane.replaceChildren(
      renderRunsTable(
        this.model.runs,
        filter,
        next => {
          this.filter = next;
          this.renderRuns();
        },
        actions
      )
    );
    if (focused) {
      const input = this.runsPane.querySelector<HTMLInputElement>('.nbflow-runs-filter');
      input?.focus();
      input?.setSelectionRange(input.value.length, input.value.length);
    }
  }

  private groupOf(name: string): ITaskGroup | undefined {
    return this.groups.find(g => g.task === name || g.instances.some(i => i.name === name));
  }

  private drawerActions(): IDrawerActions {
    return {
      close: () => this.select(null),
      select: name => this.select(name),
      run: (targets, options = {}) =>
        void this.run({
          targets,
          downstream: options.downstream ?? false,
          upstream: options.upstream ?? true,
          ...(options.force ? { force: true } : {})
        }),
      rerunFailed: run => void this.run({ rerun_failed: run }),
      openNotebook: path => this.options.openNotebook(path), // GET tasks/NAME gives it relative to the root
      openExecuted: (run, instance) => this.options.openExecuted(run, instance),
      openReport: (run, instance) => this.options.openReport(run, instance),
      compare: (run, instance) => this.options.compare(run, instance),
      preview: path => void this.togglePreview(path)
    };
  }

  private renderDrawer(): void {
    const name = this.selected;
    const group = name ? this.groupOf(name) : undefined;
    if (!name || !group) {
      this.drawer.hidden = true;
      this.drawer.replaceChildren();
      return;
    }
    this.drawer.hidden = false;
    const scroll = this.drawer.scrollTop;
    if (group.grouped && group.task === name) {
      this.drawer.replaceChildren(renderGroupDrawer(group, this.drawerActions()));
    } else {
      const entry = this.model.shown?.tasks.find(t => t.name === name) ?? null;
      // the drawer's facts (status, files) are read again when the instance's state changes
      const signature = `${name} ${entry?.state ?? ''} ${this.model.pipeline?.tasks.find(t => t.name === name)?.status.status ?? ''}`;
      if (this.detail && this.detailSignature !== signature && !this.reading) {
        void this.readDetail(name, signature);
      }
      this.drawer.replaceChildren(
        this.detail && this.detail.name === name
          ? renderTaskDrawer(this.detail, entry, this.model.shown, this.preview, this.drawerActions())
          : h('div', { class: 'nbflow-empty' }, `Reading ${name}…`)
      );
    }
    this.drawer.scrollTop = scroll;
  }

  private async readDetail(name: string, signature?: string): Promise<void> {
    this.reading = true;
    try {
      const detail: ITaskDetail = await getTask(name);
      if (this.selected === name) {
        this.detail = detail;
        const entry = this.model.shown?.tasks.find(t => t.name === name) ?? null;
        this.detailSignature =
          signature ??
          `${name} ${entry?.state ?? ''} ${this.model.pipeline?.tasks.find(t => t.name === name)?.status.status ?? ''}`;
      }
    } catch (error) {
      this.showError(error);
    } finally {
      this.reading = false;
    }
    this.render();
  }

  private async togglePreview(path: string): Promise<void> {
    if (this.preview?.path === path) {
      this.preview = null;
      this.render();
      return;
    }
    this.preview = { path, preview: null, error: null };
    this.render();
    try {
      const preview = await getPreview(path);
      if (this.preview?.path === path) {
        this.preview = { path, preview, error: null };
      }
    } catch (error) {
      if (this.preview?.path === path) {
        this.preview = { path, preview: null, error: (error as Error).message ?? String(error) };
      }
    }
    this.render();
  }

  private force: HTMLInputElement;
  private runAll: HTMLButtonElement;
  private cancelButton: HTMLButtonElement;
  private projectLabel: HTMLElement;
  private liveLabel: HTMLElement;
  private errorBox: HTMLElement;
  private problemsBox: HTMLElement;
  private params: ParamsForm;
  private tabs: Map<Tab, HTMLButtonElement>;
  private shownLabel: HTMLElement;
  private graphBox: HTMLElement;
  private graphPane: HTMLElement;
  private timelinePane: HTMLElement;
  private runsPane: HTMLElement;
  private drawer: HTMLElement;
  private zoom: PanZoom;
  private clock: Poll;
  private tab: Tab = 'graph';
  private groups: ITaskGroup[] = [];
  private selected: string | null = null;
  private detail: ITaskDetail | null = null;
  private detailSignature = '';
  private reading = false;
  private preview: IPreviewState | null = null;
  private runPage: string | null = null;
  private filter: IRunsFilter = { text: '', state: '' };
}
