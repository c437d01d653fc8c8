/**
 * The pipeline view's drawer: one task instance in full. Its state in the shown run (with the running cell, its
 * first line and what the cells printed last, or its error and the failing cell), its status and why, what to do
 * with it (run it, run from here, rerun the run's failures, open its notebook, executed notebook and report,
 * compare it with its previous run), its parameters, its inputs and outputs with their size and time (a table's
 * first rows, an image, a text previewed on demand), and its neighbours. A grid task's drawer lists its instances.
 */
import { IFileEntry, IFilePreview, IRunDetail, ITaskDetail, ITaskRun } from './api';
import { display, errorText, h, seconds, when } from './dom';
import { IInstance, ITaskGroup, countsText } from './groups';
import { badge } from './states';

export interface IDrawerActions {
  close(): void;
  select(name: string): void;
  run(targets: string[], options?: { downstream?: boolean; force?: boolean; upstream?: boolean }): void;
  rerunFailed(run: string): void;
  openNotebook(path: string): void;
  openExecuted(run: string, instance: string): void;
  openReport(run: string, instance: string): void;
  compare(run: string, instance: string): void;
  preview(path: string): void;
}

/** What the drawer shows of a file's preview: being read, read, or why not. */
export interface IPreviewState {
  path: string;
  preview: IFilePreview | null;
  error: string | null;
}

function button(text: string, title: string, onClick: () => void, cls = ''): HTMLButtonElement {
  const node = h('button', { class: `jp-Button nbflow-drawer-action ${cls}`.trim(), title }, text);
  node.addEventListener('click', onClick);
  return node;
}

function bytes(size: number | null): string {
  if (size === null) {
    return '';
  }
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = size;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit ? `${value.toFixed(1)} ${units[unit]}` : `${value} B`;
}

function section(title: string, ...children: (Node | string)[]): HTMLElement {
  return h('section', { class: 'nbflow-drawer-section' }, h('h3', {}, title), ...children);
}

function header(name: string, actions: IDrawerActions, ...extra: (Node | string)[]): HTMLElement {
  const close = button('×', 'Close', () => actions.close(), 'nbflow-drawer-close');
  return h('div', { class: 'nbflow-drawer-head' }, h('h2', { title: name }, name), ...extra, close);
}

/** A running instance: the cell it runs, that cell's first line, how long, and the last lines printed. */
function progressOf(entry: ITaskRun): HTMLElement[] {
  const progress = entry.progress;
  const elapsed = entry.started_at ? (Date.now() - new Date(entry.started_at).getTime()) / 1000 : null;
  const parts: HTMLElement[] = [
    h(
      'div',
      { class: 'nbflow-progress-line' },
      progress ? `cell ${progress.cell}/${progress.cells}` : 'starting its kernel',
      elapsed !== null ? ` · ${seconds(elapsed)}` : ''
    )
  ];
  if (progress?.line) {
    parts.push(h('pre', { class: 'nbflow-progress-code' }, progress.line));
  }
  if (progress?.tail.length) {
    parts.push(h('pre', { class: 'nbflow-progress-tail' }, progress.tail.join('\n')));
  }
  return parts;
}

function fileRows(files: IFileEntry[], preview: IPreviewState | null, actions: IDrawerActions): HTMLElement {
  if (!files.length) {
    return h('div', { class: 'nbflow-empty' }, 'None declared.');
  }
  const rows = files.map(file => {
    const what =
      file.kind === 'file'
        ? [bytes(file.size), when(file.modified)].filter(Boolean).join(' · ')
        : `${file.files ?? 0} file(s)` + (file.size !== null ? ` · ${bytes(file.size)}` : '');
    const cells = [
      h('td', { class: 'nbflow-file-path', title: file.path }, file.path),
      h('td', { class: 'nbflow-file-what' }, file.exists ? what : 'not there yet')
    ];
    const look = h('td', {});
    if (file.preview && file.exists) {
      look.append(
        button(
          preview?.path === file.path ? 'Hide' : 'Preview',
          `The first rows of ${file.path}`,
          () => actions.preview(file.path),
          'nbflow-preview-button'
        )
      );
    }
    cells.push(look);
    return h('tr', { 'data-path': file.path }, ...cells);
  });
  const table = h('table', { class: 'nbflow-files' }, h('tbody', {}, ...rows));
  const shown = preview && files.some(f => f.path === preview.path) ? [renderPreview(preview)] : [];
  return h('div', {}, table, ...shown);
}

