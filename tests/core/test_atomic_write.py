"""The one atomic-write helper: the old file or the new one, never half, and no leftovers."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np
import pytest

from jointspace.atomic_write import atomic_open, atomic_path, write_bytes_atomic, write_text_atomic


def test_write_replaces_and_leaves_only_the_target(tmp_path: Path) -> None:
    target = tmp_path / "deep" / "state.json"  # the folder is made
    write_text_atomic(target, "old")
    write_text_atomic(target, "new")
    write_bytes_atomic(tmp_path / "deep" / "blob", b"\x00\x01")
    assert target.read_text() == "new" and (tmp_path / "deep" / "blob").read_bytes() == b"\x00\x01"
    assert sorted(p.name for p in target.parent.iterdir()) == ["blob", "state.json"]


def test_a_failed_write_keeps_the_old_file_and_removes_the_temporary(tmp_path: Path) -> None:
    target = tmp_path / "posts.jsonl"
    write_text_atomic(target, "complete\n")
    with pytest.raises(RuntimeError), atomic_open(target) as handle:
        handle.write("half a li")
        raise RuntimeError("killed mid-write")
    assert target.read_text() == "complete\n"
    assert [p.name for p in tmp_path.iterdir()] == ["posts.jsonl"]


def test_temporary_name_is_beside_the_target_with_pid_and_suffix(tmp_path: Path) -> None:
    target = tmp_path / "vectors.npy"
    with atomic_path(target, suffix=".tmp.npy") as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith("vectors.npy.")
        assert tmp.name.endswith(f".{os.getpid()}.tmp.npy")  # ann_index.remove_stale reads the pid
        np.save(tmp, np.arange(3))  # np.save keeps a name that ends in .npy
    assert np.load(target).tolist() == [0, 1, 2]
    assert [p.name for p in tmp_path.iterdir()] == ["vectors.npy"]


def test_threads_racing_for_one_target_never_share_a_temporary(tmp_path: Path) -> None:
    target = tmp_path / "thumb.jpg"
    errors: list[BaseException] = []

    def write(i: int) -> None:
        try:
            for _ in range(20):
                write_bytes_atomic(target, bytes([i]) * 10_000)
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    data = target.read_bytes()
    assert len(data) == 10_000 and len(set(data)) == 1  # one writer's whole content
    assert [p.name for p in tmp_path.iterdir()] == ["thumb.jpg"]
