"""`--executor dask` against a real dask.distributed LocalCluster: worker processes on 127.0.0.1.

Everything goes through the real `nbflow` command. Worker deaths are real SIGKILLs of the worker process running
the notebook (found as the parent of the kernel's fork server); the cluster's nannies start a new worker in its
place.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from conftest import run_cli, write_notebook

from nbflow.processes import alive

distributed = pytest.importorskip("distributed")

EXAMPLE = Path(__file__).resolve().parents[1] / "notebooks"
WORKERS = 2


def local_cluster():
    return distributed.LocalCluster(
        n_workers=WORKERS,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address="127.0.0.1:0",
        worker_dashboard_address=None,
    )


@pytest.fixture(scope="module")
def cluster():
    with local_cluster() as local, distributed.Client(local, set_as_default=False) as client:
        client.wait_for_workers(WORKERS, timeout=120)
        yield local, client


@pytest.fixture
def doomed():
    """A cluster of its own for a test that kills one of its workers (a busy machine may be slow to replace it)."""
    with local_cluster() as local, distributed.Client(local, set_as_default=False) as client:
        client.wait_for_workers(WORKERS, timeout=120)
        yield local.scheduler_address, client


def markers_left(client) -> list:
    """nbflow's per-task markers still on the scheduler (each run removes its own)."""

    def names(dask_scheduler):
        return [str(name) for name in dask_scheduler.extensions["events"]._events if "nbflow-" in str(name)]

    return client.run_on_scheduler(names)


@pytest.fixture
def client(cluster):
    """The shared cluster's client, all its workers there."""
    _, dask_client = cluster
    dask_client.wait_for_workers(WORKERS, timeout=120)
    return dask_client


@pytest.fixture
def address(cluster, client) -> str:
    return cluster[0].scheduler_address


def dask_run(project: Path, address: str, *args: str) -> subprocess.CompletedProcess:
    return run_cli("run", str(project), "--executor", "dask", "--dask-address", address, *args)


def last_run(project: Path) -> dict:
    return json.loads(run_cli("show", "latest", str(project), "--json").stdout)


def states(project: Path) -> dict[str, str]:
    return {t["name"]: t["state"] for t in last_run(project)["tasks"]}


def wait_for(path: Path, process: subprocess.Popen, seconds: float = 120) -> str:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().strip():
            return path.read_text()
        if process.poll() is not None:
            raise AssertionError("the run ended early: " + process.stdout.read() + process.stderr.read())
        time.sleep(0.2)
    process.kill()
    raise AssertionError(f"{path} never appeared: " + process.stderr.read())


