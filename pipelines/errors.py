"""Typed errors of the library. ``tacn_cli`` maps each to an exit code in one place."""

from __future__ import annotations


class TacnError(Exception):
    """Base class: the message is safe to show (no secrets) and says what to do."""

    exit_code = 3


class UsageError(TacnError):
    """The request itself is wrong (bad option value, bad date, bad URL)."""

    exit_code = 2


class StoreUnavailable(TacnError):
    """The store cannot be opened or reached."""


class StoreMissing(StoreUnavailable):
    """The store does not exist (and the command does not create one)."""

    def __init__(self, message: str, display_url: str = ""):
        super().__init__(message)
        self.display_url = display_url


class StoreError(TacnError):
    """The store answered, but the operation failed."""


class SourceError(TacnError):
    """A data source failed."""


class AuthRefused(TacnError):
    """Credentials or a token were refused."""


class LockHeld(TacnError):
    """Another run holds the lock."""


class ConfigError(TacnError):
    """Configuration is unreadable or inconsistent."""


class CalendarEnded(TacnError):
    """A date to judge lies past the last session of the installed XSHG calendar (exit 3, never a pass)."""

    def __init__(self, what: str):
        from tacn.validators.calendar import calendar_end_advice

        super().__init__(f"{what}: {calendar_end_advice()}")


class BasisMismatch(TacnError):
    """A sync would write prices on another basis (qfq/none/hfq) than the one recorded for the stored span."""
