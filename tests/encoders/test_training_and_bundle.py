"""Train a tiny head on drawn shapes in seconds, save it as a bundle, load it back, refuse mismatches."""

from __future__ import annotations

import copy
import json
import re
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from jointspace.encoders.bundle import (
    ZEROSHOT_NAME,
    forget_loaded,
    latest_bundle_dir,
    load_bundle,
    resolve_bundle_dir,
    shipped_bundle_dir,
)
from jointspace.encoders.bundle_writer import save_trained
from jointspace.encoders.evaluation.core import Gallery, GalleryScorer
from jointspace.encoders.image_encoders import ensemble, run_head, zeroshot_vectors
from jointspace.encoders.training import TrainConfig
from jointspace.encoders.training_runs import RunOptions, train_one

from jointspace.errors import ConfigurationError, ModelMismatchError
from jointspace.settings import Settings
from tests.encoders.conftest import draw

OPTIONS = RunOptions(
    train=TrainConfig(epochs=25, batch_size=12, patience=25, hidden=128),
    train_sources=("drawings",),
    val_sources=("icons",),
    augment=("icon-blur",),
)


@pytest.fixture(scope="module")
def trained(workspace):
    return train_one(workspace, OPTIONS, progress=False)


@pytest.fixture(scope="module")
def bundle_dir(trained, settings, tmp_path_factory) -> Path:
    return save_trained(trained, tmp_path_factory.mktemp("bundles") / "tiny", settings)


def test_head_learns_shapes_and_colours_on_another_source(trained, workspace) -> None:
    losses = [h["loss"] for h in trained.result.history]
    assert losses[-1] < losses[0]
    test = workspace.items(["icons"], "test")
    scorer = GalleryScorer(Gallery("icons", test).with_queries(), trained.text)
    out = workspace.outputs(test)
    head_p10 = scorer.keyword_p10(run_head(trained.result.head, out.features))
    random_p10 = scorer.random()["keyword"]["p10"]
    assert head_p10 > random_p10 + 0.1


def test_training_is_reproducible_for_a_seed(workspace, trained) -> None:
    again = train_one(workspace, replace(OPTIONS, train=replace(OPTIONS.train, epochs=2)), progress=False)
    first = train_one(workspace, replace(OPTIONS, train=replace(OPTIONS.train, epochs=2)), progress=False)
    for a, b in zip(again.result.head.parameters(), first.result.head.parameters(), strict=True):
        assert torch.equal(a, b)


def test_bundle_round_trip(bundle_dir: Path, trained, settings) -> None:
    manifest = json.loads((bundle_dir / "manifest.json").read_text())
    assert manifest["dim"] == 384 and manifest["text"]["name"] == "minilm" and manifest["loss"] == OPTIONS.train.loss
    assert manifest["training"]["data_hash"] and manifest["created"] and manifest["code_version"]
    assert latest_bundle_dir(settings) == bundle_dir.resolve()
    forget_loaded()
    b = load_bundle(None, settings)
    assert b.path == bundle_dir.resolve() and b is load_bundle(bundle_dir, settings)  # once per process
    assert b.image.zeroshot_weight == trained.zeroshot_weight
    assert_reloaded_vectors_match(b, trained, trained.zeroshot_weight, settings)
    assert b.text.embed_words(["red"]).shape == (1, 384)


def shipped_blend_weight() -> float:
    """The blend weight of the bundle users get by default (the shipped one)."""
    shipped = shipped_bundle_dir()
    assert shipped is not None, "no shipped bundle to read the default blend weight from"
    return float(json.loads((shipped / "manifest.json").read_text())["image"]["config"]["zeroshot_weight"])


