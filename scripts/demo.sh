#!/usr/bin/env bash
# `make demo`: seed the synthetic dataset and walk through every pipeline that exists,
# checking that each step exits as expected. Exits 0 only when every step behaved.
set -uo pipefail
export TACN_HOME="${TACN_HOME:-$HOME/.local/share/tacn}"
DEMO_STORE="sqlite:///$TACN_HOME/demo.db"
failures=0

step() {  # step "what it shows" EXPECTED_EXIT command args…
  local what="$1" expected="$2"; shift 2
  printf '\n\033[1m== %s\033[0m\n$ %s   (expect exit %s)\n' "$what" "$*" "$expected"
  "$@"
  local rc=$?
  if [ "$rc" -eq "$expected" ]; then
    printf '\033[32m-> exit %s as expected\033[0m\n' "$rc"
  else
    printf '\033[31m-> exit %s, expected %s\033[0m\n' "$rc" "$expected"
    failures=$((failures + 1))
  fi
}

step "Seed the synthetic dataset (with the 2025-10-23 bug)" 0 tacn demo
step "What the store holds: the invalid trade_dates show" 0 tacn stats --store "$DEMO_STORE"
# --- sync steps (issue: tacn sync) ---
SYNC_SAMPLE="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/examples/akshare_quotes_sample.csv"
step "Sync a CSV in AKShare's layout; one row has the 2025-10-23 bug (日期 \"0\"): it is rejected, the rest written (exit 1)" 1 tacn sync --source "file:$SYNC_SAMPLE" --store "$DEMO_STORE" --rejects "$TACN_HOME/sync-rejects.jsonl"
step "The rejects file: the row as sent and why" 0 cat "$TACN_HOME/sync-rejects.jsonl"
step "The same sync again: idempotent (0 inserted, 0 updated; the bad row is still rejected)" 1 tacn sync --source "file:$SYNC_SAMPLE" --store "$DEMO_STORE" --rejects "$TACN_HOME/sync-rejects.jsonl"
step "The run record tacn sync keeps (sync_status shape)" 0 tacn sync --status --store "$DEMO_STORE" --limit 3
# --- qfq and re-basing (offline: a local stand-in for Tushare's API, pipelines/sources/dev_server.py) ---
# Synthetic quotes; 600000 has a dividend on 2025-10-20, unknown to the sources until their as-of date passes it.
QFQ_STORE="sqlite:///$TACN_HOME/demo-qfq.db"
rm -f "$TACN_HOME/demo-qfq.db" "$TACN_HOME/demo-qfq.db-wal" "$TACN_HOME/demo-qfq.db-shm"
QUOTES_PORT_FILE="$(mktemp -u "${TMPDIR:-/tmp}/tacn-demo-quotes.XXXXXX")"
QUOTES_AS_OF="$(mktemp "${TMPDIR:-/tmp}/tacn-demo-asof.XXXXXX")"
echo 2025-10-10 > "$QUOTES_AS_OF"
"$(dirname "$(command -v tacn)")/python" -m tacn.pipelines.sources.dev_server --port-file "$QUOTES_PORT_FILE" \
  --as-of-file "$QUOTES_AS_OF" --token demo-token-0123456789abcdef &
QUOTES_PID=$!
for _ in $(seq 100); do [ -s "$QUOTES_PORT_FILE" ] && break; sleep 0.1; done
QFQ_SYNC=(env TUSHARE_TOKEN=demo-token-0123456789abcdef TACN_TUSHARE_URL="http://127.0.0.1:$(cat "$QUOTES_PORT_FILE" 2>/dev/null || echo 9)/dataapi"
  tacn sync --source tushare --symbols 000001,600000 --default-start 2025-06-02 --tushare-rate 60000
  --store "$QFQ_STORE" --backup-dir "$TACN_HOME/demo-backups")
