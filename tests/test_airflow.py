"""`nbflow export airflow` with a real Apache Airflow: the DAG file loads in a `DagBag`, and `airflow dags test`
runs the pipeline through nbflow, whose store then holds every instance's run.

Airflow lives in a virtualenv of its own (its dependencies pin versions nbflow's environment does not share),
made once and kept under ~/.cache/nbflow-tests/airflow-venv (or $NBFLOW_AIRFLOW_VENV); $NBFLOW_AIRFLOW_SPEC picks
another version to install. Without a registry the Airflow tests are skipped, saying why; under CI (CI set) they
fail instead. The BashOperators run the nbflow of this test's interpreter (`sys.executable -m nbflow`, baked into the
file), never anything inside Airflow's environment.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest
from conftest import run_cli, write_notebook
from test_run import WRITE, task

from nbflow.schedule.api import add_schedule
from nbflow.store import open_store

EXAMPLE = Path(__file__).resolve().parents[1] / "notebooks"
AIRFLOW_SPEC = os.environ.get("NBFLOW_AIRFLOW_SPEC", "apache-airflow==2.10.5")
READY = ".nbflow-ready"  # written last, holding the spec installed: a half-made virtualenv is never used


def _venv_dir() -> Path:
    given = os.environ.get("NBFLOW_AIRFLOW_VENV")
    return Path(given) if given else Path.home() / ".cache" / "nbflow-tests" / "airflow-venv"


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"Airflow is needed under CI: {reason}")
    pytest.skip(reason)


def _install(venv: Path) -> None:
    """A fresh virtualenv with Airflow, built beside its place and renamed into it."""
    building = venv.with_name(f"{venv.name}.building-{os.getpid()}")
    shutil.rmtree(building, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", str(building)], check=True, capture_output=True, timeout=300)
    python = building / "bin" / "python"
    command = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", AIRFLOW_SPEC]
    result = None
    for _ in range(2 if os.environ.get("CI") else 1):  # CI tries twice: a registry hiccup is no verdict
        try:
            result = subprocess.run(command, capture_output=True, text=True, timeout=1500)
        except subprocess.TimeoutExpired:
            continue
        if result.returncode == 0:
            break
    if result is None or result.returncode != 0:
        shutil.rmtree(building, ignore_errors=True)
        tail = (result.stderr or result.stdout)[-1500:] if result else "timed out after 25 minutes"
        _unavailable(f"`pip install {AIRFLOW_SPEC}` failed: {tail}")
    (building / READY).write_text(AIRFLOW_SPEC)
    shutil.rmtree(venv, ignore_errors=True)
    os.replace(building, venv)


@pytest.fixture(scope="session")
def airflow_python() -> Path:
    """The Python of a virtualenv holding Airflow (made on first use, then reused: all its scripts are run as
    `python -m ...`, so it works wherever it was built)."""
    venv = _venv_dir()
    venv.parent.mkdir(parents=True, exist_ok=True)
    with open(venv.with_name(venv.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two test sessions never build it at once
        ready = venv / READY
        if not ready.exists() or ready.read_text() != AIRFLOW_SPEC:
            _install(venv)
    return venv / "bin" / "python"


@pytest.fixture
def airflow(airflow_python, tmp_path):
    """Run an Airflow command with its home (SQLite, migrated) and DAG folder in tmp."""
    home = tmp_path / "airflow"
    dags = home / "dags"
    dags.mkdir(parents=True)
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
    }

    def airflow(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(airflow_python), *args], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=timeout
        )

    migrated = airflow("-m", "airflow", "db", "migrate")
    assert migrated.returncode == 0, migrated.stderr[-3000:]
    airflow.dags = dags  # type: ignore[attr-defined]
    return airflow


DAGBAG = """
import json, sys
from airflow.models import DagBag
bag = DagBag(dag_folder=sys.argv[1])  # AIRFLOW__CORE__LOAD_EXAMPLES=False
dag = bag.get_dag(sys.argv[2]) if not bag.import_errors else None
print(json.dumps({
    "errors": {path: str(error) for path, error in bag.import_errors.items()},
    "tasks": dag and {
        t.task_id: {
            "downstream": sorted(t.downstream_task_ids),
            "retries": t.retries,
            "timeout": t.execution_timeout and t.execution_timeout.total_seconds(),
        }
        for t in dag.tasks
    },
    "timetable": dag and type(dag.timetable).__name__,
    "cron": getattr(dag and dag.timetable, "_expression", None),
    "timezone": getattr(getattr(dag and dag.timetable, "_timezone", None), "name", None),
    "catchup": dag and dag.catchup,
    "params": dag and dag.params.dump(),
}))
"""


def load_dag(airflow, dag_id: str) -> dict:
    result = airflow("-c", DAGBAG, str(airflow.dags), dag_id)
    assert result.returncode == 0, result.stderr[-3000:]
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    assert loaded["errors"] == {}
    return loaded


def export(root: Path, dags: Path, *args: str) -> Path:
    target = dags / "exported.py"
    result = run_cli("export", "airflow", str(root), "-o", str(target), *args)
    assert result.returncode == 0, result.stderr
    return target


def instance_states(root: Path, skip: set[str] = frozenset()) -> list[tuple[str, str]]:
    """(instance, state) of every task run in the store, oldest run first; runs listed in `skip` left out."""
    store = open_store(root / ".nbflow")
    try:
        runs = [r for r in reversed(store.runs()) if r.id not in skip]
        return [(t.name, t.state) for r in runs for t in store.task_runs(r.id)]
    finally:
        store.close()


@pytest.mark.timeout(1800)  # the first use builds Airflow's virtualenv
def test_the_example_runs_under_airflow_and_then_is_up_to_date(airflow, tmp_path):
    root = tmp_path / "example"
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns(".nbflow", "data", "reports"))
    export(root, airflow.dags)
    dag = load_dag(airflow, "nbflow_example")
    north = "daily_report_region_north"
    assert len(dag["tasks"]) == 13 and dag["tasks"]["clean"]["downstream"] == sorted(
        ["quality_check", "warehouse", *(f"daily_report_region_{r}" for r in ("north", "south", "east", "west", "all"))]
    )
    assert dag["tasks"][north] == {"downstream": ["summary"], "retries": 0, "timeout": 720.0}  # timeout = 600
    assert dag["params"]["report_date"] == "2026-11-24" and dag["timetable"] == "NullTimetable"

    first = airflow("-m", "airflow", "dags", "test", "nbflow_example", "2026-11-24")
    assert first.returncode == 0, first.stdout[-4000:] + first.stderr[-4000:]
    assert "state=success" in first.stdout + first.stderr
    ran = instance_states(root)
    assert len(ran) == 13 and {state for _, state in ran} == {"succeeded"}
    assert {name for name, _ in ran} >= {"clean", "summary", "daily_report[region=north]"}
    assert (root / "reports").is_dir()

    again = airflow("-m", "airflow", "dags", "test", "nbflow_example", "2026-11-24")
    assert again.returncode == 0, again.stdout[-4000:] + again.stderr[-4000:]
    second = instance_states(root)[len(ran) :]
    assert len(second) == 13 and {state for _, state in second} == {"skipped"}


@pytest.mark.timeout(1800)
def test_a_schedule_exports_its_timing_and_parameters_and_a_run_conf_overrides_them(airflow, tmp_path):
    project = tmp_path / "the project"  # beside Airflow's home, not holding it; a space in its path
    project.mkdir()
    (project / "nbflow.toml").write_text("[params]\nn = 1\n")  # the schedule's grid gives n its values instead
    write_notebook(
        project / "raw.ipynb",
        'day = "2026-01-01"\nnote = "n"\noutputs = ["raw_{day}.txt"]',
        "open(outputs[0], 'w').write(day + '|' + note)",
    )
    write_notebook(
        project / "part.ipynb",
        'day = "2026-01-01"\nn = 1\ngrid = {"n": [1, 2]}\ninputs = ["raw_{day}.txt"]\noutputs = ["part_{day}_{n}.txt"]',
        WRITE.replace("TEXT", "open(inputs[0]).read() + '#' + str(n)"),
        metadata={"nbflow": {"retries": 2, "timeout": 30}},
    )
    task(project / "other.ipynb", 'outputs = ["other.txt"]')
    pwned = tmp_path / "pwned"  # what a value read by the shell as code would create
    hostile = f"$(touch {pwned}) `touch {pwned}` 'q\" {{{{ x }}}}"
    add_schedule(
        project,
        "nightly",
        cron="0 17 * * *",
        tz="Europe/Paris",
        targets=["part"],
        params={"day": "{date}", "raw.note": hostile},
        grid={"n": "1,2"},
        now=datetime(2026, 11, 1, tzinfo=timezone.utc),  # the DAG's start_date: no run has a logical date before
    )
    export(project, airflow.dags, "--schedule", "nightly", "--dag-id", "nightly_parts")
    dag = load_dag(airflow, "nightly_parts")
    assert dag["tasks"] == {  # `other` is no target of the schedule, nor upstream of one
        "raw": {"downstream": ["part_n_1", "part_n_2"], "retries": 0, "timeout": None},
        "part_n_1": {"downstream": [], "retries": 2, "timeout": 150.0},
        "part_n_2": {"downstream": [], "retries": 2, "timeout": 150.0},
    }
    assert (dag["timetable"], dag["cron"], dag["timezone"]) == ("CronTriggerTimetable", "0 17 * * *", "Europe/Paris")
    hostile = hostile.replace("{{", "{").replace("}}", "}")  # as nbflow's scheduler reads a value
    assert dag["catchup"] is False and dag["params"] == {"day": None, "raw.note": hostile}

    # the logical date fills {date} (in the schedule's zone: 2026-11-24T00:00Z is 01:00 in Paris)
    result = airflow("-m", "airflow", "dags", "test", "nightly_parts", "2026-11-24")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert (project / "raw_2026-11-24.txt").read_text() == "2026-11-24|" + hostile
    assert (project / "part_2026-11-24_2.txt").read_text() == "2026-11-24|" + hostile + "#2"
    assert not pwned.exists()
    assert not (project / "other.txt").exists()

    # a run's conf overrides the params
    conf = json.dumps({"day": "2026-02-03", "raw.note": f"; touch {pwned}"})
    result = airflow("-m", "airflow", "dags", "test", "nightly_parts", "2026-11-25", "--conf", conf)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert (project / "part_2026-02-03_1.txt").read_text() == f"2026-02-03|; touch {pwned}#1"
    assert not (project / "raw_2026-11-25.txt").exists() and not pwned.exists()
    assert {state for _, state in instance_states(project)} == {"succeeded"}


# -- without Airflow: what the exporter refuses -----------------------------------------------------------------


def test_export_refuses_what_a_dag_cannot_hold(project):
    task(project / "a.ipynb", 'day = "2026-01-01"\noutputs = ["a_{day}.txt"]')
    result = run_cli("export", "airflow", str(project), "--schedule", "nigthly")
    assert result.returncode == 2 and "no schedule 'nigthly' in this project" in result.stderr
    add_schedule(project, "nightly", cron="0 1 * * *", tz="UTC", grid={"day": "2026-01-01..{date}"})
    result = run_cli("export", "airflow", str(project), "--schedule", "nightly")
    assert result.returncode == 2
    assert "schedule 'nightly': its grid over day uses {date} or {datetime}" in result.stderr
    result = run_cli("export", "airflow", str(project), "--dag-id", "my dag")
    assert result.returncode == 2 and "--dag-id 'my dag': an Airflow DAG id is" in result.stderr
    result = run_cli("export", "airflow", str(project), "-o", str(project / "no" / "dag.py"))
    assert result.returncode == 2 and f"the folder {project / 'no'} does not exist" in result.stderr
    help_text = run_cli("export", "airflow", "--help").stdout
    assert "--no-upstream" in help_text and "--schedule NAME" in help_text


def test_the_file_says_where_it_came_from_and_leaves_out_what_it_cannot_pass(project):
    (project / "nbflow.toml").write_text('[params]\nsizes = [1, 2]\nratio = nan\nlabel = "x"\n')
    task(project / "a.ipynb", 'sizes = []\nratio = 0.0\nlabel = ""\noutputs = ["a.txt"]')
    git = ["git", "-C", str(project), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "start"], check=True)
    commit = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    result = run_cli("export", "airflow", str(project))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"# Airflow DAG for the nbflow project {str(project)!r}: every task")
    assert f"from git commit {commit};" in result.stdout
    assert "# Not in params (nbflow run -p gives one value each, so nbflow uses [params]): sizes, ratio." in (
        result.stdout
    )
    assert "    params={'label': 'x'}," in result.stdout
    compile(result.stdout, "exported.py", "exec")  # the file is Python, whatever the values
    (project / "a.ipynb").write_text((project / "a.ipynb").read_text().replace("'x'", "'y'"))
    assert f"from git commit {commit}+;" in run_cli("export", "airflow", str(project)).stdout
