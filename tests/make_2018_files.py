"""Write model files the way the 2018 code (edenton/svg) wrote them, for tests/test_checkpoint_2018.py.

Run in a process of its own: it registers modules under the 2018 names (``models.dcgan_64``,
``models.lstm``, ...), which would clash with this project's ``models`` package.

    python tests/make_2018_files.py OUT_DIR

For each case it writes ``<case>_legacy.pth`` (the PyTorch 0.3 legacy format, emulated: protocol 2
pickle, CUDA storage tags, ``_rebuild_tensor``, ``Parameter(data)`` plus a state tuple, hidden
states as ``Variable``, batch norm without ``num_batches_tracked``, module source beside each
class), for some cases ``<case>_zip.pth`` (``torch.save`` of today: zip, ``_rebuild_tensor_v2``,
``_rebuild_parameter``), and ``<case>_ref.pt``: inputs and the outputs of the 2018 classes on them
(plain tensors). The classes below follow the 2018 modules' structure and forward passes.
"""
import argparse
import copyreg
import os
import pickle
import struct
import sys
import types
from collections import OrderedDict

import torch
import torch.nn as nn

# ----------------------------------------------------------------------------- 2018 classes
NF = 64


def _bn_act(conv, n):
    return nn.Sequential(conv, nn.BatchNorm2d(n), nn.LeakyReLU(0.2, inplace=True))


class dcgan_conv(nn.Module):
    def __init__(self, nin, nout):
        super().__init__()
        self.main = _bn_act(nn.Conv2d(nin, nout, 4, 2, 1), nout)

    def forward(self, x):
        return self.main(x)


class dcgan_upconv(nn.Module):
    def __init__(self, nin, nout):
        super().__init__()
        self.main = _bn_act(nn.ConvTranspose2d(nin, nout, 4, 2, 1), nout)

    def forward(self, x):
        return self.main(x)


class vgg_layer(nn.Module):
    def __init__(self, nin, nout):
        super().__init__()
        self.main = _bn_act(nn.Conv2d(nin, nout, 3, 1, 1), nout)

    def forward(self, x):
        return self.main(x)


def _latent(nin, dim):
    return nn.Sequential(nn.Conv2d(nin, dim, 4, 1, 0), nn.BatchNorm2d(dim), nn.Tanh())


def _first_up(dim, nout):
    return _bn_act(nn.ConvTranspose2d(dim, nout, 4, 1, 0), nout)


def make_encoder(kind, width):
    """The 2018 encoder class of (kind, width): blocks c1..cK, the last one to a dim-vector."""
    def vgg_stack(spec):
        return nn.Sequential(*[vgg_layer(a, b) for a, b in spec])

    class encoder(nn.Module):
        def __init__(self, dim, nc=1):
            super().__init__()
            self.dim = dim
            if kind == "dcgan":
                chans = [nc, NF, NF * 2, NF * 4, NF * 8] + ([NF * 8] if width == 128 else [])
                blocks = [dcgan_conv(a, b) for a, b in zip(chans[:-1], chans[1:])]
            else:
                blocks = [vgg_stack([(nc, 64), (64, 64)]), vgg_stack([(64, 128), (128, 128)]),
                          vgg_stack([(128, 256), (256, 256), (256, 256)]),
                          vgg_stack([(256, 512), (512, 512), (512, 512)])]
                if width == 128:
                    blocks.append(vgg_stack([(512, 512)] * 3))
                self.mp = nn.MaxPool2d(kernel_size=2, stride=2, padding=0)
            blocks.append(_latent(NF * 8, dim))
            self.n = len(blocks)
            for k, b in enumerate(blocks):
                setattr(self, f"c{k + 1}", b)

        def forward(self, x):
            hs = []
            for k in range(self.n):
                if k > 0 and kind == "vgg":
                    x = self.mp(x)
                x = getattr(self, f"c{k + 1}")(x)
                hs.append(x)
            return hs[-1].view(-1, self.dim), hs[:-1]

    return encoder


