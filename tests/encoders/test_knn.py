"""The nearest-pictures label transfer (`encoders.knn`): arithmetic on tiny hand-made banks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from jointspace.encoders.knn import NeighbourBank, blend


def _bank(k: int = 2, temperature: float = 0.1) -> NeighbourBank:
    features = np.array([[1.0, 0.0, 0.0], [0.9, 0.1, 0.0], [0.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    targets = np.eye(3)[[0, 0, 2, 1]]
    return NeighbourBank.fit(features, targets, k=k, temperature=temperature)


def test_a_picture_takes_its_neighbours_targets() -> None:
    bank = _bank(k=2)
    v = bank.vectors(np.array([[1.0, 0.05, 0.0], [0.0, 0.0, 1.0]]))
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-6)
    assert np.argmax(v[0]) == 0  # both near pictures are labelled with the first word
    assert np.argmax(v[1]) == 2


def test_low_temperature_is_the_nearest_picture_alone() -> None:
    bank = _bank(k=4, temperature=0.001)
    v = bank.vectors(np.array([[0.0, 0.0, 1.0]]))
    np.testing.assert_allclose(v[0], [0.0, 0.0, 1.0], atol=1e-4)


def test_save_and_load_float16(tmp_path: Path) -> None:
    bank = _bank()
    bank.save(tmp_path / "n.npz", dtype=np.float16)
    again = NeighbourBank.load(tmp_path / "n.npz")
    assert (again.k, again.temperature) == (bank.k, bank.temperature)
    q = np.array([[1.0, 0.05, 0.0], [0.1, 0.9, 0.2]])
    np.testing.assert_allclose(again.vectors(q), bank.vectors(q), atol=2e-3)


def test_blend_weights() -> None:
    head, zs, nb = np.eye(3)[[0]], np.eye(3)[[1]], np.eye(3)[[2]]
    v = blend(head, zs, 0.5, nb, 0.25)
    np.testing.assert_allclose(v[0] / v[0].max(), [0.5, 1.0, 0.5], atol=1e-6)
    np.testing.assert_allclose(blend(head, zs, 0.5), (head + zs) / np.sqrt(2), atol=1e-6)


def test_compressed_bank_projects_keys_and_queries_and_stores_int8(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    # 200 pictures whose features vary mostly in 4 of 32 directions, labelled by the strongest of them
    basis = rng.normal(size=(4, 32))
    codes = rng.normal(size=(200, 4)) * 3
    features = codes @ basis + 0.05 * rng.normal(size=(200, 32))
    targets = np.eye(4)[np.argmax(codes, axis=1)]
    bank = NeighbourBank.fit(features, targets, k=5)
    small = bank.compressed(dims=8)
    assert small.keys.shape == (200, 8) and small.projection is not None and small.projection.shape == (32, 8)
    small.save(tmp_path / "n.npz", dtype=np.int8)
    with np.load(tmp_path / "n.npz") as data:
        assert data["keys"].dtype == np.int8 and data["targets"].dtype == np.int8
    again = NeighbourBank.load(tmp_path / "n.npz")
    q = codes[:20] @ basis
    full, packed = bank.vectors(q), again.vectors(q)
    assert (np.argmax(full, 1) == np.argmax(packed, 1)).all()
    assert float((full * packed).sum(1).min()) > 0.98
    assert bank.compressed(dims=64) is bank  # no fewer dimensions: nothing to do
    assert bank.compressed(dims=0) is bank  # 0: unprojected (the shipped form of GeM keys)


def test_an_int8_bank_stays_int8_in_memory_and_scores_as_its_float_rows(tmp_path: Path, monkeypatch) -> None:
    """The shipped form (int8 rows, keys unprojected) is searched without widening every key at once,
    and gives what the same rows widened to float32 give, across the slices it widens in turn."""
    import jointspace.encoders.knn as knn

    rng = np.random.default_rng(1)
    features = rng.normal(size=(300, 24))
    targets = rng.normal(size=(300, 6))
    NeighbourBank.fit(features, targets, k=7).save(tmp_path / "n.npz", dtype=np.int8)
    packed = NeighbourBank.load(tmp_path / "n.npz")
    assert packed.keys.dtype == np.int8 and packed.targets.dtype == np.int8
    assert packed.key_scale is not None and packed.target_scale is not None
    widened = NeighbourBank(
        packed.mean, packed.scale, packed.key_rows(), packed.target_rows(), packed.k, packed.temperature
    )
    q = rng.normal(size=(40, 24))
    monkeypatch.setattr(knn, "KEY_SLICE", 64)  # 300 keys: five slices, the last one short
    np.testing.assert_allclose(packed.vectors(q, batch_size=16), widened.vectors(q), atol=1e-5)
    # Saved again (int8 rows of int8 rows) it is the same bank; projected, it widens first.
    packed.save(tmp_path / "again.npz", dtype=np.int8)
    np.testing.assert_array_equal(NeighbourBank.load(tmp_path / "again.npz").keys, packed.keys)
    small = packed.compressed(dims=8)
    assert small.keys.dtype == np.float32 and small.keys.shape == (300, 8)
