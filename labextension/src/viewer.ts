/**
 * An executed notebook, shown read-only: markdown rendered, code as text, outputs through JupyterLab's renderers
 * (untrusted: HTML is sanitised and scripts never run). It has no kernel and no save.
 */
import { ICell, INotebookContent, MultilineString, isCode, isMarkdown } from '@jupyterlab/nbformat';
import { OutputAreaModel, SimplifiedOutputArea } from '@jupyterlab/outputarea';
import { IRenderMimeRegistry, MimeModel } from '@jupyterlab/rendermime';
import { Panel, Widget } from '@lumino/widgets';

import { IExecutedNotebook } from './api';
import { label, paintBadge } from './states';

function text(source: MultilineString | undefined): string {
  return Array.isArray(source) ? source.join('') : (source ?? '');
}

function block(className: string, content?: string): Widget {
  const widget = new Widget();
  widget.addClass(className);
  if (content !== undefined) {
    widget.node.textContent = content;
  }
  return widget;
}

export class ExecutedNotebookView extends Panel {
  constructor(data: IExecutedNotebook, rendermime: IRenderMimeRegistry) {
    super();
    this.addClass('nbflow-Executed');
    const header = block('nbflow-Executed-header');
    const badge = document.createElement('span');
    badge.className = 'nbflow-badge';
    badge.textContent = label(data.state);
    paintBadge(badge, data.state);
    header.node.append(`Executed notebook of ${data.task}, run ${data.run} `, badge, ` — read-only (${data.path})`);
    this.addWidget(header);

    const notebook = data.notebook as INotebookContent | null;
    const cells: ICell[] = notebook?.cells ?? [];
    cells.forEach((cell, index) => {
      const box = new Panel();
      box.addClass('nbflow-Executed-cell');
      box.node.dataset.cellIndex = String(index);
      const tags: string[] = cell.metadata?.tags ?? [];
      if (tags.includes('injected-parameters')) {
        box.addClass('nbflow-injected');
      }
      if (isMarkdown(cell)) {
        const renderer = rendermime.createRenderer('text/markdown');
        renderer.addClass('nbflow-Executed-markdown');
        void renderer.renderModel(new MimeModel({ data: { 'text/markdown': text(cell.source) }, trusted: false }));
        box.addWidget(renderer);
      } else if (isCode(cell)) {
        const count = cell.execution_count ?? ' ';
        const input = block('nbflow-Executed-input');
        const prompt = document.createElement('div');
        prompt.className = 'nbflow-prompt';
        prompt.textContent = `[${count}]:`;
        const code = document.createElement('pre');
        code.textContent = text(cell.source);
        input.node.append(prompt, code);
        box.addWidget(input);
        if (tags.length) {
          box.addWidget(block('nbflow-Executed-tags', tags.join(', ')));
        }
        const outputs = cell.outputs ?? [];
        if (outputs.length) {
          const model = new OutputAreaModel({ values: outputs, trusted: false });
          const area = new SimplifiedOutputArea({ model, rendermime });
          area.addClass('nbflow-Executed-outputs');
          box.addWidget(area);
        }
      } else {
        box.addWidget(block('nbflow-Executed-raw', text(cell.source)));
      }
      this.addWidget(box);
    });
    if (!cells.length) {
      this.addWidget(block('nbflow-empty', 'This notebook has no cells.'));
    }
  }
}
