"""CUDA code paths checked on the CPU through proxies: no host-to-device copies in the training
step, skip features never copied per sample, deterministic kernels and TF32 set as asked."""
import pytest
import torch

from svgvp.models.svg import SVG, SVGConfig
from svgvp.training import loop as training


def test_training_step_builds_no_tensor_from_host_data_after_warm_up(monkeypatch):
    torch.manual_seed(0)
    model = SVG(SVGConfig(g_dim=16, z_dim=4, rnn_size=32))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.rand(3, 5, 1, 64, 64)

    def step():
        mse, kld = model(x, 2)
        opt.zero_grad()
        (mse + 1e-4 * kld).backward()
        opt.step()
    step()  # warm-up: caches and Adam's state are created here

    def refuse(*args, **kwargs):
        raise AssertionError("a tensor was built from host data inside the training step")
    monkeypatch.setattr(torch, "tensor", refuse)
    monkeypatch.setattr(torch, "as_tensor", refuse)
    step()


def test_conditioning_skips_are_not_copied_per_sample(monkeypatch):
    torch.manual_seed(0)
    model = SVG(SVGConfig(g_dim=16, z_dim=4, rnn_size=32)).eval()
    repeated = []
    real = torch.Tensor.repeat_interleave

    def recording(self, *args, **kwargs):
        repeated.append(tuple(self.shape))
        return real(self, *args, **kwargs)
    monkeypatch.setattr(torch.Tensor, "repeat_interleave", recording)
    model.sample(torch.rand(2, 6, 1, 64, 64), 4, 2, nsample=5)
    # only latent vectors (B, dim) and the conditioning frames themselves (B, 1, 64, 64) are repeated
    assert repeated and all(len(s) == 2 or s[1:] == (1, 64, 64) for s in repeated), repeated


def test_deterministic_and_tf32_flags_set_the_backends(monkeypatch):
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    saved = (torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.deterministic,
             torch.backends.cudnn.benchmark, torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    try:
        training.configure_numerics(deterministic=True, tf32=False)
        assert torch.are_deterministic_algorithms_enabled() and torch.backends.cudnn.deterministic
        assert not torch.backends.cuda.matmul.allow_tf32 and not torch.backends.cudnn.allow_tf32
        import os
        assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
        # the vgg model (nearest upsampling, skip selection) trains under deterministic algorithms
        torch.manual_seed(0)
        model = SVG(SVGConfig(model="vgg", g_dim=16, z_dim=4, rnn_size=32))
        mse, kld = model(torch.rand(2, 4, 1, 64, 64), 2)
        (mse + kld).backward()
        training.configure_numerics(deterministic=False, tf32=True)
        assert torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32
        with pytest.raises(training.UsageError, match="contradict"):
            training.configure_numerics(deterministic=True, tf32=True)
    finally:
        torch.use_deterministic_algorithms(saved[0])
        (torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark, torch.backends.cuda.matmul.allow_tf32,
         torch.backends.cudnn.allow_tf32) = saved[1:]


def test_channels_last_stays_channels_last_and_computes_the_same():
    import copy
    torch.manual_seed(0)
    plain = SVG(SVGConfig(g_dim=16, z_dim=4, rnn_size=32))
    cl = copy.deepcopy(plain).to(memory_format=torch.channels_last)
    layouts = []

    def record(module, inputs, output):
        if output.dim() == 4 and output.shape[-1] > 1:
            layouts.append(output.is_contiguous(memory_format=torch.channels_last))
    for m in cl.modules():
        if isinstance(m, (torch.nn.BatchNorm2d, torch.nn.Conv2d, torch.nn.ConvTranspose2d)):
            m.register_forward_hook(record)
    x = torch.rand(3, 5, 1, 64, 64)
    torch.manual_seed(1)
    mse_p, kld_p = plain(x, 2)
    torch.manual_seed(1)
    mse_c, kld_c = cl(x, 2)
    assert layouts and all(layouts), f"{layouts.count(False)} of {len(layouts)} activations left channels-last"
    # The layouts sum in different orders. float32 rounding over a sum of K terms grows like sqrt(K) eps
    # relative to the sum's scale; K is at most the largest convolution fan-in (each output is such a sum,
    # and batch norm's statistics average those outputs). A factor 8 leaves room for the chained layers.
    fan_in = max(m.weight[0].numel() for m in plain.modules()
                 if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)))
    rel = 8 * torch.finfo(torch.float32).eps * fan_in ** 0.5
    pairs = [("mse", mse_p, mse_c), ("kld", kld_p, kld_c)] + [
        (name, a, b) for (name, a), b in zip(plain.named_buffers(), cl.buffers()) if a.is_floating_point()]
    for name, a, b in pairs:
        scale = max(a.abs().max().item(), 1e-30)
        diff = (b - a).abs().max().item()
        assert diff <= rel * scale, (f"{name}: largest difference {diff:.3g} exceeds {rel * scale:.3g} (float32 "
                                     f"accumulation over up to {fan_in} terms at scale {scale:.3g})")


