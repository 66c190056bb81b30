"""Everything the API holds while it runs, built once in the app's lifespan."""

from __future__ import annotations

import asyncio
import gc
import logging
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from api.audit import AuditWriter
from api.book import ResultsBook, load_book, results_fingerprint
from api.credit_policy import policies_changed
from api.jobs import JobRunner
from api.metrics import Metrics
from api.security import KeyRing, Tokens, current_principal
from composer.monitoring import saved_monitoring
from graph.dataset import Dataset
from graph.store import GraphStore
from riskgraph.errors import RiskGraphError
from riskgraph.results import ResultsDB
from riskgraph.settings import Settings
from rules.catalog import list_rules
from rules.pack import DEFAULT_PACK_DIR
from scoring.registry import ModelRegistry

log = logging.getLogger("riskgraph.api")


class GraphTimeout(RiskGraphError):
    status_code = 504
    code = "graph_timeout"


class ReadWriteLock:
    """Many graph reads at once, or one writer (a reload that may swap the store's cached snapshot)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._writing = False
        self._waiting_writers = 0

    @contextmanager
    def read(self) -> Iterator[None]:
        with self._cond:
            while self._writing or self._waiting_writers:
                self._cond.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                self._cond.notify_all()

    @contextmanager
    def write(self) -> Iterator[None]:
        with self._cond:
            self._waiting_writers += 1
            while self._writing or self._readers:
                self._cond.wait()
            self._waiting_writers -= 1
            self._writing = True
        try:
            yield
        finally:
            with self._cond:
                self._writing = False
                self._cond.notify_all()


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
    tokens: Tokens
    book: ResultsBook = field(default_factory=ResultsBook)
    rules: pd.DataFrame | None = None
    rules_error: RiskGraphError | None = None
    scheduler: Any = None
    store_lock: ReadWriteLock = field(default_factory=ReadWriteLock)
    reload_lock: threading.Lock = field(default_factory=threading.Lock)
    _regions_book: ResultsBook | None = None
    _regions: dict[tuple[str, str], str] = field(default_factory=dict)
    _graph_pool: ThreadPoolExecutor | None = None
    _graph_slots: dict[str, asyncio.Semaphore] = field(default_factory=dict)

    def load_results(self) -> None:
        """(Re)build the served results from the results DB and the store's snapshot."""
        with self.reload_lock:
            gc.unfreeze()  # the previous book's objects become collectable again once replaced
            book = load_book(db=self.db, settings=self.settings, dataset_of=self._dataset_or_none)
            self.book = book
            self._warm_graph()
            self.metrics.scores_loaded.set(len(book.credit))
            self.metrics.set_drift(saved_monitoring(self.settings, book.run_id))
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
            policies = policies_changed(self.book.credit.policies, self.db)  # a version added elsewhere
            if policies is not None:
                self.book.credit.policies = policies
            return False
        self.load_results()
        return True

    def _dataset_or_none(self, snapshot_id: str | None) -> Dataset | None:
        try:
            with self.store_lock.write():
                return self.store.dataset(snapshot_id)
        except RiskGraphError as exc:
            log.warning("store has no readable snapshot (%s); regions unavailable", exc.code)
            return None

    def _pool(self) -> ThreadPoolExecutor:
        if self._graph_pool is None:
            self._graph_pool = ThreadPoolExecutor(max(1, self.settings.api_graph_threads), thread_name_prefix="graph")
        return self._graph_pool

    def _warm_graph(self) -> None:
        """Have the store build what graph reads need (the memory store's projection: about 10 s
        at 1M persons) in the graph pool now, rather than in the first investigator's query,
        which would wait for it past the graph timeout."""

        def warm() -> None:
            try:
                with self.store_lock.read():
                    self.store.warm()
            except Exception:  # the queries themselves will report what is wrong with the store
                log.warning("the graph store could not be prepared for queries", exc_info=True)

        self._pool().submit(warm)

    def close_graph_pool(self) -> None:
        if self._graph_pool is not None:
            self._graph_pool.shutdown(wait=False, cancel_futures=True)
            self._graph_pool = None

    def region_of(self, entity_type: str, entity_id: str) -> str | None:
        """The region of a scored entity (None: no region, or not scored), from the served book's
        risk frames; the lookup table is built once per book, on the first scoped request."""
        book = self.book
        if self._regions_book is not book:
            regions: dict[tuple[str, str], str] = {}
            for t, frame in book.risk.items():
                if "region" in frame:
                    for i, r in zip(frame["entity_id"].tolist(), frame["region"].tolist()):
                        if isinstance(r, str) and r:
                            regions[(t, str(i))] = r
            self._regions, self._regions_book = regions, book
        return self._regions.get((entity_type, entity_id))

    async def graph_call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """Run a blocking store call in a worker thread, within `api_graph_timeout_s` (else 504).

        Reads run side by side (at most `api_graph_threads` at once), at most `api_graph_per_key`
        of them for one key (its further calls wait for a slot, within the same timeout), so no key's
        heavy queries hold up another key's. A call that times out is abandoned; its thread keeps its
        key's slot until it ends, so a key cannot pile up abandoned work."""
        settings = self.settings
        pool = self._pool()
        principal = current_principal.get()
        slot_key = principal.key_id if principal is not None else ""
        slot = self._graph_slots.get(slot_key)
        if slot is None:
            slot = self._graph_slots[slot_key] = asyncio.Semaphore(max(1, settings.api_graph_per_key))
        loop = asyncio.get_running_loop()
        timeout = settings.api_graph_timeout_s
        deadline = loop.time() + timeout
        try:
            async with asyncio.timeout_at(deadline):
                await slot.acquire()
        except TimeoutError:
            raise GraphTimeout(
                f"graph query not started within {timeout:g} s: this key already runs "
                f"{settings.api_graph_per_key} graph queries; try again when they end"
            ) from None

        def call() -> Any:
            with self.store_lock.read():
                return fn(*args, **kwargs)

        future = loop.run_in_executor(pool, call)

        def done(f: asyncio.Future[Any]) -> None:  # when the work ends, answered or abandoned
            slot.release()
            if not f.cancelled():
                f.exception()  # retrieved: an abandoned call's error is not logged as unhandled

        future.add_done_callback(done)
        try:
            async with asyncio.timeout_at(deadline):
                return await asyncio.shield(future)
        except TimeoutError:
            raise GraphTimeout(
                f"graph query took longer than {timeout:g} s: ask for fewer hops or a lower limit"
            ) from None
