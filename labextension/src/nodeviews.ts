/**
 * What a task's node says of it, the same in the side panel and the pipeline view (and in the panel's list of
 * tasks): the state it is coloured as, its second line (a running notebook's cell and elapsed time, a finished
 * task's state and duration, a grid task's instances counted), a tooltip with why its status is what it is and the
 * running cell's first line, and how far a running notebook has got.
 */
import { IPipeline } from './api';
import { seconds } from './dom';
import { INodeView } from './graph';
import { ITaskGroup, countsText, worstState } from './groups';
import { label } from './states';

/** The node of each group, by task; `hint` ends a node's tooltip with what a click on it does where it is drawn. */
export function nodeViews(
  groups: ITaskGroup[],
  pipeline: IPipeline,
  hint: (group: ITaskGroup) => string,
  now = Date.now()
): Map<string, INodeView> {
  const statuses = new Map(pipeline.tasks.map(t => [t.name, t.status?.status ?? 'unknown']));
  const views = new Map<string, INodeView>();
  for (const group of groups) {
    if (group.grouped) {
      views.set(group.task, {
        state: worstState(group.instances),
        detail: countsText(group.instances, true),
        title:
          `${group.task}: ${group.notebook}\n${group.instances.length} instances: ` +
          `${countsText(group.instances)}\n${hint(group)}`,
        executed: false,
        grouped: true,
        expanded: false,
        count: group.instances.length
      });
      continue;
    }
    const [instance] = group.instances;
    const progress = instance.state === 'running' ? instance.entry?.progress : null;
    let detail: string;
    if (instance.state === 'running') {
      const started = instance.entry?.started_at ? new Date(instance.entry.started_at).getTime() : null;
      const elapsed = started !== null ? seconds(Math.max(0, now - started) / 1000) : '';
      detail = [progress ? `cell ${progress.cell}/${progress.cells}` : 'starting', elapsed].filter(Boolean).join(' · ');
    } else {
      detail = [label(instance.state), instance.entry ? seconds(instance.duration) : ''].filter(Boolean).join(' · ');
    }
    const reasons = instance.reasons.length ? `\n  ${instance.reasons.join('\n  ')}` : '';
    const running = progress?.line ? `\nrunning: ${progress.line}` : '';
    views.set(group.task, {
      state: instance.state,
      detail,
      title:
        `${group.task}: ${group.notebook}\nstatus: ${label(statuses.get(instance.name) ?? 'unknown')}` +
        `${reasons}${running}\n${hint(group)}`,
      executed: !!instance.executedRun,
      grouped: false,
      expanded: false,
      count: 1,
      progress: progress ? (progress.cell - 1) / Math.max(1, progress.cells) : undefined
    });
  }
  return views;
}
