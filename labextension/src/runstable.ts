/**
 * The run history as a table (state, trigger, started, duration, counts, parameters), filtered by state and by
 * text (an id, a trigger, a parameter's name or value), and a run's page: what it was, what to do with it (show
 * it in the graph and the timeline, rerun its failures, cancel it), and its task instances, each with its error
 * and its executed notebook.
 */
import { IRunDetail, IRunSummary } from './api';
import { display, errorText, h, seconds, when } from './dom';
import { gridSummary } from './rundetail';
import { badge, label, runLabel } from './states';

export interface IRunsActions {
  open(run: string): void; // its page
  back(): void;
  showInGraph(run: string): void;
  rerunFailed(run: string): void;
  cancel(run: string): void;
  openExecuted(run: string, instance: string): void;
  compare(run: string, instance: string): void;
  select(instance: string): void;
}

export interface IRunsFilter {
  text: string;
  state: string; // '' for every state
}

function countsOf(run: IRunSummary): string {
  return Object.entries(run.counts)
    .map(([state, n]) => `${n} ${label(state)}`)
    .join(', ');
}

function paramsOf(params: { [name: string]: unknown }): string {
  return Object.entries(params)
    .map(([name, value]) => `${name}=${display(value)}`)
    .join(' ');
}

function matches(run: IRunSummary, filter: IRunsFilter): boolean {
  if (filter.state && run.state !== filter.state) {
    return false;
  }
  const text = filter.text.trim().toLowerCase();
  if (!text) {
    return true;
  }
  const haystack = [run.id, run.trigger, run.state, paramsOf(run.params ?? {}), gridSummary(run.grid ?? {})]
    .join(' ')
    .toLowerCase();
  return haystack.includes(text);
}

/** The filter's fields and the table of the runs it lets through. */
export function renderRunsTable(
  runs: IRunSummary[],
  filter: IRunsFilter,
  onFilter: (filter: IRunsFilter) => void,
  actions: IRunsActions
): HTMLElement {
  const text = h('input', {
    type: 'search',
    class: 'jp-mod-styled nbflow-runs-filter',
    placeholder: 'Filter: id, trigger, parameter…',
    value: filter.text
  });
  text.addEventListener('input', () => onFilter({ ...filter, text: text.value }));
  const states = ['', 'running', 'succeeded', 'failed', 'cancelled', 'interrupted', 'skipped'];
  const state = h(
    'select',
    { class: 'jp-mod-styled nbflow-runs-state' },
    ...states.map(s => {
      const option = h('option', { value: s }, s ? runLabel(s) : 'every state');
      option.selected = s === filter.state;
      return option;
    })
  );
  state.addEventListener('change', () => onFilter({ ...filter, state: state.value }));
  const shown = runs.filter(run => matches(run, filter));
  const head = h(
    'tr',
    {},
    ...['State', 'Trigger', 'Started', 'Duration', 'Tasks', 'Parameters'].map(title => h('th', {}, title))
  );
  const rows = shown.map(run => {
    const row = h(
      'tr',
      { class: 'nbflow-runs-row', 'data-run': run.id, title: `Run ${run.id}: open its page` },
      h('td', {}, badge(run.state, runLabel)),
      h('td', {}, run.trigger),
      h('td', { class: 'nbflow-nowrap' }, when(run.started_at)),
      h('td', { class: 'nbflow-nowrap' }, seconds(run.duration_s)),
      h('td', {}, countsOf(run)),
      h(
        'td',
        { class: 'nbflow-runs-params' },
        [paramsOf(run.params ?? {}), gridSummary(run.grid ?? {})].filter(Boolean).join(' · ')
      )
    );
    row.addEventListener('click', () => actions.open(run.id));
    return row;
  });
  return h(
    'div',
    { class: 'nbflow-runs' },
    h(
      'div',
      { class: 'nbflow-runs-tools' },
      text,
      state,
      h('span', { class: 'nbflow-hint' }, `${shown.length} of ${runs.length} runs`)
    ),
    rows.length
      ? h('table', { class: 'nbflow-runs-table' }, h('thead', {}, head), h('tbody', {}, ...rows))
      : h('div', { class: 'nbflow-empty' }, runs.length ? 'No run matches the filter.' : 'No runs yet.')
  );
}

