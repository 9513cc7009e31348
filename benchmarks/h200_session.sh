#!/usr/bin/env bash
# One call on a lent GPU (device tool), within a fixed deadline, in this order:
#   1. numerics: the LSTM sequence call (cuDNN) against the 2018 cells in float64 (tests/test_lstm.py),
#      the CUDA-graph update against the eager one, bitwise, and across a resume (check_cuda_graphs.py);
#   2. bench_train.py in each setting (it/s beside the 2018 loop, GPU operations per step, busy share, TFLOP/s),
#      and bench_generate.py at the default rollout batch (2,000 rows): is sampling launch-bound on a GPU, and what --amp gains;
#   3. the shipped SM-MNIST model continued at batch 100 on the full MNIST with the fastest setting;
#   4. export, and evaluation on the GPU of the new and the shipped weights (best of 100, 5 -> 25, first 256
#      MNIST test sequences, 2018 SSIM), then --protocol srvp on the new ones (no FVD: the I3D sdist does not travel).
# What comes back under $OUT (the device tool returns at most 8 files of 16 MiB): log.txt (everything printed),
# results.tar (the run's metrics.jsonl, args.json, train.log and the evaluations' summary_*.json) and the exported
# weights in 15 MiB pieces (weights.pth.part-aa, ...; `cat` them back together).
#
# Carried (device tool `carry`): .whl (progressbar2, python-utils wheels for the GPU machine's Python) and
# .gpu_data/MNIST/raw/*.gz (the full MNIST in torchvision's file format, 13 MB); both written beforehand, on
# this side, by `python benchmarks/prepare_gpu_session.py`.
#   run:           bash benchmarks/h200_session.sh
#   local dry run: DEVICE=cpu DEADLINE=900 BATCH=8 GEN_BATCH=1 OUT=/tmp/out bash benchmarks/h200_session.sh
set -u
DEVICE=${DEVICE:-cuda}
DEADLINE=${DEADLINE:-575}     # seconds from the start by which everything must be written
BATCH=${BATCH:-100}
OUT=${OUT:-/tmp/h200_out}
mkdir -p "$OUT"
exec > >(tee "$OUT/log.txt") 2>&1
export PYTHONUNBUFFERED=1
if ls .whl/*.whl >/dev/null 2>&1; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
        && export PYTHONPATH=/tmp/site:$PWD || exit 1
fi
DATA=/tmp/svg_data
mkdir -p $DATA/MNIST/raw
for f in .gpu_data/MNIST/raw/*.gz; do [ -e "$f" ] && gunzip -c "$f" > $DATA/MNIST/raw/$(basename "$f" .gz); done
PY=python3
left() { echo $((DEADLINE - SECONDS)); }
echo "## $(date -u) device=$DEVICE deadline=${DEADLINE}s"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv 2>/dev/null
$PY -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name() if torch.cuda.is_available() else 'no cuda', 'cudnn', torch.backends.cudnn.version())"

echo "## 1. numerics"
timeout 90 $PY -m pytest -q -p no:cacheprovider tests/test_lstm.py tests/test_moving_mnist.py -k "sequence_call or bit_for_bit" 2>&1 | tail -3
timeout 90 $PY benchmarks/check_cuda_graphs.py --device $DEVICE --batch_size 16; echo "check fp32 rc=$?"
timeout 60 $PY benchmarks/check_cuda_graphs.py --device $DEVICE --batch_size 16 --amp; echo "check amp rc=$?"

echo "## 2. bench_train.py, batch $BATCH (at $SECONDS s)"
declare -A RATE
bench() {  # name, seconds, flags...
    local name=$1 secs=$2; shift 2
    RATE[$name]=0
    [ -n "${SKIP_BENCH:-}" ] && return
    timeout $secs $PY benchmarks/bench_train.py --device $DEVICE --batch_size $BATCH --repeats 10 --data_workers 0 \
        "$@" | tee /tmp/bench_$name.txt
    RATE[$name]=$(grep -oP '^smmnist: ours \K[0-9.]+' /tmp/bench_$name.txt || echo 0)
}
bench eager_fp32 40 --settings smmnist,bair --no-cuda_graphs
bench graphs_tf32 35 --settings smmnist --tf32
bench graphs_amp 50 --settings smmnist,bair --amp --tf32 --data_workers 14 --data_root $DATA --mnist_source torchvision
bench graphs_amp_cl 35 --settings smmnist --amp --tf32 --channels_last
declare -A FLAGS=([graphs_tf32]="--no-amp --tf32" [graphs_amp]="--amp --tf32" [graphs_amp_cl]="--amp --tf32 --channels_last")
BEST=graphs_tf32
for k in graphs_amp graphs_amp_cl; do
    $PY -c "import sys; sys.exit(0 if float('${RATE[$k]}') > float('${RATE[$BEST]}') else 1)" && BEST=$k
done
[ -z "${SKIP_BENCH:-}" ] && timeout 60 $PY benchmarks/bench_generate.py --device $DEVICE --batch_size ${GEN_BATCH:-20} --nsample 100 --repeats 2 --amp
echo "smmnist it/s: eager fp32 ${RATE[eager_fp32]}, graphs tf32 ${RATE[graphs_tf32]}, graphs amp ${RATE[graphs_amp]}, graphs amp channels-last ${RATE[graphs_amp_cl]}; training with $BEST (${FLAGS[$BEST]})"

echo "## 3. continued training on the full MNIST until $((DEADLINE - 110)) s (at $SECONDS s)"
LOGS=/tmp/logs; rm -rf $LOGS
T_TRAIN=$(( $(left) - 110 )); [ $T_TRAIN -lt 30 ] && T_TRAIN=30
timeout --signal=INT --kill-after=20 $T_TRAIN $PY train_svg_lp.py --model_dir pretrained_models/svglp_smmnist2.pth \
    --batch_size $BATCH --epoch_size ${EPOCH_SIZE:-1000} --niter 100000 --device $DEVICE --data_threads 14 \
    --data_root $DATA --mnist_source torchvision --log_dir $LOGS ${FLAGS[$BEST]}
echo "train rc=$? at $SECONDS s"
CKPT=$(find $LOGS -name model.pth | head -1)
if [ -z "$CKPT" ] && [ $(left) -gt 200 ]; then  # the graphed update failed early: eagerly
    rm -rf $LOGS
    timeout --signal=INT --kill-after=20 $(( $(left) - 110 )) $PY train_svg_lp.py --model_dir pretrained_models/svglp_smmnist2.pth \
        --batch_size $BATCH --epoch_size ${EPOCH_SIZE:-1000} --niter 100000 --device $DEVICE --data_threads 14 \
        --data_root $DATA --mnist_source torchvision --log_dir $LOGS ${FLAGS[$BEST]} --no-cuda_graphs
    echo "eager train rc=$? at $SECONDS s"
    CKPT=$(find $LOGS -name model.pth | head -1)
fi

echo "## 4. export and evaluation (at $SECONDS s)"
EVAL="--N 256 --nsample 100 --batch_size 256 --ssim 2018 --mnist_source torchvision --data_root $DATA --no_gifs --no_fvd --device $DEVICE"
if [ -n "$CKPT" ]; then
    RUN=$(dirname "$CKPT")
    mkdir -p /tmp/results && cp "$RUN/metrics.jsonl" "$RUN/args.json" "$RUN/train.log" /tmp/results/ 2>/dev/null
    tail -3 "$RUN/train.log"
    $PY -m svgvp.training.checkpoint export "$CKPT" /tmp/weights.pth && (cd "$OUT" && split -b 15M /tmp/weights.pth weights.pth.part-)
    sha256sum /tmp/weights.pth
    timeout 60 $PY generate_svg_lp.py --model_path /tmp/weights.pth --log_dir /tmp/eval_new $EVAL
    cp /tmp/eval_new/summary.json /tmp/results/summary_new.json 2>/dev/null
fi
timeout 60 $PY generate_svg_lp.py --model_path pretrained_models/svglp_smmnist2.pth --log_dir /tmp/eval_shipped $EVAL
mkdir -p /tmp/results && cp /tmp/eval_shipped/summary.json /tmp/results/summary_shipped.json 2>/dev/null
if [ -n "$CKPT" ] && [ $(left) -gt 20 ]; then
    T0=$SECONDS
    timeout $(( $(left) - 5 )) $PY generate_svg_lp.py --model_path /tmp/weights.pth --log_dir /tmp/eval_srvp --protocol srvp \
        --no_fvd --no_gifs --batch_size 1000 --rollout_batch 20000 --mnist_source torchvision --data_root $DATA --device $DEVICE
    echo "srvp protocol rc=$? in $((SECONDS - T0)) s"
    cp /tmp/eval_srvp/summary.json /tmp/results/summary_srvp.json 2>/dev/null
fi
tar -C /tmp/results -cf "$OUT/results.tar" . 2>/dev/null
ls -la "$OUT"
echo "## done after $SECONDS s"
