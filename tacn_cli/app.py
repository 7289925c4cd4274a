"""The Typer application. Commands live one per module in ``tacn.cli.commands``.

Nothing here imports pandas, pymongo, akshare or tushare: ``tacn --help`` stays fast.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys

import typer
from typer.core import TyperGroup

from tacn.cli import commands as _commands
from tacn.cli import exit_codes

# Every module in tacn_cli/commands registers itself; ORDER (default 100) sorts the help listing.
COMMAND_MODULES = sorted(
    (importlib.import_module(f"tacn.cli.commands.{info.name}") for info in pkgutil.iter_modules(_commands.__path__)),
    key=lambda module: (getattr(module, "ORDER", 100), module.__name__),
)

# Commands whose --json output is a stream (one message per line, appended to logs):
# their errors, usage errors included, stay on stderr only.
STREAMING_COMMANDS = frozenset({"watch"})


def _wants_json_error(argv: list[str]) -> bool:
    command = next((arg for arg in argv if not arg.startswith("-")), None)
    return "--json" in argv and command not in STREAMING_COMMANDS


def _wants_quiet(argv: list[str]) -> bool:
    return "--quiet" in argv or "-q" in argv


class _TacnGroup(TyperGroup):
    """With --json, a usage error typer reports (bad option, bad value) also prints one JSON error object on
    stdout, as the commands' own exit 2/3 do (tacn.cli.render.Output.fail); with --quiet it is one line
    on stderr, without the usage text."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        argv = list(sys.argv[1:] if args is None else args)
        wants_json, quiet = _wants_json_error(argv), _wants_quiet(argv)
        if not (standalone_mode and (wants_json or quiet)):
            return super().main(args=argv, prog_name=prog_name, complete_var=complete_var,
                                standalone_mode=standalone_mode, **extra)
        from tacn.cli.render import error_object

        try:
            code = super().main(args=argv, prog_name=prog_name, complete_var=complete_var, standalone_mode=False,
                                **extra)
        except typer.TyperException as exc:  # typer's (vendored click's) usage errors
            show = getattr(exc, "show", None)
            if quiet:
                typer.echo(f"error: {exc.format_message()}", err=True)
            else:
                show() if show else typer.echo(f"Error: {exc.format_message()}", err=True)
            if wants_json:
                kind = "usage_error" if exc.exit_code == exit_codes.USAGE else "error"
                sys.stdout.write(error_object(kind, exc.format_message(), exc.exit_code) + "\n")
            sys.exit(exc.exit_code)
        except typer.Abort:
            typer.echo("Aborted!", err=True)
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else exit_codes.OK)


app = typer.Typer(
    name="tacn",
    cls=_TacnGroup,
    help="Data-quality CLI and ETL toolkit for TradingAgents-CN operators.\n\n"
    "Exit codes: 0 success, 1 problems found, 2 usage error, 3 could not run, 130 interrupted.",
    no_args_is_help=True,
    rich_markup_mode=None,  # plain help: rich_utils and markdown cost ~0.15 s at start-up
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        from tacn.cli import version

        typer.echo(f"tacn {version()}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Show the version."),
) -> None:
    """Data-quality CLI and ETL toolkit for TradingAgents-CN operators."""


for _module in COMMAND_MODULES:
    _module.register(app)


def main() -> None:
    from tacn.cli.runner import install_signal_handlers

    install_signal_handlers()
    try:
        app(prog_name="tacn")
    except KeyboardInterrupt:
        raise SystemExit(exit_codes.INTERRUPTED) from None
