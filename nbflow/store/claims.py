"""Claims: how runs go side by side without two of them running one task instance (or writing one path) at once.

A run claims, in the transaction that creates it, every key of every instance it may run (`claim_keys`: the
instance itself and each path it writes). An instance goes to the oldest running run that claims one of its keys
(runs are ordered by when they were created, which the store alone decides); a younger run waits until the older
one has released it, then judges it as usual. Younger runs only ever wait for older ones, so runs never wait for
each other in a circle. A run releases an instance's keys when the instance is finished, and all of its keys when it
ends; the claims of a run whose process died go with it when the run is marked `interrupted`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from nbflow.models import RunState
from nbflow.store.db import Store


def claim_keys(task: str, params_key: str, writes: Iterable[str]) -> list[str]:
    """The keys of one instance: the task with its parameter values, and each (absolute) path it writes."""
    return [f"task {task} {params_key}", *(f"path {path.rstrip('/')}" for path in writes)]


@dataclass(frozen=True)
class Holder:
    """An older running run that claims a key an instance needs."""

    run_id: str
    instance: str  # its instance that claims the key
    pid: int | None
    pid_started: float | None


def holders(store: Store, run_id: str, keys: Iterable[str] | None = None) -> dict[str, Holder]:
    """Of this run's claimed keys (or only `keys`), those an older running run claims too: key -> that run (the
    oldest). Claims of runs whose process died count until the run is marked `interrupted`."""
    sql = (
        "SELECT mine.key, other.run_id, other.instance, r.pid, r.pid_started FROM claims mine "
        "JOIN claims other ON other.key = mine.key AND other.run_id != mine.run_id "
        "JOIN runs r ON r.id = other.run_id "
        "WHERE mine.run_id = ? AND r.state = ? AND r.rowid < (SELECT rowid FROM runs WHERE id = ?)"
    )
    args: list[object] = [run_id, str(RunState.RUNNING), run_id]
    wanted = list(keys) if keys is not None else None
    if wanted is not None:
        if not wanted:
            return {}
        sql += f" AND mine.key IN ({','.join('?' * len(wanted))})"
        args += wanted
    sql += " ORDER BY r.rowid DESC"  # the oldest comes last and wins
    found: dict[str, Holder] = {}
    for row in store.db.execute(sql, args):
        found[row["key"]] = Holder(row["run_id"], row["instance"], row["pid"], row["pid_started"])
    return found


def release(store: Store, run_id: str, keys: Iterable[str]) -> None:
    keys = list(keys)
    if keys:
        with store.transaction() as db:
            db.execute(f"DELETE FROM claims WHERE run_id = ? AND key IN ({','.join('?' * len(keys))})", [run_id, *keys])
