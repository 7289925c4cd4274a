"""Backups that survive a crash: JSON Lines of MongoDB Extended JSON plus a manifest.

A backup is two files in one directory:

- ``NAME.jsonl``: one document per line, MongoDB Extended JSON v2 in *relaxed*
  mode (what ``mongoexport`` writes and ``mongoimport`` reads), ``_id`` included.
  Two values Extended JSON cannot carry exactly get a tacn tag, read back by
  ``tacn restore``: a bare ``datetime.date`` (only the SQLite store can hold one)
  as ``{"$tacnDate": "YYYY-MM-DD"}``, and a naive datetime with sub-millisecond
  digits (Extended JSON keeps milliseconds) as ``{"$tacnDatetime": "ISO"}``.
- ``NAME.manifest.json``: count, SHA-256 and size of the data file, the
  selection, the store (password masked), the time, the state and the delete
  progress.

Order of writing, so that a SIGKILL at any moment leaves nothing lost: the data
goes to ``NAME.jsonl.tmp``, is flushed and fsynced, renamed, and the directory
fsynced; then the manifest is written the same way (tmp, fsync, ``os.replace``).
Only a backup whose manifest exists may be used to delete anything.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from bson import ObjectId

from tacn.pipelines.errors import SourceError, TacnError, UsageError
from tacn.pipelines.extjson import decode_line, encode_document
from tacn.pipelines.streams import connect_timeout, is_stream, iter_lines, open_input, read_bounded

FORMAT = "tacn-backup/1"
DATA_SUFFIX = ".jsonl"
MANIFEST_SUFFIX = ".manifest.json"
ENCODING_NOTE = (
    "MongoDB Extended JSON v2 (relaxed), one document per line; tacn tags: "
    '{"$tacnDate": "YYYY-MM-DD"} for a bare date, {"$tacnDatetime": "ISO"} for sub-millisecond datetimes'
)

# Per-line limit when reading a backup (not a whole-file limit: backups can be gigabytes).
# A document is at most 16 MiB of BSON; its Extended JSON can be a few times that.
MAX_LINE_BYTES = 64 * 1024 * 1024
MAX_MANIFEST_BYTES = 1024 * 1024

# States a manifest goes through: complete (backup written, nothing deleted yet),
# deleting (batches in progress), deleted (every backed-up record removed).
STATE_COMPLETE = "complete"
STATE_DELETING = "deleting"
STATE_DELETED = "deleted"


class BackupDamaged(TacnError):
    """The backup is damaged, truncated or altered: nothing is restored from it."""

    kind = "backup_damaged"


# -- test hook ---------------------------------------------------------------------
def pause_point(name: str) -> None:
    """Crash tests: with TACN_TEST_PAUSE_AT=name, announce readiness by a file and block.

    The test waits for TACN_TEST_PAUSE_FILE to appear, then SIGKILLs the process; or, with
    TACN_TEST_RESUME_FILE set, does something to the world and creates that file to let the
    run go on (at most a minute of waiting).
    """
    if os.environ.get("TACN_TEST_PAUSE_AT") != name:
        return
    ready = os.environ.get("TACN_TEST_PAUSE_FILE")
    if ready:
        Path(ready).write_text(name)
    resume = os.environ.get("TACN_TEST_RESUME_FILE")
    if resume:
        deadline = time.monotonic() + 60
        while not Path(resume).exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        return
    while True:  # blocked until killed
        time.sleep(3600)


_OID_PREFIX = '{"_id":{"$oid":"'


def id_of_line(line: str) -> Any:
    """The ``_id`` of one backup line; lines tacn writes start with it, so ObjectIds skip the parse."""
    if line.startswith(_OID_PREFIX) and line[len(_OID_PREFIX) + 24: len(_OID_PREFIX) + 27] == '"},':
        return ObjectId(line[len(_OID_PREFIX): len(_OID_PREFIX) + 24])
    return decode_id(json.loads(line)["_id"])


def decode_id(value: Any) -> Any:
    """The ``_id`` of a line parsed as plain JSON (fast path for ObjectIds)."""
    if isinstance(value, dict):
        if len(value) == 1 and "$oid" in value:
            return ObjectId(value["$oid"])
        return decode_line(json.dumps(value))
    return value


# -- files -------------------------------------------------------------------------
def fsync_directory(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_json_atomically(path: Path, payload: dict) -> None:
    """tmp file, flush, fsync, os.replace, fsync the directory: the old or the new, never half."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(payload, fh, indent=2, ensure_ascii=False)
        fh.write("\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    fsync_directory(path.parent)


def utc_stamp(now: datetime | None = None) -> str:
    now = now or datetime.now(UTC)
    return now.strftime("%Y%m%dT%H%M%SZ")


@dataclass
class Backup:
    data_path: Path
    manifest_path: Path
    manifest: dict

    @property
    def count(self) -> int:
        return int(self.manifest["count"])

    def save_manifest(self) -> None:
        write_json_atomically(self.manifest_path, self.manifest)


def manifest_path_for(data_path: Path) -> Path:
    name = data_path.name
    stem = name[: -len(DATA_SUFFIX)] if name.endswith(DATA_SUFFIX) else name
    return data_path.with_name(stem + MANIFEST_SUFFIX)


def prepare_directory(directory: Path) -> Path:
    directory = Path(directory).expanduser()
    if directory.exists() and not directory.is_dir():
        raise UsageError(f"backup directory {directory} is a file")
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create backup directory {directory}: {exc.strerror or exc}") from None
    if not os.access(directory, os.W_OK):
        raise UsageError(f"backup directory {directory} is not writable")
    return directory


def encode_line(doc: Any) -> bytes:
    """One backup line: the document as relaxed Extended JSON, newline-terminated, UTF-8."""
    return (encode_document(doc) + "\n").encode("utf-8")


def write_backup(
    docs: Iterable[dict],
    directory: Path,
    *,
    label: str,
    store: str,
    selection: dict,
    on_document=None,
    rendered: bool = False,
) -> Backup:
    """Write every document to a new backup in ``directory`` and return it (state complete).

    ``on_document(doc)`` is called for each document as it is written (summaries).
    ``rendered``: ``docs`` are already backup lines, each item one or more whole lines (bytes, each
    line ending in a newline, e.g. rendered by the store in C), written as they are.
    """
    directory = prepare_directory(directory)
    name = f"{label}-{utc_stamp()}-{secrets.token_hex(3)}"
    data_path = directory / (name + DATA_SUFFIX)
    tmp_path = directory / (name + DATA_SUFFIX + ".tmp")
    digest = hashlib.sha256()
    count = 0
    size = 0
    try:
        with open(tmp_path, "wb") as fh:
            pending: list[bytes] = []
            pending_lines = 0
            paused = False
            for doc in docs:
                if rendered:  # one or more whole lines (no newline inside a line: JSON escapes it)
                    pending.append(doc)
                    pending_lines += doc.count(b"\n")
                else:
                    pending.append(encode_line(doc))
                    pending_lines += 1
                    if on_document is not None:
                        on_document(doc)
                if pending_lines >= 1000:
                    chunk = b"".join(pending) if len(pending) > 1 else pending[0]
                    digest.update(chunk)
                    fh.write(chunk)
                    size += len(chunk)
                    count += pending_lines
                    pending.clear()
                    pending_lines = 0
                    if not paused:
                        paused = True
                        pause_point("backup-writing")
            chunk = b"".join(pending)
            digest.update(chunk)
            fh.write(chunk)
            size += len(chunk)
            count += pending_lines
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp_path, data_path)
        fsync_directory(directory)
    except OSError as exc:
        tmp_path.unlink(missing_ok=True)
        raise BackupDamaged(f"cannot write backup {data_path}: {exc.strerror or exc}") from None
    except BaseException:  # the store failed or Ctrl-C: no half file left behind (nothing was deleted)
        tmp_path.unlink(missing_ok=True)
        raise
    pause_point("backup-written")
    manifest = {
        "format": FORMAT,
        "data_file": data_path.name,
        "encoding": ENCODING_NOTE,
        "count": count,
        "sha256": digest.hexdigest(),
        "bytes": size,
        "store": store,
        "selection": selection,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "state": STATE_COMPLETE,
        "deleted": {"records": 0, "batches": 0, "lines_done": 0},
    }
    backup = Backup(data_path, manifest_path_for(data_path), manifest)
    try:
        backup.save_manifest()
    except OSError as exc:
        raise BackupDamaged(f"cannot write backup manifest {backup.manifest_path}: {exc.strerror or exc}") from None
    pause_point("manifest-written")
    return backup


