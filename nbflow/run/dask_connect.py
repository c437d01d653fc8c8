"""Reaching a Dask scheduler: a connected Client, or a UsageError (exit 2) saying why not and what to do.

Only the standard library and nbflow.errors are imported here at import time: dask is an optional extra.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from nbflow.errors import UsageError

CONNECT_TIMEOUT = 10.0  # seconds to reach the scheduler before giving up (exit 2)
QUICK_CONNECT = 2.0  # the first try's share of it (see connect)
INSTALL_HINT = "pip install 'nbflow[dask]'"
HELP = (
    "Start a cluster with `dask scheduler` and `dask worker tcp://HOST:8786` (nbflow installed in the workers' "
    "environment too), or point --dask-address at an existing one (see README: On a Dask cluster)"
)


def import_distributed() -> Any:
    """The `distributed` package, or a UsageError saying how to install it."""
    try:
        import distributed
    except ImportError as exc:
        raise UsageError(
            f"the dask executor needs dask and distributed, which are not installed here ({exc}); "
            f"install them with: {INSTALL_HINT}"
        ) from None
    return distributed


def scheduler_address(address: str | None) -> str:
    """The address given, else Dask's own setting (`DASK_SCHEDULER_ADDRESS` / `scheduler-address`)."""
    if address:
        return address
    import dask

    configured = dask.config.get("scheduler-address", None)
    if configured:
        return str(configured)
    raise UsageError(
        "--executor dask needs the scheduler's address: --dask-address tcp://HOST:8786 (or the "
        f"DASK_SCHEDULER_ADDRESS environment variable). {HELP}."
    )


def connect(address: str, timeout: float = CONNECT_TIMEOUT) -> Any:
    """A Client of the scheduler, or a UsageError (exit 2) saying why not.

    The scheduler is probed first with a bare Dask connection (handshake, then close: nothing in the scheduler's
    log), so that a failure leaves no half-started Client behind (its clean-up would hang the exit). Dask retries a
    refused connection until its timeout: after a short first try, a plain TCP connect tells a refused port or an
    unknown host at once, while a slow but reachable scheduler still gets the whole timeout."""
    distributed = import_distributed()
    deadline = time.monotonic() + timeout
    problem = _probe(address, min(QUICK_CONNECT, timeout))
    if problem is not None and problem[0] == "unreachable":
        refused = _refused(address, max(0.5, deadline - time.monotonic()))
        if refused is not None:
            problem = ("unreachable", refused)
        elif deadline - time.monotonic() > 0:
            problem = _probe(address, deadline - time.monotonic())
    if problem is None:
        try:
            return distributed.Client(
                address, timeout=max(QUICK_CONNECT, deadline - time.monotonic()), set_as_default=False, name="nbflow"
            )  # "Client-nbflow-..." in the logs
        except Exception as exc:
            problem = ("unreachable", f"{type(exc).__name__}: {exc}")
    kind, detail = problem
    if kind == "address":
        message = f"{address!r} is not a Dask scheduler address ({detail}); give one like tcp://HOST:8786"
    elif kind == "protocol":
        message = (
            f"something answers at {address}, but not as a Dask scheduler ({detail}); check the port (the "
            "scheduler's is 8786 unless it was started with --port)"
        )
    else:
        message = f"cannot reach the Dask scheduler at {address} ({detail})"
    raise UsageError(f"{message}. Nothing ran. {HELP}.")


def _probe(address: str, timeout: float) -> tuple[str, str] | None:
    """None when a Dask server at `address` completes a handshake in time, else (kind, detail)."""
    import asyncio

    from distributed.comm.core import connect as open_comm
    from distributed.security import Security

    async def handshake() -> None:
        comm = await open_comm(address, timeout=timeout, **Security().get_connection_args("client"))
        await comm.close()

    outcome: list[tuple[str, str] | None] = [("unreachable", f"no answer within {timeout:.0f} s")]

    def attempt() -> None:  # in a thread of its own: the caller may be inside a running event loop (Jupyter)
        try:
            asyncio.run(handshake())
            outcome[0] = None
        except ValueError as exc:  # raised while parsing the address, before any connection
            outcome[0] = ("address", str(exc))
        except OSError as exc:  # refused, timed out, unknown host: distributed says which
            outcome[0] = ("unreachable", str(exc))
        except Exception as exc:  # a server that is not a Dask scheduler sends what Dask cannot read
            outcome[0] = ("protocol", f"{type(exc).__name__}: {exc}")

    thread = threading.Thread(target=attempt, name="nbflow-dask-probe", daemon=True)
    thread.start()
    thread.join(timeout + 5)
    return outcome[0]


def _refused(address: str, timeout: float) -> str | None:
    """Why a TCP connection to the scheduler fails at once (refused, unknown host), or None."""
    import socket

    scheme, _, rest = address.rpartition("://")
    if scheme not in ("", "tcp", "tls"):
        return None
    host, _, port = rest.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            return None
    except (ConnectionRefusedError, socket.gaierror) as exc:
        return f"{type(exc).__name__}: {exc}"
    except (OSError, ValueError):
        return None
