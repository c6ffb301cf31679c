"""docs/query.md's table of limits states the defaults the code has."""

from __future__ import annotations

import re
from pathlib import Path

from jointspace.settings import Settings

DOC = Path(__file__).parents[2] / "docs" / "query.md"


def test_the_limits_table_states_the_settings_defaults() -> None:
    rows = re.findall(r"^\| ((?:`\w+`(?:, )?)+) \| ([^|]+) \|", DOC.read_text(encoding="utf-8"), flags=re.M)
    defaults = Settings().model_dump()
    checked = 0
    for names, values in rows:
        names = re.findall(r"`(\w+)`", names)
        values = [v.strip().replace(",", "") for v in values.split(", ")] if len(names) > 1 else [values.strip()]
        for name, value in zip(names, values, strict=True):
            if name in defaults:
                assert float(value.replace(",", "")) == float(defaults[name]), (name, value, defaults[name])
                checked += 1
    assert checked >= 12  # the candidate pool's three among them
    assert "min_num_candidates" in DOC.read_text(encoding="utf-8")
