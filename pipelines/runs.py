"""Run records where operators look for them.

The outcome of each job goes into ``sync_status`` in the application's shape
(one document per ``job``: status idle/running/success/success_with_errors/
failed, started_at, finished_at, total, inserted, updated, errors,
last_trade_date, message), so the application's own status page shows tacn's
runs. The full record of every run (per-symbol errors, warnings, options) goes
into ``tacn_runs``, newest kept. In SQLite both live in the store's auxiliary
table with the same fields.
"""

from __future__ import annotations

from typing import Any

from tacn.validators.records import utc_now

STATUS_COLLECTION = "sync_status"
HISTORY_COLLECTION = "tacn_runs"
KEEP_RUNS = 200
STATUSES = ("idle", "running", "success", "success_with_errors", "failed")


def new_run_id(job: str) -> str:
    """Sorts by start time: ``<job>-YYYYMMDDTHHMMSS.ffffff``."""
    return f"{job}-{utc_now():%Y%m%dT%H%M%S.%f}"


def write_status(store: Any, job: str, doc: dict) -> None:
    """Replace the application-shaped status document of ``job``."""
    if doc.get("status") not in STATUSES:
        raise ValueError(f"unknown run status {doc.get('status')!r}")
    store.aux_upsert(STATUS_COLLECTION, job, {"job": job, **doc})


def write_run(store: Any, run_id: str, doc: dict, *, keep: int = KEEP_RUNS) -> None:
    """Store one run's full record; older runs beyond ``keep`` are dropped."""
    store.aux_upsert(HISTORY_COLLECTION, run_id, {"run_id": run_id, **doc})
    runs = store.aux_find(HISTORY_COLLECTION)
    for old in runs[: max(0, len(runs) - keep)]:
        store.aux_delete(HISTORY_COLLECTION, old["run_id"])


def statuses(store: Any, *, job_prefix: str | None = None) -> list[dict]:
    docs = store.aux_find(STATUS_COLLECTION)
    return [d for d in docs if job_prefix is None or str(d.get("job", "")).startswith(job_prefix)]


def recent_runs(store: Any, *, limit: int = 10, job_prefix: str | None = None) -> list[dict]:
    """The newest ``limit`` runs, newest first."""
    runs = [r for r in store.aux_find(HISTORY_COLLECTION)
            if job_prefix is None or str(r.get("job", "")).startswith(job_prefix)]
    return list(reversed(runs))[:limit]


def mark_abandoned(store: Any, *, job_prefix: str, message: str) -> int:
    """Mark records still "running" as failed: call only while holding the lock those runs held."""
    count = 0
    for status in statuses(store, job_prefix=job_prefix):
        if status.get("status") == "running":
            write_status(store, status["job"], {**status, "status": "failed", "message": message})
            count += 1
    for run in store.aux_find(HISTORY_COLLECTION):
        if run.get("status") == "running" and str(run.get("job", "")).startswith(job_prefix):
            store.aux_upsert(HISTORY_COLLECTION, run["run_id"], {**run, "status": "failed", "message": message})
            count += 1
    return count
