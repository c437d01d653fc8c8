/**
 * The side panel's "Schedules" section: each schedule (timing and zone, targets, parameters, next fire time in
 * local time, paused, last fired) with pause / resume / remove, whether a scheduler runs (and how to start one),
 * and a form to add a schedule. Its runs (trigger `schedule:NAME`) show in the panel's run history.
 */
import { Dialog, showDialog } from '@jupyterlab/apputils';

import { ISchedule, ISchedules, addSchedule, getSchedules, pauseSchedule, removeSchedule, resumeSchedule } from './api';
import { clearErrorIn, h, relative, when, showErrorIn } from './dom';

function display(value: unknown): string {
  return typeof value === 'string' ? value : JSON.stringify(value);
}

/** `name=value` lines -> each parameter's text; the server reads the text as `nbflow run -p NAME VALUE` does. */
export function parseParams(text: string): { [name: string]: string } {
  const params: { [name: string]: string } = {};
  for (const [index, raw] of text.split('\n').entries()) {
    const line = raw.trim();
    if (!line) {
      continue;
    }
    const eq = line.indexOf('=');
    const name = eq > 0 ? line.slice(0, eq).trim() : '';
    if (!name) {
      throw new Error(`Parameters, line ${index + 1}: write name=value (for example n=10, day={date}).`);
    }
    params[name] = line.slice(eq + 1).trim();
  }
  return params;
}

export class SchedulesSection {
  readonly node: HTMLDetailsElement;
  data: ISchedules | null = null;

  constructor() {
    this.statusBox = h('div', { class: 'nbflow-scheduler-status' });
    this.errorBox = h('div', { class: 'nbflow-schedules-error', role: 'alert' });
    this.errorBox.hidden = true;
    this.listBox = h('div', { class: 'nbflow-schedule-list' });

    this.nameInput = h('input', {
      type: 'text',
      class: 'jp-mod-styled nbflow-schedule-name-input',
      placeholder: 'nightly',
      title: "The schedule's name: letters, digits, '_', '-', '.'"
    });
    this.kindSelect = h(
      'select',
      { class: 'jp-mod-styled nbflow-schedule-kind' },
      h('option', { value: 'every' }, 'every'),
      h('option', { value: 'cron' }, 'cron')
    );
    this.timingInput = h('input', { type: 'text', class: 'jp-mod-styled nbflow-schedule-timing-input' });
    this.kindSelect.addEventListener('change', () => this.updatePlaceholders());
    this.tzInput = h('input', {
      type: 'text',
      class: 'jp-mod-styled nbflow-schedule-tz-input',
      placeholder: "the server's zone",
      title: "An IANA time zone such as Europe/Paris (default: the server's)"
    });
    this.targetsSelect = h('select', {
      class: 'jp-mod-styled nbflow-schedule-targets-input',
      multiple: '',
      title: 'The tasks to run with their upstream; none selected: every task'
    });
    this.paramsInput = h('textarea', {
      class: 'jp-mod-styled nbflow-schedule-params-input',
      rows: '2',
      placeholder: 'name=value, one a line; {date} and {datetime} are the fire time'
    });
    this.notifyInputs = ['failure', 'success'].map(event => {
      const box = h('input', { type: 'checkbox', class: `nbflow-schedule-notify-${event}` });
      box.checked = event === 'failure';
      box.value = event;
      return box;
    });
    this.deadlineInput = h('input', {
      type: 'text',
      class: 'jp-mod-styled nbflow-schedule-deadline-input',
      placeholder: 'HH:MM, e.g. 17:30',
      title: "Notify when no run of the day has succeeded by this time (in the schedule's zone)"
    });
    this.emailInput = h('input', {
      type: 'text',
      class: 'jp-mod-styled nbflow-schedule-email-input',
      placeholder: 'ops@example.com, ...',
      title: 'E-mail addresses to notify (the mail server is [notify.smtp] in nbflow.toml)'
    });
    this.addButton = h('button', { class: 'jp-Button nbflow-schedule-add-button' }, 'Add schedule');
    this.addButton.addEventListener('click', () => void this.add());
    this.updatePlaceholders();

    const field = (text: string, input: HTMLElement, hint = '') =>
      h('label', { class: 'nbflow-schedule-field', title: hint }, h('span', {}, text), input);
    const form = h(
      'div',
      { class: 'nbflow-schedule-form' },
      field('Name', this.nameInput),
      h(
        'div',
        { class: 'nbflow-schedule-field' },
        h('span', {}, 'Fires'),
        h('div', { class: 'nbflow-schedule-when' }, this.kindSelect, this.timingInput)
      ),
      field('Time zone', this.tzInput),
      field('Targets', this.targetsSelect),
      field('Parameters', this.paramsInput),
      h(
        'div',
        { class: 'nbflow-schedule-field', title: "The events that notify; with no e-mail, the project's [notify]" },
        h('span', {}, 'Notify on'),
        h(
          'div',
          { class: 'nbflow-schedule-notify' },
          ...this.notifyInputs.map(box => h('label', {}, box, ` ${box.value}`))
        )
      ),
      field('Deadline', this.deadlineInput),
      field('E-mail', this.emailInput),
      h('div', {}, this.addButton)
    );
    const addSection = h('details', { class: 'nbflow-schedule-add' }, h('summary', {}, 'Add a schedule'), form);

    this.node = h(
      'details',
      { class: 'nbflow-schedules-section', open: '' },
      h('summary', {}, 'Schedules'),
      this.statusBox,
      this.errorBox,
      this.listBox,
      addSection
    );
  }

