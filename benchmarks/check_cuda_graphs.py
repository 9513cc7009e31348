"""On a GPU: a run resumed from a checkpoint (fresh graph, fresh warm-up) continues exactly as the
uninterrupted graphed run, and the graphed updates compute what the eager ones compute.

    python benchmarks/check_cuda_graphs.py [--device cuda] [--batch_size 16] [--steps 8]

Three runs of two epochs from the same weights and batches, each epoch starting with
torch.manual_seed as the training loop does: eager; graphed; graphed for epoch 0, then rebuilt from a
saved state dict for epoch 1. Under deterministic kernels and float32 the graphed and the resumed
run must agree bitwise (every real update of both is a replay); the graphed run and the eager one
may round differently, which a few Adam steps amplify (the pre-batch-norm biases have a true
gradient of 0, so theirs is rounding noise that Adam scales to full-size steps): they are compared
within a tolerance, with the first update that differs. Exits 1 when a comparison fails.
"""
import argparse
import copy
import sys
from types import SimpleNamespace

import torch
from common import ROOT  # noqa: F401  (puts the repository on the path)

from svgvp.models.svg import SVG, SVGConfig
from svgvp.training.loop import configure_numerics
from svgvp.training.step import TrainStep, make_optimizer, set_capturable


def run(model, batches, config, graphed, epochs, capturable, state=None):
    """Train `model` over `epochs` (each a list of batch indices); returns per-step losses.

    The eager run uses the same capturable Adam as the graphed ones (its bias corrections are tensor
    operations, rounded differently from non-capturable Adam's Python floats), so that the
    comparison isolates the graph.
    """
    opt = make_optimizer("adam", model.parameters(), config, capturable=capturable)
    if state is not None:
        opt.load_state_dict(state)
        set_capturable(opt, capturable)
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
    loss_e, _ = run(eager, batches, config, False, epochs, graphed)
    graph = copy.deepcopy(base)
    loss_g, _ = run(graph, batches, config, graphed, epochs, graphed)
    first = copy.deepcopy(base)
    loss_r0, opt = run(first, batches, config, graphed, epochs[:1], graphed)
    saved_model = copy.deepcopy(first.state_dict())
    saved_opt = copy.deepcopy(opt.state_dict())
    resumed = copy.deepcopy(base)
    resumed.load_state_dict(saved_model)
    loss_r1, _ = run(resumed, batches, config, graphed, epochs[1:], graphed, saved_opt)
    loss_r = torch.cat([loss_r0, loss_r1])

    ok = True
    numerics = "bfloat16 autocast" if args.amp else "float32, deterministic"
    for what, loss, model, ref_loss, ref_model, exact in (
            ("graphed + resumed vs graphed", loss_r, resumed, loss_g, graph, not args.amp),
            ("graphed vs eager", loss_g, graph, loss_e, eager, False)):
        d_loss = max_diff(loss, ref_loss)
        d_state = max_diff([t for t in model.state_dict().values() if t.is_floating_point()],
                           [t for t in ref_model.state_dict().values() if t.is_floating_point()])
        good = (d_loss == 0 and d_state == 0) if exact else d_loss <= 1e-2 * ref_loss.abs().max().item()
        ok &= good
        differing = (loss != ref_loss).any(1).nonzero()
        first = f"first differing update {differing[0].item()}" if len(differing) else "every update equal"
        print(f"{what} ({numerics}, {2 * args.steps} updates, graphs={'on' if graphed else 'off: no CUDA'}, "
              f"{'bitwise' if exact else 'within 1%'}): largest loss difference {d_loss:.3g} ({first}), largest "
              f"weight/buffer difference {d_state:.3g} -> {'OK' if good else 'FAILED'}", flush=True)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
