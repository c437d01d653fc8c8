"""How soon the server pushes a change: the time from a task's state being written to the store (as a run does,
from another process than the server's) to its `task` event arriving on an open `GET /nbflow/api/events` stream.

    python bench/events_latency.py [--changes 40] [--tasks 1000]

Starts a real Jupyter Server with the nbflow extension on a small project, opens the event stream as a browser's
EventSource does, records a running run of `--tasks` instances, then flips one task's state `--changes` times, each
time waiting for its event. Prints the median, the 95th percentile and the worst, in milliseconds, and the CPU time
the server spent per change (following a large run must not cost a core).
"""

from __future__ import annotations

import argparse
import http.client
import json
import queue
import statistics
import sys
import tempfile
import threading
import time
from contextlib import closing
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))

import psutil
from pipelines import chain
from server_pipeline import Server

from nbflow.models import RunState, TaskRun, TaskState
from nbflow.store import open_store


def follow(server: Server, events: queue.Queue[tuple[float, dict]]) -> None:
    """Read the stream for good, putting each `task` event with the moment it arrived."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=600)
    connection.request("GET", "/nbflow/api/events", headers={"Authorization": f"token {server.token}"})
    response = connection.getresponse()
    kind = ""
    for raw in response:
        line = raw.decode().rstrip("\n")
        if line.startswith("event: "):
            kind = line[7:]
        elif line.startswith("data: ") and kind == "task":
            events.put((time.perf_counter(), json.loads(line[6:])))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--changes", type=int, default=40)
    parser.add_argument("--tasks", type=int, default=1, help="instances in the running run (one of them changes)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = chain(Path(tmp) / "project", 3)
        server = Server(root)
        try:
            events: queue.Queue[tuple[float, dict]] = queue.Queue()
            threading.Thread(target=follow, args=(server, events), daemon=True).start()
            time.sleep(1.0)  # the stream is open and followed
            with closing(open_store(root / ".nbflow")) as store:
                tasks = [TaskRun("t00"), *(TaskRun(f"other{i:04d}") for i in range(args.tasks - 1))]
                store.create_run("bench-run", "bench", {}, [], tasks)
                time.sleep(0.5)  # its first events sent
                cpu = psutil.Process(server.process.pid)
                cpu_before = sum(cpu.cpu_times()[:2])
                latencies = []
                states = [TaskState.RUNNING, TaskState.SUCCEEDED]
                for i in range(args.changes):
                    state = states[i % 2]
                    time.sleep(0.1)
                    written = time.perf_counter()
                    store.update_task("bench-run", "t00", state=state)
                    while True:
                        arrived, event = events.get(timeout=30)
                        if event["task"]["name"] == "t00" and event["task"]["state"] == state:
                            break
                    latencies.append((arrived - written) * 1000)
                cpu_per_change = (sum(cpu.cpu_times()[:2]) - cpu_before) / args.changes
                store.finish_run("bench-run", RunState.SUCCEEDED)
        finally:
            server.stop()
    latencies.sort()
    p95 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.95))]
    print(
        f"store write -> pushed event, {len(latencies)} changes: median {statistics.median(latencies):.0f} ms, "
        f"95th percentile {p95:.0f} ms, worst {latencies[-1]:.0f} ms; a run of {args.tasks} instance(s): "
        f"{cpu_per_change * 1000:.0f} ms of server CPU per change"
    )


if __name__ == "__main__":
    main()
