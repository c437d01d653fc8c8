"""The errors nbflow reports to users, and the exit codes they map to.

Every problem a user can fix is a `Problem`: one readable sentence that names the notebook (and the line, or the
path) and says what to do. Resolution collects all of them before failing, so a `PipelineError` carries a list.
"""

from __future__ import annotations

from dataclasses import dataclass

EXIT_OK = 0
EXIT_TASK_FAILED = 1
EXIT_INVALID = 2
EXIT_LOCKED = 3
EXIT_INTERRUPTED = 130


@dataclass(frozen=True)
class Problem:
    """One mistake in the pipeline, phrased for the person who has to fix it."""

    kind: str  # e.g. "cycle", "duplicate-output", "unknown-upstream", "unreadable", "declaration", "config"
    message: str

    def __str__(self) -> str:
        return self.message


class NbflowError(Exception):
    """Base class of the errors nbflow raises on purpose; `exit_code` is what the CLI exits with."""

    exit_code = EXIT_INVALID


class PipelineError(NbflowError):
    """The pipeline (or the command's view of it) is invalid: every problem found, not just the first."""

    def __init__(self, problems: list[Problem]):
        self.problems = list(problems)
        super().__init__(self.describe())

    def describe(self) -> str:
        count = len(self.problems)
        head = "the pipeline has a problem:" if count == 1 else f"the pipeline has {count} problems:"
        return "\n".join([head, *(f"  - {p.message}" for p in self.problems)])


class UsageError(NbflowError):
    """The command or request itself is invalid (a bad option value, an unknown parameter, ...); `problems` holds
    each mistake where there are several."""

    def __init__(self, message: str, problems: list[str] | None = None):
        super().__init__(message)
        self.problems = list(problems or [message])

    @classmethod
    def listing(cls, problems: list[str]) -> UsageError:
        """One mistake as the message, or several under a line that counts them."""
        if len(problems) == 1:
            return cls(problems[0])
        return cls("\n".join([f"{len(problems)} problems:", *(f"  - {p}" for p in problems)]), problems)


class LockedError(NbflowError):
    """Another run holds what this run needs, and this run was told not to wait."""

    exit_code = EXIT_LOCKED


class StoreError(NbflowError):
    """The run store cannot be used as it is (written by a newer nbflow, damaged, on a full or read-only disk)."""


class StoreDamaged(StoreError):
    """The store's file is not a whole SQLite database (empty, cut short, corrupt, not a database at all)."""


class StoreReadOnly(StoreError):
    """The store cannot be written (a read-only folder or mount): reading still works, running does not."""


class StoreFull(StoreError):
    """The disk holding the store is full."""


class StoreUnavailable(StoreError):
    """The store's path cannot be opened or read (a folder in its place, a disk error)."""
