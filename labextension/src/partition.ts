/**
 * A run over a run grid as a table of states: a row per value (a date of a backfill), a column per task, each cell
 * coloured as its instance's state (or, where the task has a grid of its own, its instances' states side by side,
 * with how many ended well), with a legend of the states it shows. A cell of one instance opens its executed
 * notebook; a cell of several lists them.
 */
import { IInstance, IPartition, cellKey, countStates, countsText, worstState } from './groups';
import { errorText, h, seconds } from './dom';
import { TEXT_COLOR, label, styleOf, symbolOf } from './states';

export interface IPartitionActions {
  openExecuted(instance: IInstance): void;
  list(task: string, row: string): void;
}

const ENDED_WELL = ['succeeded', 'skipped'];

function paint(cell: HTMLElement, instances: IInstance[]): void {
  const state = worstState(instances);
  const look = styleOf(state);
  cell.dataset.state = state;
  cell.style.color = TEXT_COLOR;
  cell.style.border = `1px ${look.dashed ? 'dashed' : 'solid'} ${look.border}`;
  if (instances.length === 1) {
    cell.style.background = look.fill;
    return;
  }
  // one band per state, as wide as its share of the instances
  let at = 0;
  const stops: string[] = [];
  for (const [each, n] of countStates(instances)) {
    const fill = styleOf(each).fill;
    const end = at + (100 * n) / instances.length;
    stops.push(`${fill} ${at}%`, `${fill} ${end}%`);
    at = end;
  }
  cell.style.background = `linear-gradient(to right, ${stops.join(', ')})`;
}

function cellOf(
  task: string,
  row: { key: string; label: string },
  instances: IInstance[],
  actions: IPartitionActions
): HTMLElement {
  if (!instances.length) {
    return h('td', { class: 'nbflow-cell nbflow-cell-none', title: `${task} has no instance for ${row.label}` });
  }
  const cell = h('td', { class: 'nbflow-cell', 'data-task': task, 'data-row': row.label });
  paint(cell, instances);
  cell.dataset.instances = String(instances.length);
  if (instances.length === 1) {
    const [instance] = instances;
    cell.textContent = symbolOf(instance.state);
    const took = seconds(instance.duration);
    const error = errorText(instance.entry?.error);
    cell.title =
      `${instance.name}: ${label(instance.state)}${took ? ` (${took})` : ''}` +
      (error ? `\n${error}` : '') +
      (instance.executedRun ? '\nClick to open its executed notebook.' : '');
    if (instance.executedRun) {
      cell.classList.add('nbflow-cell-open');
      cell.addEventListener('click', () => actions.openExecuted(instance));
    }
  } else {
    const well = instances.filter(i => ENDED_WELL.includes(i.state)).length;
    cell.textContent = `${well}/${instances.length}`;
    cell.title = `${task} for ${row.label}: ${countsText(instances)}\nClick to list them.`;
    cell.classList.add('nbflow-cell-open');
    cell.addEventListener('click', () => actions.list(task, row.key));
  }
  if (instances.some(i => i.state === 'running')) {
    cell.classList.add('nbflow-running');
  }
  return cell;
}

/** The partition; `listed` is the cell whose instances are listed (marked). */
export function renderPartition(
  partition: IPartition,
  actions: IPartitionActions,
  listed: { task: string; row: string } | null = null
): HTMLElement {
  const head = h(
    'tr',
    {},
    h('th', { class: 'nbflow-partition-corner' }, partition.names.join(' × ')),
    ...partition.tasks.map(task =>
      h('th', { class: 'nbflow-partition-task', title: task }, h('span', { class: 'nbflow-partition-task-name' }, task))
    )
  );
  const rows = partition.rows.map(row =>
    h(
      'tr',
      { 'data-row': row.label },
      h(
        'th',
        {
          class: 'nbflow-partition-value',
          title: row.key ? row.label : 'The tasks that use no name of the grid run once for every value'
        },
        row.label
      ),
      ...partition.tasks.map(task => {
        const cell = cellOf(task, row, partition.cells.get(cellKey(row.key, task)) ?? [], actions);
        cell.classList.toggle('nbflow-cell-listed', listed?.task === task && listed.row === row.key);
        return cell;
      })
    )
  );
  const shown = [...partition.cells.values()].flat();
  const legend = h(
    'div',
    { class: 'nbflow-partition-legend' },
    ...countStates(shown).map(([state, n]) => {
      const swatch = h('span', { class: 'nbflow-cell nbflow-swatch' }, symbolOf(state));
      paint(swatch, [{ ...shown.find(i => i.state === state)! }]);
      return h('span', { class: 'nbflow-legend-item', 'data-state': state }, swatch, ` ${label(state)} ${n}`);
    })
  );
  return h(
    'div',
    { class: 'nbflow-partition' },
    h(
      'div',
      { class: 'nbflow-partition-scroll' },
      h('table', { class: 'nbflow-partition-table' }, h('thead', {}, head), h('tbody', {}, ...rows))
    ),
    legend
  );
}

/** Write the tasks' names upwards where the table is wider than the panel; call once it is in the page, and when
 * the panel's width changes. */
export function fitPartition(node: Element | null): void {
  const scroll = node?.querySelector('.nbflow-partition-scroll');
  if (!node || !scroll || !scroll.clientWidth) {
    return; // not shown: nothing to measure
  }
  node.classList.remove('nbflow-partition-narrow');
  node.classList.toggle('nbflow-partition-narrow', scroll.scrollWidth > scroll.clientWidth);
}
