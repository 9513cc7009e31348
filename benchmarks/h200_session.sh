#!/usr/bin/env bash
# One call on a lent H200 (device tool): CUDA smoke runs of every script, the training benchmark in
# four precision settings, then continued training of the shipped SM-MNIST model at the 2018 batch
# size with the fastest setting until a deadline. What comes back under $OUT: log.txt (everything
# printed), metrics.jsonl and args.json of the training run, and the exported inference weights in
# 15 MiB pieces (weights.pth.part-aa, -ab, ...; `cat` them back together), since the device tool
# returns files of at most 16 MiB. The full training state (151 MB with Adam's moments) cannot come
# back; the CPU continues from the weights with a fresh optimizer.
#
#   run: bash benchmarks/h200_session.sh        (carry .whl: mlxtend, progressbar2, python-utils)
#   local dry run: DEVICE=cpu DEADLINE=900 T_SMOKE=300 T_BENCH=20 OUT=/tmp/out bash benchmarks/h200_session.sh
set -u
DEVICE=${DEVICE:-cuda}
DEADLINE=${DEADLINE:-555}      # seconds from the start by which everything must be written
T_SMOKE=${T_SMOKE:-60}         # time limits of the smoke runs and of each benchmark (raise them for a CPU dry run)
T_BENCH=${T_BENCH:-75}
OUT=${OUT:-/tmp/h200_out}
mkdir -p "$OUT"
exec > >(tee "$OUT/log.txt") 2>&1
export PYTHONUNBUFFERED=1
if ls .whl/*.whl >/dev/null 2>&1; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
        && export PYTHONPATH=/tmp/site:$PWD || exit 1
fi
PY=python3
echo "## $(date -u) device=$DEVICE deadline=${DEADLINE}s"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm --format=csv 2>/dev/null
$PY -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name() if torch.cuda.is_available() else 'no cuda')"

echo "## 1. smoke: each script once on $DEVICE"
SMOKE=/tmp/smoke; rm -rf $SMOKE
timeout $T_SMOKE $PY train_svg_lp.py --device $DEVICE --niter 2 --epoch_size 5 --batch_size 8 --n_eval 10 --data_threads 2 \
    --amp --log_dir $SMOKE/lp; echo "smoke train_svg_lp --amp rc=$?"
timeout $T_SMOKE $PY train_svg_fp.py --device $DEVICE --niter 1 --epoch_size 5 --batch_size 8 --n_eval 10 --data_threads 2 \
    --tf32 --log_dir $SMOKE/fp; echo "smoke train_svg_fp --tf32 rc=$?"
LP_RUN=$(dirname "$(find $SMOKE/lp -name model.pth | head -1)")
timeout $T_SMOKE $PY train_svg_lp.py --resume "$LP_RUN" --niter 3 --device $DEVICE; echo "smoke resume rc=$?"
timeout $T_SMOKE $PY generate_svg_lp.py --model_path pretrained_models/svglp_smmnist2.pth --log_dir $SMOKE/gen --N 8 \
    --nsample 5 --batch_size 8 --device $DEVICE --no_gifs; echo "smoke generate rc=$?"
timeout $T_SMOKE $PY frechet_distance.py --device $DEVICE; echo "smoke frechet rc=$?"

echo "## 2. bench_train.py, batch 100"
declare -A RATE
bench() {  # name, flags...
    local name=$1; shift
    timeout $T_BENCH $PY benchmarks/bench_train.py --device $DEVICE --repeats 10 --data_workers 8 "$@" | tee /tmp/bench_$name.txt
    RATE[$name]=$(grep -oP '^smmnist: ours \K[0-9.]+' /tmp/bench_$name.txt || echo 0)
}
bench fp32 --settings smmnist,bair --peak_tflops 67
bench tf32 --settings smmnist --tf32
bench amp --settings smmnist --amp --tf32 --peak_tflops 989
bench amp_cl --settings smmnist --amp --tf32 --channels_last --peak_tflops 989
declare -A FLAGS=([fp32]="--no-amp" [tf32]="--no-amp --tf32" [amp]="--amp --tf32" [amp_cl]="--amp --tf32 --channels_last")
BEST=fp32
for k in tf32 amp amp_cl; do
    $PY -c "import sys; sys.exit(0 if float('${RATE[$k]}') > float('${RATE[$BEST]}') else 1)" && BEST=$k
done
echo "smmnist it/s: fp32 ${RATE[fp32]} tf32 ${RATE[tf32]} amp ${RATE[amp]} amp_cl ${RATE[amp_cl]}; training with $BEST (${FLAGS[$BEST]})"

echo "## 3. continued training until the deadline"
LOGS=/tmp/logs; rm -rf $LOGS
train() {  # seconds, flags...
    local secs=$1; shift
    timeout --signal=INT --kill-after=20 "$secs" $PY train_svg_lp.py --model_dir pretrained_models/svglp_smmnist2.pth \
        --batch_size 100 --epoch_size ${EPOCH_SIZE:-600} --niter 100000 --device $DEVICE --data_threads 8 --log_dir $LOGS "$@"
    echo "train rc=$? after $SECONDS s"
}
train $((DEADLINE - SECONDS - 45)) ${FLAGS[$BEST]}
CKPT=$(find $LOGS -name model.pth | head -1)
if [ -z "$CKPT" ] && [ $((DEADLINE - SECONDS)) -gt 150 ]; then  # the fast setting failed early: plain float32
    rm -rf $LOGS; train $((DEADLINE - SECONDS - 45)) --no-amp
    CKPT=$(find $LOGS -name model.pth | head -1)
fi

echo "## 4. export"
if [ -n "$CKPT" ]; then
    RUN=$(dirname "$CKPT")
    $PY checkpoint.py export "$CKPT" /tmp/weights.pth && (cd "$OUT" && split -b 15M /tmp/weights.pth weights.pth.part-)
    sha256sum /tmp/weights.pth
    cp "$RUN/metrics.jsonl" "$RUN/args.json" "$OUT/"
    tail -3 "$RUN/train.log"
fi
ls -la "$OUT"
echo "## done after $SECONDS s"
