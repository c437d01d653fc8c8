"""nbflow against its peers, on the same generated pipelines, in one command.

    python bench/bench.py [--repeat N] [--cases chain10,fanout16,grid100,backfill30,...] [--quick] [--markdown]

Method
- Every case is generated into a temporary folder, one copy per tool, so each tool keeps its own state while doing
  the same work: nbflow's notebooks declare `inputs`/`outputs`; the papermill loop runs those same notebooks; the
  ploomber copy is a `pipeline.yaml` with notebooks in ploomber's style (`upstream`, `product`).
- Each tool first runs once untimed (warm-up: file caches, bytecode, and the built state a no-op run needs; skipped
  with --quick). Then the tools take turns: repetition r runs every tool once, in an order rotated by r, so machine
  noise falls on all of them alike. Figures are medians over the repetitions; ratios are ratios of medians.
- nbflow's own modules are compiled to bytecode first (`compileall`), as installing a wheel does: an editable
  install leaves them as source, and where PYTHONDONTWRITEBYTECODE is set no run ever caches them, so every command
  would compile them again (about 0.1 s of each start here); the peers' installed packages are compiled already.
- Every timed command is a fresh process with its output on pipes (not a terminal), as from a script or CI. A run
  counts only if it exits 0 and, for a full run, rewrote every product, or, for a no-op run, rewrote none. A failed
  run is left out of the median and the last line of its error output is listed under the table; a tool whose
  every run failed shows "n/a", one with some failed runs a "*".
- ploomber lives in its own virtualenv, bench/.peers-venv, created on first use; if that fails its columns are
  left out. Its kernel runs the same Python version as nbflow's.

Cases
- chain10: 10 trivial notebooks in a chain. Full run (`nbflow run --force`, `ploomber build --force`, one
  `papermill` command per notebook) and no-op run with everything up to date (`nbflow run`, `ploomber build`).
  Per-task overhead = (nbflow's wall time - the cells' own time) / tasks, the cells' time read from the executed
  notebooks (papermill's per-cell `duration`, else nbclient's `execution` timestamps). Also: each tool's CPU time
  over the full run (every process it started, kernels included: the children each parent waited for), and the
  full run again while two busy-loop processes load the machine (targets: CPU at most 0.3x ploomber's, loaded wall
  time at most 0.25x ploomber's).
- example: the example pipeline (notebooks/, pandas and matplotlib, 13 instances with 6 reports), `--force`:
  nbflow, nbflow `--no-preload`, a loop of one `papermill` command per instance in order plus `jupyter nbconvert`
  per report (bench/papermill_loop.py), and `ploomber build --force` on a ploomber copy (`pipelines.ploomber_example`:
  the same notebooks and parameters, its parallel executor; targets: 0.5x no-preload, 0.15x the papermill loop).
- dask-chain10: chain10's full run on a Dask LocalCluster on this machine (a worker process per CPU, one thread
  each) against the local executor, both `-j CPUS`; the note gives the ratio (target: within 1.5x).
- fanout16: 16 independent trivial notebooks; nbflow with `-j` = CPU count, ploomber with its parallel executor
  (serial if the parallel one fails, said in the note).
- cpu10: a chain of 10 notebooks each running a pure-Python busy loop, its iteration count calibrated once at
  start-up to about 1 s here and the same for every tool. Also reported: each tool's sum of cells' own time, and
  nbflow's wall time / that sum.
- resolve: generated 1,000 / 2,000 / 5,000-notebook pipelines (bench/resolve.py's generator and method):
  `nbflow.load` in-process after a warm-up, and the `nbflow graph --format json` command; the ratio to the
  smallest size shows whether resolution stays linear.
- grid100: one notebook with a 100-value `grid` (100 trivial instances): nbflow `run --force -j CPUS` and the no-op
  run, against ploomber's own `grid` of 100 points (`ploomber build --force` with its parallel executor, and the
  no-op `ploomber build`).
- backfill30: a copy of the example pipeline (notebooks/) backfilled over 30 days, `nbflow run -g report_date
  2026-11-01..2026-11-30 -j CPUS`: the backfill from nothing (once: it is hundreds of notebook runs) and its no-op
  rerun.
- sleep4: four independent notebooks that each sleep 3 s, nbflow `-j 4` against `-j 1`.
- chain1000: 100 and 1,000 independent trivial notebooks with real kernels, `-j` = CPU count (20 and 100 with
  --quick): wall time per task (target: at 1,000 within 1.2x of that at 100), the nbflow process's peak RSS (target
  under 300 MiB), how long after the command started its first task started (target under 0.3 s), and how long
  after it that task's first cell ran in its kernel.
- memory: peak RSS of the `nbflow graph --format json` process on the largest resolve pipeline, and of the nbflow
  process itself (its own VmHWM, kernels excluded) during a 100-task run.

Output: the table on standard output (progress goes to standard error), and bench/results/bench-STAMP.json (every
raw figure) and bench-STAMP.png (bar plot).
"""

from __future__ import annotations

import argparse
import compileall
import datetime
import json
import os
import platform
import re
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from functools import partial
from importlib import metadata
from pathlib import Path

import nbformat

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from pipelines import (  # noqa: E402
    chain,
    example,
    fan_out,
    grid,
    large,
    ploomber_chain,
    ploomber_example,
    ploomber_fan_out,
    ploomber_grid,
)

import nbflow  # noqa: E402

