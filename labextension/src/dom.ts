/** Small DOM helpers shared by the side panel's parts. */

import { ApiError } from './api';

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
