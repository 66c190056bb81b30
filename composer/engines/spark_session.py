"""The Spark session of the Spark engine, and the GraphFrames jars it adds to PySpark's own.

PySpark (pinned in requirements.txt) brings Spark's jars; GraphFrames' JVM package
(io.graphframes:graphframes-spark4_2.13) is fetched once with Maven into
composer/engines/spark_jars/lib (gitignored), re-fetched only when the pom changes, as Neo4j's
classpath is (graph/neo4j_server.py). Where Maven cannot resolve it, the session starts without
it and the engine's components run as DataFrame label propagation instead: `jars_status` says
which, and the run's manifest records it.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from riskgraph.errors import EngineRefused
from riskgraph.settings import SparkSettings

log = logging.getLogger("composer.engines.spark")
JARS_DIR = Path(__file__).parent / "spark_jars"
LIB_DIR = JARS_DIR / "lib"
STAMP = LIB_DIR / ".pom-digest"
FAILED = JARS_DIR / ".failed-pom-digest"  # a resolution that failed: not retried until the pom changes


# The driver's arrays (event codes, edges, feature rows) go to Spark as Arrow batches in an RDD,
# never as a LocalRelation: below this threshold (48 MB by default) createDataFrame makes a
# LocalRelation, and the optimizer then evaluates every filter and projection over it on the
# driver (ConvertToLocalRelation: new boxed rows for each derived DataFrame, kept by its query's
# plans). At 100k persons those copies filled the 2g heap and the entity aggregates failed with
# AGGREGATE_OUT_OF_MEMORY (docs/scale.md, "Driver memory").
NO_LOCAL_RELATIONS = {"spark.sql.execution.arrow.localRelationThreshold": "0"}


@dataclass(frozen=True)
class Jars:
    paths: tuple[str, ...]
    status: str  # "graphframes <jar>" or why there are none


def _digest() -> str:
    return hashlib.sha256((JARS_DIR / "pom.xml").read_bytes()).hexdigest()[:16]


def graphframes_jars() -> Jars:
    """The GraphFrames jars, fetched with Maven on first use and cached."""
    digest = _digest()
    if STAMP.exists() and STAMP.read_text().strip() == digest:
        jars = tuple(sorted(str(p) for p in LIB_DIR.glob("*.jar")))
        return Jars(jars, "graphframes " + ", ".join(Path(j).name for j in jars if "graphframes" in j))
    if FAILED.exists() and FAILED.read_text().splitlines()[0].strip() == digest:
        return Jars((), FAILED.read_text().split("\n", 1)[1].strip())
    mvn = shutil.which("mvn")
    if mvn is None:
        return Jars((), "graphframes jars not fetched: Maven (`mvn`) is not on PATH")
    shutil.rmtree(LIB_DIR, ignore_errors=True)
    proc = subprocess.run(
        [mvn, "-q", "-B", "package"], cwd=JARS_DIR, capture_output=True, text=True, stdin=subprocess.DEVNULL
    )
    if proc.returncode != 0:
        missing = re.search(r"(io\.graphframes:[\w.:-]+) was not found", proc.stdout + proc.stderr)
        detail = f"{missing.group(1)} not found" if missing else f"mvn exit {proc.returncode}"
        why = f"graphframes jars not resolved with Maven ({detail}); delete {FAILED.name} in {JARS_DIR} to retry"
        FAILED.write_text(f"{digest}\n{why}\n")
        log.warning("%s", why)
        return Jars((), why)
    STAMP.write_text(digest + "\n")
    return graphframes_jars()


def spark_context(session: Any) -> Any | None:
    """The session's SparkContext, or None under Spark Connect (sc://), which has none."""
    try:
        return session.sparkContext
    except Exception:  # PySparkAttributeError JVM_ATTRIBUTE_NOT_SUPPORTED
        return None


def spark_session(conf: SparkSettings, jars: Jars, app: str = "riskgraph") -> Any:
    """A session on the configured master: local[N], spark://host:port, or Spark Connect sc://."""
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.appName(app)
    if conf.master.startswith("sc://"):
        builder = builder.remote(conf.master)
    else:
        builder = builder.master(conf.master).config("spark.driver.memory", conf.driver_memory)
        # Python workers run this interpreter (its packages: numpy, leidenalg, lightgbm); PySpark
        # reads the worker's interpreter from the environment only
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        builder = builder.config("spark.pyspark.python", sys.executable)
        if jars.paths:
            builder = builder.config("spark.jars", ",".join(jars.paths))
    remote = conf.master.startswith("sc://")
    options = {  # a session's own settings: a Spark Connect client may set these
        "spark.sql.shuffle.partitions": str(conf.shuffle_partitions),
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.sql.execution.arrow.maxRecordsPerBatch": str(conf.batch_rows),
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.adaptive.enabled": "true",
        **NO_LOCAL_RELATIONS,
    }
    if not remote:  # the application's: set by whoever starts it (a Connect server's owner for sc://)
        options |= {
            "spark.default.parallelism": str(conf.shuffle_partitions),
            "spark.io.encryption.enabled": str(conf.io_encryption).lower(),
            "spark.ui.enabled": "false",
            "spark.ui.showConsoleProgress": "false",
        }
    for key, value in options.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    if remote:
        _require_encryption(session, conf)
    else:
        session.sparkContext.setLogLevel("ERROR")
        _children_leave_the_gateway_alone()
    return session


def _children_leave_the_gateway_alone() -> None:
    """Make py4j's connections survive a fork of this process (riskgraph/forked.py).

    In a forked child CPython clears the thread states of every other thread; py4j keeps each
    thread's connection to the JVM in a thread local whose finalizer closes it, and closing shuts
    the socket down, which the child shares with this process. So a fork made while the Spark
    reader's threads held connections shut those down under this process, and its next call on one
    failed with "Connection reset by peer" (Py4JError on `read`, now and then, in CI and at 1M).
    A connection is now shut down only by the process that opened it; a child only forgets it."""
    from py4j.clientserver import ClientServerConnection

    if getattr(ClientServerConnection.close, "_owner_only", False):
        return
    owner = os.getpid()
    close = ClientServerConnection.close

    def owner_only_close(self: Any, reset: bool = False) -> None:
        if os.getpid() != owner:  # a forked child: the socket is the parent's
            self.socket = self.stream = None
            return
        close(self, reset)

    owner_only_close._owner_only = True  # type: ignore[attr-defined]
    ClientServerConnection.close = owner_only_close


def _require_encryption(session: Any, conf: SparkSettings) -> None:
    """A Spark Connect server encrypts its shuffle and spill files only if it was started so; with
    `spark.io_encryption` on (the default) a server that does not is refused before any data is sent."""
    if not conf.io_encryption:
        return
    server = str(session.conf.get("spark.io.encryption.enabled", "false")).lower()
    if server != "true":
        session.stop()
        raise EngineRefused(
            f"the Spark Connect server at {conf.master} does not encrypt its shuffle and spill files "
            f"(spark.io.encryption.enabled is {server}): start it with --conf spark.io.encryption.enabled=true, "
            "or set RISKGRAPH_SPARK__IO_ENCRYPTION=false to send it the data anyway"
        )
