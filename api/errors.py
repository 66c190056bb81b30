"""API-level errors. Like the domain errors they carry their HTTP status; app.py maps every
`RiskGraphError` to the same JSON body in one place."""

from __future__ import annotations

from riskgraph.errors import RiskGraphError


class NotAuthenticated(RiskGraphError):
    status_code = 401
    code = "not_authenticated"


class Forbidden(RiskGraphError):
    status_code = 403
    code = "forbidden"


class InvalidParameter(RiskGraphError):
    """A parameter passed type validation but makes no sense (bad cursor, min > max ...)."""

    status_code = 422
    code = "invalid_parameter"


class RingNotFound(RiskGraphError):
    status_code = 404
    code = "ring_not_found"


class UnknownJob(RiskGraphError):
    status_code = 404
    code = "job_not_found"


class JobAlreadyRunning(RiskGraphError):
    status_code = 409
    code = "job_running"


class ResultsNotLoaded(RiskGraphError):
    """No pipeline run has written scores into the results database yet."""

    status_code = 503
    code = "no_results"
