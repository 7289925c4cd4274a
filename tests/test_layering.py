"""The library's layering rules: errors carry kinds (only tacn_cli maps them to exit codes),
and every store satisfies the QuoteStore protocol that its callers use."""

from __future__ import annotations

import importlib
import pkgutil
import re

import pytest

import tacn.migrations
import tacn.pipelines
from tacn.cli import exit_codes
from tacn.pipelines.errors import TacnError, UsageError

SKIP_MODULES = ("tacn.pipelines.watch.dev_server", "tacn.pipelines.sources.dev_server")  # optional websockets extra


def _library_error_classes() -> list[type[TacnError]]:
    for package in (tacn.pipelines, tacn.migrations):
        for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            if info.name not in SKIP_MODULES and not info.name.startswith("tacn.migrations.versions"):
                importlib.import_module(info.name)
    found, todo = [], [TacnError]
    while todo:
        cls = todo.pop()
        found.append(cls)
        todo.extend(cls.__subclasses__())
    return found


def test_every_library_error_declares_its_json_kind_and_carries_no_exit_code():
    classes = _library_error_classes()
    assert len(classes) >= 15
    for cls in classes:
        assert "kind" in cls.__dict__, cls
        assert cls.kind == re.sub(r"(?<!^)(?=[A-Z])", "_", cls.__name__).lower(), cls  # the --json kinds of before
        assert not hasattr(cls, "exit_code"), cls


def test_only_the_cli_maps_kinds_to_exit_codes():
    from tacn.migrations.runner import MigrationRefused
    from tacn.pipelines.errors import LockHeld, StoreMissing
    from tacn.pipelines.lock import LockLost

    assert exit_codes.for_error(UsageError("x")) == exit_codes.USAGE == 2
    assert exit_codes.for_error(MigrationRefused("x")) == exit_codes.PROBLEMS_FOUND == 1
    for error in (LockHeld("x"), LockLost("x"), StoreMissing("x"), TacnError("x")):
        assert exit_codes.for_error(error) == exit_codes.CANNOT_RUN == 3
    assert exit_codes.for_kind("migration_refused") == 1 and exit_codes.for_kind("store_error") == 3


def test_an_error_class_without_a_kind_is_refused():
    with pytest.raises(TypeError, match="must declare its kind"):
        type("NoKind", (TacnError,), {})
