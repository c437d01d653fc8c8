"""`nbflow export airflow`: the pipeline, or a schedule's targets and their upstream, as one Airflow DAG file.

Each task instance becomes a BashOperator running `nbflow run ROOT -t INSTANCE --no-upstream`, so nbflow still
judges what is up to date, keeps the executed notebooks and records every run in the project's store, while Airflow
orders the instances by the graph's edges, retries them and times them out. The file is text written here: nbflow
never imports Airflow. Parameters become the DAG's `params` (a run's `dag_run.conf` overrides them), passed to
nbflow through the task's environment so that no value is ever read by the shell as code.
"""

from __future__ import annotations

import math
import re
import shlex
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from nbflow.errors import UsageError
from nbflow.graph import Pipeline, Task
from nbflow.grids import format_value, parse_grid_values
from nbflow.masking import Secret
from nbflow.params import placeholders, template_parts
from nbflow.run.prepare import split_params
from nbflow.schedule.api import read_schedule
from nbflow.schedule.model import Schedule, format_every
from nbflow.store import Store
from nbflow.times import now
from nbflow.version import __version__

# Airflow's own rule for DAG and task ids (airflow.utils.helpers.validate_key)
ID_PATTERN = re.compile(r"[A-Za-z0-9_.-]{1,250}")
# nbflow stops a task at its own timeout (and records it as timed out); Airflow's execution_timeout is a backstop
# that leaves nbflow's start-up and clean-up this much more
TIMEOUT_MARGIN_S = 120
JINJA_MARKERS = ("{{", "{%", "{#")


@dataclass
class AirflowTask:
    """One BashOperator of the DAG: an nbflow task instance and how Airflow runs it."""

    task_id: str
    instance: str
    command: str
    retries: int
    timeout_s: float | None


def default_nbflow_command() -> str:
    """This nbflow, by the interpreter running it: the DAG runs the nbflow that wrote it, whatever Airflow's PATH."""
    return shlex.join([sys.executable, "-m", "nbflow"])


def export_airflow(
    pipeline: Pipeline,
    *,
    schedule: str | None = None,
    dag_id: str | None = None,
    nbflow_command: str | None = None,
    moment: datetime | None = None,
) -> str:
    """The text of a DAG file for `pipeline` (every task), or for the schedule named `schedule` (its targets and
    their upstream, its timing, time zone and parameters). `nbflow_command` is shell text naming nbflow (default:
    this interpreter with `-m nbflow`)."""
    project = pipeline.project
    moment = moment or now()
    chosen = _read_schedule(project.store_dir, schedule) if schedule else None
    dag_id = dag_id if dag_id is not None else _default_dag_id(project.root, schedule)
    if not ID_PATTERN.fullmatch(dag_id):
        raise UsageError(
            f"--dag-id {dag_id!r}: an Airflow DAG id is 1 to 250 letters, digits, '_', '-' or '.'; choose another."
        )
    resolved, selected = _selection(pipeline, chosen, moment)
    defaults, templated, left_out = _dag_params(resolved, chosen, moment)
    variables = _variables(list(defaults))
    env = {
        variables[name]: _param_jinja(name, templated.get(name), chosen.tz if chosen else "UTC") for name in defaults
    }
    ids = task_ids(selected)
    nbflow = nbflow_command or default_nbflow_command()
    tasks = [_airflow_task(resolved, resolved.tasks[name], ids[name], nbflow, variables) for name in selected]
    edges = [(ids[a], ids[b]) for a, b in resolved.graph.subgraph(selected).edges]
    order = {task_id: i for i, task_id in enumerate(ids.values())}
    edges.sort(key=lambda edge: (order[edge[0]], order[edge[1]]))
    return _render(resolved, chosen, dag_id, defaults, env, left_out, tasks, edges, moment)


def task_ids(names: list[str]) -> dict[str, str]:
    """Each instance name as a valid, unique Airflow task id: `daily_report[region=north]` ->
    `daily_report_region_north` (a clash gets `_2`, `_3`, ...)."""
    return _unique(names, lambda name: _id_text(name)[:240] or "task")


def _variables(names: list[str]) -> dict[str, str]:
    """Each parameter's environment variable: `NBFLOW_PARAM_seed`, `NBFLOW_PARAM_clean_n` (unique)."""
    return _unique(names, lambda name: "NBFLOW_PARAM_" + re.sub(r"\W", "_", name, flags=re.ASCII))


