"""One loader for every component's config: defaults < TOML file < environment < flags.

Components define frozen dataclasses (``OriginConfig``, ``EdgeConfig``...) with defaults and
docstrings; this module fills them. Every value is checked against the field's type and a bad or
unknown key raises ConfigError naming it, e.g. ``origin.port: expected an integer, got 'abc'``.
"""
from __future__ import annotations

import dataclasses
import os
import tomllib
import types
import typing
from pathlib import Path
from typing import Any, Mapping, TypeVar

from .errors import ConfigError

C = TypeVar("C")


def read_toml(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Parse a TOML file, turning I/O and syntax errors into ConfigError."""
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except OSError as e:
        raise ConfigError(f"cannot read config file {path}: {e.strerror}") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"config file {path} is not valid TOML: {e}") from None


def load_config(cls: type[C], *, section: str, file: str | os.PathLike[str] | None = None,
                env: Mapping[str, str] | None = None, flags: Mapping[str, Any] | None = None) -> C:
    """Build ``cls`` from its defaults, then ``[section]`` of ``file``, then ``VODSTACK_{SECTION}_{FIELD}``
    environment variables, then ``flags`` (a dict of values given on the command line; None = not given)."""
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls!r} is not a dataclass")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}

    if file is not None:
        data = read_toml(file)
        table = data.get(section, {})
        if not isinstance(table, dict):
            raise ConfigError(f"{section}: expected a table in {file}")
        for key, raw in table.items():
            name = key.replace("-", "_")
            if name not in fields:
                raise ConfigError(f"{section}.{key}: unknown key (known: {', '.join(sorted(fields))})")
            values[name] = coerce(raw, hints[name], f"{section}.{key}")

    env = os.environ if env is None else env
    prefix = f"VODSTACK_{section.upper().replace('-', '_')}_"
    for name in fields:
        raw = env.get(prefix + name.upper())
        if raw is not None:
            values[name] = coerce(raw, hints[name], prefix + name.upper())

    for key, raw in (flags or {}).items():
        if raw is None:
            continue
        name = key.replace("-", "_")
        if name not in fields:
            raise ConfigError(f"--{key.replace('_', '-')}: not a setting of {section}")
        values[name] = coerce(raw, hints[name], f"--{name.replace('_', '-')}")

    try:
        return cls(**values)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{section}: {e}") from None


def coerce(raw: Any, hint: Any, where: str) -> Any:
    """Convert ``raw`` (from TOML, env text or argparse) to the type ``hint``, or raise ConfigError."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if raw is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return coerce(raw, arg, where)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(errors[0] if errors else f"{where}: bad value {raw!r}")
    if origin in (tuple, list):
        items = raw.split(",") if isinstance(raw, str) else raw
        if not isinstance(items, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {raw!r}")
        inner = args[0] if args else str
        items = [i.strip() if isinstance(i, str) else i for i in items if i != ""]
        out = [coerce(i, inner, where) for i in items]
        return tuple(out) if origin is tuple else out
    if origin is dict:
        if isinstance(raw, str):
            pairs = [p for p in raw.split(",") if p.strip()]
            try:
                raw = dict(p.split("=", 1) for p in pairs)
            except ValueError:
                raise ConfigError(f"{where}: expected KEY=VALUE pairs, got {raw!r}") from None
        if not isinstance(raw, dict):
            raise ConfigError(f"{where}: expected a table, got {raw!r}")
        kt, vt = args or (str, str)
        return {coerce(k, kt, where): coerce(v, vt, where) for k, v in raw.items()}
    if hint is bool:
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, str) and raw.lower() in ("1", "true", "yes", "on"):
            return True
        if isinstance(raw, str) and raw.lower() in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{where}: expected true or false, got {raw!r}")
    if hint is int:
        if isinstance(raw, bool):
            raise ConfigError(f"{where}: expected an integer, got {raw!r}")
        try:
            return int(raw)
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: expected an integer, got {raw!r}") from None
    if hint is float:
        if isinstance(raw, bool):
            raise ConfigError(f"{where}: expected a number, got {raw!r}")
        try:
            return float(raw)
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: expected a number, got {raw!r}") from None
    if hint is str:
        if not isinstance(raw, (str, int, float)) or isinstance(raw, bool):
            raise ConfigError(f"{where}: expected a string, got {raw!r}")
        return str(raw)
    if hint is Path:
        return Path(raw)
    if hint is Any:
        return raw
    if isinstance(hint, type) and isinstance(raw, hint):
        return raw
    raise ConfigError(f"{where}: cannot read {raw!r} as {getattr(hint, '__name__', hint)}")
