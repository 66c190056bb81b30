"""One local[2] Spark session for every Spark test of a run (a session takes ~20 s to start)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from composer.engines.spark import SparkEngine
from composer.engines.spark_session import graphframes_jars, spark_session
from riskgraph.settings import SparkSettings

TEST_SPARK = SparkSettings(master="local[2]", driver_memory="1g", shuffle_partitions=4)


@pytest.fixture(scope="session")
def spark_engine() -> Iterator[SparkEngine]:
    jars = graphframes_jars()
    engine = SparkEngine(spark_session(TEST_SPARK, jars, app="riskgraph-tests"), TEST_SPARK, jars)
    yield engine
    engine.close()
