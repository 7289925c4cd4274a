"""MongoDB path benchmark: 200,000 documents through a real FerretDB server (SQLite backend).

Each tacn run is a real CLI process; each floor does the same work with bare pymongo,
in this process, against the same server:
(a) `tacn sync --source file:` (Extended JSON Lines in the application's document
    layout) into an empty database vs
    - the application's way: `bulk_write` of `ReplaceOne(key, doc, upsert=True)` in
      batches of 200. On FerretDB v1 every keyed upsert scans the whole collection
      (only a single-_id filter reaches SQLite's index), so this floor is quadratic:
      it runs on the first BENCH_MONGO_UPSERT_DOCS (default 1,000) documents, against
      tacn syncing the same documents. Target <= 1.5.
    - the fastest plain write of the same documents: `insert_many` in batches of 200
      (only right for an empty collection; shown for the absolute cost at full size).
(b) `tacn validate --store mongodb://…` vs the fastest plain read of the same fields
    (pymongoarrow's find_arrow_all when installed, else find into a DataFrame) plus the
    same checks in plain polars (common.polars_rule_counts; tacn runs the same rules,
    common.row_and_key_rules). Target <= 1.5. Also shown: which path tacn's read takes
    (Arrow or pymongo, per chunk: MongoStore.last_read on one symbol; on FerretDB the automatic
    choice is the plain find) and tacn validate with the Arrow path forced (TACN_MONGO_ARROW=on).
(c) `tacn clean-invalid-trade-date --yes` with 16,526 bad records vs one bare `delete_many`
    of the same predicate on an identical copy. Target <= 2.0. tacn reads and backs up the
    selection (one pass on FerretDB), then deletes it in one guarded pass (the same predicate,
    ObjectIds within the backup's span, updated_at older than the backup): two passes against
    the floor's one. The bad records are inserted last, as a recent broken sync writes them
    (their _ids form one span); BENCH_MONGO_BAD_LAYOUT=spread scatters them among the good
    ones instead, so that the span covers the whole collection (the guard then saves nothing).
Sizes: BENCH_MONGO_DOCS (default 200,000 x BENCH_SCALE) and the bad records scale with it;
BENCH_MONGO_PARTS=sync,validate,clean runs only those parts (validate reads what sync wrote).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import polars_rule_counts, report, row_and_key_rules, scaled, synthetic_documents  # noqa: E402

from tacn.pipelines.extjson import encode_document  # noqa: E402
from tacn.pipelines.stores.mongo import INDEXES, valid_date_query  # noqa: E402
from tacn.validators.records import COLLECTION, FIELD_NAMES  # noqa: E402
from tests.ferretdb_fixtures import BIN_ENV, DEFAULT_BIN, FerretServer  # noqa: E402

TOTAL = int(os.environ.get("BENCH_MONGO_DOCS", scaled(200_000)))
BAD = max(1, round(16_526 * TOTAL / 200_000))
UPSERT_DOCS = min(TOTAL, int(os.environ.get("BENCH_MONGO_UPSERT_DOCS", 1_000)))
BATCH = 200
SYMBOLS = 1_000
TARGETS = {"sync": 1.5, "validate": 1.5, "clean": 2.0}
PARTS = set(filter(None, os.environ.get("BENCH_MONGO_PARTS", "").split(",")))  # e.g. "clean"; default all
BAD_LAYOUT = os.environ.get("BENCH_MONGO_BAD_LAYOUT", "last")  # last | spread


def tacn(*args: str, home: Path, env: dict[str, str] | None = None) -> tuple[float, int, str]:
    """(wall seconds, exit code, stdout) of one real `tacn` run."""
    exe = os.path.join(os.path.dirname(sys.executable), "tacn")
    start = time.perf_counter()
    proc = subprocess.run([exe, *args], capture_output=True, text=True,
                          env={**os.environ, "TACN_HOME": str(home), **(env or {})})
    elapsed = time.perf_counter() - start
    if proc.returncode not in (0, 1):
        sys.exit(f"tacn {' '.join(args[:1])} failed with exit {proc.returncode}: {proc.stderr[-500:]}")
    return elapsed, proc.returncode, proc.stdout


def with_indexes(collection):
    """The application's indexes, as tacn creates them: the floors write into the same shape."""
    for keys, name, unique in INDEXES:
        collection.create_index(keys, name=name, unique=unique)
    return collection


def write_jsonl(path: Path, docs: list[dict]) -> Path:
    with path.open("w") as out:
        for doc in docs:
            out.write(encode_document(doc) + "\n")
    return path


