/**
 * The Reports view (main area): the latest report of every task instance, grouped by task, and, for the one
 * chosen, the report itself with every earlier version a run kept. A report is shown in a sandboxed frame loaded
 * from the server, which also confines it (its scripts run in an origin of their own: they cannot use the
 * Jupyter server's cookies or reach this page). The list follows new runs by polling while the view is visible.
 */
import { Poll } from '@lumino/polling';
import { Message } from '@lumino/messaging';
import { Widget } from '@lumino/widgets';

import { IReport, getReports, reportUrl } from './api';
import { clearErrorIn, display, h, showErrorIn, when } from './dom';

const POLL_MS = 10_000;

/** What one list row or version stands for: a run's report of an instance. */
function keyOf(report: IReport): string {
  return `${report.run_id}\u0000${report.name}`;
}

/** An instance's grid values as `region=north, day=...`, or its task's name when it has none. */
function instanceLabel(report: IReport): string {
  const values = Object.entries(report.grid ?? {});
  return values.length ? values.map(([name, value]) => `${name}=${display(value)}`).join(', ') : report.task;
}

function paramsText(params: { [key: string]: unknown }): string {
  const entries = Object.entries(params);
  return entries.length ? entries.map(([name, value]) => `${name} = ${display(value)}`).join(' · ') : 'none';
}

export class ReportsView extends Widget {
  /** The latest report of each instance, as last read. */
  latest: IReport[] = [];
  /** The versions of the chosen instance, newest first. */
  versions: IReport[] = [];
  /** The chosen report (a run's report of an instance), or null. */
  chosen: IReport | null = null;

  constructor() {
    super();
    this.addClass('nbflow-Reports');
    this.id = 'nbflow-reports';
    this.title.label = 'nbflow Reports';
    this.title.caption = 'The reports the pipeline writes, with their earlier versions';
    this.title.closable = true;

    const refresh = h(
      'button',
      { class: 'jp-Button nbflow-reports-refresh', title: 'Read the reports again' },
      'Refresh'
    );
    refresh.addEventListener('click', () => void this.refresh());
    this.errorBox = h('div', { class: 'nbflow-error', role: 'alert' });
    this.errorBox.hidden = true;
    this.listBox = h('div', { class: 'nbflow-Reports-list' });
    this.header = h('div', { class: 'nbflow-Reports-header' });
    this.versionsBox = h('div', { class: 'nbflow-Reports-versions' });
    this.frame = h('iframe', {
      class: 'nbflow-Reports-frame',
      title: 'report',
      sandbox: 'allow-scripts allow-popups',
      referrerpolicy: 'no-referrer'
    });
    this.frame.hidden = true;
    this.placeholder = h('div', { class: 'nbflow-empty nbflow-Reports-placeholder' }, 'Choose a report on the left.');
    const side = h(
      'div',
      { class: 'nbflow-Reports-side' },
      h('div', { class: 'nbflow-Reports-toolbar' }, h('span', { class: 'nbflow-title' }, 'Reports'), refresh),
      this.errorBox,
      this.listBox
    );
    const page = h(
      'div',
      { class: 'nbflow-Reports-page' },
      this.header,
      this.versionsBox,
      this.placeholder,
      this.frame
    );
    this.node.append(side, page);

    this.poll = new Poll({
      factory: () => this.refresh(),
      frequency: { interval: POLL_MS, backoff: true, max: 6 * POLL_MS },
      standby: 'when-hidden',
      name: 'nbflow:reports'
    });
  }

  dispose(): void {
    this.poll.dispose();
    super.dispose();
  }

  /** Read the latest reports (and the chosen instance's versions) and draw them. */
  async refresh(): Promise<void> {
    try {
      this.latest = await getReports();
      clearErrorIn(this.errorBox);
    } catch (error) {
      showErrorIn(this.errorBox, error);
      throw error; // the poll backs off while the server does not answer
    }
    this.renderList();
    const chosen = this.chosen;
    if (!chosen && this.latest.length) {
      await this.choose(this.latest[0]);
    } else if (chosen) {
      await this.loadVersions(chosen.name);
      this.renderChosen();
    }
  }