  /** Reload the schedules and the scheduler's state; errors show in the section, never thrown. */
  async refresh(): Promise<void> {
    try {
      this.data = await getSchedules();
      if (this.loadFailed) {
        this.clearError();
        this.loadFailed = false;
      }
      this.render();
    } catch (error) {
      this.loadFailed = true;
      this.showError(error);
    }
  }

  /** The pipeline's task names, offered as targets (the selection is kept). */
  setTasks(names: string[]): void {
    const signature = JSON.stringify(names);
    if (signature === this.tasksSignature) {
      return;
    }
    this.tasksSignature = signature;
    const selected = new Set([...this.targetsSelect.selectedOptions].map(o => o.value));
    this.targetsSelect.replaceChildren(
      ...names.map(name => {
        const option = h('option', { value: name }, name);
        option.selected = selected.has(name);
        return option;
      })
    );
    this.targetsSelect.size = Math.max(2, Math.min(5, names.length));
  }

  async add(): Promise<void> {
    const name = this.nameInput.value.trim();
    const timing = this.timingInput.value.trim();
    let params: { [name: string]: string };
    try {
      if (!name) {
        throw new Error('Give the schedule a name.');
      }
      if (!timing) {
        throw new Error(
          this.kindSelect.value === 'cron'
            ? 'Give a cron expression, such as 0 17 * * *.'
            : 'Give an interval, such as 10m, 2h or 1d.'
        );
      }
      params = parseParams(this.paramsInput.value);
    } catch (error) {
      this.showError(error);
      return;
    }
    const targets = [...this.targetsSelect.selectedOptions].map(o => o.value);
    const kind = this.kindSelect.value;
    const deadline = this.deadlineInput.value.trim() || null;
    const emails = this.emailInput.value
      .split(',')
      .map(address => address.trim())
      .filter(Boolean);
    const events = this.notifyInputs.filter(box => box.checked).map(box => box.value);
    await this.act(async () => {
      await addSchedule({
        name,
        cron: kind === 'cron' ? timing : null,
        every: kind === 'every' ? timing : null,
        tz: this.tzInput.value.trim() || null,
        targets: targets.length ? targets : null,
        params_text: params,
        notify_on: deadline ? [...events, 'deadline'] : events,
        deadline,
        notify_email: emails
      });
      this.nameInput.value = '';
      this.timingInput.value = '';
      this.paramsInput.value = '';
      this.deadlineInput.value = '';
      this.emailInput.value = '';
      for (const option of this.targetsSelect.options) {
        option.selected = false;
      }
    }, this.addButton);
  }

  showError(error: unknown): void {
    showErrorIn(this.errorBox, error);
  }

  clearError(): void {
    clearErrorIn(this.errorBox);
  }

  // -- rendering ------------------------------------------------------------------------------------------------

  private render(): void {
    const data = this.data;
    if (!data) {
      return;
    }
    this.renderStatus(data);
    if (!data.schedules.length) {
      this.listBox.replaceChildren(h('div', { class: 'nbflow-empty' }, 'No schedules.'));
      return;
    }
    this.listBox.replaceChildren(...data.schedules.map(s => this.renderSchedule(s)));
  }

  private renderStatus(data: ISchedules): void {
    const scheduler = data.scheduler;
    const code = (text: string) => h('code', {}, text);
    let parts: (Node | string)[];
    if (scheduler?.here) {
      parts = ['The scheduler runs in this Jupyter server: schedules fire while it runs.'];
    } else if (scheduler) {
      parts = [`A scheduler is running (process ${scheduler.pid} on ${scheduler.host}): schedules fire.`];
      if (data.hosted) {
        parts.push(" This server's scheduler stands by.");
      }
    } else {
      parts = [
        'No scheduler is running: schedules fire only while one runs. Start one with ',
        code('nbflow scheduler'),
        " in the project's folder, or set ",
        code('c.NbflowApp.scheduler = True'),
        " in the Jupyter server's configuration and restart it."
      ];
      if (data.host_setting && data.scheduler_error) {
        parts = [`This server's scheduler cannot start: ${data.scheduler_error}`];
      }
    }
    this.statusBox.dataset.running = scheduler ? 'true' : 'false';
    this.statusBox.replaceChildren(h('span', { class: 'nbflow-scheduler-dot' }), h('span', {}, ...parts));
  }

