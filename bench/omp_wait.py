"""OpenMP wait policy of torch's threads: the image encoder on the same batches of photos, in fresh
processes with libgomp's default wait (OMP_WAIT_POLICY unset: spin a while, then sleep; what
jointspace ran with before it set PASSIVE) and PASSIVE (jointspace's default), alternated, in one run.

    python bench/omp_wait.py --data <prepared data> --rounds 2

Each process loads the bundle, warms up on one picture, then embeds --batches batches of 64 decoded
640-px pictures from its main thread (as the bare encoder and a Celery pool child do); wall, user
and system CPU seconds per batch are read around each call. Prints medians and the ratio to ACTIVE.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

CHILD = r"""
import os
if os.environ.pop("BENCH_LIBGOMP_DEFAULT", None):
    os.environ.pop("OMP_WAIT_POLICY", None)
    import torch  # libgomp reads its settings now, before jointspace sets its default
import json, sys, time
from pathlib import Path
from PIL import Image
from jointspace.settings import get_settings
from jointspace.app import open_bundle
data, batches = Path(sys.argv[1]), int(sys.argv[2])
images = []
for line in (data / "all.jsonl").read_text().splitlines():
    try:
        with Image.open(data / json.loads(line)["image"]) as im:
            im = im.convert("RGB")
            im.thumbnail((640, 640))
            images.append(im)
    except OSError:
        continue
    if len(images) == 64 * batches:
        break
bundle = open_bundle(get_settings())
bundle.image.embed_images(images[:1])
for b in range(batches):
    t0, w0 = os.times(), time.perf_counter()
    bundle.image.embed_images(images[b * 64 : (b + 1) * 64])
    t1 = os.times()
    print(json.dumps({"wall": time.perf_counter() - w0, "user": t1.user - t0.user, "sys": t1.system - t0.system}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--batches", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=1)
    args = ap.parse_args()
    rows: dict[str, list[dict[str, float]]] = {"unset (libgomp default)": [], "PASSIVE": []}
    for _ in range(args.rounds):
        for policy in rows:
            done = subprocess.run(
                [sys.executable, "-c", CHILD, str(args.data), str(args.batches)],
                env={**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}
                | ({"BENCH_LIBGOMP_DEFAULT": "1"} if policy != "PASSIVE" else {}),
                capture_output=True,
                text=True,
                check=True,
            )
            rows[policy] += [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    base = {k: statistics.median(r[k] for r in rows["unset (libgomp default)"]) for k in ("wall", "user", "sys")}
    print(f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}; batches of 64, medians")
    print("| OMP_WAIT_POLICY | wall s | user CPU s | system CPU s | wall ÷ libgomp default |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for policy, r in rows.items():
        m = {k: statistics.median(x[k] for x in r) for k in ("wall", "user", "sys")}
        print(f"| {policy} | {m['wall']:.1f} | {m['user']:.1f} | {m['sys']:.1f} | {m['wall'] / base['wall']:.2f} |")


if __name__ == "__main__":
    main()
