"""The filter flags that `search` and `alerts add` share: the same names, forms and help. Their
values are text, read by the shared request model (`query/request.py`), so that a flag accepts
and refuses what the HTTP parameter and the inline filter do, with the same words."""

from __future__ import annotations

from typing import Annotated

import typer

City = Annotated[list[str] | None, typer.Option("--city", help="Only this city (repeatable).")]
Tag = Annotated[list[str] | None, typer.Option("--tag", help="Only posts with this hashtag (repeatable).")]
Source = Annotated[list[str] | None, typer.Option("--source", help="Only this source (repeatable).")]
After = Annotated[
    str | None, typer.Option(metavar="DATE", help="Only posts created at or after this time (ISO 8601: 2018-01-31).")
]
Before = Annotated[str | None, typer.Option(metavar="DATE", help="Only posts created before this time (ISO 8601).")]
