#!/usr/bin/env bash
# One short GPU session: the throughput table, then the cuda training paths end to end
# (bf16, torch.compile, torchrun with NCCL) on a small simulated set.
#
#   bash benchmarks/gpu_check.sh [out_dir]
#
# Runs from a checkout with `python3` holding torch (PYTHONPATH=. is enough; no install needed).
set -uo pipefail
out=${1:-/tmp/hr_lstm_gpu_check}
mkdir -p "$out"
export PYTHONPATH=.${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
py=${PYTHON:-python3}

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
$py -c "import torch; print('torch', torch.__version__, 'cuDNN', torch.backends.cudnn.version())"

echo "== throughput (a) project step, (b) bare nn.LSTM loop, (c) cuDNN off"
timeout 300 $py benchmarks/train_throughput.py --device cuda

echo "== end to end on cuda: synth 20 athletes, train bf16 + compile, evaluate"
data=$out/sim20.json.gz
timeout 120 $py -m hr_lstm.cli synth --users 20 --out "$data" || exit 1
timeout 180 $py -m hr_lstm.train --model lstm_embeddings --data "$data" --device cuda --amp bf16 --compile \
    --epochs 3 --out "$out/bf16" || echo "FAILED: bf16 + compile train"
echo "== torchrun, 1 process, NCCL"
timeout 120 $py -m torch.distributed.run --nproc_per_node 1 -m hr_lstm.train --model lstm --data "$data" \
    --device cuda --epochs 2 --out "$out/ddp" || echo "FAILED: torchrun NCCL"
ls "$out"/bf16 "$out"/ddp
