"""`jointspace` as a user runs it (a subprocess): errors as one JSON object with `--json` and as
text with a caret without it, the same exit code both ways; flags shown as flags; -h and --version."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

ERROR_KEYS = {"error", "message", "position", "suggestions"}


def run(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOINTSPACE_")}
    env |= {"JOINTSPACE_HOME": str(home), "COLUMNS": "100"}
    return subprocess.run(["jointspace", *args], capture_output=True, text=True, env=env, timeout=120)


def json_error(done: subprocess.CompletedProcess[str]) -> dict:
    """The one JSON object on stdout (nothing else there)."""
    body = json.loads(done.stdout)
    assert isinstance(body, dict) and ERROR_KEYS <= set(body), body
    return body


@pytest.mark.parametrize(
    "args, kind, words",
    [
        (["search", "dog+"], "query", "found the end of the query"),  # syntax, before any index
        (["search", "dog", "-k", "0"], "query", "k must be between 1 and"),  # a bound of the request model
        (["search", "dog", "--bogus"], "usage", "No such option: --bogus"),  # click's own parsing
        (["search", "dog"], "configuration", "no embedded index"),  # an empty home
        (["ingest", "/no/such/posts.jsonl"], "configuration", "no such file or folder"),
        (["dead-letters", "retry", "NO-SUCH-KEY"], "request", "no dead letter has the key 'NO-SUCH-KEY'"),
        # Filters given as flags fail with the words an inline `after:` / `city:` fails with.
        (["search", "dog", "--after", "notadate"], "query", "'notadate' is not a date: write it as 2018-01-31"),
        (["search", "dog", "--city", " "], "query", "city: needs a value, e.g. london"),
        (["alerts", "add", "dog", "--tag", ""], "query", "tag: needs a value, e.g. beach"),
        (["search", "dog", "--tag", "new york"], "query", "tag: 'new york' is not one hashtag"),
        (["search", 'dog tag:"new york"'], "query", "hashtags hold no space (ingest reads"),
        (["dead-letters", "list", "--limit", "-1"], "usage", "--limit': Input should be greater than or equal to 0"),
    ],
)
def test_errors_are_one_json_object_with_json_and_text_without(
    tmp_path: Path, args: list[str], kind: str, words: str
) -> None:
    as_json = run(tmp_path, *args, "--json")
    as_text = run(tmp_path, *args)
    assert as_json.returncode == as_text.returncode != 0
    body = json_error(as_json)
    assert body["error"] == kind and words in body["message"], body
    assert words in as_text.stderr and as_text.stdout == ""


@pytest.mark.parametrize("blank", ["", " ", ","])
def test_facets_naming_none_exit_2_listing_the_facets(tmp_path: Path, blank: str) -> None:
    """`--facets ''` was taken as no facets at all; refused before any index is opened."""
    words = "facets: needs a facet name: any of city, hashtags, source, month"
    as_json = run(tmp_path, "search", "dog", "--facets", blank, "--json")
    assert as_json.returncode == 2 and json_error(as_json)["message"] == words
    as_text = run(tmp_path, "search", "dog", "--facets", blank)
    assert as_text.returncode == 2 and words in as_text.stderr and as_text.stdout == ""


def test_a_query_error_in_json_keeps_its_position_and_suggestions(tmp_path: Path) -> None:
    done = run(tmp_path, "search", "beach+(sun", "--json")
    body = json_error(done)
    assert done.returncode == 2 and body["position"] == 10 and body["expression"] == "beach+(sun"
    text = run(tmp_path, "search", "beach+(sun")
    assert text.stderr.splitlines()[-1] == "  " + " " * 10 + "^"


def test_json_after_double_dash_is_an_argument_not_the_flag(tmp_path: Path) -> None:
    done = run(tmp_path, "search", "--", "--json")
    assert done.returncode != 0 and done.stdout == "" and "error" in done.stderr


def test_flags_show_as_flags_and_help_and_version_work(tmp_path: Path) -> None:
    for command in (["search"], ["ingest"], ["dead-letters", "list"], ["es", "status"]):
        short = run(tmp_path, *command, "-h")
        assert short.returncode == 0 and "Usage" in short.stdout
        assert "<bool>" not in short.stdout and "--json" in short.stdout
        assert short.stdout == run(tmp_path, *command, "--help").stdout
    version = run(tmp_path, "--version")
    assert version.returncode == 0 and version.stdout.startswith("jointspace 0.")


def test_the_filesystem_root_is_refused_as_a_media_root(tmp_path: Path) -> None:
    """Refused before any index is opened (the check once compared a Path with a str: never true)."""
    done = run(tmp_path, "media", "roots", "add", "/")
    assert done.returncode != 0 and "refusing / as a media root" in done.stderr, done.stderr


def test_a_port_out_of_range_is_refused_before_anything_listens(tmp_path: Path) -> None:
    for port in ("99999", "0"):
        done = run(tmp_path, "serve", "--port", port)
        assert done.returncode == 2 and "Invalid value for '--port'" in done.stderr, done.stderr


def test_control_characters_never_reach_the_terminal() -> None:
    from jointspace.cli.terminal import safe

    assert safe("evil \x1b]0;PWNED\x07 \x1b[2J\x9b1m ok\nnext\ttab") == (
        "evil \ufffd]0;PWNED\ufffd \ufffd[2J\ufffd1m ok\nnext\ttab"
    )


def test_a_confirmation_left_unanswered_aborts_without_a_traceback(tmp_path: Path) -> None:
    """stdin at its end under a [y/N] prompt: "Aborted!", exit 1 (the broker's catch-all handler,
    placed before it, had let typer's Abort through as a traceback)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOINTSPACE_")} | {"JOINTSPACE_HOME": str(tmp_path)}
    done = subprocess.run(
        ["jointspace", "dead-letters", "purge"], stdin=subprocess.DEVNULL, capture_output=True, text=True, env=env
    )
    assert done.returncode == 1, done.stderr
    assert "Aborted!" in done.stderr and "Traceback" not in done.stderr
