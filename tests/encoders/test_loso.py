"""Leave-one-source-out at a tiny size: three sources of drawn shapes, each held out in turn."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from jointspace.datasets.prepared import Item
from jointspace.encoders.evaluation.loso import Candidate, QuerySet, fold_options, keyword_p10, rare_recall_rr, run_loso
from jointspace.encoders.evaluation.loso_report import markdown, write_loso_report
from jointspace.encoders.evaluation.queries import parse_query
from jointspace.encoders.image_encoders import class_prompt_matrix
from jointspace.encoders.imagenet import ClassPrior, class_texts, imagenet_classes
from jointspace.encoders.training import TrainConfig
from jointspace.encoders.training_runs import RunOptions, Workspace, training_items

from jointspace.errors import ConfigurationError
from tests.encoders.conftest import draw, make_corpus

TINY = RunOptions(train=TrainConfig(epochs=15, batch_size=12, hidden=128), prior=ClassPrior("wordnet"))
RARE = {("red", "circle"): "tomato", ("yellow", "circle"): "sun", ("green", "triangle"): "tree"}


def three_sources(folder: Path) -> list[Item]:
    """The two drawn sources of conftest plus `tiles` (a third style), with a rare word on one picture
    of a few colour-shape pairs in every source (1 picture each: the rare-word queries)."""
    items = make_corpus(folder)
    tiles = []
    for it in items:
        if it.post.source == "drawings":
            pid = it.post.id.replace("drawings", "tiles")
            path = folder / f"{pid}.png"
            if not path.exists():
                colour, shape = it.keywords
                n = int(pid.rsplit("-", 1)[1])
                draw(shape, colour, 72, offset=6 * n + 2).rotate(15 * (n + 1), fillcolor="white").save(path)
            tiles.append(replace(it, post=replace(it.post, id=pid, image=str(path), source="tiles")))
    out = []
    for it in [*items, *tiles]:
        colour, shape = it.keywords
        if it.post.id.endswith("-0") and (colour, shape) in RARE:
            it = replace(it, keywords=(*it.keywords, RARE[(colour, shape)]))
        out.append(it)
    return out


@pytest.fixture(scope="module")
def loso_ws(settings, home: Path, backbone, minilm) -> Workspace:
    corpus = three_sources(home / "corpus")

    def load(sources, split):
        splits = {split} if isinstance(split, str) else set(split or ("train", "val", "test"))
        return [it for it in corpus if (sources is None or it.post.source in sources) and it.split in splits]

    ws = Workspace(settings, items_loader=load)
    ws.cache._backbone = backbone
    ws._texts[("minilm", "")] = (minilm, None)
    return ws


@pytest.fixture(scope="module")
def report(loso_ws: Workspace) -> dict:
    return run_loso(loso_ws, [Candidate("tiny", TINY, (0.0, 0.2))], progress=False)


def test_a_fold_trains_on_every_part_of_the_other_sources_only(loso_ws: Workspace) -> None:
    items = training_items(loso_ws, fold_options(TINY, ["drawings", "tiles"]))
    assert {it.post.source for it in items} == {"drawings", "tiles"}
    assert len(items) == len(loso_ws.items(["drawings", "tiles"], None))  # train, val and test parts
    assert fold_options(TINY, ["drawings"]).val_sources == ()


def test_training_may_take_more_of_each_source_than_the_galleries_hold(loso_ws: Workspace) -> None:
    """`train_max_per_source`: the held-out gallery keeps its cap, the folds train on a larger spread
    of which the gallery's pictures are a part (0: every picture)."""
    per_source = len(loso_ws.items(["drawings"], None))
    capped = Workspace(loso_ws.settings, loso_ws._load_items, max_per_source=3, train_max_per_source=0)
    assert len(capped.items(["drawings"], None)) == 3
    assert len(capped.training_items("drawings")) == per_source
    larger = Workspace(loso_ws.settings, loso_ws._load_items, max_per_source=3, train_max_per_source=5)
    gallery = {it.post.id for it in larger.items(["drawings"], None)}
    training = {it.post.id for it in larger.training_items("drawings")}
    assert len(training) == 5 and gallery < training
    fold = training_items(larger, fold_options(TINY, ["drawings", "tiles"]))
    assert len(fold) == 10
    same = Workspace(loso_ws.settings, loso_ws._load_items, max_per_source=3)
    assert {it.post.id for it in same.training_items("drawings")} == gallery


