/**
 * The pipeline graph as SVG, laid out by dagre: left to right, as nbflow's other drawings go, or top to bottom when
 * the panel is too narrow for that. Each task is a box in its state's colours with its name (whole, on one line),
 * what it shows (its state and duration, or a grid task's instances counted by state), a run button and, once it
 * ran, a link to its executed notebook (for a grid task: a button listing its instances). Edges curve only between
 * the layers of boxes and pass a layer straight, where dagre kept room for them.
 */
import dagre, { EdgeLabel, GraphLabel, NodeLabel } from '@dagrejs/dagre';

import { IEdge } from './api';
import { TEXT_COLOR, styleOf } from './states';

const SVG = 'http://www.w3.org/2000/svg';
const NODE_H = 40;
const TEXT_X = 8;
const ICONS_W = 30; // the run button and the executed-notebook link, one above the other at the right
const MIN_W = 64;
const STACK = 3; // how far a grid task's cards lie apart
const NODE_GAP = 12;
const LAYER_GAP = 32;
const PAD = 6;
const MIN_SCALE = 0.8; // drawn smaller than this the words are hard to read: the box scrolls instead

/** The tasks (one node each, a grid task too) and the edges between them. */
export interface IGraph {
  nodes: string[];
  edges: IEdge[];
}

/** What a node shows: its state (colour), a second line, a tooltip, whether an executed notebook exists, whether
 * it stands for several instances (`grouped`: its second button lists them) and whether that list is open. */
export interface INodeView {
  state: string;
  detail: string;
  title: string;
  executed: boolean;
  grouped: boolean;
  expanded: boolean;
  count: number;
  selected?: boolean; // the pipeline view's drawer shows it
  progress?: number; // of a running task, how far its cells have got (0 to 1): a bar along the box's foot
}

/** The view of task `name` in `views`; a task it lacks is drawn as never run. */
export function nodeViewIn(views: Map<string, INodeView>, name: string): INodeView {
  return (
    views.get(name) ?? {
      state: 'never_run',
      detail: '',
      title: name,
      executed: false,
      grouped: false,
      expanded: false,
      count: 1
    }
  );
}

/** What a node's buttons say they do, in the graph and in the side panel's list of tasks. */
export function buttonTitles(task: string, view: INodeView): { run: string; expand: string; executed: string } {
  return {
    run: view.grouped ? `Run every instance of ${task} and its upstream` : `Run ${task} and its upstream`,
    expand: view.expanded
      ? `Close the list of the instances of ${task}`
      : `List the ${view.count} instances of ${task}`,
    executed: `Open the executed notebook of ${task} (read-only)`
  };
}

export interface IGraphActions {
  open(task: string): void;
  run(task: string): void;
  openExecuted(task: string): void;
  expand(task: string): void;
}

type Direction = 'LR' | 'TB';
type Alignment = 'UL' | 'UR' | 'DL' | 'DR';
// dagre's alignments: its default (balanced) first; the others are often narrower top to bottom
const ALIGNMENTS: (Alignment | undefined)[] = [undefined, 'UR', 'UL', 'DR', 'DL'];

interface IPoint {
  x: number;
  y: number;
}

interface IBox {
  x: number; // the top-left corner
  y: number;
  w: number;
  h: number;
}

interface ILayout {
  direction: Direction;
  width: number;
  height: number;
  boxes: Map<string, IBox>;
  routes: IPoint[][]; // in the order of graph.edges
  labels: (IPoint | null)[]; // where each edge's label is centred (null: no label)
}

/** How a drawing is made: the side panel's fits its width; the pipeline view's goes left to right whatever its
 * size (it pans and zooms) and labels each edge with the files it stands for. */
export interface IDrawOptions {
  leftToRight?: boolean;
  edgeLabels?: boolean;
}

const LABEL_H = 14;
const LABEL_PAD = 4;

