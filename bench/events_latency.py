"""How soon the server pushes a change: the time from a task's state being written to the store (as a run does,
from another process than the server's) to its `task` event arriving on an open `GET /nbflow/api/events` stream.

    python bench/events_latency.py [--changes 40]

Starts a real Jupyter Server with the nbflow extension on a small project, opens the event stream as a browser's
EventSource does, records a running run, then flips one task's state `--changes` times, each time waiting for its
event. Prints the median, the 95th percentile and the worst, in milliseconds.
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
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = chain(Path(tmp) / "project", 3)
        server = Server(root)
        try:
            events: queue.Queue[tuple[float, dict]] = queue.Queue()
            threading.Thread(target=follow, args=(server, events), daemon=True).start()
            time.sleep(1.0)  # the stream is open and followed
            with closing(open_store(root / ".nbflow")) as store:
                store.create_run("bench-run", "bench", {}, [], [TaskRun("t00")])
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
                store.finish_run("bench-run", RunState.SUCCEEDED)
        finally:
            server.stop()
    latencies.sort()
    p95 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.95))]
    print(
        f"store write -> pushed event, {len(latencies)} changes: median {statistics.median(latencies):.0f} ms, "
        f"95th percentile {p95:.0f} ms, worst {latencies[-1]:.0f} ms"
    )


if __name__ == "__main__":
    main()
