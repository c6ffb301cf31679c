"""openclipart-svg: SVG drawings in category folders, with Dublin Core title, keywords, description, creator."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from pathlib import Path
from typing import cast

from jointspace.datasets.items import ImageSource, RawItem
from jointspace.datasets.text import category_words, content_words, hashtag, one_line, unique

SOURCE = "openclipart"
SVG_ROOT = Path("usr/share/openclipart/svg")

# Regular expressions rather than an XML parser: many of these files use prefixes declared
# elsewhere or stray entities that strict parsers refuse, yet cairosvg renders them fine.
_WORK = re.compile(r"<cc:Work\b.*?</cc:Work>", re.S)
_TITLE = re.compile(r"<dc:title>(.*?)</dc:title>", re.S)
_DESCRIPTION = re.compile(r"<dc:description>(.*?)</dc:description>", re.S)
_SUBJECT = re.compile(r"<dc:subject>(.*?)</dc:subject>", re.S)
_LI = re.compile(r"<rdf:li>(.*?)</rdf:li>", re.S)
_CREATOR = re.compile(r"<dc:creator>.*?<dc:title>(.*?)</dc:title>", re.S)
_TAG = re.compile(r"<[^>]+>")


def _text(match: re.Match[str] | None) -> str:
    return " ".join(html.unescape(_TAG.sub(" ", match.group(1))).split()) if match else ""


def parse_metadata(svg_text: str) -> dict[str, object]:
    """title, description, creator and raw keyword strings from an SVG's RDF metadata (empty when absent)."""
    work = _WORK.search(svg_text)
    block = work.group(0) if work else ""
    subject = _SUBJECT.search(block)
    keywords = [html.unescape(k).strip() for k in _LI.findall(subject.group(1))] if subject else []
    # The creator's title sits inside dc:creator; remove that block before looking for the work's own title.
    creator = _text(_CREATOR.search(block))
    without_agents = re.sub(r"<dc:(creator|publisher|rights)>.*?</dc:\1>", "", block, flags=re.S)
    return {
        "title": _text(_TITLE.search(without_agents)),
        "description": _text(_DESCRIPTION.search(without_agents)),
        "creator": creator,
        "keywords": keywords,
    }


def _hashtags(raw_keywords: list[str], creator: str) -> tuple[str, ...]:
    tags: list[str] = []
    for raw in raw_keywords:
        if raw.strip().lower() == creator.lower():
            continue  # some artists tag drawings with their own name
        for part in re.split(r"[,;]|\s+", raw):
            tag = hashtag(part)
            if tag:
                tags.append(tag)
    return unique(tags)


def scan(root: Path) -> Iterator[RawItem]:
    """Every regular SVG file (symlinked duplicates skipped), sorted by path."""
    base = root / SVG_ROOT
    for path in sorted(base.rglob("*.svg")):
        if path.is_symlink() or not path.is_file():
            continue
        relative = path.relative_to(base)
        category = relative.parent.as_posix()
        meta = parse_metadata(path.read_bytes()[:200_000].decode("utf-8", "replace"))
        title = str(meta["title"]) or path.stem.replace("_", " ")
        description = str(meta["description"])
        creator = str(meta["creator"])
        hashtags = _hashtags(list(cast(list[str], meta["keywords"])), creator)  # parse_metadata's keywords: a list
        caption = title if not description or description.lower() == title.lower() else f"{title}. {description}"
        keywords = unique(
            [*content_words(title), *(w for t in hashtags for w in content_words(t)), *category_words(category)]
        )
        yield RawItem(
            source=SOURCE,
            key=relative.as_posix(),
            image=ImageSource("svg", path=path),
            caption=one_line(caption),
            hashtags=hashtags,
            keywords=keywords,
            category=category,
            author=creator or None,
        )
