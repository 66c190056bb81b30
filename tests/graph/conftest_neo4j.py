"""Fixtures for tests against the real Neo4j server (imported by tests/conftest.py).

The server is started outside the tests (`riskgraph neo4j start`, as CI does); the URL is
bolt://127.0.0.1:7687 unless RISKGRAPH_TEST_NEO4J_URL says otherwise.
"""
from __future__ import annotations

import os
from collections.abc import Iterator

import pandas as pd
import pytest

DEFAULT_TEST_NEO4J_URL = "bolt://127.0.0.1:7687"


def small_frames() -> dict[str, pd.DataFrame]:
    """Every table, with missing values, parallel rows, extra columns and unsorted input."""
    return {
        "persons": pd.DataFrame({
            "person_id": ["p3", "p1", "p2", "p4"], "name": ["A", "B", "C", "D"],
            "birth_date": ["1990-01-02", None, "1980-05-05", "1970-01-01"],
            "phone": ["111", None, "111", "222"], "bank_account": ["b1", "b1", None, None],
            "score": ["1.5", "2", None, "3"], "segment": ["x", None, "y", "x"]}),
        "employers": pd.DataFrame({"employer_id": ["e1", "e2"], "phone": ["222", None],
                                   "industry": ["retail", "care"]}),
        "clinics": pd.DataFrame({"clinic_id": ["c1"], "beds": ["10"]}),
        "pharmacies": pd.DataFrame({"pharmacy_id": ["h1"]}),
        "agencies": pd.DataFrame({"agency_id": ["a1"]}),
        "employment": pd.DataFrame({
            "person_id": ["p1", "p2", "p1"], "employer_id": ["e1", "e1", "e1"],
            "start_date": ["2020-01-01", "2021-01-01", None], "agency_id": ["a1", None, None],
            "monthly_wage": ["100", "200", "300"]}),
        "contributions": pd.DataFrame({"employer_id": ["e1", "e1"], "person_id": ["p1", "p1"],
                                       "month": ["2024-02", "2024-01"], "paid": ["1", "2"]}),
        "benefits": pd.DataFrame({"person_id": ["p1", "p1", "p2"], "month": ["2024-01", "2024-01", "2024-03"],
                                  "benefit_type": ["x", "x", "y"], "amount": ["1", "1", "5"]}),
        "visits": pd.DataFrame({"visit_id": ["v2", "v1"], "person_id": ["p1", "p3"], "clinic_id": ["c1", "c1"],
                                "date": ["2024-01-01", "2024-02-02"]}),
        "purchases": pd.DataFrame({"purchase_id": ["u1"], "person_id": ["p4"], "pharmacy_id": ["h1"],
                                   "clinic_id": ["c1"]}),
        "agency_links": pd.DataFrame({"agency_id": ["a1", "a1"], "entity_type": ["employer", "person"],
                                      "entity_id": ["e2", "p4"]}),
        "labels": pd.DataFrame({"entity_type": ["person", "employer"], "entity_id": ["p1", "e1"],
                                "label": ["1", "0"]}),
    }


@pytest.fixture(scope="session")
def neo4j_url() -> str:
    """The test server's Bolt URL; fails (never skips) when no server answers there."""
    from neo4j import GraphDatabase
    from neo4j.exceptions import DriverError, Neo4jError

    url = os.environ.get("RISKGRAPH_TEST_NEO4J_URL", DEFAULT_TEST_NEO4J_URL)
    try:
        with GraphDatabase.driver(url, auth=None, connection_timeout=5.0) as driver:
            driver.verify_connectivity()
    except (DriverError, Neo4jError, OSError) as exc:
        pytest.fail(f"no Neo4j server answers at {url} ({exc}); start one with `riskgraph neo4j start` "
                    "or point RISKGRAPH_TEST_NEO4J_URL at one (auth disabled)", pytrace=False)
    return url


@pytest.fixture
def neo4j_store(neo4j_url: str) -> Iterator["Neo4jGraphStore"]:  # noqa: F821
    """A store on the test server (the server holds one snapshot at a time, shared by tests)."""
    from graph.neo4j_store import Neo4jGraphStore

    store = Neo4jGraphStore(neo4j_url)
    yield store
    store.close()
