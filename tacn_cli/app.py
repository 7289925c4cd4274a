"""The Typer application. Commands live one per module in ``tacn.cli.commands``.

Nothing here imports pandas, pymongo, akshare or tushare: ``tacn --help`` stays fast.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys

import typer
from typer.core import TyperCommand, TyperGroup

from tacn.cli import commands as _commands
from tacn.cli import exit_codes
from tacn.cli.help_text import examples

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


SHELLS = ("bash", "zsh", "fish", "powershell", "pwsh")
COMPLETION_OPTIONS = ("--install-completion", "--show-completion")


def _named_shell_completion(argv: list[str]) -> None:
    """``tacn --show-completion zsh`` / ``--install-completion bash``: typer's options detect the shell;
    a shell named after them is used instead (typer would take it for a command and ignore it)."""
    if len(argv) != 2 or argv[0] not in COMPLETION_OPTIONS or argv[1] not in SHELLS:
        return
    from typer.completion import get_completion_script, install

    shell = argv[1]
    if argv[0] == "--show-completion":
        typer.echo(get_completion_script(prog_name="tacn", complete_var="_TACN_COMPLETE", shell=shell))
    else:
        shell, path = install(shell=shell, prog_name="tacn", complete_var="_TACN_COMPLETE")
        typer.echo(f"{shell} completion installed in {path}")
        typer.echo("Completion will take effect once you restart the terminal")
    sys.exit(exit_codes.OK)


class _TacnCommand(TyperCommand):
    """Every tacn command: a renamed option's old name (tacn.cli.options.DEPRECATED_OPTIONS) still works,
    hidden from help, with one deprecation line on stderr (stdout stays pure JSON under --json)."""

    def parse_args(self, ctx, args: list[str]) -> list[str]:
        from tacn.cli.options import replace_deprecated

        takes_value = {opt for param in self.params if not getattr(param, "is_flag", False)
                       for opt in getattr(param, "opts", ())}
        args, warnings = replace_deprecated(self.name, list(args), takes_value)
        quiet = _wants_quiet(args[:args.index("--")] if "--" in args else args)  # --quiet: errors only
        if not ctx.resilient_parsing and not quiet:  # completion parses too: it must not warn
            for warning in warnings:
                typer.echo(warning, err=True)
        return super().parse_args(ctx, args)


COMPLETION_HELP = {
    "install_completion": "Install completion for your shell (detected, or name it: bash, zsh, fish, powershell).",
    "show_completion": "Print the completion script for your shell (detected, or name it), to install it yourself.",
}


class _TacnGroup(TyperGroup):
    """With --json, a usage error typer reports (bad option, bad value) also prints one JSON error object on
    stdout, as the commands' own exit 2/3 do (tacn.cli.render.Output.fail); with --quiet it is one line
    on stderr, without the usage text."""

    def list_commands(self, ctx):
        names = super().list_commands(ctx)
        return sorted(names, key=lambda name: COMMAND_ORDER.index(name) if name in COMMAND_ORDER else len(names))

    def get_params(self, ctx):
        params = super().get_params(ctx)
        for param in params:  # typer's completion options: say that a shell may be named
            if param.name in COMPLETION_HELP:
                param.help = COMPLETION_HELP[param.name]
        return params

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        argv = list(sys.argv[1:] if args is None else args)
        if standalone_mode:
            _named_shell_completion(argv)
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
    epilog=examples(
        ("A synthetic store with the 2025-10-23 bug, to try tacn on", "tacn demo"),
        ("Gate CI on the configured store", "tacn validate --junit reports/validate.xml"),
        ("Tab completion for this shell", "tacn --install-completion"),
    ),
    no_args_is_help=True,
    rich_markup_mode=None,  # plain help: rich_utils and markdown cost ~0.15 s at start-up
    add_completion=True,  # --install-completion, --show-completion; completion itself runs on _TACN_COMPLETE
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


COMMAND_ORDER: list[str] = []  # the help listing: by module ORDER, command groups (migrate) included
for _module in COMMAND_MODULES:
    _module.register(app)
    COMMAND_ORDER += [name for name in (*(c.name for c in app.registered_commands),
                                        *(g.name for g in app.registered_groups)) if name not in COMMAND_ORDER]


def _use_tacn_command(typer_app: typer.Typer) -> None:
    for info in typer_app.registered_commands:
        if info.cls in (None, TyperCommand):  # typer's default class
            info.cls = _TacnCommand
    for group in typer_app.registered_groups:  # tacn migrate status|up|down
        _use_tacn_command(group.typer_instance)


_use_tacn_command(app)


def main() -> None:
    from tacn.cli.runner import install_signal_handlers

    install_signal_handlers()
    # pandera imports hypothesis when it is installed (a test tool, not a dependency of tacn) for the
    # data synthesis the CLI never uses: 0.1 s of every validate's start-up in a development install.
    sys.modules.setdefault("hypothesis", None)
    try:
        app(prog_name="tacn")
    except KeyboardInterrupt:
        raise SystemExit(exit_codes.INTERRUPTED) from None
