#!/usr/bin/env bash
# The GPU session behind the default recipe (docs/benchmarks.md): the throughput table, then the
# recipe sweep on a 300-athlete simulated set, and the GPU recipe (notebooks/params_gpu.yaml) run.
#   bash benchmarks/gpu_sweep.sh OUT_DIR
set -uo pipefail
out=${1:-/tmp/hr_lstm_gpu_sweep}; mkdir -p "$out"
export PYTHONPATH=.${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 OMP_NUM_THREADS=2
py=${PYTHON:-python3}
data=$out/sim300.json.gz
$py -m hr_lstm.cli synth --users 300 --out "$data" > "$out/synth.log" 2>&1 &
timeout 150 $py benchmarks/train_throughput.py --device cuda 2>&1 | tee "$out/throughput.txt"
wait
$py -m hr_lstm.cli ingest "$data" > /dev/null
$py -m hr_lstm.cli train --data "$data" --device cuda --model lstm_embeddings --features all --hidden_size 256 \
    --num_layers 2 --batch_size 128 --lr 2e-3 --amp bf16 --epochs 60 --patience 10 --out "$out/gpu_recipe" \
    > "$out/gpu_recipe.log" 2>&1 &
timeout 400 $py benchmarks/recipe_sweep.py --data "$data" --device cuda --epochs 30 --jobs 8 --jsonl "$out/sweep.jsonl"
wait
tail -3 "$out/gpu_recipe.log"
