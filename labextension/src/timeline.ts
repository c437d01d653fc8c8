/**
 * The shown run as a timeline (a Gantt chart): one bar per task instance from its start to its end (to now while
 * it runs), coloured by its state, on one time axis from the run's start, so where the time went and what ran side
 * by side can be seen. Instances that never started (skipped as up to date, upstream failed, still pending) are
 * listed after the bars with their state.
 */
import { IRunDetail, ITaskRun } from './api';
import { h, seconds } from './dom';
import { badge, styleOf } from './states';

const TICKS = 6;

export interface ITimelineActions {
  select(instance: string): void;
}

function time(stamp: string | null): number | null {
  return stamp ? new Date(stamp).getTime() : null;
}

/** A round step for about `TICKS` ticks over `span` seconds. */
function tickStep(span: number): number {
  const raw = Math.max(span, 0.001) / TICKS;
  const power = Math.pow(10, Math.floor(Math.log10(raw)));
  return [1, 2, 5, 10].map(m => m * power).find(step => step >= raw) ?? raw;
}

export function renderTimeline(
  run: IRunDetail | null,
  selected: string | null,
  actions: ITimelineActions
): HTMLElement {
  if (!run) {
    return h('div', { class: 'nbflow-empty' }, 'No run yet: the timeline shows a run once there is one.');
  }
  const start = time(run.started_at) ?? Date.now();
  const now = Date.now();
  const started = run.tasks
    .filter(t => t.started_at)
    .sort((a, b) => (time(a.started_at) ?? 0) - (time(b.started_at) ?? 0));
  const others = run.tasks.filter(t => !t.started_at);
  const endOf = (t: ITaskRun) => time(t.finished_at) ?? (t.state === 'running' ? now : (time(t.started_at) ?? now));
  const end = Math.max(time(run.finished_at) ?? now, ...started.map(endOf), start + 1);
  const span = (end - start) / 1000;
  const step = tickStep(span);
  const at = (ms: number) => `${(((ms - start) / 1000 / span) * 100).toFixed(3)}%`;

  const axis = h('div', { class: 'nbflow-timeline-axis' });
  for (let t = 0; t <= span + 1e-9; t += step) {
    const tick = h('span', { class: 'nbflow-timeline-tick' }, seconds(t));
    tick.style.left = `${((t / span) * 100).toFixed(3)}%`;
    axis.append(tick);
  }
  const rows = started.map(task => {
    const look = styleOf(task.state);
    const bar = h('div', {
      class: 'nbflow-timeline-bar',
      'data-state': task.state,
      title: `${task.name}: ${task.state}, ${seconds(((endOf(task) - (time(task.started_at) ?? start)) / 1000) as number)}`
    });
    bar.style.left = at(time(task.started_at)!);
    bar.style.width = `max(2px, ${(((endOf(task) - time(task.started_at)!) / 1000 / span) * 100).toFixed(3)}%)`;
    bar.style.background = look.fill;
    bar.style.border = `1px ${look.dashed ? 'dashed' : 'solid'} ${look.border}`;
    const took = task.state === 'running' ? 'running' : seconds(task.duration_s);
    const row = h(
      'div',
      {
        class: 'nbflow-timeline-row' + (task.name === selected ? ' nbflow-selected' : ''),
        'data-task': task.name
      },
      h('div', { class: 'nbflow-timeline-name', title: task.name }, task.name),
      h('div', { class: 'nbflow-timeline-track' }, bar),
      h('div', { class: 'nbflow-timeline-took' }, took)
    );
    row.addEventListener('click', () => actions.select(task.name));
    return row;
  });
  const unstarted = others.length
    ? [
        h('div', { class: 'nbflow-timeline-subtitle' }, `Not started in this run (${others.length})`),
        h(
          'div',
          { class: 'nbflow-timeline-unstarted' },
          ...others.map(task => {
            const item = h(
              'span',
              { class: 'nbflow-timeline-item', 'data-task': task.name },
              badge(task.state),
              task.name
            );
            item.addEventListener('click', () => actions.select(task.name));
            return item;
          })
        )
      ]
    : [];
  return h(
    'div',
    { class: 'nbflow-timeline', 'data-run': run.id },
    h(
      'div',
      { class: 'nbflow-timeline-head' },
      h('div', { class: 'nbflow-timeline-name' }, `${started.length} started`),
      axis,
      h('div', { class: 'nbflow-timeline-took' }, seconds(span))
    ),
    ...rows,
    ...unstarted
  );
}
