/**
 * Pan and zoom for a drawing in a box: the drawing's `viewBox` moves, so the DOM is not touched however large the
 * graph; drag the background to pan, the wheel to zoom at the pointer, `fit` to see it whole. The view is kept
 * when the drawing is replaced by a new one of the same graph (each change of state redraws it).
 */

const MIN_SCALE = 0.05;
const MAX_SCALE = 4;
const FIT_MAX = 1.25; // a small graph is not blown up past this
const WHEEL_STEP = 1.0015;

export class PanZoom {
  constructor(private box: HTMLElement) {
    box.addEventListener('wheel', event => this.onWheel(event), { passive: false });
    box.addEventListener('pointerdown', event => this.onDown(event));
    box.addEventListener('pointermove', event => this.onMove(event));
    box.addEventListener('pointerup', event => this.onUp(event));
    box.addEventListener('pointercancel', event => this.onUp(event));
  }

  /** How much the drawing is magnified (1: its natural size). */
  get scale(): number {
    return this.view.scale;
  }

  /** Show `svg` (of `width` x `height` in its own units); `key` names the graph: a new one is fitted. */
  show(svg: SVGSVGElement, width: number, height: number, key: string): void {
    this.svg = svg;
    this.size = { width, height };
    svg.setAttribute('width', '100%');
    svg.setAttribute('height', '100%');
    svg.setAttribute('preserveAspectRatio', 'xMinYMin meet');
    this.box.replaceChildren(svg);
    if (key !== this.key || this.fitted) {
      this.key = key;
      this.fit(); // a new graph, or one shown whole in a box that may have changed size (a drawer opened)
    } else {
      this.apply();
    }
  }

  /** The whole drawing, as large as fits (up to FIT_MAX). */
  fit(): void {
    const { width, height } = this.viewport();
    const scale = Math.max(
      MIN_SCALE,
      Math.min(FIT_MAX, width / Math.max(1, this.size.width), height / Math.max(1, this.size.height))
    );
    this.view = {
      scale,
      x: (this.size.width - width / scale) / 2,
      y: (this.size.height - height / scale) / 2
    };
    this.fitted = true;
    this.apply();
  }

  /** Zoom by `factor` around a point of the box (its centre by default). */
  zoomBy(factor: number, at?: { x: number; y: number }): void {
    const { width, height } = this.viewport();
    const point = at ?? { x: width / 2, y: height / 2 };
    const scale = Math.max(MIN_SCALE, Math.min(MAX_SCALE, this.view.scale * factor));
    // the drawing's point under the pointer stays under it
    const gx = this.view.x + point.x / this.view.scale;
    const gy = this.view.y + point.y / this.view.scale;
    this.view = { scale, x: gx - point.x / scale, y: gy - point.y / scale };
    this.fitted = false;
    this.apply();
  }

  /** Bring the drawing's point (x, y) to the middle of the box. */
  centre(x: number, y: number): void {
    const { width, height } = this.viewport();
    this.view = { ...this.view, x: x - width / 2 / this.view.scale, y: y - height / 2 / this.view.scale };
    this.fitted = false;
    this.apply();
  }

  private viewport(): { width: number; height: number } {
    return { width: this.box.clientWidth || 800, height: this.box.clientHeight || 500 };
  }

  private apply(): void {
    if (!this.svg) {
      return;
    }
    const { width, height } = this.viewport();
    const { x, y, scale } = this.view;
    this.svg.setAttribute('viewBox', `${x} ${y} ${width / scale} ${height / scale}`);
    this.box.dataset.scale = scale.toFixed(3);
  }

  private onWheel(event: WheelEvent): void {
    event.preventDefault();
    const rect = this.box.getBoundingClientRect();
    this.zoomBy(Math.pow(WHEEL_STEP, -event.deltaY), { x: event.clientX - rect.left, y: event.clientY - rect.top });
  }

  private onDown(event: PointerEvent): void {
    // a node, its buttons and labels keep their clicks: only the background drags
    const target = event.target as Element;
    if (event.button !== 0 || target.closest('.nbflow-node, .nbflow-graph-tools, .nbflow-legend')) {
      return;
    }
    this.drag = { x: event.clientX, y: event.clientY, view: { ...this.view } };
    this.box.setPointerCapture(event.pointerId);
    this.box.classList.add('nbflow-dragging');
  }

  private onMove(event: PointerEvent): void {
    if (!this.drag) {
      return;
    }
    const { view } = this.drag;
    this.view = {
      ...view,
      x: view.x - (event.clientX - this.drag.x) / view.scale,
      y: view.y - (event.clientY - this.drag.y) / view.scale
    };
    this.fitted = false;
    this.apply();
  }

  private onUp(event: PointerEvent): void {
    if (this.drag && this.box.hasPointerCapture(event.pointerId)) {
      this.box.releasePointerCapture(event.pointerId);
    }
    this.drag = null;
    this.box.classList.remove('nbflow-dragging');
  }

  private svg: SVGSVGElement | null = null;
  private size = { width: 1, height: 1 };
  private key = '';
  private fitted = true; // the whole drawing is shown: kept whole as the box changes size
  private view = { x: 0, y: 0, scale: 1 };
  private drag: { x: number; y: number; view: { x: number; y: number; scale: number } } | null = null;
}