def start_run(project: Path, address: str, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "nbflow", "run", str(project), "--executor", "dask", "--dask-address", address, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def no_task_processing(client) -> bool:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if not any(client.processing().values()):
            return True
        time.sleep(0.2)
    return False


# -- the example pipeline ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def example(cluster, tmp_path_factory) -> Path:
    copy = tmp_path_factory.mktemp("dask-example") / "notebooks"
    shutil.copytree(EXAMPLE, copy, ignore=shutil.ignore_patterns("data", "reports", ".nbflow", ".ipynb_checkpoints"))
    return copy


def test_the_example_pipeline_runs_on_the_cluster(example, address):
    result = dask_run(example, address)
    assert result.returncode == 0, result.stdout + result.stderr
    run = last_run(example)
    assert {t["state"] for t in run["tasks"]} == {"succeeded"} and len(run["tasks"]) == 13  # 5 regions' reports
    assert "2026-11-24" in (example / "reports" / "transactions_2026-11-24_all.html").read_text()
    # Each executed notebook came back to the local store, as a local run's would be.
    for task in run["tasks"]:
        executed = example / task["output_notebook"]
        assert executed.parent == example / ".nbflow" / "runs" / run["id"]
        papermill = json.loads(executed.read_text())["metadata"]["papermill"]
        assert papermill["output_path"] == str(executed)
        assert papermill["input_path"].startswith(str(example)) and papermill["exception"] is None


def test_a_second_run_on_the_cluster_is_all_skipped(example, address):
    result = dask_run(example, address)
    assert result.returncode == 0, result.stderr
    assert set(states(example).values()) == {"skipped"}


def test_a_failure_on_the_cluster_fails_its_downstream(example, address):
    result = dask_run(example, address, "-p", "error_rate", "0.5")
    assert result.returncode == 1
    tasks = {t["name"]: t for t in last_run(example)["tasks"]}
    failed = tasks["quality_check"]
    assert failed["state"] == "failed" and failed["error"]["ename"] == "ValueError"
    assert "above the threshold" in failed["error"]["evalue"] and failed["error"]["cell_index"] is not None
    assert tasks["warehouse"]["state"] == tasks["daily_report[region=north]"]["state"] == "upstream_failed"
    assert tasks["clean"]["state"] == "succeeded"
    # the executed notebook keeps the error, like a local run's
    assert "above the threshold" in (example / failed["output_notebook"]).read_text()
    assert "quality_check: ValueError" in result.stderr


def test_the_kernels_own_output_comes_back_to_the_run_folder(project, address):
    """What a kernel writes past the notebook (straight to its stderr) is in TASK.kernel.log beside the executed
    notebook, as in a local run, though the kernel ran on a worker."""
    write_notebook(
        project / "loud.ipynb",
        'outputs = ["loud.txt"]',
        "import os\nos.write(2, b'written past the notebook\\n')\nopen(outputs[0], 'w').write('x')",
    )
    result = dask_run(project, address)
    assert result.returncode == 0, result.stdout + result.stderr
    task = last_run(project)["tasks"][0]
    executed = project / task["output_notebook"]
    assert json.loads(executed.read_text())["metadata"]["papermill"]["exception"] is None
    assert "written past the notebook" in executed.with_suffix(".kernel.log").read_text()


def test_the_store_follows_the_cell_running_on_the_cluster(project, address, client):
    """As in a local run: while the notebook runs on a worker, its task row has the running cell, that cell's first
    line and the last lines it printed; at the end, its last cell. The scheduler keeps none of it afterwards."""
    import nbflow
    from nbflow.models import TaskState
    from nbflow.run.background import start_run as start_in_background
    from nbflow.store import open_store

    write_notebook(
        project / "load.ipynb",
        'outputs = ["done.txt"]',
        "import time\nfor i in range(3):\n    print(f'row {i}')\n    time.sleep(0.2)",
        "# wait for the test\nimport os\nfor _ in range(1200):\n    if os.path.exists('go'):\n        break\n"
        "    time.sleep(0.05)",
        "open('done.txt', 'w').write('ok')",
    )

    def task_row():
        store = open_store(project / ".nbflow")
        try:
            return next(t for t in store.task_runs(handle.id) if t.name == "load")
        finally:
            store.close()

    handle = start_in_background(nbflow.load(project), trigger="api", executor="dask", dask_address=address)
    try:
        deadline = time.monotonic() + 60
        while (row := task_row()).progress is None or row.progress.cell < 4:
            assert not row.state.finished, row  # the progress must come while it runs, not with its result
            assert time.monotonic() < deadline, f"no progress past cell 1 in the store: {row.progress}"
            time.sleep(0.05)
        # parameters, injected parameters, the printing cell, the waiting one: 4 of 5, the task still running
        assert row.state is TaskState.RUNNING
        assert (row.progress.cell, row.progress.cells) == (4, 5)
        assert row.progress.line == "# wait for the test"
        assert row.progress.tail == ["row 0", "row 1", "row 2"]
    finally:
        (project / "go").write_text("")
    run = handle.wait(timeout=120)
    assert run is not None and run.state == "succeeded"
    assert task_row().progress.cell == 5  # as far as it got: the last cell
    assert client.get_events(f"nbflow-{handle.id}-progress") == ()


def test_runs_leave_nothing_behind_on_the_scheduler(example, client):
    assert markers_left(client) == []
    assert [topic for topic in client.get_events() if str(topic).startswith("nbflow-")] == []  # their progress
    assert not any(client.processing().values())


# -- failures ------------------------------------------------------------------------------------------------------


def sleeper(project: Path, seconds: int, *, once: bool = False) -> None:
    """A notebook that says where it runs (its kernel's pid and the worker process that started it), sleeps, then
    writes its output. With `once`, only its first attempt sleeps."""
    write_notebook(
        project / "sleepy.ipynb",
        'outputs = ["out.txt"]',
        "import os, time\n"
        "first = not os.path.exists('attempted')\n"
        "open('attempted', 'a').write('x')\n"
        "open('where.txt', 'a').write(f'{os.getpid()} {os.getppid()}\\n')",
        f"time.sleep({seconds} if first or not {once} else 0)",
        "open(outputs[0], 'w').write('done')",
    )


def kill_the_worker_running_it(project: Path, process: subprocess.Popen) -> int:
    kernel, parent = map(int, wait_for(project / "where.txt", process).split())
    # the kernel's parent is the worker's fork server (`nbflow.run.dask_plugin`), whose parent is the worker
    forks = psutil.Process(parent)
    worker = forks.ppid() if "nbflow.run.forkserver" in forks.cmdline() else parent
    time.sleep(1)  # into the sleep
    os.kill(worker, signal.SIGKILL)
    return kernel


def attempts(project: Path, task: str) -> list[tuple[int, str, dict | None]]:
    import sqlite3

    with sqlite3.connect(project / ".nbflow" / "nbflow.db") as db:
        rows = db.execute(
            "SELECT attempt, state, error FROM attempts WHERE task = ? ORDER BY attempt", (task,)
        ).fetchall()
    return [(n, state, json.loads(error) if error else None) for n, state, error in rows]


def test_a_worker_killed_mid_task_is_survived_with_retries(project, doomed):
    sleeper(project, 60, once=True)
    process = start_run(project, doomed[0], "--retries", "1")
    kernel = kill_the_worker_running_it(project, process)
    out, err = process.communicate(timeout=240)
    assert process.returncode == 0, out + err
    assert states(project) == {"sleepy": "succeeded"}
    (first, state1, error1), (second, state2, _) = attempts(project, "sleepy")
    assert (state1, state2) == ("failed", "succeeded")
    assert error1["ename"] == "WorkerDied" and "Dask worker running it died" in error1["evalue"]
    assert (project / "out.txt").read_text() == "done"
    # The notebook ran once per attempt: Dask's own rescheduling did not run it behind nbflow's back.
    assert len((project / "where.txt").read_text().split("\n")) - 1 == 2
    deadline = time.monotonic() + 30
    while alive(kernel) and time.monotonic() < deadline:  # its kernel follows its dead worker
        time.sleep(0.2)
    assert not alive(kernel)
    assert markers_left(doomed[1]) == []


def test_a_worker_killed_mid_task_without_retries_is_a_clear_failure(project, doomed):
    sleeper(project, 60)
    process = start_run(project, doomed[0])
    kill_the_worker_running_it(project, process)
    out, err = process.communicate(timeout=240)
    assert process.returncode == 1, out + err
    task = last_run(project)["tasks"][0]
    assert task["state"] == "failed" and task["attempts"] == 1
    assert task["error"]["ename"] == "WorkerDied"
    assert "the Dask worker running it died mid-task" in task["error"]["evalue"]
    assert "sleepy: WorkerDied: the Dask worker running it died" in err
    assert not (project / "out.txt").exists()
    assert len((project / "where.txt").read_text().split("\n")) - 1 == 1
    assert markers_left(doomed[1]) == []


def test_a_scheduler_that_never_reschedules_gives_the_same_clear_failure(project):
    """With allowed-failures 0 Dask itself gives up at the first death (KilledWorker): the same failure, and the
    dead worker is named."""
    import dask

    with dask.config.set({"distributed.scheduler.allowed-failures": 0}), local_cluster() as local:
        sleeper(project, 60)
        process = start_run(project, local.scheduler_address)
        kill_the_worker_running_it(project, process)
        out, err = process.communicate(timeout=240)
    assert process.returncode == 1, out + err
    error = last_run(project)["tasks"][0]["error"]
    assert error["ename"] == "WorkerDied"
    assert (
        error["evalue"].startswith("the Dask worker running it (tcp://127.0.0.1:")
        and "died mid-task" in error["evalue"]
    )


def test_a_timeout_kills_the_kernel_on_the_worker_and_keeps_its_notebook(project, address, client):
    sleeper(project, 120)
    result = dask_run(project, address, "--timeout", "8")
    assert result.returncode == 1, result.stdout + result.stderr
    task = last_run(project)["tasks"][0]
    assert task["state"] == "failed" and task["error"]["ename"] == "TaskTimeout"
    kernel = int((project / "where.txt").read_text().split()[0])
    assert not alive(kernel)
    executed = json.loads((project / task["output_notebook"]).read_text())
    assert "time.sleep" in "".join(executed["cells"][-2]["source"])
    assert no_task_processing(client)


def test_ctrl_c_cancels_the_task_on_the_cluster(project, address, client):
    sleeper(project, 120)
    process = start_run(project, address)
    kernel = int(wait_for(project / "where.txt", process).split()[0])
    time.sleep(1)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 130, out + err
    assert "Traceback" not in err
    runs = json.loads(run_cli("runs", str(project), "--json").stdout)
    assert runs[0]["state"] == "cancelled" and runs[0]["counts"] == {"cancelled": 1}
    assert not alive(kernel)
    assert no_task_processing(client)
    assert not (project / "out.txt").exists()


def test_a_dead_client_does_not_leave_its_notebook_running(project, address, client):
    """The run's process dies (no Ctrl-C, no clean-up): the cluster drops its tasks, and each kills its kernel."""
    sleeper(project, 120)
    process = start_run(project, address)
    kernel = int(wait_for(project / "where.txt", process).split()[0])
    process.kill()
    process.communicate(timeout=60)
    deadline = time.monotonic() + 60
    while alive(kernel) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not alive(kernel)
    assert no_task_processing(client)


def most_at_once(run: dict) -> int:
    moments = sorted(
        [(t["started_at"], 1) for t in run["tasks"]] + [(t["finished_at"], -1) for t in run["tasks"]],
        key=lambda m: (m[0], m[1]),
    )
    running = most = 0
    for _, change in moments:
        running += change
        most = max(most, running)
    return most


def test_independent_tasks_share_the_cluster_and_dependencies_hold(project, address):
    for name in ("a", "b", "c"):
        write_notebook(
            project / f"{name}.ipynb",
            f'outputs = ["{name}.txt"]',
            "import os\nopen(outputs[0], 'w').write(str(os.getppid()))",
        )
    write_notebook(
        project / "join.ipynb",
        'inputs = ["a.txt", "b.txt", "c.txt"]\noutputs = ["join.txt"]',
        "open(outputs[0], 'w').write(' '.join(open(p).read() for p in inputs))",
    )
    result = dask_run(project, address)
    assert result.returncode == 0, result.stdout + result.stderr
    assert set(states(project).values()) == {"succeeded"}
    run = last_run(project)
    times = {t["name"]: t for t in run["tasks"]}
    assert all(times["join"]["started_at"] >= times[n]["finished_at"] for n in "abc")
    assert len((project / "join.txt").read_text().split()) == 3
    assert most_at_once(run) == WORKERS  # as many as the cluster has threads, no more
    assert dask_run(project, address, "--force", "-j", "1").returncode == 0
    assert most_at_once(last_run(project)) == 1  # -j still caps it
    # incremental skipping holds on the cluster too: change one notebook, only it and what depends on it rerun
    write_notebook(project / "b.ipynb", 'outputs = ["b.txt"]', "open(outputs[0], 'w').write('changed')")
    assert dask_run(project, address).returncode == 0
    assert states(project) == {"a": "skipped", "b": "succeeded", "c": "skipped", "join": "succeeded"}


# -- the cluster itself --------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_unreachable_cluster_is_exit_2_and_nothing_runs(project):
    write_notebook(project / "a.ipynb", 'outputs = ["a.txt"]', "open(outputs[0], 'w').write('x')")
    started = time.monotonic()
    result = dask_run(project, f"tcp://127.0.0.1:{free_port()}")
    assert result.returncode == 2, result.stdout + result.stderr
    assert time.monotonic() - started < 120  # a few seconds, not Dask's 30 s retry loop (loose: a busy machine)
    assert "cannot reach the Dask scheduler at tcp://127.0.0.1:" in result.stderr
    assert "Nothing ran" in result.stderr and "Traceback" not in result.stderr
    assert json.loads(run_cli("runs", str(project), "--json").stdout) == []
    assert not (project / "a.txt").exists()


def test_dask_needs_an_address(project):
    write_notebook(project / "a.ipynb", 'outputs = ["a.txt"]', "open(outputs[0], 'w').write('x')")
    result = run_cli("run", str(project), "--executor", "dask", env={"DASK_SCHEDULER_ADDRESS": ""})
    assert result.returncode == 2
    assert "--executor dask needs the scheduler's address: --dask-address" in result.stderr


def test_without_dask_installed_the_message_says_how_to_install_it(project):
    write_notebook(project / "a.ipynb", 'outputs = ["a.txt"]', "open(outputs[0], 'w').write('x')")
    code = "import sys; sys.modules['distributed'] = None; from nbflow.cli import main; sys.exit(main(sys.argv[1:]))"
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            code,
            "run",
            str(project),
            "--executor",
            "dask",
            "--dask-address",
            "tcp://127.0.0.1:8786",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert "pip install 'nbflow[dask]'" in result.stderr


def test_importing_the_executor_does_not_import_dask():
    code = "import sys, nbflow.run.dask; print('distributed' in sys.modules, 'dask' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.stdout.split() == ["False", "False"], result.stderr


def test_a_folder_missing_on_the_worker_is_a_clear_failure(address, tmp_path):
    """The notebook runs in its own folder on the worker: where that folder is not shared, the task says so."""
    from nbflow.run.dask import DaskExecutor
    from nbflow.run.jobs import Job

    notebook = write_notebook(tmp_path / "a.ipynb", 'outputs = ["a.txt"]', "1 + 1")
    executor = DaskExecutor(address, run_id="test-missing-folder")
    try:
        job = Job(
            task="a",
            notebook=str(notebook),
            output_notebook=str(tmp_path / "runs" / "a.ipynb"),
            cwd="/nonexistent/project",
            kernel="python3",
            parameters={},
        )
        result = executor.submit(job).result(timeout=120)
    finally:
        executor.close()
    assert result.state == "failed" and result.error.ename == "FolderNotOnWorker"
    assert "/nonexistent/project does not exist on the Dask worker tcp://127.0.0.1:" in result.error.evalue
    assert "shared filesystem" in result.error.evalue
