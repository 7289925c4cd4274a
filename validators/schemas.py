"""pandera schemas of the quote document, built from the rule catalogue; the engine of validate and the sync gate.

pandera is the schema language and the engine: every row-level rule of
:mod:`tacn.validators.rules` becomes a named, vectorised dataframe-wide
``pa.Check`` (the rule's own function, which returns a boolean Series), and
:func:`judge` runs the schema with lazy validation on each chunk. The counts
come from each failed check's ``check_output`` and the samples from its
failure cases, which pandera is asked to keep short (``n_failure_cases``):
pandera would otherwise build one Python object per failing row and column.

Dataset-wide rules (key uniqueness across chunks, completeness) cannot be
decided by a chunk: the validate pipeline computes them around pandera.

:func:`portable_schema` is the same catalogue as pandera can serialise it
(columns, types, regex, set and range checks) for ``tacn schema --pandera``;
the checks it cannot express are listed by name (:func:`unportable_checks`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tacn.validators.records import FIELDS, KEY_FIELDS
from tacn.validators.rules import CHECKS, ROW, CheckContext, Rule, select_rules

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    import pandera.pandas as pa

SCHEMA_NAME = "stock_daily_quotes"
_DTYPES = {"str": "str", "float": "float64", "int": "int64", "datetime": "datetime64[ns]"}


class EngineError(RuntimeError):
    """A check itself raised (a bug of tacn, not bad data): never counted as a pass."""


def rule_check(rule: Rule, context: CheckContext | None = None, *, samples: int = 5,
               warnings_as_warnings: bool = False) -> pa.Check:
    """The pandera Check of a row-level rule: True where the row passes.

    ``samples``: failure cases pandera keeps (the report shows that many).
    Warnings stay errors for the engine, which sorts them by the rule's
    severity itself; a schema for users raises them as pandera warnings.
    """
    import pandera.pandas as pa

    fails = CHECKS[rule.name]
    ctx = context or CheckContext()
    return pa.Check(
        lambda frame: ~fails(frame, ctx),
        name=rule.name,
        error=rule.description,
        description=rule.description,
        ignore_na=False,  # a missing value is judged by the rule, not skipped
        raise_warning=warnings_as_warnings and rule.severity == "warning",
        n_failure_cases=max(1, samples),
    )


def quote_schema(
    *,
    severity: str | None = None,
    rules: Iterable[str] | None = None,
    context: CheckContext | None = None,
    samples: int = 5,
    for_users: bool = False,
) -> pa.DataFrameSchema:
    """The document schema for the selected rules (all by default).

    ``for_users``: the schema as a user would run it alone: warnings as pandera
    warnings, and ``key_unique`` as the schema's ``unique`` constraint (within
    the frame pandera sees; across chunks the validate pipeline checks it).
    """
    import pandera.pandas as pa

    selected = select_rules(severity=severity, rules=rules)
    checks = [rule_check(rule, context, samples=samples, warnings_as_warnings=for_users)
              for rule in selected if rule.scope == ROW]
    unique = list(KEY_FIELDS) if for_users and any(rule.name == "key_unique" for rule in selected) else None
    return pa.DataFrameSchema(
        checks=checks,
        unique=unique,
        name=SCHEMA_NAME,
        description="A TradingAgents-CN stock_daily_quotes document",
        strict=False,
        coerce=False,
    )


@dataclass
class Verdict:
    """One chunk's verdict: per failing rule, the bool array of failing rows and the sample positions."""

    failing: dict[str, np.ndarray] = field(default_factory=dict)
    samples: dict[str, list[int]] = field(default_factory=dict)

    def mask(self, name: str, rows: int) -> np.ndarray:
        import numpy as np

        found = self.failing.get(name)
        return found if found is not None else np.zeros(rows, dtype=bool)