def test_cuda_graphs_are_used_only_where_they_can_be():
    from types import SimpleNamespace

    from svgvp.training.distributed import Ranks
    said = []
    say = lambda text, flush=False: said.append(text)  # noqa: E731
    cfg = lambda **kw: SimpleNamespace(**{"cuda_graphs": True, "compile": False, **kw})  # noqa: E731
    gpu = lambda world: Ranks(rank=0, world=world, device=torch.device("cuda", 0))  # noqa: E731
    assert training.use_cuda_graphs(cfg(), gpu(1), say)
    assert not training.use_cuda_graphs(cfg(cuda_graphs=False), gpu(1), say)
    assert not training.use_cuda_graphs(cfg(), Ranks(0, 1, torch.device("cpu")), say)
    assert not said  # nothing to say where graphs were not asked for or cannot exist
    assert not training.use_cuda_graphs(cfg(), gpu(2), say)
    assert not training.use_cuda_graphs(cfg(compile=True), gpu(1), say)
    assert said == ["note: CUDA graphs are off under torchrun; the update runs eagerly",
                    "note: CUDA graphs are off with --compile; the update runs eagerly"]


def test_resumed_optimizer_becomes_capturable_with_its_step_counters_beside_the_parameters():
    from types import SimpleNamespace

    from svgvp.training.step import make_optimizer, set_capturable
    config = SimpleNamespace(lr=1e-3, beta1=0.9)
    model = torch.nn.Linear(3, 2)
    plain = make_optimizer("adam", model.parameters(), config)
    model(torch.randn(4, 3)).sum().backward()
    plain.step()
    saved = plain.state_dict()
    graphed = make_optimizer("adam", model.parameters(), config, capturable=True)
    graphed.load_state_dict(saved)
    assert graphed.param_groups[0]["capturable"] is False  # load_state_dict restores the saver's flag...
    set_capturable(graphed, True)                          # ...which the run then sets to its own
    assert graphed.param_groups[0]["capturable"] is True
    steps = [s["step"] for s in graphed.state.values()]
    assert all(t.dtype == torch.float32 and t.device == p.device and t.item() == 1
               for t, p in zip(steps, model.parameters()))
    set_capturable(graphed, False)
    assert graphed.param_groups[0]["capturable"] is False
    graphed.step()  # an eager step with the moved counters works


def test_eager_update_equals_the_training_step():
    import copy
    from types import SimpleNamespace

    from svgvp.training.step import TrainStep, make_optimizer, train_step
    config = SimpleNamespace(amp=False, n_past=2, beta=1e-4, lr=2e-3, beta1=0.9)
    torch.manual_seed(0)
    a = SVG(SVGConfig(g_dim=16, z_dim=4, rnn_size=32))
    b = copy.deepcopy(a)
    update = TrainStep(a, make_optimizer("adam", a.parameters(), config), config, graphed=False)
    opt_b = make_optimizer("adam", b.parameters(), config)
    for k in range(2):
        x = torch.rand(2, 4, 1, 64, 64, generator=torch.Generator().manual_seed(k))
        torch.manual_seed(k)
        out_a = update(x)
        torch.manual_seed(k)
        out_b = train_step(b, opt_b, x, config)
        assert all(torch.equal(u, v) for u, v in zip(out_a, out_b))
    assert all(torch.equal(u, v) for u, v in zip(a.state_dict().values(), b.state_dict().values()))


@pytest.mark.parametrize("optimizer_name", ["adam", "rmsprop", "sgd"])
@pytest.mark.parametrize("fresh", [True, False])
def test_warm_up_before_a_capture_is_undone_completely(optimizer_name, fresh):
    # The CUDA graph's warm-up updates are undone, so that every real update is a replay and a resumed
    # run continues exactly; checked on the CPU with the same context manager
    import copy
    from types import SimpleNamespace

    from svgvp.training.step import make_optimizer, train_step, undone
    config = SimpleNamespace(amp=False, n_past=2, beta=1e-4, lr=2e-3, beta1=0.9)
    torch.manual_seed(0)
    model = SVG(SVGConfig(g_dim=16, z_dim=4, rnn_size=32))
    opt = make_optimizer(optimizer_name, model.parameters(), config)
    x = torch.rand(2, 4, 1, 64, 64)
    if not fresh:  # a resumed run: the optimizer has state already
        train_step(model, opt, x, config)
    twin = copy.deepcopy(model)
    twin_opt = make_optimizer(optimizer_name, twin.parameters(), config)
    twin_opt.load_state_dict(copy.deepcopy(opt.state_dict()))  # state_dict() holds the live tensors
    torch.manual_seed(3)
    with undone(model, opt, "cpu"):
        for _ in range(3):
            train_step(model, opt, torch.rand(2, 4, 1, 64, 64), config)
    assert all(p.grad is None for p in model.parameters())
    after_undo = train_step(model, opt, x, config)  # the RNG too is as it was: same z as the twin's
    torch.manual_seed(3)
    untouched = train_step(twin, twin_opt, x, config)
    assert all(torch.equal(a, b) for a, b in zip(after_undo, untouched))
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), twin.state_dict().values()))