def make_decoder(kind, width):
    class decoder(nn.Module):
        def __init__(self, dim, nc=1):
            super().__init__()
            self.dim = dim
            if kind == "dcgan":
                outs = [NF * 8] + ([NF * 8] if width == 128 else []) + [NF * 4, NF * 2, NF]
                blocks = [_first_up(dim, outs[0])]
                blocks += [dcgan_upconv(a * 2, b) for a, b in zip(outs[:-1], outs[1:])]
                blocks.append(nn.Sequential(nn.ConvTranspose2d(NF * 2, nc, 4, 2, 1), nn.Sigmoid()))
            else:
                def stack(spec):
                    return nn.Sequential(*[vgg_layer(a, b) for a, b in spec])
                blocks = [_first_up(dim, 512)]
                if width == 128:
                    blocks.append(stack([(1024, 512), (512, 512), (512, 512)]))
                    blocks.append(stack([(1024, 512), (512, 512), (512, 256)]))
                else:
                    blocks.append(stack([(1024, 512), (512, 512), (512, 256)]))
                blocks.append(stack([(512, 256), (256, 256), (256, 128)]))
                blocks.append(stack([(256, 128), (128, 64)]))
                blocks.append(nn.Sequential(vgg_layer(128, 64), nn.ConvTranspose2d(64, nc, 3, 1, 1), nn.Sigmoid()))
                self.up = nn.UpsamplingNearest2d(scale_factor=2)
            self.n = len(blocks)
            for k, b in enumerate(blocks):
                setattr(self, f"upc{k + 1}", b)

        def forward(self, inputs):
            vec, skip = inputs
            d = self.upc1(vec.view(-1, self.dim, 1, 1))
            for k in range(1, self.n):
                if kind == "vgg":
                    d = self.up(d)
                d = getattr(self, f"upc{k + 1}")(torch.cat([d, skip[-k]], 1))
            return d

    return decoder


class lstm(nn.Module):
    def __init__(self, input_size, output_size, hidden_size, n_layers, batch_size):
        super().__init__()
        self.input_size, self.output_size, self.hidden_size = input_size, output_size, hidden_size
        self.batch_size, self.n_layers = batch_size, n_layers
        self.embed = nn.Linear(input_size, hidden_size)
        self.lstm = nn.ModuleList([nn.LSTMCell(hidden_size, hidden_size) for _ in range(n_layers)])
        self.output = nn.Sequential(nn.Linear(hidden_size, output_size), nn.Tanh())
        self.hidden = self.init_hidden()

    def init_hidden(self):
        return [(torch.zeros(self.batch_size, self.hidden_size), torch.zeros(self.batch_size, self.hidden_size))
                for _ in range(self.n_layers)]

    def forward(self, x):
        h_in = self.embed(x.view(-1, self.input_size))
        for i in range(self.n_layers):
            self.hidden[i] = self.lstm[i](h_in, self.hidden[i])
            h_in = self.hidden[i][0]
        return self.output(h_in)


class gaussian_lstm(nn.Module):
    def __init__(self, input_size, output_size, hidden_size, n_layers, batch_size):
        super().__init__()
        self.input_size, self.output_size, self.hidden_size = input_size, output_size, hidden_size
        self.n_layers, self.batch_size = n_layers, batch_size
        self.embed = nn.Linear(input_size, hidden_size)
        self.lstm = nn.ModuleList([nn.LSTMCell(hidden_size, hidden_size) for _ in range(n_layers)])
        self.mu_net = nn.Linear(hidden_size, output_size)
        self.logvar_net = nn.Linear(hidden_size, output_size)
        self.hidden = self.init_hidden()

    init_hidden = lstm.init_hidden

    def forward(self, x):
        h_in = self.embed(x.view(-1, self.input_size))
        for i in range(self.n_layers):
            self.hidden[i] = self.lstm[i](h_in, self.hidden[i])
            h_in = self.hidden[i][0]
        mu, logvar = self.mu_net(h_in), self.logvar_net(h_in)
        z = mu + torch.randn_like(mu) * logvar.mul(0.5).exp()
        return z, mu, logvar


def register_2018_modules():
    """Make the classes importable under their 2018 names, so pickles name them as 2018 did."""
    pkg = types.ModuleType("models")
    pkg.__path__ = []
    sys.modules["models"] = pkg
    classes = {}
    for kind in ("dcgan", "vgg"):
        for width in (64, 128):
            name = f"models.{kind}_{width}"
            mod = types.ModuleType(name)
            enc, dec = make_encoder(kind, width), make_decoder(kind, width)
            block_classes = (dcgan_conv, dcgan_upconv) if kind == "dcgan" else (vgg_layer,)
            for cls in (enc, dec) + block_classes:
                setattr(mod, cls.__name__, cls)
            mod.encoder, mod.decoder = enc, dec
            enc.__module__ = dec.__module__ = name
            enc.__qualname__, dec.__qualname__ = "encoder", "decoder"
            sys.modules[name] = mod
            classes[(kind, width)] = (enc, dec)
    # the block classes live in every backbone module in 2018; pickle them under the first one
    for cls, name in ((dcgan_conv, "models.dcgan_64"), (dcgan_upconv, "models.dcgan_64"), (vgg_layer, "models.vgg_64")):
        cls.__module__ = name
    lstm_mod = types.ModuleType("models.lstm")
    for cls in (lstm, gaussian_lstm):
        cls.__module__ = "models.lstm"
        setattr(lstm_mod, cls.__name__, cls)
    sys.modules["models.lstm"] = lstm_mod
    return classes