def assert_reloaded_vectors_match(b, trained, weight: float, settings) -> None:
    """The reloaded bundle's image vectors are the trained head's, blended with the zero-training
    vector at `weight`, exactly as training scored them."""
    images = [draw("circle", "red"), draw("square", "blue"), draw("triangle", "green")]
    v = b.image.embed_images(images)
    feats, logits = b.image.backbone.run_images(images)
    head = trained.result.head.eval()(torch.from_numpy(feats)).detach().numpy()
    expected = ensemble(head, zeroshot_vectors(logits, trained.class_matrix, settings.zeroshot_top_k), weight)
    np.testing.assert_allclose(v, expected, atol=1e-4)
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)


def test_bundle_round_trip_at_the_default_blend_weight(trained, settings, tmp_path: Path) -> None:
    """Whatever weight the tiny head chose, the reloaded bundle is also checked at the shipped
    bundle's blend weight (not 0), so the zero-training half of the blend is reloaded right."""
    weight = shipped_blend_weight()
    assert 0 < weight < 1
    blended = replace(trained, zeroshot_weight=weight)
    folder = save_trained(blended, tmp_path / "blended", settings, make_latest=False)
    forget_loaded()
    b = load_bundle(folder, settings)
    assert b.image.zeroshot_weight == weight
    assert_reloaded_vectors_match(b, trained, weight, settings)
    # Not the head alone: the blend moves the vectors.
    images = [draw("circle", "red")]
    head_only = trained.result.head.eval()(torch.from_numpy(b.image.backbone.run_images(images)[0])).detach().numpy()
    assert not np.allclose(b.image.embed_images(images), head_only / np.linalg.norm(head_only), atol=1e-3)


def _copy(bundle_dir: Path, tmp_path: Path, edit) -> Path:
    dest = tmp_path / "edited"
    shutil.copytree(bundle_dir, dest)
    manifest = json.loads((dest / "manifest.json").read_text())
    edit(manifest)
    (dest / "manifest.json").write_text(json.dumps(manifest))
    return dest


def test_dimension_mismatch_is_refused(bundle_dir: Path, settings, tmp_path: Path) -> None:
    path = _copy(bundle_dir, tmp_path, lambda m: m.update(dim=50))
    with pytest.raises(ConfigurationError, match="50"):
        _ = load_bundle(path, settings).text  # the text side is loaded, and checked, on first use


def test_other_text_encoder_is_refused(bundle_dir: Path, settings, tmp_path: Path) -> None:
    def swap(m: dict) -> None:
        m["text"]["probe"] = [list(np.roll(np.asarray(r), 7)) for r in m["text"]["probe"]]

    with pytest.raises(ModelMismatchError, match="different"):
        _ = load_bundle(_copy(bundle_dir, tmp_path, swap), settings).text


def test_folder_without_manifest_is_refused(tmp_path: Path, settings) -> None:
    with pytest.raises(ConfigurationError, match="not a model bundle"):
        load_bundle(tmp_path, settings)


def test_retrained_heads_get_different_bundle_names(workspace, trained, settings, bundle_dir, tmp_path) -> None:
    """Indexes are keyed by bundle name, so a retrained head must not reuse the name of the last one."""
    other = train_one(workspace, replace(OPTIONS, train=replace(OPTIONS.train, epochs=2, seed=1)), progress=False)
    again = save_trained(other, tmp_path / "again", settings, make_latest=False)
    first, second = (json.loads((d / "manifest.json").read_text())["name"] for d in (bundle_dir, again))
    assert re.fullmatch(r"minilm-lite0-soft-contrastive-word-[0-9a-f]{8}", first)
    assert first != second and first.rsplit("-", 1)[0] == second.rsplit("-", 1)[0]


