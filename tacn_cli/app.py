"""The Typer application. Commands live one per module in ``tacn_cli.commands``.

Nothing here imports pandas, pymongo, akshare or tushare: ``tacn --help`` stays fast.
"""

from __future__ import annotations

import importlib
import pkgutil

import typer

from tacn_cli import __version__, exit_codes
from tacn_cli import commands as _commands

# Every module in tacn_cli/commands registers itself; ORDER (default 100) sorts the help listing.
COMMAND_MODULES = sorted(
    (importlib.import_module(f"tacn_cli.commands.{info.name}") for info in pkgutil.iter_modules(_commands.__path__)),
    key=lambda module: (getattr(module, "ORDER", 100), module.__name__),
)

app = typer.Typer(
    name="tacn",
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
        typer.echo(f"tacn {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Show the version."),
) -> None:
    """Data-quality CLI and ETL toolkit for TradingAgents-CN operators."""


for _module in COMMAND_MODULES:
    _module.register(app)


def main() -> None:
    from tacn_cli.runner import install_signal_handlers

    install_signal_handlers()
    try:
        app(prog_name="tacn")
    except KeyboardInterrupt:
        raise SystemExit(exit_codes.INTERRUPTED) from None