RESULTS = BENCH / "results"
EXAMPLE = BENCH.parent / "notebooks"
PEERS_VENV = BENCH / ".peers-venv"
CPUS = os.cpu_count() or 1
COMMAND_TIMEOUT = 900  # seconds: a hung tool is reported as failed rather than waited for
NBFLOW_CMD = [sys.executable, "-m", "nbflow"]
PAPERMILL_CMD = [sys.executable, "-m", "papermill"]
PEER_ENV = {**os.environ, "PLOOMBER_STATS_ENABLED": "false", "PLOOMBER_VERSION_CHECK_DISABLED": "1"}

NBFLOW, NO_PREWARM, PLOOMBER, PAPERMILL = "nbflow", "nbflow (no prewarm)", "ploomber", "papermill loop"
NO_PRELOAD = "nbflow (no preload)"
ON_DASK = "nbflow (Dask)"
CASES = (
    "chain10",
    "dask-chain10",
    "fanout16",
    "example",
    "grid100",
    "backfill30",
    "sleep4",
    "cpu10",
    "resolve",
    "memory",
    "chain1000",
)
BURN = "def burn(n):\n    total = 0\n    for i in range(n):\n        total += i\n    return total\n"


class ToolFailed(Exception):
    """A tool's run did not count: non-zero exit, timeout, or products not as expected."""


# --- running commands ------------------------------------------------------------------------------------------


