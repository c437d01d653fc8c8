/**
 * The pipeline graph as SVG: tasks laid out in topological levels, top to bottom (a level wraps onto more lines
 * when the panel is narrow), each node filled with its state's colour.
 */
import { IPipeline } from './api';
import { colorOf, textOn } from './states';

const SVG = 'http://www.w3.org/2000/svg';
const MIN_W = 96;
const MAX_W = 150;
const NODE_H = 40;
const GAP_X = 8;
const GAP_LINE = 10;
const GAP_LEVEL = 30;
const PAD = 8;

/** What a node shows: its state (colour), a second line, a tooltip, and whether an executed notebook exists. */
export interface INodeView {
  state: string;
  detail: string;
  title: string;
  executed: boolean;
}

export interface IGraphActions {
  open(task: string): void;
  run(task: string): void;
  openExecuted(task: string): void;
}

function el<K extends keyof SVGElementTagNameMap>(
  name: K,
  attrs: { [key: string]: string | number },
  parent?: Element
): SVGElementTagNameMap[K] {
  const node = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attrs)) {
    node.setAttribute(key, String(value));
  }
  parent?.appendChild(node);
  return node;
}

/** Level of each task: 0 for sources, else one more than its deepest upstream task. */
export function levels(pipeline: IPipeline): Map<string, number> {
  const result = new Map<string, number>();
  const upstream = new Map<string, string[]>(pipeline.tasks.map(t => [t.name, []]));
  for (const edge of pipeline.edges) {
    upstream.get(edge.to)?.push(edge.from);
  }
  const visit = (name: string, seen: Set<string>): number => {
    if (result.has(name)) {
      return result.get(name)!;
    }
    if (seen.has(name)) {
      return 0; // a cycle cannot reach here (the server refuses it), but never loop
    }
    seen.add(name);
    const ups = upstream.get(name) ?? [];
    const level = ups.length ? 1 + Math.max(...ups.map(u => visit(u, seen))) : 0;
    result.set(name, level);
    return level;
  };
  pipeline.tasks.forEach(t => visit(t.name, new Set()));
  return result;
}

function truncate(text: string, width: number, charWidth: number): string {
  const max = Math.max(3, Math.floor(width / charWidth));
  return text.length <= max ? text : text.slice(0, max - 1) + '…';
}

