/**
 * How task and run states look in the extension (graph nodes, badges in run lists and details). The colours and
 * words come from `palette.generated.ts`, generated from nbflow/palette.py, so a state looks the same here as in
 * the notebook panel and the SVG drawings.
 */
import { h } from './dom';
import { FINISHED_TASK_STATES, IStateStyle, RUN_LABELS, STYLES, TEXT_COLOR, UNKNOWN } from './palette.generated';

export { TEXT_COLOR };

export function styleOf(state: string): IStateStyle {
  return STYLES[state] ?? UNKNOWN;
}

/** The words for a task's state or status. */
export function label(state: string): string {
  return STYLES[state]?.label ?? state.replace(/_/g, ' ');
}

// Where a count of instances must be short (a node, a cell): the palette's words for the longer ones, cut.
const SHORT_LABELS: { readonly [state: string]: string } = {
  succeeded: 'ok',
  skipped: 'skipped',
  waiting: 'waiting'
};

/** The short words for a state, where a count of instances must fit a node: "3 ok · 1 failed". */
export function shortLabel(state: string): string {
  return SHORT_LABELS[state] ?? label(state);
}

// One mark per state, so a cell too small for words still says more than its colour.
const SYMBOLS: { readonly [state: string]: string } = {
  succeeded: '✓',
  up_to_date: '✓',
  skipped: '=',
  failed: '✗',
  upstream_failed: '↑',
  running: '●',
  waiting: '‖',
  pending: '·',
  cancelled: '–',
  interrupted: '!',
  stale: '~',
  never_run: ' '
};

/** A one-character mark for a state (in a partition's cells and their legend). */
export function symbolOf(state: string): string {
  return SYMBOLS[state] ?? '?';
}

/** The words for a run's state. */
export function runLabel(state: string): string {
  return RUN_LABELS[state] ?? label(state);
}

/** The task will not change state again in its run. */
export function isFinished(state: string): boolean {
  return (FINISHED_TASK_STATES as readonly string[]).includes(state);
}

/** Colour a badge element (`.nbflow-badge`) as its state: fill, outline and dark text. */
export function paintBadge(node: HTMLElement, state: string): void {
  const look = styleOf(state);
  node.dataset.state = state;
  node.style.background = look.fill;
  node.style.border = `1px ${look.dashed ? 'dashed' : 'solid'} ${look.border}`;
  node.style.color = TEXT_COLOR;
}

/** A task's state (or, with `words`, a run's) as a small coloured label. */
export function badge(state: string, words = label): HTMLElement {
  const node = h('span', { class: 'nbflow-badge' }, words(state));
  paintBadge(node, state);
  return node;
}
