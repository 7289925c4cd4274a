"""The rejects file of a sync: every row the gate refused, with its reasons, as JSON Lines."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tacn.pipelines.errors import UsageError
from tacn.pipelines.extjson import jsonable

if TYPE_CHECKING:
    import pandas as pd


class RejectsFile:
    """JSON Lines of rejected rows, opened on the first one (no file when nothing is rejected)."""

    def __init__(self, path: Path | None, source: str):
        self.path = path
        self.source = source
        self.count = 0
        self._handle = None
        self._lock = threading.Lock()

    def write(self, raw: pd.DataFrame, reasons: dict[Any, list[str]], *, symbol: str | None = None) -> int:
        if not reasons:
            return 0
        lines = []
        for label, why in sorted(reasons.items(), key=lambda item: str(item[0]).zfill(20)):
            record = {str(k): jsonable(v) for k, v in raw.loc[label].items()} if label in raw.index else {}
            lines.append(json.dumps({
                "source": self.source,
                "symbol": symbol or record.get("symbol") or record.get("股票代码") or record.get("ts_code"),
                "row": jsonable(label),
                "reasons": why,
                "record": record,
            }, ensure_ascii=False))
        with self._lock:
            self.count += len(lines)
            if self.path is not None:
                if self._handle is None:
                    try:
                        self.path.parent.mkdir(parents=True, exist_ok=True)
                        self._handle = self.path.open("w", encoding="utf-8")  # this run's rejects only
                    except OSError as exc:
                        raise UsageError(f"cannot write the rejects file {self.path}: {exc.strerror or exc}") from None
                self._handle.write("\n".join(lines) + "\n")
                self._handle.flush()
        return len(lines)

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None
