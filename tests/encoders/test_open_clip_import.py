"""`jointspace model import open-clip` end to end with the real CLI, on both backends.

No real CLIP weights reach this machine, so the checkpoint is open_clip's smallest built-in arch
(ViT-S-32-alt, 256-d) with random weights, saved with torch.save: the plumbing is what is tested.
The index holds the CLIP towers' vectors: the scores the CLI prints for a word query and for
[img:ID] arithmetic are recomputed here from the checkpoint with open_clip directly.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import uuid
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytestmark = pytest.mark.slow

ARCH = "ViT-S-32-alt"  # the smallest arch whose tokenizer ships inside open_clip
VOCAB = 64  # --vocab-size: the CLIP text tower embeds 40,000 words in minutes on 2 busy cores
COLOURS = ("red", "navy", "gold", "teal", "olive")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import open_clip
    import torch

    torch.manual_seed(17)
    model = open_clip.create_model(ARCH, pretrained=None)
    path = tmp_path_factory.mktemp("clip") / "tiny-clip.pt"
    # float16 halves the file (86 MB); open_clip's loader copies the tensors into the float32 model
    torch.save({k: v.half() if v.is_floating_point() else v for k, v in model.state_dict().items()}, path)
    return path


def run(env: dict[str, str], *args: str, model: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(env)
    if model is not None:
        env["JOINTSPACE_MODEL"] = str(model)
    return subprocess.run(["jointspace", *args], capture_output=True, text=True, env=env, timeout=900)


def ok(done: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def posts(folder: Path, names: tuple[str, ...], start: int) -> Path:
    folder.mkdir(exist_ok=True)
    rows = []
    for n, colour in enumerate(names, start):
        picture = folder / f"{colour}.png"
        Image.new("RGB", (64, 64), colour).save(picture)
        rows.append({"id": f"tile-{n}", "image": str(picture), "caption": f"a {colour} tile", "city": "london"})
    file = folder / f"posts-{start}.jsonl"
    file.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return file


def reference(
    checkpoint: Path, folder: Path, words: list[str]
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], np.ndarray]:
    """Unit image vectors per tile id, query vectors and the vocabulary's vectors, straight from
    open_clip (not jointspace)."""
    import open_clip
    import torch

    model, _, preprocess = open_clip.create_model_and_transforms(ARCH, pretrained=None)
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    model.load_state_dict(state)
    model.eval()
    tokenizer = open_clip.get_tokenizer(ARCH)
    with torch.inference_mode():
        images = torch.stack([preprocess(Image.open(folder / f"{c}.png").convert("RGB")) for c in COLOURS])
        img = torch.nn.functional.normalize(model.encode_image(images), dim=-1).numpy()
        txt = torch.nn.functional.normalize(model.encode_text(tokenizer(["red", "navy tile"])), dim=-1).numpy()
        vocab = torch.nn.functional.normalize(model.encode_text(tokenizer(words)), dim=-1).numpy()
    return ({f"tile-{n}": img[n] for n in range(len(COLOURS))}, {"red": txt[0], "navy tile": txt[1]}, vocab)


def scores(done: subprocess.CompletedProcess[str]) -> dict[str, float]:
    return {h["id"]: h["score"] for h in json.loads(ok(done).stdout)["hits"]}


def expected(vector: np.ndarray, images: dict[str, np.ndarray]) -> dict[str, float]:
    return {i: float(v @ vector) for i, v in images.items()}


def close(got: dict[str, float], want: dict[str, float], ids: list[str]) -> None:
    """Same posts, same scores (the index's int8 HNSW quantisation and the ES score transform
    leave ~1e-2), same order where the scores are apart."""
    assert set(got) == set(ids)
    for i in ids:
        assert abs(got[i] - want[i]) < 0.02, (i, got[i], want[i])


@pytest.fixture(params=["embedded", "elasticsearch"])
def env(request: pytest.FixtureRequest, tmp_path: Path):
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOINTSPACE_")}
    env["JOINTSPACE_HOME"] = str(home)
    if request.param == "elasticsearch":
        url = request.getfixturevalue("es_url")
        alias = f"posts-oc{uuid.uuid4().hex[:8]}"  # isolation from other tests on the shared node
        env |= {"JOINTSPACE_ES_URL": url, "JOINTSPACE_ES_INDEX_ALIAS": alias}
    yield env
    if request.param == "elasticsearch":
        from elasticsearch import Elasticsearch

        with Elasticsearch(env["JOINTSPACE_ES_URL"], request_timeout=30) as client:
            client.indices.delete(
                index=f"{env['JOINTSPACE_ES_INDEX_ALIAS']}-*", allow_no_indices=True, expand_wildcards="all"
            )


def test_clear_errors(checkpoint: Path, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOINTSPACE_")}
    env["JOINTSPACE_HOME"] = str(tmp_path / "home")
    missing = run(env, "model", "import", "open-clip", "--arch", ARCH, "--checkpoint", str(tmp_path / "nope.pt"))
    assert missing.returncode != 0 and "nope.pt does not exist" in missing.stderr

    unknown = run(
        env, "model", "import", "open-clip", "--arch", "ViT-S-32-alts", "--checkpoint", str(checkpoint), "--json"
    )
    assert unknown.returncode != 0
    error = json.loads(unknown.stdout or unknown.stderr)
    assert "no architecture 'ViT-S-32-alts'" in json.dumps(error) and ARCH in json.dumps(error)

    misfit = run(env, "model", "import", "open-clip", "--arch", "ViT-S-32", "--checkpoint", str(checkpoint))
    assert misfit.returncode != 0 and "does not fit open_clip architecture 'ViT-S-32'" in misfit.stderr

    garbage = tmp_path / "notes.pt"
    garbage.write_text("not a checkpoint")
    bad = run(env, "model", "import", "open-clip", "--arch", ARCH, "--checkpoint", str(garbage))
    assert bad.returncode != 0 and "is not a readable" in bad.stderr
    models = tmp_path / "home" / "models"
    assert not models.exists() or not any(
        p.name.startswith("open-clip") or ".importing" in p.name for p in models.iterdir()
    )


def test_import_ingest_search_reindex_and_back(checkpoint: Path, env: dict[str, str], tmp_path: Path) -> None:
    first = posts(tmp_path / "pictures", COLOURS[:3], 0)
    ok(run(env, "ingest", str(first), "-q"))  # the index starts on the default (shipped) bundle
    shipped = json.loads(ok(run(env, "model", "list", "--json")).stdout)["index"]["model"]

    made = json.loads(
        ok(
            run(
                env,
                "model",
                "import",
                "open-clip",
                "--arch",
                ARCH,
                "--checkpoint",
                str(checkpoint),
                "--vocab-size",
                str(VOCAB),
                "--json",
            )
        ).stdout
    )
    folder = Path(made["folder"])
    manifest = json.loads((folder / "manifest.json").read_text())
    assert made["dim"] == manifest["dim"] == 256 and made["name"].startswith("open-clip-vit-s-32-alt-")
    assert manifest["source"]["arch"] == ARCH
    assert manifest["source"]["checkpoint_sha256"] == hashlib.sha256(checkpoint.read_bytes()).hexdigest()
    assert manifest["text"]["name"] == manifest["image"]["name"] == "open-clip"
    words = (folder / "vocab.txt").read_text().split("\n")
    assert len(words) == VOCAB and np.load(folder / "vocab.npy").shape == (VOCAB, 256)
    listed = {b["name"]: b for b in json.loads(ok(run(env, "model", "list", "--json")).stdout)["bundles"]}
    assert listed[made["name"]]["dim"] == 256 and listed[made["name"]]["kind"] == "imported"
    assert not listed[made["name"]]["index"] and Path(listed[made["name"]]["folder"]) == folder

    again = run(
        env, "model", "import", "open-clip", "--arch", ARCH, "--checkpoint", str(checkpoint), "--vocab-size", str(VOCAB)
    )
    assert again.returncode != 0 and "already exists" in again.stderr

    moved = json.loads(ok(run(env, "reindex", "--bundle", made["name"], "-q")).stdout)
    assert moved["model"] == made["name"] and moved["indexed"] == 3 and not moved["dead_lettered"]
    refused = run(env, "search", "red", "--json")  # the default bundle no longer fits the index
    assert refused.returncode != 0 and made["name"] in (refused.stdout + refused.stderr)

    second = posts(tmp_path / "pictures", COLOURS[3:], 3)
    ok(run(env, "ingest", str(second), "-q", model=folder))  # new posts embedded by the CLIP towers
    images, texts, vocab = reference(checkpoint, tmp_path / "pictures", words)
    ids = sorted(images)

    word = run(env, "search", "red", "-k", "10", "--json", model=folder)
    close(scores(word), expected(texts["red"], images), ids)
    explain = json.loads(word.stdout)["explain"]
    near = [w["word"] for w in explain["nearest_words"]]
    sims = vocab @ texts["red"]  # explain's nearest words: the vocabulary by the CLIP text tower
    assert near[:3] == [words[i] for i in np.argsort(-sims)[:3]]
    assert explain["nearest_words"][0]["score"] == pytest.approx(float(sims.max()), abs=0.01)

    phrase = run(env, "search", '"navy tile"', "-k", "10", "--json", model=folder)
    close(scores(phrase), expected(texts["navy tile"], images), ids)

    arithmetic = images["tile-0"] - images["tile-4"]
    arithmetic /= np.linalg.norm(arithmetic)
    image_query = scores(run(env, "search", "[img:tile-0] - [img:tile-4]", "-k", "10", "--json", model=folder))
    close(image_query, expected(arithmetic, images), ids)
    assert max(image_query, key=image_query.get) == "tile-0"

    back = json.loads(ok(run(env, "reindex", "--bundle", shipped, "-q")).stdout)
    assert back["model"] == shipped and back["indexed"] == len(COLOURS) and not back["dead_lettered"]
    final = json.loads(ok(run(env, "model", "list", "--json")).stdout)
    assert final["index"]["model"] == shipped and final["index"]["dim"] == 384
    # Every post is back (near-duplicates kept: the shipped bundle puts plain tiles close together).
    assert len(scores(run(env, "search", "red", "-k", "10", "--no-collapse", "--json"))) == len(COLOURS)
