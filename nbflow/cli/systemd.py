"""The systemd unit `nbflow scheduler --print-systemd` prints: the scheduler of one project as a service.

The unit runs this very nbflow (the command beside this Python, by absolute path, or `python -m nbflow`) on the
project's root, restarts it when it fails, and stops it the way it stops cleanly: SIGTERM to the scheduler alone
(`KillMode=mixed`: it cancels its runs and stops their kernels itself; a SIGTERM to the whole group at once would
kill the kernels under the runs), with time enough for that before systemd kills what is left.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

from nbflow.errors import UsageError

# The scheduler's stop waits up to 120 s for its cancelled runs to record themselves, 60 s for their watchers and
# 30 s for notices being sent (nbflow.scheduler's shutdown); systemd kills what is left after this.
STOP_SECONDS = 240
_PLAIN = re.compile(r"[A-Za-z0-9_./:=@+,-]+")


def nbflow_command() -> list[str]:
    """This nbflow, by absolute path: the `nbflow` script installed beside this Python, else `python -m nbflow`.
    The Python's own path is kept as it is (a virtualenv's python is a link; resolving it would leave the
    virtualenv)."""
    python = Path(os.path.abspath(sys.executable))
    script = python.with_name("nbflow")
    return [str(script)] if os.access(script, os.X_OK) else [str(python), "-m", "nbflow"]


def unit(root: Path, options: list[str]) -> str:
    """The unit file text for the scheduler of the project at `root`, with `options` added to its command."""
    root = Path(os.path.abspath(root))
    if "\n" in str(root) or "\r" in str(root):
        raise UsageError(f"{root!r}: a path with a line break cannot go in a systemd unit; move the project.")
    command = " ".join(_quote(arg) for arg in [*nbflow_command(), "scheduler", str(root), *options])
    name = re.sub(r"[^A-Za-z0-9_-]+", "-", root.name).strip("-") or "project"
    owner = _owner(root)
    return f"""\
# nbflow scheduler for {root}
# Save as /etc/systemd/system/nbflow-scheduler-{name}.service, then:
#   systemctl daemon-reload && systemctl enable --now nbflow-scheduler-{name}
# Its log (one line per firing and per finished run): journalctl -u nbflow-scheduler-{name}

[Unit]
Description=nbflow scheduler for {_specifiers(str(root))}
After=network-online.target
Wants=network-online.target

[Service]
Type=simple
ExecStart={command}
WorkingDirectory={_specifiers(str(root))}
# Run it as the user who owns the project (its files, its kernels' environment), not as root:
#User={owner}
Restart=on-failure
RestartSec=10
# SIGTERM to the scheduler only: it cancels the runs in flight (their kernels stopped, their tasks marked
# cancelled) and releases its lease; anything left is killed after TimeoutStopSec.
KillSignal=SIGTERM
KillMode=mixed
TimeoutStopSec={STOP_SECONDS}
SyslogIdentifier=nbflow-scheduler

[Install]
WantedBy=multi-user.target
"""


def _quote(arg: str) -> str:
    """One word of ExecStart: quoted as systemd reads quotes, its `%` specifiers and `$` variables escaped."""
    if not _PLAIN.fullmatch(arg):
        arg = '"' + arg.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return _specifiers(arg).replace("$", "$$")


def _specifiers(text: str) -> str:
    return text.replace("%", "%%")


def _owner(root: Path) -> str:
    try:
        import pwd

        return pwd.getpwuid(root.stat().st_uid).pw_name
    except (ImportError, KeyError, OSError):
        return "USER"