def last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def run_command(argv: list[str], cwd: Path | None = None, env: dict | None = None) -> str:
    """Run a command to its end with output on pipes; return its stdout, or raise ToolFailed with its last words."""
    with subprocess.Popen(
        argv,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    ) as proc:
        try:
            out, err = proc.communicate(timeout=COMMAND_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            raise ToolFailed(f"timed out after {COMMAND_TIMEOUT} s") from None
    if proc.returncode:
        raise ToolFailed(f"exit {proc.returncode}: {last_line(err) or last_line(out) or '(no output)'}")
    return out


def nbflow_run_has(flag: str) -> bool:
    try:
        return flag in run_command([*NBFLOW_CMD, "run", "--help"])
    except ToolFailed:
        return False


def ensure_ploomber(venv: Path = PEERS_VENV) -> Path | None:
    """The `ploomber` executable of the peers' virtualenv, created on first use; None (with a note) if that fails."""
    exe = venv / "bin" / "ploomber"
    # the example's notebooks import pandas and matplotlib, in ploomber's kernel as in nbflow's
    marker = venv / "has-example-packages"
    if exe.exists() and marker.exists():
        return exe
    print(f"setting up {venv} for ploomber (first use, about a minute)...", file=sys.stderr)
    try:
        if not exe.exists():
            run_command([sys.executable, "-m", "venv", str(venv)])
        packages = ["ploomber", "ipykernel", "pandas", "matplotlib"]
        run_command([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", *packages])
        marker.touch()
    except ToolFailed as exc:
        print(f"NOTE: could not set up ploomber in {venv} ({exc}); the ploomber columns are skipped.", file=sys.stderr)
        return None
    return exe


# --- executed notebooks ----------------------------------------------------------------------------------------


def cell_seconds(cell: nbformat.NotebookNode) -> float | None:
    """A cell's own execution time: papermill's `duration`, else nbclient's `execution` timestamps."""
    duration = cell.metadata.get("papermill", {}).get("duration")
    if duration is not None:
        return float(duration)
    timing = cell.metadata.get("execution", {})
    if "iopub.status.busy" in timing and "shell.execute_reply" in timing:
        busy, reply = (
            datetime.datetime.fromisoformat(timing[key].replace("Z", "+00:00"))
            for key in ("iopub.status.busy", "shell.execute_reply")
        )
        return (reply - busy).total_seconds()
    return None


def cells_seconds(notebooks: list[Path]) -> float | None:
    """The sum of the code cells' own time over executed notebooks; None when any is missing."""
    times = [
        cell_seconds(cell)
        for path in notebooks
        for cell in nbformat.read(path, as_version=4).cells
        if cell.cell_type == "code"
    ]
    return sum(times) if times and None not in times else None


def newest_nbflow_run(folder: Path) -> list[Path]:
    runs = sorted((folder / ".nbflow" / "runs").glob("*/"))
    return sorted(runs[-1].glob("*.ipynb")) if runs else []


# --- contenders and measurements -------------------------------------------------------------------------------


@dataclass
class Contender:
    """One tool's copy of a case: its commands and the products a run must (re)write."""

    tool: str
    folder: Path
    full: list[list[str]]  # run one after another, timed together
    noop: list[str] | None
    products: list[Path]
    executed: Callable[[], list[Path]]  # the notebooks executed by the last run
    env: dict | None = None

    def run(self, mode: str) -> tuple[float, float | None, float]:
        """One run, `full` or `noop`: its wall time, (full runs) the cells' own time, and the CPU time of every
        process it started (the tool, its kernels and their children, each waited for by its parent)."""
        since = time.time()
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        for argv in self.full if mode == "full" else [self.noop]:
            run_command(argv, self.folder, self.env)
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
        self.check_products(since, rewritten=mode == "full")
        return wall, cells_seconds(self.executed()) if mode == "full" else None, cpu

    def check_products(self, since: float, rewritten: bool) -> None:
        for path in self.products:
            name = path.relative_to(self.folder)
            if not path.exists():
                raise ToolFailed(f"product not written: {name}")
            if (path.stat().st_mtime >= since) != rewritten:
                raise ToolFailed(f"full run did not rewrite {name}" if rewritten else f"no-op run rewrote {name}")


@dataclass
class Measurement:
    """One row of the table: raw values per tool (seconds, or MiB for memory), and the messages of failed runs."""

    case: str
    label: str
    tasks: int | None = None  # for chains: enables the per-task overhead
    values: dict[str, list[float]] = field(default_factory=dict)
    cells: dict[str, list[float]] = field(default_factory=dict)
    cpu: dict[str, list[float]] = field(default_factory=dict)  # CPU seconds of each run's processes
    errors: dict[str, list[str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    baseline: str | None = None  # label of the row this one is compared with (resolve linearity)

    def median(self, tool: str) -> float | None:
        values = self.values.get(tool)
        return statistics.median(values) if values else None

    def cells_median(self, tool: str) -> float | None:
        values = self.cells.get(tool)
        return statistics.median(values) if values else None

    def record(self, tool: str, value: float, cells: float | None = None) -> None:
        self.values.setdefault(tool, []).append(value)
        if cells is not None:
            self.cells.setdefault(tool, []).append(cells)

    def fail(self, tool: str, message: str) -> None:
        self.errors.setdefault(tool, []).append(message)


def progress(label: str, what: str, tool: str, result: str) -> None:
    print(f"  {label:<28} {what:<8} {tool:<20} {result}", file=sys.stderr, flush=True)


def attempt(m: Measurement, contender: Contender, mode: str, what: str) -> None:
    try:
        wall, cells, cpu = contender.run(mode)
    except ToolFailed as exc:
        m.fail(contender.tool, str(exc))
        progress(m.label, what, contender.tool, f"n/a: {exc}")
        return
    if what != "warm-up":
        m.record(contender.tool, wall, cells)
        m.cpu.setdefault(contender.tool, []).append(cpu)
    progress(m.label, what, contender.tool, f"{wall:7.2f} s, {cpu:6.2f} CPU-s")


def alternate(m: Measurement, contenders: list[Contender], mode: str, setup: Setup) -> Measurement:
    """Warm up each tool, then run them in turns, the order rotated each repetition."""
    if setup.warm_up:
        for contender in contenders:
            attempt(m, contender, mode, "warm-up")
    for rep in range(setup.repeat):
        shift = rep % len(contenders)
        for contender in contenders[shift:] + contenders[:shift]:
            attempt(m, contender, mode, f"{rep + 1}/{setup.repeat}")
    return m


# --- building each tool's copy of a case -----------------------------------------------------------------------


@dataclass
class Setup:
    root: Path
    repeat: int
    warm_up: bool
    cpu_seconds: float
    sizes: list[int]
    grid_size: int
    backfill_days: int
    ploomber: Path | None
    no_prewarm: bool
    burn_iterations: int = 0
    large_folders: dict[int, Path] = field(default_factory=dict)

    def large(self, size: int) -> Path:
        if size not in self.large_folders:
            self.large_folders[size] = large(self.root / f"large{size}", size)
        return self.large_folders[size]


def products(folder: Path, names: list[str]) -> list[Path]:
    return [folder / "data" / f"{name}.txt" for name in names]


def nbflow_copy(make: Callable[[Path], Path], folder: Path) -> Path:
    """A copy of the case in nbflow's format. The notebooks write into `data/` without creating it (as a user's
    notebook might); nbflow creates outputs' folders but papermill does not, so it is made here for both."""
    make(folder)
    (folder / "data").mkdir(exist_ok=True)
    return folder


def nbflow_contender(
    tool: str, folder: Path, products: list[Path], extra: Sequence[str] = (), workers: int = CPUS
) -> Contender:
    """`nbflow run` on one copy of a case: `--force` for a full run, as it is for a no-op one."""
    run = [*NBFLOW_CMD, "run", str(folder), "-j", str(workers), *extra]
    return Contender(
        tool,
        folder,
        full=[run + ["--force"]],
        noop=run,
        products=products,
        executed=lambda: newest_nbflow_run(folder),
    )


def slug(tool: str) -> str:
    """A tool's name as the folder of its copy of a case."""
    return re.sub(r"\W+", "-", tool).strip("-")


def nbflow_contenders(setup: Setup, case: str, make: Callable[[Path], Path], names: list[str]) -> list[Contender]:
    """nbflow, and nbflow --no-prewarm when the CLI has that flag, each on its own copy."""
    variants = [(NBFLOW, [])] + ([(NO_PREWARM, ["--no-prewarm"])] if setup.no_prewarm else [])
    contenders = []
    for tool, extra in variants:
        folder = nbflow_copy(make, setup.root / case / slug(tool))
        contenders.append(nbflow_contender(tool, folder, products(folder, names), extra))
    return contenders


def papermill_contender(setup: Setup, case: str, make: Callable[[Path], Path], names: list[str]) -> Contender:
    """The nbflow notebooks, run in order by one `papermill IN OUT --cwd DIR` command each."""
    folder = nbflow_copy(make, setup.root / case / "papermill")
    (folder / "out").mkdir()
    commands = [
        [*PAPERMILL_CMD, str(folder / f"{name}.ipynb"), str(folder / "out" / f"{name}.ipynb"), "--cwd", str(folder)]
        for name in names
    ]
    return Contender(
        PAPERMILL,
        folder,
        full=commands,
        noop=None,
        products=products(folder, names),
        executed=lambda: sorted((folder / "out").glob("*.ipynb")),
    )


def ploomber_contender(setup: Setup, case: str, make: Callable[[Path], Path], names: list[str]) -> Contender:
    folder = make(setup.root / case / "ploomber")
    return Contender(
        PLOOMBER,
        folder,
        full=[[str(setup.ploomber), "build", "--force"]],
        noop=[str(setup.ploomber), "build"],
        products=products(folder, names),
        executed=lambda: sorted((folder / "output").glob("*.ipynb")),
        env=PEER_ENV,
    )


# --- cases ----------------------------------------------------------------------------------------------------


def chain_contenders(setup: Setup, case: str, length: int, work: str) -> list[Contender]:
    names = [f"t{i:02d}" for i in range(length)]
    contenders = nbflow_contenders(setup, case, lambda f: chain(f, length, work), names)
    if setup.ploomber:
        contenders.append(ploomber_contender(setup, case, lambda f: ploomber_chain(f, length, work), names))
    contenders.append(papermill_contender(setup, case, lambda f: chain(f, length, work), names))
    return contenders


def case_chain10(setup: Setup) -> list[Measurement]:
    contenders = chain_contenders(setup, "chain10", 10, "x = 1")
    full = alternate(Measurement("chain10", "chain10 full (s)", tasks=10), contenders, "full", setup)
    cpu = Measurement("chain10", "chain10 full CPU (CPU-s)", values=full.cpu, errors=full.errors)
    noop = Measurement("chain10", "chain10 no-op (s)")
    alternate(noop, [c for c in contenders if c.noop and c.tool != NO_PREWARM], "noop", setup)
    loaded = Measurement("chain10", f"chain10 full, {BUSY_LOOPS} busy loops (s)", tasks=10)
    with busy_loops(BUSY_LOOPS):
        alternate(loaded, [c for c in contenders if c.tool != NO_PREWARM], "full", setup)
    return [full, cpu, noop, loaded]


BUSY_LOOPS = 2


@contextmanager
def busy_loops(count: int) -> Iterator[None]:
    """`count` processes spinning on a CPU each, as other work on a shared machine does, stopped afterwards."""
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]
    try:
        yield
    finally:
        for spinner in spinners:
            spinner.kill()
            spinner.wait()


def case_dask_chain10(setup: Setup) -> list[Measurement]:
    """chain10 on a Dask LocalCluster on this machine (a worker process per CPU, one thread each) against the local
    executor, `-j` = CPU count for both."""
    m = Measurement("dask-chain10", "dask-chain10 full (s)", tasks=10)
    try:
        import distributed
    except ImportError:
        m.fail(ON_DASK, "distributed is not installed (pip install 'nbflow[dask]')")
        return [m]
    names = [f"t{i:02d}" for i in range(10)]
    with distributed.LocalCluster(
        n_workers=CPUS, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
    ) as cluster:
        contenders = []
        for tool, extra in (
            (NBFLOW, []),
            (ON_DASK, ["--executor", "dask", "--dask-address", cluster.scheduler_address]),
        ):
            folder = nbflow_copy(lambda f: chain(f, 10), setup.root / "dask-chain10" / slug(tool))
            contenders.append(nbflow_contender(tool, folder, products(folder, names), extra))
        alternate(m, contenders, "full", setup)
    return [m]


def ploomber_parallel(
    setup: Setup, case: str, make: Callable[..., Path], names: list[str], m: Measurement
) -> Contender:
    """ploomber with its parallel executor, probed with one full run; its serial one if that fails (in the note).
    `make(folder, executor=...)` writes the ploomber project."""
    parallel = ploomber_contender(setup, case, lambda f: make(f, executor="parallel"), names)
    try:
        wall, _, _ = parallel.run("full")
    except ToolFailed as exc:
        m.notes.append(f"ploomber SERIAL: its parallel executor failed ({exc})")
        return ploomber_contender(setup, f"{case}-serial", lambda f: make(f, executor="serial"), names)
    progress(m.label, "probe", "ploomber (parallel)", f"{wall:7.2f} s")
    m.notes.append(f"ploomber parallel ({CPUS} processes)")
    return parallel


def case_fanout16(setup: Setup) -> list[Measurement]:
    names = [f"f{i:02d}" for i in range(16)]
    m = Measurement("fanout16", "fanout16 full (s)", notes=[f"nbflow -j {CPUS}"])
    contenders = nbflow_contenders(setup, "fanout16", lambda f: fan_out(f, 16), names)
    if setup.ploomber:
        contenders.append(ploomber_parallel(setup, "fanout16", partial(ploomber_fan_out, width=16), names, m))
    return [alternate(m, contenders, "full", setup)]


def case_grid100(setup: Setup) -> list[Measurement]:
    """One notebook's grid of trivial instances against ploomber's grid of as many points, full and no-op."""
    size = setup.grid_size
    names = [f"g-{i}" for i in range(size)]
    full = Measurement("grid100", f"grid{size} full (s)", notes=[f"nbflow -j {CPUS}"])
    contenders = nbflow_contenders(setup, "grid100", lambda f: grid(f, size), names)
    if setup.ploomber:
        contenders.append(ploomber_parallel(setup, "grid100", partial(ploomber_grid, size=size), names, full))
    alternate(full, contenders, "full", setup)
    noop = Measurement("grid100", f"grid{size} no-op (s)")
    alternate(noop, [c for c in contenders if c.noop and c.tool != NO_PREWARM], "noop", setup)
    return [full, noop]


def case_backfill30(setup: Setup) -> list[Measurement]:
    """The example pipeline backfilled over `backfill_days` days from nothing (one run), then its no-op rerun."""
    days = [datetime.date(2026, 11, 1) + datetime.timedelta(days=n) for n in range(setup.backfill_days)]
    folder = example(setup.root / "backfill30" / "nbflow", EXAMPLE)
    run = [*NBFLOW_CMD, "run", str(folder), "-g", "report_date", f"{days[0]}..{days[-1]}", "-j", str(CPUS)]
    products = [folder / "data" / "loaded" / f"{day}.json" for day in days]
    products += [folder / "reports" / f"summary_{day}.html" for day in days]
    contender = Contender(
        NBFLOW, folder, full=[run], noop=run, products=products, executed=lambda: newest_nbflow_run(folder)
    )
    full = Measurement("backfill30", f"backfill{len(days)} full (s)")
    attempt(full, contender, "full", "1/1")
    if full.values:
        instances = len(contender.executed())
        full.notes.append(f"{instances} task instances over {len(days)} days, -j {CPUS}; one run, from nothing")
    noop = Measurement("backfill30", f"backfill{len(days)} no-op (s)")
    return [full, alternate(noop, [contender], "noop", setup)]


def case_example(setup: Setup) -> list[Measurement]:
    """The example pipeline (pandas, matplotlib), every instance rerun: the imports preloaded in the fork server,
    against each kernel importing them itself, and against one papermill command per instance in order (then
    nbconvert for each report), as a user without an orchestrator would run it (`papermill_loop.py`)."""
    contenders = []
    for tool, extra in ((NBFLOW, []), (NO_PRELOAD, ["--no-preload"])):
        folder = example(setup.root / "example" / slug(tool), EXAMPLE)
        contenders.append(nbflow_contender(tool, folder, [folder / "reports" / "summary_2026-11-24.html"], extra))
    folder = example(setup.root / "example" / "papermill", EXAMPLE)
    contenders.append(
        Contender(
            PAPERMILL,
            folder,
            full=[[sys.executable, str(BENCH / "papermill_loop.py"), str(folder)]],
            noop=None,
            products=[folder / "reports" / "summary_2026-11-24.html"],
            executed=lambda: sorted((folder / ".out").glob("*.ipynb")),
        )
    )
    if setup.ploomber:
        folder = ploomber_example(setup.root / "example" / "ploomber", EXAMPLE)
        contenders.append(
            Contender(
                PLOOMBER,
                folder,
                full=[[str(setup.ploomber), "build", "--force"]],
                noop=None,
                products=[folder / "reports" / "summary_2026-11-24.html"],
                executed=lambda: sorted((folder / "output").glob("*.ipynb")),
                env=PEER_ENV,
            )
        )
    full = alternate(Measurement("example", "example pipeline, full run (s)"), contenders, "full", setup)
    return [full, Measurement("example", "example pipeline, full run CPU (CPU-s)", values=full.cpu, errors=full.errors)]


def case_sleep4(setup: Setup) -> list[Measurement]:
    """Four independent notebooks that each sleep 3 s: -j 4 against -j 1 (what parallelism buys)."""
    names = [f"f{i:02d}" for i in range(4)]
    measured = []
    contenders = []
    for workers in (1, 4):
        folder = nbflow_copy(
            lambda f: fan_out(f, 4, work="import time; time.sleep(3)"), setup.root / "sleep4" / f"j{workers}"
        )
        contenders.append(nbflow_contender(NBFLOW, folder, products(folder, names), workers=workers))
        measured.append(
            Measurement("sleep4", f"sleep4 -j{workers} (s)", baseline="sleep4 -j1 (s)" if workers == 4 else None)
        )
    for rep in range(setup.repeat):
        for m, contender in zip(measured, contenders):
            attempt(m, contender, "full", f"{rep + 1}/{setup.repeat}")
    return measured


def case_cpu10(setup: Setup) -> list[Measurement]:
    work = f"{BURN}burn({setup.burn_iterations})"
    m = Measurement(
        "cpu10",
        "cpu10 full (s)",
        tasks=10,
        notes=[f"{setup.cpu_seconds:g} s busy loop per task ({setup.burn_iterations:,} iterations)"],
    )
    alternate(m, chain_contenders(setup, "cpu10", 10, work), "full", setup)
    cells = Measurement("cpu10", "cpu10 cells' own time (s)", values=m.cells, errors=m.errors)
    return [m, cells]


def case_resolve(setup: Setup) -> list[Measurement]:
    """Per size, `nbflow.load` in-process (after one warm-up load) and the `nbflow graph` command, interleaved."""
    base, rows = setup.sizes[0], []
    for size in setup.sizes:
        folder = setup.large(size)
        load = Measurement("resolve", f"resolve {size} load() (s)", baseline=f"resolve {base} load() (s)")
        command = Measurement("resolve", f"resolve {size} graph cmd (s)", baseline=f"resolve {base} graph cmd (s)")
        rows.append((folder, load, command))
        time_nbflow(load, "warm-up", lambda folder=folder: nbflow.load(folder))  # warms the file cache
    for rep in range(setup.repeat):
        what = f"{rep + 1}/{setup.repeat}"
        for folder, load, command in rows:
            time_nbflow(load, what, lambda folder=folder: nbflow.load(folder))
            time_nbflow(
                command,
                what,
                lambda folder=folder: run_command([*NBFLOW_CMD, "graph", str(folder), "--format", "json"]),
            )
    return [m for _, load, command in rows for m in (load, command)]


def time_nbflow(m: Measurement, what: str, action: Callable[[], object]) -> None:
    """Time one nbflow action for row `m`, recorded unless it is the warm-up; a failure is recorded as the error."""
    start = time.perf_counter()
    try:
        action()
    except Exception as exc:
        message = str(exc) if isinstance(exc, ToolFailed) else f"{type(exc).__name__}: {exc}"
        m.fail(NBFLOW, message)
        progress(m.label, what, NBFLOW, f"n/a: {message}")
        return
    wall = time.perf_counter() - start
    if what != "warm-up":
        m.record(NBFLOW, wall)
    progress(m.label, what, NBFLOW, f"{wall:7.3f} s")


def case_memory(setup: Setup) -> list[Measurement]:
    size = setup.sizes[-1]
    folder = setup.large(size)
    m = Measurement("memory", f"graph {size} peak RSS (MiB)", notes=[peak_rss_method()])
    for rep in range(setup.repeat):
        try:
            mib = peak_rss_mib([*NBFLOW_CMD, "graph", str(folder), "--format", "json"])
        except ToolFailed as exc:
            m.fail(NBFLOW, str(exc))
            progress(m.label, f"{rep + 1}/{setup.repeat}", NBFLOW, f"n/a: {exc}")
            continue
        m.record(NBFLOW, mib)
        progress(m.label, f"{rep + 1}/{setup.repeat}", NBFLOW, f"{mib:7.1f} MiB")
    tasks = fan_out(setup.root / "fanout100", 100)
    run = Measurement(
        "memory",
        "run 100 tasks: nbflow process peak RSS (MiB)",
        notes=["VmHWM of the nbflow process itself (kernels excluded)"],
    )
    mib = own_peak_rss_mib([*NBFLOW_CMD, "run", str(tasks), "--force", "-j", str(os.cpu_count() or 1)])
    run.record(NBFLOW, mib)
    progress(run.label, "1/1", NBFLOW, f"{mib:7.1f} MiB")
    return [m, run]


def own_peak_rss_mib(argv: list[str]) -> float:
    """The peak RSS of the command's own process (VmHWM, read until it exits), without its children's."""
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak_kib = 0
    while process.poll() is None:
        try:
            with open(f"/proc/{process.pid}/status") as fh:
                peak_kib = max(peak_kib, int(re.search(r"VmHWM:\s+(\d+)", fh.read()).group(1)))
        except (OSError, AttributeError):
            pass
        time.sleep(0.05)
    if process.returncode != 0:
        raise ToolFailed(last_line(process.stderr.read().decode()))
    return peak_kib / 1024


def watched_run(argv: list[str], folder: str) -> tuple[float, float, float, float]:
    """Run an `nbflow run` command to its end: its wall time, its own peak RSS (VmHWM, children excluded), how
    long after the command started its first task started (from the run's record), and how long after it started
    that task's first cell ran in its kernel (the kernel's own timestamp in the executed notebook)."""
    started = time.time()
    mib = own_peak_rss_mib(argv)
    wall = time.time() - started
    shown = json.loads(run_command([*NBFLOW_CMD, "show", "latest", folder, "--json"]))
    tasks = [t for t in shown["tasks"] if t["started_at"]]
    first = min(tasks, key=lambda t: datetime.datetime.fromisoformat(t["started_at"]))
    cells = nbformat.read(Path(folder) / first["output_notebook"], as_version=4).cells
    ran = min(
        datetime.datetime.fromisoformat(cell.metadata.execution["iopub.execute_input"].replace("Z", "+00:00"))
        for cell in cells
        if "iopub.execute_input" in cell.metadata.get("execution", {})
    )
    task_started = datetime.datetime.fromisoformat(first["started_at"]).timestamp()
    return wall, mib, task_started - started, ran.timestamp() - started


def case_chain1000(setup: Setup) -> list[Measurement]:
    """Independent trivial notebooks, 100 and then 1,000 of them, run with real kernels at -j = CPU count: the
    wall time per task (flat from 100 to 1,000 is the target), the nbflow process's peak RSS and its time to the
    first task."""
    sizes = (20, 100) if setup.repeat == 1 and not setup.warm_up else (100, 1000)
    rows = []
    for size in sizes:
        folder = nbflow_copy(lambda f, size=size: fan_out(f, size), setup.root / f"chain1000-{size}")
        per_task = Measurement(
            "chain1000",
            f"fan-out {size} -j{CPUS}: s per task",
            baseline=f"fan-out {sizes[0]} -j{CPUS}: s per task",
        )
        rss = Measurement("chain1000", f"fan-out {size}: nbflow peak RSS (MiB)", notes=["VmHWM, kernels excluded"])
        first = Measurement("chain1000", f"fan-out {size}: first task after (s)")
        first_cell = Measurement(
            "chain1000", f"fan-out {size}: its first cell ran after (s)", notes=["the kernel's execute_input time"]
        )
        rows.append((folder, size, per_task, rss, first, first_cell))
    for rep in range(setup.repeat):
        for folder, size, per_task, rss, first, first_cell in rows:
            argv = [*NBFLOW_CMD, "run", str(folder), "--force", "-j", str(CPUS)]
            try:
                wall, mib, to_first, to_first_cell = watched_run(argv, str(folder))
            except ToolFailed as exc:
                per_task.fail(NBFLOW, str(exc))
                continue
            per_task.record(NBFLOW, wall / size)
            rss.record(NBFLOW, mib)
            first.record(NBFLOW, to_first)
            first_cell.record(NBFLOW, to_first_cell)
            progress(per_task.label, f"{rep + 1}/{setup.repeat}", NBFLOW, f"{wall:7.1f} s, {mib:.0f} MiB")
    return [m for _, _, *measured in rows for m in measured]


def peak_rss_method() -> str:
    return "/usr/bin/time -v" if os.access("/usr/bin/time", os.X_OK) else "getrusage(RUSAGE_CHILDREN)"


def peak_rss_mib(argv: list[str]) -> float:
    """Peak RSS of one command: /usr/bin/time -v, else a fresh Python parent reading RUSAGE_CHILDREN."""
    if os.access("/usr/bin/time", os.X_OK):
        with tempfile.NamedTemporaryFile("r", suffix=".time") as report:
            run_command(["/usr/bin/time", "-v", "-o", report.name, *argv])
            kib = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", report.read()).group(1))
    else:
        probe = (
            "import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, capture_output=True); "
            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
        )
        kib = int(run_command([sys.executable, "-c", probe, *argv]))
    return kib / 1024


CASE_FUNCTIONS = {
    "chain10": case_chain10,
    "dask-chain10": case_dask_chain10,
    "fanout16": case_fanout16,
    "example": case_example,
    "sleep4": case_sleep4,
    "cpu10": case_cpu10,
    "resolve": case_resolve,
    "memory": case_memory,
    "chain1000": case_chain1000,
    "grid100": case_grid100,
    "backfill30": case_backfill30,
}


def calibrate(seconds: float) -> int:
    """Iterations of BURN's loop that take `seconds` here: best of three at a size long enough to time."""
    namespace: dict = {}
    exec(BURN, namespace)
    burn, n = namespace["burn"], 100_000
    while True:
        took = min(timed(burn, n) for _ in range(3))
        if took >= 0.2:
            return round(n * seconds / took)
        n *= 2


def timed(fn: Callable, *args) -> float:
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


# --- reporting ------------------------------------------------------------------------------------------------


def machine() -> dict:
    cpuinfo = Path("/proc/cpuinfo")
    model = re.search(r"^model name\s*:\s*(.+)$", cpuinfo.read_text(), re.M) if cpuinfo.exists() else None
    return {
        "nproc": CPUS,
        "cpu": model.group(1) if model else platform.processor() or "unknown",
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
    }


def versions(setup: Setup) -> dict:
    found = {"nbflow": nbflow.__version__, "papermill": metadata.version("papermill")}
    if setup.ploomber:
        python = setup.ploomber.parent / "python"
        try:
            found["ploomber"] = run_command([str(python), "-c", "import ploomber; print(ploomber.__version__)"]).strip()
        except ToolFailed:
            found["ploomber"] = "unknown"
    return found


def fmt(value: float | None, digits: int = 2) -> str:
    return "" if value is None else f"{value:.{3 if value < 1 else digits}f}"


def cell(m: Measurement, tool: str) -> str:
    """The median; `n/a` when every run failed, a `*` when some did."""
    value = m.median(tool)
    if value is None:
        return "n/a" if tool in m.errors else ""
    return fmt(value, 0 if "MiB" in m.label else 2) + ("*" if tool in m.errors else "")


def ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}" if a is not None and b else ""


def overhead(m: Measurement) -> str:
    wall, cells = m.median(NBFLOW), m.cells_median(NBFLOW)
    return f"{(wall - cells) / m.tasks:.3f}" if m.tasks and wall is not None and cells is not None else ""


def derived_notes(m: Measurement, by_label: dict[str, Measurement]) -> list[str]:
    notes = list(m.notes)
    base = by_label.get(m.baseline) if m.baseline else None
    if base is not None and base is not m:
        r = ratio(m.median(NBFLOW), base.median(NBFLOW))
        notes.append(f"x{r} vs {base.label.split()[1]}" if r else "")
    wall, cells = m.median(NBFLOW), m.cells_median(NBFLOW)
    if m.case == "dask-chain10" and (r := ratio(m.median(ON_DASK), wall)):
        notes.append(f"Dask/local x{r}")
    if m.case == "example" and (r := ratio(wall, m.median(NO_PRELOAD))):
        notes.append(f"preload/no-preload x{r}")
    if m.case == "cpu10" and m.tasks and wall is not None and cells:
        notes.append(f"nbflow wall/cells {wall / cells:.2f}")
    return [n for n in notes if n]


def tools_in(measurements: list[Measurement]) -> list[str]:
    """The tools that took part in any of the measurements, in column order."""
    return [
        t
        for t in (NBFLOW, NO_PREWARM, NO_PRELOAD, ON_DASK, PLOOMBER, PAPERMILL)
        if any(t in m.values or t in m.errors for m in measurements)
    ]


def table(measurements: list[Measurement]) -> tuple[list[str], list[list[str]]]:
    """Header and rows: a column per tool that took part, nbflow's ratio to each peer, per-task overhead, notes."""
    tools = tools_in(measurements)
    peers = [(peer, f"nbflow/{peer.split()[0]}") for peer in (PLOOMBER, PAPERMILL) if peer in tools]
    with_overhead = any(m.tasks for m in measurements)
    header = [
        "measurement",
        *tools,
        *(title for _, title in peers),
        *(["nbflow overhead/task s"] if with_overhead else []),
        "note",
    ]
    by_label = {m.label: m for m in measurements}
    rows = [
        [
            m.label,
            *(cell(m, t) for t in tools),
            *(ratio(m.median(NBFLOW), m.median(peer)) for peer, _ in peers),
            *([overhead(m)] if with_overhead else []),
            "; ".join(derived_notes(m, by_label)),
        ]
        for m in measurements
    ]
    return header, rows


def render_text(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header) - 1)]
    lines = []
    for r in [header, *rows]:
        cells = [r[0].ljust(widths[0]), *(v.rjust(w) for v, w in zip(r[1:-1], widths[1:], strict=True))]
        lines.append("  ".join([*cells, r[-1]]).rstrip())
    return "\n".join(lines)


def render_markdown(header: list[str], rows: list[list[str]]) -> str:
    align = ["---", *("---:" for _ in header[1:-1]), "---"]
    return "\n".join("| " + " | ".join(r) + " |" for r in [header, align, *rows])


def preamble(info: dict, vers: dict, markdown: bool) -> str:
    lines = [
        f"Machine: {info['nproc']} CPUs, {info['cpu']}, Python {info['python']}, {info['platform']}",
        f"Date: {info['date']}; load average at start: {' '.join(map(str, info['load_average']))}",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in vers.items()),
        "Medians in seconds (memory in MiB); ratios of medians; n/a: every run of the tool failed, *: some did "
        "(failures listed under the table).",
    ]
    return "\n".join(f"{line}  " if markdown else line for line in lines)