def _id_text(text: str) -> str:
    """Text as an Airflow id: runs of other characters become `_`."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_.")


def _unique(names: list[str], make: Callable[[str], str]) -> dict[str, str]:
    made: dict[str, str] = {}
    used: set[str] = set()
    for name in names:
        base = make(name)
        candidate, n = base, 2
        while candidate in used:
            candidate, n = f"{base}_{n}", n + 1
        used.add(candidate)
        made[name] = candidate
    return made


def _read_schedule(store_dir: Path, name: str) -> Schedule:
    store = Store(store_dir)
    try:
        return read_schedule(store, name)
    finally:
        store.close()


def _default_dag_id(root: Path, schedule: str | None) -> str:
    words = ["nbflow", root.name, *([schedule] if schedule else [])]
    return "_".join(_id_text(word) or "project" for word in words)[:250]


def _selection(pipeline: Pipeline, schedule: Schedule | None, moment: datetime) -> tuple[Pipeline, list[str]]:
    """The pipeline as the schedule's runs resolve it, and the instances they run (every task without one)."""
    if schedule is None:
        return pipeline, pipeline.select()
    dated = [name for name, text in schedule.grid.items() if "{" in text]
    if dated:
        raise UsageError(
            f"schedule {schedule.name!r}: its grid over {dated[0]} uses {{date}} or {{datetime}}, so each firing runs "
            "other task instances, and an Airflow DAG has a fixed set of tasks; give the schedule a fixed grid, or "
            "export without --schedule and start runs with nbflow's own scheduler."
        )
    values = schedule.params_for(moment)  # the structure only: each firing's values come from the DAG's params
    grid = schedule.grid_for(moment)
    pipeline_params, task_params = split_params(values)
    resolved = pipeline.with_params(pipeline_params, task_params, grid) if values or grid else pipeline
    unknown = [resolved.unknown_target(t) for t in schedule.targets if not resolved.matching(t)]
    if unknown:
        raise UsageError.listing([f"schedule {schedule.name!r}: {why}" for why in unknown])
    return resolved, resolved.select(schedule.targets or None)


def _one_value(value: Any) -> bool:
    """A value `nbflow run -p` reads back as itself from its text (and the DAG file can write as a literal)."""
    if isinstance(value, float):
        return math.isfinite(value)
    return value is None or (isinstance(value, (str, int, bool)) and not isinstance(value, Secret))


def _dag_params(
    pipeline: Pipeline, schedule: Schedule | None, moment: datetime
) -> tuple[dict[str, Any], dict[str, str], list[str]]:
    """The DAG's params (name -> default), the schedule's values that use {date}/{datetime} (default None: the
    logical date fills them), and the [params] left out because `-p` cannot give them (lists, tables, dates)."""
    project = pipeline.project
    defaults: dict[str, Any] = {}
    left_out: list[str] = []
    for name, value in project.params.items():
        if name in project.secrets:
            continue  # read from the environment by nbflow itself; never a value in a DAG file
        if name in pipeline.run_grid:
            continue  # each instance has its value of the schedule's grid (`-g`), which `-p` may not repeat
        if _one_value(value):
            defaults[name] = value
        else:
            left_out.append(name)
    templated: dict[str, str] = {}
    if schedule is None:
        return defaults, templated, left_out
    filled = schedule.params_for(moment)  # `{{` in a value is a brace, as nbflow's scheduler reads it
    for name, value in schedule.params.items():
        if isinstance(value, str) and placeholders(value):
            templated[name] = value
            defaults[name] = None
        elif _one_value(value):
            defaults[name] = filled[name]
        else:
            raise UsageError(
                f"schedule {schedule.name!r}: parameter {name} is {type(value).__name__} {value!r}; `nbflow run -p` "
                "gives one text, number or True/False/None value, so the DAG cannot pass it; set it in the "
                "notebook's parameters cell or in [params] instead."
            )
    return defaults, templated, left_out


