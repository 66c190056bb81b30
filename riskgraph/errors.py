"""Domain errors. Each carries the HTTP status it maps to; the API maps them to JSON in one place."""

from __future__ import annotations

from dataclasses import dataclass


class RiskGraphError(Exception):
    """Base class of every error the product reports to a user."""

    status_code = 500
    code = "internal_error"


@dataclass(frozen=True)
class Problem:
    """One validation problem, located as precisely as the input allows."""

    file: str
    message: str
    row: int | None = None  # 1-based data row (CSV line = row + 1)
    column: str | None = None

    def __str__(self) -> str:
        where = self.file
        if self.row is not None:
            where += f" row {self.row}"
        if self.column is not None:
            where += f" column '{self.column}'"
        return f"{where}: {self.message}"


class InvalidDataset(RiskGraphError):
    """The dataset folder breaks the input contract; nothing was loaded."""

    status_code = 422
    code = "invalid_dataset"

    def __init__(self, problems: list[Problem], total: int | None = None) -> None:
        self.problems = problems
        self.total = total if total is not None else len(problems)
        lines = [str(p) for p in problems]
        more = self.total - len(problems)
        if more > 0:
            lines.append(f"... and {more} more problems")
        super().__init__("invalid dataset, nothing was loaded:\n  " + "\n  ".join(lines))


class InvalidRulePack(RiskGraphError):
    status_code = 422
    code = "invalid_rule_pack"


class EntityNotFound(RiskGraphError):
    status_code = 404
    code = "entity_not_found"


class ModelNotFound(RiskGraphError):
    status_code = 404
    code = "model_not_found"


class NoSnapshot(RiskGraphError):
    """The store holds no loaded dataset yet."""

    status_code = 503
    code = "no_snapshot"


class StoreUnavailable(RiskGraphError):
    """The graph store cannot be reached or refused the credentials."""

    status_code = 503
    code = "store_unavailable"


class InvalidStoreUrl(RiskGraphError):
    status_code = 400
    code = "invalid_store_url"


class NotFitted(RiskGraphError):
    """A model was used before `fit`."""

    code = "not_fitted"


class Neo4jServerError(RiskGraphError):
    """The local development Neo4j server (`riskgraph neo4j start`) could not be run."""

    status_code = 503
    code = "neo4j_server_error"


class JavaNotFound(Neo4jServerError):
    """No `java` (17+) or `mvn` on PATH, so the local Neo4j server cannot be built or run."""

    code = "java_not_found"


class Neo4jPortInUse(Neo4jServerError):
    """Another process already listens on the requested Bolt port."""

    code = "neo4j_port_in_use"


class Neo4jStartFailed(Neo4jServerError):
    """Building the classpath failed, or the server process exited during start."""

    code = "neo4j_start_failed"


class Neo4jStartTimeout(Neo4jServerError):
    """The server did not answer on Bolt within the start timeout."""

    code = "neo4j_start_timeout"


class StoreLoadFailed(RiskGraphError):
    """The graph store rejected a load; the previous snapshot is still the current one."""

    status_code = 500
    code = "store_load_failed"


class StoreBusy(RiskGraphError):
    """Another run holds the store's (or home's) write lease."""

    status_code = 409
    code = "store_busy"


class RunLocked(RiskGraphError):
    """Another run holds the home (or the store, or the results database)."""

    status_code = 409
    code = "run_locked"


class PreflightFailed(RiskGraphError):
    """The run cannot start: an output or home folder is not writable or too full."""

    status_code = 507
    code = "preflight_failed"


class RunNotFound(RiskGraphError):
    """No such run, or it is no longer retained."""

    status_code = 404
    code = "run_not_found"


class EngineRefused(RiskGraphError):
    """The configured stage engine cannot be used safely as it is (e.g. a Spark Connect server
    that does not encrypt its spill files)."""

    status_code = 503
    code = "engine_refused"
