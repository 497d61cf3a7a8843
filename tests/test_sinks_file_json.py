"""session.json is written by ``file_sink.json_indented``: the text of
``json.dumps(obj, indent=2, allow_nan=False)`` without the json module's pure-Python indent
encoder (a fixed cost of every replay, issue 9). Same text for any JSON tree; the same
errors (NaN, unsupported types, non-str keys go to json.dumps itself)."""

from __future__ import annotations

import json
import math
from collections import OrderedDict

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.sinks.file_sink import json_indented

_leaf = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70),
                  st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=12),
                  st.sampled_from(["", "é\u2028\"\\\n\t\x00", "😀", "a/b"]))
_tree = st.recursive(_leaf, lambda kids: st.one_of(st.lists(kids, max_size=5), st.tuples(kids, kids),
                                                   st.dictionaries(st.text(max_size=6), kids, max_size=5)),
                     max_leaves=40)


@settings(max_examples=500, deadline=None)
@given(obj=_tree)
def test_same_text_as_json_dumps(obj):
    assert json_indented(obj) == json.dumps(obj, indent=2, allow_nan=False)


@pytest.mark.parametrize("obj", [
    {"a": math.nan}, [1.0, math.inf], {"x": [-math.inf]},  # ValueError from json
    {1: "int key"}, {None: 1, "b": 2}, {"k": {2.5: 1}},  # json converts these keys
    {"n": np.float64(1.5)}, [np.int64(3)], {"s": {1, 2}}, OrderedDict(a=1), [True, 1, 1.0],  # other types
])
def test_anything_else_is_json_dumps(obj):
    try:
        ref = json.dumps(obj, indent=2, allow_nan=False)
    except (TypeError, ValueError) as exc:
        with pytest.raises(type(exc)) as got:
            json_indented(obj)
        assert str(got.value) == str(exc)
        return
    assert json_indented(obj) == ref


def test_session_json_of_a_replay(tmp_path):
    """The file sink's session.json reads back as the summary dict, text as json.dumps wrote it."""
    import contextlib
    import io
    from pathlib import Path

    from pipeline import cli, cmd_replay

    demo = Path(__file__).resolve().parent.parent / "fixtures" / "demo"
    args = cli.build_parser().parse_args(["replay", str(demo / "demo_left_foot.csv"), str(demo / "demo_right_foot.csv"),
                                          "--out", str(tmp_path)])
    with contextlib.redirect_stdout(io.StringIO()):
        cmd_replay.run(args)
    text = (tmp_path / "session.json").read_text(encoding="utf-8")
    assert text == json.dumps(json.loads(text), indent=2, allow_nan=False) + "\n"