def test_every_source_is_held_out_beside_both_zero_training_baselines(report: dict) -> None:
    assert set(report["sources"]) == {"drawings", "icons", "tiles"}
    names = [r["name"] for r in report["rows"]]
    assert names[:2] == ["zero-training (prompt)", "zero-training (wordnet-6x0.5)"]
    assert names[2:] == ["tiny (w=0)", "tiny (w=0.2)"]
    for row in report["rows"]:
        for source, info in report["sources"].items():
            res = row["results"][source]
            assert info["keyword_queries"] == len(res["p10_per_query"]) == 8  # 4 colours, 3 shapes, "shapes"
            assert info["rare_queries"] == len(res["r10_per_query"]) == 3
            assert 0 <= res["p10"] <= 1 and 0 <= res["r10"] <= 1 and 0 < res["mrr"] <= 1
        assert row["mean"]["p10"] == pytest.approx(np.mean([row["results"][s]["p10"] for s in report["sources"]]))


def test_a_head_trained_on_other_sources_beats_zero_training_there(report: dict) -> None:
    """Coloured shapes are no ImageNet class: a head that learnt colours and shapes from two other
    styles must find them in the third far better than the classifier's class names do."""
    rows = {r["name"]: r for r in report["rows"]}
    head, zero = rows["tiny (w=0)"], rows["zero-training (prompt)"]
    assert head["mean"]["p10"] > zero["mean"]["p10"] + 0.15
    against = head["against"]["zero-training (prompt)"]
    assert against["p10"]["low"] > 0 and against["sources_scored"] == 3
    assert against["p10"]["ratio"] == pytest.approx(head["mean"]["p10"] / zero["mean"]["p10"])
    assert report["winner"] in ("tiny (w=0)", "tiny (w=0.2)")


def test_holdout_one_source_and_refuse_unknown_ones(loso_ws: Workspace) -> None:
    one = run_loso(
        loso_ws,
        [Candidate("tiny", replace(TINY, train=replace(TINY.train, epochs=2)))],
        holdout=["icons"],
        progress=False,
    )
    assert list(one["sources"]) == ["icons"]
    with pytest.raises(ConfigurationError, match="nosuch"):
        run_loso(loso_ws, [Candidate("tiny", TINY)], holdout=["nosuch"], progress=False)


def test_report_markdown_and_figure(report: dict, tmp_path: Path) -> None:
    write_loso_report(report, tmp_path)
    md = (tmp_path / "report.md").read_text()
    assert "| tiny (w=0) |" in md and "Against zero-training (prompt), paired by query" in md
    assert (tmp_path / "loso.png").stat().st_size > 10_000
    assert json.loads((tmp_path / "report.json").read_text())["winner"] == report["winner"]
    assert markdown(report) == md


def test_keyword_and_rare_word_metrics_known_values() -> None:
    vectors = np.eye(12, 4, dtype=np.float32)  # 12 pictures; picture i < 4 points along axis i
    vectors[4:] = 0.5  # pictures 4-11 tie at 0.5 against axis 0: ranked 2nd to 9th in gallery order
    # Ranking for the query along axis 0: picture 0, then 4..11, then 1, 2, 3 (scores 0) at ranks 10-12.
    qs = QuerySet(
        [parse_query("a", "keyword")], np.array([[1, 0, 0, 0]], np.float32), np.array([True]), np.zeros((1, 12), bool)
    )
    qs.relevant[0, [0, 5, 2]] = True  # ranked 1st, 3rd and 11th
    assert keyword_p10(vectors, qs)[0] == pytest.approx(0.2)
    r10, rr = rare_recall_rr(vectors, qs)
    assert r10[0] == pytest.approx(2 / 3) and rr[0] == 1.0
    qs.embeddable[0] = False
    assert keyword_p10(vectors, qs)[0] == 0.0


def test_wordnet_prior_brings_a_class_nearer_its_hypernyms(minilm) -> None:
    tabby = imagenet_classes().index("tabby")
    texts = dict(class_texts(ClassPrior("wordnet"))[tabby])
    assert texts["a photo of a tabby"] == 1.0 and texts["a photo of a cat"] == 0.5 and len(texts) == 7
    mammal = minilm.embed_words(["mammal"])[0]
    wordnet, prompt = class_prompt_matrix(minilm, ClassPrior("wordnet")), class_prompt_matrix(minilm)
    assert np.allclose(np.linalg.norm(wordnet, axis=1), 1, atol=1e-5)
    assert wordnet[tabby] @ mammal > prompt[tabby] @ mammal + 0.05
    with pytest.raises(ConfigurationError, match="class prior"):
        ClassPrior.from_json({"name": "nosuch"})
    assert ClassPrior.from_json(None) == ClassPrior("prompt")