def iter_backup_ids(backup: Backup, batch_size: int) -> Iterator[tuple[int, list[Any]]]:
    """(lines read so far, _ids) batches, taken from the backup file itself."""
    ids: list[Any] = []
    lines = 0
    with open(backup.data_path, "rb") as fh:
        for _, line in _text_lines(fh, backup.data_path):
            if not line.strip():
                continue
            lines += 1
            ids.append(id_of_line(line))
            if len(ids) >= batch_size:
                yield lines, ids
                ids = []
    if ids:
        yield lines, ids


def iter_backup_stamps(backup: Backup) -> Iterator[tuple[Any, Any]]:
    """(``_id``, ``updated_at`` or None when absent) of every line, in line order, from the backup file."""
    stamps: dict[str, Any] = {}  # raw JSON -> value: a sync stamps whole batches alike
    with open(backup.data_path, "rb") as fh:
        for _, line in _text_lines(fh, backup.data_path):
            if not line.strip():
                continue
            doc = json.loads(line)
            raw = doc.get("updated_at")
            if isinstance(raw, dict | list):
                key = json.dumps(raw)  # key order kept: embedded documents compare in order
                if key not in stamps:
                    stamps[key] = decode_line(f'{{"v":{key}}}')["v"]
                raw = stamps[key]
            yield decode_id(doc["_id"]), raw


