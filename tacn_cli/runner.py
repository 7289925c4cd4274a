"""Running a command: typed library errors become messages and exit codes, in one place."""

from __future__ import annotations

import os
import signal
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager

import click
import typer

from tacn.cli import exit_codes
from tacn.cli.render import Output, terminal_text
from tacn.pipelines.errors import TacnError


def _raise_interrupt(signum, frame):  # SIGTERM ends a run like Ctrl-C does
    raise KeyboardInterrupt


def install_signal_handlers() -> None:
    signal.signal(signal.SIGTERM, _raise_interrupt)


@contextmanager
def handle_errors(out: Output) -> Iterator[None]:
    """Map exceptions to exit codes (typed errors by their kind); never a traceback (unless TACN_DEBUG=1).

    With -v, says which tacn runs first, and how long the run took last.
    """
    started = time.perf_counter()
    if out.verbose:
        import platform

        from tacn.cli import __version__

        out.debug(f"tacn {__version__}, Python {platform.python_version()}, pid {os.getpid()}")
    try:
        yield
    # typer vendors click: its BadParameter/UsageError derive from typer.TyperException, not click's.
    except (typer.Exit, typer.TyperException, click.exceptions.ClickException, click.exceptions.Abort):
        raise
    except TacnError as exc:
        code = exit_codes.for_error(exc)
        out.fail(exc.kind, str(exc), code)
        raise typer.Exit(code) from None
    except KeyboardInterrupt:
        out.fail("interrupted", "interrupted", exit_codes.INTERRUPTED)
        raise typer.Exit(exit_codes.INTERRUPTED) from None
    except BrokenPipeError:  # stdout closed by `| head`: not an error of ours
        raise typer.Exit(exit_codes.OK) from None
    except Exception as exc:  # noqa: BLE001 - last line of defence: a message, not a traceback
        if os.environ.get("TACN_DEBUG"):
            out.stderr.print(terminal_text(traceback.format_exc()), markup=False)
        out.fail("unexpected", f"unexpected {type(exc).__name__}: {exc} (set TACN_DEBUG=1 to see the traceback)",
                 exit_codes.CANNOT_RUN)
        raise typer.Exit(exit_codes.CANNOT_RUN) from None
    finally:
        out.debug(f"done in {time.perf_counter() - started:.2f} s")


def open_store_for(out: Output, store: str | None, database: str | None = None, *, env=None, mode: str = "read"):
    """Resolve and open the store a command uses, saying which on stderr (password masked).

    ``mode``: "read" (the default: never creates, read-only connection), "write" (an existing
    store), "create" (sync, restore, demo: creates a missing store and says so).
    """
    from tacn.cli.settings import connect_timeout_s, load_env, resolve_store
    from tacn.pipelines.config.secrets import register_url_secrets
    from tacn.pipelines.stores import mask_url, open_store

    env = env or load_env()
    choice = resolve_store(store, env, database=database)
    register_url_secrets(choice.url)  # any later message quoting the password or a secret option is scrubbed
    timeout_s = connect_timeout_s(env)
    out.info(f"store: {mask_url(choice.url)} (from {choice.origin})")
    if choice.note:
        out.warn(choice.note)
    out.debug(f"store: opening for {mode}, database {choice.database or '(the URI’s or the default)'}, "
              f"connect timeout {timeout_s:g} s (TACN_CONNECT_TIMEOUT)")
    started = time.perf_counter()
    opened = open_store(choice.url, database=choice.database, timeout_ms=int(timeout_s * 1000), mode=mode)
    out.debug(f"store: {opened.kind} opened in {time.perf_counter() - started:.2f} s")
    if getattr(opened, "created", False):
        out.info(f"store: created a new SQLite file {opened.path}" if opened.kind == "sqlite" else
                 f"store: database {opened.database_name!r} has no stock_daily_quotes collection yet; "
                 "this run creates it")
    return opened