export function renderPreview(state: IPreviewState): HTMLElement {
  const box = h('div', { class: 'nbflow-preview', 'data-path': state.path });
  if (state.error) {
    box.append(h('div', { class: 'nbflow-error-inline' }, state.error));
    return box;
  }
  const preview = state.preview;
  if (!preview) {
    box.append(h('div', { class: 'nbflow-empty' }, `Reading ${state.path}…`));
    return box;
  }
  if (preview.kind === 'table') {
    const head = h('tr', {}, ...preview.columns.map(c => h('th', { title: c }, c)));
    const body = preview.rows.map(row => h('tr', {}, ...row.map(v => h('td', { title: v }, v))));
    box.append(
      h(
        'div',
        { class: 'nbflow-preview-scroll' },
        h('table', { class: 'nbflow-preview-table' }, h('thead', {}, head), h('tbody', {}, ...body))
      )
    );
  } else if (preview.kind === 'image' && preview.data_url) {
    box.append(h('img', { class: 'nbflow-preview-image', src: preview.data_url, alt: preview.path }));
  } else if (preview.text !== null && preview.text !== undefined) {
    box.append(h('pre', { class: 'nbflow-preview-text' }, preview.text));
  }
  if (preview.note) {
    box.append(h('div', { class: 'nbflow-hint' }, `Showing ${preview.note}.`));
  }
  return box;
}

