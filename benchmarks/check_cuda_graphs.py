"""On a GPU: the update replayed as a CUDA graph equals the eager update, and a run resumed from a
checkpoint (fresh graph, fresh warm-up) continues exactly.

    python benchmarks/check_cuda_graphs.py [--device cuda] [--batch_size 16] [--steps 8]

Three runs of two epochs from the same weights and batches, each epoch starting with
torch.manual_seed as the training loop does: eager; graphed; graphed for epoch 0, then rebuilt from a
saved state dict for epoch 1. Under deterministic kernels and float32 the three must agree bitwise;
with --amp (bfloat16) the graphed run is compared with the eager one within a tolerance.
Prints one line per comparison and exits 1 when one fails.
"""
import argparse
import copy
import sys
from types import SimpleNamespace

import torch
from common import ROOT  # noqa: F401  (puts the repository on the path)

from models.svg import SVG, SVGConfig
from training import configure_numerics
from training_step import TrainStep, make_optimizer, set_capturable


def run(model, batches, config, graphed, epochs, state=None):
    """Train `model` over `epochs` (each a list of batch indices); returns per-step losses."""
    opt = make_optimizer("adam", model.parameters(), config, capturable=graphed)
    if state is not None:
        opt.load_state_dict(state)
        set_capturable(opt, graphed)
    update = TrainStep(model, opt, config, graphed)
    losses = []
    for epoch, steps in epochs:
        torch.manual_seed(1000 + epoch)
        for k in steps:
            mse, kld = update(batches[k])
            losses.append(torch.stack([mse, kld]).clone())
    return torch.stack(losses), opt


def max_diff(a, b):
    return max((x.double() - y.double()).abs().max().item() for x, y in zip(a, b))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--device", default="cuda")
    p.add_argument("--batch_size", type=int, default=16)
    p.add_argument("--steps", type=int, default=8, help="updates per epoch (the first 3 of a run are eager)")
    p.add_argument("--amp", action="store_true")
    args = p.parse_args()
    dev = torch.device(args.device)
    graphed = dev.type == "cuda"
    if not args.amp:
        configure_numerics(deterministic=True, tf32=False)
    config = SimpleNamespace(amp=args.amp, n_past=5, beta=1e-4, lr=2e-3, beta1=0.9)
    torch.manual_seed(0)
    base = SVG(SVGConfig()).to(dev)
    gen = torch.Generator().manual_seed(1)
    batches = [torch.rand(args.batch_size, 15, 1, 64, 64, generator=gen).to(dev) for _ in range(2 * args.steps)]
    epochs = [(0, range(args.steps)), (1, range(args.steps, 2 * args.steps))]

    eager = copy.deepcopy(base)
    loss_e, _ = run(eager, batches, config, False, epochs)
    graph = copy.deepcopy(base)
    loss_g, _ = run(graph, batches, config, graphed, epochs)
    first = copy.deepcopy(base)
    loss_r0, opt = run(first, batches, config, graphed, epochs[:1])
    saved_model = copy.deepcopy(first.state_dict())
    saved_opt = copy.deepcopy(opt.state_dict())
    resumed = copy.deepcopy(base)
    resumed.load_state_dict(saved_model)
    loss_r1, _ = run(resumed, batches, config, graphed, epochs[1:], saved_opt)
    loss_r = torch.cat([loss_r0, loss_r1])

    ok = True
    for what, loss, model in (("graphed", loss_g, graph), ("graphed + resumed", loss_r, resumed)):
        d_loss = max_diff(loss, loss_e)
        d_state = max_diff([t for t in model.state_dict().values() if t.is_floating_point()],
                           [t for t in eager.state_dict().values() if t.is_floating_point()])
        if args.amp:
            good = d_loss <= 1e-2 * loss_e.abs().max().item()
        else:
            good = d_loss == 0 and d_state == 0
        ok &= good
        print(f"{what} vs eager ({'bfloat16 autocast' if args.amp else 'float32, deterministic'}, "
              f"{2 * args.steps} updates, graphs={'on' if graphed else 'off: no CUDA'}): largest loss difference "
              f"{d_loss:.3g}, largest weight/buffer difference {d_state:.3g} -> {'OK' if good else 'FAILED'}",
              flush=True)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
