"""The settings object: where the user cache is (shared by every home, issue 16 item 7)."""

from __future__ import annotations

from pathlib import Path

import pytest
from jointspace.encoders.factories import text_cache_dir

from jointspace.settings import Settings


def test_the_user_cache_follows_xdg_and_is_shared_by_every_home(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.delenv("JOINTSPACE_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    one, other = Settings(home=tmp_path / "a"), Settings(home=tmp_path / "b")
    assert one.cache_dir == tmp_path / "xdg" / "jointspace"
    assert text_cache_dir(one) == text_cache_dir(other) == tmp_path / "xdg" / "jointspace" / "text"

    monkeypatch.delenv("XDG_CACHE_HOME")
    assert Settings().cache_dir == Path.home() / ".cache" / "jointspace"

    monkeypatch.setenv("JOINTSPACE_CACHE_DIR", str(tmp_path / "mine"))
    assert text_cache_dir(Settings(home=tmp_path / "a")) == tmp_path / "mine" / "text"
