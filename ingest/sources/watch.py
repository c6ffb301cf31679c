"""Posts from `.jsonl` files dropped into a folder, polled. What was consumed is remembered under
JOINTSPACE_HOME (per file: bytes and lines done), so a restart does not read a file twice and a
file that grows is read from where it stopped. A file is read once its size has stayed the same
for one poll, so a half-written file is not taken; while one is settling, the source is not idle
(`--idle-exit` shorter than a poll must not quit before a file written during the run is read)."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Hashable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from jointspace.ingest.sources.base import SourceItem, items_from_lines
from jointspace.ingest.validate import ValidationLimits

from jointspace.atomic_write import write_text_atomic
from jointspace.errors import ConfigurationError
from jointspace.settings import Settings


@dataclass
class _FileProgress:
    offset: int = 0  # bytes settled
    lines: int = 0  # lines settled
    pending: set[int] = field(default_factory=set)  # lines handed out, not yet acked
    read_to: tuple[int, int] | None = None  # (offset, lines) once everything up to there is handed out


class WatchSource:
    name = "watch"

    def __init__(
        self, target: str, settings: Settings, poll_s: float | None = None, idle_exit_s: float | None = None
    ) -> None:
        self.folder = Path(target).expanduser().resolve()
        if not self.folder.is_dir():
            raise ConfigurationError(f"no such folder to watch: {target}")
        self.poll_s = poll_s if poll_s is not None else settings.watch_poll_s
        self.idle_exit_s = idle_exit_s
        self.limits = ValidationLimits.from_settings(settings)
        digest = hashlib.sha256(str(self.folder).encode()).hexdigest()[:16]
        self.state_path = settings.home / "ingest" / f"watch-{digest}.json"
        self.state: dict[str, dict[str, int]] = (
            json.loads(self.state_path.read_text()) if self.state_path.is_file() else {}
        )
        self.progress: dict[str, _FileProgress] = {}
        self._sizes: dict[str, int] = {}
        self._read_at: dict[str, int] = {}

    def _ready_files(self) -> tuple[list[Path], bool]:
        """Files grown past what was consumed and of the same size as at the last poll, and whether
        any other file has grown and is still settling (new data on its way: not idle)."""
        ready = []
        settling = False
        for path in sorted(self.folder.glob("*.jsonl"), key=lambda p: (p.stat().st_mtime_ns, p.name)):
            size = path.stat().st_size
            done = self.state.get(path.name, {}).get("offset", 0)
            stable = self._sizes.get(path.name) == size
            self._sizes[path.name] = size
            # A file read at this size that left only a half-written line has nothing new yet.
            fresh = self._read_at.get(path.name) != size
            if size > done and fresh and path.name not in self.progress:
                if stable:
                    ready.append(path)
                else:
                    settling = True
        return ready, settling

    def _read(self, path: Path) -> Iterator[SourceItem]:
        done = self.state.get(path.name, {"offset": 0, "lines": 0})
        progress = self.progress.setdefault(path.name, _FileProgress(done["offset"], done["lines"]))
        with path.open("rb") as handle:
            handle.seek(progress.offset)
            data = handle.read()
        self._read_at[path.name] = progress.offset + len(data)
        # Only whole lines: a last line without its newline may still be being written.
        complete = data[: data.rfind(b"\n") + 1] if not data.endswith(b"\n") else data
        # split("\n"), not splitlines(): JSON strings may hold U+2028 and friends unescaped.
        text = complete.decode("utf-8", errors="replace").split("\n")[:-1] if complete else []
        first = progress.lines + 1
        for item in items_from_lines(text, path.name, self.folder, self.limits, None, first_line=first):
            progress.pending.add(cast(int, item.token))  # items_from_lines' token: the line number
            yield SourceItem(item.origin, (path.name, item.token), item.post, item.error, item.raw, item.base_dir)
        progress.read_to = (progress.offset + len(complete), progress.lines + len(text))
        self._maybe_settle(path.name)

    def __iter__(self) -> Iterator[SourceItem | None]:
        idle_since = time.monotonic()
        while True:
            ready, settling = self._ready_files()
            if settling:  # a file seen growing is not idleness, however short --idle-exit is
                idle_since = time.monotonic()
            for path in ready:
                for item in self._read(path):
                    idle_since = time.monotonic()
                    yield item
            yield None  # nothing more for now: the consumer flushes its partial batch
            if self.idle_exit_s is not None and time.monotonic() - idle_since >= self.idle_exit_s:
                return
            time.sleep(self.poll_s)

    def ack(self, tokens: Sequence[Hashable]) -> None:
        touched = set()
        for token in tokens:
            name, line = cast(tuple[str, int], token)  # as __iter__ hands them out: (file name, line)
            self.progress[name].pending.discard(line)
            touched.add(name)
        for name in touched:
            self._maybe_settle(name)

    def _maybe_settle(self, name: str) -> None:
        progress = self.progress[name]
        if progress.read_to is None or progress.pending:
            return
        self.state[name] = {"offset": progress.read_to[0], "lines": progress.read_to[1]}
        del self.progress[name]
        # atomic: a crash leaves the old state or the new, never half
        write_text_atomic(self.state_path, json.dumps(self.state, indent=1))

    def close(self) -> None:
        pass


def watch_source(target: str, settings: Settings, **options: Any) -> WatchSource:
    return WatchSource(target, settings, poll_s=options.get("poll_s"), idle_exit_s=options.get("idle_exit_s"))
