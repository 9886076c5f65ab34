#!/usr/bin/env bash
# `make demo`: the paper's main result on the bundled defaults, in about ten minutes on two
# cores. Installs what is missing (Debian), builds, then:
#   1. the 2-D experiment (a checkpoint every 250 G steps: 21 instead of 101): recall and grad-D
#      similarity of each checkpoint against the W1 its fine-tuning reaches;
#   2. checkpoint selection: the shipped Fashion-MNIST sources (models/fmnist_src_*) ranked by
#      recall for the target "sneaker", a class none of them saw;
#   3. a short fine-tune of the selected source on 1000 sneakers, scored against the test set.
# Everything goes to out/ (plots, tables, sample grids, metrics).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-out}

packages=(gcc make libc6-dev libstb-dev dataset-fashion-mnist)
missing=()
for p in "${packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
    echo "== installing ${missing[*]}"
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -q >/dev/null
    $sudo apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi
make -s build/gantl
G=build/gantl
start=$(date +%s)
mkdir -p "$OUT"

echo
echo "== 1. The 2-D experiment (paper, section 3), 21 checkpoints"
$G toy2d --out "$OUT/toy2d" --every 250 --variants 1 \
    | tee "$OUT/toy2d.txt"

echo
echo "== 2. Which pretrained source for the target 'sneaker'? (recall of each source's samples)"
$G select --target fashion-mnist:sneaker --max-target 1000 --num 1000 --cache "$OUT/cache" \
    --sources models/fmnist_src_*.safetensors | tee "$OUT/select.txt"
best=$(tail -n 1 "$OUT/select.txt" | sed -n 's/.*"ranking": \[{"source": "\([^"]*\)".*/\1/p')
[ -n "$best" ] || { echo "demo: no source could be scored"; exit 1; }

echo
echo "== 3. Fine-tuning $best on 1000 sneakers (2 kimg)"
rm -rf "$OUT/finetune"
$G train --data fashion-mnist:sneaker --max-images 1000 --resume "$best" --out "$OUT/finetune" --kimg 2 --tick 1 --snap 1 \
    --metrics fid,pr --metrics-real fashion-mnist:sneaker@test --metrics-num 1000
$G generate --ckpt "$best" --seeds 0-63 --out "$OUT/finetune/source_samples.png" >/dev/null

echo
echo "== Results ($(( $(date +%s) - start )) s)"
grep '^Pearson' "$OUT/toy2d.txt" | sed 's/^/2-D experiment: /' || true
echo "selected source: $best"
echo "fine-tuning metrics (FID, precision, recall against the 1000 test sneakers), by kimg:"
sed 's/.*"kimg": \([0-9.]*\).*"metrics": \(.*\)}$/  \1 kimg: \2/' "$OUT/finetune/metrics.jsonl"
echo "plots and grids: $OUT/toy2d/*.png, $OUT/finetune/reals.png, source_samples.png, fakes*.png"
