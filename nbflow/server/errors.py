"""The errors the REST API answers with: an HTTP status and an `ErrorBody` (`{"message", "problems"}`)."""

from __future__ import annotations

from nbflow.errors import LockedError, NbflowError, PipelineError, UsageError
from nbflow.schedule import ScheduleNotFound
from nbflow.shapes import ErrorBody


class ApiError(Exception):
    """A request the API refuses with `status`: `message` for a person, and the `problems` behind it if several."""

    def __init__(self, status: int, message: str, problems: list[str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.problems = list(problems or [])

    @classmethod
    def listing(cls, status: int, problems: list[str]) -> ApiError:
        """One problem as the message, or several listed under a line that counts them."""
        if len(problems) == 1:
            return cls(status, problems[0], problems)
        listed = "\n".join(f"  - {p}" for p in problems)
        return cls(status, f"the request has {len(problems)} problems:\n{listed}", problems)


def error_body(exc: BaseException) -> tuple[int, ErrorBody]:
    """The HTTP status and body for an error raised by nbflow or by the server; anything else is a 500."""
    if isinstance(exc, ApiError):
        return exc.status, ErrorBody(message=exc.message, problems=exc.problems)
    if isinstance(exc, PipelineError):
        return 400, ErrorBody(message=exc.describe(), problems=[p.message for p in exc.problems])
    if isinstance(exc, LockedError):
        return 409, ErrorBody(message=str(exc))
    if isinstance(exc, ScheduleNotFound):
        return 404, ErrorBody(message=str(exc))
    if isinstance(exc, UsageError):
        listed = ApiError.listing(400, exc.problems)
        return 400, ErrorBody(message=listed.message, problems=listed.problems)
    if isinstance(exc, NbflowError):
        return 400, ErrorBody(message=str(exc))
    return 500, ErrorBody(message=f"internal error: {type(exc).__name__}: {exc}")
