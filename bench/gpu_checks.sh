#!/usr/bin/env bash
# The GPU checks of issues 11, 13 and 16, as one script for a lent GPU machine (a bare image with
# PyTorch; the project's other packages travel as wheels under .whl/, Fashion-MNIST in
# .data/fashion_mnist/). Results go to $OUT (default bench/out/gpu).
#
#   bench/gpu_checks.sh [SECONDS]
#   bench/gpu_checks.sh steps      # only the step benches, their CUDA profile and the scaling table
#   bench/gpu_checks.sh graphs     # only the CUDA-graph tests and whole runs eager vs graphed
#
# In order: the dendritic-step benches at paper sizes (fp32 with CUDA-graph cases, bf16
# autocast), a torch.profiler table of each case (CPU and CUDA time) and the scaling table; trial packing (4 five-task runs one at a time vs 4 sharing the GPU); the SAC update at
# the MT10 paper preset; then, at once and for SECONDS (default 270): the paper table's runs
# ($TABLE_ONLY: ROW:SEED,... , default every row), one bf16 Active Dendrites run, and both MT10
# arms of the paper preset (when metaworld is importable).
set -uo pipefail
steps_only=0 graphs_only=0
[ "${1:-}" = steps ] && { steps_only=1; shift; }
[ "${1:-}" = graphs ] && { graphs_only=1; shift; }
budget=${1:-270}
OUT=${OUT:-bench/out/gpu}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1 PYTHONWARNINGS=ignore
if [ -d .whl ]; then  # (.whl/core: pydantic and its needs; .whl/mt10: metaworld, mujoco, ...)
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site $(find .whl -type f -name '*.whl') || exit 1
  export PYTHONPATH=/tmp/site:$PWD
fi
export PYTHONPATH=${PYTHONPATH:-$PWD}
[ -d .data ] && export DLAB_DATA_DIR=$PWD/.data
nvidia-smi -L
python3 -c 'import torch; print("torch", torch.__version__, torch.cuda.get_device_name(0))'

if [ $graphs_only = 1 ]; then  # (pytest travels as wheels under .whl/test)
  echo "== CUDA-graph tests"
  python3 -m pytest -q -p no:cacheprovider tests/workers/continual/test_cuda_graphs.py
  echo "== whole runs, eager vs CUDA graphs (paper preset, 3 tasks)"
  python3 bench/bench_cuda_graphs.py --num-tasks 3 --pairs 2
  exit 0
fi
echo "== dendritic step vs dense, paper sizes, fp32 then bf16 autocast"
python3 bench/bench_dendrites.py --device cuda --rounds 5 --steps 20
python3 bench/bench_dendrites.py --device cuda --rounds 5 --steps 20 --autocast bf16
echo "== profile (cuda): top ops of each case over 10 steps, by self CPU time then self CUDA time"
python3 bench/bench_dendrites.py --device cuda --profile 18 --steps 10 --warmup 5 > "$OUT/profile.txt" 2>&1
grep -E "^==|Self CPU time total|Self CUDA time total|cudaLaunchKernel|cudaStreamSynchronize|cudaMemcpyAsync|cudaGraphLaunch|failed" \
  "$OUT/profile.txt"
echo "== scaling (cuda)"
python3 bench/bench_dendrites.py --device cuda --rounds 3 --steps 10 --scaling
[ $steps_only = 1 ] && exit 0
echo "== packing: 4 five-task Active Dendrites runs, one at a time vs 4 sharing the GPU"
for n in 1 4; do
  python3 bench/bench_paper_table.py --device cuda --num-tasks 5 --parallel $n \
    --only dendrites:0,dendrites:1,dendrites:2,dendrites:3 --out "$OUT/packing_$n.json" \
    | grep -E "^all|seed"
done
mt10=0
python3 -c 'import metaworld' 2>/dev/null && mt10=1
if [ $mt10 = 1 ]; then
  echo "== SAC update, MT10 paper preset (2 x 2800, batch 2560, mixed precision), both arms"
  python3 bench/bench_mt10.py --paper-updates 20
fi

echo "== for ${budget}s: table runs ${TABLE_ONLY:-(all)}, a bf16 run, MT10 paper arms"
timeout "$budget" python3 bench/bench_paper_table.py --device cuda --only dendrites:0 \
  --precision bf16 --out "$OUT/paper_table_gpu_bf16.json" > "$OUT/bf16.log" 2>&1 &
if [ $mt10 = 1 ]; then
  for model in dendritic mlp; do
    timeout "$budget" python3 bench/mt10_cpu_curves.py run --model $model --paper-size \
      --device cuda --out "$OUT" > "$OUT/mt10_$model.log" 2>&1 &
  done
fi
timeout "$budget" python3 bench/bench_paper_table.py --device cuda --parallel 13 \
  ${TABLE_ONLY:+--only "$TABLE_ONLY"} --out "$OUT/paper_table_gpu.json"
wait
cat "$OUT/bf16.log"
[ $mt10 = 1 ] && tail -n 2 "$OUT"/mt10_*.log
tar czf "$OUT/progress.tgz" -C "$OUT" $(cd "$OUT" && ls -d *.progress 2>/dev/null) \
  $(cd "$OUT" && ls mt10_*.log *_s0.jsonl 2>/dev/null)
rm -rf "$OUT"/*.progress "$OUT"/mt10_*.log "$OUT"/*_s0.jsonl "$OUT"/bf16.log
