"""tacn demo: seed a synthetic dataset, with the 2025-10-23 bug, into its own SQLite file."""

from __future__ import annotations

import shlex

import typer

from tacn.cli import exit_codes
from tacn.cli.help_text import examples
from tacn.cli.options import JsonOption, QuietOption, StoreOption, VerboseOption
from tacn.cli.render import Output
from tacn.cli.runner import handle_errors, open_store_for


def demo_command(
    store: StoreOption = None,
    json_: JsonOption = False,
    quiet: QuietOption = False,
    verbose: VerboseOption = False,
) -> None:
    """Seed a synthetic demo store with the bug.

    Seeds TACN_HOME/demo.db (fresh each time) with ~20 symbols x 2 years of SYNTHETIC quotes.

    A few thousand records carry the 2025-10-23 bug (trade_date "0", "1", …). The
    configured store is never touched unless --store names it explicitly.
    """
    from tacn.cli.settings import load_env, tacn_home

    out = Output(json_, quiet=quiet, verbose=verbose)
    with handle_errors(out):
        env = load_env()
        if store is None:
            path = tacn_home(env) / "demo.db"
            for suffix in ("", "-wal", "-shm"):  # a fresh file: the dataset is deterministic
                path.with_name(path.name + suffix).unlink(missing_ok=True)
            store = f"sqlite:///{path}"
        from tacn.pipelines.demo import seed_demo

        with open_store_for(out, store, env=env, mode="create") as opened:
            result = seed_demo(opened)
        if json_:
            out.json(result)
        else:
            out.line(f"Seeded SYNTHETIC demo data into {result.store}", style="bold")
            out.table(
                None,
                ["symbols", "trading days", "good records", "bad trade_date records", "inserted", "changed"],
                [[result.symbols, result.trading_days, result.good_records, result.bad_records,
                  result.upsert.inserted, result.upsert.changed]],
            )
            out.line(f"Next: tacn stats --store {result.store}")
            # the shipped examples: a file in AKShare's layout with one bad row, a fake .env
            out.line(f"      tacn validate {shlex.quote(result.examples['quotes_csv'])}")
            out.line(f"      tacn config-check --offline --env-file {shlex.quote(result.examples['env_file'])}")
    raise typer.Exit(exit_codes.OK)


ORDER = 95


def register(app: typer.Typer) -> None:
    app.command("demo", epilog=examples(
        ("A fresh demo store under TACN_HOME", "tacn demo"),
        ("Seed a store you name instead, as JSON", "tacn demo --store sqlite:///tmp/demo.db --json"),
    ))(demo_command)
