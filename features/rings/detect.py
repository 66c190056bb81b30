"""`detect_rings`: every ring type found, scored and assembled into one `RingResult`."""

from __future__ import annotations

import pandas as pd

from features.rings.broker import broker_rings
from features.rings.collusion import collusion_rings
from features.rings.common import RingResult, empty_result, finish
from features.rings.enrolment import enrolment_rings
from features.rings.facility import facility_rings
from features.rings.identity import identity_rings
from graph.codes import ColumnCodes
from graph.dataset import Dataset
from riskgraph.settings import RingSettings, Settings


def detect_rings(
    dataset: Dataset,
    hits: pd.DataFrame | None = None,
    settings: RingSettings | Settings | None = None,
    codes: ColumnCodes | None = None,
) -> RingResult:
    """Find, score and explain every ring in the dataset.

    `hits` are the rule hits of the same dataset (`RuleResult.hits`, the rows of rule_hits.csv:
    rule_id, entity_type, entity_id, severity, evidence): facility rings are read from them, so
    without hits no facility ring is found. `settings` are the ring settings, or the whole
    `Settings` (its `rings`); default: `RingSettings()`. `codes` are the projection's integer
    codes (`Projection.column_codes`), built here when not given.
    """
    s = settings.rings if isinstance(settings, Settings) else settings or RingSettings()
    each = [
        identity_rings(dataset, s),
        collusion_rings(dataset, s, codes if codes is not None else ColumnCodes(dataset)),
        enrolment_rings(dataset, s),
        broker_rings(dataset, s),
        facility_rings(dataset, hits, s),
    ]
    found = [f for f in each if f is not None and len(f.members)]
    if not found:
        return empty_result()
    members = pd.concat([f.members for f in found], ignore_index=True)
    info = pd.concat([f.info for f in found], ignore_index=True)
    edges = pd.concat([f.edges.assign(ring_type=f.info["ring_type"].iloc[0]) for f in found], ignore_index=True)
    return finish(dataset, members, info, edges, s)
