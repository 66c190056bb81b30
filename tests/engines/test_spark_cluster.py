"""The Spark engine on a real standalone cluster: a master and a worker JVM started here from
PySpark's own Spark, `riskgraph pipeline --engine spark` pointed at it with
RISKGRAPH_SPARK__MASTER=spark://..., and its outputs against the pandas engine's.

The run's tasks execute in the worker's executor (its own JVM and Python workers), not in the
driver: functions, the broadcast model and the Arrow batches all cross process boundaries, as
they would between machines."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from composer.pipeline import run_pipeline
from riskgraph.ports import free_port
from riskgraph.settings import Settings
from tests.factories import SAMPLE

pytestmark = pytest.mark.slow  # its own Spark processes: not the shared local[2] session of the `spark` mark
SCORE_TOLERANCE = 1e-6


def _spark_home() -> Path:
    from pyspark.find_spark_home import _find_spark_home

    return Path(_find_spark_home())


def _start(cls: str, args: list[str], log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "SPARK_HOME": str(_spark_home()), "SPARK_NO_DAEMONIZE": "1"}
    return subprocess.Popen(
        [str(_spark_home() / "bin" / "spark-class"), cls, *args],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,  # stopped with its children (the worker's executors)
    )


def _master_state(ui: int) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{ui}/json/", timeout=5) as answer:
        return json.loads(answer.read())


def _wait(what: str, ready, log: Path, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if ready():
                return
        except OSError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"{what} did not start in {seconds:.0f} s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    tmp = tmp_path_factory.mktemp("standalone")
    port, ui, worker_ui = free_port(), free_port(), free_port()
    url = f"spark://127.0.0.1:{port}"
    started = []
    try:
        master_log = tmp / "master.log"
        args = ["--host", "127.0.0.1", "--port", str(port), "--webui-port", str(ui)]
        started.append(_start("org.apache.spark.deploy.master.Master", args, master_log))
        _wait("the Spark master", lambda: _master_state(ui)["status"] == "ALIVE", master_log)
        worker_log = tmp / "worker.log"
        work = tmp / "work"
        args = ["--cores", "2", "--memory", "2g", "--webui-port", str(worker_ui), "--work-dir", str(work), url]
        started.append(_start("org.apache.spark.deploy.worker.Worker", args, worker_log))
        _wait("the Spark worker", lambda: len(_master_state(ui)["workers"]) == 1, worker_log)
        yield {"url": url, "ui": ui, "work": work}
    finally:
        for proc in reversed(started):
            _stop(proc)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """The process and its children (a worker's executors), politely first."""
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@pytest.fixture(scope="module")
def runs(cluster: dict, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("cluster-runs")
    out = tmp / "spark-out"
    done = _pipeline(tmp / "spark-home", out, cluster["url"], RISKGRAPH_SPARK__DRIVER_MEMORY="1g")
    assert done.returncode == 0, done.stderr[-4000:]
    settings = Settings(home=tmp / "pandas-home", progress=False)
    run_pipeline(data=SAMPLE, out=tmp / "pandas-out", settings=settings, engine="pandas")
    return {"spark": out, "pandas": tmp / "pandas-out"}


def test_the_run_executed_on_the_clusters_worker(cluster: dict, runs: dict[str, Path]) -> None:
    manifest = json.loads((runs["spark"] / "manifest.json").read_text())
    assert manifest["engine"]["name"] == "spark" and manifest["engine"]["master"] == cluster["url"]
    apps = _master_state(cluster["ui"])["completedapps"]
    assert len(apps) == 1 and apps[0]["state"] == "FINISHED"
    executors = list(cluster["work"].glob("app-*/*/stderr"))
    assert executors, "no executor ran on the worker"
    assert any("Finished task" in log.read_text(errors="replace") for log in executors)


def test_the_clusters_results_equal_the_pandas_engines(runs: dict[str, Path]) -> None:
    _same_results(runs["pandas"], runs["spark"])


def _same_results(pandas_out: Path, spark_out: Path) -> None:
    """Scores to 1e-6, the same grades, rule hits and rings, as the parity suite asks."""
    key = ["entity_type", "entity_id"]
    p, s = (pd.read_csv(d / "scores.csv").sort_values(key).reset_index(drop=True) for d in (pandas_out, spark_out))
    assert p[key].equals(s[key])
    np.testing.assert_allclose(s["risk_score"], p["risk_score"], rtol=0, atol=SCORE_TOLERANCE)
    assert (p["grade"] == s["grade"]).all()
    hit_key = ["rule_id", "entity_type", "entity_id"]
    ph, sh = (pd.read_csv(d / "rule_hits.csv")[hit_key].sort_values(hit_key) for d in (pandas_out, spark_out))
    assert len(ph) > 0 and ph.reset_index(drop=True).equals(sh.reset_index(drop=True))
    ring_key = ["ring_type", "entity_type", "entity_id"]
    pr, sr = (pd.read_csv(d / "rings.csv")[ring_key].sort_values(ring_key) for d in (pandas_out, spark_out))
    assert pr.reset_index(drop=True).equals(sr.reset_index(drop=True))


# --- Spark Connect (sc://) ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def connect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Spark Connect server (local[2] inside it), started as its owners would, without I/O
    encryption: the engine must refuse it unless told otherwise."""
    tmp = tmp_path_factory.mktemp("connect")
    port = free_port()
    log = tmp / "server.log"
    env = {**os.environ, "SPARK_HOME": str(_spark_home()), "PYSPARK_PYTHON": sys.executable}
    args = [
        str(_spark_home() / "bin" / "spark-submit"),
        "--class",
        "org.apache.spark.sql.connect.service.SparkConnectServer",
        "--master",
        "local[2]",
        "--conf",
        f"spark.connect.grpc.binding.port={port}",
        "--conf",
        "spark.ui.enabled=false",
        "--conf",
        "spark.driver.memory=1g",
        "spark-internal",
    ]
    server = subprocess.Popen(args, stdout=log.open("wb"), stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        _wait(
            "the Spark Connect server", lambda: "Spark Connect server started" in log.read_text(errors="replace"), log
        )
        yield f"sc://127.0.0.1:{port}"
    finally:
        _stop(server)


def _pipeline(home: Path, out: Path, master: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, "RISKGRAPH_HOME": str(home), "RISKGRAPH_PROGRESS": "false"}
    environ |= {"RISKGRAPH_SPARK__MASTER": master, "RISKGRAPH_SPARK__SHUFFLE_PARTITIONS": "4", **env}
    for name in ("RISKGRAPH_STORE_URL", "RISKGRAPH_RESULTS_URL", "RISKGRAPH_ENGINE"):
        environ.pop(name, None)
    command = ["pipeline", "--data", str(SAMPLE), "--out", str(out), "--engine", "spark"]
    return subprocess.run(
        [sys.executable, "-m", "cli.main", *command], env=environ, capture_output=True, text=True, timeout=1200
    )


def test_a_connect_server_without_io_encryption_is_refused(connect_server: str, tmp_path: Path) -> None:
    done = _pipeline(tmp_path / "home", tmp_path / "out", connect_server)
    assert done.returncode == 2, done.stderr[-3000:]
    assert "does not encrypt its shuffle and spill files" in done.stderr
    assert "RISKGRAPH_SPARK__IO_ENCRYPTION=false" in done.stderr
    assert not (tmp_path / "out" / "scores.csv").exists()


def test_the_pipeline_on_spark_connect_equals_the_pandas_engines(
    connect_server: str, runs: dict[str, Path], tmp_path: Path
) -> None:
    """Features, rules, rings and scoring through the Connect client alone (no SparkContext here:
    the model travels inside the scoring function instead of a broadcast)."""
    done = _pipeline(tmp_path / "home", tmp_path / "out", connect_server, RISKGRAPH_SPARK__IO_ENCRYPTION="false")
    assert done.returncode == 0, done.stderr[-4000:]
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["engine"]["master"] == connect_server
    _same_results(runs["pandas"], tmp_path / "out")