step "Sync qfq prices (the default, as the application stores them: daily x adj_factor / latest factor, 2 decimals)" 0 "${QFQ_SYNC[@]}" --end 2025-10-10
echo 2025-10-24 > "$QUOTES_AS_OF"
step "Two weeks later, after 600000's dividend: the overlap session moved, so its whole span is re-based (backed up first)" 0 "${QFQ_SYNC[@]}" --end 2025-10-24
step "The same sync again: nothing changes, nothing re-based" 0 "${QFQ_SYNC[@]}" --end 2025-10-24
step "Unadjusted prices over a qfq store: refused (exit 3) with the exact --rebase command" 3 "${QFQ_SYNC[@]}" --end 2025-10-24 --adjust none
kill "$QUOTES_PID" 2>/dev/null; wait "$QUOTES_PID" 2>/dev/null; rm -f "$QUOTES_PORT_FILE" "$QUOTES_AS_OF"
# --- validate steps (issue: tacn validate) ---
step "Validate the demo store: the seeded bad trade_dates fail the gate" 1 tacn validate --store "$DEMO_STORE"
step "The same gate as JUnit XML for CI (exit 1 again)" 1 tacn validate --store "$DEMO_STORE" --rules trade_date_iso,key_unique --junit "$TACN_HOME/validate-junit.xml" --json --max-samples 1
step "The rule catalogue the validator runs" 0 tacn schema
# --- clean / restore / verify-fix / repair / migrate steps ---
DEMO_BACKUPS="$TACN_HOME/demo-backups"
rm -rf "$DEMO_BACKUPS"
step "Clean, dry run: count, breakdown by kind, samples; nothing changes" 0 tacn clean-invalid-trade-date --store "$DEMO_STORE"
step "Clean for real: Extended JSON backup + manifest first, then batched deletes" 0 tacn clean-invalid-trade-date --store "$DEMO_STORE" --yes --backup-dir "$DEMO_BACKUPS" --batch-size 1000
step "verify-fix: no invalid trade_date left (the real rule, not len >= 8)" 0 tacn verify-fix --store "$DEMO_STORE" --symbol 000001
step "Restore the backup (checksum verified first): every record back, _id included" 0 sh -c 'tacn restore "$1"/clean-invalid-trade-date-*.manifest.json --store "$2"' _ "$DEMO_BACKUPS" "$DEMO_STORE"
step "verify-fix finds the restored bad records again" 1 tacn verify-fix --store "$DEMO_STORE" --dates-only
step "Repair, dry run: which (symbol, data_source) pairs lost records and the span to re-sync" 0 tacn repair --store "$DEMO_STORE"
step "Clean again (offline demo: a real repair re-syncs from AKShare/Tushare)" 0 tacn clean-invalid-trade-date --store "$DEMO_STORE" --yes --backup-dir "$DEMO_BACKUPS"
step "verify-fix passes" 0 tacn verify-fix --store "$DEMO_STORE"
step "Migrations: status (none applied yet)" 0 tacn migrate status --store "$DEMO_STORE"
step "Apply migrations 0001-0003 in order (nothing left to remove; recorded in tacn_migrations)" 0 tacn migrate up --store "$DEMO_STORE" --backup-dir "$DEMO_BACKUPS"
# --- MongoDB: the same tacn against a real MongoDB wire-protocol server (FerretDB) ---
FERRETDB_BIN="${FERRETDB_BIN:-$HOME/.cache/tacn/ferretdb/bin/ferretdb}"
if [ -x "$FERRETDB_BIN" ]; then
  FERRET_DIR="$(mktemp -d "${TMPDIR:-/tmp}/tacn-demo-ferretdb.XXXXXX")"
  mkdir -p "$FERRET_DIR/data" "$FERRET_DIR/state"
  FERRET_PORT="$("$(dirname "$(command -v tacn)")/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
  "$FERRETDB_BIN" --handler=sqlite --sqlite-url="file:$FERRET_DIR/data/" --listen-addr="127.0.0.1:$FERRET_PORT" \
    --state-dir="$FERRET_DIR/state" --debug-addr=- --telemetry=disable --log-level=error >"$FERRET_DIR/log" 2>&1 &
  FERRET_PID=$!
  for _ in $(seq 200); do (exec 3<>"/dev/tcp/127.0.0.1/$FERRET_PORT") 2>/dev/null && break; sleep 0.05; done
  MONGO_STORE="mongodb://127.0.0.1:$FERRET_PORT/tradingagents"
  step "MongoDB (FerretDB on 127.0.0.1:$FERRET_PORT): seed the synthetic dataset through the wire protocol" 0 tacn demo --store "$MONGO_STORE"
  step "Validate the MongoDB store: the seeded bad trade_dates fail the gate" 1 tacn validate --store "$MONGO_STORE" --rules trade_date_iso
  step "Clean the MongoDB store (backup first)" 0 tacn clean-invalid-trade-date --store "$MONGO_STORE" --yes --backup-dir "$FERRET_DIR/backups"
  step "Validate again: the trade_date gate passes on MongoDB" 0 tacn validate --store "$MONGO_STORE" --rules trade_date_iso
  kill "$FERRET_PID" 2>/dev/null; wait "$FERRET_PID" 2>/dev/null; rm -rf "$FERRET_DIR"
