"""Warm kernels on Dask workers: a run's plugin gives each worker of a real LocalCluster a fork server.

Each task's kernel is forked from its worker's fork server (its parent), with the modules the notebooks import
already imported there; results are those of a cold kernel; when the run is over no fork server or kernel is left
on the workers.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import psutil
import pytest
from conftest import run_cli, write_notebook

distributed = pytest.importorskip("distributed")

WORKERS = 2

# When this process started, by this machine's clock (psutil's create_time is off by up to a second: the boot
# time it adds is in whole seconds)
CREATED = """import os, time
ticks = int(open("/proc/self/stat").read().rsplit(")", 1)[1].split()[19])
created = time.time() - time.clock_gettime(time.CLOCK_BOOTTIME) + ticks / os.sysconf("SC_CLK_TCK")
"""
# What the kernel tells about itself, written to the task's output
PROBE = (
    CREATED
    + """import json, os, sys, psutil
parent = psutil.Process(os.getppid())
seen = {"parent": parent.cmdline(), "pandas_before": "pandas" in sys.modules, "cwd": os.getcwd(), "pid": os.getpid(),
        "created": created}
import pandas
seen["sum"] = int(pandas.Series([1, 2, 3]).sum())
json.dump(seen, open(outputs[0], "w"))"""
)


@pytest.fixture(scope="module")
def cluster():
    with (
        distributed.LocalCluster(
            n_workers=WORKERS,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
            worker_dashboard_address=None,
        ) as local,
        distributed.Client(local, set_as_default=False) as client,
    ):
        client.wait_for_workers(WORKERS, timeout=120)
        yield local.scheduler_address, client


def chain(project: Path, length: int) -> Path:
    """t0 -> t1 -> ...: each probes its kernel into data/tN.json."""
    project.mkdir(exist_ok=True)
    (project / "nbflow.toml").write_text("")
    for i in range(length):
        inputs = f'inputs = ["data/t{i - 1}.json"]\n' if i else ""
        write_notebook(project / f"t{i}.ipynb", f'{inputs}outputs = ["data/t{i}.json"]', PROBE)
    return project


def probes(project: Path, length: int) -> list[dict]:
    return [json.loads((project / "data" / f"t{i}.json").read_text()) for i in range(length)]


def worker_children(client) -> list[list[str]]:
    """The command lines of every process the workers have started and that still runs."""

    def children() -> list[list[str]]:
        found = []
        for child in psutil.Process().children(recursive=True):
            try:
                found.append(child.cmdline())
            except psutil.Error:
                pass
        return found

    return [cmd for cmds in client.run(children).values() for cmd in cmds]


def nbflow_plugins(client) -> list[str]:
    def names(dask_worker) -> list[str]:
        return [name for name in dask_worker.plugins if name.startswith("nbflow-")]

    return [name for names_ in client.run(names).values() for name in names_]


def last_run(project: Path) -> dict:
    return json.loads(run_cli("show", "latest", str(project), "--json").stdout)


def dask_run(project: Path, address: str, *args: str, env: dict | None = None):
    return run_cli("run", str(project), "--executor", "dask", "--dask-address", address, "--force", *args, env=env)


def test_kernels_fork_from_the_workers_fork_server_with_imports_preloaded(cluster, tmp_path):
    address, client = cluster
    project = chain(tmp_path / "p", 4)
    result = dask_run(project, address)
    assert result.returncode == 0, result.stdout + result.stderr
    seen = probes(project, 4)
    assert all(s["parent"][1:3] == ["-m", "nbflow.run.forkserver"] for s in seen), seen
    assert all(s["pandas_before"] for s in seen)  # the fork server imported it before the kernels forked
    assert {s["sum"] for s in seen} == {6} and {s["cwd"] for s in seen} == {str(project)}
    assert len({s["pid"] for s in seen}) == 4  # one kernel per task, never reused
    # started ahead: after a worker's first task, a task in the same folder takes a kernel forked before it was
    # even submitted (a task's `started_at` is when the runner sent it)
    started = {t["name"]: datetime.fromisoformat(t["started_at"]).timestamp() for t in last_run(project)["tasks"]}
    ahead = [i for i, s in enumerate(seen) if s["created"] < started[f"t{i}"]]
    assert ahead and 0 not in ahead, (ahead, seen, started)
    # the run is over: its plugin is gone from the workers, and with it every fork server and kernel
    assert nbflow_plugins(client) == []
    assert worker_children(client) == []


def test_tasks_with_secrets_get_no_kernel_started_ahead(cluster, tmp_path):
    """A secret reaches the kernel through its environment: no idle kernel started ahead may hold it, so each task
    reading one forks its kernel once it starts; the kernel sees the secret."""
    address, client = cluster
    project = tmp_path / "s"
    project.mkdir()
    (project / "nbflow.toml").write_text('[secrets]\ntoken = "env:NBFLOW_TEST_TOKEN"\n')
    probe = CREATED + "import json\njson.dump([token, created], open(outputs[0], 'w'))"
    for i in range(3):
        inputs = f'inputs = ["data/t{i - 1}.json"]\n' if i else ""
        write_notebook(project / f"t{i}.ipynb", f'token = "none"\n{inputs}outputs = ["data/t{i}.json"]', probe)
    (project / "data").mkdir()
    result = dask_run(project, address, env={"NBFLOW_TEST_TOKEN": "s3cr3t"})
    assert result.returncode == 0, result.stdout + result.stderr
    started = {t["name"]: datetime.fromisoformat(t["started_at"]).timestamp() for t in last_run(project)["tasks"]}
    for i in range(3):
        token, created = json.loads((project / "data" / f"t{i}.json").read_text())
        assert token == "s3cr3t" and created > started[f"t{i}"]
    assert nbflow_plugins(client) == [] and worker_children(client) == []


def test_without_preload_or_prewarm_the_results_are_the_same(cluster, tmp_path):
    address, client = cluster
    project = chain(tmp_path / "p", 2)
    result = dask_run(project, address, "--no-preload")
    assert result.returncode == 0, result.stdout + result.stderr
    seen = probes(project, 2)
    assert all(s["parent"][1:3] == ["-m", "nbflow.run.forkserver"] and not s["pandas_before"] for s in seen)
    assert {s["sum"] for s in seen} == {6}
    result = dask_run(project, address, "--no-prewarm")
    assert result.returncode == 0, result.stdout + result.stderr
    seen = probes(project, 2)
    # a cold kernel: started by the worker itself (`python -m ipykernel_launcher`), pandas imported by the notebook
    assert all("nbflow.run.forkserver" not in s["parent"] and not s["pandas_before"] for s in seen), seen
    assert {s["sum"] for s in seen} == {6}
    assert nbflow_plugins(client) == [] and worker_children(client) == []
