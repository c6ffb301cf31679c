from jointspace.encoders.words import STOP_WORDS, WordSegmenter, caption_text, caption_words, split_camel

RANKS = {w: i for i, w in enumerate("the of sun set beach sunset sunflower flower red car ice cream".split())}


def test_camel_case_hashtags_split_into_words() -> None:
    assert split_camel("sunsetBeach") == ["sunset", "beach"]
    assert split_camel("NYCSkyline") == ["nyc", "skyline"]


def test_known_word_segmentation_splits_glued_words_but_keeps_known_compounds() -> None:
    seg = WordSegmenter(RANKS.get)
    assert seg.segment("sunsetbeach") == ("sunset", "beach")
    assert seg.segment("icecream") == ("ice", "cream")
    assert seg.segment("sunflower") == ("sunflower",)


def test_caption_words_drop_stop_words_and_spell_out_hashtags() -> None:
    words = caption_words("A red car at the #sunsetBeach!", ["icecream"], WordSegmenter(RANKS.get))
    assert words == ["red", "car", "ice", "cream", "sunset", "beach"]
    assert "the" in STOP_WORDS and "fire" not in STOP_WORDS


def test_caption_text_keeps_sentence_but_removes_hash_signs() -> None:
    assert caption_text("Red car #sunsetBeach", ["city"]) == "Red car sunset beach city"
