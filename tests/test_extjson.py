"""tacn's Extended JSON codec: round trips, and malformed lines as clear errors in every reader."""

from __future__ import annotations

import math
from datetime import date, datetime

import pytest
from bson import Int64, ObjectId
from typer.testing import CliRunner

from tacn.cli.app import app
from tacn.pipelines.extjson import decode_line, encode_document

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


# -- every type the codec carries comes back as the same value of the same type -------------
def _bson_values():
    from datetime import timedelta

    from bson import Binary, Code, Decimal128, Int64, MaxKey, MinKey, Regex, Timestamp
    from hypothesis import strategies as st

    # years 1..9999: before 1970 and after 2038; whole milliseconds ($date) and finer ($tacnDatetime)
    naive = st.datetimes().map(lambda d: d.replace(fold=0))  # fold is not data: BSON has no place for it
    millis = naive.map(lambda d: d - timedelta(microseconds=d.microsecond % 1000))
    scalars = st.one_of(
        st.none(), st.booleans(), st.text(max_size=8),
        st.integers(min_value=-(2**31), max_value=2**31 - 1),
        st.integers(min_value=-(2**63), max_value=2**63 - 1).map(Int64),
        st.floats(),  # NaN, ±Infinity and -0.0 included
        st.decimals(min_value=-(10**20), max_value=10**20, places=4).map(lambda d: Decimal128(str(d))),
        st.binary(max_size=16),
        st.tuples(st.binary(max_size=16), st.sampled_from([1, 2, 3, 5, 6, 7, 128])).map(lambda t: Binary(*t)),
        millis,
        naive,
        st.builds(ObjectId),
        st.builds(Regex, st.text(alphabet="ab.*", max_size=5), st.sampled_from(["", "i", "ms"])),
        st.builds(Timestamp, st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1)),
        st.sampled_from([MinKey(), MaxKey()]),
        st.tuples(st.text(max_size=8)).map(lambda t: Code(t[0])),
    )
    return st.recursive(scalars, lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(alphabet="abcxyz", min_size=1, max_size=4), inner, max_size=3)),
        max_leaves=8)


def exactly(value):
    """The value with every type made visible, so that 5 and Int64(5) or "x" and Code("x") differ."""
    if isinstance(value, dict):
        return ("dict", sorted((k, exactly(v)) for k, v in value.items()))  # SQLite keeps no key order
    if isinstance(value, list):
        return ("list", [exactly(v) for v in value])
    return (type(value).__name__, repr(value))


def test_every_extended_json_type_round_trips_with_its_type():
    from bson import Code, Int64

    doc = {"long": Int64(5), "big": Int64(2**40), "code": Code("x"), "nested": [{"n": Int64(-1)}], "nan": Int64(0)}
    back = decode_line(encode_document(doc))
    assert exactly(back) == exactly(doc)
    assert '"long":{"$numberLong":"5"}' in encode_document(doc)


def test_extended_json_round_trip_property():
    from hypothesis import given, settings
    from hypothesis import strategies as st

    @settings(max_examples=300, deadline=None)
    @given(st.dictionaries(st.text(alphabet="abcxyz", min_size=1, max_size=4), _bson_values(), max_size=5))
    def check(doc):
        assert exactly(decode_line(encode_document(doc))) == exactly(doc)

    check()


def test_jsonable_is_plain_json_for_every_value_a_report_holds():
    import dataclasses
    import json
    from pathlib import Path

    import numpy as np
    import pandas as pd

    from tacn.pipelines.extjson import jsonable

    @dataclasses.dataclass
    class Row:
        when: datetime
        values: tuple

    oid = ObjectId("64b7f0c2a1b2c3d4e5f60718")
    value = {
        "nan": float("nan"), "nat": pd.NaT, "na": pd.NA, "np_float": np.float64(1.5), "np_int": np.int64(7),
        "np_bool": np.bool_(True), "int64": Int64(2**40), "day": date(2025, 10, 24), "ts": pd.Timestamp("2025-10-24 08:00"),
        "oid": oid, "path": Path("/tmp/x"), "row": Row(datetime(2025, 10, 24, 8), (1, "a")), 3: {1, 2} - {2},
    }
    out = jsonable(value)
    assert out == {
        "nan": None, "nat": None, "na": None, "np_float": 1.5, "np_int": 7, "np_bool": True, "int64": 2**40,
        "day": "2025-10-24", "ts": "2025-10-24T08:00:00", "oid": str(oid), "path": "/tmp/x",
        "row": {"when": "2025-10-24T08:00:00", "values": [1, "a"]}, "3": [1],
    }
    assert json.loads(json.dumps(out, allow_nan=False)) == out
    assert type(out["int64"]) is int and type(out["np_int"]) is int