/** The drawer of one instance: `detail` from `GET tasks/NAME`, `entry` its entry in the shown run. */
export function renderTaskDrawer(
  detail: ITaskDetail,
  entry: ITaskRun | null,
  run: IRunDetail | null,
  preview: IPreviewState | null,
  actions: IDrawerActions
): HTMLElement {
  const state = entry?.state ?? detail.status.status;
  const inRun = entry && run ? `in run ${run.id}` : 'its status';
  const head = header(detail.name, actions);
  const stateLine = h(
    'div',
    { class: 'nbflow-drawer-state' },
    badge(state),
    ` ${inRun}`,
    entry?.duration_s !== null && entry?.duration_s !== undefined ? ` · ${seconds(entry.duration_s)}` : '',
    entry && entry.attempts > 1 ? ` · ${entry.attempts} attempts` : ''
  );
  const parts: HTMLElement[] = [head, stateLine];
  if (entry?.state === 'running') {
    parts.push(h('div', { class: 'nbflow-progress' }, ...progressOf(entry)));
  }
  const error = entry?.error ?? (detail.last?.state === 'failed' ? detail.last.error : null);
  if (error) {
    parts.push(
      section(
        'Error',
        h('div', { class: 'nbflow-error-inline' }, errorText(error)),
        h(
          'details',
          {},
          h('summary', {}, 'Traceback'),
          h('pre', { class: 'nbflow-traceback' }, error.traceback.join('\n'))
        )
      )
    );
  }
  const status = detail.status;
  parts.push(
    section(
      'Status',
      h('div', {}, badge(status.status), status.last_run ? ` · last run ${status.last_run}` : ''),
      ...(status.reasons.length
        ? [h('ul', { class: 'nbflow-reasons' }, ...status.reasons.map(r => h('li', {}, r)))]
        : [])
    )
  );

  const executedIn = entry?.output_notebook && run ? run.id : detail.last?.output_notebook ? detail.last_run : null;
  const failedRun =
    run && run.state !== 'running' && run.tasks.some(t => ['failed', 'upstream_failed', 'cancelled'].includes(t.state))
      ? run
      : null;
  const buttons = [
    button('Run', `Run ${detail.name} and its upstream (what is up to date is skipped)`, () =>
      actions.run([detail.name])
    ),
    button(
      'Run from here',
      `Run ${detail.name} and everything downstream of it, forced; its upstream is taken as done`,
      () => actions.run([detail.name], { downstream: true, force: true, upstream: false }),
      'nbflow-run-from-here'
    ),
    button('Notebook', `Open ${detail.notebook}`, () => actions.openNotebook(detail.notebook))
  ];
  if (failedRun) {
    buttons.push(
      button(
        'Rerun failed',
        `Run the failed and cancelled tasks of run ${failedRun.id} again, and their downstream, with its parameters`,
        () => actions.rerunFailed(failedRun.id),
        'nbflow-rerun-failed'
      )
    );
  }
  if (executedIn) {
    buttons.push(
      button('Executed notebook', `The notebook as run ${executedIn} executed it (read-only)`, () =>
        actions.openExecuted(executedIn, detail.name)
      ),
      button('Compare', `What changed in ${detail.name} since the run before ${executedIn}`, () =>
        actions.compare(executedIn, detail.name)
      )
    );
  }
  const reportRun =
    entry?.state === 'succeeded' && run ? run.id : detail.last?.state === 'succeeded' ? detail.last_run : null;
  if (detail.report && reportRun) {
    buttons.push(
      button(
        'Report',
        `The report run ${reportRun} wrote (${detail.report})`,
        () => actions.openReport(reportRun, detail.name),
        'nbflow-open-report'
      )
    );
  }
  parts.push(h('div', { class: 'nbflow-drawer-actions' }, ...buttons));

  const params = Object.entries(detail.params);
  parts.push(
    section(
      'Parameters',
      params.length
        ? h(
            'table',
            { class: 'nbflow-kv' },
            ...params.map(([k, v]) => h('tr', {}, h('td', {}, k), h('td', {}, display(v))))
          )
        : h('div', { class: 'nbflow-empty' }, 'None.')
    ),
    section('Inputs', fileRows(detail.inputs, preview, actions)),
    section('Outputs', fileRows(detail.outputs, preview, actions))
  );
  const links = (names: string[]) =>
    names.length
      ? h(
          'div',
          { class: 'nbflow-links' },
          ...names.map(name => {
            const link = h('a', { href: '#', class: 'nbflow-link', 'data-task': name }, name);
            link.addEventListener('click', event => {
              event.preventDefault();
              actions.select(name);
            });
            return link;
          })
        )
      : h('div', { class: 'nbflow-empty' }, 'None.');
  parts.push(section('Upstream', links(detail.upstream)), section('Downstream', links(detail.downstream)));
  return h('div', { class: 'nbflow-drawer-body', 'data-task': detail.name }, ...parts);
}

/** The drawer of a grid task: its instances counted and listed, each opening its own drawer. */
export function renderGroupDrawer(group: ITaskGroup, actions: IDrawerActions): HTMLElement {
  const rows = group.instances.map((instance: IInstance) => {
    const row = h(
      'tr',
      { class: 'nbflow-instance-row', 'data-task': instance.name },
      h('td', {}, badge(instance.state)),
      h('td', { class: 'nbflow-file-path', title: instance.name }, instance.name),
      h('td', {}, seconds(instance.duration))
    );
    row.addEventListener('click', () => actions.select(instance.name));
    return row;
  });
  return h(
    'div',
    { class: 'nbflow-drawer-body', 'data-task': group.task },
    header(group.task, actions),
    h('div', { class: 'nbflow-drawer-state' }, `${group.instances.length} instances: ${countsText(group.instances)}`),
    h(
      'div',
      { class: 'nbflow-drawer-actions' },
      button('Run all', `Run every instance of ${group.task} and its upstream`, () => actions.run([group.task]))
    ),
    section('Instances', h('table', { class: 'nbflow-instances-table' }, h('tbody', {}, ...rows)))
  );
}
