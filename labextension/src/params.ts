/**
 * The run's parameters as a form: every parameter the tasks assign with its value in force (a grid task's grid
 * names left out), a name assigned differently by several tasks once per task (`task.name`). Only the values the
 * user changed are sent, as text the server reads as the command line does. The side panel and the pipeline view
 * both use it.
 */
import { IPipeline } from './api';
import { display, h } from './dom';

interface IParamField {
  key: string; // "name" or "task.name"
  initial: unknown;
  read(): string; // the value as text (read on the server as `nbflow run -p NAME VALUE` reads it), or throws
  changed(): boolean;
}

export class ParamsForm {
  readonly node = h('div', { class: 'nbflow-params-form' });

  /** The parameter names the tasks assign, sorted (what a run grid may vary). */
  names(): string[] {
    return this.known;
  }

  /** Show the parameters `pipeline`'s tasks assign (kept as typed while they stay the same). */
  render(pipeline: IPipeline | null): void {
    const byName = new Map<string, { task: string; value: unknown }[]>();
    const seen = new Set<string>();
    for (const task of pipeline?.tasks ?? []) {
      if (seen.has(task.task)) {
        continue; // a grid task's instances differ only in their grid values
      }
      seen.add(task.task);
      for (const [name, value] of Object.entries(task.params)) {
        if (!(name in (task.grid ?? {}))) {
          byName.set(name, [...(byName.get(name) ?? []), { task: task.task, value }]);
        }
      }
    }
    this.known = [...byName.keys()].sort();
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
    if (signature === this.signature) {
      return;
    }
    this.signature = signature;
    this.fields = [];
    if (!rows.length) {
      this.node.replaceChildren(h('div', { class: 'nbflow-empty' }, 'No parameters.'));
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
      this.fields.push(field);
      table.append(h('tr', {}, h('td', { title: `assigned by ${row.note}` }, row.key), h('td', {}, input)));
    }
    const reset = h('button', { class: 'jp-Button nbflow-params-reset' }, 'Reset to defaults');
    reset.addEventListener('click', () => {
      this.signature = '';
      this.render(pipeline);
    });
    this.node.replaceChildren(
      h('div', { class: 'nbflow-hint' }, 'Changed values are passed to the next run (defaults otherwise).'),
      table,
      reset
    );
  }

  /** The changed values, as text (read on the server as `nbflow run -p NAME VALUE` reads it); throws for a value
   * that could never be right. */
  read(): { [key: string]: string } {
    const params: { [key: string]: string } = {};
    for (const field of this.fields) {
      if (field.changed()) {
        params[field.key] = field.read();
      }
    }
    return params;
  }

  private fields: IParamField[] = [];
  private signature = '';
  private known: string[] = [];
}
