"""One update of the 2018 objective, eager or replayed as one CUDA graph.

On a GPU most of an SVG step is launch overhead: thousands of small kernels (the recurrent cells,
batch norm per time step). The step has static shapes, makes no host synchronisation and keeps the
optimizer step inside, so it can be captured once and replayed: ``TrainStep`` runs the first
``WARMUP_STEPS`` updates eagerly (caches, cuDNN plans and the optimizer's state are created
there), captures the next one and replays it from then on, with a static input buffer that each
batch is copied into. Every update, eager or replayed, is the same computation on the same batch;
the random draws come from the same generator (a graph reads its seed and offset at each replay),
so ``torch.manual_seed`` at an epoch's start replays that epoch exactly.
"""
import torch

WARMUP_STEPS = 3  # eager updates before the capture (PyTorch's graph recipe asks for a few)


def make_optimizer(name, params, config, capturable=False):
    """The run's optimizer; ``capturable``: its step may run inside a CUDA graph (state on the GPU)."""
    # One optimizer over all parameters: the 2018 code kept five, one per module, with the same
    # settings; per-parameter optimizers make that the same update.
    if name == "adam":
        return torch.optim.Adam(params, lr=config.lr, betas=(config.beta1, 0.999), capturable=capturable)
    if name == "rmsprop":
        return torch.optim.RMSprop(params, lr=config.lr, capturable=capturable)
    return torch.optim.SGD(params, lr=config.lr, momentum=config.beta1)


def set_capturable(optimizer, capturable):
    """After load_state_dict, which restores the saving run's flag: capturable only where asked, and
    then the step counters on the parameters' device, as a capturable optimizer keeps them."""
    for group in optimizer.param_groups:
        if "capturable" not in group:
            continue
        group["capturable"] = capturable
        for p in group["params"]:
            state = optimizer.state.get(p, {})
            if capturable and torch.is_tensor(state.get("step")):
                state["step"] = state["step"].to(device=p.device, dtype=torch.float32)


def train_step(net, optimizer, x, config, cache_autocast=True):
    """One update of the 2018 objective mse + beta * kld on batch x; returns (mse, kld), detached."""
    optimizer.zero_grad(set_to_none=True)
    return _update(net, optimizer, x, config, cache_autocast)


def _update(net, optimizer, x, config, cache_autocast):
    """Forward, backward and optimizer step; the gradients are None before (so that a captured
    backward writes them rather than accumulating into them)."""
    with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=config.amp, cache_enabled=cache_autocast):
        mse, kld = net(x, config.n_past)
    (mse + config.beta * kld).backward()
    optimizer.step()
    return mse.detach(), kld.detach()


class TrainStep:
    """``step(x) -> (mse, kld)``: the update on batch x, eager or (``graphed``) as a CUDA graph.

    The returned tensors of a replayed graph are its static outputs: read or accumulate them before
    the next call, which overwrites them (the training loop adds them to its sums at once).
    """

    def __init__(self, net, optimizer, config, graphed):
        self.net, self.optimizer, self.config, self.graphed = net, optimizer, config, graphed
        self.calls = 0
        self.graph = self.static_x = self.static_out = self.side_stream = None

    def __call__(self, x):
        self.calls += 1
        if not self.graphed:
            return train_step(self.net, self.optimizer, x, self.config)
        if self.graph is None:
            if self.calls <= WARMUP_STEPS:
                return self._eager_on_side_stream(x)
            self._capture(x)
        self.static_x.copy_(x, non_blocking=True)
        self.graph.replay()
        return self.static_out

    def _eager_on_side_stream(self, x):
        # warm-up off the default stream, as PyTorch's graph recipe does (lazy state then lives
        # where the capture will find it)
        side = self.side_stream = self.side_stream or torch.cuda.Stream(x.device)
        side.wait_stream(torch.cuda.current_stream(x.device))
        with torch.cuda.stream(side):
            out = train_step(self.net, self.optimizer, x, self.config, cache_autocast=False)
        torch.cuda.current_stream(x.device).wait_stream(side)
        return out

    def _capture(self, x):
        self.static_x = torch.empty_like(x)
        self.optimizer.zero_grad(set_to_none=True)  # the graph allocates the gradients it writes
        graph = torch.cuda.CUDAGraph()
        # thread_local: the DataLoader's pin-memory thread keeps making CUDA calls during the capture
        with torch.cuda.graph(graph, capture_error_mode="thread_local"):
            self.static_out = _update(self.net, self.optimizer, self.static_x, self.config, cache_autocast=False)
        self.graph = graph