  /** Show a run's report of an instance (its newest when `report` is the instance's latest). */
  async choose(report: IReport): Promise<void> {
    const sameInstance = this.chosen?.name === report.name;
    this.chosen = report;
    if (!sameInstance) {
      this.versions = [report];
      this.renderChosen();
      await this.loadVersions(report.name);
    }
    this.renderList();
    this.renderChosen();
  }

  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    void this.poll.refresh();
  }

  private async loadVersions(instance: string): Promise<void> {
    try {
      const versions = await getReports({ every: true, task: instance });
      this.versions = versions.filter(version => version.name === instance); // a selector matches more instances
    } catch (error) {
      showErrorIn(this.errorBox, error);
    }
  }

  private renderList(): void {
    if (!this.latest.length) {
      this.listBox.replaceChildren(
        h(
          'div',
          { class: 'nbflow-empty' },
          'No report yet. A task declares one in its parameters cell (report = "reports/{report_date}.html"); ' +
            'each run that succeeds writes it.'
        )
      );
      return;
    }
    const byTask = new Map<string, IReport[]>();
    for (const report of this.latest) {
      byTask.set(report.task, [...(byTask.get(report.task) ?? []), report]);
    }
    const groups = [...byTask].map(([task, reports]) =>
      h(
        'div',
        { class: 'nbflow-Reports-task', 'data-task': task },
        h('div', { class: 'nbflow-Reports-taskname' }, task),
        ...reports.map(report => this.listRow(report))
      )
    );
    this.listBox.replaceChildren(...groups);
  }

  private listRow(report: IReport): HTMLElement {
    const chosen = this.chosen?.name === report.name;
    const row = h(
      'button',
      {
        class: `nbflow-Reports-item${chosen ? ' nbflow-chosen' : ''}`,
        'data-instance': report.name,
        title: `${report.path}, written by run ${report.run_id}`
      },
      h('span', { class: 'nbflow-Reports-instance' }, instanceLabel(report)),
      h('span', { class: 'nbflow-Reports-when' }, when(report.written_at))
    );
    if (!report.exists) {
      row.append(h('span', { class: 'nbflow-Reports-gone', title: `${report.path} is not there` }, 'file gone'));
    }
    row.addEventListener('click', () => void this.choose(report));
    return row;
  }

  private renderChosen(): void {
    const report = this.chosen;
    if (!report) {
      this.header.replaceChildren();
      this.versionsBox.replaceChildren();
      this.frame.hidden = true;
      this.placeholder.hidden = false;
      return;
    }
    const newest = this.versions[0];
    const isLatest = !newest || keyOf(newest) === keyOf(report);
    this.header.replaceChildren(
      h('div', { class: 'nbflow-Reports-title' }, report.name),
      h(
        'div',
        { class: 'nbflow-Reports-meta' },
        `run ${report.run_id} · written ${when(report.written_at)} · ${report.path}` +
          (isLatest ? '' : ' · an earlier version')
      ),
      h('div', { class: 'nbflow-Reports-params' }, `parameters: ${paramsText(report.params)}`)
    );
    const select = h('select', { class: 'nbflow-Reports-version', title: 'The versions the runs kept' });
    for (const version of this.versions) {
      const option = h(
        'option',
        { value: keyOf(version) },
        `${when(version.written_at)} · run ${version.run_id}${version === newest ? ' (latest)' : ''}` +
          (version.run_copy_exists ? '' : ' · gone')
      );
      option.selected = keyOf(version) === keyOf(report);
      select.append(option);
    }
    select.addEventListener('change', () => {
      const version = this.versions.find(v => keyOf(v) === select.value);
      if (version) {
        void this.choose(version);
      }
    });
    this.versionsBox.replaceChildren(
      h('label', {}, `${this.versions.length} version${this.versions.length === 1 ? '' : 's'}: `, select)
    );
    if (!report.run_copy_exists) {
      this.frame.hidden = true;
      this.placeholder.hidden = false;
      this.placeholder.textContent = `The copy run ${report.run_id} kept (${report.run_copy}) is gone.`;
      return;
    }
    const url = reportUrl(report.run_id, report.name);
    if (this.frame.getAttribute('src') !== url) {
      this.frame.setAttribute('src', url);
      this.frame.title = `report ${report.name}, run ${report.run_id}`;
    }
    this.frame.hidden = false;
    this.placeholder.hidden = true;
  }

  private errorBox: HTMLElement;
  private listBox: HTMLElement;
  private header: HTMLElement;
  private versionsBox: HTMLElement;
  private frame: HTMLIFrameElement;
  private placeholder: HTMLElement;
  private poll: Poll;
}
