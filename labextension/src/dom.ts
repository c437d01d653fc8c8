/** Small DOM helpers shared by the side panel's parts. */

import { ApiError, ITaskError } from './api';

/** An element with attributes and children. */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: { [key: string]: string } = {},
  ...children: (Node | string)[]
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === 'class') {
      node.className = value;
    } else {
      node.setAttribute(key, value);
    }
  }
  node.append(...children);
  return node;
}

/** An instance's or a task's name with places it may break at, after `[`, `,`, `/` and `_`, so a narrow column
 * wraps it between its parts rather than inside them. */
export function breakable(name: string): (Node | string)[] {
  return name.split(/(?<=[[,/_])/).flatMap((part, i) => (i ? [document.createElement('wbr'), part] : [part]));
}

/** Replace the children of `box` (`render`), keeping where the parts matching `selectors` were scrolled to: the
 * panel redraws every second while a run goes on, and a long list must not jump back to its top. */
export function keepingScroll(box: HTMLElement, selectors: string[], render: () => void): void {
  const before = selectors.map(selector => {
    const node = box.querySelector(selector);
    return node ? { top: node.scrollTop, left: node.scrollLeft } : null;
  });
  render();
  selectors.forEach((selector, i) => {
    const node = box.querySelector(selector);
    const at = before[i];
    if (node && at) {
      node.scrollTop = at.top;
      node.scrollLeft = at.left;
    }
  });
}

/** A time, short and local: the time of day for today, else the date and time to the minute. */
export function when(stamp: string | null): string {
  if (!stamp) {
    return '';
  }
  const date = new Date(stamp);
  const pad = (n: number) => String(n).padStart(2, '0');
  const time = `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`;
  if (date.toDateString() === new Date().toDateString()) {
    return time;
  }
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ${time.slice(0, 5)}`;
}

/** A duration, short: "4.2s", "3m12s"; nothing when there is none. */
export function seconds(value: number | null | undefined): string {
  if (value === null || value === undefined) {
    return '';
  }
  return value < 60 ? `${value.toFixed(1)}s` : `${Math.floor(value / 60)}m${Math.round(value % 60)}s`;
}

/** A parameter or grid value as the command line writes it: text as it is, anything else as JSON. */
export function display(value: unknown): string {
  return typeof value === 'string' ? value : JSON.stringify(value);
}

/** Where an error happened, as the Python side words it: the cell as the user sees it in the source notebook
 * (its index and first line), else the executed notebook's cell. */
function cellNamed(error: ITaskError): string {
  if (error.source_cell !== null && error.source_cell !== undefined) {
    return ` in cell ${error.source_cell}${error.source_line ? ` (\`${error.source_line}\`)` : ''}`;
  }
  return error.cell_index !== null && error.cell_index !== undefined ? ` in cell ${error.cell_index}` : '';
}

/** Why a task did not succeed, in one paragraph: the exception, where, and its message. */
export function errorText(error: ITaskError | null | undefined): string {
  return error ? `${error.ename}${cellNamed(error)}: ${error.evalue}` : '';
}

/** How far a time is from now, roughly: "in 5s", "in 3 min", "2 h ago". */
export function relative(stamp: string | null, now = Date.now()): string {
  if (!stamp) {
    return '';
  }
  const delta = (new Date(stamp).getTime() - now) / 1000;
  const size = Math.abs(delta);
  const text =
    size < 60
      ? `${Math.round(size)}s`
      : size < 3600
        ? `${Math.round(size / 60)} min`
        : size < 86400
          ? `${Math.round(size / 3600)} h`
          : `${Math.round(size / 86400)} d`;
  return delta >= 0 ? `in ${text}` : `${text} ago`;
}

/** Show an error in `box`: its message, or an ApiError's problems as a list, with a button that dismisses it. */
export function showErrorIn(box: HTMLElement, error: unknown): void {
  let message = String(error);
  let problems: string[] = [];
  if (error instanceof ApiError) {
    message = error.message;
    problems = error.problems;
  } else if (error instanceof Error) {
    message = error.message;
  }
  const close = h('button', { class: 'nbflow-error-close', title: 'Dismiss' }, '×');
  close.addEventListener('click', () => clearErrorIn(box));
  const lines =
    problems.length > 1 || (problems.length === 1 && problems[0] !== message)
      ? [h('div', {}, message.split('\n')[0]), h('ul', {}, ...problems.map(p => h('li', {}, p)))]
      : [h('div', { class: 'nbflow-pre' }, message)];
  box.replaceChildren(close, ...lines);
  box.hidden = false;
}

/** Empty and hide an error box. */
export function clearErrorIn(box: HTMLElement): void {
  box.replaceChildren();
  box.hidden = true;
}
