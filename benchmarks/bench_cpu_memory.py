"""CPU training step or evaluation with and without `cpu_memory.keep_freed_memory`, side by side.

    python benchmarks/bench_cpu_memory.py [--batch_size 100] [--amp] [--rounds 2] [--steps 2]
    python benchmarks/bench_cpu_memory.py --job generate [--rounds 2]

The allocator setting is per process, so each measurement is a fresh child process; the children
alternate (default, kept, default, kept, ...) so that a noisy neighbour slows both alike. Each
child times `training.train_step` on the SM-MNIST setting of the shipped model after one warm-up
step, and reports its minor page faults, system CPU time and peak resident memory. With
`--job generate`, each child is `generate_svg_lp.py` on the shipped model (10 test sequences, 100
samples each, the README's evaluation settings otherwise), timed whole; the metrics of both
settings must be identical.
"""
import argparse
import datetime
import json
import os
import subprocess
import sys

from common import ROOT

CHILD = """
import json, resource, sys, time
sys.path.insert(0, {root!r}); sys.path.insert(0, {bench!r})
import torch
from svgvp import cpu_memory
from bench_batch_size import make_step
if {keep}:
    assert cpu_memory.keep_freed_memory()
step = make_step({batch}, {amp}, "cpu")
step()
r0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
for _ in range({steps}):
    step()
r1, t1 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
print(json.dumps({{"s": (t1 - t0) / {steps}, "faults": (r1.ru_minflt - r0.ru_minflt) / {steps},
                  "sys": (r1.ru_stime - r0.ru_stime) / {steps}, "peak_mb": r1.ru_maxrss / 1024}}))
"""


def measure(keep, args):
    code = CHILD.format(root=ROOT, bench=os.path.dirname(os.path.abspath(__file__)), keep=keep,
                        batch=args.batch_size, amp=args.amp, steps=args.steps)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


GENERATE = ["generate_svg_lp.py", "--model_path", os.path.join(ROOT, "pretrained_models", "svglp_smmnist2.pth"),
            "--N", "10", "--nsample", "100", "--batch_size", "10", "--ssim", "2018", "--no_gifs", "--device", "cpu"]


def measure_generate(keep, out_dir):
    import time
    flag = "--keep_freed_memory" if keep else "--no-keep_freed_memory"
    t0 = time.perf_counter()
    subprocess.run([sys.executable, *GENERATE, "--log_dir", out_dir, flag], cwd=ROOT, check=True,
                   capture_output=True)
    seconds = time.perf_counter() - t0
    with open(os.path.join(out_dir, "metrics_summary.csv")) as f:
        return seconds, f.read()


def compare_generate(rounds):
    import shutil
    import tempfile
    times, metrics = {False: [], True: []}, set()
    for _ in range(rounds):
        for keep in (False, True):
            out = tempfile.mkdtemp()
            seconds, summary = measure_generate(keep, out)
            shutil.rmtree(out)
            times[keep].append(seconds)
            metrics.add(summary)
    for keep in (False, True):
        print(f"{'kept freed memory' if keep else 'glibc defaults   '}: generate_svg_lp.py in "
              f"{min(times[keep]):.1f} s (fastest of {rounds} processes)")
    print(f"speed-up x{min(times[False]) / min(times[True]):.2f}; metrics identical: {len(metrics) == 1}")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--job", default="train", choices=("train", "generate"))
    p.add_argument("--batch_size", type=int, default=100)
    p.add_argument("--amp", action="store_true", help="bfloat16 autocast, as train_svg_lp.py --amp")
    p.add_argument("--rounds", type=int, default=2, help="child processes per setting, alternating")
    p.add_argument("--steps", type=int, default=2, help="timed steps per child, after one warm-up step")
    args = p.parse_args()
    import torch
    settings = "" if args.job == "generate" else f" batch={args.batch_size} amp={args.amp}"
    print(f"# bench_cpu_memory {datetime.date.today()} job={args.job}{settings} "
          f"threads={os.environ.get('OMP_NUM_THREADS', 'default')} torch={torch.__version__}")
    if args.job == "generate":
        return compare_generate(args.rounds)
    results = {False: [], True: []}
    for _ in range(args.rounds):
        for keep in (False, True):
            results[keep].append(measure(keep, args))
    summary = {}
    for keep, runs in results.items():
        best = min(runs, key=lambda r: r["s"])
        summary[keep] = best
        print(f"{'kept freed memory' if keep else 'glibc defaults   '}: {best['s']:.2f} s/step "
              f"({args.batch_size / best['s']:.2f} sequences/s), {best['faults']:,.0f} page faults and "
              f"{best['sys']:.2f} s system time per step, peak {max(r['peak_mb'] for r in runs):.0f} MB "
              f"(fastest of {len(runs)} processes)")
    print(f"speed-up x{summary[False]['s'] / summary[True]['s']:.2f}")


if __name__ == "__main__":
    main()
