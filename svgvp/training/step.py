"""One update of the 2018 objective, eager or replayed as one CUDA graph.

On a GPU most of an SVG step is launch overhead: thousands of small kernels (the recurrent cells,
batch norm per time step). The step has static shapes, makes no host synchronisation and keeps the
optimizer step inside, so it can be captured once and replayed: ``TrainStep`` captures the update
at its first call, with a static input buffer that each batch is copied into, and replays it from
then on. Capturing needs a few eager updates first (they create cuDNN/cuBLAS state, caches and the
optimizer's moments); their effect on the weights, buffers, optimizer state and random generator
is undone, so every real update is a replay. A run resumed from a checkpoint therefore continues
with the same replays an uninterrupted run makes: exact under ``--deterministic``. (A replay and an
eager update compute the same thing, but may round differently.)
"""
from contextlib import contextmanager

import torch

WARMUP_STEPS = 3  # eager updates before the capture, then undone (PyTorch's graph recipe asks for a few)


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


@contextmanager
def undone(net, optimizer, device):
    """Whatever updates run inside leave no trace: the module's parameters and buffers, the
    optimizer's state and the device's random generator are as before when the block ends."""
    saved_state = {k: v.clone() for k, v in net.state_dict().items()}
    saved_moments = {p: {k: v.clone() for k, v in st.items() if torch.is_tensor(v)}
                     for p, st in optimizer.state.items()}
    cuda = torch.device(device).type == "cuda"
    saved_rng = torch.cuda.get_rng_state(device) if cuda else torch.get_rng_state()
    yield
    with torch.no_grad():
        for k, v in net.state_dict().items():
            v.copy_(saved_state[k])
        for p, st in optimizer.state.items():
            for k, v in st.items():
                if not torch.is_tensor(v):
                    continue
                if k in saved_moments.get(p, {}):
                    v.copy_(saved_moments[p][k])
                else:  # created inside: zero is its value before any update (Adam's and RMSprop's
                    v.zero_()  # moments and step; SGD's first step sets its momentum to the gradient)
    optimizer.zero_grad(set_to_none=True)
    if cuda:
        torch.cuda.set_rng_state(saved_rng, device)
    else:
        torch.set_rng_state(saved_rng)


class TrainStep:
    """``step(x) -> (mse, kld)``: the update on batch x, eager or (``graphed``) as a CUDA graph.

    The returned tensors of a replayed graph are its static outputs: read or accumulate them before
    the next call, which overwrites them (the training loop adds them to its sums at once).
    """

    def __init__(self, net, optimizer, config, graphed):
        self.net, self.optimizer, self.config, self.graphed = net, optimizer, config, graphed
        self.graph = self.static_x = self.static_out = None

    def __call__(self, x):
        if not self.graphed:
            return train_step(self.net, self.optimizer, x, self.config)
        if self.graph is None:
            self._warm_up_and_undo(x)
            self._capture(x)
        self.static_x.copy_(x, non_blocking=True)
        self.graph.replay()
        return self.static_out

    def _warm_up_and_undo(self, x):
        """WARMUP_STEPS eager updates on x, off the default stream as PyTorch's graph recipe does, undone."""
        side = torch.cuda.Stream(x.device)
        side.wait_stream(torch.cuda.current_stream(x.device))
        with undone(self.net, self.optimizer, x.device):
            with torch.cuda.stream(side):
                for _ in range(WARMUP_STEPS):
                    train_step(self.net, self.optimizer, x, self.config, cache_autocast=False)
            torch.cuda.current_stream(x.device).wait_stream(side)

    def _capture(self, x):
        self.static_x = torch.empty_like(x)
        self.optimizer.zero_grad(set_to_none=True)  # the graph allocates the gradients it writes
        graph = torch.cuda.CUDAGraph()
        # thread_local: the DataLoader's pin-memory thread keeps making CUDA calls during the capture
        with torch.cuda.graph(graph, capture_error_mode="thread_local"):
            self.static_out = _update(self.net, self.optimizer, self.static_x, self.config, cache_autocast=False)
        self.graph = graph
