"""The ``repro`` command line: a thin dispatcher over ``repro.commands.*``."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from repro.errors import UserError

# Subcommand name -> module implementing it (see repro/commands/__init__.py for the contract).
COMMANDS: dict[str, str] = {
    "schedule": "repro.commands.schedule",
    "validate": "repro.commands.validate",
    "paper": "repro.commands.paper",
    "table": "repro.commands.table",
    "run": "repro.commands.run",
    "submit": "repro.commands.submit",  # also adds "status"
    "sync": "repro.commands.sync",
    "cost": "repro.commands.cost",
    "train": "repro.commands.train",
    "eval": "repro.commands.eval",
    "bench": "repro.commands.bench",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="repro",
        description="Reproduce EfficientTrain++ / EfficientTrain: schedules, training, costs and paper tables.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module_name in COMMANDS.values():
        importlib.import_module(module_name).add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except UserError as err:
        print(f"repro {args.command}: error: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `repro ... | head`
        return 0
    except KeyboardInterrupt:
        print(f"repro {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
