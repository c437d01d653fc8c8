"""The run loop branch by branch, with the real pipeline, store and `run_pipeline` and a scripted executor: order,
parallelism, skipping, retries, fail-fast, failures, timeouts, cancel and Ctrl-C, outputs not written, prewarm
hints, and what the store recorded of each."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import nbflow
from nbflow.models import RunState, TaskError, TaskState
from nbflow.run.loop import Runner

from .fakes import Caller, Event, Fail, FakeExecutor, Hang, Interrupt, Succeed
from .helpers import recorded, states, task

SUCCEEDED, FAILED, SKIPPED = TaskState.SUCCEEDED, TaskState.FAILED, TaskState.SKIPPED
CANCELLED, UPSTREAM_FAILED = TaskState.CANCELLED, TaskState.UPSTREAM_FAILED
# what the timeout tests wait per attempt: short for a fast suite; no outcome depends on its length
TIMEOUT_S = 0.05


def executed(project: Path, run_id: str) -> dict[str, int]:
    """The executed notebooks kept for a run, by file name, with the attempt each one holds."""
    folder = project / ".nbflow" / "runs" / run_id
    return {
        path.name: json.loads(path.read_text())["metadata"]["fake_executor"]["attempt"]
        for path in folder.glob("*.ipynb")
    }


@pytest.fixture
def chain(project: Path) -> Path:
    """raw.csv -> a -> a.txt -> b, already run once."""
    (project / "raw.csv").write_text("1,2,3\n")
    task(project, "a.ipynb", inputs=["raw.csv"], outputs=["a.txt"], params="scale = 1")
    task(project, "b.ipynb", inputs=["a.txt"], outputs=["b.txt"])
    assert states(nbflow.load(project).run(executor=FakeExecutor())) == {"a": SUCCEEDED, "b": SUCCEEDED}
    return project


# -- order and parallelism ----------------------------------------------------------------------------------------


def test_tasks_start_only_once_their_upstream_finished_and_independent_ones_start_at_once(project):
    # a -> b, a -> c, (b, c) -> d; e on its own
    task(project, "a.ipynb", outputs=["a.txt"])
    task(project, "b.ipynb", inputs=["a.txt"], outputs=["b.txt"])
    task(project, "c.ipynb", inputs=["a.txt"], outputs=["c.txt"])
    task(project, "d.ipynb", inputs=["b.txt", "c.txt"], outputs=["d.txt"])
    task(project, "e.ipynb", outputs=["e.txt"])
    fake = FakeExecutor(capacity=3)
    run = nbflow.load(project).run(executor=fake)

    assert run.state is RunState.SUCCEEDED and run.exit_code == 0
    assert states(run) == dict.fromkeys("abcde", SUCCEEDED)
    assert sorted(fake.order) == [(name, 1) for name in "abcde"]
    for upstream, downstream in [("a", "b"), ("a", "c"), ("b", "d"), ("c", "d")]:
        assert upstream in fake.finished_before(downstream)
    assert fake.finished_before("a") == fake.finished_before("e") == []
    assert {name: (project / f"{name}.txt").read_text() for name in "abcde"} == {n: n + "\n" for n in "abcde"}
    assert executed(project, run.id) == {f"{name}.ipynb": 1 for name in "abcde"}
    assert run.tasks["d"].output_notebook == project / ".nbflow" / "runs" / run.id / "d.ipynb"
    record = recorded(project, run.id)
    assert record.run.state is RunState.SUCCEEDED and record.states == states(run)
    assert list(record.tasks) == list(run.tasks) == ["a", "b", "c", "d", "e"]  # dependency order
    assert [t.reasons for t in record.tasks.values()] == [["never run successfully"]] * 5
    assert fake.outstanding == [] and not fake.closed  # every result taken; the caller closes its own executor


@pytest.mark.parametrize(("capacity", "tasks", "at_once"), [(1, 4, 1), (2, 5, 2), (8, 3, 3)])
def test_independent_tasks_run_at_once_up_to_the_capacity_and_never_more(project, capacity, tasks, at_once):
    names = [f"t{i}" for i in range(tasks)]
    for name in names:
        task(project, f"{name}.ipynb", outputs=[f"{name}.txt"])
    fake = FakeExecutor(capacity)  # it refuses a submission beyond its capacity
    run = nbflow.load(project).run(executor=fake)
    assert states(run) == dict.fromkeys(names, SUCCEEDED)
    assert sorted(fake.tasks_run) == names and len(fake.submitted) == tasks
    assert fake.most_at_once == at_once


def test_the_first_tasks_start_before_every_ready_task_is_judged(project):
    # judging a thousand ready tasks takes a while: the first start once enough are judged to fill the free slots
    # and the kernels started ahead of them; the rest are judged while those run
    names = [f"t{i:02d}" for i in range(30)]
    for name in names:
        task(project, f"{name}.ipynb", outputs=[f"{name}.txt"])
    judged_when_the_first_started: list[int] = []

    def on_event(run, changed) -> None:
        if changed.state is TaskState.RUNNING and not judged_when_the_first_started:
            judged_when_the_first_started.append(sum(1 for t in run.tasks.values() if t.reasons))

    run = nbflow.load(project).run(executor=FakeExecutor(2), on_event=on_event)
    assert states(run) == dict.fromkeys(names, SUCCEEDED)
    assert 1 <= judged_when_the_first_started[0] <= 4


def test_every_state_change_is_reported_to_the_event_hook_as_it_happens(project):
    task(project, "a.ipynb", outputs=["a.txt"])
    task(project, "b.ipynb", inputs=["a.txt"], outputs=["b.txt"])
    seen = []
    run = nbflow.load(project).run(executor=FakeExecutor(), on_event=lambda run, t: seen.append((t.name, t.state)))
    assert seen == [("a", TaskState.RUNNING), ("a", SUCCEEDED), ("b", TaskState.RUNNING), ("b", SUCCEEDED)]
    assert run.state is RunState.SUCCEEDED


# -- skipping and rerunning ---------------------------------------------------------------------------------------


def test_an_up_to_date_pipeline_is_skipped_without_starting_anything(chain):
    fake = FakeExecutor()
    run = nbflow.load(chain).run(executor=fake)
    assert states(run) == {"a": SKIPPED, "b": SKIPPED} and run.state is RunState.SUCCEEDED and run.exit_code == 0
    assert fake.submitted == [] and fake.hints == []
    assert [t.reasons for t in run.tasks.values()] == [[], []]
    assert recorded(chain, run.id).states == {"a": SKIPPED, "b": SKIPPED}


def change_code(project: Path) -> None:
    task(project, "a.ipynb", inputs=["raw.csv"], outputs=["a.txt"], params="scale = 1", code="x = 2")


CHANGES = {
    "input": (lambda project: (project / "raw.csv").write_text("4,5,6\n"), None, "input changed: raw.csv"),
    "code": (change_code, None, "code changed"),
    "pipeline parameter": (lambda project: None, {"scale": 2}, "parameters changed: scale"),
    "task parameter": (lambda project: None, {"a.scale": 2}, "parameters changed: scale"),
}


@pytest.mark.parametrize("change", CHANGES)
def test_a_change_reruns_the_task_and_an_unchanged_output_leaves_its_downstream_skipped(chain, change):
    edit, params, reason = CHANGES[change]
    edit(chain)
    fake = FakeExecutor()  # a's rerun writes what it wrote before
    run = nbflow.load(chain).run(executor=fake, params=params)
    assert states(run) == {"a": SUCCEEDED, "b": SKIPPED} and run.state is RunState.SUCCEEDED
    assert run.tasks["a"].reasons == [reason]
    assert fake.tasks_run == ["a"]
    assert recorded(chain, run.id).states == {"a": SUCCEEDED, "b": SKIPPED}


def test_a_rerun_whose_output_changed_reruns_its_downstream(chain):
    (chain / "raw.csv").write_text("4,5,6\n")
    fake = FakeExecutor(script={"a": Succeed("new\n")})
    run = nbflow.load(chain).run(executor=fake)
    assert states(run) == {"a": SUCCEEDED, "b": SUCCEEDED}
    assert run.tasks["b"].reasons == ["input changed: a.txt"]
    assert fake.tasks_run == ["a", "b"]
    # the next run sees the new output as b's input: nothing left to do
    assert states(nbflow.load(chain).run(executor=FakeExecutor())) == {"a": SKIPPED, "b": SKIPPED}


def test_force_runs_up_to_date_tasks(chain):
    fake = FakeExecutor()
    run = nbflow.load(chain).run(executor=fake, force=True)
    assert states(run) == {"a": SUCCEEDED, "b": SUCCEEDED}
    assert [t.reasons for t in run.tasks.values()] == [["--force"], ["--force"]]
    assert fake.tasks_run == ["a", "b"]


# -- retries ------------------------------------------------------------------------------------------------------


def test_a_failed_attempt_is_retried_and_every_attempt_is_kept(project):
    task(project, "a.ipynb", outputs=["a.txt"])
    task(project, "b.ipynb", inputs=["a.txt"], outputs=["b.txt"])
    fake = FakeExecutor(script={"a": [Fail(), Fail(), Succeed()]})
    run = nbflow.load(project).run(executor=fake, retries=2)

    assert states(run) == {"a": SUCCEEDED, "b": SUCCEEDED} and run.state is RunState.SUCCEEDED
    assert run.tasks["a"].attempts == 3 and run.tasks["a"].error is None
    assert fake.order == [("a", 1), ("a", 2), ("a", 3), ("b", 1)]
    record = recorded(project, run.id)
    assert record.tasks["a"].attempts == 3 and record.tasks["a"].state is SUCCEEDED and record.tasks["a"].error is None
    assert [(a.attempt, a.state) for a in record.attempts["a"]] == [(1, FAILED), (2, FAILED), (3, SUCCEEDED)]
    assert record.attempts["a"][0].error == fake.outcome("a", 1).error
    assert executed(project, run.id) == {"a.attempt-1.ipynb": 1, "a.attempt-2.ipynb": 2, "a.ipynb": 3, "b.ipynb": 1}
    assert run.tasks["a"].output_notebook.name == "a.ipynb"


def test_when_retries_run_out_the_task_fails_with_its_last_error_and_its_downstream_does_not_run(project):
    task(project, "a.ipynb", outputs=["a.txt"])
    task(project, "b.ipynb", inputs=["a.txt"], outputs=["b.txt"])
    last = TaskError.in_cell("KeyError", "'day'", 3, ["KeyError: 'day'"])
    fake = FakeExecutor(script={"a": [Fail(), Fail(last)]})
    run = nbflow.load(project).run(executor=fake, retries=1)

    assert states(run) == {"a": FAILED, "b": UPSTREAM_FAILED}
    assert run.state is RunState.FAILED and run.exit_code == 1
    assert run.tasks["a"].attempts == 2 and run.tasks["a"].error == last
    assert fake.order == [("a", 1), ("a", 2)]
    record = recorded(project, run.id)
    assert [(a.attempt, a.state) for a in record.attempts["a"]] == [(1, FAILED), (2, FAILED)]
    assert record.tasks["a"].error == last and record.run.state is RunState.FAILED


@pytest.mark.parametrize(
    ("setting", "option", "attempts"),
    [
        ("notebook", None, 2),  # metadata.nbflow.retries = 1
        ("nbflow.toml", None, 2),  # retries = 1
        ("notebook", 0, 1),  # the run's own value wins over the notebook's
        (None, None, 1),  # no retries by default
    ],
)
def test_retries_come_from_the_run_then_the_notebook_then_the_project(project, setting, option, attempts):
    metadata = {"nbflow": {"retries": 1}} if setting == "notebook" else None
    if setting == "nbflow.toml":
        (project / "nbflow.toml").write_text("retries = 1\n")
    task(project, "a.ipynb", outputs=["a.txt"], metadata=metadata)
    fake = FakeExecutor(script={"a": Fail()})
    run = nbflow.load(project).run(executor=fake, retries=option)
    assert run.tasks["a"].state is FAILED and run.tasks["a"].attempts == attempts
    assert len(recorded(project, run.id).attempts["a"]) == attempts == len(fake.submitted)


def test_a_failure_fails_only_its_downstream_and_independent_branches_go_on(project):
    # a -> a2 -> a3 and b -> b2
    task(project, "a.ipynb", outputs=["a.txt"])
    task(project, "a2.ipynb", inputs=["a.txt"], outputs=["a2.txt"])
    task(project, "a3.ipynb", inputs=["a2.txt"], outputs=["a3.txt"])
    task(project, "b.ipynb", outputs=["b.txt"])
    task(project, "b2.ipynb", inputs=["b.txt"], outputs=["b2.txt"])
    fake = FakeExecutor(capacity=2, script={"a": Fail()})
    run = nbflow.load(project).run(executor=fake)

    expected = {"a": FAILED, "a2": UPSTREAM_FAILED, "a3": UPSTREAM_FAILED, "b": SUCCEEDED, "b2": SUCCEEDED}
    assert states(run) == expected
    assert run.state is RunState.FAILED and run.exit_code == 1
    assert sorted(fake.tasks_run) == ["a", "b", "b2"]
    assert run.tasks["a"].error == fake.outcome("a", 1).error
    for downstream in ("a2", "a3"):  # named after the task that failed, not the one between
        assert run.tasks[downstream].error == TaskError.upstream_failed("a")
        assert str(run.tasks[downstream].error.evalue) == "upstream task a failed"
    record = recorded(project, run.id)
    assert record.states == expected and record.run.state is RunState.FAILED
    assert record.tasks["a3"].error == TaskError.upstream_failed("a") and record.tasks["a"].error.cell_index == 2


def test_fail_fast_stops_the_running_tasks_starts_nothing_more_and_fails_the_run(project):
    # a fails; b succeeds at the same time and its dependant b2 is never started; c runs until it is stopped
    task(project, "a.ipynb", outputs=["a.txt"])
    task(project, "b.ipynb", outputs=["b.txt"])
    task(project, "b2.ipynb", inputs=["b.txt"], outputs=["b2.txt"])
    task(project, "c.ipynb", outputs=["c.txt"])
    fake = FakeExecutor(capacity=3, script={"a": Fail(), "c": Hang()})
    run = nbflow.load(project).run(executor=fake, fail_fast=True)

    expected = {"a": FAILED, "b": SUCCEEDED, "b2": CANCELLED, "c": CANCELLED}
    assert states(run) == expected
    assert run.state is RunState.FAILED and run.exit_code == 1
    assert sorted(fake.tasks_run) == ["a", "b", "c"]
    # (b may be told to stop too: it ended in the same moment as a, before the loop looked at it)
    assert [(s.task, s.reason) for s in fake.stops if s.was_running] == [("c", "cancelled")]
    assert run.tasks["c"].error == TaskError.cancelled()
    record = recorded(project, run.id)
    assert record.states == expected and record.run.state is RunState.FAILED
    assert [a.state for a in record.attempts["c"]] == [CANCELLED]


def test_fail_fast_retries_nothing_once_the_run_is_stopping(project):
    # a fails for good; b, told to stop, reports a failure of its own (it had failed where it ran): the run is
    # stopping, so b's retry must not start
    task(project, "a.ipynb", outputs=["a.txt"])
    task(project, "b.ipynb", outputs=["b.txt"])
    fake = FakeExecutor(capacity=2, script={"a": Fail(), "b": [Hang(failed=Fail()), Succeed()]})
    run = nbflow.load(project).run(executor=fake, fail_fast=True, retries=1)

    assert fake.order == [("a", 1), ("b", 1), ("a", 2)], "an attempt started after fail-fast stopped the run"
    assert states(run) == {"a": FAILED, "b": FAILED} and run.state is RunState.FAILED
    assert [a.state for a in recorded(project, run.id).attempts["b"]] == [FAILED]


@pytest.mark.parametrize("where", ["a.ipynb", "sub/a.ipynb"])
def test_a_declared_output_not_written_fails_the_task_naming_the_path(project, where):
    output = "data/a.txt" if where == "a.ipynb" else "../data/a.txt"
    task(project, where, outputs=[output])
    task(project, "b.ipynb", inputs=["data/a.txt"], outputs=["b.txt"])
    fake = FakeExecutor(script={"a": Succeed(writes_outputs=False)})
    run = nbflow.load(project).run(executor=fake)

    assert states(run) == {"a": FAILED, "b": UPSTREAM_FAILED} and run.state is RunState.FAILED
    error = run.tasks["a"].error
    assert (error.ename, error.evalue) == ("OutputNotWritten", "declared output not written by this run: data/a.txt")
    record = recorded(project, run.id)
    assert record.tasks["a"].error == error and [a.state for a in record.attempts["a"]] == [FAILED]
    # never a success, so the next run tries again
    again = nbflow.load(project).run(executor=FakeExecutor())
    assert states(again) == {"a": SUCCEEDED, "b": SUCCEEDED}
    assert again.tasks["a"].reasons == ["never run successfully"]


def test_a_notebook_can_open_its_declared_outputs_for_writing_in_folders_that_did_not_exist(project):
    task(project, "sub/a.ipynb", outputs=["../out/deep/a.txt", "plots/"])
    run = nbflow.load(project).run(executor=FakeExecutor())
    assert run.tasks["a"].state is SUCCEEDED, run.tasks["a"].error
    assert (project / "out" / "deep" / "a.txt").read_text() == "a\n"
    assert (project / "sub" / "plots" / "part.txt").read_text() == "a\n"


# -- timeouts -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("setting", ["run", "notebook", "nbflow.toml"])
def test_a_task_past_its_timeout_is_stopped_at_its_deadline_and_fails(project, setting):
    if setting == "nbflow.toml":
        (project / "nbflow.toml").write_text(f"timeout = {TIMEOUT_S}\n")
    metadata = {"nbflow": {"timeout": TIMEOUT_S}} if setting == "notebook" else None
    task(project, "a.ipynb", outputs=["a.txt"], metadata=metadata)
    task(project, "a2.ipynb", inputs=["a.txt"], outputs=["a2.txt"])
    task(project, "b.ipynb", outputs=["b.txt"])
    fake = FakeExecutor(capacity=2, script={"a": Hang()})
    run = nbflow.load(project).run(executor=fake, timeout=TIMEOUT_S if setting == "run" else None)

    assert states(run) == {"a": FAILED, "a2": UPSTREAM_FAILED, "b": SUCCEEDED} and run.state is RunState.FAILED
    assert run.tasks["a"].error.ename == "TaskTimeout"
    # stopped once, with the reason "timeout", not before its deadline
    assert [(s.task, s.attempt, s.reason) for s in fake.stops] == [("a", 1, "timeout")]
    assert fake.stops[0].after_s >= TIMEOUT_S
    record = recorded(project, run.id)
    assert [(a.state, a.error.ename) for a in record.attempts["a"]] == [(FAILED, "TaskTimeout")]
    assert record.tasks["a"].error.ename == "TaskTimeout"


def test_a_timed_out_job_is_stopped_once_and_waited_for_until_it_reports_back(project):
    # a killed job takes a while to report back (its notebook saved, its kernel shut down); the loop waits for it
    task(project, "a.ipynb", outputs=["a.txt"])
    fake = FakeExecutor(script={"a": Hang(reports_after_s=TIMEOUT_S)})
    run = nbflow.load(project).run(executor=fake, timeout=TIMEOUT_S)
    assert run.tasks["a"].state is FAILED and run.tasks["a"].error.ename == "TaskTimeout"
    assert len(fake.stops) == 1, f"the timed-out job was told to stop {len(fake.stops)} times"


def test_a_timed_out_attempt_is_retried_with_a_deadline_of_its_own(project):
    task(project, "a.ipynb", outputs=["a.txt"])
    fake = FakeExecutor(script={"a": [Hang(), Hang(), Succeed()]})
    run = nbflow.load(project).run(executor=fake, timeout=TIMEOUT_S, retries=2)

    assert run.tasks["a"].state is SUCCEEDED and run.tasks["a"].attempts == 3 and run.state is RunState.SUCCEEDED
    assert [(s.attempt, s.reason) for s in fake.stops] == [(1, "timeout"), (2, "timeout")]
    assert all(stop.after_s >= TIMEOUT_S for stop in fake.stops)
    attempts = recorded(project, run.id).attempts["a"]
    assert [(a.state, a.error and a.error.ename) for a in attempts] == [
        (FAILED, "TaskTimeout"),
        (FAILED, "TaskTimeout"),
        (SUCCEEDED, None),
    ]


# -- cancel and Ctrl-C --------------------------------------------------------------------------------------------


def test_cancel_from_another_thread_stops_running_tasks_and_cancels_the_rest(project):
    # a -> b; c and d on their own; a and c hang, d waits for a free slot
    task(project, "a.ipynb", outputs=["a.txt"])
    task(project, "b.ipynb", inputs=["a.txt"], outputs=["b.txt"])
    task(project, "c.ipynb", outputs=["c.txt"])
    task(project, "d.ipynb", outputs=["d.txt"])
    fake = FakeExecutor(capacity=2, script={"a": Hang(reports_after_s=TIMEOUT_S), "c": Hang()})
    callers: list[Caller] = []

    def on_start(runner: Runner) -> None:
        callers.append(fake.call_when_submitted({"a", "c"}, runner.cancel))

    run = nbflow.load(project).run(executor=fake, on_start=on_start, retries=2)
    callers[0].join()

    assert states(run) == dict.fromkeys("abcd", CANCELLED)
    assert run.state is RunState.CANCELLED and run.exit_code == 130
    assert sorted((s.task, s.reason) for s in fake.stops) == [("a", "cancelled"), ("c", "cancelled")]
    assert sorted(fake.order) == [("a", 1), ("c", 1)]  # no retry once cancelled, and d never started
    assert run.tasks["a"].error == TaskError.cancelled()
    record = recorded(project, run.id)
    assert record.run.state is RunState.CANCELLED and record.states == dict.fromkeys("abcd", CANCELLED)
    assert {name: [a.state for a in attempts] for name, attempts in record.attempts.items()} == {
        "a": [CANCELLED],
        "c": [CANCELLED],
    }


def test_ctrl_c_while_the_loop_waits_stops_the_running_task_and_records_the_run(project):
    task(project, "a.ipynb", outputs=["a.txt"])
    task(project, "b.ipynb", inputs=["a.txt"], outputs=["b.txt"])

    def waiting_for_a(events: list[Event]) -> bool:  # a submitted; the loop hints at b, then waits for a
        return any(e.kind == "submit" for e in events) and events[-1] == Event("prepare", ("b",))

    # a takes a while to report back once killed: the loop waits for it before it records the run
    fake = FakeExecutor(script={"a": Hang(reports_after_s=TIMEOUT_S)}, ctrl_c_when=waiting_for_a)
    run = nbflow.load(project).run(executor=fake)

    assert states(run) == {"a": CANCELLED, "b": CANCELLED}
    assert run.state is RunState.CANCELLED and run.exit_code == 130
    assert [(s.task, s.reason) for s in fake.stops] == [("a", "cancelled")] and fake.outstanding == []
    assert run.tasks["a"].error == TaskError.cancelled()
    record = recorded(project, run.id)
    assert record.run.state is RunState.CANCELLED and record.states == {"a": CANCELLED, "b": CANCELLED}
    assert [a.state for a in record.attempts["a"]] == [CANCELLED]
    # the lock was let go: the next run starts at once, and redoes what never succeeded
    assert states(nbflow.load(project).run(executor=FakeExecutor())) == {"a": SUCCEEDED, "b": SUCCEEDED}


def test_ctrl_c_while_a_job_is_being_submitted_stops_those_already_running(project):
    task(project, "a.ipynb", outputs=["a.txt"])
    task(project, "b.ipynb", outputs=["b.txt"])
    fake = FakeExecutor(capacity=2, script={"a": Hang(), "b": Interrupt()})
    run = nbflow.load(project).run(executor=fake)

    assert states(run) == {"a": CANCELLED, "b": CANCELLED}
    assert run.state is RunState.CANCELLED and run.exit_code == 130
    assert fake.order == [("a", 1)] and [(s.task, s.reason) for s in fake.stops] == [("a", "cancelled")]
    assert recorded(project, run.id).states == {"a": CANCELLED, "b": CANCELLED}


# -- prewarm hints ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("capacity", [1, 2, 3])
def test_prepare_hints_name_at_most_capacity_jobs_and_each_job_before_it_starts(project, capacity):
    # t0..t4 on their own, t0 -> u -> v
    for i in range(5):
        task(project, f"t{i}.ipynb", outputs=[f"t{i}.txt"])
    task(project, "u.ipynb", inputs=["t0.txt"], outputs=["u.txt"])
    task(project, "v.ipynb", inputs=["u.txt"], outputs=["v.txt"])
    fake = FakeExecutor(capacity)
    run = nbflow.load(project).run(executor=fake)
    assert run.state is RunState.SUCCEEDED and len(fake.submitted) == 7

    assert fake.hints and all(0 < len(hint) <= capacity for hint in fake.hints)
    last_hint: tuple[str, ...] = ()
    for event in fake.events:
        if event.kind == "prepare":
            last_hint = event.tasks
        elif event.kind == "submit":
            assert event.tasks[0] in last_hint, f"{event.tasks[0]} started without its kernel being prepared"
    assert all(job.attempt == 1 for job in fake.submitted)


def test_the_next_task_is_prepared_while_its_upstream_runs(project):
    task(project, "a.ipynb", outputs=["a.txt"])
    task(project, "b.ipynb", inputs=["a.txt"], outputs=["b.txt"])
    task(project, "c.ipynb", inputs=["b.txt"], outputs=["c.txt"])
    fake = FakeExecutor()
    nbflow.load(project).run(executor=fake)
    calls = [(e.kind, e.tasks) for e in fake.events]
    assert calls[calls.index(("submit", ("a",))) + 1] == ("prepare", ("b",))
    assert calls[calls.index(("submit", ("b",))) + 1] == ("prepare", ("c",))
