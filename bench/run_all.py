"""`make bench`: run every bench/bench_*.py in turn (each prints its own figures).

Benchmarks compare against a floor measured in the same run: the machine is shared
and noisy, so ratios matter, not absolute times. BENCH_SCALE (default 1.0) scales
row counts down for a quick look, e.g. BENCH_SCALE=0.1 make bench.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

here = Path(__file__).resolve().parent
only = set(sys.argv[1:])
failed = []
for script in sorted(here.glob("bench_*.py")):
    if only and script.stem not in only and script.stem.removeprefix("bench_") not in only:
        continue
    print(f"\n=== {script.name} ===", flush=True)
    if subprocess.run([sys.executable, str(script)], cwd=here.parent).returncode != 0:
        failed.append(script.name)
print("\nbench: all ran" if not failed else f"\nbench: failed: {', '.join(failed)}")
sys.exit(1 if failed else 0)