def test_shipped_bundle_is_the_default_until_something_is_trained(tmp_path: Path, settings) -> None:
    fresh = settings.model_copy(update={"home": tmp_path})
    folder = resolve_bundle_dir(None, fresh)
    assert folder == shipped_bundle_dir() and folder is not None
    b = load_bundle(None, fresh)
    # The leave-one-source-out winner, trained on every part of every source (docs/eval-report.md).
    assert b.name.endswith("-shipped") and b.dim == 384 and b.manifest["training"]["sources"] == ["all"]
    assert b.manifest["image"]["config"]["class_prior"]["name"] == "wordnet"
    b.text.embed_words(["dog"])  # the manifest's probe vectors check the text encoder here
    v = b.image.embed_images([draw("circle", "red"), draw("square", "blue")])
    assert v.shape == (2, 384) and v.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    # The float16 weights load into the float32 head; the bundle is the configuration `jointspace
    # train` uses by default (the LOSO winner). The ridge head no longer separates these two toy
    # drawings by the word "circle" (0.489 each): LOSO on real sources is what chose it.
    from jointspace.encoders.training_runs import DEFAULT_RUN

    image = b.manifest["image"]["config"]
    assert b.manifest["loss"] == DEFAULT_RUN.train.loss and image["zeroshot_weight"] == DEFAULT_RUN.zeroshot_weight
    assert b.manifest["training"]["config"]["ridge_lambda"] == DEFAULT_RUN.train.ridge_lambda
    assert len(b.manifest["training"]["data_sources"]) == 14
    # Every prepared picture in the neighbour bank (LOSO: more than 500 per source won), as int8 rows
    # kept int8 in memory; unprojected, since a projection cost GeM keys P@10 on unseen sources.
    assert b.manifest["training"]["max_per_source"] is None
    bank = b.image.neighbours
    assert bank is not None and bank.projection is None and bank.keys.dtype == np.int8
    assert len(bank.keys) == b.manifest["training"]["neighbours"]["pictures"] > 20_000
    # Trained on the pool a user's backbone gets by default (GeM p 4 beside the average).
    assert image["backbone"]["pool"] == Settings().backbone_pool == "gem4"
    assert bank.keys.shape[1] == b.image.backbone.head_dim == 1280


def test_zero_training_bundle_when_nothing_is_trained(tmp_path: Path, settings) -> None:
    fresh = settings.model_copy(update={"home": tmp_path, "shipped_model": False})
    folder = resolve_bundle_dir(None, fresh)
    assert folder.name == ZEROSHOT_NAME and (folder / "manifest.json").is_file()
    b = load_bundle(None, fresh)
    assert b.name == ZEROSHOT_NAME and b.dim == 384


def test_finetune_step_runs_on_cpu(workspace, trained) -> None:
    from jointspace.encoders.finetune import finetune

    items = workspace.items(["drawings"], "train")[:4]
    targets = torch.nn.functional.normalize(torch.randn(4, 384), dim=-1)
    before = [p.clone() for p in workspace.cache.backbone.model.conv_head.parameters()]
    tuned, head, losses = finetune(
        workspace.cache.backbone, trained.result.head, items, targets, "regression", steps=1, batch_size=4
    )
    assert len(losses) == 1 and np.isfinite(losses[0])
    assert not torch.equal(before[0], next(tuned.model.conv_head.parameters()))
    assert torch.equal(before[0], next(workspace.cache.backbone.model.conv_head.parameters()))  # a copy changed


def test_evaluation_writes_a_report(workspace, settings, bundle_dir, tmp_path: Path) -> None:
    from jointspace.encoders.evaluation.runner import run_evaluation

    report = run_evaluation(
        settings,
        tmp_path / "report",
        bundle=bundle_dir,
        grid=True,
        workspace=workspace,
        train_sources=("drawings",),
        val_sources=("icons",),
        grid_epochs=2,
        grid_texts=("minilm",),
        grid_losses=("regression",),
        min_gallery_images=10,
        compare=[bundle_dir],
    )
    names = [r["name"] for r in report["configurations"]]
    assert names[:2] == ["random ranking", "zero-training (minilm)"]
    assert sum(n.startswith("bundle") for n in names) == 2  # the bundle under test and the one compared
    assert report["winner"]["text"] == "minilm"
    for f in ("report.json", "report.md", "p10.png", "curves.png"):
        assert (tmp_path / "report" / f).stat().st_size > 0
    md = (tmp_path / "report" / "report.md").read_text()
    assert "| random ranking |" in md and "paired by query" in md
    bundle_row = next(r for r in report["configurations"] if r["kind"] == "bundle")
    per_query = bundle_row["results"]["icons"]["keyword"]
    assert len(per_query["p10_per_query"]) == per_query["n"]
    assert np.mean(per_query["p10_per_query"]) == pytest.approx(per_query["p10"])


