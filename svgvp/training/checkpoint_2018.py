"""Read the model files of the 2018 code (edenton/svg) without running any of their code.

Those files are ``torch.save`` of ``{'encoder', 'decoder', 'frame_predictor', 'posterior',
['prior',] 'opt'}``: whole pickled modules of the 2018 classes plus the run's argparse
namespace. The authors' files were written by PyTorch 0.3 (legacy, non-zip format, CUDA
storages, ``_rebuild_tensor``, ``Parameter(data)`` plus a state tuple, hidden states as
``Variable``); files of later versions use the zip format and ``_rebuild_tensor_v2``.

A restricted unpickler reads both. Its globals come from an explicit allowlist: the 2018 model
classes and the ``torch.nn`` layer classes become inert records of their attributes, tensors
and storages become references that are filled from the raw storage bytes afterwards, the
optimizer class becomes its name. Any other global stops the read with an error that names it,
before anything is constructed, so a crafted file cannot run code.

``read_2018_checkpoint(path)`` returns a checkpoint dict in this project's format (config,
state dict, args), ready for ``checkpoint.build_model``.
"""
import collections
import io
import os
import pickle
import struct
import zipfile

import torch

from svgvp.utils import file_sha256

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C  # first object of a legacy torch.save file
LEGACY_PROTOCOL = 1001
SOURCE_FORMAT = "edenton/svg 2018"

# 2018 module and class -> our backbone key (model, image_width); the LSTM classes map to None
MODEL_CLASSES_2018 = {
    **{f"models.{m}_{w}.{c}": (m, w) for m in ("dcgan", "vgg") for w in (64, 128)
       for c in ("encoder", "decoder", "dcgan_conv", "dcgan_upconv", "vgg_layer")},
    "models.lstm.lstm": None,
    "models.lstm.gaussian_lstm": None,
}
TORCH_LAYER_CLASSES = {
    f"torch.nn.modules.{path}" for path in (
        "conv.Conv2d", "conv.ConvTranspose2d", "batchnorm.BatchNorm2d", "batchnorm.BatchNorm1d",
        "activation.LeakyReLU", "activation.Tanh", "activation.Sigmoid", "activation.ReLU",
        "container.Sequential", "container.ModuleList", "linear.Linear", "rnn.LSTMCell",
        "pooling.MaxPool2d", "upsampling.UpsamplingNearest2d", "upsampling.Upsample")}
STORAGE_DTYPES = {
    "FloatStorage": torch.float32, "DoubleStorage": torch.float64, "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16, "LongStorage": torch.int64, "IntStorage": torch.int32,
    "ShortStorage": torch.int16, "CharStorage": torch.int8, "ByteStorage": torch.uint8,
    "BoolStorage": torch.bool,
}
OPTIMIZER_NAMES = {"torch.optim.adam.Adam": "adam", "torch.optim.rmsprop.RMSprop": "rmsprop",
                   "torch.optim.sgd.SGD": "sgd"}
# Python 2 pickles name a few modules differently
PY2_MODULES = {"__builtin__": "builtins", "copy_reg": "copyreg"}
PARTS = ("encoder", "decoder", "frame_predictor", "posterior", "prior")


class Checkpoint2018Error(Exception):
    """The file is not a readable 2018 model file; the message says why."""


# ----------------------------------------------------------------------------- inert records
class ModuleRecord:
    """The attributes of a pickled 2018 module; never a real module, never called."""

    qualified_name = "?"

    def __setstate__(self, state):
        if isinstance(state, tuple):  # (dict, slot state) from some picklers
            state = state[0] or {}
        if not isinstance(state, dict):
            raise Checkpoint2018Error(f"{self.qualified_name} has a state of type {type(state).__name__}")
        self.__dict__["state"] = state

    def tensors(self, prefix=""):
        """(dotted name, tensor reference) of every parameter and buffer, as a state dict names them."""
        state = self.__dict__.get("state", {})
        for group in ("_parameters", "_buffers"):
            for name, value in (state.get(group) or {}).items():
                if value is not None:
                    yield prefix + name, value
        for name, child in (state.get("_modules") or {}).items():
            if child is not None:
                if not isinstance(child, ModuleRecord):
                    raise Checkpoint2018Error(f"submodule '{prefix}{name}' is not a module")
                yield from child.tensors(f"{prefix}{name}.")


class NamespaceRecord:
    """The attributes of the pickled argparse.Namespace (the run's ``opt``)."""

    def __setstate__(self, state):
        self.__dict__["values"] = dict(state) if isinstance(state, dict) else {}


class StorageType:
    def __init__(self, dtype):
        self.dtype = dtype


class OptimizerName(str):
    """``opt.optimizer`` of a 2018 run is the optimizer class; we keep only its name."""


