"""User-facing errors: the CLI prints them as one line and exits with status 2."""

from __future__ import annotations

from pathlib import Path


class UserError(Exception):
    """Bad input from the user (unknown name, impossible argument, missing data...).

    The message must say what is wrong and how to fix it, in one line.
    """


def read_yaml_mapping(path: Path, kind: str, missing: str) -> dict:
    """A YAML file that must hold a mapping (a manifest, a cluster profile...), read with ``yaml.safe_load``;
    each problem is one ``UserError`` line naming the file: ``missing`` says what to do when it does not exist."""
    import yaml

    try:
        text = path.read_text()
    except FileNotFoundError:
        raise UserError(f"{path}: no such {kind}; {missing}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else "?"
        raise UserError(f"{path}: not valid YAML at {where}: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: a {kind} must be a YAML mapping, got {type(data).__name__}")
    return data