export function drawGraph(
  pipeline: IPipeline,
  views: Map<string, INodeView>,
  available: number,
  actions: IGraphActions
): SVGSVGElement {
  const byLevel = new Map<number, string[]>();
  const level = levels(pipeline);
  for (const task of pipeline.tasks) {
    const n = level.get(task.name) ?? 0;
    byLevel.set(n, [...(byLevel.get(n) ?? []), task.name]);
  }
  // A level that does not fit on one line wraps; each line's nodes share its width (MIN_W to MAX_W).
  const width = Math.max(available, MIN_W + 2 * PAD);
  const perLine = Math.max(1, Math.floor((width - 2 * PAD + GAP_X) / (MIN_W + GAP_X)));
  const positions = new Map<string, { x: number; y: number; w: number }>();
  let y = PAD;
  const levelNumbers = [...byLevel.keys()].sort((a, b) => a - b);
  for (const n of levelNumbers) {
    const names = byLevel.get(n)!;
    for (let start = 0; start < names.length; start += perLine) {
      const line = names.slice(start, start + perLine);
      const w = Math.min(MAX_W, Math.floor((width - 2 * PAD - (perLine - 1) * GAP_X) / Math.min(perLine, names.length)));
      const lineWidth = line.length * w + (line.length - 1) * GAP_X;
      let x = Math.max(PAD, (width - lineWidth) / 2);
      for (const name of line) {
        positions.set(name, { x, y, w });
        x += w + GAP_X;
      }
      y += NODE_H + GAP_LINE;
    }
    y += GAP_LEVEL - GAP_LINE;
  }
  const height = Math.max(y - GAP_LEVEL + GAP_LINE + PAD, 2 * PAD);

  const svg = el('svg', { width, height, viewBox: `0 0 ${width} ${height}`, class: 'nbflow-graph' });
  const defs = el('defs', {}, svg);
  const marker = el(
    'marker',
    { id: 'nbflow-arrow', viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto' },
    defs
  );
  el('path', { d: 'M 0 0 L 10 5 L 0 10 z', class: 'nbflow-edge-head' }, marker);

  for (const edge of pipeline.edges) {
    const from = positions.get(edge.from);
    const to = positions.get(edge.to);
    if (!from || !to) {
      continue;
    }
    const sx = from.x + from.w / 2;
    const sy = from.y + NODE_H;
    const tx = to.x + to.w / 2;
    const ty = to.y;
    const dy = Math.max(12, (ty - sy) / 2);
    const path = el(
      'path',
      { d: `M ${sx} ${sy} C ${sx} ${sy + dy} ${tx} ${ty - dy} ${tx} ${ty - 1}`, class: 'nbflow-edge',
        'marker-end': 'url(#nbflow-arrow)' },
      svg
    );
    el('title', {}, path).textContent = `${edge.from} → ${edge.to}` + (edge.via.length ? `: ${edge.via.join(', ')}` : ' (upstream)');
  }

  for (const task of pipeline.tasks) {
    const at = positions.get(task.name)!;
    const NODE_W = at.w;
    const view = views.get(task.name) ?? { state: 'never_run', detail: '', title: task.notebook, executed: false };
    const fill = colorOf(view.state);
    const ink = textOn(fill);
    const group = el(
      'g',
      { class: 'nbflow-node', transform: `translate(${at.x},${at.y})`, 'data-task': task.name, 'data-state': view.state },
      svg
    );
    el('title', {}, group).textContent = view.detail ? `${view.title}\n${view.detail}` : view.title;
    const box = el(
      'rect',
      { width: NODE_W, height: NODE_H, rx: 6, ry: 6, fill, class: 'nbflow-node-box' + (view.state === 'running' ? ' nbflow-running' : '') },
      group
    );
    box.addEventListener('click', () => actions.open(task.name));
    const name = el('text', { x: 8, y: 16, fill: ink, class: 'nbflow-node-name' }, group);
    name.textContent = truncate(task.name, NODE_W - 30, 6.6);
    name.addEventListener('click', () => actions.open(task.name));
    const detail = el('text', { x: 8, y: 32, fill: ink, class: 'nbflow-node-detail' }, group);
    detail.textContent = truncate(view.detail, NODE_W - 30, 5.4);
    detail.addEventListener('click', () => actions.open(task.name));

    const run = el('g', { class: 'nbflow-node-run', transform: `translate(${NODE_W - 22},3)` }, group);
    el('title', {}, run).textContent = `Run ${task.name} and its upstream`;
    el('rect', { width: 18, height: 16, fill: 'transparent' }, run);
    el('path', { d: 'M 5 2 L 15 8 L 5 14 z', fill: ink }, run);
    run.addEventListener('click', event => {
      event.stopPropagation();
      actions.run(task.name);
    });
    if (view.executed) {
      const out = el('g', { class: 'nbflow-node-output', transform: `translate(${NODE_W - 22},21)` }, group);
      el('title', {}, out).textContent = `Open the executed notebook of ${task.name} (read-only)`;
      el('rect', { width: 18, height: 17, fill: 'transparent' }, out);
      el('path', { d: 'M 4 2 L 11 2 L 15 6 L 15 16 L 4 16 z M 11 2 L 11 6 L 15 6', fill: 'none', stroke: ink,
                   'stroke-width': 1.4 }, out);
      out.addEventListener('click', event => {
        event.stopPropagation();
        actions.openExecuted(task.name);
      });
    }
  }
  return svg;
}
