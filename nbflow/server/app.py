"""`NbflowApp`: the Jupyter Server extension that serves the REST API for the JupyterLab side panel."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from jupyter_server.extension.application import ExtensionApp
from traitlets import Bool, Unicode

from nbflow.server.handlers import handlers
from nbflow.server.service import NbflowService


class NbflowApp(ExtensionApp):
    """nbflow inside Jupyter Server: the project is the server's root folder, or `project` below it."""

    name = "nbflow"
    load_other_extensions = True

    project = Unicode("", help="The folder of the nbflow project, relative to the server's root folder "
                               "(default: the root itself). It must lie inside the root.").tag(config=True)
    scheduler = Bool(False, help="Run the nbflow scheduler (SPEC section 8) inside the server.").tag(config=True)

    def initialize_settings(self) -> None:
        root = self.serverapp.root_dir
        self.service = NbflowService(root, self.project)
        self.pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="nbflow-api")
        self.log.info("nbflow: serving the project in %s", self.service.root + (f"/{self.project}" if self.project else ""))
        if self.scheduler:
            self.log.warning("nbflow: c.NbflowApp.scheduler = True, but schedules are not available in this build.")

    def initialize_handlers(self) -> None:
        self.handlers.extend(handlers(self.service, self.pool))

    async def stop_extension(self) -> None:
        """Cancel the runs this server started, so their kernels stop and their state is recorded."""
        from tornado.ioloop import IOLoop

        await IOLoop.current().run_in_executor(None, self.service.shutdown)
        self.pool.shutdown(wait=False)
