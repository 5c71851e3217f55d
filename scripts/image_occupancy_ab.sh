#!/bin/bash
# The A/B of docs/two_hands.md "Image conditioning": data, renders, one shared HALO cache,
# then the image-conditioned and the keypoint-only model trained side by side, niced, one
# torch thread each, for the same wall-clock budget (SECONDS_EACH, default 1200).
#
#   scripts/image_occupancy_ab.sh OUT [SECONDS_EACH]     # from the checkout, venv in .venv
#   N_TRAIN=4 N_VAL=2 scripts/image_occupancy_ab.sh OUT 5   # a smoke run of the same steps
#
# The recorded run reused the pair refiner's data and cache (OUT/pairs = its --seed 2020
# pairs, 320 train + 32 val, and its cache_train/cache_val.npz, settings identical); this
# script makes them itself. Results: OUT/ab_image, OUT/ab_kp (summary.json, train.log,
# image_occupancy.safetensors); then benchmarks/studies/image_occupancy.py scores both.
set -euo pipefail
OUT=${1:?output folder}
BUDGET=${2:-1200}
PY=${PY:-.venv/bin/python}
N_TRAIN=${N_TRAIN:-320}
N_VAL=${N_VAL:-32}
export PYTHONPATH=$PWD/src OMP_NUM_THREADS=1
hh() { nice -n 10 "$PY" -m halohand "$@"; }
hh data pairs --out "$OUT/pairs" --n-train "$N_TRAIN" --n-val "$N_VAL" --seed 2020 --workers 2
hh data pairs --out "$OUT/pairs2" --n-train "$N_TRAIN" --seed 2021 --workers 2
hh data pair-images --out "$OUT/img" --pairs "$OUT/pairs" --splits train,val --views 4 --size 128
hh data pair-images --out "$OUT/img2" --pairs "$OUT/pairs2" --splits train --views 4 --size 128
# the caches once (the first arm's first steps would build them; both arms read copies)
hh train-image-occupancy --data "$OUT/pairs" --images "$OUT/img" --data "$OUT/pairs2" \
    --images "$OUT/img2" --out "$OUT/cache" --no-image --steps 1 > /dev/null
for arm in image kp; do
    mkdir -p "$OUT/ab_$arm"
    cp "$OUT"/cache/cache_*.npz "$OUT/ab_$arm/"
done
common=(--data "$OUT/pairs" --images "$OUT/img" --data "$OUT/pairs2" --images "$OUT/img2"
        --seconds "$BUDGET" --steps 1000000 --threads 1)
hh train-image-occupancy "${common[@]}" --out "$OUT/ab_image" > "$OUT/ab_image.out" 2>&1 &
a=$!
hh train-image-occupancy "${common[@]}" --out "$OUT/ab_kp" --no-image > "$OUT/ab_kp.out" 2>&1 &
b=$!
wait $a $b
echo "both arms done; score them with:"
echo "python benchmarks/studies/image_occupancy.py --pairs 24 \\"
echo "    --image-model $OUT/ab_image/image_occupancy.safetensors \\"
echo "    --keypoint-model $OUT/ab_kp/image_occupancy.safetensors --json RESULT.json"
