/**
 * nbflow in JupyterLab: a left side panel with the pipeline graph and live task states, and commands to run the
 * pipeline or one notebook's task with its upstream (palette, file browser and notebook context menus).
 */
import { ILabShell, ILayoutRestorer, JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { ICommandPalette, IFrame, MainAreaWidget, Notification } from '@jupyterlab/apputils';
import { IDefaultFileBrowser } from '@jupyterlab/filebrowser';
import { ILauncher } from '@jupyterlab/launcher';
import { IRenderMimeRegistry } from '@jupyterlab/rendermime';
import { LabIcon } from '@jupyterlab/ui-components';

import { getExecutedNotebook, getTaskDiff, reportUrl } from './api';
import { RunDiffView } from './diff';
import { PipelineModel } from './model';
import { NbflowPanel } from './panel';
import { PipelineView } from './pipelineview';
import { ReportsView } from './reports';
import { ExecutedNotebookView } from './viewer';

const ICON_SVG = `<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 24 24">
  <g class="jp-icon3" fill="#616161">
    <rect x="2" y="3" width="8" height="5" rx="1.5"/><rect x="14" y="3" width="8" height="5" rx="1.5"/>
    <rect x="8" y="16" width="8" height="5" rx="1.5"/>
    <path d="M6 8v3.5h12V8h-1.6v2H7.6V8zM11.2 11.5h1.6V16h-1.6z"/>
  </g></svg>`;

export const nbflowIcon = new LabIcon({ name: 'nbflow:graph', svgstr: ICON_SVG });

const CommandIDs = {
  openPanel: 'nbflow:open-panel',
  openPipeline: 'nbflow:open-pipeline',
  openReport: 'nbflow:open-report',
  runAll: 'nbflow:run-all',
  runTask: 'nbflow:run-task',
  cancel: 'nbflow:cancel',
  openExecuted: 'nbflow:open-executed',
  openReports: 'nbflow:open-reports',
  comparePrevious: 'nbflow:compare-previous'
} as const;

const plugin: JupyterFrontEndPlugin<void> = {
  id: 'nbflow:plugin',
  description: 'The nbflow pipeline panel: graph, live task states, runs, parameters and history.',
  autoStart: true,
  requires: [IRenderMimeRegistry],
  optional: [ICommandPalette, ILayoutRestorer, IDefaultFileBrowser, ILabShell, ILauncher],
  activate: (
    app: JupyterFrontEnd,
    rendermime: IRenderMimeRegistry,
    palette: ICommandPalette | null,
    restorer: ILayoutRestorer | null,
    browser: IDefaultFileBrowser | null,
    labShell: ILabShell | null,
    launcher: ILauncher | null
  ) => {
    const { commands, shell } = app;

    // One model of the pipeline and its runs, kept current by the server's pushed events, for the view and the panel
    const model = new PipelineModel();
    const panel = new NbflowPanel(model, {
      openNotebook: path => void commands.execute('docmanager:open', { path }),
      openExecuted: (run, task) => void commands.execute(CommandIDs.openExecuted, { run, task }),
      openReports: () => void commands.execute(CommandIDs.openReports),
      compare: (run, task) => void commands.execute(CommandIDs.comparePrevious, { run, task }),
      openView: () => void commands.execute(CommandIDs.openPipeline)
    });
    panel.title.icon = nbflowIcon;
    shell.add(panel, 'left', { rank: 600 });
    restorer?.add(panel, 'nbflow-panel');

    const reveal = () => shell.activateById(panel.id);

    /** The notebook a command is about: the file browser's selection (context menu) or the current notebook. */
    const notebookPath = (fromBrowser: boolean): string | null => {
      if (fromBrowser && browser) {
        const first = browser.selectedItems().next();
        if (!first.done && first.value && first.value.path.endsWith('.ipynb')) {
          return first.value.path;
        }
      }
      const widget = (labShell?.currentWidget ?? shell.currentWidget) as { context?: { path?: unknown } } | null;
      const path = widget?.context?.path;
      return typeof path === 'string' && path.endsWith('.ipynb') ? path : null;
    };

    commands.addCommand(CommandIDs.openPanel, {
      label: 'nbflow: Show the Pipeline Panel',
      caption: 'The pipeline graph with live task states, runs and history',
      icon: nbflowIcon,
      execute: () => reveal()
    });

    // One pipeline view (the server serves one project).
    let view: MainAreaWidget<PipelineView> | null = null;
    commands.addCommand(CommandIDs.openPipeline, {
      label: 'nbflow: Open Pipeline',
      caption: 'The pipeline view: the graph with live states and cell progress, the timeline, the runs',
      icon: nbflowIcon,
      execute: () => {
        if (!view || view.isDisposed) {
          const content = new PipelineView(model, {
            openNotebook: path => void commands.execute('docmanager:open', { path }),
            openExecuted: (run, task) => void commands.execute(CommandIDs.openExecuted, { run, task }),
            openReport: (run, instance) => void commands.execute(CommandIDs.openReport, { run, instance }),
            compare: (run, task) => void commands.execute(CommandIDs.comparePrevious, { run, task })
          });
          view = new MainAreaWidget({ content });
          view.id = 'nbflow-pipeline-view';
          view.title.label = 'Pipeline';
          view.title.caption = content.title.caption;
          view.title.icon = nbflowIcon;
          view.title.closable = true;
          shell.add(view, 'main');
        }
        shell.activateById(view.id);
      }
    });

    commands.addCommand(CommandIDs.openReport, {
      label: args => `Open the Report of ${args.instance ?? 'a Task'}`,
      execute: args => {
        const run = String(args.run);
        const instance = String(args.instance);
        const id = `nbflow-report-${run}-${instance.replace(/[^A-Za-z0-9_-]/g, '_')}`;
        const open = Array.from(shell.widgets('main')).find(w => w.id === id);
        if (open) {
          shell.activateById(id);
          return;
        }
        const content = new IFrame({ sandbox: ['allow-scripts', 'allow-popups'], referrerPolicy: 'no-referrer' });
        content.url = reportUrl(run, instance);
        content.addClass('nbflow-report-frame');
        const widget = new MainAreaWidget({ content });
        widget.id = id;
        widget.title.label = `${instance} report [${run}]`;
        widget.title.icon = nbflowIcon;
        widget.title.closable = true;
        shell.add(widget, 'main');
        shell.activateById(id);
      }
    });

    commands.addCommand(CommandIDs.runAll, {
      label: 'nbflow: Run the Pipeline',
      caption: 'Run every task; what is up to date is skipped',
      execute: async () => {
        reveal();
        return panel.run(null);
      }
    });

    commands.addCommand(CommandIDs.runTask, {
      label: args =>
        args.task ? `nbflow: Run ${args.task} with Its Upstream` : "nbflow: Run This Notebook's Task with Its Upstream",
      caption: 'Run the task of this notebook and every task it depends on',
      icon: nbflowIcon,
      execute: async args => {
        reveal();
        let name = args.task as string | undefined;
        if (!name) {
          const path = (args.path as string | undefined) ?? notebookPath(!!args.fromBrowser);
          if (!path) {
            panel.showError('Open or select a notebook first: the command runs its task.');
            return null;
          }
          const task = await panel.taskFor(path);
          if (!task) {
            panel.showError(
              `${path} is not a task of the nbflow pipeline (its parameters cell declares no ` +
                '`inputs`, `outputs` or `upstream`, or it lies outside the project).'
            );
            return null;
          }
          name = task.task; // every instance of a grid task
        }
        return panel.run([name]);
      }
    });

    commands.addCommand(CommandIDs.cancel, {
      label: 'nbflow: Cancel the Run',
      caption: 'Cancel the run going on: its kernels are stopped, its tasks cancelled',
      execute: async () => {
        reveal();
        await panel.cancel();
      }
    });

    const executedViews = new Map<string, MainAreaWidget<ExecutedNotebookView>>();
    commands.addCommand(CommandIDs.openExecuted, {
      label: args => `Open the Executed Notebook of ${args.task ?? 'a Task'}`,
      execute: async args => {
        const run = String(args.run);
        const task = String(args.task);
        const key = `${run}/${task}`;
        const existing = executedViews.get(key);
        if (existing && !existing.isDisposed) {
          shell.activateById(existing.id);
          return;
        }
        try {
          const data = await getExecutedNotebook(run, task);
          const content = new ExecutedNotebookView(data, rendermime);
          const widget = new MainAreaWidget({ content });
          widget.id = `nbflow-executed-${run}-${task.replace(/[^A-Za-z0-9_-]/g, '_')}`;
          widget.title.label = `${task} [${run}]`;
          widget.title.caption = `${data.path} (read-only)`;
          widget.title.icon = nbflowIcon;
          widget.title.closable = true;
          executedViews.set(key, widget);
          widget.disposed.connect(() => executedViews.delete(key));
          shell.add(widget, 'main');
          shell.activateById(widget.id);
        } catch (error) {
          panel.showError(error);
          Notification.error(`nbflow: ${(error as Error).message ?? error}`, { autoClose: 5000 });
        }
      }
    });

    let reports: MainAreaWidget<ReportsView> | null = null;
    commands.addCommand(CommandIDs.openReports, {
      label: 'nbflow: Open Reports',
      caption: 'The reports the tasks write, each with its earlier versions',
      icon: nbflowIcon,
      execute: () => {
        if (!reports || reports.isDisposed) {
          const content = new ReportsView();
          reports = new MainAreaWidget({ content });
          reports.id = 'nbflow-reports-view';
          reports.title.label = content.title.label;
          reports.title.caption = content.title.caption;
          reports.title.icon = nbflowIcon;
          reports.title.closable = true;
          shell.add(reports, 'main');
        }
        shell.activateById(reports.id);
      }
    });

    const diffViews = new Map<string, MainAreaWidget<RunDiffView>>();
    commands.addCommand(CommandIDs.comparePrevious, {
      label: args => `Compare ${args.task ?? 'a Task'} with Its Previous Run`,
      execute: async args => {
        const run = String(args.run);
        const task = String(args.task);
        const key = `${run}/${task}`;
        const existing = diffViews.get(key);
        if (existing && !existing.isDisposed) {
          shell.activateById(existing.id);
          return;
        }
        try {
          const diff = await getTaskDiff(run, task);
          const widget = new MainAreaWidget({ content: new RunDiffView(diff) });
          widget.id = `nbflow-diff-${run}-${task.replace(/[^A-Za-z0-9_-]/g, '_')}`;
          widget.title.label = `${task}: ${diff.a.id} → ${diff.b.id}`;
          widget.title.caption = `What changed in ${task} from run ${diff.a.id} to run ${diff.b.id}`;
          widget.title.icon = nbflowIcon;
          widget.title.closable = true;
          diffViews.set(key, widget);
          widget.disposed.connect(() => diffViews.delete(key));
          shell.add(widget, 'main');
          shell.activateById(widget.id);
        } catch (error) {
          panel.showError(error);
          Notification.error(`nbflow: ${(error as Error).message ?? error}`, { autoClose: 5000 });
        }
      }
    });

    if (palette) {
      const listed = [
        CommandIDs.openPanel,
        CommandIDs.openPipeline,
        CommandIDs.openReports,
        CommandIDs.runAll,
        CommandIDs.runTask,
        CommandIDs.cancel
      ];
      for (const command of listed) {
        palette.addItem({ command, category: 'nbflow' });
      }
    }

    launcher?.add({ command: CommandIDs.openPipeline, category: 'Other', rank: 1 });

    app.contextMenu.addItem({
      command: CommandIDs.runTask,
      args: { fromBrowser: true },
      selector: '.jp-DirListing-item[data-file-type="notebook"]',
      rank: 20
    });
    app.contextMenu.addItem({
      command: CommandIDs.runTask,
      selector: '.jp-Notebook',
      rank: 100
    });
  }
};

export default plugin;
