#!/usr/bin/env bash
# `make test-sdist`: what a user of the sdist gets. Builds the sdist, installs it with its test
# extra into a fresh venv, unpacks it and runs the WHOLE suite there with a plain pytest (no
# TACN_FERRETDB_BIN, no TACN_TEST_REQUIRE_SERVERS): a test whose server or browser is missing
# skips with its reason. Not part of `make test` (tests/test_packaging.py runs a focused part).
# Usage: scripts/test-sdist.sh PYTHON [pytest args…]   (PYTHON has `build` installed: the test extra)
set -euo pipefail
python="$1"; shift
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
work="$(mktemp -d "${TMPDIR:-/tmp}/tacn-sdist.XXXXXX")"
trap 'rm -rf "$work"' EXIT

"$python" -m build --sdist --outdir "$work/dist" "$repo" >"$work/build.log" 2>&1 || { cat "$work/build.log" >&2; exit 1; }
sdist="$(ls "$work"/dist/tacn-*.tar.gz)"
echo "sdist: $(basename "$sdist") ($(tar tzf "$sdist" | wc -l) files)"
"$python" -m venv "$work/venv"
"$work/venv/bin/python" -m pip install -q --disable-pip-version-check "$sdist[test]"
tar -xzf "$sdist" -C "$work"
cd "$work"/tacn-*/
env -u TACN_FERRETDB_BIN -u TACN_TEST_REQUIRE_SERVERS -u VIRTUAL_ENV -u PYTHONPATH \
  "$work/venv/bin/python" -m pytest -q -p no:cacheprovider "$@"
