/**
 * Two runs of a task compared (`GET runs/ID/tasks/INSTANCE/diff`, as `nbflow diff` compares them): the parameters
 * and input files that differ, then each changed code cell side by side, before | after, its changed lines
 * highlighted, and its changed outputs under it. Everything shown is text (no output is rendered), bounded by the
 * server.
 */
import { Widget } from '@lumino/widgets';

import { ICellDiff, IOutputChange, IRunDiff, ITaskDiff } from './api';
import { display, h, when } from './dom';
import { badge, runLabel } from './states';

/** A widget for the main area showing one comparison. */
export class RunDiffView extends Widget {
  constructor(readonly diff: IRunDiff) {
    super();
    this.addClass('nbflow-Diff');
    this.node.append(...renderRunDiff(diff));
  }
}

export function renderRunDiff(diff: IRunDiff): HTMLElement[] {
  const side = (label: string, run: IRunDiff['a']) =>
    h(
      'span',
      { class: 'nbflow-diff-run', title: run.id },
      `${label}: `,
      badge(run.state, runLabel),
      ` run ${when(run.started_at)}`
    );
  const head = h(
    'div',
    { class: 'nbflow-diff-head' },
    diff.selector ? h('span', { class: 'nbflow-task-name' }, diff.selector) : '',
    side('before', diff.a),
    ' → ',
    side('after', diff.b)
  );
  const tasks = diff.tasks.map(renderTask);
  if (!tasks.length) {
    tasks.push(h('div', { class: 'nbflow-empty' }, 'Nothing changed between these runs.'));
  }
  if (diff.tasks_more) {
    tasks.push(h('div', { class: 'nbflow-diff-more' }, `… ${diff.tasks_more} more instances not compared.`));
  }
  return [head, ...tasks];
}

function renderTask(task: ITaskDiff): HTMLElement {
  const states = `${task.state_a ?? 'absent'} → ${task.state_b ?? 'absent'}`;
  const parts: HTMLElement[] = [
    h('div', { class: 'nbflow-diff-task-head' }, h('span', { class: 'nbflow-task-name' }, task.name), ` ${states}`)
  ];
  if (task.params.length) {
    parts.push(
      section(
        'Parameters',
        table(
          ['parameter', 'before', 'after'],
          task.params.map(p => [
            p.name,
            p.change === 'added' ? '(none)' : display(p.before),
            p.change === 'removed' ? '(none)' : display(p.after)
          ]),
          'nbflow-diff-params'
        )
      )
    );
  }
  if (task.inputs.length) {
    parts.push(
      section(
        'Input files',
        table(
          ['file', 'change'],
          task.inputs.map(i => [i.path, i.change]),
          'nbflow-diff-inputs'
        )
      )
    );
  }
  if (task.code_changed && !task.cells.some(c => c.source_changed)) {
    parts.push(h('div', { class: 'nbflow-diff-note' }, 'Its code changed.'));
  }
  if (task.cells.length) {
    parts.push(section('Cells', ...task.cells.map(renderCell)));
  }
  if (task.cells_more) {
    parts.push(h('div', { class: 'nbflow-diff-more' }, `… ${task.cells_more} more cells differ.`));
  }
  parts.push(...task.notes.map(note => h('div', { class: 'nbflow-diff-note' }, note)));
  return h('div', { class: 'nbflow-diff-task', 'data-task': task.name }, ...parts);
}

function section(title: string, ...content: HTMLElement[]): HTMLElement {
  return h(
    'div',
    { class: 'nbflow-diff-section' },
    h('div', { class: 'nbflow-diff-section-title' }, title),
    ...content
  );
}

function table(header: string[], rows: string[][], className: string): HTMLElement {
  return h(
    'table',
    { class: `nbflow-diff-table ${className}` },
    h('thead', {}, h('tr', {}, ...header.map(text => h('th', {}, text)))),
    h('tbody', {}, ...rows.map(row => h('tr', {}, ...row.map(text => h('td', {}, text)))))
  );
}

/** A cell: its source before | after, the lines that changed marked, then its outputs that changed. */
function renderCell(cell: ICellDiff): HTMLElement {
  const index = cell.cell_b ?? cell.cell_a;
  const title = h(
    'div',
    { class: 'nbflow-diff-cell-title' },
    `cell ${index} ${cell.change}: `,
    h('code', {}, cell.first_line)
  );
  const source = (lines: string[], changed: number[], mark: string) => {
    const marked = new Set(changed);
    return h(
      'pre',
      { class: 'nbflow-diff-source' },
      ...lines.map((line, i) =>
        h('div', { class: marked.has(i) ? `nbflow-diff-line nbflow-diff-${mark}` : 'nbflow-diff-line' }, line || ' ')
      )
    );
  };
  const parts: HTMLElement[] = [title];
  if (cell.source_changed || cell.before.length || cell.after.length) {
    parts.push(
      h(
        'div',
        { class: 'nbflow-diff-sides' },
        source(cell.before, cell.removed, 'removed'),
        source(cell.after, cell.added, 'added')
      )
    );
  }
  if (cell.lines_more) {
    parts.push(h('div', { class: 'nbflow-diff-more' }, `… ${cell.lines_more} more lines`));
  }
  parts.push(...cell.outputs.map(renderOutput));
  return h('div', { class: 'nbflow-diff-cell', 'data-cell': String(index) }, ...parts);
}

function renderOutput(output: IOutputChange): HTMLElement {
  const label = h('div', { class: 'nbflow-diff-output-title' }, `output ${output.kind} ${output.change}`);
  if (output.note) {
    label.append(`: ${output.note}`);
    return h('div', { class: 'nbflow-diff-output' }, label);
  }
  const text = (value: string | null | undefined, mark: string) =>
    h('pre', { class: `nbflow-diff-source nbflow-diff-output-${mark}` }, value ?? '');
  return h(
    'div',
    { class: 'nbflow-diff-output' },
    label,
    h('div', { class: 'nbflow-diff-sides' }, text(output.before, 'before'), text(output.after, 'after'))
  );
}
