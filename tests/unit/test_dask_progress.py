"""A Dask task's progress without a cluster: the worker's sender sends only what moved, at most a few times a
second; the runner's side keeps the newest progress of each running task and drops what is not (another attempt's,
an older message, a garbled one, anything after the task's end); a cluster that cannot subscribe costs nothing."""

from __future__ import annotations

import threading
import time
from typing import Any

from nbflow.models import CellProgress
from nbflow.run.dask_progress import DaskProgress, ProgressSender


class FakeClient:
    """What DaskProgress uses of a `distributed.Client`: the topic's handler, and the calls made at close."""

    def __init__(self, subscribes: bool = True):
        self.subscribes = subscribes
        self.handlers: dict[str, Any] = {}
        self.ran: list[tuple[Any, tuple[Any, ...]]] = []

    def subscribe_topic(self, topic: str, handler: Any) -> None:
        if not self.subscribes:
            raise OSError("no scheduler")
        self.handlers[topic] = handler

    def unsubscribe_topic(self, topic: str) -> None:
        del self.handlers[topic]

    def run_on_scheduler(self, function: Any, *args: Any) -> None:
        self.ran.append((function, args))

    def event(self, topic: str, message: Any) -> None:
        """The scheduler pushes an event, as the client's event loop would hand it on."""
        self.handlers[topic]((time.time(), message))


def message(key: str, seq: int, cell: int) -> dict[str, Any]:
    return {"key": key, "seq": seq, "progress": CellProgress(cell, 5, f"cell {cell}", ["out"]).to_json()}


def test_the_sender_sends_only_when_the_progress_moved():
    sent: list[dict[str, Any]] = []
    sender = ProgressSender("k", sent.append)
    current = [CellProgress(2, 5, "import time")]
    read = lambda: current[0]  # noqa: E731

    assert not sender.tick(read)  # nothing moved yet
    sender.moved()
    assert sender.tick(read) and sent[-1] == {"key": "k", "seq": 1, "progress": current[0].to_json()}
    assert not sender.tick(read)  # nothing since
    sender.moved()  # a hook fired, yet what it shows is the same: not sent again
    assert not sender.tick(read) and len(sent) == 1
    current[0] = CellProgress(3, 5, "time.sleep(1)", ["printed"])
    sender.moved()
    assert sender.tick(read) and sent[-1]["seq"] == 2 and sent[-1]["progress"]["tail"] == ["printed"]


def test_a_sender_that_cannot_send_loses_the_message_and_goes_on():
    def broken(_: dict[str, Any]) -> None:
        raise RuntimeError("the worker's loop is closed")

    def unreadable() -> CellProgress:
        raise ValueError("half-written")

    sender = ProgressSender("k", broken)
    sender.moved()
    assert not sender.tick(lambda: CellProgress(2, 5))
    sender.moved()
    assert not sender.tick(unreadable)


def test_thousands_of_changes_are_a_few_messages_a_second_ending_with_the_last():
    sent: list[dict[str, Any]] = []
    sender = ProgressSender("k", sent.append, every=0.05)
    current = [CellProgress(1, 10_000)]
    sender.start(lambda: current[0])
    started = time.monotonic()
    for cell in range(1, 10_001):
        current[0] = CellProgress(cell, 10_000)
        sender.moved()
        if cell % 1000 == 0:
            time.sleep(0.01)
    deadline = time.monotonic() + 10
    while not (sent and sent[-1]["progress"]["cell"] == 10_000) and time.monotonic() < deadline:
        time.sleep(0.01)  # the last change has its tick
    sender.stop()
    elapsed = time.monotonic() - started
    assert 1 <= len(sent) <= elapsed / 0.05 + 2
    assert sent[-1]["progress"]["cell"] == 10_000
    assert [m["seq"] for m in sent] == list(range(1, len(sent) + 1))


def test_the_runner_keeps_the_newest_progress_of_each_running_task():
    client = FakeClient()
    progress = DaskProgress(client, "nbflow-r1-progress")
    assert progress.topic == "nbflow-r1-progress"
    progress.expect("nbflow-r1-load-1", "load")
    progress.expect("nbflow-r1-clean-1", "clean")

    client.event(progress.topic, message("nbflow-r1-load-1", 1, 2))
    client.event(progress.topic, message("nbflow-r1-load-1", 3, 4))
    client.event(progress.topic, message("nbflow-r1-load-1", 2, 3))  # older than the one taken: dropped
    client.event(progress.topic, message("nbflow-other-load-1", 9, 5))  # not one of this run's tasks
    client.event(progress.topic, {"action": "add-client"})  # not a progress message at all
    client.event(progress.topic, "garbled")
    assert {task: p.cell for task, p in progress.moved().items()} == {"load": 4}
    assert progress.moved() == {}  # only what moved since the last call

    client.event(progress.topic, message("nbflow-r1-clean-1", 1, 3))
    progress.finished("nbflow-r1-clean-1", CellProgress(5, 5, "done"))  # the result's own, the last word
    client.event(progress.topic, message("nbflow-r1-clean-1", 2, 4))  # late: after the task's end
    assert {task: p.cell for task, p in progress.moved().items()} == {"clean": 5}

    progress.expect("nbflow-r1-clean-2", "clean")  # a retry starts its own count
    client.event(progress.topic, message("nbflow-r1-clean-2", 1, 2))
    assert progress.moved()["clean"].cell == 2


def test_closing_stops_listening_and_clears_the_topic_on_the_scheduler():
    client = FakeClient()
    progress = DaskProgress(client, "nbflow-r1-progress")
    progress.close()
    assert client.handlers == {} and progress.topic is None
    [(clear, args)] = client.ran
    truncated: list[str] = []

    class Broker:
        def truncate(self, topic: str) -> None:
            truncated.append(topic)

    class Scheduler:
        _broker = Broker()

    clear(*args, dask_scheduler=Scheduler())
    assert truncated == ["nbflow-r1-progress"]
    clear(*args, dask_scheduler=object())  # a scheduler without a broker: nothing to clear
    progress.close()  # twice is fine
    assert len(client.ran) == 1


def test_a_cluster_that_cannot_subscribe_gives_no_progress_and_no_error():
    client = FakeClient(subscribes=False)
    progress = DaskProgress(client, "nbflow-r1-progress")
    assert progress.topic is None  # so the tasks are told to send nothing
    progress.expect("k", "load")
    progress.finished("k", CellProgress(3, 3))
    assert progress.moved()["load"].cell == 3  # the result's progress still counts
    progress.close()
    assert client.ran == []


def test_the_hooks_and_the_runner_may_race():
    """Messages arrive on the client's loop while the recorder takes them: none is half-taken."""
    client = FakeClient()
    progress = DaskProgress(client, "t")
    progress.expect("k", "load")
    seen: list[int] = []
    done = threading.Event()

    def take() -> None:
        while not done.is_set():
            seen.extend(p.cell for p in progress.moved().values())

    taker = threading.Thread(target=take)
    taker.start()
    for seq in range(1, 2001):
        client.event("t", message("k", seq, seq))
    done.set()
    taker.join()
    seen.extend(p.cell for p in progress.moved().values())
    assert seen == sorted(seen) and seen[-1] == 2000