  private renderSchedule(schedule: ISchedule): HTMLElement {
    const timing = schedule.cron ? `cron ${schedule.cron}` : `every ${schedule.every}`;
    const pause = h(
      'button',
      {
        class: `jp-Button nbflow-schedule-${schedule.paused ? 'resume' : 'pause'}`,
        title: schedule.paused ? 'Fire again from the next slot on' : 'Stop firing until resumed'
      },
      schedule.paused ? 'Resume' : 'Pause'
    );
    pause.addEventListener(
      'click',
      () => void this.act(() => (schedule.paused ? resumeSchedule(schedule.name) : pauseSchedule(schedule.name)), pause)
    );
    const remove = h(
      'button',
      { class: 'jp-Button nbflow-schedule-remove', title: 'Remove the schedule (its past runs stay in the history)' },
      'Remove'
    );
    remove.addEventListener('click', () => void this.remove(schedule.name, remove));

    const params = Object.entries(schedule.params);
    const next = schedule.paused
      ? h('span', { class: 'nbflow-schedule-next' }, 'paused: does not fire')
      : h(
          'span',
          { class: 'nbflow-schedule-next', title: `${schedule.next_fire} (${schedule.tz})` },
          schedule.next_fire
            ? `next ${when(schedule.next_fire)} (${relative(schedule.next_fire)})`
            : 'no next fire time'
        );
    const last = h(
      'span',
      { class: 'nbflow-schedule-last', title: schedule.last_fired ?? '' },
      schedule.last_fired ? `last fired ${when(schedule.last_fired)}` : 'not fired yet'
    );
    const rows: (Node | string)[] = [
      h(
        'div',
        { class: 'nbflow-schedule-head' },
        h('span', { class: 'nbflow-schedule-name' }, schedule.name),
        ...(schedule.paused ? [h('span', { class: 'nbflow-badge nbflow-paused-badge' }, 'paused')] : []),
        h('span', { class: 'nbflow-schedule-buttons' }, pause, remove)
      ),
      h('div', { class: 'nbflow-schedule-timing' }, `${timing} · ${schedule.tz}`),
      h(
        'div',
        { class: 'nbflow-schedule-targets' },
        schedule.targets.length ? `targets: ${schedule.targets.join(', ')}` : 'targets: every task'
      ),
      ...(params.length
        ? [
            h(
              'div',
              { class: 'nbflow-schedule-params' },
              'params: ' + params.map(([k, v]) => `${k}=${display(v)}`).join(', ')
            )
          ]
        : []),
      h('div', { class: 'nbflow-schedule-times' }, next, ' · ', last)
    ];
    const channels = [
      schedule.notify_email?.length && `e-mail: ${schedule.notify_email.join(', ')}`,
      schedule.on_failure_command && `command: ${schedule.on_failure_command}`,
      schedule.on_failure_webhook && `webhook: ${schedule.on_failure_webhook}`
    ].filter(Boolean);
    const events = (schedule.notify_on ?? []).map(e => (e === 'deadline' ? `deadline ${schedule.deadline}` : e));
    if (events.length) {
      const where = channels.length ? channels.join('; ') : "the project's [notify]";
      rows.push(h('div', { class: 'nbflow-schedule-alerts' }, `notify on ${events.join(', ')}: ${where}`));
    }
    return h(
      'div',
      {
        class: 'nbflow-schedule' + (schedule.paused ? ' nbflow-schedule-paused' : ''),
        'data-schedule': schedule.name,
        'data-paused': String(schedule.paused)
      },
      ...rows
    );
  }

  private updatePlaceholders(): void {
    const cron = this.kindSelect.value === 'cron';
    this.timingInput.placeholder = cron ? '0 17 * * *' : '10m, 2h, 1d';
    this.timingInput.title = cron
      ? 'A cron expression: minute hour day month weekday'
      : 'An interval: 30s, 10m, 2h, 1d (or 1h30m)';
  }

  private async remove(name: string, button: HTMLButtonElement): Promise<void> {
    const answer = await showDialog({
      title: `Remove the schedule ${name}?`,
      body: 'It stops firing; its past runs stay in the history.',
      buttons: [Dialog.cancelButton(), Dialog.warnButton({ label: 'Remove' })]
    });
    if (answer.button.accept) {
      await this.act(() => removeSchedule(name), button);
    }
  }

  /** Do one change, then reload; an error shows in the section. */
  private async act(change: () => Promise<unknown>, button: HTMLButtonElement): Promise<void> {
    button.disabled = true;
    try {
      await change();
      this.clearError();
    } catch (error) {
      this.showError(error);
    } finally {
      button.disabled = false;
    }
    await this.refresh();
  }

  private statusBox: HTMLElement;
  private errorBox: HTMLElement;
  private listBox: HTMLElement;
  private nameInput: HTMLInputElement;
  private kindSelect: HTMLSelectElement;
  private timingInput: HTMLInputElement;
  private tzInput: HTMLInputElement;
  private targetsSelect: HTMLSelectElement;
  private paramsInput: HTMLTextAreaElement;
  private notifyInputs: HTMLInputElement[];
  private deadlineInput: HTMLInputElement;
  private emailInput: HTMLInputElement;
  private addButton: HTMLButtonElement;
  private tasksSignature = '';
  private loadFailed = false;
}
