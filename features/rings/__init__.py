"""Ring detection: identity, medical-collusion, facility, fake-enrolment and card-broker rings.

`detect_rings(dataset, hits, settings)` is a pure function of the dataset and its rule hits: the
same tables give the same rings and ring ids whatever the input row order. Every ring has a type,
members, a 0..1 score and an evidence subgraph (`RingResult.evidence(ring_id)`). Thresholds are
`RingSettings` (riskgraph/settings.py, `Settings.rings`, env RISKGRAPH_RINGS__<FIELD>).

One module per ring type, each saying how its rings are found (all vectorised over sparse
matrices; loops run over rings or over oversized components, never over events):

- identity.py: persons and employers sharing a phone or bank account (not a household);
- collusion.py: persons repeatedly at the same clinic and pharmacy on the same days;
- enrolment.py: an agency placing persons into shell employers (short spells, early claims);
- broker.py: many cards tied to one phone or bank account, buying together across pharmacies;
- facility.py: a clinic or pharmacy where rule hits (split admissions, phantom stays,
  over-prescribing) concentrate; it reads the rule hits and detects nothing itself.

grouping.py groups linked entities (connected components, seeded Leiden when too big or too
sparse); common.py holds the result tables, ring ids and the scoring; detect.py runs them all;
evaluation.py (tests and benchmarks only) measures rings against the generator's truth.
"""

from features.rings.common import EDGE_COLUMNS, MEMBER_COLUMNS, RING_COLUMNS, RingResult
from features.rings.detect import NEEDS_HITS, RING_KINDS, assemble_rings, detect_rings, find_rings
from features.rings.facility import FACILITY_KINDS

__all__ = [
    "EDGE_COLUMNS",
    "FACILITY_KINDS",
    "MEMBER_COLUMNS",
    "NEEDS_HITS",
    "RING_COLUMNS",
    "RING_KINDS",
    "RingResult",
    "assemble_rings",
    "detect_rings",
    "find_rings",
]