class StorageRef:
    def __init__(self, key, dtype, numel, view):
        self.key, self.dtype, self.numel, self.view = key, dtype, numel, view


class TensorRef:
    def __init__(self, storage, offset, size, stride):
        if not isinstance(storage, StorageRef):
            raise Checkpoint2018Error("a tensor in the file does not point to a storage")
        self.storage, self.offset, self.size, self.stride = storage, int(offset), tuple(size), tuple(stride)


class WrappedTensor:
    """``Parameter(data)`` / ``Variable(data)`` of PyTorch 0.3: the data plus an ignored state."""

    def __init__(self, data=None, *ignored):
        self.data = data

    def __setstate__(self, state):
        pass


def _rebuild_tensor(storage, offset, size, stride, *ignored):
    return TensorRef(storage, offset, size, stride)


def _rebuild_parameter(data, *ignored):
    return data


def _thnn_backend():
    return None  # PyTorch 0.3 pickled each module's backend object; it carries no weights


def _reconstructor(cls, base, state):
    # copyreg._reconstructor of protocol 0/1 pickles, limited to our record types
    if not (isinstance(cls, type) and issubclass(cls, (ModuleRecord, NamespaceRecord)) and base is object):
        raise Checkpoint2018Error("refused copyreg._reconstructor of a class outside the allowlist")
    return cls.__new__(cls)


_RECORD_TYPES = {}


def _record_type(qualified_name, base):
    if qualified_name not in _RECORD_TYPES:
        _RECORD_TYPES[qualified_name] = type(qualified_name.rsplit(".", 1)[1], (base,),
                                             {"qualified_name": qualified_name, "__module__": __name__})
    return _RECORD_TYPES[qualified_name]


def _allowed_global(module, name):
    module = PY2_MODULES.get(module, module)
    full = f"{module}.{name}"
    if full in MODEL_CLASSES_2018 or full in TORCH_LAYER_CLASSES:
        return _record_type(full, ModuleRecord)
    if full == "argparse.Namespace":
        return _record_type(full, NamespaceRecord)
    if module in ("torch", "torch.cuda") and name in STORAGE_DTYPES:
        return StorageType(STORAGE_DTYPES[name])
    if full in OPTIMIZER_NAMES:
        return OptimizerName(OPTIMIZER_NAMES[full])
    simple = {
        "torch._utils._rebuild_tensor": _rebuild_tensor,
        "torch._utils._rebuild_tensor_v2": _rebuild_tensor,
        "torch._utils._rebuild_parameter": _rebuild_parameter,
        "torch._utils._rebuild_parameter_with_state": _rebuild_parameter,
        "torch.nn.parameter.Parameter": WrappedTensor,
        "torch.autograd.variable.Variable": WrappedTensor,
        "torch.nn.backends.thnn._get_thnn_function_backend": _thnn_backend,
        "collections.OrderedDict": collections.OrderedDict,
        "builtins.set": set,
        "torch.Size": tuple,
        "copyreg._reconstructor": _reconstructor,
        "builtins.object": object,
    }
    if full in simple:
        return simple[full]
    raise Checkpoint2018Error(f"the file refers to '{full}', which is not on the list of names a 2018 SVG "
                              f"model file may contain; it was not loaded (nothing in it was run)")


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, f, storages):
        super().__init__(f, encoding="latin1")  # Python 2 pickles: str -> latin-1 text
        self.storages = storages

    def find_class(self, module, name):
        return _allowed_global(module, name)

    def persistent_load(self, pid):
        if not isinstance(pid, tuple) or not pid:
            raise Checkpoint2018Error(f"unexpected persistent id {pid!r}")
        kind = pid[0].decode("ascii") if isinstance(pid[0], bytes) else pid[0]
        if kind == "module":  # ('module', class, source file, source text): the class itself
            cls = pid[1]
            if not (isinstance(cls, type) and issubclass(cls, ModuleRecord)):
                raise Checkpoint2018Error("a module entry of the file does not name an allowed class")
            return cls
        if kind != "storage" or len(pid) not in (5, 6):
            raise Checkpoint2018Error(f"unexpected persistent id of kind {kind!r}")
        storage_type, key, _location, numel = pid[1:5]
        view = pid[5] if len(pid) == 6 else None
        if not isinstance(storage_type, StorageType):
            raise Checkpoint2018Error("a storage of the file has no known storage type")
        key = str(key)
        root = self.storages.setdefault(key, StorageRef(key, storage_type.dtype, int(numel), None))
        if view is None:
            return root
        view_key, view_offset, view_numel = view
        return StorageRef(str(view_key), storage_type.dtype, int(view_numel), (root, int(view_offset)))


