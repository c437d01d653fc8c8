/**
 * Task instances as the side panel shows them. The server sends one entry per instance (`TASK[name=value]`); the
 * panel draws a task once: its instances grouped, their states counted and the group coloured by the most urgent
 * one, edges between tasks, and a run over a run grid as a partition (the grid's values x the tasks).
 */
import { IEdge, IPipeline, IRunDetail, ITaskRun } from './api';
import { display } from './dom';
import { isFinished, label, shortLabel } from './states';

/** One instance with what the panel shows of it: its state in the shown run, else its status. */
export interface IInstance {
  name: string;
  task: string;
  grid: { [name: string]: unknown };
  state: string;
  duration: number | null; // seconds, in the shown run
  attempts: number;
  executedRun: string | null; // the run whose executed notebook of it can be opened
  executedAs: string; // its name in that run (an instance of a backfill that built the same values)
  entry: ITaskRun | null; // its entry in the shown run
  reasons: string[]; // why its status is what it is (outside the run)
}

/** A task as one node: its instances; `grouped` when it has a grid (its instances drawn counted). */
export interface ITaskGroup {
  task: string;
  notebook: string; // relative to the project root
  instances: IInstance[];
  grouped: boolean;
}

/** The states from the most urgent: a group is coloured as the first of them any of its instances is in. A run
 * going on comes first (it changes next), then what needs the user (failed, waiting for another run), then what
 * will run; the finished and judged states last, the quietest at the end. */
export const URGENCY = [
  'running',
  'failed',
  'waiting',
  'pending',
  'upstream_failed',
  'interrupted',
  'cancelled',
  'stale',
  'never_run',
  'succeeded',
  'skipped',
  'up_to_date'
];

/** The order counts are said in: what ended well, what did not, what is still to come, as a run goes. */
const COUNT_ORDER = [
  'succeeded',
  'skipped',
  'up_to_date',
  'failed',
  'upstream_failed',
  'interrupted',
  'cancelled',
  'running',
  'waiting',
  'pending',
  'stale',
  'never_run'
];

function rank(order: string[], state: string): number {
  const at = order.indexOf(state);
  return at < 0 ? order.length : at;
}

// An instance skipped, still to run or blocked has no executed notebook of its own in that run.
const NO_NOTEBOOK = ['skipped', 'pending', 'waiting', 'running', 'upstream_failed'];

/** An instance as the shown run has it. */
export function instanceInRun(entry: ITaskRun, run: string): IInstance {
  const executed = !!entry.output_notebook && isFinished(entry.state) && entry.state !== 'skipped';
  return {
    name: entry.name,
    task: entry.task,
    grid: entry.grid ?? {},
    state: entry.state,
    duration: entry.state === 'skipped' ? null : entry.duration_s,
    attempts: entry.attempts,
    executedRun: executed ? run : null,
    executedAs: entry.name,
    entry,
    reasons: []
  };
}

/**
 * Each task of the pipeline (in its order) with its instances. A task the shown run has: for a run over a run grid,
 * its instances in that run (the pipeline knows them only without that grid); otherwise the pipeline's instances,
 * each as the run has it or, where it did not run, as its status. A task the run does not have: its status.
 */
export function groupTasks(pipeline: IPipeline, run: IRunDetail | null): ITaskGroup[] {
  const inRun = new Map<string, ITaskRun[]>();
  for (const entry of run?.tasks ?? []) {
    inRun.set(entry.task, [...(inRun.get(entry.task) ?? []), entry]);
  }
  const overGrid = !!run && Object.keys(run.grid ?? {}).length > 0;
  const groups = new Map<string, ITaskGroup>();
  for (const task of pipeline.tasks) {
    let group = groups.get(task.task);
    if (!group) {
      group = { task: task.task, notebook: task.notebook, instances: [], grouped: false };
      groups.set(task.task, group);
    }
    group.grouped = group.grouped || task.name !== task.task;
    const entries = inRun.get(task.task) ?? [];
    if (overGrid && entries.length) {
      continue; // the run's instances, added below
    }
    const entry = entries.find(e => e.name === task.name);
    if (entry) {
      group.instances.push(instanceInRun(entry, run!.id));
      continue;
    }
    const status = task.status;
    const lastRun =
      status?.last_run && status.last_state && !NO_NOTEBOOK.includes(status.last_state) ? status.last_run : null;
    group.instances.push({
      name: task.name,
      task: task.task,
      grid: task.grid ?? {},
      state: status?.status ?? 'never_run',
      duration: null,
      attempts: 0,
      executedRun: lastRun,
      executedAs: status?.last_instance ?? task.name,
      entry: null,
      reasons: status?.reasons ?? []
    });
  }
  for (const group of groups.values()) {
    const entries = inRun.get(group.task) ?? [];
    const known = new Set(group.instances.map(i => i.name));
    // over a run grid: every instance of the run; otherwise those the pipeline no longer has as they were
    const extra = entries.filter(e => !known.has(e.name));
    if (extra.length) {
      group.instances.push(...extra.map(e => instanceInRun(e, run!.id)));
      group.grouped = group.grouped || extra.some(e => e.name !== e.task) || group.instances.length > 1;
    }
  }
  return [...groups.values()];
}

