"""Resolution speed: discover and resolve generated pipelines of 1,000 / 2,000 / 5,000 notebooks.

    python bench/resolve.py [--sizes 1000,2000,5000] [--repeat 5]

Prints the median wall time of `nbflow.load` (in-process, after one warm-up) and of the `nbflow graph` command
(a fresh process, as a user pays it), and the ratio between sizes, which should stay near linear.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from pipelines import large

import nbflow


def median_time(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000,2000,5000")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in sizes:
            folder = large(Path(tmp) / f"n{size}", size)
            nbflow.load(folder)  # warm the file cache
            in_process = median_time(lambda folder=folder: nbflow.load(folder), args.repeat)
            command = median_time(
                lambda folder=folder: subprocess.run(
                    [sys.executable, "-m", "nbflow", "graph", str(folder), "--format", "json"],
                    check=True,
                    capture_output=True,
                ),
                args.repeat,
            )
            edges = nbflow.load(folder).graph.number_of_edges()
            rows.append((size, edges, in_process, command))
    base = rows[0]
    print(f"{'notebooks':>9} {'edges':>6} {'load() s':>9} {'graph cmd s':>11} {'x vs ' + str(base[0]):>10}")
    for size, edges, in_process, command in rows:
        print(f"{size:>9} {edges:>6} {in_process:>9.3f} {command:>11.3f} {in_process / base[2]:>10.2f}")


if __name__ == "__main__":
    main()
