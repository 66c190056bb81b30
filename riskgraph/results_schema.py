"""The results database's own tables (riskgraph/results.py is their only writer): the model
registry, the audit log, jobs, the run log and served pointer, and the tables of case work,
credit policy and person review. A run's result tables are created per run, not here."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

models_table = sa.Table(
    "models",
    metadata,
    sa.Column("version", sa.String(64), primary_key=True),
    sa.Column("entity_type", sa.String(16), nullable=False, index=True),
    sa.Column("kind", sa.String(16), nullable=False),  # supervised | unsupervised
    sa.Column("created_at", sa.String(32), nullable=False),
    sa.Column("data_hash", sa.String(64), nullable=False),
    sa.Column("features", sa.Text, nullable=False),  # JSON list
    sa.Column("params", sa.Text, nullable=False),  # JSON
    sa.Column("metrics", sa.Text, nullable=False),  # JSON
    sa.Column("champion", sa.Boolean, nullable=False, default=False),
    sa.Column("artifact", sa.LargeBinary, nullable=True),
    sa.Column("run_id", sa.String(40)),  # the run that trained it
    sa.Column("staged", sa.Boolean, nullable=False, default=False),  # its run has not committed yet
    sa.Column("reference", sa.Text),  # JSON: its training population's profile (scoring/monitoring.py)
)

audit_table = sa.Table(
    "audit",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", sa.String(32), nullable=False, index=True),
    sa.Column("actor", sa.String(64), nullable=False),
    sa.Column("role", sa.String(32), nullable=False),
    sa.Column("action", sa.String(32), nullable=False),
    sa.Column("entity_type", sa.String(16)),
    sa.Column("entity_id", sa.String(128)),
    sa.Column("model_version", sa.String(64)),
    sa.Column("grade", sa.String(2)),
    sa.Column("detail", sa.Text),
    sa.Column("decision_id", sa.String(40), index=True),
    sa.Column("run_id", sa.String(40)),
    # the hash chain (riskgraph/audit_chain.py): place, links, seal and the key that sealed it
    sa.Column("seq", sa.Integer),
    sa.Column("key_id", sa.String(16)),
    sa.Column("prev_hash", sa.String(64)),
    sa.Column("row_hash", sa.String(64)),
    sa.Column("seal", sa.String(64)),
)

jobs_table = sa.Table(
    "job_runs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("job_id", sa.String(64), nullable=False, index=True),
    sa.Column("started_at", sa.String(32), nullable=False),
    sa.Column("finished_at", sa.String(32)),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("message", sa.Text),
    sa.Column("run_id", sa.String(40)),
)

run_log_table = sa.Table(
    "run_log",
    metadata,
    sa.Column("run_id", sa.String(40), primary_key=True),
    sa.Column("kind", sa.String(32), nullable=False),  # pipeline | nightly-rescore | ...
    sa.Column("status", sa.String(16), nullable=False, index=True),  # running|committed|failed|expired
    sa.Column("holder", sa.String(200), nullable=False),  # host, pid
    sa.Column("started_at", sa.String(32), nullable=False),
    sa.Column("heartbeat_at", sa.String(32), nullable=False),
    sa.Column("finished_at", sa.String(32)),
    sa.Column("committed_at", sa.String(32)),
    sa.Column("serves", sa.Boolean, nullable=False, default=True),  # False: a run that commits models only
    sa.Column("snapshot_id", sa.String(64)),
    sa.Column("store", sa.String(500)),
    sa.Column("out_dir", sa.Text),
    sa.Column("outputs_pending", sa.Boolean, nullable=False, default=False),
    sa.Column("discarded", sa.Boolean, nullable=False, default=False),  # a failed run's staged parts are gone
    sa.Column("tables", sa.Text),  # JSON list of the run's result tables
    sa.Column("champions", sa.Text),  # JSON: entity type -> model version
    sa.Column("manifest", sa.Text),
    sa.Column("message", sa.Text),
)

served_table = sa.Table(
    "served",
    metadata,
    sa.Column("key", sa.String(16), primary_key=True),  # always 'served'
    sa.Column("run_id", sa.String(40), nullable=False),
    sa.Column("seq", sa.Integer, nullable=False),  # +1 at every commit or rollback
    sa.Column("changed_at", sa.String(32), nullable=False),
)

# Credit supervision (docs/credit-policy.md): policy versions (seeded from rules/policies, then
# changed through the API), list entries imported from the national credit platform, and
# corrections accepted on objection (the pluggable input of early removal from a list).
policies_table = sa.Table(
    "policies",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("policy_id", sa.String(64), nullable=False, index=True),
    sa.Column("version", sa.String(64), nullable=False),
    sa.Column("effective_date", sa.String(10), nullable=False),  # YYYY-MM-DD
    sa.Column("body", sa.Text, nullable=False),  # the whole policy, JSON
    sa.Column("changed_by", sa.String(64), nullable=False),
    sa.Column("changed_at", sa.String(32), nullable=False),
    sa.Column("note", sa.Text),
    sa.UniqueConstraint("policy_id", "version", name="uq_policy_version"),
)

list_entries_table = sa.Table(
    "list_entries",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("import_id", sa.String(40), nullable=False, index=True),
    sa.Column("entity_type", sa.String(16), nullable=False),
    sa.Column("entity_id", sa.String(128), nullable=False),
    sa.Column("credit_code", sa.String(18)),
    sa.Column("list", sa.String(64), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("reason", sa.Text),
    sa.Column("legal_basis", sa.Text),
    sa.Column("listed_date", sa.String(10)),
    sa.Column("removed_date", sa.String(10)),
    sa.Column("authority", sa.Text),
    sa.Column("imported_at", sa.String(32), nullable=False),
)

corrections_table = sa.Table(
    "credit_corrections",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("entity_type", sa.String(16), nullable=False),
    sa.Column("entity_id", sa.String(128), nullable=False),
    sa.Column("corrected_date", sa.String(10), nullable=False),
    sa.Column("source", sa.String(64), nullable=False),  # e.g. objection:<case id>
    sa.Column("recorded_at", sa.String(32), nullable=False),
)

# Clerical-review decisions on person record pairs (docs/resolution.md): the latest per pair is
# honoured by the next run's resolution; every decision is also an audit row.
person_decisions_table = sa.Table(
    "person_decisions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("left_id", sa.String(128), nullable=False, index=True),
    sa.Column("right_id", sa.String(128), nullable=False),
    sa.Column("decision", sa.String(16), nullable=False),  # accept | reject
    sa.Column("actor", sa.String(200), nullable=False),
    sa.Column("decided_at", sa.String(32), nullable=False),
    sa.Column("run_id", sa.String(40)),  # the served run the decision was made on
)

# -- case work (composer/cases.py, docs/cases.md): written only by its transactions, each with
# its audit row; never dropped with a run (they outlive every run they refer to)
cases_table = sa.Table(
    "cases",
    metadata,
    sa.Column("case_id", sa.String(40), primary_key=True),
    sa.Column("subject_type", sa.String(16), nullable=False),  # person ... agency | ring
    sa.Column("subject_id", sa.String(128), nullable=False, index=True),
    sa.Column("typology", sa.String(64), nullable=False),
    sa.Column("alert_id", sa.String(40), index=True),
    sa.Column("run_id", sa.String(40)),  # the served run when the case was opened
    sa.Column("region", sa.String(128)),
    sa.Column("status", sa.String(24), nullable=False, index=True),
    sa.Column("assignee", sa.String(128), index=True),
    sa.Column("due_date", sa.String(10)),
    sa.Column("created_at", sa.String(32), nullable=False),
    sa.Column("created_by", sa.String(128), nullable=False),
    sa.Column("updated_at", sa.String(32), nullable=False),
    sa.Column("proposed_by", sa.String(128)),  # who asked for confirmation (four eyes)
    sa.Column("disposition", sa.String(16)),  # confirmed | dismissed
    sa.Column("decided_by", sa.String(128)),
    sa.Column("decided_at", sa.String(32)),
    sa.Column("as_of", sa.String(10)),  # the label's point in time: the decision's date
    sa.Column("note", sa.Text),  # the disposition's note
    sa.Column("version", sa.Integer, nullable=False),  # +1 at every change
)

case_events_table = sa.Table(
    "case_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("case_id", sa.String(40), nullable=False, index=True),
    sa.Column("at", sa.String(32), nullable=False),
    sa.Column("actor", sa.String(128), nullable=False),
    sa.Column("role", sa.String(32), nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),  # created | status | assigned | comment | ...
    sa.Column("from_status", sa.String(24)),
    sa.Column("to_status", sa.String(24)),
    sa.Column("note", sa.Text),
    sa.Column("detail", sa.Text),  # JSON
)

objections_table = sa.Table(
    "objections",
    metadata,
    sa.Column("objection_id", sa.String(40), primary_key=True),
    sa.Column("entity_type", sa.String(16), nullable=False),
    sa.Column("entity_id", sa.String(128), nullable=False, index=True),
    sa.Column("against", sa.String(16), nullable=False),  # grade | rule_hit
    sa.Column("rule_id", sa.String(128)),
    sa.Column("records", sa.Text, nullable=False),  # JSON: [{table, key}] the disputed records
    sa.Column("statement", sa.Text, nullable=False),
    sa.Column("status", sa.String(16), nullable=False, index=True),  # open | corrected | rejected
    sa.Column("case_id", sa.String(40)),
    sa.Column("created_at", sa.String(32), nullable=False),
    sa.Column("created_by", sa.String(128), nullable=False),
    sa.Column("decided_at", sa.String(32)),
    sa.Column("decided_by", sa.String(128)),
    sa.Column("note", sa.Text),
    sa.Column("before", sa.Text),  # JSON: grade, points, risk, rule hits before the correction
    sa.Column("after", sa.Text),  # JSON: the same after the re-grade
    sa.Column("regrade_run_id", sa.String(40)),
)

amendments_table = sa.Table(
    "amendments",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("objection_id", sa.String(40), nullable=False, index=True),
    sa.Column("table_name", sa.String(32), nullable=False),
    sa.Column("row_key", sa.Text, nullable=False),  # JSON: the row's key columns and values
    sa.Column("action", sa.String(8), nullable=False),  # update | delete
    sa.Column("changes", sa.Text),  # JSON: column -> new value (update)
    sa.Column("at", sa.String(32), nullable=False),
    sa.Column("actor", sa.String(128), nullable=False),
)