def test_a_bundle_on_another_pool_is_scored_on_its_own_features(workspace, settings, bundle_dir) -> None:
    """`eval --bundle/--compare` and LOSO's bundle rows feed a bundle its own backbone's outputs: an
    average-pooled bundle beside the GeM workspace gets the vectors that decoding its pictures gives."""
    from jointspace.encoders.backbone import Backbone, BackboneSpec
    from jointspace.encoders.evaluation.core import bundle_vectors, embed_pictures, own_backbone_spec
    from jointspace.encoders.evaluation.loso import HeldOut

    image = copy.copy(load_bundle(bundle_dir, settings).image)  # the shared loaded bundle stays GeM
    image.backbone = Backbone(BackboneSpec(pool="avg"), device="cpu", threads=2)
    spec = own_backbone_spec(image)
    assert spec.pool == "avg" and workspace.spec.pool == "gem4"
    gallery = HeldOut(workspace, "icons")
    decoded = embed_pictures(image, gallery.items)
    from_features = bundle_vectors(workspace, image, {"i": gallery.items}, {"i": gallery.outputs})["i"]
    np.testing.assert_allclose(from_features, decoded, atol=1e-4)
    # The workspace's own GeM features would have given other vectors: the check can fail.
    gem = image.embed_features(gallery.outputs.features, gallery.outputs.logits)
    assert not np.allclose(gem, decoded, atol=1e-3)


def test_photo_train_val_and_test_parts_are_disjoint_and_stable(settings, corpus) -> None:
    """Photo sources: heads train on the train part only, validation sees only the val part, galleries
    only the test part, whatever 80/10/10 split each photo was prepared with."""
    from jointspace.datasets.prepared import Item
    from jointspace.encoders.evaluation.runner import build_galleries, gallery_split
    from jointspace.encoders.training_runs import PHOTOS, Workspace, training_items, validation_sets

    # The drawn shapes again, as two photo sources, each item keeping its prepared 80/10/10 split.
    photos = [
        Item(
            post=replace(it.post, id=f"{src}-{it.post.id}", source=src),
            category=it.category,
            keywords=it.keywords,
            split=it.split,
        )
        for src in ("gcompris", "scratch")
        for it in corpus
    ]

    def load(sources, split):
        splits = {split} if isinstance(split, str) else set(split or ("train", "val", "test"))
        return [
            it for it in [*corpus, *photos] if (sources is None or it.post.source in sources) and it.split in splits
        ]

    def parts() -> tuple[set[str], set[str], set[str]]:
        ws = Workspace(settings, items_loader=load)
        options = replace(OPTIONS, train_sources=("drawings", PHOTOS), val_sources=("icons", PHOTOS), limit=None)
        train = {it.id for it in training_items(ws, options)}
        sets, desc = validation_sets(ws, options)
        assert [name for name, _ in sets] == ["icons", PHOTOS] and "val part of gcompris, scratch" in desc
        val = {it.id for name, items in sets if name == PHOTOS for it in items}
        galleries = {g.name: g for g in build_galleries(ws, ("drawings", PHOTOS), ("icons", PHOTOS), min_images=10)}
        assert "gcompris" in galleries and PHOTOS in galleries
        assert "train part trained on" in gallery_split(PHOTOS, ("drawings", PHOTOS), ())
        test = {it.id for it in galleries[PHOTOS].items}
        assert {it.id for it in galleries["gcompris"].items} <= test
        return train, val, test

    train, val, test = parts()
    photo_ids = {it.id for it in photos}
    drawing_train = {it.id for it in corpus if it.post.source == "drawings" and it.split == "train"}
    assert train - drawing_train and (train - drawing_train) <= photo_ids  # photos joined the drawings' train split
    photo_train = train & photo_ids
    assert photo_train and val and test
    assert not photo_train & val and not photo_train & test and not val & test
    assert photo_train | val | test == photo_ids  # every photo is in one part, whatever its prepared split
    assert parts() == (train, val, test)  # the same parts from a fresh workspace


