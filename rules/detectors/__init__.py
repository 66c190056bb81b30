"""The fixed registry of built-in, vectorised detectors that rule packs can name.

A detector is a plain function `(dataset, params, cache) -> DataFrame`: one row per evidence
record, column `entity_id` (the entity the rule fires for) plus the record's columns. It works on
whole tables with integer keys, sorts and numpy, never a Python loop over entities: ids are integer
codes from the per-evaluation `Cache` (rules/cache.py, shared by all detectors of one run), and
string columns are only gathered for the rows that fire. Its parameters are a pydantic model
(unknown keys rejected), and it declares the table columns it needs so that the engine can skip
it, and say why, on datasets without them.

One module per domain, each listing its detectors: `medical` (visits, inpatient stays, pharmacy
purchases), `benefits` (pensions and benefits), `employers` (employers and agencies), `identity` (ID-number data quality); `base`
holds the `Detector` record, `Params` and the shared vectorised helpers.
"""

from __future__ import annotations

from types import MappingProxyType

from rules.detectors.base import Detector, Params
from rules.detectors.benefits import BENEFITS
from rules.detectors.employers import EMPLOYERS
from rules.detectors.identity import IDENTITY
from rules.detectors.medical import MEDICAL

DETECTORS: MappingProxyType[str, Detector] = MappingProxyType(
    {d.name: d for d in (*MEDICAL, *BENEFITS, *EMPLOYERS, *IDENTITY)}
)

__all__ = ["DETECTORS", "Detector", "Params"]
