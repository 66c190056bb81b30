"""A fitted person model kept on disk, so that a later run can reuse its parameters instead of
estimating them again (docs/resolution.md, "Reusing the fitted model").

The file is a JSON document: the model's own JSON (`PersonModel.model_json_`, m and u of every
comparison level), the number of records it was fitted on, the run that fitted it, a fingerprint
of the model's definition (comparisons, blocking rules, EM iterations: a stored model fitted
under another definition is never reused) and a SHA-256 of the model's canonical JSON. It is
written atomically (a temporary file in the same folder, fsync, rename), and `load_model`
validates everything before anything is used: a missing, truncated, tampered or foreign file is
reported as a reason, and the caller fits again.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from graph.resolve.model import BLOCKING_RULES, COMPARISONS, EM_ITERATIONS

FORMAT = 1


def fingerprint() -> str:
    """The model definition's fingerprint: a stored model fitted under another one is stale."""
    definition = {"comparisons": COMPARISONS, "blocking": BLOCKING_RULES, "em_iterations": EM_ITERATIONS}
    return hashlib.sha256(json.dumps(definition, sort_keys=True).encode()).hexdigest()[:16]


def _digest(model: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(model, sort_keys=True, allow_nan=False).encode()).hexdigest()


@dataclass(frozen=True)
class StoredModel:
    """A validated stored model."""

    model: dict[str, Any]  # PersonModel.model_json_
    records: int  # the number of person records it was fitted on
    fitted_in: str  # the run that fitted it


def save_model(path: Path, model: dict[str, Any], *, records: int, fitted_in: str) -> None:
    """Write the model to `path` atomically: a reader sees the previous file or this one, whole."""
    body = {
        "format": FORMAT,
        "fingerprint": fingerprint(),
        "records": int(records),
        "fitted_in": fitted_in,
        "sha256": _digest(model),
        "model": model,
    }
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, json.dumps(body, sort_keys=True, allow_nan=False).encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    try:  # the rename itself survives a power loss once the folder is synced
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass


def load_model(path: Path) -> tuple[StoredModel | None, str]:
    """(the stored model, "") or (None, why it cannot be used)."""
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None, "no stored model"
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        return None, f"the stored model {path} is unreadable ({type(exc).__name__})"
    problem = _problem(body)
    if problem:
        return None, f"the stored model {path} is not usable: {problem}"
    return StoredModel(body["model"], int(body["records"]), str(body.get("fitted_in", ""))), ""


def _problem(body: Any) -> str:
    if not isinstance(body, dict) or body.get("format") != FORMAT:
        return "unknown format"
    if body.get("fingerprint") != fingerprint():
        return "fitted under another model definition"
    model, records = body.get("model"), body.get("records")
    if not isinstance(records, int) or records < 2 or not isinstance(model, dict):
        return "no model or record count"
    try:
        if body.get("sha256") != _digest(model):
            return "checksum mismatch"
    except ValueError:
        return "not finite"
    prior = model.get("probability_two_random_records_match")
    if not isinstance(prior, int | float) or not 0 < prior < 1:
        return "no prior"
    got = model.get("comparisons")
    if not isinstance(got, list) or len(got) != len(COMPARISONS):
        return "comparisons differ"
    for stored, expected in zip(got, COMPARISONS, strict=True):
        if not isinstance(stored, dict) or stored.get("output_column_name") != expected["output_column_name"]:
            return "comparisons differ"
        levels = stored.get("comparison_levels")
        if not isinstance(levels, list) or len(levels) != len(expected["comparison_levels"]):
            return f"levels of {expected['output_column_name']} differ"
        for level in levels:
            if not isinstance(level, dict) or level.get("is_null_level"):
                continue
            for p in ("m_probability", "u_probability"):
                v = level.get(p)
                if v is not None and not (isinstance(v, int | float) and math.isfinite(v) and 0 <= v <= 1):
                    return f"{p} of {expected['output_column_name']} out of range"
    return ""