def _airflow_task(
    pipeline: Pipeline,
    task: Task,
    task_id: str,
    nbflow: str,
    variables: dict[str, str],
) -> AirflowTask:
    project = pipeline.project
    words = [nbflow, "run", shlex.quote(str(project.root)), "-t", shlex.quote(task.name)]
    for name, variable in variables.items():
        owner = name.rpartition(".")[0]  # `TASK.NAME` is for that task's instances only
        if not (owner == task.base if owner else name in project.params or name in task.spec.params):
            continue  # `-p` of a name the instance's task does not assign is refused by nbflow run
        words += ["-p", shlex.quote(name), f'"${variable}"']
    for name, value in task.grid.items():
        if name in pipeline.run_grid:  # the instance exists only in a run with that grid value
            text = format_value(value)
            if parse_grid_values(name, text) != [value]:
                raise UsageError(
                    f"{task.name}: its grid value {text!r} of {name} does not read back as one value with -g; "
                    "use a value without commas or '..'."
                )
            words += ["-g", shlex.quote(name), shlex.quote(text)]
    words += ["--no-upstream", "--retries", "0"]  # the retrying is Airflow's
    command = " ".join(words)
    if any(marker in command for marker in JINJA_MARKERS):  # Airflow renders bash_command with Jinja
        command = "{% raw %}" + command + "{% endraw %}"
    retries = next((v for v in (task.spec.retries, project.retries) if v is not None), 0)
    timeout = next((v for v in (task.spec.timeout, project.timeout) if v is not None), None)
    return AirflowTask(task_id, task.name, command, retries, timeout)


def _param_jinja(name: str, template: str | None, tz: str) -> str:
    """The Jinja that gives a parameter's value at run time: the DAG's param (a run's conf overrides it); for a
    schedule value using {date}/{datetime}, the logical date in the schedule's zone unless the conf gives one."""
    param = f"params[{ascii(name)}]"
    if template is None:
        return "{{ " + param + " }}"
    return "{{ " + f"{param} if {param} is not none else {_logical_date_jinja(template, tz)}" + " }}"


def _logical_date_jinja(template: str, tz: str) -> str:
    """`report_{date:%Y%m}` -> a Jinja expression filling it from the run's logical date, as nbflow's scheduler
    fills it from the fire time: `{date}` as YYYY-MM-DD and `{datetime}` as ISO 8601 to the second, in the zone."""
    # Airflow 3 may trigger a run without a logical date: then the time it was triggered for stands in
    moment = f"(logical_date or dag_run.run_after).in_timezone({ascii(tz)})"
    parts = []
    for literal, name, spec in template_parts(template):
        if literal:
            parts.append(ascii(literal))
        if name == "date":
            parts.append(f"{moment}.strftime({ascii(spec or '%Y-%m-%d')})")
        elif name == "datetime":
            parts.append(f"{moment}.strftime({ascii(spec)})" if spec else f"{moment}.isoformat(timespec='seconds')")
        elif name is not None:
            raise UsageError(f"schedule value {template!r}: {{{name}}} is not {{date}} or {{datetime}}.")
    return "(" + " ~ ".join(parts or ["''"]) + ")"


def _git_commit(root: Path) -> str | None:
    """The project's commit, `abc1234` (`abc1234+` with uncommitted changes), when it is in a git repository."""
    try:
        head = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10
        )
        if head.returncode != 0:
            return None
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no", "--", "."],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return head.stdout.strip() + ("+" if dirty.stdout.strip() else "")


def _timing(schedule: Schedule | None) -> tuple[str, str, list[str]]:
    """The DAG's `schedule=` and `start_date=` source, and the imports they need."""
    if schedule is None:
        return "None", "pendulum.datetime(2020, 1, 1, tz='UTC')", []
    start = schedule.created_at.astimezone(schedule.zone)
    start_date = (
        f"pendulum.datetime({start.year}, {start.month}, {start.day}, {start.hour}, {start.minute}, tz={schedule.tz!r})"
    )
    if schedule.cron:
        # a run at each cron time whose logical date is that time, as nbflow's scheduler fires
        return (
            f"CronTriggerTimetable({schedule.cron!r}, timezone={schedule.tz!r})",
            start_date,
            ["from airflow.timetables.trigger import CronTriggerTimetable"],
        )
    return f"timedelta(seconds={schedule.every_s!r})", start_date, []


