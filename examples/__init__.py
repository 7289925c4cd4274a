"""Example inputs, shipped in the wheel as ``tacn.examples`` (read with importlib.resources).

- ``akshare_quotes_sample.csv``: daily quotes in AKShare's layout; one row carries the
  2025-10-23 bug (日期 "0"), for ``tacn sync --source file:…`` and ``tacn validate``.
- ``demo.env``: a fake application configuration for ``tacn config-check --env-file``.
"""
