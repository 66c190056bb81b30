"""The Spark engine: the stages it implements as Spark DataFrame work, the rest on the driver.

In Spark (no per-row Python: joins and aggregations; numpy/LightGBM per batch or per group):
- projection: every relationship as an edge DataFrame (source, target, rel, count) in the
  projection's global node indices (`edge_frame`, equal to `Projection.edges`); Spark gets
  integer node indices only, never an id or a personal identifier's value;
- graph features: degree, 2-hop path counts and shared-identifier counts (`graph_counts`);
- entity aggregates (spark_features.py): the per-entity aggregates over visits, purchases,
  contributions, employment, benefits and agency links, and the visit-day counts (distinct clinics
  per person-day and month, same-day visit and purchase days, admissions per day): integer codes,
  day and month numbers, amounts and flags in, per-entity columns out, one Spark job;
- ring grouping (`group_nodes`): connected components (GraphFrames when its jars resolved, else
  DataFrame min-label propagation), component sizes and densities, and the Leiden split of each
  oversized component with applyInPandas (features/rings/grouping.py's `_leiden`, unchanged);
- scoring (`margin_and_reasons`, `contributions`, `score`): a model trained on the driver,
  broadcast, scoring and explaining with mapInPandas in batches;
- reading and validation (`load_dataset`, spark_read.py) and three rule detectors
  (`detectors`, spark_rules.py).

The pipeline runs all of them through the engine (composer/engine_stages.py). The rest runs on the
driver (pandas), and `describe()` (so the run's manifest) says so: typing the validated tables,
resolution, the other rule detectors, the node numbering (the sorted id vocabularies of
graph/codes.py) and the integer columns handed to Spark, the same-day pair features (the pairs are
built on the driver for the reasons anyway), the entity tables' attributes and the conduct tables,
PageRank and neighbour means, the ring finders' link building, training, grades and the wording of
explanations.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable, Collection, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from composer.engines import Engine
from composer.engines.spark_features import DRIVER_GROUPS, SPARK_GROUPS, spark_aggregates
from composer.engines.spark_rules import PYTHON_ONLY, SPARK_DETECTORS
from composer.engines.spark_session import NO_LOCAL_RELATIONS, Jars, graphframes_jars, spark_context, spark_session
from features.build import build_features
from features.graph_features import add_graph_features
from features.rings.grouping import _leiden
from graph.contract import ENTITY_TABLE, ID_COLUMN
from graph.dataset import Dataset
from graph.projection import EVENT_RELATIONSHIPS, IDENTIFIER_RELATIONSHIPS, REL_TYPES, Projection
from riskgraph.settings import RingSettings, Settings, SparkSettings
from rules.detectors.base import DetectorFn
from scoring.attributions import CANDIDATES
from scoring.model import CrossFittedRiskModel

SPARK_STAGES = (
    "ingest: reading (CSV, Parquet, partitioned folders) and every validation check (spark_read.py)",
    "projection (edge DataFrames)",
    "features: degree, two_hop_paths, shares_*_with",
    "features: entity aggregates over visits, purchases, contributions, employment, benefits, agency_links"
    " and the visit-day counts (spark_features.py SPARK_GROUPS)",
    "rules: the detectors " + ", ".join(SPARK_DETECTORS) + " (spark_rules.py)",
    "rings: grouping of every ring kind (components, Leiden per component with applyInPandas)",
    "scoring: every row's margin and reasons, the riskiest rows' contributions (mapInPandas)",
)
DRIVER_STAGES = {
    "ingest: typing": "a valid dataset's text columns collected and typed by graph/dataset.py",
    "resolution": "composer/resolution.py (Splink on DuckDB)",
    "node numbering": "the sorted id vocabularies of graph/codes.py: Spark gets integer node indices only",
    "features: same-day pair features": "features/same_day.py (top clinic-pharmacy pairs and their shares,"
    " spark_features.DRIVER_GROUPS): the pairs are built on the driver for the reasons' wording anyway",
    "features: attributes, conduct, pagerank, neighbour means": "features/attributes.py, features/conduct.py,"
    " features/graph_features.py (neighbour means read the aggregates Spark returned)",
    "rules": "rules/engine.py: every other detector, in pandas (spark_rules.PYTHON_ONLY); the rules run in"
    " this process, not in a forked worker",
    "rings": "the ring finders' link building and the ring scoring (features/rings/)",
    "training": "scoring/model.py: labelled rows are few; the fitted model is broadcast to the batches",
    "point-in-time training rows": "composer/labels.py: features, rules and rings of the data cut at each as_of",
    "grades, caps, explanations' wording": "scoring/score.py, explain/",
}
GRAPH_COUNT_COLUMNS = ("degree", "two_hop_paths") + tuple(f"shares_{i}_with" for i in IDENTIFIER_RELATIONSHIPS)
MAX_PROPAGATION_ROUNDS = 10_000  # a guard only: min-label propagation ends within the graph's diameter


class SparkEngine(Engine):
    name = "spark"
    groups_rings = True

    def __init__(self, session: Any, conf: SparkSettings, jars: Jars, owns: bool = True) -> None:
        self.session = session
        self.owns = owns  # stop the session at close (not one that was running before)
        self.conf = conf
        self.jars = jars
        self.components_by = "graphframes" if jars.paths else "label propagation (DataFrame joins)"
        if not owns and not conf.master.startswith("sc://"):
            for key, value in NO_LOCAL_RELATIONS.items():  # a session started elsewhere: as ours
                session.conf.set(key, value)

    @classmethod
    def of(cls, settings: Settings) -> SparkEngine:
        conf = settings.spark
        jars = (
            Jars((), "Spark Connect: jars are the server's") if conf.master.startswith("sc://") else graphframes_jars()
        )
        from pyspark.sql import SparkSession

        running = SparkSession.getActiveSession()
        return cls(running or spark_session(conf, jars), conf, jars, owns=running is None)

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "master": self.conf.master,
            "spark_version": self.session.version,
            "jars": self.jars.status,
            "components": self.components_by,
            "in_spark": list(SPARK_STAGES),
            "on_driver": DRIVER_STAGES,
            "rule_detectors_on_driver": list(PYTHON_ONLY),
            "feature_groups_in_spark": {t: list(g) for t, g in SPARK_GROUPS.items()},
            "feature_groups_on_driver": {t: list(g) for t, g in DRIVER_GROUPS.items()},
        }

    def close(self) -> None:
        if self.owns and self.conf.master.startswith("local"):
            self.session.stop()

    def load_dataset(self, folder: Path, on_resolvable: Callable[[Dataset], None] | None = None) -> Dataset:
        from composer.engines.spark_read import read_dataset

        return read_dataset(self.session, folder, on_resolvable)

    def detectors(self) -> dict[str, DetectorFn]:
        from composer.engines.spark_rules import spark_detectors

        return spark_detectors(self.session)

    # -- features ------------------------------------------------------------------------------
    def features(
        self, dataset: Dataset, proj: Projection, exclude: Collection[str] = frozenset()
    ) -> dict[str, pd.DataFrame]:
        """Graph counts and entity aggregates on Spark (`graph_counts`, spark_features.py), handed
        to the driver's feature build, which computes only the rest (features/build.py `given`)."""
        counts = self.graph_counts(dataset, proj)
        given = spark_aggregates(self.session, dataset, proj, counts)
        return add_graph_features(build_features(dataset, proj, exclude=exclude, given=given), proj, counts=counts)

    def _frame(self, table: pa.Table) -> Any:
        return self.session.createDataFrame(table)

    def edge_frame(self, dataset: Dataset, proj: Projection) -> Any:
        """Every relationship folded to one row per (source, target, rel): `Projection.edges`.
        Spark gets each table's endpoints as the driver's integer node indices (graph/codes.py),
        never an id or identifier value: no personal value leaves the driver."""
        from pyspark.sql import functions as F

        parts = []

        def link(rel: str, st: str, s: np.ndarray, tt: str, t: np.ndarray) -> None:
            code = REL_TYPES.index(rel)
            rows = pa.table(
                {
                    "source": pa.array(np.asarray(s, np.int64) + proj.offsets[st]),
                    "target": pa.array(np.asarray(t, np.int64) + proj.offsets[tt]),
                    "known": pa.array((np.asarray(s) >= 0) & (np.asarray(t) >= 0)),
                }
            )
            parts.append(self._frame(rows).filter("known").select("source", "target", F.lit(code).alias("rel")))

        for rel, (table, st, sc, tt, tc) in EVENT_RELATIONSHIPS.items():
            if dataset.has(table):
                link(rel, st, proj.codes(table, sc, st), tt, proj.codes(table, tc, tt))
        if dataset.has("agency_links"):
            kind = dataset.tables["agency_links"]["entity_type"]
            agency = proj.codes("agency_links", "agency_id", "agency")
            for et in ("person", "employer"):
                mine = (kind == et).to_numpy(dtype=bool, na_value=False)
                link("LINKED", "agency", agency[mine], et, proj.codes("agency_links", "entity_id", et)[mine])
        for et in ("person", "employer"):
            table = ENTITY_TABLE[et]
            holder = proj.codes(table, ID_COLUMN[et], et)
            for ident, rel in IDENTIFIER_RELATIONSHIPS.items():
                link(rel, et, holder, ident, proj.codes(table, ident, ident))
        edges = parts[0]
        for p in parts[1:]:
            edges = edges.unionByName(p)
        return edges.groupBy("source", "target", "rel").agg(F.count(F.lit(1)).alias("count"))

    def graph_counts(self, dataset: Dataset, proj: Projection) -> dict[str, np.ndarray]:
        """Per global node index: degree, 2-hop paths and shares_<identifier>_with, from the
        edge DataFrame by joins and aggregations (features/graph_features.py and
        features/entity_aggregates.py compute the same with sparse products)."""
        from pyspark.sql import functions as F

        edges = self.edge_frame(dataset, proj).persist()
        pairs = edges.select("source", "target")
        adj = pairs.union(pairs.select(F.col("target").alias("source"), F.col("source").alias("target"))).distinct()
        degree = adj.groupBy("source").agg(F.count(F.lit(1)).alias("degree"))
        nb = degree.select(F.col("source").alias("target"), F.col("degree").alias("nb_degree"))
        two_hop = (
            adj.join(nb, "target")
            .groupBy("source")
            .agg(F.sum(F.greatest(F.col("nb_degree") - 1, F.lit(0))).alias("two_hop_paths"))
        )
        frames = {"degree": degree, "two_hop_paths": two_hop}
        for ident, rel in IDENTIFIER_RELATIONSHIPS.items():
            own = edges.filter(F.col("rel") == REL_TYPES.index(rel))
            holders = own.groupBy("target").agg(F.sum("count").alias("holders"))
            frames[f"shares_{ident}_with"] = (
                own.join(holders, "target")
                .groupBy("source")
                .agg(
                    F.greatest(F.sum(F.col("count") * F.col("holders")) - F.sum("count"), F.lit(0)).alias(
                        f"shares_{ident}_with"
                    )
                )
            )
        # one long frame (source, column number, value): one Spark job for every column
        names = list(frames)
        long = None
        for k, (name, frame) in enumerate(frames.items()):
            part = frame.select("source", F.lit(k).alias("k"), F.col(name).cast("double").alias("value"))
            long = part if long is None else long.unionByName(part)
        got = long.toPandas() if long is not None else pd.DataFrame({"source": [], "k": [], "value": []})
        edges.unpersist()
        out = {}
        k = got["k"].to_numpy(np.int64)
        for i, name in enumerate(names):
            values = np.zeros(proj.n_nodes, dtype=np.float64)
            mine = k == i
            values[got["source"].to_numpy(np.int64)[mine]] = got["value"].to_numpy(np.float64)[mine]
            out[name] = values
        return out

    # -- scoring -------------------------------------------------------------------------------
    def _map_rows(self, model: CrossFittedRiskModel, X: pd.DataFrame, each: Any, schema: str) -> pd.DataFrame:
        """`each(model, rows)` (a DataFrame per batch, `_row` first) over every row of `X` with
        mapInPandas; the model (booster and calibrator) is broadcast once, LightGBM runs on one
        thread per task. The answer comes back in `X`'s row order."""
        names = [f"f{i}" for i in range(X.shape[1])]  # Spark-safe names; the batches map them back
        features = list(X.columns)
        sent = X.set_axis(names, axis=1).reset_index(drop=True)
        for c in sent.columns:
            if isinstance(sent[c].dtype, pd.CategoricalDtype):
                sent[c] = sent[c].astype(object).where(sent[c].notna(), None).astype("string")
        sent.insert(0, "_row", np.arange(len(sent), dtype=np.int64))
        frame = self.session.createDataFrame(pa.Table.from_pandas(sent, preserve_index=False))
        # pickled here: Spark's broadcast stream cannot take protocol 5's out-of-band numpy buffers
        blob = pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)
        context = spark_context(self.session)
        # Spark Connect has no broadcast: the model then travels inside the function, once per task
        shared = context.broadcast(blob) if context is not None else None

        def batches(parts: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
            m = pickle.loads(shared.value if shared is not None else blob)
            m.settings = m.settings.model_copy(update={"threads": 1})
            for part in parts:
                out = each(m, part.drop(columns=["_row"]).set_axis(features, axis=1))
                out.insert(0, "_row", part["_row"].to_numpy(np.int64))
                yield out

        got = frame.mapInPandas(batches, "_row long, " + schema).toPandas().sort_values("_row", kind="mergesort")
        if shared is not None:
            shared.unpersist()
        return got.reset_index(drop=True)

    def score(self, model: CrossFittedRiskModel, X: pd.DataFrame) -> tuple[np.ndarray, pd.DataFrame]:
        """Calibrated risk and per-feature contributions (TreeSHAP) of each row of `X`."""
        schema = "risk double, " + _columns("c", len(model.features_), "double")
        got = self._map_rows(model, X, _risk_and_contributions, schema)
        return got["risk"].to_numpy(np.float64), self._contributions(got, model, X)

    def margin_and_reasons(
        self, model: CrossFittedRiskModel, X: pd.DataFrame
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if len(X) == 0:
            return model.margin_and_reasons(X)
        model.leaf_attributions()  # built once on the driver, broadcast with the model
        schema = f"margin double, {_columns('i', CANDIDATES, 'int')}, {_columns('v', CANDIDATES, 'float')}"
        got = self._map_rows(model, X, _margin_and_reasons, schema)
        idx = got[[f"i{k}" for k in range(CANDIDATES)]].to_numpy(np.int16)
        val = got[[f"v{k}" for k in range(CANDIDATES)]].to_numpy(np.float32)
        return got["margin"].to_numpy(np.float64), idx, val

    def contributions(self, model: CrossFittedRiskModel, X: pd.DataFrame) -> pd.DataFrame:
        if len(X) == 0:
            return model.contributions(X)
        got = self._map_rows(model, X, _only_contributions, _columns("c", len(model.features_), "double"))
        return self._contributions(got, model, X)

    @staticmethod
    def _contributions(got: pd.DataFrame, model: CrossFittedRiskModel, X: pd.DataFrame) -> pd.DataFrame:
        values = got[[f"c{i}" for i in range(len(model.features_))]].to_numpy(np.float64)
        return pd.DataFrame(values, index=X.index, columns=list(model.features_))

    # -- ring grouping ---------------------------------------------------------------------------
    def components(self, n: int, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
        """Per node: the smallest node index of its connected component (singletons: itself)."""
        from pyspark.sql import functions as F

        e = self._frame(pa.table({"src": pa.array(src, pa.int64()), "dst": pa.array(dst, pa.int64())}))
        e = e.union(e.select(F.col("dst").alias("src"), F.col("src").alias("dst"))).distinct().persist()
        if self.jars.paths:
            from graphframes import GraphFrame

            v = e.select(F.col("src").alias("id")).distinct()
            cc = GraphFrame(v, e).connectedComponents(algorithm="graphx")
            got = cc.groupBy("component").agg(F.min("id").alias("low")).join(cc, "component").select("id", "low")
        else:
            got = self._propagate(e)
        pdf = got.toPandas()
        e.unpersist()
        low = np.arange(n, dtype=np.int64)
        low[pdf["id"].to_numpy(np.int64)] = pdf["low"].to_numpy(np.int64)
        return low

    def _propagate(self, e: Any) -> Any:
        """Min-label propagation: each node takes its neighbours' smallest label until none changes."""
        from pyspark.sql import functions as F

        labels = e.groupBy(F.col("src").alias("id")).agg(F.least(F.min("dst"), F.first("src")).alias("low"))
        labels = labels.select("id", F.least("id", "low").alias("low")).localCheckpoint()
        for _ in range(MAX_PROPAGATION_ROUNDS):
            nb = (
                e.join(labels.withColumnRenamed("id", "dst"), "dst")
                .groupBy(F.col("src").alias("id"))
                .agg(F.min("low").alias("nb_low"))
            )
            new = labels.join(nb, "id").select("id", F.least("low", "nb_low").alias("low")).localCheckpoint()
            changed = (
                new.join(labels.withColumnRenamed("low", "old"), "id").filter(F.col("low") != F.col("old")).count()
            )
            labels = new
            if changed == 0:
                break
        return labels

    def group_nodes(
        self, n: int, src: np.ndarray, dst: np.ndarray, w: np.ndarray, s: RingSettings, min_size: int | None = None
    ) -> np.ndarray:
        from pyspark.sql import functions as F

        min_size = s.min_ring_size if min_size is None else min_size
        labels = np.full(n, -1, dtype=np.int64)
        if len(src) == 0:
            return labels
        low = self.components(n, np.asarray(src, np.int64), np.asarray(dst, np.int64))
        _, comp = np.unique(low, return_inverse=True)  # components numbered by their smallest node
        edges = self._frame(
            pa.table(
                {
                    "comp": pa.array(comp[src], pa.int64()),
                    "src": pa.array(src, pa.int64()),
                    "dst": pa.array(dst, pa.int64()),
                    "w": pa.array(np.asarray(w, np.float64)),
                }
            )
        ).persist()
        sizes = np.bincount(comp)
        stats = edges.groupBy("comp").agg(F.count(F.lit(1)).alias("edges")).toPandas()
        n_edges = np.zeros(len(sizes), dtype=np.int64)
        n_edges[stats["comp"].to_numpy(np.int64)] = stats["edges"].to_numpy(np.int64)
        density = n_edges / np.maximum(sizes * (sizes - 1) / 2, 1)
        split = (sizes > s.max_ring_size) | ((sizes >= s.split_check_size) & (density < s.min_density))
        keep = ~split & (sizes >= min_size)
        labels = np.where(keep[comp], comp, -1)
        if split.any():
            to_split = self._frame(pa.table({"comp": pa.array(np.flatnonzero(split), pa.int64())}))

            def leiden(pdf: pd.DataFrame) -> pd.DataFrame:
                a, b = pdf["src"].to_numpy(np.int64), pdf["dst"].to_numpy(np.int64)
                nodes = np.unique(np.concatenate([a, b]))
                pieces = _leiden(
                    len(nodes), np.searchsorted(nodes, a), np.searchsorted(nodes, b), pdf["w"].to_numpy(), s
                )
                return pd.DataFrame({"comp": np.full(len(nodes), pdf["comp"].iloc[0]), "node": nodes, "piece": pieces})

            got = (
                edges.join(F.broadcast(to_split), "comp")
                .groupBy("comp")
                .applyInPandas(leiden, "comp long, node long, piece long")
                .toPandas()
                .sort_values(["comp", "node"], kind="mergesort")
            )
            next_label = len(sizes)
            for _, part in got.groupby("comp", sort=True):  # one step per oversized component
                pieces = part["piece"].to_numpy(np.int64)
                ok = pieces >= 0
                labels[part["node"].to_numpy(np.int64)[ok]] = pieces[ok] + next_label
                next_label += int(pieces.max()) + 1 if len(pieces) else 0
        edges.unpersist()
        valid = labels >= 0
        if valid.any():
            counts = np.bincount(labels[valid])
            idx = np.flatnonzero(valid)
            labels[idx[counts[labels[valid]] < min_size]] = -1
        return labels


def _columns(prefix: str, n: int, kind: str) -> str:
    return ", ".join(f"{prefix}{i} {kind}" for i in range(n))


# what each mapInPandas batch computes (module functions: pickled by reference to the workers)
def _risk_and_contributions(m: CrossFittedRiskModel, rows: pd.DataFrame) -> pd.DataFrame:
    out = _only_contributions(m, rows)
    out.insert(0, "risk", m.predict_proba(rows))
    return out


def _only_contributions(m: CrossFittedRiskModel, rows: pd.DataFrame) -> pd.DataFrame:
    contrib = m.contributions(rows).to_numpy(np.float64)
    return pd.DataFrame(contrib, columns=[f"c{i}" for i in range(contrib.shape[1])])


def _margin_and_reasons(m: CrossFittedRiskModel, rows: pd.DataFrame) -> pd.DataFrame:
    margin, idx, val = m.margin_and_reasons(rows)
    out = pd.DataFrame({"margin": margin})
    for k in range(idx.shape[1]):
        out[f"i{k}"] = idx[:, k].astype(np.int32)
    for k in range(val.shape[1]):
        out[f"v{k}"] = val[:, k].astype(np.float32)
    return out