/** An edge's label: the file it stands for (the first of several, and how many more); none for `upstream`. */
export function edgeLabel(edge: IEdge): string {
  if (!edge.via.length) {
    return '';
  }
  const first = edge.via[0].replace(/\/+$/, '').split('/').pop() ?? edge.via[0];
  return edge.via.length > 1 ? `${first} +${edge.via.length - 1}` : first;
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

/** How wide a text is in the panel's font (`font` as in CSS, e.g. "600 12px sans-serif"). */
function textWidth(font: string): (text: string) => number {
  const context = document.createElement('canvas').getContext('2d');
  if (!context) {
    return text => text.length * 7.5;
  }
  context.font = font;
  return text => context.measureText(text).width;
}

/** The layers of boxes along the direction of the edges: from where to where each one reaches. */
function layersOf(boxes: Iterable<IBox>, direction: Direction): [number, number][] {
  const layers: [number, number][] = [];
  for (const box of boxes) {
    const [start, end] = direction === 'LR' ? [box.x, box.x + box.w] : [box.y, box.y + box.h];
    const centre = (start + end) / 2;
    const layer = layers.find(([a, b]) => a <= centre && centre <= b);
    if (layer) {
      layer[0] = Math.min(layer[0], start);
      layer[1] = Math.max(layer[1], end);
    } else {
      layers.push([start, end]);
    }
  }
  return layers;
}

function layout(
  pipeline: IGraph,
  widths: Map<string, number>,
  direction: Direction,
  align?: Alignment,
  labelWidths?: number[]
): ILayout {
  const graph = new dagre.graphlib.Graph<GraphLabel, NodeLabel, EdgeLabel>();
  graph.setGraph({
    rankdir: direction,
    align,
    nodesep: NODE_GAP,
    ranksep: LAYER_GAP,
    edgesep: 8,
    marginx: PAD,
    marginy: PAD
  });
  graph.setDefaultEdgeLabel(() => ({}));
  for (const name of pipeline.nodes) {
    graph.setNode(name, { width: widths.get(name) ?? MIN_W, height: NODE_H });
  }
  pipeline.edges.forEach((edge, i) => {
    const width = labelWidths?.[i] ?? 0;
    graph.setEdge(edge.from, edge.to, width ? { width, height: LABEL_H, labelpos: 'c' } : {});
  });
  dagre.layout(graph);

  const boxes = new Map<string, IBox>();
  for (const name of pipeline.nodes) {
    const node = graph.node(name);
    boxes.set(name, { x: node.x! - node.width / 2, y: node.y! - node.height / 2, w: node.width, h: node.height });
  }
  const layers = layersOf(boxes.values(), direction);
  const along = (p: IPoint) => (direction === 'LR' ? p.x : p.y);
  const point = (a: number, across: number): IPoint => (direction === 'LR' ? { x: a, y: across } : { x: across, y: a });
  const layerOf = (a: number) => layers.find(([start, end]) => start - 0.5 <= a && a <= end + 0.5);

  const routes = pipeline.edges.map(edge => {
    const source = boxes.get(edge.from)!;
    const target = boxes.get(edge.to)!;
    // Out of the source's far side, into the target's near side, straight to the edge of their layers.
    const [from, to] =
      direction === 'LR'
        ? [
            { x: source.x + source.w, y: source.y + source.h / 2 },
            { x: target.x, y: target.y + target.h / 2 }
          ]
        : [
            { x: source.x + source.w / 2, y: source.y + source.h },
            { x: target.x + target.w / 2, y: target.y }
          ];
    const route: IPoint[] = [from, point(layerOf(along(from))![1], direction === 'LR' ? from.y : from.x)];
    // Where dagre leads the edge through a layer, it goes straight across; its points between layers are not
    // needed, the curve between two layers meets no box.
    const points = graph.edge(edge.from, edge.to)?.points ?? [];
    for (const p of points.slice(1, -1)) {
      const layer = layerOf(along(p));
      if (layer) {
        const across = direction === 'LR' ? p.y : p.x;
        route.push(point(layer[0], across), point(layer[1], across));
      }
    }
    route.push(point(layerOf(along(to))![0], direction === 'LR' ? to.y : to.x), to);
    return route;
  });
  const labels = pipeline.edges.map((edge, i) => {
    const placed = graph.edge(edge.from, edge.to);
    if (!labelWidths?.[i] || placed?.x === undefined || placed.y === undefined) {
      return null;
    }
    // dagre keeps the label a place between two layers: the edge passes through it
    const at = { x: placed.x, y: placed.y };
    const route = routes[i];
    const after = route.findIndex(p => along(p) > along(at));
    route.splice(after < 0 ? route.length - 1 : after, 0, at);
    return at;
  });
  const size = graph.graph();
  return { direction, width: size.width ?? 0, height: size.height ?? 0, boxes, routes, labels };
}

// the views redraw at every change: a graph that did not change is laid out once (for each view drawing it)
const laidOut = new Map<string, ILayout>();
const LAYOUTS_KEPT = 4;

/** Left to right where that fits `available`; else top to bottom in the alignment that fits (or is narrowest). */
function fitted(
  pipeline: IGraph,
  widths: Map<string, number>,
  available: number,
  options: IDrawOptions,
  labelWidths?: number[]
): ILayout {
  const key = JSON.stringify([
    [...widths],
    pipeline.edges.map(e => [e.from, e.to]),
    options.leftToRight ? 0 : available,
    labelWidths ?? []
  ]);
  const kept = laidOut.get(key);
  if (kept) {
    return kept;
  }
  let chosen = layout(pipeline, widths, 'LR', undefined, labelWidths);
  for (const align of chosen.width > available && !options.leftToRight ? ALIGNMENTS : []) {
    const downwards = layout(pipeline, widths, 'TB', align);
    if (downwards.width < chosen.width) {
      chosen = downwards;
    }
    if (chosen.width <= available) {
      break;
    }
  }
  laidOut.set(key, chosen);
  if (laidOut.size > LAYOUTS_KEPT) {
    laidOut.delete(laidOut.keys().next().value as string);
  }
  return chosen;
}

/** A line through the points: straight where they line up, else a curve leaving and meeting them along `direction`. */
function pathOf(points: IPoint[], direction: Direction): string {
  const parts = [`M ${points[0].x} ${points[0].y}`];
  for (let i = 1; i < points.length; i++) {
    const [p, q] = [points[i - 1], points[i]];
    if (Math.abs(p.x - q.x) < 0.5 || Math.abs(p.y - q.y) < 0.5) {
      parts.push(`L ${q.x} ${q.y}`);
    } else if (direction === 'LR') {
      const mid = (p.x + q.x) / 2;
      parts.push(`C ${mid} ${p.y} ${mid} ${q.y} ${q.x} ${q.y}`);
    } else {
      const mid = (p.y + q.y) / 2;
      parts.push(`C ${p.x} ${mid} ${q.x} ${mid} ${q.x} ${q.y}`);
    }
  }
  return parts.join(' ');
}

export function drawGraph(
  pipeline: IGraph,
  views: Map<string, INodeView>,
  available: number,
  actions: IGraphActions,
  fontFamily = 'sans-serif',
  options: IDrawOptions = {}
): SVGSVGElement {
  const viewOf = (name: string): INodeView => nodeViewIn(views, name);
  const nameWidth = textWidth(`600 12px ${fontFamily}`);
  const detailWidth = textWidth(`10px ${fontFamily}`);
  const widths = new Map(
    pipeline.nodes.map(name => {
      const view = viewOf(name);
      const text = Math.max(nameWidth(name), detailWidth(view.detail));
      return [name, Math.max(MIN_W, Math.ceil(text) + TEXT_X + ICONS_W + (view.grouped ? STACK : 0))];
    })
  );
  const labelFont = textWidth(`10px ${fontFamily}`);
  const labelTexts = pipeline.edges.map(edge => (options.edgeLabels ? edgeLabel(edge) : ''));
  const labelWidths = options.edgeLabels
    ? labelTexts.map(text => (text ? Math.ceil(labelFont(text)) + 2 * LABEL_PAD : 0))
    : undefined;
  const placed = fitted(pipeline, widths, available, options, labelWidths);
  const scale = options.leftToRight ? 1 : Math.min(1, Math.max(MIN_SCALE, available / placed.width));

  const svg = el('svg', {
    width: Math.ceil(placed.width * scale),
    height: Math.ceil(placed.height * scale),
    viewBox: `0 0 ${placed.width} ${placed.height}`,
    class: 'nbflow-graph',
    'data-direction': placed.direction
  });
  const defs = el('defs', {}, svg);
  const marker = el(
    'marker',
    { id: 'nbflow-arrow', viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto' },
    defs
  );
  el('path', { d: 'M 0 0 L 10 5 L 0 10 z', class: 'nbflow-edge-head' }, marker);

  pipeline.edges.forEach((edge, i) => {
    const path = el(
      'path',
      { d: pathOf(placed.routes[i], placed.direction), class: 'nbflow-edge', 'marker-end': 'url(#nbflow-arrow)' },
      svg
    );
    el('title', {}, path).textContent =
      `${edge.from} → ${edge.to}` + (edge.via.length ? `: ${edge.via.join(', ')}` : ' (upstream)');
    const at = placed.labels[i];
    if (at && labelTexts[i] && labelWidths) {
      const tag = el('g', { class: 'nbflow-edge-label', transform: `translate(${at.x},${at.y})` }, svg);
      el('title', {}, tag).textContent = edge.via.join('\n');
      el(
        'rect',
        { x: -labelWidths[i] / 2, y: -LABEL_H / 2, width: labelWidths[i], height: LABEL_H, rx: 3, ry: 3 },
        tag
      );
      const text = el('text', { x: 0, y: 3.5, 'text-anchor': 'middle' }, tag);
      text.textContent = labelTexts[i];
    }
  });

  for (const task of pipeline.nodes) {
    const at = placed.boxes.get(task)!;
    const view = viewOf(task);
    const look = styleOf(view.state);
    const group = el(
      'g',
      {
        class: 'nbflow-node' + (view.expanded ? ' nbflow-expanded' : '') + (view.selected ? ' nbflow-selected' : ''),
        transform: `translate(${at.x},${at.y})`,
        'data-task': task,
        'data-state': view.state,
        'data-grouped': String(view.grouped),
        'data-instances': view.count
      },
      svg
    );
    el('title', {}, group).textContent = view.detail ? `${view.title}\n${view.detail}` : view.title;
    const click = () => (view.grouped ? actions.expand(task) : actions.open(task));
    // a grid task is drawn as a stack of cards, within its box: the front one a little lower and narrower
    const [front, shift] = view.grouped ? [{ x: 0, y: STACK, w: at.w - STACK, h: at.h - STACK }, STACK] : [at, 0];
    if (view.grouped) {
      const back = el(
        'rect',
        {
          x: STACK,
          y: 0,
          width: at.w - STACK,
          height: at.h - STACK,
          rx: 6,
          ry: 6,
          fill: look.fill,
          stroke: look.border,
          'stroke-width': 1.2,
          class: 'nbflow-node-stack'
        },
        group
      );
      back.addEventListener('click', click);
    }
    const box = el(
      'rect',
      {
        x: 0,
        y: shift,
        width: front.w,
        height: front.h,
        rx: 6,
        ry: 6,
        fill: look.fill,
        stroke: look.border,
        'stroke-width': look.strong || view.expanded ? 2.4 : 1.2,
        class: 'nbflow-node-box' + (view.state === 'running' ? ' nbflow-running' : '')
      },
      group
    );
    if (look.dashed) {
      box.setAttribute('stroke-dasharray', '4 3');
    }
    box.addEventListener('click', click);
    const name = el('text', { x: TEXT_X, y: 17 + shift / 2, fill: TEXT_COLOR, class: 'nbflow-node-name' }, group);
    name.textContent = task;
    name.addEventListener('click', click);
    const detail = el('text', { x: TEXT_X, y: 32 + shift / 2, fill: TEXT_COLOR, class: 'nbflow-node-detail' }, group);
    detail.textContent = view.detail;
    detail.addEventListener('click', click);
    if (view.progress !== undefined) {
      const inset = 3;
      const width = Math.max(0, Math.min(1, view.progress)) * (front.w - 2 * inset);
      el(
        'rect',
        { x: inset, y: shift + front.h - 4, width, height: 2, rx: 1, class: 'nbflow-node-progress' },
        group
      ).addEventListener('click', click);
    }

    const right = front.w - 22;
    const titles = buttonTitles(task, view);
    const run = el('g', { class: 'nbflow-node-run', transform: `translate(${right},${3 + shift})` }, group);
    el('title', {}, run).textContent = titles.run;
    el('rect', { width: 18, height: 16, fill: 'transparent' }, run);
    el('path', { d: 'M 5 2 L 15 8 L 5 14 z', fill: TEXT_COLOR }, run);
    run.addEventListener('click', event => {
      event.stopPropagation();
      actions.run(task);
    });
    if (view.grouped) {
      const list = el('g', { class: 'nbflow-node-expand', transform: `translate(${right},${20 + shift / 2})` }, group);
      el('title', {}, list).textContent = titles.expand;
      el('rect', { width: 18, height: 16, fill: 'transparent' }, list);
      el(
        'path',
        {
          d: view.expanded ? 'M 4 11 L 9 6 L 14 11' : 'M 4 6 L 9 11 L 14 6',
          fill: 'none',
          stroke: TEXT_COLOR,
          'stroke-width': 1.6
        },
        list
      );
      list.addEventListener('click', event => {
        event.stopPropagation();
        actions.expand(task);
      });
    } else if (view.executed) {
      const out = el('g', { class: 'nbflow-node-output', transform: `translate(${right},21)` }, group);
      el('title', {}, out).textContent = titles.executed;
      el('rect', { width: 18, height: 17, fill: 'transparent' }, out);
      el(
        'path',
        {
          d: 'M 4 2 L 11 2 L 15 6 L 15 16 L 4 16 z M 11 2 L 11 6 L 15 6',
          fill: 'none',
          stroke: TEXT_COLOR,
          'stroke-width': 1.4
        },
        out
      );
      out.addEventListener('click', event => {
        event.stopPropagation();
        actions.openExecuted(task);
      });
    }
  }
  return svg;
}
