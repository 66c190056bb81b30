"""`make test`'s two workers (tests/work_units.py): a small suite run with `-n 2 --dist loadgroup`
and this project's hooks keeps every Neo4j module on one worker, every Spark module on one worker,
and each other module whole."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

CONFTEST = """
import json, os
import pytest
from tests.conftest import (
    pytest_collection_modifyitems, pytest_configure_node, pytest_unconfigure, pytest_xdist_make_scheduler,
)

def pytest_configure(config):
    for m in ("neo4j", "spark"):
        config.addinivalue_line("markers", m)

@pytest.fixture
def neo4j_url():
    return "bolt://unused"

@pytest.fixture(autouse=True)
def record(request):
    with open(os.environ["WHERE"], "a") as f:
        f.write(json.dumps([request.node.nodeid, os.environ.get("PYTEST_XDIST_WORKER")]) + "\\n")
"""


def test_shared_servers_and_modules_stay_on_one_worker(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    where = pytester.path / "where.jsonl"
    monkeypatch.setenv("WHERE", str(where))
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    pytester.makeconftest(CONFTEST)
    many = "\n".join(f"def test_{i}():\n    pass\n" for i in range(12))
    pytester.makepyfile(
        test_n1="import pytest\n@pytest.mark.neo4j\ndef test_a():\n    pass\n" + many,
        test_n2="def test_b(neo4j_url):\n    pass\n" + many,  # by its fixture alone
        test_s1="import pytest\npytestmark = pytest.mark.spark\n" + many,
        test_s2="import pytest\npytestmark = pytest.mark.spark\n" + many,
        test_p1=many,
        test_p2=many,
        test_p3=many,
    )
    result = pytester.runpytest_subprocess("-n", "2", "--dist", "loadgroup", "-p", "xdist", "-q")
    result.assert_outcomes(passed=2 + 12 * 7)
    ran = [json.loads(line) for line in where.read_text().splitlines()]
    workers: dict[str, set[str]] = defaultdict(set)
    for nodeid, worker in ran:
        workers[nodeid.split("::")[0]].add(worker)
    assert all(len(w) == 1 for w in workers.values()), workers
    assert workers["test_n1.py"] == workers["test_n2.py"]
    assert workers["test_s1.py"] == workers["test_s2.py"]
    assert {w for ws in workers.values() for w in ws} == {"gw0", "gw1"}
