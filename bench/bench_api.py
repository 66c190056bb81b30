"""Load test of GET /v1/credit/{type}/{id} (with API-key auth and audit) against a bare endpoint
on the same stack, one uvicorn worker on 127.0.0.1, load from `wrk` (apt-get install wrk).

    python bench/bench_api.py [--home DIR] [--persons 30000] [--explain-top 2000] [--duration 10]

Without --home it generates a synthetic dataset and runs the pipeline into a temporary home, with
the pipeline wording only the riskiest `--explain-top` per type, so random persons are answered
from the reason columns. In one run: ids the pipeline worded, random persons, the bare endpoint
of the same server (/healthz: the same middleware, no key, no audit), ten batches of 1,000 random
persons, and, for reference, an empty FastAPI app with one constant route.
Targets: random >= 0.9x worded and >= 0.4x the same server's bare endpoint; p99 <= 30 ms; a batch
of 1,000 <= 0.5 s."""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from riskgraph.ports import free_port

ROOT = Path(__file__).resolve().parents[1]
KEY = "bench-approval-key-7f3c9a1e5b2d8604c1e9f7a3b5d20e48"  # passes the key strength rule


def serve_app():  # uvicorn --factory entry point for the real API (settings from RISKGRAPH_* env)
    from api.app import create_app
    from riskgraph.settings import Settings

    return create_app(Settings())


def bare_app():  # uvicorn --factory entry point: the same stack with nothing behind one route
    from fastapi import FastAPI
    from fastapi.responses import Response

    app = FastAPI()
    body = b'{"grade":"A"}'

    @app.get("/bare/{entity_type}/{entity_id}")
    async def bare(entity_type: str, entity_id: str) -> Response:
        return Response(body, media_type="application/json")

    return app


def _prepare(home: Path, persons: int) -> None:
    from composer.pipeline import run_pipeline
    from synth.generator import generate

    data = home.parent / "data"
    generate(persons=persons, seed=5, out=data, progress=False)
    run_pipeline(data=data, out=home.parent / "out", settings=_settings(home))


def _env(home: Path) -> dict[str, str]:
    return {
        "RISKGRAPH_HOME": str(home),
        "RISKGRAPH_STORE_URL": f"memory://{home / 'store'}",
        "RISKGRAPH_API_KEYS": json.dumps({KEY: "approval_system"}),
        "RISKGRAPH_API_SCHEDULER": "false",
        "RISKGRAPH_PROGRESS": "false",
    }


def _settings(home: Path):
    from riskgraph.settings import Settings

    return Settings(home=home, store_url=f"memory://{home / 'store'}", progress=False)


def _start(factory: str, port: int, env: dict[str, str], http: str = "auto") -> subprocess.Popen:
    cmd = [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        factory,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
        "--log-level",
        "warning",
        "--no-access-log",
        "--http",
        http,
    ]
    proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, **env, "PYTHONPATH": str(ROOT)})
    end = time.monotonic() + 120
    while time.monotonic() < end:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return proc
        except OSError as exc:
            if proc.poll() is not None:
                raise SystemExit(f"server {factory} exited with {proc.returncode}") from exc
            time.sleep(0.2)
    proc.terminate()
    raise SystemExit(f"server {factory} did not start")


def _wrk(url_base: str, paths: list[str], *, duration: int, connections: int, headers: dict[str, str]) -> dict:
    lua = (
        "paths = {"
        + ",".join(json.dumps(p) for p in paths)
        + "}\n"
        + (
            "i = 0\nrequest = function()\n  i = i % #paths + 1\n"
            "  return wrk.format('GET', paths[i], {"
            + ",".join(f"[{json.dumps(k)}]={json.dumps(v)}" for k, v in headers.items())
            + "})\nend\n"
        )
    )
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as fh:
        fh.write(lua)
    try:
        out = subprocess.run(
            ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency", "-s", fh.name, url_base],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    finally:
        os.unlink(fh.name)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)

    def ms(label: str) -> float:
        m = re.search(rf"\s{label}%\s+([\d.]+)(us|ms|s)", out)
        v, unit = float(m.group(1)), m.group(2)
        return v / 1000 if unit == "us" else v * 1000 if unit == "s" else v

    return {
        "rps": round(rps),
        "requests": total,
        "p50_ms": ms("50"),
        "p99_ms": ms("99"),
        "non_2xx": int(non2xx.group(1)) if non2xx else 0,
    }


