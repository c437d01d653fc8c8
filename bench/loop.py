"""The run loop's own cost per task, flat from 100 to 1,000 tasks: chains of trivial tasks run by the real loop and
store on the scripted executor of the unit tests (no kernel starts, so what is left is scheduling, judging and
recording). Run: `python bench/loop.py` (projects on /dev/shm where there is one)."""

from __future__ import annotations

import resource
import sys
import tempfile
import time
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1] / "tests"
sys.path[:0] = [str(TESTS), str(TESTS / "unit")]

from conftest import write_notebook  # noqa: E402
from fakes import FakeExecutor  # noqa: E402

import nbflow  # noqa: E402


def chain(length: int) -> Path:
    root = Path(
        tempfile.mkdtemp(prefix=f"nbflow-chain{length}-", dir="/dev/shm" if Path("/dev/shm").is_dir() else None)
    )
    (root / "nbflow.toml").write_text("")
    for i in range(length):
        inputs = f'inputs = ["d/{i - 1}.txt"]\n' if i else ""
        write_notebook(root / f"t{i:04d}.ipynb", f'{inputs}outputs = ["d/{i}.txt"]', "pass")
    return root


def main() -> None:
    per_task = {}
    for length in (100, 1000):
        pipe = nbflow.load(chain(length))
        start = time.perf_counter()
        run = pipe.run(executor=FakeExecutor(2), workers=2)
        took = time.perf_counter() - start
        assert run.state == "succeeded", run.state
        per_task[length] = took / length
        print(f"chain of {length}: {took:.2f} s, {1000 * per_task[length]:.2f} ms a task")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"1,000 / 100: {per_task[1000] / per_task[100]:.2f}x; peak RSS {peak:.0f} MiB")


if __name__ == "__main__":
    main()
