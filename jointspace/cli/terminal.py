"""Text from posts on a terminal: control characters shown, never obeyed.

A caption or a city is somebody else's text; printed raw, an escape sequence in it could retitle
the window, clear the screen or rewrite earlier lines. Ingest drops control characters from new
posts (ingest/validate.py); this covers what an index already holds and every other source of text.
"""

from __future__ import annotations

# Every C0 and C1 control but tab and newline, and DEL, to U+FFFD.
_CONTROLS = {code: "\ufffd" for code in [*range(0x20), 0x7F, *range(0x80, 0xA0)] if code not in (0x09, 0x0A)}


def safe(text: str) -> str:
    return text.translate(_CONTROLS)