def bench_sync(client, url: str, docs: list[dict], work: Path) -> list[tuple[str, str]]:
    from pymongo import ReplaceOne

    from tacn.validators.records import KEY_FIELDS

    small = docs[:UPSERT_DOCS]
    small_file, full_file = write_jsonl(work / "small.jsonl", small), write_jsonl(work / "full.jsonl", docs)
    tacn_small, _, _ = tacn("sync", "--source", f"file:{small_file}", "--store", f"{url}sync_small", home=work)
    floor_coll = with_indexes(client["floor_upsert"][COLLECTION])
    start = time.perf_counter()
    for i in range(0, len(small), BATCH):
        floor_coll.bulk_write([ReplaceOne({k: d[k] for k in KEY_FIELDS}, d, upsert=True) for d in small[i:i + BATCH]],
                              ordered=False)
    floor_small = time.perf_counter() - start
    tacn_full, _, _ = tacn("sync", "--source", f"file:{full_file}", "--store", f"{url}sync_full", home=work)
    insert_coll = with_indexes(client["floor_insert"][COLLECTION])
    start = time.perf_counter()
    for i in range(0, len(docs), BATCH):
        insert_coll.insert_many([dict(d) for d in docs[i:i + BATCH]], ordered=False)
    insert_full = time.perf_counter() - start
    stored = client["sync_full"][COLLECTION].estimated_document_count()
    assert stored == len(docs) == insert_coll.estimated_document_count(), (stored, len(docs))
    ratio = tacn_small / floor_small
    client.drop_database("floor_upsert")
    client.drop_database("floor_insert")
    return [
        (f"(a) tacn sync, {len(small):,} docs", f"{tacn_small:.2f} s"),
        (f"    floor: ReplaceOne upserts x{BATCH}, {len(small):,} docs", f"{floor_small:.2f} s"),
        ("    ratio (target <= 1.5)", f"{ratio:.2f}  {'OK' if ratio <= TARGETS['sync'] else 'OVER'}"),
        (f"    tacn sync, {len(docs):,} docs", f"{tacn_full:.2f} s ({len(docs) / tacn_full:,.0f} docs/s)"),
        (f"    plain insert_many x{BATCH}, {len(docs):,} docs", f"{insert_full:.2f} s "
         f"(ratio {tacn_full / insert_full:.2f}; upserts at this size: quadratic, not run)"),
    ], ratio


def read_floor(collection):
    """The fastest plain read of the records' fields: (polars DataFrame, how)."""
    import polars as pl

    from tacn.pipelines.stores.mongo_arrow import arrow_context_class

    projection = {"_id": 0, **dict.fromkeys(FIELD_NAMES, 1)}
    if arrow_context_class() is not None:  # pymongoarrow loads (its import warnings silenced there)
        from pymongoarrow.api import find_arrow_all

        return pl.from_arrow(find_arrow_all(collection, {}, projection=projection)), "find_arrow_all"
    docs = list(collection.find({}, projection, batch_size=10_000))
    return pl.DataFrame(docs, infer_schema_length=None), "find -> DataFrame"


def tacn_read_path(url: str, database: str, symbol: str) -> str:
    """Which path tacn's reads take on this data: MongoStore.iter_frames on one symbol's records, in this process."""
    from tacn.pipelines.stores.base import RecordFilter
    from tacn.pipelines.stores.mongo import MongoStore
    from tacn.pipelines.validate import ValidateOptions

    with MongoStore.from_url(url, database=database) as store:
        for _ in store.iter_frames(RecordFilter(symbols=(symbol,)), chunk_size=ValidateOptions().chunk_size):
            pass
        stats = store.last_read.as_dict()
    if stats["mode"] != "arrow":
        return f"pymongo ({stats['reason']})"
    fallbacks = ", ".join(f"{why} x{n}" for why, n in stats["fallbacks"].items()) or "none"
    return f"arrow: {stats['arrow_chunks']} Arrow / {stats['pymongo_chunks']} pymongo chunk(s); fallbacks: {fallbacks}"


