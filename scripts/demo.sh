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
# --- validate steps (issue: tacn validate) ---
step "Validate the demo store: the seeded bad trade_dates fail the gate" 1 tacn validate --store "$DEMO_STORE"
step "The same gate as JUnit XML for CI (exit 1 again)" 1 tacn validate --store "$DEMO_STORE" --rules trade_date_iso,key_unique --junit "$TACN_HOME/validate-junit.xml" --json --max-samples 1
step "The rule catalogue the validator runs" 0 tacn schema
# --- clean / restore / verify-fix / repair / migrate steps ---
# --- config-check steps ---
DEMO_ENV="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/examples/demo.env"
step "Configuration check of the example .env: placeholders warn, exit 0" 0 tacn config-check --offline --env-file "$DEMO_ENV"
# --- watch steps ---

echo
if [ "$failures" -eq 0 ]; then echo "demo: every step behaved as expected"; else echo "demo: $failures step(s) did not"; fi
exit "$failures"
