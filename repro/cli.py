"""The ``repro`` command line: a thin dispatcher over ``repro.commands.*``."""

from __future__ import annotations

import argparse
import difflib
import importlib
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from repro import __version__
from repro.errors import UserError

# Subcommand name -> module implementing it (see repro/commands/__init__.py for the contract).
COMMANDS: dict[str, str] = {
    "schedule": "repro.commands.schedule",
    "validate": "repro.commands.validate",
    "paper": "repro.commands.paper",
    "table": "repro.commands.table",
    "claims": "repro.commands.claims",
    "run": "repro.commands.run",
    "submit": "repro.commands.submit",  # also adds "status"
    "doctor": "repro.commands.doctor",
    "sync": "repro.commands.sync",
    "cost": "repro.commands.cost",
    "train": "repro.commands.train",
    "search": "repro.commands.search",
    "eval": "repro.commands.eval",
    "bench": "repro.commands.bench",
}


class Parser(argparse.ArgumentParser):
    """argparse with usage errors in one line: the usage of a command with many flags is one ``--help`` away. No
    abbreviations (``--epoch`` silently taken for ``--epochs`` would be a trap; the error suggests the flag), in
    every subcommand too (their parsers are of this class)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="repro",
        description="Reproduce EfficientTrain++ / EfficientTrain: schedules, training, costs and paper tables.",
    )
    parser.add_argument("--version", action="version", version=f"repro {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module_name in COMMANDS.values():
        importlib.import_module(module_name).add_parser(subparsers)
    return parser


def _reject_unknown(parser: argparse.ArgumentParser, command: str, unknown: list[str]) -> NoReturn:
    """Unknown arguments, reported by the command they were given to, with the flags they resemble."""
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[command]
    flags = [o for action in sub._actions for o in action.option_strings if o.startswith("--")]
    close = [m for u in unknown if u.startswith("--") for m in difflib.get_close_matches(u.split("=")[0], flags, 1)]
    hint = f"; did you mean {', '.join(dict.fromkeys(close))}?" if close else ""
    sub.error(f"unrecognized arguments: {' '.join(unknown)}{hint}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    if argv is None:  # a shell asking for completions (`eval "$(register-python-argcomplete repro)"`): answer, exit
        import argcomplete

        argcomplete.autocomplete(parser)
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        _reject_unknown(parser, args.command, unknown)
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
