"""A run's claims on its task instances, as the loop asks about them (the rules are in `nbflow.store.claims`).

Only the keys an older run also claimed when this run was created can ever make it wait: older runs claim all they
need as they start, so what they hold can only shrink. The loop asks about those instances alone, and polls the
store only while an instance waits.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from nbflow import processes
from nbflow.errors import LockedError
from nbflow.graph import Pipeline
from nbflow.store import Store
from nbflow.store.claims import Holder, claim_keys, holders, release
from nbflow.store.db import params_key

POLL_S = 0.2  # how often a waiting instance asks whether the run holding it is done with it


class Claims:
    """The keys of one run's instances, and which of them an older run claims too."""

    def __init__(self, store: Store, run_id: str, keys: dict[str, list[str]]):
        self.store, self.run_id, self.keys = store, run_id, keys
        self._contested: set[str] = set()
        self._released: list[str] = []  # keys of finished instances, not yet deleted from the store

    @classmethod
    def of(cls, store: Store, run_id: str, pipeline: Pipeline, selected: Iterable[str]) -> Claims:
        keys = {}
        for name in selected:
            task = pipeline.tasks[name]
            keys[name] = claim_keys(task.base, params_key(task.params), task.output_paths)
        return cls(store, run_id, keys)

    def started(self) -> None:
        """Note, once the run and its claims are in the store, which keys older runs claim too."""
        self._contested = set(holders(self.store, self.run_id))

    def refuse_if_claimed(self, store: Store) -> None:
        """For a run told not to wait: LockedError naming the instances an older running run holds."""
        held = {key: h for key, h in holders(store, self.run_id).items() if _alive(h)}
        if not held:
            return
        mine = {key: name for name, keys in self.keys.items() for key in keys}
        listed = sorted({f"{mine[key]} (run {h.run_id} has {h.instance})" for key, h in held.items()})
        shown = "; ".join(listed[:3]) + (f"; and {len(listed) - 3} more" if len(listed) > 3 else "")
        raise LockedError(
            f"not started: another run that is still going holds what this run would run or write: {shown}. "
            "Wait for that run to finish (or cancel it) and run again, or run without --no-wait to wait for those "
            "instances and go on with the rest meanwhile."
        )

    def holder(self, instance: str) -> Holder | None:
        """The older running run this instance must wait for, if any; a run whose process died is marked
        `interrupted` here, which releases its claims."""
        keys = [key for key in self.keys.get(instance, ()) if key in self._contested]
        while keys:
            found = holders(self.store, self.run_id, keys)
            dead = {h.run_id for h in found.values() if not _alive(h)}
            if not dead:
                self._contested -= set(keys) - set(found)
                return next(iter(found.values()), None)
            for run_id in dead:
                self.store.mark_interrupted(run_id)
            stop_orphan_kernels(self.store)  # before this run redoes their work, as they would write over it
        return None

    def release(self, instance: str) -> None:
        """Let other runs have a finished instance, at the next `flush`."""
        self._released += self.keys.pop(instance, ())

    def flush(self) -> None:
        """Release the finished instances' keys in one transaction: the loop calls this before it blocks, so a
        burst of instances judged up to date costs one write, not one each."""
        if self._released:
            release(self.store, self.run_id, self._released)
            self._released = []


def _alive(holder: Holder) -> bool:
    return holder.pid is None or processes.alive(holder.pid, holder.pid_started)


def stop_orphan_kernels(store: Store) -> list[int]:
    """Kill the kernels that runs whose process died left running (only those still kernels: pids are reused), with
    their process groups: what a notebook started goes too, even where its kernel has exited already. Only runs
    marked `interrupted` have them, and a run is marked so only once its process is gone, so no live run owns
    them."""
    stopped = []
    for run_id, task, pid, run_started in store.orphan_kernels():
        if pid == os.getpid():
            pass
        elif processes.alive(pid):
            if processes.is_kernel(pid) and processes.kill_group(pid):
                stopped.append(pid)
        elif run_started is not None and processes.stop_orphaned_group(pid, run_started):
            stopped.append(pid)  # the kernel is gone, what it started is not
        store.forget_kernel(run_id, task)
    return stopped