def test_the_winner_is_measured_with_score_cut_offs(report: dict) -> None:
    cut = report["cutoff"]
    assert cut["row"] == report["winner"]
    assert cut["queries"]["icons"]["present"] == 11 and cut["queries"]["icons"]["absent"] == 0
    none, fixed, auto = cut["none"], cut["fixed"], cut["auto"]
    assert none["lost"] == 0.0 and none["kept_per_query"] == 20
    for r in (fixed, auto):
        assert 0 <= r["precision"] <= 1 and 0 <= r["lost"] <= 1 and r["kept_per_query"] <= 20
    assert fixed["f1"] >= none["f1"] - 1e-9  # no cut-off (threshold 0 on cosine) is in the grid's reach


def test_a_finished_bundle_is_scored_as_it_is_beside_the_folds(loso_ws: Workspace, settings, tmp_path: Path) -> None:
    """A bundle trained on drawings and icons (here a closed-form ridge head, the default loss) scored
    on tiles as it is: a row of its own, paired against zero-training, its training sources named,
    and the same figures as its image encoder gives."""
    from jointspace.encoders.bundle import forget_loaded, load_bundle
    from jointspace.encoders.bundle_writer import save_trained
    from jointspace.encoders.training_runs import DEFAULT_RUN, train_one

    assert DEFAULT_RUN.train.loss == "ridge" and DEFAULT_RUN.val_sources == () and DEFAULT_RUN.train_sources == ("all",)
    trained = train_one(loso_ws, fold_options(DEFAULT_RUN, ["drawings", "icons"]), progress=False)
    assert trained.data_sources == ("drawings", "icons")
    folder = save_trained(trained, tmp_path / "ridge", settings, make_latest=False)
    assert json.loads((folder / "manifest.json").read_text())["training"]["data_sources"] == ["drawings", "icons"]
    forget_loaded()
    bundle = load_bundle(folder, settings)
    out = run_loso(loso_ws, [], holdout=["tiles"], bundles=[(bundle, ["drawings", "icons"])], progress=False)
    row = out["rows"][-1]
    assert row["kind"] == "bundle" and row["name"] == f"bundle {bundle.name}" and row["trained_on"] == []
    zero = out["rows"][0]["results"]["tiles"]["p10"]
    assert row["results"]["tiles"]["p10"] > zero + 0.15  # colours and shapes are no ImageNet classes
    assert row["against"]["zero-training (prompt)"]["p10"]["low"] > 0
    tiles = loso_ws.items(["tiles"], None)
    outputs = loso_ws.outputs(tiles)
    vectors = bundle.image.embed_features(outputs.features, outputs.logits)
    from jointspace.encoders.evaluation.loso import HeldOut

    assert HeldOut(loso_ws, "tiles").score(vectors, bundle.text)["p10"] == row["results"]["tiles"]["p10"]
    md = markdown(out)
    assert "## Finished bundles" in md and f"| bundle {bundle.name} | none |" in md


def test_flip_test_time_augmentation_is_a_candidate_of_its_own_beside_its_baselines(loso_ws: Workspace) -> None:
    flipped = loso_ws.with_backbone(None, ("flip",))
    assert flipped.cache is loso_ws.cache and flipped.label == "efficientnet_lite0+flip"
    items = loso_ws.items(["tiles"], None)
    clean, mirror, mean = loso_ws.outputs(items), loso_ws.outputs(items, "flip"), flipped.outputs(items)
    assert np.allclose(mean.features, (clean.features + mirror.features) / 2, atol=1e-3)
    assert np.allclose(mean.logits, (clean.logits + mirror.logits) / 2, atol=1e-2)
    assert not np.allclose(mirror.features, clean.features, atol=1e-3)
    out = run_loso(
        loso_ws,
        [Candidate("tiny", TINY, (0.2,)), Candidate("tiny flip", TINY, (0.2,), tta=("flip",))],
        holdout=["tiles"],
        progress=False,
    )
    names = [r["name"] for r in out["rows"]]
    assert "zero-training (wordnet-6x0.5, efficientnet_lite0+flip)" in names
    assert out["baseline"] == "zero-training (wordnet-6x0.5)" and out["backbone"] == "efficientnet_lite0"
    row = next(r for r in out["rows"] if r["name"] == "tiny flip (w=0.2)")
    assert row["config"]["backbone"] == "efficientnet_lite0+flip"
    assert "zero-training (wordnet-6x0.5, efficientnet_lite0+flip)" in row["against"]
    assert "### " not in markdown(out) and "efficientnet_lite0+flip" in markdown(out)


def test_eval_loso_image_sides_put_the_reference_backbone_first() -> None:
    from jointspace.cli.train import image_sides

    assert image_sides("efficientnet_lite0", [], []) == [(None, ())]
    assert image_sides("efficientnet_lite0", ["efficientnet_lite1", "efficientnet_lite0"], ["flip"]) == [
        (None, ()),
        (None, ("flip",)),
        ("efficientnet_lite1", ()),
        ("efficientnet_lite1", ("flip",)),
    ]
