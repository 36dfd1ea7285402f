"""The replay follower reads whole lines, resumes from its cursor, and skips bad lines."""

from __future__ import annotations

import json
from pathlib import Path

from connectors.files.replay import LineError, Position, ReplayFile
from watcher.core.models import Event


def line(n: int, **kw: object) -> str:
    obj = {"person": "sam", "id": f"m{n}", "at": "2026-11-22T14:00:00Z", "text": f"msg {n}"}
    obj.update(kw)
    return json.dumps(obj) + "\n"


def read_all(source: ReplayFile, start: Position) -> tuple[list[Event | LineError], Position]:
    items: list[Event | LineError] = []
    position = start
    for item, after in source.read(start):
        items.append(item)
        position = after
    return items, position


def test_follows_appended_lines_and_waits_for_whole_lines(tmp_path: Path) -> None:
    path = tmp_path / "feed.jsonl"
    path.write_text(line(1) + line(2))
    source = ReplayFile(path)
    items, pos = read_all(source, Position())
    assert [i.id for i in items if isinstance(i, Event)] == ["m1", "m2"]
    with path.open("a") as f:
        f.write(line(3) + line(4)[:20])  # the 4th line is still being written
    items, pos = read_all(source, pos)
    assert [i.id for i in items if isinstance(i, Event)] == ["m3"]
    with path.open("a") as f:
        f.write(line(4)[20:])
    items, pos = read_all(source, Position.decode(pos.encode()))
    assert [i.id for i in items if isinstance(i, Event)] == ["m4"]
    assert pos.line == 4 and pos.offset == path.stat().st_size


def test_bad_lines_reported_with_file_and_line_and_skipped(tmp_path: Path) -> None:
    path = tmp_path / "feed.jsonl"
    path.write_text(line(1) + "{not json\n" + json.dumps({"id": "x"}) + "\n"
                    + line(4, kind="poke") + line(5, at="yesterday") + "\n" + line(7))
    items, _ = read_all(ReplayFile(path), Position())
    errors = [str(i) for i in items if isinstance(i, LineError)]
    assert errors == [
        f"{path}:2: not valid JSON (Expecting property name enclosed in double quotes at "
        "column 2)",
        f'{path}:3: missing "at"',
        f'{path}:4: "kind" must be one of message, reaction, repost, follow, profile',
        f'{path}:5: "at" must be an ISO-8601 time such as 2026-11-22T14:02:00Z',
    ]
    assert [i.id for i in items if isinstance(i, Event)] == ["m1", "m7"]


def test_error_message_never_contains_the_line_content(tmp_path: Path) -> None:
    path = tmp_path / "feed.jsonl"
    path.write_text('{"person": "sam", "id": "1", "text": "SECRET-TEXT", "at": 5, "x": 1}\n')
    items, _ = read_all(ReplayFile(path), Position())
    assert "SECRET-TEXT" not in str(items[0])


def test_images_resolve_relative_to_the_file(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    path = tmp_path / "sub" / "feed.jsonl"
    path.write_text(line(1, images=["pics/a.jpg"], platform="bluesky", kind="repost"))
    items, _ = read_all(ReplayFile(path), Position())
    event = items[0]
    assert isinstance(event, Event)
    assert event.platform == "bluesky" and event.kind == "repost"
    assert event.key == "bluesky:m1"
    assert [getattr(i, "path", None) for i in event.images] == [tmp_path / "sub/pics/a.jpg"]


def test_truncated_file_starts_again(tmp_path: Path) -> None:
    path = tmp_path / "feed.jsonl"
    path.write_text(line(1) + line(2))
    _, pos = read_all(ReplayFile(path), Position())
    path.write_text(line(3))
    items, _ = read_all(ReplayFile(path), pos)
    assert [i.id for i in items if isinstance(i, Event)] == ["m3"]


def test_missing_file_yields_nothing(tmp_path: Path) -> None:
    assert read_all(ReplayFile(tmp_path / "nope.jsonl"), Position())[0] == []
