"""Secrets (`[secrets]` in nbflow.toml): the kernel has the value; nothing nbflow writes or answers holds it.

Each test's secret is a fresh random value in a variable of its own name, set only in the environment of the
`nbflow` command it runs, so the value can be looked for, byte for byte, in every file under the project (the
executed notebooks, the kernels' logs, the store with its WAL) and in every JSON answer.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from pathlib import Path

import pytest
from conftest import run_cli, write_notebook

from nbflow.models import RunState, TaskError, TaskRun, TaskState
from nbflow.notify import run_notice
from nbflow.project import load_project
from nbflow.store import open_store

WRITE_HASH = 'import hashlib\nopen(outputs["digest"], "w").write(hashlib.sha256(api_key.encode()).hexdigest())'


@pytest.fixture
def secret() -> tuple[str, str]:
    """(the environment variable, its value): names no other test or process uses."""
    return f"NBFLOW_TEST_SECRET_{uuid.uuid4().hex[:8].upper()}", f"sk-{uuid.uuid4().hex}"


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def files_holding(root: Path, value: str) -> list[str]:
    """Every file under the root (hidden folders, the store and its WAL included) whose bytes hold the value."""
    needle = value.encode()
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and needle in p.read_bytes())


def answers(root: Path, run_id: str) -> dict[str, str]:
    """What the commands show about the project: each JSON answer, and the text ones, as text."""
    commands = {
        "show --json": ("show", run_id, str(root), "--json"),
        "show": ("show", run_id, str(root)),
        "runs --json": ("runs", str(root), "--json"),
        "graph --format json": ("graph", str(root), "--format", "json"),
        "status --json": ("status", str(root), "--json"),
    }
    shown = {}
    for label, args in commands.items():
        result = run_cli(*args)
        assert result.returncode == 0, (label, result.stderr)
        shown[label] = result.stdout
    return shown


def secret_project(root: Path, variable: str) -> Path:
    """fetch reads the secret and writes its hash; summary reads what fetch wrote and knows no secret."""
    (root / "nbflow.toml").write_text(f'[secrets]\napi_key = "env:{variable}"\n')
    write_notebook(
        root / "fetch.ipynb",
        'api_key = ""  # the secret, set by nbflow\nregion = "all"\noutputs = {"digest": "out/digest.txt"}',
        WRITE_HASH,
    )
    write_notebook(
        root / "summary.ipynb",
        'inputs = {"digest": "out/digest.txt"}\noutputs = {"summary": "out/summary.txt"}',
        'open(outputs["summary"], "w").write("digest " + open(inputs["digest"]).read()[:8])',
    )
    return root


def latest_run(root: Path) -> dict:
    result = run_cli("runs", str(root), "--json")
    return json.loads(result.stdout)[0]


def test_the_kernel_has_the_secret_and_nothing_nbflow_writes_or_shows_holds_it(project, secret):
    variable, value = secret
    secret_project(project, variable)
    result = run_cli("run", str(project), env={variable: value})
    assert result.returncode == 0, result.stderr
    assert (project / "out" / "digest.txt").read_text() == sha256(value)  # the kernel read the real value
    assert files_holding(project, value) == []
    run_id = latest_run(project)["id"]
    shown = answers(project, run_id)
    assert [label for label, text in shown.items() if value in text] == []
    assert json.loads(shown["show --json"])["params"]["api_key"] == "***"
    graph = {t["name"]: t for t in json.loads(shown["graph --format json"])["tasks"]}
    assert graph["fetch"]["params"] == {"api_key": "***", "region": "all"}
    assert "api_key" not in graph["summary"]["params"]
    statuses = {t["name"]: t["status"] for t in json.loads(shown["status --json"])["tasks"]}
    assert statuses == {"fetch": "up_to_date", "summary": "up_to_date"}

    executed = json.loads((project / ".nbflow" / "runs" / run_id / "fetch.ipynb").read_text())
    injected = next(c for c in executed["cells"] if "injected-parameters" in c["metadata"]["tags"])
    assert f'api_key = os.environ["{variable}"]' in "".join(injected["source"])  # runs by hand where it is set
    assert executed["metadata"]["papermill"]["parameters"]["api_key"] == "***"


def test_a_new_value_of_a_secret_makes_nothing_stale_and_force_runs_with_it(project, secret):
    variable, value = secret
    secret_project(project, variable)
    assert run_cli("run", str(project), env={variable: value}).returncode == 0
    rotated = f"sk-{uuid.uuid4().hex}"
    again = run_cli("run", str(project), env={variable: rotated})
    assert again.returncode == 0, again.stderr
    assert latest_run(project)["counts"] == {"skipped": 2}
    forced = run_cli("run", str(project), "--force", "-t", "fetch", env={variable: rotated})
    assert forced.returncode == 0, forced.stderr
    assert (project / "out" / "digest.txt").read_text() == sha256(rotated)
    assert files_holding(project, value) == files_holding(project, rotated) == []


def test_what_a_notebook_prints_echoes_or_raises_with_its_secret_is_masked(project, secret):
    variable, value = secret
    (project / "nbflow.toml").write_text(f'[secrets]\napi_key = "env:{variable}"\n')
    write_notebook(
        project / "leaky.ipynb",
        'api_key = ""\noutputs = ["out/never.txt"]',
        'print("the key is", api_key)\nfrom IPython.display import HTML, display\ndisplay(HTML(f"<b>{api_key}</b>"))',
        # straight to the kernel's own stderr, past the notebook: it lands in the kernel's log
        f'import subprocess\nsubprocess.run(["sh", "-c", "echo from the shell ${variable} >&2"])',
        'raise PermissionError(f"401 Unauthorized for url: https://shop.example/orders?key={api_key}")',
    )
    result = run_cli("run", str(project), env={variable: value})
    assert result.returncode == 1
    assert value not in result.stdout + result.stderr
    assert files_holding(project, value) == []
    run_id = latest_run(project)["id"]
    shown = answers(project, run_id)
    assert [label for label, text in shown.items() if value in text] == []
    error = json.loads(shown["show --json"])["tasks"][0]["error"]
    assert error["ename"] == "PermissionError"
    assert error["evalue"] == "401 Unauthorized for url: https://shop.example/orders?key=***"
    run_folder = project / ".nbflow" / "runs" / run_id
    assert "from the shell ***" in (run_folder / "leaky.kernel.log").read_text()
    executed = (run_folder / "leaky.ipynb").read_text()
    assert "the key is ***" in executed and "<b>***</b>" in executed


def test_a_secret_printed_in_pieces_is_masked_where_the_pieces_meet(project, secret):
    variable, value = secret
    (project / "nbflow.toml").write_text(f'[secrets]\napi_key = "env:{variable}"\n')
    write_notebook(
        project / "pieces.ipynb",
        'api_key = ""\noutputs = ["out/done.txt"]',
        # each flush sends what was written so far: the key leaves the kernel as two messages
        "import sys, time\nsys.stdout.write('key: ' + api_key[:6]); sys.stdout.flush(); time.sleep(0.3)\n"
        "sys.stdout.write(api_key[6:] + '\\n'); sys.stdout.flush(); time.sleep(0.3)",
        "import os\nos.makedirs('out', exist_ok=True); open('out/done.txt', 'w').write('ok')",
    )
    result = run_cli("run", str(project), env={variable: value})
    assert result.returncode == 0, result.stderr
    assert files_holding(project, value) == []  # the store's output tail included
    executed = json.loads((project / ".nbflow" / "runs" / latest_run(project)["id"] / "pieces.ipynb").read_text())
    printed = "".join("".join(o["text"]) for o in executed["cells"][2]["outputs"] if o["output_type"] == "stream")
    assert printed == "key: ***\n"  # as a reader sees the cell's output: its pieces one after the other


def test_a_missing_variable_is_exit_2_before_anything_runs(project, secret):
    variable, _ = secret
    secret_project(project, variable)
    assert variable not in os.environ
    result = run_cli("run", str(project))
    assert result.returncode == 2
    assert (
        f"nbflow.toml: [secrets] reads `api_key` from the environment variable {variable}, which is not set "
        "(fetch assigns `api_key`)" in result.stderr
    )
    assert not (project / "out").exists() and not (project / ".nbflow" / "runs").exists()
    assert json.loads(run_cli("runs", str(project), "--json").stdout) == []


def test_a_run_of_tasks_that_read_no_secret_needs_no_variable(project, secret):
    variable, _ = secret
    secret_project(project, variable)
    write_notebook(project / "alone.ipynb", 'outputs = ["out/alone.txt"]', 'open("out/alone.txt", "w").write("x")')
    alone = run_cli("run", str(project), "-t", "alone")
    assert alone.returncode == 0, alone.stderr
    assert run_cli("run", str(project), "-t", "summary").returncode == 2  # its upstream, fetch, reads the secret


@pytest.mark.parametrize(
    "option", [("-p", "api_key", "typed-in"), ("-p", "fetch.api_key", "typed-in"), ("-g", "api_key", "a,b")]
)
def test_a_value_given_for_a_secret_is_refused(project, secret, option):
    variable, value = secret
    secret_project(project, variable)
    result = run_cli("run", str(project), *option, env={variable: value})
    assert result.returncode == 2
    flag, name, _ = option
    assert (
        f"{flag} {name}: `api_key` is a secret, read from the environment variable {variable} (nbflow.toml "
        f"[secrets]), so it takes no value here; set {variable} in the environment nbflow runs in instead."
    ) in result.stderr
    assert not (project / ".nbflow" / "runs").exists()


def test_mistakes_in_the_secrets_table_are_reported_at_once(project):
    (project / "nbflow.toml").write_text(
        '[params]\nregion = "all"\n[secrets]\nregion = "env:REGION"\ntoken = "SHOP_TOKEN"\nforgotten = "env:OLD_KEY"\n'
    )
    write_notebook(project / "fetch.ipynb", 'region = "all"\ntoken = ""\noutputs = ["out/x.txt"]')
    result = run_cli("graph", str(project))
    assert result.returncode == 2
    assert "`region` is set in both [params] and [secrets]" in result.stderr
    assert "[secrets] `token` = 'SHOP_TOKEN': a secret names the environment variable" in result.stderr
    (project / "nbflow.toml").write_text('[secrets]\ntoken = "env:SHOP_TOKEN"\nforgotten = "env:OLD_KEY"\n')
    result = run_cli("graph", str(project))
    assert result.returncode == 2
    assert "`forgotten`, but no task notebook assigns it" in result.stderr


@pytest.mark.parametrize("command", ["graph", "run"])
def test_a_path_that_would_hold_a_secret_is_refused(project, secret, command):
    variable, value = secret
    (project / "nbflow.toml").write_text(f'[secrets]\napi_key = "env:{variable}"\n')
    write_notebook(
        project / "fetch.ipynb", 'api_key = ""\ninputs = ["in/{api_key}.csv"]\noutputs = ["out/{api_key}.txt"]'
    )
    result = run_cli(command, str(project), env={variable: value})
    assert result.returncode == 2
    for path in ("in/{api_key}.csv", "out/{api_key}.txt"):
        assert f"fetch.ipynb: parameters cell: '{path}' uses {{api_key}}, a secret ([secrets] in nbflow.toml)" in (
            result.stderr
        )


def test_every_instance_of_a_grid_task_reads_the_secret_from_pyproject_settings(tmp_path, secret):
    variable, value = secret
    (tmp_path / "pyproject.toml").write_text(f'[tool.nbflow.secrets]\napi_key = "env:{variable}"\n')
    write_notebook(
        tmp_path / "per_region.ipynb",
        'api_key = ""\nregion = "north"\ngrid = {"region": ["north", "south"]}\n'
        'outputs = {"digest": "out/{region}.txt"}',
        "import hashlib\n"
        'open(outputs["digest"], "w").write(region + " " + hashlib.sha256(api_key.encode()).hexdigest())',
    )
    result = run_cli("run", str(tmp_path), env={variable: value})
    assert result.returncode == 0, result.stderr
    for region in ("north", "south"):
        assert (tmp_path / "out" / f"{region}.txt").read_text() == f"{region} {sha256(value)}"
    assert files_holding(tmp_path, value) == []
    shown = answers(tmp_path, latest_run(tmp_path)["id"])
    assert [label for label, text in shown.items() if value in text] == []
    graph = json.loads(shown["graph --format json"])["tasks"]
    assert [t["params"]["api_key"] for t in graph] == ["***", "***"]


def test_an_alert_never_quotes_a_secret(project, secret, monkeypatch):
    """Even from an error that holds the value (nbflow masks errors as they are recorded; an alert masks again)."""
    variable, value = secret
    secret_project(project, variable)
    monkeypatch.setenv(variable, value)
    store = open_store(project / ".nbflow")
    try:
        store.create_run("r1", "schedule:nightly", {"api_key": "***"}, [], [TaskRun("fetch")])
        error = TaskError.in_cell("HTTPError", f"401 for https://shop.example/?key={value}", 2, [f"key={value}"])
        store.update_task("r1", "fetch", state=TaskState.FAILED, error=error)
        store.finish_run("r1", RunState.FAILED)
        body = run_notice(store, load_project(project), "r1", "failure", "nightly").payload
    finally:
        store.close()
    sent = json.dumps(body)
    assert value not in sent
    assert body["failed_tasks"][0]["error"]["evalue"] == "401 for https://shop.example/?key=***"
    assert body["text"].endswith("fetch: HTTPError: 401 for https://shop.example/?key=***")


def test_a_secret_reaches_a_kernel_on_a_dask_worker_whose_environment_lacks_it(project, secret):
    distributed = pytest.importorskip("distributed")
    variable, value = secret
    secret_project(project, variable)
    assert variable not in os.environ  # the worker, started from here, does not have it either
    with distributed.LocalCluster(
        n_workers=1,
        threads_per_worker=2,
        processes=True,
        host="127.0.0.1",
        dashboard_address="127.0.0.1:0",
        worker_dashboard_address=None,
    ) as cluster:
        result = run_cli(
            "run",
            str(project),
            "--executor",
            "dask",
            "--dask-address",
            cluster.scheduler_address,
            env={variable: value},
        )
    assert result.returncode == 0, result.stderr
    assert (project / "out" / "digest.txt").read_text() == sha256(value)
    assert files_holding(project, value) == []
