"""Everything the API holds while it runs, built once in the app's lifespan."""

from __future__ import annotations

import gc
import logging
import threading
from dataclasses import dataclass, field
from typing import Any

import anyio
import pandas as pd

from api.audit import AuditWriter
from api.book import ResultsBook, load_book, results_fingerprint
from api.jobs import JobRunner
from api.metrics import Metrics
from api.security import KeyRing
from graph.dataset import Dataset
from graph.store import GraphStore
from riskgraph.errors import RiskGraphError
from riskgraph.results import ResultsDB
from riskgraph.settings import Settings
from rules.catalog import list_rules
from rules.pack import DEFAULT_PACK_DIR
from scoring.registry import ModelRegistry

log = logging.getLogger("riskgraph.api")


@dataclass
class AppState:
    settings: Settings
    db: ResultsDB
    registry: ModelRegistry
    store: GraphStore
    keyring: KeyRing
    audit: AuditWriter
    runner: JobRunner
    metrics: Metrics
    book: ResultsBook = field(default_factory=ResultsBook)
    rules: pd.DataFrame | None = None
    rules_error: RiskGraphError | None = None
    scheduler: Any = None
    store_lock: threading.Lock = field(default_factory=threading.Lock)
    reload_lock: threading.Lock = field(default_factory=threading.Lock)

    def load_results(self) -> None:
        """(Re)build the served results from the results DB and the store's snapshot."""
        with self.reload_lock:
            gc.unfreeze()  # the previous book's objects become collectable again once replaced
            book = load_book(db=self.db, settings=self.settings, dataset_of=self._dataset_or_none)
            self.book = book
            self.metrics.scores_loaded.set(len(book.credit))
            # The book's objects live until the next reload: keep them out of the cyclic garbage
            # collector, whose full passes over them stalled answers (the p99 in docs/benchmarks.md).
            gc.collect()
            gc.freeze()

    def load_rules(self) -> None:
        try:
            self.rules = list_rules(self.settings.rule_packs or DEFAULT_PACK_DIR)
            self.rules_error = None
        except RiskGraphError as exc:
            self.rules, self.rules_error = None, exc
            log.error("rule packs invalid: %s", exc.code)

    def reload_if_changed(self) -> bool:
        """Reload when another process (CLI job, pipeline) rewrote the results."""
        if results_fingerprint(self.db) == self.book.fingerprint:
            return False
        self.load_results()
        return True

    def _dataset_or_none(self, snapshot_id: str | None) -> Dataset | None:
        try:
            with self.store_lock:
                return self.store.dataset(snapshot_id)
        except RiskGraphError as exc:
            log.warning("store has no readable snapshot (%s); regions unavailable", exc.code)
            return None

    async def graph_call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """Run a blocking store call in a worker thread, one at a time."""

        def call() -> Any:
            with self.store_lock:
                return fn(*args, **kwargs)

        return await anyio.to_thread.run_sync(call)