/** A small button in a table row: its click is its own, not the row's. */
function rowButton(text: string, title: string, act: () => void): HTMLButtonElement {
  const node = h('button', { class: 'jp-Button nbflow-small', title }, text);
  node.addEventListener('click', event => {
    event.stopPropagation();
    act();
  });
  return node;
}

/** One run's page. */
export function renderRunPage(run: IRunDetail, actions: IRunsActions): HTMLElement {
  const back = h('button', { class: 'jp-Button nbflow-runs-back', title: 'Back to the run history' }, '← Runs');
  back.addEventListener('click', () => actions.back());
  const buttons: HTMLElement[] = [back];
  const show = h(
    'button',
    { class: 'jp-Button nbflow-show-run', title: 'Show this run in the graph and the timeline' },
    'Show in graph'
  );
  show.addEventListener('click', () => actions.showInGraph(run.id));
  buttons.push(show);
  if (run.state === 'running') {
    const cancel = h('button', { class: 'jp-Button nbflow-cancel-run' }, 'Cancel');
    cancel.addEventListener('click', () => actions.cancel(run.id));
    buttons.push(cancel);
  } else if (run.tasks.some(t => ['failed', 'upstream_failed', 'cancelled'].includes(t.state))) {
    const rerun = h(
      'button',
      {
        class: 'jp-Button nbflow-rerun-failed',
        title: 'Run its failed and cancelled tasks again, and their downstream'
      },
      'Rerun failed'
    );
    rerun.addEventListener('click', () => actions.rerunFailed(run.id));
    buttons.push(rerun);
  }
  const rows = run.tasks.map(task => {
    const open = h('td', { class: 'nbflow-nowrap' });
    if (task.output_notebook) {
      open.append(
        rowButton('Notebook', 'The executed notebook (read-only)', () => actions.openExecuted(run.id, task.name)),
        rowButton('Compare', 'Compare with the previous run that executed it', () => actions.compare(run.id, task.name))
      );
    }
    const row = h(
      'tr',
      { class: 'nbflow-runs-row', 'data-task': task.name },
      h('td', {}, badge(task.state)),
      h('td', { class: 'nbflow-run-task', title: task.name }, task.name),
      h('td', { class: 'nbflow-nowrap' }, when(task.started_at)),
      h('td', { class: 'nbflow-nowrap' }, seconds(task.duration_s)),
      h('td', {}, task.attempts > 1 ? `${task.attempts}` : ''),
      h(
        'td',
        { class: 'nbflow-run-error' },
        task.progress && task.state === 'running'
          ? `cell ${task.progress.cell}/${task.progress.cells}`
          : errorText(task.error)
      ),
      open
    );
    row.addEventListener('click', () => actions.select(task.name));
    return row;
  });
  const params = paramsOf(run.params);
  return h(
    'div',
    { class: 'nbflow-run-page', 'data-run': run.id },
    h('div', { class: 'nbflow-runs-tools' }, ...buttons),
    h('h2', {}, `Run ${run.id}`),
    h(
      'div',
      { class: 'nbflow-run-facts' },
      badge(run.state, runLabel),
      ` ${run.trigger} · started ${when(run.started_at)}` +
        (run.duration_s !== null ? ` · ${seconds(run.duration_s)}` : '')
    ),
    ...(params ? [h('div', { class: 'nbflow-run-facts' }, `parameters: ${params}`)] : []),
    ...(Object.keys(run.grid ?? {}).length
      ? [h('div', { class: 'nbflow-run-facts' }, `grid: ${gridSummary(run.grid)}`)]
      : []),
    h(
      'table',
      { class: 'nbflow-runs-table' },
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          ...['State', 'Task', 'Started', 'Duration', 'Attempts', 'Error / progress', ''].map(t => h('th', {}, t))
        )
      ),
      h('tbody', {}, ...rows)
    )
  );
}
