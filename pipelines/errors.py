"""Typed errors of the library.

Each class names its ``kind``: the snake-case name that ``--json`` error objects carry
(``store_missing``, ``lock_held``, …). The library raises kinds and knows no exit codes;
only ``tacn_cli`` (:func:`tacn.cli.exit_codes.for_error`) maps a kind to an exit code.
Every subclass, here or in another module, declares its own ``kind``.
"""

from __future__ import annotations

from typing import ClassVar


class TacnError(Exception):
    """Base class: the message is safe to show (no secrets) and says what to do."""

    kind: ClassVar[str] = "tacn_error"

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        if "kind" not in cls.__dict__:
            raise TypeError(f"{cls.__name__} must declare its kind (the snake-case name of --json error objects)")


class UsageError(TacnError):
    """The request itself is wrong (bad option value, bad date, bad URL)."""

    kind = "usage_error"


class StoreUnavailable(TacnError):
    """The store cannot be opened or reached."""

    kind = "store_unavailable"


class StoreMissing(StoreUnavailable):
    """The store does not exist (and the command does not create one)."""

    kind = "store_missing"

    def __init__(self, message: str, display_url: str = ""):
        super().__init__(message)
        self.display_url = display_url


class StoreError(TacnError):
    """The store answered, but the operation failed."""

    kind = "store_error"


class SourceError(TacnError):
    """A data source failed."""

    kind = "source_error"


class AuthRefused(TacnError):
    """Credentials or a token were refused."""

    kind = "auth_refused"


class LockHeld(TacnError):
    """Another run holds the lock."""

    kind = "lock_held"


class ConfigError(TacnError):
    """Configuration is unreadable or inconsistent."""

    kind = "config_error"


class CalendarEnded(TacnError):
    """A date to judge lies past the last session of the installed XSHG calendar (exit 3, never a pass)."""

    kind = "calendar_ended"

    def __init__(self, what: str):
        from tacn.validators.calendar import calendar_end_advice

        super().__init__(f"{what}: {calendar_end_advice()}")


class BasisMismatch(TacnError):
    """A sync would write prices on another basis (qfq/none/hfq) than the one recorded for the stored span."""

    kind = "basis_mismatch"