def failures(measurements: list[Measurement]) -> str:
    """One line per tool and error message: which rows, how many failed runs (warm-ups included)."""
    seen: dict[tuple[str, str], dict[str, int]] = {}
    for m in measurements:
        for tool, messages in m.errors.items():
            for message in messages:
                rows = seen.setdefault((tool, message), {})
                rows[m.label] = rows.get(m.label, 0) + 1
    return "\n".join(
        f"- {tool}, {', '.join(f'{label} x{n}' for label, n in rows.items())}: {message}"
        for (tool, message), rows in seen.items()
    )


def plot(measurements: list[Measurement], path: Path) -> None:
    """Grouped bars: the pipeline cases per tool, and resolution time per size."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = [
        ("pipelines: median wall time (s)", ("chain10", "fanout16", "grid100", "backfill30", "cpu10")),
        ("resolve: median time (s)", ("resolve",)),
    ]
    panels = [(title, ms) for title, cases in groups if (ms := [m for m in measurements if m.case in cases])]
    if not panels:
        return
    fig, axes = plt.subplots(len(panels), 1, figsize=(11, 4.5 * len(panels)), squeeze=False)
    for ax, (title, ms) in zip(axes[:, 0], panels, strict=True):
        present = [t for t in tools_in(ms) if any(m.median(t) is not None for m in ms)]
        width = 0.8 / max(len(present), 1)
        for k, tool in enumerate(present):
            xs = [i + k * width for i, m in enumerate(ms) if m.median(tool) is not None]
            ys = [m.median(tool) for m in ms if m.median(tool) is not None]
            bars = ax.bar(xs, ys, width, label=tool)
            ax.bar_label(bars, fmt="%.2f", fontsize=7)
        ax.set_xticks(
            [i + 0.4 - width / 2 for i in range(len(ms))],
            [m.label.rsplit(" (", 1)[0] for m in ms],
            rotation=15,
            fontsize=8,
        )
        ax.set_title(title)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def save(
    measurements: list[Measurement], info: dict, vers: dict, setup: Setup, args: argparse.Namespace, stamp: str
) -> tuple[Path, Path]:
    RESULTS.mkdir(exist_ok=True)
    raw = {
        "machine": info,
        "versions": vers,
        "args": vars(args),
        "repeat": setup.repeat,
        "warm_up": setup.warm_up,
        "calibration": {"seconds": setup.cpu_seconds, "iterations": setup.burn_iterations},
        "measurements": [asdict(m) for m in measurements],
    }
    json_path, png_path = RESULTS / f"bench-{stamp}.json", RESULTS / f"bench-{stamp}.png"
    json_path.write_text(json.dumps(raw, indent=2) + "\n")
    plot(measurements, png_path)
    return json_path, png_path


# --- main -----------------------------------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--repeat", type=int, default=None, help="timed repetitions per tool (default 3; 1 with --quick)"
    )
    parser.add_argument("--cases", default=",".join(CASES), help=f"comma-separated, from {', '.join(CASES)}")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a fast smoke run: no warm-up, 1 repetition, 0.25 s CPU tasks, resolve at 200/400/1000, a 20-value grid, "
        "a 3-day backfill",
    )
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown (for bench/README.md)")
    args = parser.parse_args()
    unknown = set(args.cases.split(",")) - set(CASES)
    if unknown:
        parser.error(f"unknown case(s): {', '.join(sorted(unknown))}; choose from {', '.join(CASES)}")
    if args.repeat is not None and args.repeat < 1:
        parser.error("--repeat must be at least 1")
    return args


def compile_nbflow() -> None:
    """Write the bytecode of nbflow's modules, which `compileall` does whatever PYTHONDONTWRITEBYTECODE says."""
    compileall.compile_dir(Path(nbflow.__file__).parent, quiet=1)


