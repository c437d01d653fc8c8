/**
 * The side panel's tasks as a list, where their graph would not fit its width: one row per task (a grid task one
 * row, its instances counted), in the pipeline's order (upstream first), with what its node says (state, cell
 * progress, duration) and does (open the notebook, run it with its upstream, open its executed notebook, list a
 * grid task's instances). The graph itself is drawn in the pipeline view, which pans and zooms.
 */
import { LabIcon, caretDownIcon, caretUpIcon, notebookIcon, runIcon } from '@jupyterlab/ui-components';

import { breakable, h } from './dom';
import { IGraphActions, INodeView, buttonTitles, nodeViewIn } from './graph';
import { paintBadge, styleOf } from './states';

/** The list of `tasks`, each as `views` has it. */
export function renderTaskList(tasks: string[], views: Map<string, INodeView>, actions: IGraphActions): HTMLElement {
  const rows = tasks.map(task => {
    const view = nodeViewIn(views, task);
    const titles = buttonTitles(task, view);
    const name = h('a', { class: 'nbflow-link nbflow-task-row-name', href: '#' }, ...breakable(task));
    name.addEventListener('click', event => {
      event.preventDefault();
      if (view.grouped) {
        actions.expand(task);
      } else {
        actions.open(task);
      }
    });
    const run = button('nbflow-task-run', titles.run, runIcon);
    run.addEventListener('click', () => actions.run(task));
    const buttons: HTMLElement[] = [run];
    if (view.grouped) {
      const list = button('nbflow-task-expand', titles.expand, view.expanded ? caretUpIcon : caretDownIcon);
      list.addEventListener('click', () => actions.expand(task));
      buttons.push(list);
    } else if (view.executed) {
      const out = button('nbflow-task-output', titles.executed, notebookIcon);
      out.addEventListener('click', () => actions.openExecuted(task));
      buttons.push(out);
    }
    const mark = h('span', { class: 'nbflow-task-mark' });
    paintBadge(mark, view.state);
    const row = h(
      'li',
      {
        class: 'nbflow-task-row' + (view.expanded ? ' nbflow-expanded' : ''),
        'data-task': task,
        'data-state': view.state,
        'data-grouped': String(view.grouped),
        'data-instances': String(view.count),
        title: view.detail ? `${view.title}\n${view.detail}` : view.title
      },
      mark,
      h('span', { class: 'nbflow-task-text' }, name, h('span', { class: 'nbflow-task-detail' }, view.detail)),
      h('span', { class: 'nbflow-task-buttons' }, ...buttons)
    );
    if (view.progress !== undefined) {
      const bar = h('span', { class: 'nbflow-task-progress' });
      bar.style.width = `${Math.round(Math.max(0, Math.min(1, view.progress)) * 100)}%`;
      bar.style.background = styleOf(view.state).border;
      row.append(bar);
    }
    return row;
  });
  return h('ul', { class: 'nbflow-task-list' }, ...rows);
}

function button(kind: string, title: string, icon: LabIcon): HTMLButtonElement {
  const node = h('button', { class: `nbflow-task-button ${kind}`, title, 'aria-label': title });
  node.append(icon.element({ tag: 'span', className: 'nbflow-task-icon' }));
  return node;
}
