/**
 * The run the side panel shows in detail: its state, trigger and time, its grid and parameters, and its task
 * instances: a table (a grid task's instances under its name), or for a run over a run grid its partition of
 * values x tasks (`partition.ts`) with what failed under it and the table folded away.
 */
import { IRunDetail, ITaskRun } from './api';
import { breakable, display, errorText, h, seconds, when } from './dom';
import { countsText, instanceInRun, partitionOf } from './groups';
import { renderPartition } from './partition';
import { badge, isFinished, runLabel } from './states';

export interface IRunDetailOptions {
  pinned: boolean; // the user chose this run: offer to show the latest again
  showLatest(): void;
  openExecuted(run: string, instance: string): void;
  compare(run: string, instance: string): void; // the instance against the previous run that executed it
  listed: { task: string; row: string } | null; // the partition's cell whose instances are listed
  list(task: string, row: string): void;
  instances: HTMLElement | null; // that list, shown under the partition
  everyOpen: boolean; // the folded table of every instance is open
  toggleEvery(open: boolean): void;
}

/** A run's grid in words: each name with its values, a long list as its ends and how many. */
export function gridSummary(grid: { [name: string]: unknown[] }): string {
  return Object.entries(grid)
    .map(([name, values]) => {
      const shown = values.length > 4 ? `${display(values[0])} … ${display(values[values.length - 1])}` : '';
      return `${name} = ${shown || values.map(display).join(', ')} (${values.length})`;
    })
    .join('; ');
}

/** The run's parts, in order, and its partition (to fit once in the page), if it has one. */
export function renderRunDetail(
  run: IRunDetail,
  options: IRunDetailOptions
): { nodes: HTMLElement[]; partition: HTMLElement | null } {
  const head = h(
    'div',
    { class: 'nbflow-run-head', title: `run ${run.id}` },
    badge(run.state, runLabel),
    ` run ${when(run.started_at)} · ${run.trigger}${run.duration_s !== null ? ' · ' + seconds(run.duration_s) : ''}`
  );
  if (options.pinned) {
    const latest = h('a', { class: 'nbflow-link', href: '#' }, 'show the latest');
    latest.addEventListener('click', event => {
      event.preventDefault();
      options.showLatest();
    });
    head.append(' (', latest, ')');
  }
  const params = Object.entries(run.params ?? {});
  const about: HTMLElement[] = [];
  if (Object.keys(run.grid ?? {}).length) {
    about.push(h('div', { class: 'nbflow-run-grid' }, 'grid: ' + gridSummary(run.grid)));
  }
  if (params.length) {
    about.push(
      h('div', { class: 'nbflow-run-params' }, 'params: ' + params.map(([k, v]) => `${k}=${display(v)}`).join(', '))
    );
  }
  const table = h('table', { class: 'nbflow-tasks' }, h('tbody', {}, ...runRows(run, options)));
  const partition = partitionOf(run);
  if (!partition) {
    return { nodes: [head, ...about, table], partition: null };
  }
  const drawn = renderPartition(
    partition,
    {
      openExecuted: instance => options.openExecuted(instance.executedRun!, instance.executedAs),
      list: options.list
    },
    options.listed
  );
  // what failed, said once: the instances downstream of it are marked in the partition
  const errors = run.tasks.filter(t => t.state === 'failed' && t.error).map(t => errorLine(run, t, options));
  const every = h(
    'details',
    { class: 'nbflow-run-instances' },
    h('summary', {}, `every instance (${run.tasks.length})`),
    table
  );
  every.open = options.everyOpen; // drawn again with every poll: stays as the user left it
  every.addEventListener('toggle', () => options.toggleEvery(every.open));
  const failures = errors.length ? [h('div', { class: 'nbflow-partition-errors' }, ...errors)] : [];
  const list = options.instances ? [options.instances] : [];
  return { nodes: [head, ...about, drawn, ...list, ...failures, every], partition: drawn };
}

/** A failed instance of a run in one paragraph: its name, a link to its executed notebook, its error. */
function errorLine(run: IRunDetail, task: ITaskRun, options: IRunDetailOptions): HTMLElement {
  const line = h(
    'div',
    { class: 'nbflow-partition-error', 'data-task': task.name },
    h('span', { class: 'nbflow-task-name' }, ...breakable(task.name))
  );
  if (task.output_notebook) {
    const open = h(
      'a',
      { class: 'nbflow-link nbflow-open-executed', href: '#', title: 'Open the executed notebook, read-only' },
      'open'
    );
    open.addEventListener('click', event => {
      event.preventDefault();
      options.openExecuted(run.id, task.name);
    });
    line.append(' (', open, ')');
  }
  line.append(h('div', { class: 'nbflow-task-error nbflow-pre' }, errorText(task.error)));
  return line;
}

/** The rows of a run's table, a task after another: a plain task's row, or a grid task's name (its grid's names
 * and its instances counted) over a row per instance, named by its values. */
function runRows(run: IRunDetail, options: IRunDetailOptions): HTMLElement[] {
  const byTask = new Map<string, ITaskRun[]>();
  for (const task of run.tasks) {
    byTask.set(task.task, [...(byTask.get(task.task) ?? []), task]);
  }
  return [...byTask.entries()].flatMap(([name, entries]) => {
    if (entries.length === 1 && entries[0].name === name) {
      return taskRows(run, entries[0], breakable(name), options);
    }
    const names = [...new Set(entries.flatMap(e => Object.keys(e.grid ?? {})))];
    const instances = entries.map(e => instanceInRun(e, run.id));
    const head = h(
      'tr',
      { class: 'nbflow-task-group-row', 'data-group': name },
      h(
        'td',
        { colspan: '4' },
        h('span', { class: 'nbflow-task-group-name' }, name),
        ` (${names.join(', ')}) · ${countsText(instances, true)}`
      )
    );
    const rows = entries.flatMap(e => taskRows(run, e, names.map(n => display(e.grid?.[n])).join(', '), options));
    return [head, ...rows];
  });
}

/** A task instance of a run as rows of its table: its name (or what `shown` says), state, duration, a link to its executed
 * notebook, and its error under it. */
function taskRows(
  run: IRunDetail,
  task: ITaskRun,
  shown: (Node | string)[] | string,
  options: IRunDetailOptions
): HTMLElement[] {
  const error = errorText(task.error);
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
      options.openExecuted(run.id, task.name);
    });
    const compare = h(
      'a',
      { class: 'nbflow-link nbflow-compare-previous', href: '#', title: 'Compare with the previous run of this task' },
      'diff'
    );
    compare.addEventListener('click', event => {
      event.preventDefault();
      options.compare(run.id, task.name);
    });
    cells.push(open, h('br'), compare); // one under the other: the panel is narrow
  }
  const row = h(
    'tr',
    { 'data-task': task.name },
    h(
      'td',
      { class: 'nbflow-task-name' + (typeof shown === 'string' ? ' nbflow-task-instance' : ''), title: task.name },
      ...(typeof shown === 'string' ? [shown] : shown)
    ),
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
}
