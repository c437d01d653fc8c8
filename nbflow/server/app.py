"""`NbflowApp`: the Jupyter Server extension that serves the REST API for the JupyterLab side panel."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from jupyter_server.extension.application import ExtensionApp
from traitlets import Bool, Unicode

from nbflow.server.handlers import handlers
from nbflow.server.service import NbflowService

if TYPE_CHECKING:
    from jupyter_server.serverapp import ServerApp


class NbflowApp(ExtensionApp):
    """nbflow inside Jupyter Server: the project is the server's root folder, or `project` below it."""

    name = "nbflow"
    load_other_extensions = True

    project = Unicode(
        "",
        help="The folder of the nbflow project, relative to the server's root folder "
        "(default: the root itself). It must lie inside the root.",
    ).tag(config=True)
    scheduler = Bool(
        False,
        help="Run the nbflow scheduler inside the server: the project's "
        "schedules fire while the server runs; its runs are cancelled when it stops. "
        "Another scheduler of the project (`nbflow scheduler`) stands by, or this one "
        "does.",
    ).tag(config=True)

    def initialize_settings(self) -> None:
        assert self.serverapp is not None  # set before the settings are initialised
        root = self.serverapp.root_dir
        self.service = NbflowService(root, self.project, host_scheduler=self.scheduler)
        self.pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="nbflow-api")
        self.log.info(
            "nbflow: serving the project in %s", self.service.served.root + (f"/{self.project}" if self.project else "")
        )

    def initialize_handlers(self) -> None:
        self.handlers.extend(handlers(self.service, self.pool))

    async def _start_jupyter_server_extension(self, serverapp: ServerApp) -> None:
        """The start hook (the server's event loop runs): host the scheduler when `c.NbflowApp.scheduler = True`."""
        if not self.scheduler:
            return
        from tornado.ioloop import IOLoop

        scheduler_log = logging.getLogger("nbflow.scheduler")
        self._log_forward = _ForwardTo(self.log)
        scheduler_log.addHandler(self._log_forward)
        self._log_level = scheduler_log.level
        if scheduler_log.level == logging.NOTSET:
            scheduler_log.setLevel(logging.INFO)
        error = await IOLoop.current().run_in_executor(self.pool, self.service.hosted.start)
        if error:
            self.log.warning(
                "nbflow: c.NbflowApp.scheduler = True, but the scheduler cannot start yet (retried when "
                "the panel lists schedules): %s",
                error,
            )
        elif self.service.hosted.scheduler is not None:
            self.log.info("nbflow: the scheduler runs in this server for %s", self.service.hosted.scheduler.root)

    async def stop_extension(self) -> None:
        """Stop the hosted scheduler and cancel the runs this server started, so their kernels stop and their state
        is recorded."""
        from tornado.ioloop import IOLoop

        await IOLoop.current().run_in_executor(None, self.service.shutdown)
        self.pool.shutdown(wait=False)
        forward = getattr(self, "_log_forward", None)
        if forward is not None:
            logging.getLogger("nbflow.scheduler").removeHandler(forward)
            logging.getLogger("nbflow.scheduler").setLevel(self._log_level)


class _ForwardTo(logging.Handler):
    """Hands the hosted scheduler's log lines (firings, skips, failures) to the server's log."""

    def __init__(self, log: logging.Logger):
        super().__init__(logging.INFO)
        self.log = log

    def emit(self, record: logging.LogRecord) -> None:
        if self.log.isEnabledFor(record.levelno):
            self.log.handle(record)