def _unpickle(data, storages):
    try:
        return _RestrictedUnpickler(io.BytesIO(data) if isinstance(data, bytes) else data, storages).load()
    except Checkpoint2018Error:
        raise
    except Exception as err:  # truncated or garbled pickle streams raise many types
        raise Checkpoint2018Error(f"the pickled data is corrupt or truncated ({type(err).__name__}: {err})") from err


# ----------------------------------------------------------------------------- file formats
def _tensor_from_bytes(raw, dtype, numel, what):
    size = torch.empty((), dtype=dtype).element_size()
    if len(raw) != numel * size:
        raise Checkpoint2018Error(f"storage {what} holds {len(raw)} bytes, expected {numel * size}: the file "
                                  f"is truncated or corrupt")
    return torch.frombuffer(bytearray(raw), dtype=dtype) if numel else torch.empty(0, dtype=dtype)


def _read_legacy(f):
    storages = {}
    try:
        magic = _unpickle(f, storages)  # restricted from the first byte on
    except Checkpoint2018Error as err:
        raise Checkpoint2018Error(f"not a PyTorch model file ({err})") from err
    if magic != LEGACY_MAGIC:
        raise Checkpoint2018Error("not a PyTorch file (no legacy magic number)")
    header = [_unpickle(f, storages) for _ in range(2)]  # protocol version, system info
    if header[0] != LEGACY_PROTOCOL:
        raise Checkpoint2018Error(f"unknown legacy protocol version {header[0]!r}")
    if isinstance(header[1], dict) and not header[1].get("little_endian", True):
        raise Checkpoint2018Error("the file was written on a big-endian machine; not supported")
    obj = _unpickle(f, storages)
    keys = _unpickle(f, storages)
    data = {}
    for key in keys:
        key = str(key)
        if key not in storages:
            raise Checkpoint2018Error(f"storage {key} is listed but never used")
        ref = storages[key]
        head = f.read(8)
        if len(head) < 8:
            raise Checkpoint2018Error("the file is truncated (a storage is missing)")
        (numel,) = struct.unpack("<q", head)
        if numel != ref.numel:
            raise Checkpoint2018Error(f"storage {key} says {numel} elements, its tensors expect {ref.numel}")
        size = torch.empty((), dtype=ref.dtype).element_size()
        data[key] = _tensor_from_bytes(f.read(numel * size), ref.dtype, numel, key)
    return obj, data


def _read_zip(path):
    storages = {}
    try:
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
            pkl = [n for n in names if n.endswith("/data.pkl") or n == "data.pkl"]
            if len(pkl) != 1:
                raise Checkpoint2018Error("a zip file without one data.pkl is not a PyTorch file")
            prefix = pkl[0][: -len("data.pkl")]
            obj = _unpickle(z.read(pkl[0]), storages)
            data = {key: _tensor_from_bytes(z.read(f"{prefix}data/{key}"), ref.dtype, ref.numel, key)
                    for key, ref in storages.items()}
    except (zipfile.BadZipFile, KeyError, OSError, EOFError) as err:
        raise Checkpoint2018Error(f"the zip archive is corrupt or truncated ({err})") from err
    return obj, data


def _materialise(ref, data, name):
    if isinstance(ref, WrappedTensor):
        ref = ref.data
    if not isinstance(ref, TensorRef):
        raise Checkpoint2018Error(f"'{name}' is not a tensor")
    storage, offset = ref.storage, ref.offset
    if storage.view is not None:
        storage, offset = storage.view[0], offset + storage.view[1]
    flat = data.get(storage.key)
    if flat is None:
        raise Checkpoint2018Error(f"the data of '{name}' is missing from the file")
    try:
        return torch.as_strided(flat, ref.size, ref.stride, offset).clone()
    except RuntimeError as err:
        raise Checkpoint2018Error(f"'{name}' points outside its storage ({err})") from err


# ----------------------------------------------------------------------------- conversion
def _backbone_of(record):
    key = MODEL_CLASSES_2018.get(record.qualified_name)
    if key is None:
        raise Checkpoint2018Error(f"expected a 2018 encoder or decoder, found {record.qualified_name}")
    return key


def _count_layers(state, part):
    return len({k.split(".")[2] for k in state if k.startswith(f"{part}.lstm.") and k.endswith("weight_ih")})


def _whole_number(opt, name, default=None):
    """opt[name] as an int; a value that is not a whole number is a Checkpoint2018Error naming it."""
    value = opt.get(name, default)
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise Checkpoint2018Error(f"opt.{name} is {value!r}, not a whole number")
    try:
        number = float(value)
    except ValueError:
        raise Checkpoint2018Error(f"opt.{name} is {value!r}, not a whole number") from None
    if not number.is_integer():
        raise Checkpoint2018Error(f"opt.{name} is {value!r}, not a whole number")
    return int(number)