# ----------------------------------------------------------------------------- PyTorch 0.3 format
class GlobalName:
    """A global written by name (classes of PyTorch 0.3 that need not exist today)."""

    def __init__(self, module, name):
        self.module, self.name = module, name

    def __call__(self, *args):  # pickle's save_reduce wants a callable
        raise TypeError("never called")


class Variable03:
    """A tensor to be pickled as PyTorch 0.3 pickled a Variable."""

    def __init__(self, data):
        self.data = data


class Storage03:
    def __init__(self, key, tensor):
        self.key, self.tensor = key, tensor


class BackendMarker:
    pass


class LegacyPickler(pickle._Pickler):
    """Pure-Python pickler, protocol 2, that writes what PyTorch 0.3's torch.save wrote."""

    dispatch = dict(pickle._Pickler.dispatch)

    def __init__(self, f):
        super().__init__(f, protocol=2)
        self.storages, self.classes_seen = [], set()

    def save_global_name(self, obj):
        self.write(pickle.GLOBAL + f"{obj.module}\n{obj.name}\n".encode())
        self.memoize(obj)

    dispatch[GlobalName] = save_global_name

    def persistent_id(self, obj):
        if isinstance(obj, type) and issubclass(obj, nn.Module) and obj not in self.classes_seen:
            self.classes_seen.add(obj)
            return ("module", obj, f"/home/user/svg/{obj.__module__.replace('.', '/')}.py", f"class {obj.__name__}: ...")
        if isinstance(obj, Storage03):
            return ("storage", GlobalName("torch.cuda", "FloatStorage"), obj.key, "cuda:0", obj.tensor.numel(), None)
        return None

    def reducer_override(self, obj):
        if isinstance(obj, nn.Parameter):
            return GlobalName("torch.nn.parameter", "Parameter"), (obj.detach(),), (obj.requires_grad, False, None)
        if isinstance(obj, Variable03):
            return GlobalName("torch.autograd.variable", "Variable"), (obj.data,), (False, False, None)
        if isinstance(obj, BackendMarker):
            return GlobalName("torch.nn.backends.thnn", "_get_thnn_function_backend"), ()
        if isinstance(obj, torch.Tensor):
            data = obj.detach().contiguous().float()
            storage = Storage03(str(140000000 + len(self.storages) * 64), data)
            self.storages.append(storage)
            return GlobalName("torch._utils", "_rebuild_tensor"), (storage, 0, tuple(data.shape), tuple(data.stride()))
        if isinstance(obj, nn.Module):
            return copyreg.__newobj__, (type(obj),), module_state_03(obj)
        return NotImplemented


def module_state_03(module):
    """A module's __dict__ as PyTorch 0.3 had it."""
    state = {"_backend": BackendMarker(), "_parameters": OrderedDict(module._parameters),
             "_buffers": OrderedDict((k, v) for k, v in module._buffers.items() if k != "num_batches_tracked"),
             "_backward_hooks": OrderedDict(), "_forward_hooks": OrderedDict(), "_forward_pre_hooks": OrderedDict(),
             "_modules": OrderedDict(module._modules), "training": module.training}
    for k, v in module.__dict__.items():
        if not k.startswith("_") and k != "training":
            state[k] = [tuple(Variable03(t) for t in hc) for hc in v] if k == "hidden" else v
    return state


def save_legacy(obj, path, drop_storage_bytes=0):
    """torch.save of PyTorch 0.3: magic, protocol, system info, the pickle, storage keys, raw storages."""
    with open(path, "wb") as f:
        for header in (0x1950A86A20F9469CFC6C, 1001,
                       {"protocol_version": 1001, "little_endian": True, "type_sizes": {"short": 2, "int": 4, "long": 8}}):
            pickle.dump(header, f, protocol=2)
        pickler = LegacyPickler(f)
        pickler.dump(obj)
        storages = sorted(pickler.storages, key=lambda s: s.key)
        pickle.dump([s.key for s in storages], f, protocol=2)
        for s in storages:
            f.write(struct.pack("<q", s.tensor.numel()))
            f.write(s.tensor.numpy().tobytes())


# ----------------------------------------------------------------------------- cases
CASES = {
    # name: backbone, width, channels, learned prior, formats, opt style
    "dcgan64_lp": ("dcgan", 64, 1, True, ("legacy", "zip"), "split"),
    "vgg64_fp": ("vgg", 64, 3, False, ("legacy", "zip"), "split"),
    "dcgan128_lp": ("dcgan", 128, 3, True, ("legacy",), "split"),
    "vgg128_fp": ("vgg", 128, 1, False, ("legacy",), "rnn_layers"),
}
G_DIM, Z_DIM, RNN, BATCH = 16, 4, 32, 3


