"""Backbone, zero-training and head encoders on a batch of real pictures drawn here."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from jointspace.encoders.backbone import BackboneSpec
from jointspace.encoders.head import HeadConfig, ProjectionHead
from jointspace.encoders.image_encoders import HeadImageEncoder, ZeroShotImageEncoder, class_prompt_matrix, ensemble
from jointspace.encoders.imagenet import imagenet_classes

from jointspace.errors import ConfigurationError
from jointspace.protocols import ImageEncoder
from tests.encoders.conftest import draw

BATCH = [draw("circle", "red"), draw("square", "blue", 64), draw("triangle", "green", 120)]


def test_imagenet_class_names_offline() -> None:
    names = imagenet_classes()
    assert len(names) == 1000 and names[0] == "tench" and names[817] == "sports car"


def test_backbone_features_and_logits(backbone) -> None:
    feats, logits = backbone.run_images(BATCH, batch_size=2)
    assert feats.shape == (3, 1280) and logits.shape == (3, 1000)
    assert np.isfinite(feats).all() and not np.allclose(feats[0], feats[1])


def test_unknown_backbone_without_weights_is_refused() -> None:
    from jointspace.encoders.backbone import Backbone

    with pytest.raises(ConfigurationError, match="weights"):
        Backbone(BackboneSpec("resnet18"), device="cpu")


def test_zeroshot_encoder_gives_unit_vectors_in_text_space(backbone, minilm) -> None:
    classes = class_prompt_matrix(minilm)
    enc = ZeroShotImageEncoder(backbone, classes, top_k=10)
    assert isinstance(enc, ImageEncoder)
    v = enc.embed_images(BATCH)
    assert v.shape == (3, 384) and v.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    assert enc.embed_images([]).shape == (0, 384)


def test_head_encoder_and_ensemble(backbone, minilm) -> None:
    torch.manual_seed(0)
    head = ProjectionHead(HeadConfig(in_dim=1280, out_dim=384, hidden=64))
    zs = ZeroShotImageEncoder(backbone, class_prompt_matrix(minilm))
    alone = HeadImageEncoder(backbone, head).embed_images(BATCH)
    mixed = HeadImageEncoder(backbone, head, zs, zeroshot_weight=0.5).embed_images(BATCH)
    for v in (alone, mixed):
        assert v.shape == (3, 384)
        np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(mixed, ensemble(alone, zs.embed_images(BATCH), 0.5), atol=1e-5)
