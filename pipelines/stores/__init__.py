"""Stores: open one by URL. Driver imports happen only here, on demand."""

from __future__ import annotations

from tacn.pipelines.errors import UsageError
from tacn.pipelines.stores.base import CREATE, READ, WRITE, QuoteStore, RecordFilter, UpsertResult, mask_url

__all__ = ["CREATE", "READ", "WRITE", "QuoteStore", "RecordFilter", "UpsertResult", "mask_url", "open_store"]


def open_store(url: str, *, mode: str = READ, database: str | None = None, timeout_ms: int = 5_000) -> QuoteStore:
    """Open the store a URL names: ``sqlite:///PATH``, ``mongodb://…`` or ``mongodb+srv://…``.

    ``mode`` (READ, WRITE, CREATE): only CREATE makes a store that does not exist.
    """
    if url.startswith("sqlite:"):
        from tacn.pipelines.stores.sqlite import SQLiteStore

        return SQLiteStore.from_url(url, mode=mode)
    if url.startswith(("mongodb://", "mongodb+srv://")):
        from tacn.pipelines.stores.mongo import MongoStore

        return MongoStore.from_url(url, database=database, timeout_ms=timeout_ms, mode=mode)
    raise UsageError(
        f"unsupported store URL {mask_url(url)!r}: use sqlite:///PATH, mongodb://HOST:PORT/DB or mongodb+srv://…"
    )