def make_opt(kind, width, channels, opt_style):
    opt = argparse.Namespace(
        lr=0.002, beta1=0.9, batch_size=BATCH, log_dir="/home/user/svg/logs/run", model_dir="", name="",
        data_root="data", optimizer=torch.optim.Adam, niter=300, seed=1, epoch_size=600, image_width=width,
        channels=channels, dataset="smmnist" if channels == 1 else "bair", n_past=5, n_future=10, n_eval=30,
        rnn_size=RNN, z_dim=Z_DIM, g_dim=G_DIM, beta=0.0001, model=kind, data_threads=5, num_digits=2,
        last_frame_skip=False, max_step=15)
    if opt_style == "split":
        opt.predictor_rnn_layers, opt.posterior_rnn_layers, opt.prior_rnn_layers = 2, 1, 1
    else:
        opt.rnn_layers = 2
    return opt


def build_case(name, classes):
    kind, width, channels, learned_prior, formats, opt_style = CASES[name]
    torch.manual_seed(sum(map(ord, name)))
    enc_cls, dec_cls = classes[(kind, width)]
    layers = (2, 1, 1) if opt_style == "split" else (2, 2, 2)
    parts = {"encoder": enc_cls(G_DIM, channels), "decoder": dec_cls(G_DIM, channels),
             "frame_predictor": lstm(G_DIM + Z_DIM, G_DIM, RNN, layers[0], BATCH),
             "posterior": gaussian_lstm(G_DIM, Z_DIM, RNN, layers[1], BATCH)}
    if learned_prior:
        parts["prior"] = gaussian_lstm(G_DIM, Z_DIM, RNN, layers[2], BATCH)
    for m in parts.values():  # trained-looking batch norm: running statistics far from (0, 1)
        for sub in m.modules():
            if isinstance(sub, nn.BatchNorm2d):
                sub.running_mean.normal_(0, 0.3)
                sub.running_var.uniform_(0.5, 2.0)
                sub.weight.data.normal_(1, 0.2)
                sub.bias.data.normal_(0, 0.2)
        m.eval()
    obj = dict(parts, opt=make_opt(kind, width, channels, opt_style))
    return obj, formats


@torch.no_grad()
def reference_outputs(obj, channels, width):
    x = torch.rand(BATCH, channels, width, width, generator=torch.Generator().manual_seed(3))
    h, skips = obj["encoder"](x)
    out = {"x": x, "h": h, "decoded": obj["decoder"]([h, skips])}
    step_in = torch.randn(2, BATCH, G_DIM + Z_DIM, generator=torch.Generator().manual_seed(4))
    out["predictor_in"] = step_in
    out["predictor_out"] = torch.stack([obj["frame_predictor"](s) for s in step_in])
    post_in = step_in[:, :, :G_DIM]
    for part in ("posterior", "prior"):
        if part in obj:
            mus, logvars = zip(*[obj[part](s)[1:] for s in post_in])
            out[f"{part}_mu"], out[f"{part}_logvar"] = torch.stack(mus), torch.stack(logvars)
    for part in ("frame_predictor", "posterior", "prior"):
        if part in obj:
            obj[part].hidden = obj[part].init_hidden()  # files hold the zero state of a fresh step
    return out


def main(out_dir):
    classes = register_2018_modules()
    os.makedirs(out_dir, exist_ok=True)
    for name, (kind, width, channels, *_rest) in CASES.items():
        obj, formats = build_case(name, classes)
        torch.save(reference_outputs(obj, channels, width), os.path.join(out_dir, f"{name}_ref.pt"))
        if "legacy" in formats:
            save_legacy(obj, os.path.join(out_dir, f"{name}_legacy.pth"))
        if "zip" in formats:
            torch.save(obj, os.path.join(out_dir, f"{name}_zip.pth"))
    # a legacy file without its decoder
    obj, _ = build_case("dcgan64_lp", classes)
    del obj["decoder"]
    save_legacy(obj, os.path.join(out_dir, "no_decoder_legacy.pth"))
    # opt that does not fit the weights
    obj, _ = build_case("dcgan64_lp", classes)
    obj["opt"].g_dim = 32
    save_legacy(obj, os.path.join(out_dir, "wrong_opt_legacy.pth"))
    # opt values of the wrong type
    for field, value in (("g_dim", "abc"), ("g_dim", None), ("channels", "one"), ("image_width", "wide")):
        obj, _ = build_case("dcgan64_lp", classes)
        setattr(obj["opt"], field, value)
        save_legacy(obj, os.path.join(out_dir, f"bad_{field}_{value}_legacy.pth"))


if __name__ == "__main__":
    main(sys.argv[1])