def _render(
    pipeline: Pipeline,
    schedule: Schedule | None,
    dag_id: str,
    defaults: dict[str, Any],
    env: dict[str, str],
    left_out: list[str],
    tasks: list[AirflowTask],
    edges: list[tuple[str, str]],
    moment: datetime,
) -> str:
    root = pipeline.project.root
    commit = _git_commit(root)
    if schedule is None:
        what, description = "every task, started by hand or by `airflow dags trigger`", f"nbflow pipeline {root}"
    else:
        timing = f"cron {schedule.cron!r}" if schedule.cron else f"every {format_every(schedule.every_s or 0)}"
        what = f"the schedule {schedule.name!r}: {timing} in {schedule.tz}"
        if schedule.targets:
            what += f", targets {', '.join(schedule.targets)} and their upstream"
        description = f"nbflow schedule {schedule.name} of {root}"
    schedule_source, start_source, imports = _timing(schedule)
    lines = [
        f"# Airflow DAG for the nbflow project {str(root)!r}: {what}.",
        f"# Generated by nbflow {__version__} at {moment.isoformat(timespec='seconds')}"
        + (f" from git commit {commit}" if commit else "")
        + "; export again after changing the pipeline rather than editing this file.",
        "#",
        "# Each Airflow task runs one nbflow task instance with `nbflow run ROOT -t INSTANCE --no-upstream`: nbflow",
        "# skips it when up to date, keeps its executed notebook and records the run in the project's store",
        "# (`nbflow runs`). Airflow orders the tasks by the pipeline's edges and does the retrying (`--retries 0`);",
        f"# nbflow enforces each task's timeout, and execution_timeout adds {TIMEOUT_MARGIN_S} s to it as a backstop.",
        "# `params` are the run's parameters; a run's conf overrides them (`airflow dags trigger --conf '{...}'`).",
    ]
    if schedule is not None and any(v is None for v in defaults.values()):
        lines.append(
            "# A param of None takes the logical date in the schedule's time zone where the schedule uses {date}."
        )
    if left_out:
        lines.append(
            f"# Not in params (nbflow run -p gives one value each, so nbflow uses [params]): {', '.join(left_out)}."
        )
    lines += [
        "",
        "from datetime import timedelta",
        "",
        "import pendulum",
        "from airflow import DAG",
        *imports,
        "",
        "try:  # Airflow 3: the standard provider",
        "    from airflow.providers.standard.operators.bash import BashOperator",
        "except ImportError:  # Airflow 2",
        "    from airflow.operators.bash import BashOperator",
        "",
        '# The run\'s parameters for `nbflow run -p NAME "$VARIABLE"`: through the environment, so that the shell',
        "# never reads a value as code.",
        "PARAM_ENV = {",
        *[f"    {variable!r}: {jinja!r}," for variable, jinja in env.items()],
        "}",
        "",
        "",
        "def nbflow_task(task_id, bash_command, **options):",
        '    """One nbflow task instance; every failure of `nbflow run` fails it (no exit code means skipped)."""',
        "    return BashOperator(",
        "        task_id=task_id,",
        "        bash_command=bash_command,",
        "        env=PARAM_ENV,",
        "        append_env=True,",
        "        skip_on_exit_code=None,",
        "        **options,",
        "    )",
        "",
        "",
        "with DAG(",
        f"    dag_id={dag_id!r},",
        f"    description={description!r},",
        f"    schedule={schedule_source},",
        f"    start_date={start_source},",
        "    catchup=False,",
        "    max_active_runs=1,  # nbflow never overlaps a schedule's runs either",
        f"    params={defaults!r},",
        "    tags=['nbflow'],",
        ") as dag:",
        "    tasks = {}",
    ]
    for task in tasks:
        lines += [f"    tasks[{task.task_id!r}] = nbflow_task(", f"        {task.task_id!r},"]
        lines.append(f"        {task.command!r},")
        if task.task_id != task.instance:
            lines.append(f"        doc={'nbflow task ' + task.instance!r},")
        if task.retries:
            lines.append(f"        retries={task.retries},")
        if task.timeout_s is not None:
            lines.append(f"        execution_timeout=timedelta(seconds={task.timeout_s + TIMEOUT_MARGIN_S:g}),")
        lines.append("    )")
    lines += [f"    tasks[{a!r}] >> tasks[{b!r}]" for a, b in edges]
    return "\n".join(lines) + "\n"