def read_2018_checkpoint(path):
    """Read a 2018 model file; returns the fields of this project's checkpoint (config, model, epoch,
    step, args, converted_from), which ``checkpoint.build_checkpoint`` turns into one.

    Raises Checkpoint2018Error for a file that is not one, is corrupt, refers to a global outside
    the allowlist, lacks a part, or whose weights do not fit the configuration in its ``opt``.
    """
    obj, data, opt = _saved_dict(path)
    state = _state_dict(obj, data)
    config = _config(obj, opt, state)
    return {
        "config": config, "model": state,
        "epoch": -1,  # unknown: continued training starts at epoch 0 with a fresh optimizer, as in 2018
        "step": 0, "args": _args(opt, config),
        "converted_from": {"format": SOURCE_FORMAT, "file": os.path.basename(path), "sha256": file_sha256(path)},
    }


def _saved_dict(path):
    """(the dict the 2018 script saved, its tensor data, its opt as a dict of values)."""
    if zipfile.is_zipfile(path):
        obj, data = _read_zip(path)
    else:
        with open(path, "rb") as f:
            obj, data = _read_legacy(f)
    if not isinstance(obj, dict) or "opt" not in obj:
        held = getattr(obj, "qualified_name", type(obj).__name__)
        raise Checkpoint2018Error(f"the file holds a pickled {held}, not the dict with 'opt' that the 2018 "
                                  f"training scripts save")
    missing = [p for p in PARTS[:4] if p not in obj]
    if missing:
        raise Checkpoint2018Error(f"the 2018 model file lacks {', '.join(missing)}")
    if not isinstance(obj["opt"], NamespaceRecord):
        raise Checkpoint2018Error("'opt' is not the run's argparse namespace")
    return obj, data, obj["opt"].__dict__.get("values", {})


def _state_dict(obj, data):
    """The state dict of every saved module, as this project's SVG names it."""
    state = {}
    for part in PARTS:
        record = obj.get(part)
        if record is None:
            continue
        if not isinstance(record, ModuleRecord):
            raise Checkpoint2018Error(f"'{part}' is not a pickled module")
        for name, ref in record.tensors():
            state[f"{part}.{name}"] = _materialise(ref, data, f"{part}.{name}")
    for name in [k for k in state if k.endswith(".running_var")]:
        # PyTorch 0.3 batch norm has no counter of updates; it is not used with a fixed momentum
        state.setdefault(name[: -len("running_var")] + "num_batches_tracked", torch.tensor(0))
    return state


def _config(obj, opt, state):
    """The SVGConfig fields from the modules' classes, opt and (for old files) the weights' layer counts."""
    learned_prior = obj.get("prior") is not None
    model, width = _backbone_of(obj["encoder"])
    if _backbone_of(obj["decoder"]) != (model, width):
        raise Checkpoint2018Error(f"the encoder is {model}_{width} but the decoder is "
                                  f"{obj['decoder'].qualified_name}")
    if opt.get("model", model) != model or _whole_number(opt, "image_width", width) != width:
        raise Checkpoint2018Error(f"opt says {opt.get('model')} at {opt.get('image_width')}x"
                                  f"{opt.get('image_width')}, but the modules are {model}_{width}")
    if not all(k in opt for k in ("g_dim", "z_dim", "rnn_size")):
        raise Checkpoint2018Error("'opt' lacks g_dim, z_dim or rnn_size")

    def layers(name, part):  # older 2018 commits had one --rnn_layers for every LSTM
        key = name if name in opt else "rnn_layers"
        return _whole_number(opt, key) if opt.get(key) is not None else _count_layers(state, part)

    return {
        "model": model, "image_width": width, "channels": _whole_number(opt, "channels", 1),
        "g_dim": _whole_number(opt, "g_dim"), "z_dim": _whole_number(opt, "z_dim"),
        "rnn_size": _whole_number(opt, "rnn_size"),
        "predictor_rnn_layers": layers("predictor_rnn_layers", "frame_predictor"),
        "posterior_rnn_layers": layers("posterior_rnn_layers", "posterior"),
        "prior_rnn_layers": layers("prior_rnn_layers", "prior") if learned_prior else 0,
        "learned_prior": learned_prior, "last_frame_skip": bool(opt.get("last_frame_skip", False)),
        "skip_from_last_conditioning": False,
    }


def _args(opt, config):
    """The run's options as plain values (the optimizer class becomes its name), with the layer counts used."""
    args = {k: (str(v) if isinstance(v, OptimizerName) else v) for k, v in opt.items()
            if isinstance(v, (str, int, float, bool)) or v is None}
    args.update({k: v for k, v in config.items() if k in ("predictor_rnn_layers", "posterior_rnn_layers")})
    if config["learned_prior"]:
        args["prior_rnn_layers"] = config["prior_rnn_layers"]
    args.setdefault("dataset", "smmnist")
    return args