"""Running a command: typed library errors become messages and exit codes, in one place."""

from __future__ import annotations

import os
import signal
import traceback
from collections.abc import Iterator
from contextlib import contextmanager

import click
import typer

from pipelines.errors import TacnError
from tacn_cli import exit_codes
from tacn_cli.render import Output
from tacn_cli.secrets import scrub


def _raise_interrupt(signum, frame):  # SIGTERM ends a run like Ctrl-C does
    raise KeyboardInterrupt


def install_signal_handlers() -> None:
    signal.signal(signal.SIGTERM, _raise_interrupt)


@contextmanager
def handle_errors(out: Output) -> Iterator[None]:
    """Map exceptions to the documented exit codes; never show a traceback (unless TACN_DEBUG=1)."""
    try:
        yield
    # typer vendors click: its BadParameter/UsageError derive from typer.TyperException, not click's.
    except (typer.Exit, typer.TyperException, click.exceptions.ClickException, click.exceptions.Abort):
        raise
    except TacnError as exc:
        out.error(str(exc))
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt:
        out.error("interrupted")
        raise typer.Exit(exit_codes.INTERRUPTED) from None
    except BrokenPipeError:  # stdout closed by `| head`: not an error of ours
        raise typer.Exit(exit_codes.OK) from None
    except Exception as exc:  # noqa: BLE001 - last line of defence: a message, not a traceback
        if os.environ.get("TACN_DEBUG"):
            out.stderr.print(scrub(traceback.format_exc()), markup=False)
        out.error(f"unexpected {type(exc).__name__}: {exc} (set TACN_DEBUG=1 to see the traceback)")
        raise typer.Exit(exit_codes.CANNOT_RUN) from None


def open_store_for(out: Output, store: str | None, database: str | None = None, *, env=None):
    """Resolve and open the store a command uses, saying which on stderr (password masked)."""
    from pipelines.stores import mask_url, open_store
    from tacn_cli.settings import load_env, resolve_store

    env = env or load_env()
    choice = resolve_store(store, env, database=database)
    out.info(f"store: {mask_url(choice.url)} (from {choice.origin})")
    if choice.note:
        out.warn(choice.note)
    timeout_ms = int(float(env.get("TACN_CONNECT_TIMEOUT", "5")) * 1000)
    return open_store(choice.url, database=choice.database, timeout_ms=timeout_ms)