def judge(schema: pa.DataFrameSchema, frame: pd.DataFrame) -> Verdict:
    """Run ``schema`` on ``frame`` (RangeIndex 0..n-1) with lazy validation; read pandera's failures."""
    import numpy as np
    from pandera.errors import SchemaErrors

    verdict = Verdict()
    try:
        schema.validate(frame, lazy=True, inplace=True)
    except SchemaErrors as exc:
        for error in exc.schema_errors:
            check = error.check
            name = getattr(check, "name", None)
            if error.check_output is None or name is None:
                raise EngineError(f"pandera could not run {name or 'a check'}: {error}") from None
            failing = ~error.check_output.to_numpy(dtype=bool, na_value=False)
            verdict.failing[name] = failing
            cases = error.failure_cases
            if cases is not None and len(cases) and "index" in cases.columns:
                positions = [int(p) for p in dict.fromkeys(cases["index"].tolist()) if p is not None]
            else:
                positions = [int(p) for p in np.flatnonzero(failing)[: check.n_failure_cases]]
            verdict.samples[name] = positions
    return verdict


def failing_masks(frame: pd.DataFrame, *, severity: str | None = None, rules: Iterable[str] | None = None,
                  context: CheckContext | None = None) -> dict[str, pd.Series]:
    """Like :func:`tacn.validators.rules.failing_masks`, through pandera: {rule: bool Series, True where the row FAILS}."""
    import pandas as pd

    selected = [r.name for r in select_rules(severity=severity, rules=rules, scope=ROW)]
    schema = quote_schema(rules=selected, context=context, samples=1)
    positional = frame.reset_index(drop=True)
    verdict = judge(schema, positional)
    return {name: pd.Series(verdict.mask(name, len(frame)), index=frame.index) for name in selected}


def failed_rule_names(frame: pd.DataFrame, **selection) -> set[str]:
    """Which rules pandera itself reports as failing on ``frame``, run as a user would run the schema.

    pandera names a failed check by its error text (raised errors and warnings
    alike), so the text is mapped back to the rule name.
    """
    import warnings

    from pandera.errors import SchemaErrors, SchemaWarning

    schema = quote_schema(for_users=True, **selection)
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


# -- the portable view: what pandera can serialise ------------------------------------------


def portable_schema() -> pa.DataFrameSchema:
    """The contract's columns and types with the built-in pandera checks the catalogue declares (Rule.portable)."""
    import pandera.pandas as pa

    from tacn.validators.rules import RULES

    built_in: dict[str, list] = {}
    for rule in RULES:
        for column, check_name, argument in rule.portable:
            arguments = argument if isinstance(argument, tuple) and check_name != "isin" else (argument,)
            check = getattr(pa.Check, check_name)(*arguments)
            built_in.setdefault(column, []).append(check)
    columns = {
        spec.name: pa.Column(
            _DTYPES[spec.kind],
            checks=built_in.get(spec.name),
            nullable=spec.name not in KEY_FIELDS,
            required=spec.always_written,
            description=spec.description,
        )
        for spec in FIELDS
    }
    return pa.DataFrameSchema(
        columns,
        unique=list(KEY_FIELDS),
        name=SCHEMA_NAME,
        description="A TradingAgents-CN stock_daily_quotes document (the portable part of tacn's rule catalogue)",
        strict=False,
    )


def unportable_checks() -> list[dict]:
    """The rules pandera cannot serialise (custom vectorised checks), with why."""
    from tacn.validators.rules import RULES

    out = []
    for rule in RULES:
        if rule.name == "key_unique" or (rule.portable and rule.name != "trade_date_iso"):
            continue  # said in full by the portable schema (key_unique: its unique constraint)
        reason = "custom check (a vectorised tacn function)"
        if rule.name == "trade_date_iso":
            reason = "the upper bound moves with tomorrow in Asia/Shanghai, and a real calendar date"
        elif rule.scope != ROW:
            reason = "dataset-wide: computed by tacn across all chunks"
        out.append({"name": rule.name, "severity": rule.severity, "why": reason, "description": rule.description})
    return out


def portable_text(fmt: str = "yaml") -> str:
    """pandera's own YAML or JSON of :func:`portable_schema`."""
    schema = portable_schema()
    return schema.to_yaml() if fmt == "yaml" else schema.to_json(indent=2)