else
  printf '\n== MongoDB steps skipped: no FerretDB server at %s (`make ferretdb` builds it)\n' "$FERRETDB_BIN"
fi
# --- config-check steps ---
DEMO_ENV="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/examples/demo.env"
step "Configuration check of the example .env: placeholders warn, exit 0" 0 tacn config-check --offline --env-file "$DEMO_ENV"
# --- watch steps ---
# A local stand-in for the application's WebSocket endpoints (pipelines/watch/dev_server.py):
# it verifies JWTs with its own demo secret, publishes a notification every 0.3 s and runs one
# analysis task (demo-analysis-1) that completes after 3 s.
DEMO_JWT_SECRET="demo-only-jwt-secret-0123456789abcdef0123456789"
WS_PORT_FILE="$(mktemp -u "${TMPDIR:-/tmp}/tacn-demo-ws.XXXXXX")"
env JWT_SECRET="$DEMO_JWT_SECRET" "$(dirname "$(command -v tacn)")/python" -m tacn.pipelines.watch.dev_server \
  --port-file "$WS_PORT_FILE" --interval 0.3 --demo-task demo-analysis-1 &
WS_PID=$!
for _ in $(seq 100); do [ -s "$WS_PORT_FILE" ] && break; sleep 0.1; done
WS_API="http://127.0.0.1:$(cat "$WS_PORT_FILE" 2>/dev/null || echo 9)"
step "Tail the notification stream of the local demo server (token minted from JWT_SECRET)" 0 \
  env JWT_SECRET="$DEMO_JWT_SECRET" tacn watch --api-url "$WS_API" --mint-token --type notification --limit 5
step "The same stream as NDJSON for jq, for 3 seconds" 0 \
  env JWT_SECRET="$DEMO_JWT_SECRET" tacn watch --api-url "$WS_API" --mint-token --json --timeout 3
step "A refused token: exit 3 at once, the token never printed" 3 \
  tacn watch --api-url "$WS_API" --token not-a-valid-jwt-0123456789
step "Follow one analysis task: status polled, its progress shown, exit 0 when it completes" 0 \
  env JWT_SECRET="$DEMO_JWT_SECRET" tacn watch --api-url "$WS_API" --mint-token --task demo-analysis-1 --poll-interval 0.5
step "An unknown task: HTTP 404 from the application, exit 3" 3 \
  env JWT_SECRET="$DEMO_JWT_SECRET" tacn watch --api-url "$WS_API" --mint-token --task no-such-task
step "Who is connected to the WebSocket endpoints" 0 tacn ws-stats --api-url "$WS_API"
kill "$WS_PID" 2>/dev/null; wait "$WS_PID" 2>/dev/null; rm -f "$WS_PORT_FILE"
# --- data quality across sources: volume units, freshness, reconcile, HTML reports ---
step "Validate with the volume_unit rule: akshare in lots, tushare in shares, as the application stores them (exit 0)" 0 \
  tacn validate --store "$DEMO_STORE" --rules volume_unit,trading_day
step "Freshness: the synthetic data ends in 2025, so every series lags the latest completed XSHG session (exit 1)" 1 \
  tacn validate --store "$DEMO_STORE" --rules volume_unit --freshness
step "Reconcile akshare vs tushare: the bad close and 100x volume planted in tushare, and the days of 000001 the sample CSV synced above rewrote, are found (exit 1)" 1 \
  tacn reconcile --store "$DEMO_STORE" --failures-out "$TACN_HOME/reconcile-pairs.jsonl"
step "The same run with a self-contained HTML report (plots, no network) written under TACN_HOME" 1 \
  tacn reconcile --store "$DEMO_STORE" --html "$TACN_HOME/reconcile-report.html"
step "A validate report with completeness and units, as HTML too" 0 \
  tacn validate --store "$DEMO_STORE" --completeness --html "$TACN_HOME/validate-report.html"
echo "HTML reports: $TACN_HOME/reconcile-report.html $TACN_HOME/validate-report.html"

echo
if [ "$failures" -eq 0 ]; then echo "demo: every step behaved as expected"; else echo "demo: $failures step(s) did not"; fi
exit "$failures"
