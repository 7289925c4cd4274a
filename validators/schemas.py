"""pandera schemas of the quote document, built from the rule catalogue.

pandera stays the schema language: every row-level rule of
:mod:`validators.rules` becomes a named dataframe-wide ``pa.Check`` (warnings
as ``raise_warning`` checks), and the key becomes the schema's ``unique``
constraint. The checks ARE the rule functions, so the schema and the
validator cannot disagree.

The validate pipeline does not ask pandera for failure cases on big frames:
pandera builds one Python object per failing row and column, which costs
seconds when many rows fail. It evaluates the same functions as boolean masks
(:func:`validators.rules.failing_masks`) and counts them vectorised.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from validators.records import KEY_FIELDS
from validators.rules import CHECKS, ROW, CheckContext, Rule, select_rules

if TYPE_CHECKING:
    import pandas as pd
    import pandera.pandas as pa


def rule_check(rule: Rule, context: CheckContext | None = None) -> pa.Check:
    """The pandera Check of a row-level rule: True where the row passes."""
    import pandera.pandas as pa

    fails = CHECKS[rule.name]
    ctx = context or CheckContext()
    return pa.Check(
        lambda frame: ~fails(frame, ctx),
        name=rule.name,
        error=rule.description,
        description=rule.description,
        ignore_na=False,  # a missing value is judged by the rule, not skipped
        raise_warning=rule.severity == "warning",
    )


def quote_schema(
    *,
    severity: str | None = None,
    rules: Iterable[str] | None = None,
    context: CheckContext | None = None,
) -> pa.DataFrameSchema:
    """The document schema for the selected rules (all by default).

    ``key_unique`` becomes the schema's ``unique`` constraint, which holds
    within the frame pandera sees; across chunks the pipeline checks it.
    """
    import pandera.pandas as pa

    selected = select_rules(severity=severity, rules=rules)
    checks = [rule_check(rule, context) for rule in selected if rule.scope == ROW]
    unique = list(KEY_FIELDS) if any(rule.name == "key_unique" for rule in selected) else None
    return pa.DataFrameSchema(
        checks=checks,
        unique=unique,
        name="stock_daily_quotes",
        description="A TradingAgents-CN stock_daily_quotes document",
        strict=False,
        coerce=False,
    )


def failed_rule_names(frame: pd.DataFrame, **selection) -> set[str]:
    """Which rules pandera itself reports as failing on ``frame`` (small frames: tests, debugging).

    pandera names a failed check by its error text (raised errors and warnings
    alike), so the text is mapped back to the rule name.
    """
    import warnings

    from pandera.errors import SchemaErrors, SchemaWarning

    schema = quote_schema(**selection)
    by_text = {check.error: check.name for check in schema.checks}
    failed: set[str] = set()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            schema.validate(frame, lazy=True)
        except SchemaErrors as exc:
            for text in exc.failure_cases["check"].dropna().unique():
                failed.add("key_unique" if text == "multiple_fields_uniqueness" else by_text.get(text, str(text)))
    for warning in caught:
        if issubclass(warning.category, SchemaWarning):
            message = str(warning.message)
            failed.update(name for text, name in by_text.items() if f": {text} failure cases" in message)
    return failed
