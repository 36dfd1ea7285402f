"""Random and mutated configs never raise anything but ConfigError, whose lines name a path."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import ROOT
from watcher.core.config import Config, ConfigError, load, parse

EXAMPLE = (ROOT / "config.example.toml").read_text()
SETTINGS = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])

scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.text(max_size=20),
                    st.floats(allow_nan=False))
values = st.recursive(scalars.filter(lambda v: v is not None),
                      lambda inner: st.one_of(st.lists(inner, max_size=4),
                                              st.dictionaries(st.text(max_size=10), inner,
                                                              max_size=4)),
                      max_leaves=12)


def check(raw: dict[str, Any]) -> None:
    try:
        result = parse(raw, ROOT / "fuzz.toml", environ={})
    except ConfigError as exc:
        assert exc.problems
        for problem in exc.problems:
            where, sep, _ = problem.partition(": ")
            assert sep and where, problem
    else:
        assert isinstance(result, Config)


@SETTINGS
@given(st.dictionaries(st.sampled_from(["watcher", "people", "contacts", "codes", "playbooks",
                                        "connectors", "other"]), values, max_size=6))
def test_random_structures(raw: dict[str, Any]) -> None:
    check(raw)


@SETTINGS
@given(st.data())
def test_mutated_example(data: st.DataObject) -> None:
    raw = tomllib.loads(EXAMPLE)
    # Replace one leaf somewhere in the example with a random value.
    path: list[Any] = []
    node: Any = raw
    while isinstance(node, dict | list) and node:
        keys = list(node) if isinstance(node, dict) else list(range(len(node)))
        key = data.draw(st.sampled_from(keys))
        path.append(key)
        if data.draw(st.booleans()) or not isinstance(node[key], dict | list):
            node[key] = data.draw(values)
            break
        node = node[key]
    check(raw)


@SETTINGS
@given(data=st.data())
def test_mutated_text(tmp_path_factory: Any, data: st.DataObject) -> None:
    text = EXAMPLE
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(text) - 1))
        text = text[:at] + data.draw(st.text(max_size=3)) + text[at + 1:]
    folder: Path = tmp_path_factory.mktemp("cfg")
    path = folder / "config.toml"
    path.write_text(text, encoding="utf-8")
    try:
        load(path, environ={})
    except ConfigError as exc:
        assert exc.problems
