"""tacn's Extended JSON codec: round trips, and malformed lines as clear errors in every reader."""

from __future__ import annotations

import math
from datetime import date, datetime

import pytest
from bson import ObjectId
from typer.testing import CliRunner

from pipelines.extjson import decode_line, encode_document
from tacn_cli.app import app

BAD_OID_LINE = '{"_id": {"$oid": "nothex"}, "symbol": "000001", "trade_date": "2025-10-23"}\n'


def test_round_trip_keeps_tacn_tags_and_non_finite_floats():
    doc = {"_id": ObjectId(), "day": date(2025, 10, 23), "at": datetime(2025, 10, 23, 9, 0, 0, 123456),
           "ms": datetime(2025, 10, 23, 9, 0, 0, 123000), "nan": math.nan, "inf": math.inf, "n": 7}
    back = decode_line(encode_document(doc))
    assert math.isnan(back.pop("nan")) and math.isnan(doc.pop("nan"))
    assert back == doc and type(back["n"]) is int


@pytest.mark.parametrize("line", [BAD_OID_LINE, "{not json", '{"$date": {"$numberLong": "x"}}'])
def test_malformed_lines_are_value_errors(line):
    with pytest.raises(ValueError):
        decode_line(line)


@pytest.mark.parametrize("args, code", [
    (["validate", "{path}"], 3),
    (["restore", "{path}", "--store", "sqlite:///{db}"], 3),
])
def test_commands_report_a_bad_object_id_as_a_bad_line(tmp_path, args, code):
    path = tmp_path / "bad.jsonl"
    path.write_text(BAD_OID_LINE, encoding="utf-8")
    argv = [a.format(path=path, db=tmp_path / "s.db") for a in args]
    result = CliRunner().invoke(app, argv)
    assert result.exit_code == code, result.stderr
    assert "unexpected" not in result.stderr and "line 1" in result.stderr
