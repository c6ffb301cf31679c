from __future__ import annotations

from jointspace.datasets.scanners.openclipart import parse_metadata
from jointspace.datasets.scanners.tuxpaint import english_description
from jointspace.datasets.text import category_words, content_words, hashtag

SVG = """<svg xmlns="http://www.w3.org/2000/svg"><metadata><rdf:RDF><cc:Work rdf:about="">
<dc:title>Red Apple &amp; Leaf</dc:title><dc:description>A shiny apple</dc:description>
<dc:subject><rdf:Bag><rdf:li>Fruit</rdf:li><rdf:li>food, healthy</rdf:li><rdf:li></rdf:li>
<rdf:li>hash</rdf:li></rdf:Bag></dc:subject>
<dc:publisher><cc:Agent><dc:title>Open Clip Art Library</dc:title></cc:Agent></dc:publisher>
<dc:creator><cc:Agent><dc:title>Jane Doe</dc:title></cc:Agent></dc:creator>
</cc:Work></rdf:RDF></metadata></svg>"""


def test_openclipart_metadata_is_read_from_the_work_block() -> None:
    meta = parse_metadata(SVG)
    assert meta["title"] == "Red Apple & Leaf"
    assert meta["description"] == "A shiny apple"
    assert meta["creator"] == "Jane Doe"
    assert meta["keywords"] == ["Fruit", "food, healthy", "", "hash"]


def test_hashtags_are_clean_lower_case_tokens() -> None:
    assert hashtag("Fruit") == "fruit"
    assert hashtag("signs and symbols") == "signs_and_symbols"
    assert hashtag("  ") is None and hashtag("hash") is None and hashtag("42") is None


def test_content_words_drop_stop_words_noise_and_numbers() -> None:
    assert content_words("A US 25 cent piece called a quarter.") == ["cent", "piece", "called", "quarter"]
    assert category_words("signs_and_symbols/money/00_symbols") == ["signs", "symbols", "money"]


def test_tuxpaint_description_is_the_english_first_line(tmp_path) -> None:
    txt = tmp_path / "quarter.txt"
    txt.write_text("A US quarter.\naf.utf8='n VSA kwart.\n", encoding="utf-8")
    assert english_description(txt) == "A US quarter."
