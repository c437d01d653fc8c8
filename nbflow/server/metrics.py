"""The served project's Prometheus metrics (`GET /nbflow/metrics`) and health (`GET /nbflow/api/health`), read from
its store at each request through `nbflow.metrics`, with a registry of this server's own."""

from __future__ import annotations

from pathlib import Path

from prometheus_client.exposition import choose_encoder

from nbflow.metrics import StoreCollector, health, project_registry, unreadable
from nbflow.server.errors import error_body
from nbflow.server.paths import ServedProject
from nbflow.server.schedules import HostedScheduler
from nbflow.shapes import Health


class Metrics:
    def __init__(self, served: ServedProject, hosted: HostedScheduler):
        self.served = served
        self.hosted = hosted
        self.collector = StoreCollector(self._store_dir)
        self.registry = project_registry(self.collector)

    def _store_dir(self) -> Path:
        return self.served.project().store_dir  # looked up each time: the project may be created or fixed meanwhile

    def exposition(self, accept: str | None) -> tuple[bytes, str]:
        """The metrics as text, in the format the scraper asks for (Prometheus text, or OpenMetrics), and its
        content type."""
        encoder, content_type = choose_encoder(accept or "")
        return encoder(self.registry), content_type

    def health(self) -> Health:
        try:
            store = self.collector.store()
        except Exception as exc:  # no project here, an invalid nbflow.toml, a damaged store: said in the answer
            return unreadable(error_body(exc)[1].message)
        try:
            answer = health(store)
        except Exception as exc:
            return unreadable(error_body(exc)[1].message)
        finally:
            store.close()  # this thread's connection
        scheduler = self.hosted.scheduler
        if answer.scheduler is not None and scheduler is not None and self.hosted.running:
            answer.scheduler.here = answer.scheduler.owner == scheduler.owner
        return answer
