"""User-facing errors: the CLI prints them as one line and exits with status 2."""

from __future__ import annotations

from pathlib import Path

import yaml


class UserError(Exception):
    """Bad input from the user (unknown name, impossible argument, missing data...).

    The message must say what is wrong and how to fix it, in one line.
    """


class _UniqueKeyLoader(yaml.SafeLoader):
    """Safe loading that refuses a key given twice in one mapping (plain YAML keeps the last one silently)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: set = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *defaults` may repeat what it merges
                continue
            key = self.construct_object(key_node, deep=True)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r} (each key may appear once in a mapping)", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def read_yaml_mapping(path: Path, kind: str, missing: str) -> dict:
    """A YAML file that must hold a mapping (a manifest, a cluster profile...), read with safe loading and no
    duplicate keys; each problem is one ``UserError`` line naming the file: ``missing`` says what to do when it
    does not exist."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise UserError(f"{path}: no such {kind}; {missing}") from None
    except IsADirectoryError:
        raise UserError(f"{path}: is a directory, not a {kind} file; give the path of a .yaml file") from None
    except OSError as err:
        raise UserError(f"{path}: cannot read the {kind}: {err.strerror or err}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise UserError(f"{path}: not UTF-8 text: byte 0x{raw[err.start]:02x} at line {line}; "
                        f"save the {kind} as UTF-8") from None
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 -- a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        position = getattr(exc, "position", None)  # a ReaderError (a character YAML forbids) has no mark
        line = mark.line + 1 if mark else text[:position].count("\n") + 1 if position is not None else None
        where = f"line {line}" if line else "?"
        problem = " ".join(str(getattr(exc, "problem", None) or exc).split())  # one line
        raise UserError(f"{path}: not valid YAML at {where}: {problem}") from None
    except RecursionError:
        raise UserError(f"{path}: nested too deeply to be a {kind} (thousands of levels of [ or {{)") from None
    if data is None:
        raise UserError(f"{path}: the {kind} is empty; it must be a YAML mapping")
    if not isinstance(data, dict):
        raise UserError(f"{path}: a {kind} must be a YAML mapping, got {type(data).__name__}")
    return data
