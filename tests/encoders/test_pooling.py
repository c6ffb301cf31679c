"""The backbone's pooling: GeM beside the average, what each consumer reads, and the spec's key."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from jointspace.encoders.backbone import Backbone, BackboneSpec
from jointspace.encoders.backbone_onnx import OnnxBackbone
from jointspace.encoders.head import HeadConfig, ProjectionHead
from jointspace.encoders.image_encoders import HeadImageEncoder
from jointspace.encoders.pooling import gem, gem_power

from jointspace.errors import ConfigurationError
from jointspace.settings import Settings
from tests.encoders.conftest import draw

BATCH = [draw("circle", "red"), draw("square", "blue", 64), draw("triangle", "green", 120)]


@pytest.fixture(scope="module")
def average() -> Backbone:
    return Backbone(BackboneSpec(pool="avg"), device="cpu", threads=2)


def test_pool_names() -> None:
    assert gem_power("avg") is None
    assert gem_power("gem4") == 4.0 and gem_power("gem2.5") == 2.5
    for bad in ("max", "gem", "gem0", "gemx", "GEM4", " gem4"):
        with pytest.raises(ConfigurationError, match="pool"):
            gem_power(bad)


def test_gem_runs_from_the_average_to_the_maximum() -> None:
    x = torch.rand(2, 5, 7, 7)
    torch.testing.assert_close(gem(x, 1.0), x.mean((2, 3)))
    high = gem(x, 60.0)
    assert (high <= x.amax((2, 3)) + 1e-5).all() and (high > x.amax((2, 3)) * 0.9).all()
    assert (gem(x, 4.0) > gem(x, 2.0)).all() and (gem(x, 2.0) > x.mean((2, 3))).all()


def test_the_default_pool_is_gem_beside_the_average(backbone, average) -> None:
    """The product's backbone (the session fixture, built from the default settings): the classifier
    reads the average as before, the head the GeM half, and workers keep both."""
    assert Settings().backbone_pool == backbone.spec.pool == "gem4"
    feats, logits = backbone.run_images(BATCH, batch_size=2)
    avg_feats, avg_logits = average.run_images(BATCH, batch_size=2)
    np.testing.assert_allclose(logits, avg_logits, atol=1e-4)  # zero-training unchanged
    assert feats.shape == avg_feats.shape == (3, 1280) and not np.allclose(feats, avg_feats, atol=1e-2)
    pooled = backbone.pooled_images(BATCH, batch_size=2)
    assert pooled.shape == (3, backbone.pooled_dim) == (3, 2560)
    np.testing.assert_allclose(pooled[:, :1280], avg_feats, atol=1e-4)
    np.testing.assert_allclose(pooled[:, 1280:], feats, atol=1e-5)
    # The GeM half is at least the average (power mean inequality) and differs from it.
    assert (feats >= avg_feats - 1e-3).all()


def test_kept_features_give_the_vectors_of_the_pictures(backbone) -> None:
    """A reindex from kept float16 features (`embed_pooled`) gives what embedding the pictures gives."""
    torch.manual_seed(0)
    encoder = HeadImageEncoder(backbone, ProjectionHead(HeadConfig(in_dim=1280, out_dim=384, hidden=0)))
    assert encoder.feature_dim == 2560
    kept = encoder.image_features(BATCH).astype(np.float16)
    np.testing.assert_allclose(encoder.embed_pooled(kept), encoder.embed_images(BATCH), atol=2e-3)


def test_eager_and_onnx_paths_agree(backbone) -> None:
    prepared = [backbone.prepare(im) for im in BATCH]
    with torch.inference_mode():
        eager = backbone.pooled_eager(torch.from_numpy(np.stack(prepared))).numpy()
    np.testing.assert_allclose(backbone.pooled_images(prepared), eager, atol=1e-3)
    assert isinstance(backbone._cpu_runtime, OnnxBackbone), "the CPU path fell back to eager torch"


def test_a_network_without_a_channel_map_is_refused_for_gem(tmp_path) -> None:
    """A vision transformer's final features are tokens: GeM over them would pool the wrong axes."""
    import timm

    weights = tmp_path / "vit.pt"
    torch.save(timm.create_model("vit_tiny_patch16_224", pretrained=False).state_dict(), weights)
    with pytest.raises(ConfigurationError, match="BACKBONE_POOL=avg"):
        Backbone(BackboneSpec("vit_tiny_patch16_224", weights=str(weights), pool="gem4"), device="cpu")
    assert Backbone(BackboneSpec("vit_tiny_patch16_224", weights=str(weights)), device="cpu").pooled_dim == 192


def test_gem_takes_a_whole_power_as_an_int_too() -> None:
    x = torch.rand(1, 2, 3, 3) + 0.1
    torch.testing.assert_close(gem(x, 4), gem(x, 4.0))
    torch.testing.assert_close(gem(x, 2.5), x.pow(2.5).mean((2, 3)).pow(0.4))


def test_spec_keys_and_refusals(tmp_path) -> None:
    # An average-pooled spec keeps the key its feature caches and kept features were stored under.
    assert "pool" not in BackboneSpec().to_json()
    assert BackboneSpec(pool="gem4").to_json()["pool"] == "gem4"
    with pytest.raises(ConfigurationError, match="timm"):
        Backbone(BackboneSpec("mobilenet_v2", weights=str(tmp_path / "never-read.pt"), pool="gem4"), device="cpu")
    with pytest.raises(ConfigurationError, match="pool"):
        Backbone(BackboneSpec(pool="median"), device="cpu")


def test_a_bundle_without_a_recorded_pool_is_average_pooled(settings) -> None:
    """Bundles trained before the pool was recorded (their heads read average-pooled features)."""
    from jointspace.encoders.factories import _backbone

    old = _backbone({"backbone": {"name": "efficientnet_lite0", "weights": None, "image_size": 224}}, settings)
    new = _backbone({"backbone": {"name": "efficientnet_lite0", "pool": "gem4"}}, settings)
    null = _backbone({"backbone": {"name": "efficientnet_lite0", "pool": None}}, settings)
    assert null.spec.pool == "avg"
    assert old.spec.pool == "avg" and old.pooled_dim == 1280
    assert new.spec.pool == "gem4" and new.pooled_dim == 2560
