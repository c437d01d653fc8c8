"""The `nbflow` papermill engine: papermill's nbclient engine, run on a kernel nbflow started and watches.

Importing this module registers the engine in papermill's registry (`papermill.engines.papermill_engines`); the
run layer imports it only when a notebook is about to run, so a command that runs none never imports papermill.
What differs from papermill's own engine, and only that, is overridden here:

- the kernel: `execute_job` passes its kernel manager (`km`, a kernel from the warm pool or the fork server,
  started in the notebook's folder) and its hooks (`on_notebook_start`, `on_cell_start`, and `on_output` for
  what the cells print), which papermill hands on to the client as it does every engine argument;
- saving: papermill writes the whole notebook at every cell's start and end; nbflow at most every SAVE_EVERY_S
  seconds while cells run (`ThrottledManager`), and once at the end however the run ended;
- output: at most OUTPUT_LIMIT_BYTES per cell and NOTEBOOK_LIMIT_BYTES in all (`NbflowClient`);
- secrets: parameters among which are secrets are injected here (`inject_parameters`), a secret's assignment
  reading the kernel's environment instead of a literal; every message the kernel sends is masked before it is
  kept.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from nbformat import v4
from nbformat.validator import get_validator
from papermill.clientwrap import PapermillNotebookClient
from papermill.engines import NBClientEngine, NotebookExecutionManager, papermill_engines
from papermill.iorw import write_ipynb
from papermill.parameterize import parameterize_notebook
from papermill.utils import find_first_tagged_cell_index, remove_args

from nbflow.masking import MASK, mask, mask_streams, secrets_in

ENGINE = "nbflow"
OUTPUT_LIMIT_BYTES = 10 * 1024 * 1024  # per cell: a cell printing gigabytes must not fill memory or the notebook
NOTEBOOK_LIMIT_BYTES = 100 * 1024 * 1024  # all cells together: many cells each under the cell's limit
# Saving a large notebook takes long: never more than SAVE_SHARE of the time goes to it.
SAVE_EVERY_S = 1.0
SAVE_SHARE = 0.2
# nbclient logs kernel deaths and timeouts that nbflow records itself; they reach a user only if logging is set up.
log = logging.getLogger("nbflow.kernel")
logging.getLogger("nbflow").addHandler(logging.NullHandler())


class ThrottledManager(NotebookExecutionManager):  # type: ignore[misc]  # papermill ships no types
    """papermill's manager for the cells as they run, saving the notebook at most every SAVE_EVERY_S seconds and
    spending at most SAVE_SHARE of the time saving (a 10,000-cell notebook would otherwise be written 20,000
    times)."""

    _interval = SAVE_EVERY_S
    secrets: list[str] = []  # the run's secret values: masked where a cell printed one in pieces, before a save

    def save(self, **kwargs: Any) -> None:
        if (self.now() - self.last_save_time).total_seconds() >= self._interval:
            started = time.monotonic()
            if self.secrets:
                for cell in self.nb.cells:
                    if cell.get("outputs"):
                        mask_streams(cell.outputs, self.secrets)
            super().save(**kwargs)
            self._interval = max(SAVE_EVERY_S, (time.monotonic() - started) / SAVE_SHARE)


class SecretsUnsupported(Exception):
    """A notebook whose kernel nbflow cannot inject a secret into (nbflow reads secrets in Python kernels)."""


def inject_parameters(nb: Any, parameters: Mapping[str, Any], kernel_name: str) -> Any:
    """papermill's injected parameters cell, where each secret (a `Secret`) is read from the kernel's environment
    instead of assigned a literal; the notebook's metadata lists the secrets by the mask. The notebook holds no
    secret's value, and still runs by hand where the variables are set."""
    language = nb.metadata.get("language_info", {}).get("name") or nb.metadata.get("kernelspec", {}).get("language")
    secrets = secrets_in(parameters)
    if (language or "python") != "python":
        raise SecretsUnsupported(
            f"the secrets {', '.join(secrets)} can be injected into Python kernels only, and this notebook's kernel "
            f"runs {language}; read the environment variables in the notebook itself instead"
        )
    literals = {name: value for name, value in parameters.items() if name not in secrets}
    nb = parameterize_notebook(nb, literals, kernel_name=kernel_name, engine_name=ENGINE)
    cell = nb.cells[find_first_tagged_cell_index(nb, "injected-parameters")]
    lines = [
        "# Secrets ([secrets] in nbflow.toml), read from the kernel's environment: their values are not kept here",
        "import os",
        *(f"{name} = os.environ[{json.dumps(variable)}]" for name, variable in secrets.items()),
    ]
    cell.source = cell.source.rstrip("\n") + "\n\n" + "\n".join(lines) + "\n"
    nb.metadata.papermill["parameters"] = {name: MASK if name in secrets else v for name, v in parameters.items()}
    return nb


