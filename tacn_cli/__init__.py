"""tacn: the command-line face of the toolkit (options, rendering, exit codes, settings)."""

from __future__ import annotations


def version() -> str:
    """The installed distribution's version: it is written only in pyproject.toml.

    Read on demand (``tacn --version``), not at import, so ``tacn --help`` does not scan the
    installed distributions.
    """
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as distribution_version

    try:
        return distribution_version("tacn")
    except PackageNotFoundError:  # the source folders on sys.path without an install
        return "0+unknown"


def __getattr__(name: str) -> str:
    if name == "__version__":  # the customary attribute, read lazily (PEP 562)
        return version()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
