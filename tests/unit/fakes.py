"""A scripted executor: the real run loop, store and pipeline drive it, and no kernel ever starts.

Each task's job ends as its script says (succeeds, fails, hangs until stopped, or Ctrl-C arrives while it is
submitted), per attempt. A job that succeeds writes the task's declared outputs where the notebook would (from the
injected `outputs`, relative to the notebook's folder), and every job leaves an executed notebook at
`job.output_notebook`, so output checks, fingerprints and attempt files work as in a real run.

The executor keeps what a test wants to see: the order of submissions, the stops and their reasons, the hints
given to `prepare`, and the most jobs that held a slot at once. A job holds a slot from its submission until the
loop takes its result, which is how the loop itself counts its running jobs; the fake refuses a submission that
would need more slots than `capacity`.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path

from nbflow.declare import paths_of
from nbflow.models import TaskError, TaskState
from nbflow.run.jobs import Executor, ExecutorOptions, Job, JobResult
from nbflow.times import iso, now


@dataclass(frozen=True)
class Succeed:
    """The notebook runs to its end and writes each declared output, holding `content` (default: the task's name,
    the same at every run, so a rerun's outputs come out unchanged)."""

    content: str | None = None
    writes_outputs: bool = True


def _scripted_failure() -> TaskError:
    return TaskError.in_cell("ValueError", "scripted failure", 2, ["ValueError: scripted failure"])


@dataclass(frozen=True)
class Fail:
    """The notebook raises in a cell."""

    error: TaskError = field(default_factory=_scripted_failure)


@dataclass(frozen=True)
class Hang:
    """The notebook never ends by itself; `stop(job, reason)` kills it and it reports back as a killed kernel does:
    "timeout" -> failed with a TaskTimeout error, "cancelled" -> cancelled. It reports back at once, or, like a real
    job that still saves its notebook and shuts its kernel down, `reports_after_s` later from another thread.
    With `failed`, the job had already failed where it ran when the stop reached it (a remote executor's result on
    its way): it reports that failure instead."""

    reports_after_s: float = 0.0
    failed: Fail | None = None


@dataclass(frozen=True)
class Interrupt:
    """Ctrl-C arrives while the loop submits this job: `submit` raises KeyboardInterrupt and nothing starts."""


Outcome = Succeed | Fail | Hang | Interrupt
# one outcome for every attempt, or one per attempt (attempts past the end repeat the last)
Script = Mapping[str, Outcome | Sequence[Outcome]]


@dataclass(frozen=True)
class Event:
    """One call the loop made: `prepare` (the hinted tasks, soonest first), `submit` or `stop` (one task)."""

    kind: str
    tasks: tuple[str, ...]
    attempt: int = 1
    reason: str | None = None  # of a stop


@dataclass(frozen=True)
class Stop:
    task: str
    attempt: int
    reason: str
    after_s: float  # seconds since the job was submitted
    was_running: bool  # False: the job had already ended (its result not yet taken), so nothing was killed


class _Slot(Future):
    """A job's future that tells the executor when the loop takes its result, which frees the job's slot."""

    def __init__(self, on_taken: Callable[[_Slot], None]):
        super().__init__()
        self._on_taken = on_taken

    def result(self, timeout: float | None = None) -> JobResult:
        self._on_taken(self)
        return super().result(timeout)


class Caller(threading.Thread):
    """A thread that waits for the loop to get somewhere, then acts; it acts anyway after a while, so a run never
    hangs on a test's mistake, and `join` then says the loop never got there."""

    def __init__(self, met: Callable[[], bool], action: Callable[[], None]):
        super().__init__(name="fake-executor-caller", daemon=True)
        self._met, self._action = met, action
        self.met: bool | None = None

    def run(self) -> None:
        self.met = self._met()
        self._action()

    def join(self, timeout: float | None = None) -> None:
        super().join(timeout)
        assert self.met, "the loop never got where the test waited for it"


class FakeExecutor(Executor):
    """Runs no notebook: each job ends as the script says, at once (or, for `Hang`, when it is stopped).

    It writes each job's executed notebook where the job says, as every executor does. `ctrl_c_when` is a condition
    on the calls made so far: the first `prepare` call after which it holds raises KeyboardInterrupt. (A real SIGINT
    sent from a test thread can land just before the loop's thread blocks in its wait, and then sits unhandled until
    another signal arrives: CPython only runs a handler once the thread is back in Python code.)
    """

    def __init__(
        self,
        capacity: int = 1,
        script: Script | None = None,
        *,
        ctrl_c_when: Callable[[list[Event]], bool] | None = None,
    ):
        self.capacity = capacity
        self.script = dict(script or {})
        self._ctrl_c_when = ctrl_c_when
        self.submitted: list[Job] = []
        self.stops: list[Stop] = []
        self.events: list[Event] = []  # every call the loop made, in order
        self.most_at_once = 0  # the most jobs that held a slot at the same time
        self.closed = False
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._outstanding: dict[_Slot, Job] = {}  # submitted, result not yet taken by the loop
        self._taken: list[str] = []  # tasks whose results the loop took, in order
        self._taken_at_submit: dict[tuple[str, int], list[str]] = {}
        self._hanging: dict[tuple[str, int], tuple[_Slot, str]] = {}  # with the time it started
        self._submit_times: dict[tuple[str, int], float] = {}

    @classmethod
    def from_options(cls, options: ExecutorOptions) -> FakeExecutor:
        return cls(options.workers or 1)

    # -- the Executor interface ---------------------------------------------------------------------------------

    def submit(self, job: Job) -> Future:
        outcome = self.outcome(job.task, job.attempt)
        if isinstance(outcome, Interrupt):
            raise KeyboardInterrupt
        slot = _Slot(self._take)
        with self._lock:
            if len(self._outstanding) >= self.capacity:
                running = ", ".join(sorted(j.task for j in self._outstanding.values()))
                raise AssertionError(
                    f"{job.task} was submitted while {running} held all {self.capacity} slot(s) of the executor"
                )
            self._outstanding[slot] = job
            self.most_at_once = max(self.most_at_once, len(self._outstanding))
            self.submitted.append(job)
            self._taken_at_submit[(job.task, job.attempt)] = list(self._taken)
            self._submit_times[(job.task, job.attempt)] = time.monotonic()
            self._record(Event("submit", (job.task,), job.attempt))
        started = iso(now())
        if isinstance(outcome, Hang):
            with self._lock:
                self._hanging[(job.task, job.attempt)] = (slot, started)
        elif isinstance(outcome, Fail):
            slot.set_result(self._result(job, TaskState.FAILED, started, outcome.error))
        else:
            try:
                if outcome.writes_outputs:
                    _write_outputs(job, job.task + "\n" if outcome.content is None else outcome.content)
            except OSError as exc:  # the notebook's own open() failed: it raised in that cell
                error = TaskError.in_cell(type(exc).__name__, str(exc), 2)
                slot.set_result(self._result(job, TaskState.FAILED, started, error))
            else:
                slot.set_result(self._result(job, TaskState.SUCCEEDED, started))
        return slot

    def stop(self, job: Job, reason: str) -> None:
        key = (job.task, job.attempt)
        with self._lock:
            slot, started = self._hanging.pop(key, (None, ""))
            after = time.monotonic() - self._submit_times[key]
            self.stops.append(Stop(job.task, job.attempt, reason, after, was_running=slot is not None))
            self._record(Event("stop", (job.task,), job.attempt, reason))
        if slot is None:  # it had already ended: nothing to kill
            return
        outcome = self.outcome(job.task, job.attempt)
        assert isinstance(outcome, Hang)
        if outcome.failed is not None:
            result = self._result(job, TaskState.FAILED, started, outcome.failed.error)
        elif reason == "cancelled":
            result = self._result(job, TaskState.CANCELLED, started, TaskError.cancelled())
        else:
            result = self._result(job, TaskState.FAILED, started, TaskError.timeout())
        if outcome.reports_after_s:
            threading.Timer(outcome.reports_after_s, slot.set_result, [result]).start()
        else:
            slot.set_result(result)

    def prepare(self, upcoming: list[Job]) -> None:
        with self._lock:
            self._record(Event("prepare", tuple(job.task for job in upcoming)))
        if self._ctrl_c_when is not None and self._ctrl_c_when(self.events):
            # the loop calls prepare right before it waits: a Ctrl-C here finds it as one during the wait would
            self._ctrl_c_when = None
            raise KeyboardInterrupt

    def close(self) -> None:
        self.closed = True

    def _record(self, event: Event) -> None:
        self.events.append(event)
        self._changed.notify_all()

    def _result(self, job: Job, state: TaskState, started: str, error: TaskError | None = None) -> JobResult:
        """How the job ended; its executed notebook is written at the job's path."""
        notebook = json.loads(Path(job.notebook).read_text())
        notebook["metadata"]["fake_executor"] = {"attempt": job.attempt, "parameters": job.parameters}
        executed = json.dumps(notebook).encode()
        Path(job.output_notebook).parent.mkdir(parents=True, exist_ok=True)
        Path(job.output_notebook).write_bytes(executed)
        return JobResult(state, started, iso(now()), error)

    # -- what tests ask -----------------------------------------------------------------------------------------

    def outcome(self, task: str, attempt: int) -> Outcome:
        scripted = self.script.get(task, Succeed())
        if isinstance(scripted, Sequence):
            return scripted[min(attempt, len(scripted)) - 1]
        return scripted

    @property
    def hints(self) -> list[tuple[str, ...]]:
        """The tasks named by each `prepare` call, in order."""
        return [event.tasks for event in self.events if event.kind == "prepare"]

    @property
    def order(self) -> list[tuple[str, int]]:
        """(task, attempt) of every submission, in order."""
        return [(job.task, job.attempt) for job in self.submitted]

    @property
    def tasks_run(self) -> list[str]:
        """Tasks submitted at least once, in the order of their first submission."""
        return list(dict.fromkeys(job.task for job in self.submitted))

    @property
    def outstanding(self) -> list[str]:
        """Tasks whose job was submitted and whose result the loop has not taken."""
        with self._lock:
            return sorted(job.task for job in self._outstanding.values())

    def finished_before(self, task: str, attempt: int = 1) -> list[str]:
        """The tasks whose results the loop had taken when it submitted this attempt."""
        return self._taken_at_submit[(task, attempt)]

    def call_when(self, condition: Callable[[list[Event]], bool], action: Callable[[], None]) -> Caller:
        """Call `action` from another thread (as a Cancel button or a signal would) once `condition` holds for the
        calls the loop has made so far; the caller joins the thread."""

        def met() -> bool:
            with self._lock:
                return self._changed.wait_for(lambda: condition(self.events), timeout=10)

        caller = Caller(met, action)
        caller.start()
        return caller

    def call_when_submitted(self, tasks: Collection[str], action: Callable[[], None]) -> Caller:
        """Call `action` from another thread once all of `tasks` have been submitted."""
        wanted = set(tasks)
        return self.call_when(lambda events: wanted <= {e.tasks[0] for e in events if e.kind == "submit"}, action)

    def _take(self, slot: _Slot) -> None:
        with self._lock:
            job = self._outstanding.pop(slot, None)
            if job is not None:
                self._taken.append(job.task)


def _write_outputs(job: Job, content: str) -> None:
    """Write what a simple notebook would: each injected output path opened from the notebook's folder, counting
    on the run to have made the folders a file goes in; an output folder it makes itself, with a file in it."""
    for path in paths_of(job.parameters.get("outputs", [])):
        full = os.path.join(job.cwd, path)
        if path.endswith("/"):
            os.makedirs(full, exist_ok=True)
            Path(full, "part.txt").write_text(content)
        else:
            Path(full).write_text(content)
