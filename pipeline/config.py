"""TOML configuration (stdlib ``tomllib``) over shipped defaults (``defaults.toml``).

Defaults work without any file. A user file may override any key; an unknown section or
key is an error naming the valid ones (a typo must not silently fall back to a default).
Sections owned by a module are read with :meth:`Config.section`.
"""

from __future__ import annotations

import copy
import datetime
import functools
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from pipeline.errors import ConfigError


@functools.lru_cache(maxsize=1)
def _parsed_defaults() -> dict[str, Any]:
    # parsed once per process (~5 ms of tomllib: a fixed cost of every replay and engine)
    text = resources.files("pipeline").joinpath("defaults.toml").read_text(encoding="utf-8")
    return tomllib.loads(text)


# values a copy may share: immutable (TOML's scalars; tomllib's tzinfo is datetime.timezone)
_ATOMS = frozenset({str, int, float, bool, type(None), datetime.datetime, datetime.date, datetime.time})


def _copy(value: Any) -> Any:
    """A deep copy of a config tree: new dicts and lists all the way down, immutable scalars
    shared. ``copy.deepcopy`` gives an equal tree but its generic machinery (memo, dispatch
    per leaf) cost ~0.15 ms for the defaults plus one copy per ``section`` call: a fixed cost
    of every replay and engine (~7 % of a warm 19-s PyShoe replay, events only). Anything
    else (an override's tuple, an object) still goes through ``copy.deepcopy``."""
    t = type(value)
    if t is dict:
        return {k: _copy(v) for k, v in value.items()}
    if t is list:
        return [_copy(v) for v in value]
    if t in _ATOMS:
        return value
    return copy.deepcopy(value)


def _defaults() -> dict[str, Any]:
    return _copy(_parsed_defaults())


def _merge(base: dict[str, Any], over: dict[str, Any], where: str) -> dict[str, Any]:
    out = _copy(base)
    for key, value in over.items():
        if key not in base:
            valid = ", ".join(sorted(base)) or "(none)"
            raise ConfigError(f"{where}: unknown key {key!r}; valid keys: {valid}")
        if isinstance(base[key], dict):
            if not isinstance(value, dict):
                raise ConfigError(f"{where}.{key}: expected a table, got {type(value).__name__}")
            out[key] = _merge(base[key], value, f"{where}.{key}")
        else:
            expected = type(base[key])
            ok = isinstance(value, expected) or (expected is float and isinstance(value, int))
            if not ok and not isinstance(base[key], list):
                raise ConfigError(
                    f"{where}.{key}: expected {expected.__name__}, got {type(value).__name__} {value!r}"
                )
            out[key] = float(value) if expected is float else value
    return out


@dataclass(frozen=True)
class Config:
    """The merged configuration. Read a section with ``section("name")`` (a copy)."""

    _data: dict[str, Any]
    source: str = "defaults"

    def section(self, name: str) -> dict[str, Any]:
        if name not in self._data:
            raise ConfigError(f"no config section [{name}]")
        return _copy(self._data[name])

    def get(self, section: str, key: str) -> Any:
        return self.section(section)[key]


@functools.lru_cache(maxsize=8)
def _merged_file(text: str, where: str) -> dict[str, Any]:
    """The defaults merged with a config file's text, once per (text, path) and process: the
    TOML parse and the merge's copies (~0.25 ms after a GC, a fixed cost of every replay
    with ``--config``) are not redone for the same text. Shared and never mutated:
    ``load_config`` copies it (each Config owns its tree, as before). Errors are not cached
    (raised again, with the same message, on every call)."""
    try:
        user = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{where}: invalid TOML: {exc}") from None
    return _merge(_parsed_defaults(), user, where)


def load_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> Config:
    """Defaults, then the TOML file at ``path`` (if given), then ``overrides``. The file is
    read on every call (a changed file is a new config); the same text is parsed and merged
    once per process (``_merged_file``)."""
    data = _parsed_defaults()  # shared (as _merged_file's): copied below, or by _merge
    source = "defaults"
    if path is not None:
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ConfigError(f"{p}: config file not found") from None
        data = _merged_file(text, str(p))
        source = str(p)
    if overrides:
        return Config(_merge(data, overrides, "overrides"), source)  # _merge copies
    return Config(_copy(data), source)
