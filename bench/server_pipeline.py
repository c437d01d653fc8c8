"""How fast the server answers `GET /nbflow/api/pipeline` for a 1,000-task chain: cold (the first request) and warm.

    python bench/server_pipeline.py [--tasks 1000] [--repeat 20] [--mode server|service] [--never-run]

`--mode server` (the default) starts a real Jupyter Server with the nbflow extension in a fresh process and times
HTTP requests, as the panel makes them (including the answer's JSON and HTTP); `--mode service` times
`NbflowService.runs.pipeline()` and the JSON encoding in this process. Every task is recorded as having succeeded
(its output written and its fingerprint stored, as a run would) so that every status goes through the staleness
judgement, the costly case; `--never-run` leaves the store empty. Prints the cold time, the median of the warm
ones, and the median of warm requests that send back the ETag they were given (304, no body).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
# this checkout's nbflow, which the server process started from here imports too (not another installed copy)
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))

from pipelines import chain

from nbflow import fingerprint, graph
from nbflow.store import open_store

REPO = Path(__file__).resolve().parent.parent


def record_successes(folder: Path) -> None:
    """Each task's output written and its success stored with the fingerprint a run would store."""
    pipeline = graph.load(folder)
    relative = pipeline.project.relative
    with closing(open_store(pipeline.project.store_dir)) as store:
        for task in pipeline.tasks.values():
            for path in task.output_paths:
                os.makedirs(os.path.dirname(path), exist_ok=True)
                Path(path).write_text(task.name)
            verdict = fingerprint.judge(task, store, relative)
            recorded = {**verdict.fingerprint, "outputs": fingerprint.output_hashes(task, store, relative)}
            store.record_success(task.base, "bench", recorded)


def free_port() -> int:
    with closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """A Jupyter Server serving `root`, in a process of its own."""

    def __init__(self, root: Path):
        self.port, self.token = free_port(), secrets.token_hex(16)
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "jupyter_server",
                "--no-browser",
                "--allow-root",
                f"--port={self.port}",
                f"--ServerApp.root_dir={root}",
                f"--IdentityProvider.token={self.token}",
                "--ServerApp.jpserver_extensions={'nbflow.server': True}",
            ],
            cwd=REPO,  # `python -m` puts the working folder first: this checkout's nbflow
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                self.get("/api/status")
                break
            except OSError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise RuntimeError("the Jupyter server did not start") from None
                time.sleep(0.2)

    def get(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, bytes, str | None]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        try:
            connection.request("GET", path, headers={"Authorization": f"token {self.token}", **(headers or {})})
            response = connection.getresponse()
            return response.status, response.read(), response.getheader("ETag")
        finally:
            connection.close()

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(30)


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--mode", choices=["server", "service"], default="server")
    parser.add_argument("--never-run", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        chain(root / "project", args.tasks)
        if not args.never_run:
            record_successes(root / "project")
        # a file written less than a second ago may change again within its mtime's resolution unnoticed, so the
        # cache does not trust it yet: wait as a user would between saving and looking
        time.sleep(1.2)
        os.environ.setdefault("JUPYTER_PLATFORM_DIRS", "1")
        results: dict[str, object] = {"tasks": args.tasks, "mode": args.mode, "statuses_judged": not args.never_run}
        if args.mode == "server":
            server = Server(root / "project")
            try:
                answers: list[tuple[int, bytes, str | None]] = []
                path = "/nbflow/api/pipeline"
                results["cold_s"] = timed(lambda: answers.append(server.get(path)))
                status, body, etag = answers[-1]
                assert status == 200, body[:500]
                count = len(json.loads(body)["tasks"])
                time.sleep(1.2)  # the first answer wrote the store (file hashes): let that settle, as above
                warm = [timed(lambda: answers.append(server.get(path))) for _ in range(args.repeat)]
                etag = answers[-1][2]
                assert all(a[0] == 200 for a in answers), "a warm request failed"
                conditional = [
                    timed(lambda: answers.append(server.get(path, {"If-None-Match": etag or ""})))
                    for _ in range(args.repeat)
                ]
                results["not_modified"] = answers[-1][0] == 304
            finally:
                server.stop()
        else:
            from nbflow.server.service import NbflowService

            service = NbflowService(root, "project")

            bodies: list[bytes] = []

            def once() -> None:
                bodies.append(service.runs.pipeline().model_dump_json(by_alias=True).encode())

            results["cold_s"] = timed(once)
            count = len(json.loads(bodies[-1])["tasks"])
            time.sleep(1.2)
            warm = [timed(once) for _ in range(args.repeat)]
            conditional: list[float] = []
        results["answer_tasks"] = count
        results["warm_median_s"] = statistics.median(warm)
        results["warm_min_s"], results["warm_max_s"] = min(warm), max(warm)
        if conditional:
            results["conditional_median_s"] = statistics.median(conditional)
    for key, value in results.items():
        print(f"{key:>22}: {value:.4f}" if isinstance(value, float) else f"{key:>22}: {value}")


if __name__ == "__main__":
    main()
