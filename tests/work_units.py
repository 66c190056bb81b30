"""Work units for the suite on two pytest-xdist workers (`make test` runs `pytest -n 2 --dist loadgroup`).

A test module runs whole on one worker, so its module fixtures are built once. Every module that
uses the shared Neo4j database runs on one worker, one after another, since each of its tests
empties that database; so does every Spark module (one local[2] session, about 20 s to start).

xdist 3.8 names a test's `xdist_group` by rewriting `item._nodeid`, which pytest 9 no longer reads,
so the groups travel another way: each worker writes the module -> unit map of what it collected
into a file the controller named (tests/conftest.py), and the controller's scheduler reads it when
it cuts the collection into units, which happens once every worker has collected.

The units are handed out largest first (by number of tests), as xdist's loadscope does.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

KEY = "riskgraph_work_units"  # the file's path, in each worker's workerinput
NEO4J_FIXTURES = {"neo4j_url", "neo4j_store", "keyed_neo4j_store", "no_lease"}


def module_of(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


def units(items: Iterable[pytest.Item]) -> dict[str, str]:
    """The work unit of each module: 'neo4j', 'spark', or the module itself."""
    out: dict[str, str] = {}
    for item in items:
        module = module_of(item.nodeid)
        if item.get_closest_marker("spark"):
            out[module] = "spark"
        elif item.get_closest_marker("neo4j") or NEO4J_FIXTURES & set(getattr(item, "fixturenames", ())):
            if out.get(module) != "spark":
                out[module] = "neo4j"
        else:
            out.setdefault(module, module)
    return out


def write(path: Path, mapping: dict[str, str]) -> None:
    """Atomically (both workers write the same map)."""
    part = path.with_name(f"{path.name}.{os.getpid()}")
    part.write_text(json.dumps(mapping, sort_keys=True))
    part.replace(path)


def scheduler(config: pytest.Config, log: Any, path: Path) -> Any:
    """A LoadScopeScheduling whose scope of a test is its module's work unit."""
    from xdist.scheduler import LoadScopeScheduling

    class ModuleUnits(LoadScopeScheduling):  # type: ignore[misc]
        mapping: dict[str, str] | None = None

        def _split_scope(self, nodeid: str) -> str:
            if self.mapping is None:
                if not path.exists():
                    raise RuntimeError(f"tests/work_units.py: no worker wrote its work units to {path}")
                self.mapping = json.loads(path.read_text())
            module = module_of(nodeid)
            return self.mapping.get(module, module)

    return ModuleUnits(config, log)
