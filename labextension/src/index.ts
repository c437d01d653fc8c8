import { JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';

const plugin: JupyterFrontEndPlugin<void> = {
  id: 'nbflow:plugin',
  autoStart: true,
  activate: (app: JupyterFrontEnd) => {
    console.log('nbflow', app);
  }
};
export default plugin;
