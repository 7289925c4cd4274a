"""The fast paths of judging a chunk give the same answers as the general paths they shortcut.

Arrow-backed text columns and float64/int64 number columns take vectorised shortcuts (Arrow compute,
numpy); object columns of mixed types take the general path, value by value. The same values in
both forms must give the same masks, key hashes and duplicate flags.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tacn.pipelines.validate import SeenKeys, key_hashes
from tacn.validators.records import KEY_FIELDS

# -- key uniqueness across chunks --------------------------------------------------------------

# hashes from a small pool, spread over every top byte (bucket), so chunks repeat values within and across
POOL = st.integers(0, 300).map(lambda k: (k * 0x9E3779B97F4A7C15 + (k % 7) * (1 << 63)) % (1 << 64))


@settings(max_examples=150, deadline=None)
@given(st.lists(st.lists(POOL, max_size=60), min_size=1, max_size=8))
def test_seen_keys_flags_what_a_python_set_has_seen(chunks):
    seen, reference = SeenKeys(), set()
    for chunk in chunks:
        expected = []
        for value in chunk:
            expected.append(value in reference)
            reference.add(value)
        assert seen.add(np.array(chunk, dtype=np.uint64)).tolist() == expected
    assert seen.distinct == len(reference)


KEY_TEXT = st.one_of(st.sampled_from(["600000", "000001", "1", "2025-10-23", "20251023", "", " ", "nan", "None",
                                      "daily", "akshare", "٠١٢٣٤٥", "６００００", "a\x00b", "é"]),
                     st.text(max_size=4), st.none(), st.just(float("nan")))


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(KEY_TEXT, KEY_TEXT, KEY_TEXT, KEY_TEXT), min_size=1, max_size=30),
       st.sampled_from(["str", "string"]))
def test_key_hashes_of_text_columns_are_those_of_their_object_form(rows, dtype):
    """Missing values included: a str column keeps its Arrow form and hashes as the object column of the same
    texts, with None where a value is missing, does."""
    as_object = pd.DataFrame(rows, columns=list(KEY_FIELDS), dtype=object)
    as_object = as_object.where(as_object.notna(), None)
    typed = as_object.astype(dtype)
    assert key_hashes(typed).tolist() == key_hashes(as_object).tolist()
    assert SeenKeys().add(key_hashes(typed)).tolist() == SeenKeys().add(key_hashes(as_object)).tolist()