class NbflowClient(PapermillNotebookClient):  # type: ignore[misc]  # papermill ships no types
    """papermill's client, keeping at most OUTPUT_LIMIT_BYTES of output per cell and NOTEBOOK_LIMIT_BYTES in the
    whole notebook, then one note per cell saying what was dropped; masking the secrets' values in everything the
    kernel sends; and stopping its channels when done, which nbclient leaves to whoever owns the kernel."""

    def __init__(
        self,
        *args: Any,
        secret_values: Iterable[str] = (),
        on_output: Callable[[str], None] | None = None,
        **kwargs: Any,
    ):
        super().__init__(*args, **kwargs)
        self._secret_values = list(secret_values)
        self._on_output = on_output

    def process_message(self, msg: dict[str, Any], cell: Any, cell_index: int) -> Any:
        if self._secret_values:  # outputs, errors, display updates and widget state alike
            msg = {**msg, "content": mask(msg["content"], self._secret_values)}
        return super().process_message(msg, cell, cell_index)

    def execute_cell(self, cell: Any, cell_index: int, *args: Any, **kwargs: Any) -> Any:  # what papermill calls
        try:
            return super().execute_cell(cell, cell_index, *args, **kwargs)
        finally:  # a secret printed in pieces, each masked alone: masked where the pieces meet
            if self._secret_values and cell.get("outputs"):
                mask_streams(cell.outputs, self._secret_values)

    def reset_execution_trackers(self) -> None:
        super().reset_execution_trackers()
        self._kept: dict[int, int] = {}
        self._total = 0
        self._truncated: set[int] = set()

    def execute(self, **kwargs: Any) -> Any:
        try:
            return super().execute(**kwargs)
        finally:
            # The channels of a client made for a kernel manager it was given, heartbeat thread included, would
            # otherwise run for the life of a server or scheduler: one thread per task.
            if self.kc is not None:
                self.kc.stop_channels()

    def output(self, outs: list[Any], msg: dict[str, Any], display_id: str | None, cell_index: int) -> Any:
        content = msg.get("content", {})
        if self._on_output is not None and msg.get("msg_type") == "stream":
            self._on_output(str(content.get("text", "")))  # masked already (`process_message`)
        size = len(content.get("text", "")) + sum(len(str(v)) for v in content.get("data", {}).values())
        kept = self._kept.get(cell_index, 0)
        notebook_room = NOTEBOOK_LIMIT_BYTES - self._total
        room = min(OUTPUT_LIMIT_BYTES - kept, notebook_room)
        if size <= room:
            self._kept[cell_index] = kept + size
            self._total += size
            return super().output(outs, msg, display_id, cell_index)
        if room > 0 and msg.get("msg_type") == "stream" and "text" in content:
            # the text that fits is kept: a single huge print keeps its first part rather than nothing
            self._kept[cell_index] = kept + room
            self._total += room
            super().output(
                outs, {**msg, "content": {**content, "text": content["text"][:room]}}, display_id, cell_index
            )
        if cell_index not in self._truncated:
            self._truncated.add(cell_index)
            if notebook_room < OUTPUT_LIMIT_BYTES - kept:  # the whole notebook's limit, not the cell's, was hit
                what = f"the notebook's outputs passed {NOTEBOOK_LIMIT_BYTES // (1024 * 1024)} MiB"
            else:
                what = f"this cell wrote more than {OUTPUT_LIMIT_BYTES // (1024 * 1024)} MiB"
            outs.append(
                v4.new_output(
                    "stream", name="stderr", text=f"\n[nbflow: output truncated: {what}; the rest was dropped]\n"
                )
            )
        return None


class NbflowEngine(NBClientEngine):  # type: ignore[misc]  # papermill ships no types
    """papermill's nbclient engine with nbflow's client, and the cells' saves throttled."""

    @classmethod
    def execute_notebook(
        cls,
        nb: Any,
        kernel_name: str,
        output_path: str | None = None,
        with_secrets: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> Any:
        # The manager papermill makes here saves at the notebook's start and end; papermill writes the notebook
        # itself once the engine returns (with the error, when a cell raised), so that manager gets no path. The
        # cells save through ThrottledManager, and a run that raises (its kernel died, or never answered) is
        # written here, as far as it got.
        try:
            if with_secrets:  # parameters among which are secrets: injected here, not by papermill
                nb = inject_parameters(nb, with_secrets, kernel_name)
            return super().execute_notebook(nb, kernel_name, output_path=None, save_cells_to=output_path, **kwargs)
        except BaseException:
            if output_path:
                write_ipynb(nb, output_path)
            raise

    @classmethod
    def execute_managed_notebook(
        cls,
        nb_man: NotebookExecutionManager,
        kernel_name: str,
        log_output: bool = False,
        stdout_file: Any = None,
        stderr_file: Any = None,
        start_timeout: float = 60,
        execution_timeout: float | None = None,
        save_cells_to: str | None = None,
        **kwargs: Any,
    ) -> Any:
        cells = ThrottledManager(
            nb_man.nb,
            output_path=save_cells_to,
            log_output=log_output,
            progress_bar=False,
            autosave_cell_every=nb_man.autosave_cell_every,
        )
        cells.secrets = list(kwargs.get("secret_values") or ())
        client = NbflowClient(
            cells,
            kernel_name=kernel_name,
            startup_timeout=start_timeout,
            timeout=execution_timeout,
            log=log,
            log_output=log_output,
            stdout_file=stdout_file,
            stderr_file=stderr_file,
            **remove_args(["input_path", "timeout", "startup_timeout"], **kwargs),
        )
        return client.execute()


papermill_engines.register(ENGINE, NbflowEngine)
# nbflow checks parameter names itself (before anything runs); papermill's guesses about them are noise here.
logging.getLogger("papermill").setLevel(logging.ERROR)
# papermill validates every notebook it reads and writes, and nbformat compiles its schema validator at the first
# use: compiled at import, that happens while the first kernels start.
get_validator(version=4, version_minor=v4.nbformat_minor)
