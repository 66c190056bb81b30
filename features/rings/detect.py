"""`detect_rings`: every ring type found, scored and assembled into one `RingResult`."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from features.rings.broker import broker_rings
from features.rings.collusion import collusion_rings
from features.rings.common import Found, RingResult, empty_result, finish
from features.rings.enrolment import enrolment_rings
from features.rings.facility import facility_rings
from features.rings.identity import identity_rings
from graph.codes import ColumnCodes
from graph.dataset import Dataset
from riskgraph.server_keys import Tokens
from riskgraph.settings import RingSettings, Settings

RING_KINDS = ("identity", "collusion", "enrolment", "broker", "facility")  # the order results assemble in
NEEDS_HITS = ("facility",)  # kinds read from the rule hits; the others need only the dataset


def find_rings(
    dataset: Dataset,
    kinds: tuple[str, ...],
    hits: pd.DataFrame | None,
    s: RingSettings,
    codes: ColumnCodes | None = None,
    tokens: Tokens | None = None,
) -> dict[str, Found | None]:
    """The unscored rings of the given kinds (any subset of RING_KINDS: callers may find some
    kinds elsewhere, e.g. in a worker, and assemble them all with `assemble_rings`). `tokens`
    name shared identifiers in the evidence (keyed pseudonyms, `identity.identifier_label`)."""
    finders: dict[str, Callable[[], Found | None]] = {
        "identity": lambda: identity_rings(dataset, s, tokens),
        "collusion": lambda: collusion_rings(dataset, s, codes if codes is not None else ColumnCodes(dataset)),
        "enrolment": lambda: enrolment_rings(dataset, s),
        "broker": lambda: broker_rings(dataset, s, tokens),
        "facility": lambda: facility_rings(dataset, hits, s),
    }
    return {kind: finders[kind]() for kind in kinds}


def assemble_rings(dataset: Dataset, found: dict[str, Found | None], s: RingSettings) -> RingResult:
    """Every kind's rings scored and assembled into one RingResult (the same whichever process
    found which kind)."""
    each = [found[kind] for kind in RING_KINDS if kind in found]
    parts = [f for f in each if f is not None and len(f.members)]
    if not parts:
        return empty_result()
    members = pd.concat([f.members for f in parts], ignore_index=True)
    info = pd.concat([f.info for f in parts], ignore_index=True)
    edges = pd.concat([f.edges.assign(ring_type=f.info["ring_type"].iloc[0]) for f in parts], ignore_index=True)
    return finish(dataset, members, info, edges, s)


def detect_rings(
    dataset: Dataset,
    hits: pd.DataFrame | None = None,
    settings: RingSettings | Settings | None = None,
    codes: ColumnCodes | None = None,
    tokens: Tokens | None = None,
) -> RingResult:
    """Find, score and explain every ring in the dataset.

    `hits` are the rule hits of the same dataset (`RuleResult.hits`, the rows of rule_hits.csv:
    rule_id, entity_type, entity_id, severity, evidence): facility rings are read from them, so
    without hits no facility ring is found. `settings` are the ring settings, or the whole
    `Settings` (its `rings`); default: `RingSettings()`. `codes` are the projection's integer
    codes (`Projection.column_codes`), built here when not given. `tokens` (the installation's
    masking `Tokens`) key the pseudonyms of shared identifiers in the evidence; without them an
    unkeyed digest (tests).
    """
    s = settings.rings if isinstance(settings, Settings) else settings or RingSettings()
    return assemble_rings(dataset, find_rings(dataset, RING_KINDS, hits, s, codes, tokens), s)