def _text_lines(fh: BinaryIO, path: Path) -> Iterator[tuple[int, str]]:
    """(number, line) of a backup read as bytes: each line bounded, then decoded (UTF-8)."""
    for number, raw in iter_lines(fh, what=f"backup {path}", limit=MAX_LINE_BYTES, error=BackupDamaged):
        try:
            yield number, raw.decode("utf-8")
        except UnicodeDecodeError:
            raise BackupDamaged(f"backup {path}: line {number} is not UTF-8 text; refusing to restore") from None


# -- reading and verifying -----------------------------------------------------------
@dataclass
class VerifiedBackup:
    """A backup file ready to restore: checked against its manifest, or parsed in full without one."""

    data_path: Path
    manifest_path: Path | None
    manifest: dict | None
    count: int
    spool: BinaryIO | None = None  # a stream (pipe, FIFO) can be read once: its lines, kept while checked

    def documents(self) -> Iterator[dict]:
        if self.spool is not None:
            self.spool.seek(0)
            yield from self._documents(self.spool)
            return
        with open(self.data_path, "rb") as fh:
            yield from self._documents(fh)

    def _documents(self, fh: BinaryIO) -> Iterator[dict]:
        for number, line in _text_lines(fh, self.data_path):
            if line.strip():
                yield _parse_document(line, number, self.data_path)


def _parse_document(line: str, number: int, path: Path) -> dict:
    try:
        doc = decode_line(line)
    except (ValueError, TypeError, KeyError, OverflowError) as exc:
        raise BackupDamaged(f"{path}: line {number} is not Extended JSON ({str(exc)[:120]}); refusing to restore") from None
    if not isinstance(doc, dict) or "_id" not in doc:
        raise BackupDamaged(f"{path}: line {number} is not a document with an _id; refusing to restore")
    return doc


def open_backup(path: Path | str) -> VerifiedBackup:
    """Resolve BACKUP (data file or manifest), verify it, and return it. Raises BackupDamaged."""
    path = Path(path).expanduser()
    if not path.exists():
        raise SourceError(f"backup {path} does not exist")
    if path.is_dir():
        raise SourceError(f"backup {path} is a directory: give the .jsonl or .manifest.json file")
    manifest_path: Path | None = None
    manifest: dict | None = None
    if path.name.endswith(MANIFEST_SUFFIX):
        manifest_path = path
    elif manifest_path_for(path).exists() and manifest_path_for(path) != path:
        manifest_path = manifest_path_for(path)
    if manifest_path is not None:
        manifest = _read_manifest(manifest_path)
        data_path = manifest_path.with_name(str(manifest["data_file"]))
        if not data_path.exists():
            raise BackupDamaged(f"backup data file {data_path} named by {manifest_path} is missing")
        _verify_checksum(data_path, manifest)
        return VerifiedBackup(data_path, manifest_path, manifest, int(manifest["count"]))
    count = 0  # no manifest: every line must parse before anything is put back
    spool = tempfile.TemporaryFile() if is_stream(path) else None  # noqa: SIM115 - lives with the result
    with open_input(path, what="backup", timeout_s=connect_timeout(), error=SourceError) as fh:
        for number, line in _text_lines(fh, path):
            if line.strip():
                _parse_document(line, number, path)
                count += 1
            if spool is not None:
                spool.write(line.encode("utf-8"))
    return VerifiedBackup(path, None, None, count, spool)


def _read_manifest(path: Path) -> dict:
    try:
        with open_input(path, what="backup manifest", timeout_s=connect_timeout(), error=BackupDamaged) as fh:
            text = read_bounded(fh, what=f"backup manifest {path}", limit=MAX_MANIFEST_BYTES, error=BackupDamaged)
        manifest = json.loads(text.decode("utf-8"))
    except (OSError, ValueError) as exc:
        raise BackupDamaged(f"backup manifest {path} is unreadable: {str(exc)[:120]}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BackupDamaged(f"{path} is not a tacn backup manifest (format {FORMAT})")
    for key in ("data_file", "count", "sha256", "bytes"):
        if key not in manifest:
            raise BackupDamaged(f"backup manifest {path} lacks {key!r}")
    if Path(str(manifest["data_file"])).name != manifest["data_file"]:
        raise BackupDamaged(f"backup manifest {path} names a data file outside its directory")
    return manifest


def _verify_checksum(data_path: Path, manifest: dict) -> None:
    digest = hashlib.sha256()
    size = 0
    lines = 0
    with open_input(data_path, what="backup", timeout_s=connect_timeout(), error=BackupDamaged) as fh:
        while (chunk := fh.read(1 << 20)) and size <= manifest["bytes"]:  # /dev/zero ends here too
            digest.update(chunk)
            size += len(chunk)
            lines += chunk.count(b"\n")
    if size != manifest["bytes"] or digest.hexdigest() != manifest["sha256"]:
        raise BackupDamaged(
            f"backup {data_path} does not match its manifest (size {size:,} vs {manifest['bytes']:,} bytes, "
            "SHA-256 differs): it is damaged, truncated or altered; refusing to restore"
        )
    if lines != manifest["count"]:
        raise BackupDamaged(f"backup {data_path} holds {lines:,} lines but its manifest says {manifest['count']:,}")