def main() -> None:
    args = parse_args()
    compile_nbflow()
    cases = [c for c in CASES if c in args.cases.split(",")]
    needs_peers = any(c in cases for c in ("chain10", "example", "fanout16", "grid100", "cpu10"))
    info = machine()
    with tempfile.TemporaryDirectory(prefix="nbflow-bench-") as tmp:
        setup = Setup(
            root=Path(tmp),
            repeat=args.repeat or (1 if args.quick else 3),
            warm_up=not args.quick,
            cpu_seconds=0.25 if args.quick else 1.0,
            sizes=[200, 400, 1000] if args.quick else [1000, 2000, 5000],
            grid_size=20 if args.quick else 100,
            backfill_days=3 if args.quick else 30,
            ploomber=ensure_ploomber() if needs_peers else None,
            no_prewarm=nbflow_run_has("--no-prewarm"),
        )
        if "cpu10" in cases:
            setup.burn_iterations = calibrate(setup.cpu_seconds)
        print(
            f"{info['nproc']} CPUs, {info['cpu']}; nbflow run --no-prewarm: "
            f"{'yes' if setup.no_prewarm else 'no'}; ploomber: {setup.ploomber or 'skipped'}",
            file=sys.stderr,
        )
        measurements = [m for case in cases for m in CASE_FUNCTIONS[case](setup)]
        vers = versions(setup)
    header, rows = table(measurements)
    print(preamble(info, vers, args.markdown))
    print()
    print(render_markdown(header, rows) if args.markdown else render_text(header, rows))
    if any(m.errors for m in measurements):
        print("\nFailures:\n" + failures(measurements))
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    json_path, png_path = save(measurements, info, vers, setup, args, stamp)
    print(
        f"Raw timings: {json_path.relative_to(BENCH.parent)}; plot: {png_path.relative_to(BENCH.parent)}",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
