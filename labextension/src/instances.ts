/**
 * The list of a grid task's instances, opened from its node or from a cell of a run's partition: each instance's
 * grid values, state, duration and error, with what a plain task's node offers: open its executed notebook, run
 * it with its upstream. Its header opens the task's notebook and closes the list.
 */
import { IInstance, countsText } from './groups';
import { breakable, display, errorText, h, seconds } from './dom';
import { badge } from './states';

export interface IInstanceActions {
  openNotebook(): void;
  openExecuted(instance: IInstance): void;
  run(instance: IInstance): void;
  close(): void;
}

/** The list; `title` names what it lists ("report", "report for 2026-11-02"). */
export function renderInstances(
  task: string,
  title: string,
  instances: IInstance[],
  actions: IInstanceActions
): HTMLElement {
  const open = h('a', { class: 'nbflow-link nbflow-instances-notebook', href: '#' }, 'notebook');
  open.title = `Open the notebook of ${task}`;
  open.addEventListener('click', event => {
    event.preventDefault();
    actions.openNotebook();
  });
  const close = h('button', { class: 'nbflow-instances-close', title: 'Close the list' }, '×');
  close.addEventListener('click', () => actions.close());
  const head = h(
    'div',
    { class: 'nbflow-instances-head' },
    h('span', { class: 'nbflow-instances-title' }, title),
    ' (',
    open,
    ')',
    close
  );
  // a column per grid name whose value differs between the instances listed (all of them where none does)
  const names = [...new Set(instances.flatMap(i => Object.keys(i.grid)))];
  const varying = names.filter(n => new Set(instances.map(i => display(i.grid[n]))).size > 1);
  const columns = varying.length ? varying : names;
  const header = h(
    'tr',
    {},
    ...(columns.length ? columns : ['instance']).map(n => h('th', { class: 'nbflow-instance-value' }, n)),
    h('th', {}, 'state'),
    h('th', {}, ''),
    h('th', {}, '')
  );
  const rows = instances.map(instance => {
    const cells: (Node | string)[] = [];
    if (instance.executedRun) {
      const executed = h(
        'a',
        {
          class: 'nbflow-link nbflow-open-executed',
          href: '#',
          title: `Open the executed notebook of ${instance.name}, read-only (run ${instance.executedRun})`
        },
        'open'
      );
      executed.addEventListener('click', event => {
        event.preventDefault();
        actions.openExecuted(instance);
      });
      cells.push(executed);
    }
    const run = h(
      'button',
      { class: 'nbflow-instance-run', title: `Run ${instance.name} and its upstream` },
      h('span', { class: 'nbflow-play' })
    );
    run.addEventListener('click', () => actions.run(instance));
    const took = seconds(instance.duration) + (instance.attempts > 1 ? ` ×${instance.attempts}` : '');
    const values = columns.length
      ? columns.map(n =>
          h('td', { class: 'nbflow-instance-value' }, n in instance.grid ? display(instance.grid[n]) : '')
        )
      : [h('td', { class: 'nbflow-instance-value' }, ...breakable(instance.name))];
    const row = h(
      'tr',
      { 'data-instance': instance.name, 'data-state': instance.state, title: instance.name },
      ...values,
      h('td', { class: 'nbflow-instance-state' }, badge(instance.state)),
      h('td', { class: 'nbflow-instance-took' }, took),
      h('td', { class: 'nbflow-instance-actions' }, ...cells, run)
    );
    if (instance.reasons.length) {
      row.title = `${instance.name}\n${instance.reasons.join('\n')}`;
    }
    const error = errorText(instance.entry?.error);
    return error
      ? [
          row,
          h(
            'tr',
            { class: 'nbflow-task-error-row' },
            h('td', { class: 'nbflow-task-error nbflow-pre', colspan: String(values.length + 3) }, error)
          )
        ]
      : [row];
  });
  return h(
    'div',
    { class: 'nbflow-instances', 'data-task': task },
    head,
    h('div', { class: 'nbflow-counts' }, countsText(instances)),
    h(
      'div',
      { class: 'nbflow-instances-scroll' },
      h('table', { class: 'nbflow-instances-table' }, h('thead', {}, header), h('tbody', {}, ...rows.flat()))
    )
  );
}
