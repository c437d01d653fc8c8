/**
 * The colours of task and run states, defined once for the whole extension (graph nodes, run lists, details).
 * They follow the terminal's progress table: running blue, succeeded green, skipped pale green, failed red,
 * upstream_failed pale red, cancelled orange, pending grey.
 */

export const STATE_COLORS: { [state: string]: string } = {
  pending: '#bdbdbd',
  running: '#1e88e5',
  succeeded: '#2e7d32',
  skipped: '#81c784',
  failed: '#c62828',
  upstream_failed: '#ef9a9a',
  cancelled: '#ef6c00',
  interrupted: '#8d6e63'
};

/** A task's status when no run is shown for it (SPEC section 4, `status --json`). */
export const STATUS_COLORS: { [status: string]: string } = {
  up_to_date: STATE_COLORS.skipped,
  stale: '#fdd835',
  never_run: '#eeeeee',
  failed: STATE_COLORS.failed
};

export const LABELS: { [key: string]: string } = {
  up_to_date: 'up to date',
  never_run: 'never run',
  upstream_failed: 'upstream failed'
};

export function label(state: string): string {
  return LABELS[state] ?? state;
}

export function colorOf(state: string): string {
  return STATE_COLORS[state] ?? STATUS_COLORS[state] ?? '#bdbdbd';
}

/** Black or white text, whichever reads better on `background`. */
export function textOn(background: string): string {
  const hex = background.replace('#', '');
  const [r, g, b] = [0, 2, 4].map(i => parseInt(hex.slice(i, i + 2), 16) / 255);
  const luminance = 0.2126 * r + 0.7152 * g + 0.0722 * b;
  return luminance > 0.55 ? '#212121' : '#ffffff';
}

export const FINISHED = ['succeeded', 'failed', 'upstream_failed', 'skipped', 'cancelled'];