def test_ridge_head_is_a_closed_form_linear_fit_that_round_trips(workspace, settings, tmp_path: Path) -> None:
    """loss `ridge`: one linear layer solved in closed form (no epochs), scored, saved and reloaded
    like any head; with λ near 0 it reproduces an exactly linear map from the features."""
    from jointspace.encoders.ridge import fit_ridge

    options = replace(OPTIONS, train=replace(OPTIONS.train, loss="ridge", ridge_lambda=30.0), augment=())
    ridge = train_one(workspace, options, progress=False)
    assert ridge.result.head.config.hidden == 0 and ridge.result.best_epoch == 1
    test = workspace.items(["icons"], "test")
    scorer = GalleryScorer(Gallery("icons", test).with_queries(), ridge.text)
    p10 = scorer.keyword_p10(run_head(ridge.result.head, workspace.outputs(test).features))
    assert p10 > scorer.random()["keyword"]["p10"] + 0.1
    folder = save_trained(ridge, tmp_path / "ridge", settings, make_latest=False)
    forget_loaded()
    b = load_bundle(folder, settings)
    assert json.loads((folder / "manifest.json").read_text())["image"]["config"]["head"]["hidden"] == 0
    assert_reloaded_vectors_match(b, ridge, ridge.zeroshot_weight, settings)

    rng = np.random.default_rng(0)
    x = rng.random((300, 12)).astype(np.float32) * 4
    y = x @ rng.normal(size=(12, 3)) + 0.5
    head = fit_ridge(x, y, lam=0.0)
    with torch.no_grad():
        np.testing.assert_allclose(head.net(torch.from_numpy(x)).numpy(), y, atol=1e-3)
    shrunk = fit_ridge(x, y, lam=1e6)
    with torch.no_grad():  # a huge penalty leaves only the bias: every prediction is the mean target
        np.testing.assert_allclose(
            shrunk.net(torch.from_numpy(x)).numpy(), np.broadcast_to(y.mean(0), y.shape), atol=0.05
        )


def test_neighbour_blend_round_trip(workspace, settings, tmp_path: Path) -> None:
    """A head trained with the nearest-pictures blend keeps its bank in the bundle, and the reloaded
    bundle makes the vectors training scored (head, zero-training vector and neighbours blended)."""
    options = replace(
        OPTIONS,
        train=TrainConfig(loss="ridge", ridge_lambda=300.0),
        val_sources=(),
        augment=(),
        zeroshot_weight=0.4,
        neighbour_weight=0.3,
        neighbour_k=5,
    )
    trained = train_one(workspace, options, progress=False)
    assert trained.neighbours is not None and trained.neighbours.k == 5
    folder = save_trained(trained, tmp_path / "neighbours", settings, make_latest=False)
    config = json.loads((folder / "manifest.json").read_text())["image"]["config"]
    assert config["neighbours"] == "neighbours.npz" and config["neighbour_weight"] == 0.3
    forget_loaded()
    b = load_bundle(folder, settings)
    images = [draw("circle", "red"), draw("square", "blue"), draw("triangle", "green")]
    feats, logits = b.image.backbone.run_images(images)
    expected = trained.vectors(feats, logits, settings.zeroshot_top_k)
    np.testing.assert_allclose(b.image.embed_images(images), expected, atol=1e-4)
    # The reloaded encoder carries the bank and its weight (on these toy pictures the ridge head and
    # the neighbours agree closely, so the blend alone would not tell them apart).
    assert b.image.neighbours is not None and b.image.neighbour_weight == 0.3
    np.testing.assert_allclose(b.image.neighbours.vectors(feats), trained.neighbours.vectors(feats), atol=1e-5)