def _batch_times(base: str, items: list[dict[str, str]], runs: int) -> list[float]:
    """Wall seconds of POST /v1/credit/batch with `items`, `runs` times in a row."""
    import urllib.request

    body = json.dumps({"items": items}).encode()
    times = []
    for _ in range(runs):
        req = urllib.request.Request(
            base + "/v1/credit/batch", data=body, headers={"X-API-Key": KEY, "Content-Type": "application/json"}
        )
        t0 = time.perf_counter()
        with urllib.request.urlopen(req, timeout=60) as resp:
            doc = json.loads(resp.read())
        times.append(time.perf_counter() - t0)
        assert len(doc["results"]) == len(items) and all(r["reasons"] for r in doc["results"])
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--home", type=Path, help="an already scored RiskGraph home (default: build one)")
    ap.add_argument("--persons", type=int, default=30_000)
    ap.add_argument("--explain-top", type=int, default=2_000, help="rows per type the pipeline words itself")
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--connections", type=int, default=32)
    args = ap.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk not found: apt-get install -y wrk")
    sys.path.insert(0, str(ROOT))
    os.environ["RISKGRAPH_MODEL__EXPLAIN_TOP"] = str(args.explain_top)
    tmp = None
    home = args.home
    if home is None:
        tmp = Path(tempfile.mkdtemp(prefix="riskgraph-bench-"))
        home = tmp / "home"
        print(f"building a {args.persons}-person scored home in {home} ...", flush=True)
        _prepare(home, args.persons)
    from riskgraph.results import ResultsDB

    db = ResultsDB(_settings(home).results_database_url)
    scores = db.read("scores")
    worded = scores[scores["reasons"] != "[]"]
    persons = scores[(scores["entity_type"] == "person") & (scores["reasons"] == "[]")]
    explained = [f"/v1/credit/{t}/{i}" for t, i in zip(worded["entity_type"], worded["entity_id"])][:5000]
    shuffled = persons.sample(frac=1.0, random_state=0)
    random_ids = [f"/v1/credit/person/{i}" for i in shuffled["entity_id"]][:5000]
    batch = [{"entity_type": "person", "entity_id": str(i)} for i in shuffled["entity_id"][:1000]]
    audit_before = int(db.query("SELECT count(*) AS n FROM audit")["n"].iloc[0])
    results: dict = {}
    key = {"X-API-Key": KEY}
    try:
        port = free_port()
        server = _start("bench.bench_api:serve_app", port, _env(home), "api.http_limits:HeaderLimitedProtocol")
        try:
            base = f"http://127.0.0.1:{port}"
            _wrk(base, random_ids, duration=2, connections=args.connections, headers=key)  # warm-up
            for name, paths in (("explained", explained), ("random", random_ids), ("healthz", ["/healthz"])):
                results[name] = _wrk(base, paths, duration=args.duration, connections=args.connections, headers=key)
            results["batch_1000_s"] = [round(t, 3) for t in _batch_times(base, batch, 10)]
        finally:
            server.terminate()
            server.wait(30)
        audit_after = int(db.query("SELECT count(*) AS n FROM audit")["n"].iloc[0])
        port = free_port()
        bare = _start("bench.bench_api:bare_app", port, {})
        try:
            base = f"http://127.0.0.1:{port}"
            bare_paths = [p.replace("/v1/credit/", "/bare/") for p in random_ids]
            _wrk(base, bare_paths, duration=2, connections=args.connections, headers={})
            results["bare"] = _wrk(base, bare_paths, duration=args.duration, connections=args.connections, headers={})
        finally:
            bare.terminate()
            bare.wait(30)
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    explained_r, random_r, bare_r, healthz_r = (results[k] for k in ("explained", "random", "bare", "healthz"))
    served = explained_r["requests"] + random_r["requests"] + 10 * len(batch)  # /healthz is not audited
    audited = audit_after - audit_before
    report = {
        "entities": len(scores),
        "worded_by_the_pipeline": len(worded),
        "connections": args.connections,
        "duration_s": args.duration,
        "explained": explained_r,
        "random": random_r,
        "healthz_same_server": healthz_r,
        "bare_empty_app": bare_r,
        "random_to_explained": round(random_r["rps"] / explained_r["rps"], 2),
        "random_to_healthz": round(random_r["rps"] / healthz_r["rps"], 2),
        "random_to_empty_app": round(random_r["rps"] / bare_r["rps"], 2),
        "batch_1000_s": results["batch_1000_s"],
        "audit_rows_written": audited,
        "audit_rows_expected_at_least": served,
        "load_average": os.getloadavg(),
        "targets": {
            "random>=0.9x_explained": random_r["rps"] >= 0.9 * explained_r["rps"],
            "random>=0.4x_bare_same_server": random_r["rps"] >= 0.4 * healthz_r["rps"],
            "p99<=30ms": random_r["p99_ms"] <= 30,
            "batch_1000<=0.5s": max(results["batch_1000_s"]) <= 0.5,
            "all_audited": audited >= served,
            "no_errors": random_r["non_2xx"] == 0 and explained_r["non_2xx"] == 0,
        },
    }
    print(json.dumps(report, indent=2))
    sys.exit(0 if all(report["targets"].values()) else 1)


if __name__ == "__main__":
    main()