/** The edges between tasks: one where any instance of one feeds any instance of the other, with every path. */
export function taskEdges(pipeline: IPipeline): IEdge[] {
  const taskOf = new Map(pipeline.tasks.map(t => [t.name, t.task]));
  const edges = new Map<string, IEdge>();
  for (const edge of pipeline.edges) {
    const [from, to] = [taskOf.get(edge.from) ?? edge.from, taskOf.get(edge.to) ?? edge.to];
    if (from === to) {
      continue;
    }
    const key = JSON.stringify([from, to]);
    const known = edges.get(key);
    if (known) {
      known.via = [...new Set([...known.via, ...edge.via])];
    } else {
      edges.set(key, { from, to, via: [...edge.via] });
    }
  }
  return [...edges.values()];
}

/** How many instances are in each state, in the order counts are said. */
export function countStates(instances: IInstance[]): [string, number][] {
  const counts = new Map<string, number>();
  for (const instance of instances) {
    counts.set(instance.state, (counts.get(instance.state) ?? 0) + 1);
  }
  return [...counts.entries()].sort((a, b) => rank(COUNT_ORDER, a[0]) - rank(COUNT_ORDER, b[0]));
}

/** The most urgent state among the instances (the group's colour). */
export function worstState(instances: IInstance[]): string {
  return instances.map(i => i.state).sort((a, b) => rank(URGENCY, a) - rank(URGENCY, b))[0] ?? 'never_run';
}

/** The counts in words: in full ("5 instances · 3 succeeded · 1 failed · 1 running"), or short for a node ("3 ok
 * · 1 failed · 1 running", at most three states, the rest counted together). */
export function countsText(instances: IInstance[], short = false): string {
  const counts = countStates(instances);
  if (!short) {
    const total = `${instances.length} instance${instances.length === 1 ? '' : 's'}`;
    return [total, ...counts.map(([state, n]) => `${n} ${label(state)}`)].join(' · ');
  }
  const shown = counts.length > 3 ? counts.slice(0, 2) : counts;
  const rest = counts.slice(shown.length).reduce((sum, [, n]) => sum + n, 0);
  return [...shown.map(([state, n]) => `${n} ${shortLabel(state)}`), ...(rest ? [`${rest} other`] : [])].join(' · ');
}

/** What to send to run one instance with its upstream: its name, and the values of the run grid it was made by
 * (the pipeline has no instance of that name without them). */
export function runOf(
  instance: IInstance,
  pipeline: IPipeline
): { targets: string[]; grid: { [name: string]: unknown[] } } {
  const own = pipeline.tasks.find(t => t.task === instance.task)?.grid ?? {};
  const grid: { [name: string]: unknown[] } = {};
  if (!pipeline.tasks.some(t => t.name === instance.name)) {
    for (const [name, value] of Object.entries(instance.grid)) {
      if (!(name in own)) {
        grid[name] = [value];
      }
    }
  }
  return { targets: [instance.name], grid };
}

// -- a run over a run grid as a partition -------------------------------------------------------------------------

export interface IPartitionRow {
  key: string; // "" for the instances that belong to no value (a task that does not use the grid's names)
  label: string;
}

/** A run's instances as a table: a row per value of the run's grid (the product, for several names), a column
 * per task, in each cell the instances of that task for that value. */
export interface IPartition {
  names: string[];
  rows: IPartitionRow[];
  tasks: string[];
  cells: Map<string, IInstance[]>; // by cellKey(row, task)
}

export function cellKey(row: string, task: string): string {
  return JSON.stringify([row, task]);
}

function product(values: unknown[][]): unknown[][] {
  return values.reduce<unknown[][]>((rows, column) => rows.flatMap(row => column.map(v => [...row, v])), [[]]);
}

/** The partition of a run over a run grid; null for a run without one. */
export function partitionOf(run: IRunDetail): IPartition | null {
  const names = Object.keys(run.grid ?? {});
  if (!names.length) {
    return null;
  }
  const rowOf = (grid: { [name: string]: unknown }) =>
    names.every(n => n in grid) ? JSON.stringify(names.map(n => grid[n])) : '';
  const rows: IPartitionRow[] = product(names.map(n => run.grid[n])).map(values => ({
    key: JSON.stringify(values),
    label: names.length === 1 ? display(values[0]) : names.map((n, i) => `${n}=${display(values[i])}`).join(', ')
  }));
  const tasks: string[] = [];
  const cells = new Map<string, IInstance[]>();
  let once = false;
  for (const entry of run.tasks) {
    const instance = instanceInRun(entry, run.id);
    const row = rowOf(instance.grid);
    once = once || row === '';
    if (!tasks.includes(instance.task)) {
      tasks.push(instance.task);
    }
    const key = cellKey(row, instance.task);
    cells.set(key, [...(cells.get(key) ?? []), instance]);
  }
  const listed = new Set(rows.map(r => r.key));
  for (const key of new Set([...cells.values()].flat().map(i => rowOf(i.grid)))) {
    if (key && !listed.has(key)) {
      // a value the run's grid does not list (it cannot make one): shown rather than lost
      const values = JSON.parse(key) as unknown[];
      rows.push({ key, label: values.map(display).join(', ') });
    }
  }
  if (once) {
    rows.unshift({ key: '', label: 'once' });
  }
  return { names, rows, tasks, cells };
}
