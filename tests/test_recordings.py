"""The recorded streams come from the repository, plus newer ones in a `shared` folder."""

from __future__ import annotations

import json
from pathlib import Path

from ._streams import INDEX, RESPONSES, RESPONSES_INDEX, STREAMS, _merged


def _folder(path: Path, names: list[str]) -> Path:
    path.mkdir()
    index = {name: {"file": f"{name}.jsonl", "final": name} for name in names}
    (path / "INDEX.json").write_text(json.dumps(index))
    for name in names:
        (path / f"{name}.jsonl").write_text("{}\n")
    return path


def test_every_recording_in_the_repository_is_indexed() -> None:
    assert {p.stem for p in STREAMS.glob("*.jsonl")} <= set(INDEX)
    assert {p.stem for p in RESPONSES.glob("*.jsonl")} <= set(RESPONSES_INDEX)
    assert len(INDEX) >= 41
    assert len(RESPONSES_INDEX) >= 72


def test_shared_adds_only_what_the_repository_lacks(tmp_path: Path) -> None:
    repo = _folder(tmp_path / "repo", ["a", "b"])
    shared = _folder(tmp_path / "shared", ["b", "c"])
    (shared / "d.jsonl").write_text("{}\n")  # a file the shared index does not list
    index, paths = _merged(repo, shared)
    assert sorted(index) == ["a", "b", "c"]
    assert paths["b"] == repo / "b.jsonl"  # the repository's copy wins
    assert paths["c"] == shared / "c.jsonl"


def test_no_shared_folder_leaves_the_repository_copy(tmp_path: Path) -> None:
    repo = _folder(tmp_path / "repo", ["a"])
    index, paths = _merged(repo, None)
    assert list(index) == ["a"]
    assert paths == {"a": repo / "a.jsonl"}