def bench_validate(client, url: str, work: Path) -> tuple[list[tuple[str, str]], float]:
    args = ("validate", "--store", f"{url}sync_full", "--rules", row_and_key_rules(), "--json")
    tacn_s, code, out = tacn(*args, home=work)  # the automatic choice: on FerretDB the plain find
    forced_s, forced_code, forced_out = tacn(*args, home=work, env={"TACN_MONGO_ARROW": "on"})
    counts = {r["name"]: r["failing"] for r in json.loads(out)["rules"]} if out.strip().startswith("{") else {}
    forced_counts = {r["name"]: r["failing"] for r in json.loads(forced_out)["rules"]} \
        if forced_out.strip().startswith("{") else {}
    start = time.perf_counter()
    frame, how = read_floor(client["sync_full"][COLLECTION])
    floor_counts = polars_rule_counts(frame)
    floor_s = time.perf_counter() - start
    agree = all(counts.get(name) == n for name, n in floor_counts.items()) if counts else "unknown"
    path = tacn_read_path(url, "sync_full", client["sync_full"][COLLECTION].find_one({}, {"symbol": 1})["symbol"])
    ratio = tacn_s / floor_s
    return [
        (f"(b) tacn validate (exit {code}), {len(frame):,} docs", f"{tacn_s:.2f} s"),
        ("    tacn's read path (one symbol, in process)", path),
        (f"    tacn validate, the Arrow path forced (TACN_MONGO_ARROW=on; exit {forced_code})", f"{forced_s:.2f} s "
         f"(ratio {forced_s / floor_s:.2f}; forced/automatic {forced_s / tacn_s:.2f}; same counts: {forced_counts == counts})"),
        (f"    floor: {how} + the same checks in plain polars", f"{floor_s:.2f} s"),
        ("    ratio (target <= 1.5)", f"{ratio:.2f}  {'OK' if ratio <= TARGETS['validate'] else 'OVER'}"),
        ("    same failing counts as the floor", str(agree)),
    ], ratio


def bench_clean(client, url: str, docs: list[dict], work: Path) -> tuple[list[tuple[str, str]], float]:
    from bson import ObjectId

    good = docs[: TOTAL - BAD]
    symbols = sorted({d["symbol"] for d in good})
    bad = [{**docs[i], "symbol": symbols[i % len(symbols)], "code": symbols[i % len(symbols)],
            "trade_date": str(i // len(symbols))} for i in range(BAD)]  # "0", "1", … per symbol, as the bug wrote
    mixed = good + bad
    if BAD_LAYOUT == "spread":  # every len/BAD-th record bad, so the bad _ids span the collection
        step = len(mixed) // len(bad)
        mixed = [doc for i in range(len(bad)) for doc in (*good[i * (step - 1):(i + 1) * (step - 1)], bad[i])]
        mixed += good[len(bad) * (step - 1):]
    seeded = [{**d, "_id": ObjectId()} for d in mixed]
    for name in ("clean_tacn", "clean_floor"):
        coll = with_indexes(client[name][COLLECTION])
        for i in range(0, len(seeded), 10_000):
            coll.insert_many([dict(d) for d in seeded[i:i + 10_000]], ordered=False)
    tacn_s, _, out = tacn("clean-invalid-trade-date", "--yes", "--store", f"{url}clean_tacn", "--backup-dir",
                          str(work / "backups"), "--json", home=work)
    start = time.perf_counter()
    deleted = client["clean_floor"][COLLECTION].delete_many({"trade_date": {"$not": valid_date_query()}}).deleted_count
    floor_s = time.perf_counter() - start
    left = client["clean_tacn"][COLLECTION].estimated_document_count()
    assert deleted == BAD and left == len(good), (deleted, left)
    ratio = tacn_s / floor_s
    return [
        (f"(c) tacn clean --yes, {BAD:,} bad of {len(seeded):,} ({BAD_LAYOUT})", f"{tacn_s:.2f} s"),
        ("    floor: one delete_many of the predicate", f"{floor_s:.2f} s"),
        ("    ratio (target <= 2.0)", f"{ratio:.2f}  {'OK' if ratio <= TARGETS['clean'] else 'OVER'}"),
    ], ratio


def main() -> None:
    import pymongo

    binary = Path(os.environ.get(BIN_ENV) or DEFAULT_BIN)
    if not os.access(binary, os.X_OK):
        sys.exit(f"bench_mongo: no FerretDB server at {binary} (make ferretdb builds it)")
    with tempfile.TemporaryDirectory(prefix="bench-mongo-") as tmp:
        work = Path(tmp)
        server = FerretServer(binary, work / "ferretdb").start()
        try:
            client = pymongo.MongoClient(server.url, socketTimeoutMS=3_600_000)
            url = server.url
            docs = synthetic_documents(TOTAL, symbols=SYMBOLS)
            rows, ratios = [], {}
            for name, run in (("sync", lambda: bench_sync(client, url, docs, work)),
                              ("validate", lambda: bench_validate(client, url, work)),
                              ("clean", lambda: bench_clean(client, url, docs, work))):
                if PARTS and name not in PARTS:
                    continue
                part, ratios[name] = run()
                rows += part
                report(f"bench_mongo (FerretDB, SQLite backend) — {name}", part)
            report(f"bench_mongo: {TOTAL:,} documents, FerretDB {binary}", rows)
        finally:
            server.stop()
    over = [name for name, ratio in ratios.items() if ratio > TARGETS[name]]
    if over:
        sys.exit(f"bench_mongo: over target: {', '.join(over)}")


if __name__ == "__main__":
    main()
