"""``pipeline.config``: the config tree is copied by ``_copy`` (dicts and lists rebuilt, immutable
scalars shared) instead of ``copy.deepcopy`` (a fixed cost of every replay, issue 9). The
configs and sections must be the same as with the replaced code, kept here verbatim, and as
independent: mutating a section or a loaded config never reaches another or the defaults."""

from __future__ import annotations

import copy
import datetime
import tomllib

import pytest

from pipeline import config as cfg
from pipeline.config import Config, load_config
from pipeline.errors import ConfigError


def _old_merge(base, over, where):  # pipeline/config.py before the change, verbatim but for names
    out = copy.deepcopy(base)
    for key, value in over.items():
        if key not in base:
            valid = ", ".join(sorted(base)) or "(none)"
            raise ConfigError(f"{where}: unknown key {key!r}; valid keys: {valid}")
        if isinstance(base[key], dict):
            if not isinstance(value, dict):
                raise ConfigError(f"{where}.{key}: expected a table, got {type(value).__name__}")
            out[key] = _old_merge(base[key], value, f"{where}.{key}")
        else:
            expected = type(base[key])
            ok = isinstance(value, expected) or (expected is float and isinstance(value, int))
            if not ok and not isinstance(base[key], list):
                raise ConfigError(
                    f"{where}.{key}: expected {expected.__name__}, got {type(value).__name__} {value!r}"
                )
            out[key] = float(value) if expected is float else value
    return out


def _old_load(path=None, overrides=None):
    data = copy.deepcopy(cfg._parsed_defaults())
    source = "defaults"
    if path is not None:
        data = _old_merge(data, tomllib.loads(open(path, encoding="utf-8").read()), str(path))
        source = str(path)
    if overrides:
        data = _old_merge(data, overrides, "overrides")
    return Config(data, source)


def _same_tree(a, b):
    """Equal, same types everywhere, and no dict or list shared between the two trees."""
    assert type(a) is type(b)
    if isinstance(a, dict):
        assert a is not b and list(a) == list(b)
        for k in a:
            _same_tree(a[k], b[k])
    elif isinstance(a, list):
        assert a is not b and len(a) == len(b)
        for x, y in zip(a, b):
            _same_tree(x, y)
    else:
        assert a == b or (a != a and b != b)


def _all_overrides():
    d = cfg._parsed_defaults()
    return {"metrics": {"enabled": []}, "ingest": {"block_s": 1}, "alignment": {k: v for k, v in d["alignment"].items()}}


@pytest.mark.parametrize("case", ["defaults", "file", "overrides", "file+overrides"])
def test_same_config_as_deepcopy(tmp_path, case):
    p = tmp_path / "c.toml"
    p.write_text("[metrics]\nenabled = []\n[ingest]\nblock_s = 0.5\n", encoding="utf-8")
    path = p if "file" in case else None
    over = _all_overrides() if "overrides" in case else None
    # each its own overrides: both keep an override's value itself (not a copy), as before
    new, old = load_config(path, copy.deepcopy(over)), _old_load(path, copy.deepcopy(over))
    assert new.source == old.source
    _same_tree(new._data, old._data)
    for name in old._data:
        _same_tree(new.section(name), old.section(name))
    if case == "defaults":
        _same_tree(new._data, cfg._parsed_defaults())


def _mutate_all(config: Config) -> None:
    """Mutate everything reachable from one config's tree and from its sections' copies."""
    for name, sec in config._data.items():
        copied = config.section(name)  # (taken before the tree is mutated)
        for t in (copied, sec):
            for k, v in list(t.items()):
                if isinstance(v, list):
                    v.append("x")
                elif isinstance(v, dict):
                    v["zz"] = 1
                t[k] = "mutated" if not isinstance(v, (list, dict)) else v


def test_copies_are_independent():
    a = load_config()
    before = copy.deepcopy(cfg._parsed_defaults())
    _mutate_all(a)
    assert cfg._parsed_defaults() == before
    _same_tree(load_config()._data, _old_load()._data)


def test_other_values_still_deep_copied():
    when = datetime.datetime(2026, 11, 26, tzinfo=datetime.timezone.utc)
    tree = {"a": [1, 2.5, "s", True, None, when, datetime.date(2026, 1, 1), datetime.time(1, 2)],
            "b": {"c": ([1, 2], 3), "d": {"e": []}}}
    c = cfg._copy(tree)
    assert c == tree
    assert c["b"]["c"] is not tree["b"]["c"] and c["b"]["c"][0] is not tree["b"]["c"][0]  # tuple of a list
    c["b"]["c"][0].append(3)
    assert tree["b"]["c"][0] == [1, 2]
    assert c["a"][5] is when  # immutable scalars shared


def test_errors_unchanged(tmp_path):
    p = tmp_path / "bad.toml"
    p.write_text("[metrics]\nnope = 1\n", encoding="utf-8")
    with pytest.raises(ConfigError) as new:
        load_config(p)
    with pytest.raises(ConfigError) as old:
        _old_load(p)
    assert str(new.value) == str(old.value)
    with pytest.raises(ConfigError, match="expected a table"):
        load_config(overrides={"metrics": 3})


def test_file_merge_cached_per_text_and_configs_independent(tmp_path):
    """The defaults merged with a file's text are made once per (text, path) and process
    (``_merged_file``); every Config still owns its tree (equal to the replaced loader's,
    nothing shared), a changed file is read again, and mutating one config's tree or
    sections changes neither the next one nor the cache."""
    p = tmp_path / "c.toml"
    p.write_text("[metrics]\nenabled = []\n[ingest]\nblock_s = 0.5\n", encoding="utf-8")
    cfg._merged_file.cache_clear()
    a = load_config(p)
    hits = cfg._merged_file.cache_info().hits
    b = load_config(p)
    assert cfg._merged_file.cache_info().hits == hits + 1  # parsed and merged once
    _same_tree(a._data, b._data)
    _same_tree(a._data, _old_load(p)._data)
    _mutate_all(a)
    _same_tree(load_config(p)._data, _old_load(p)._data)
    p.write_text("[metrics]\nenabled = []\n[ingest]\nblock_s = 0.25\n", encoding="utf-8")
    assert load_config(p).get("ingest", "block_s") == 0.25 == _old_load(p).get("ingest", "block_s")
    _same_tree(load_config(p, {"ingest": {"block_s": 2}})._data, _old_load(p, {"ingest": {"block_s": 2}})._data)


def test_file_errors_raised_on_every_call(tmp_path):
    p = tmp_path / "bad.toml"
    for text, match in (("[metrics\n", "invalid TOML"), ("[nosuch]\nx = 1\n", "unknown key 'nosuch'")):
        p.write_text(text, encoding="utf-8")
        for _ in range(2):
            with pytest.raises(ConfigError, match=match):
                load_config(p)
