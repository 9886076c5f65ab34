"""Convert official StyleGAN2-ADA checkpoints into a gantl safetensors checkpoint.

usage: python3 tools/convert_official.py IN.pkl|IN.pt OUT.safetensors [options]

Inputs
  (a) An official snapshot `network-snapshot-*.pkl` (NVlabs/stylegan2-ada-pytorch, training_loop.py):
      a pickled dict {G, D, G_ema, augment_pipe, training_set_kwargs} whose networks are
      `torch_utils.persistence` objects. It is read WITHOUT the official source: a restricted
      pickle.Unpickler turns each persistent object (torch_utils.persistence._reconstruct_persistent_obj)
      and any plain torch.nn module into a plain record; only a whitelist of globals (tensor/storage
      rebuilders, OrderedDict, dnnlib EasyDict, numpy scalars) is accepted, so no code from the file
      is run. Each network's constructor kwargs are its recorded init_kwargs; its tensors are its
      parameters and persistent buffers in state_dict order. augment_pipe is ignored (the official
      --resume does not copy it either).
  (b) A `torch.save` file of state dicts, such as the paper's released ImageNet checkpoints
      `imagenet-{128,256,512}-state.pt` (yandex-research/gan-transfer). The gan-transfer repository
      does not contain the code that wrote them; its README calls them "compatible with the official
      StyleGAN2-ADA repository" and third-party loaders index them with ["G"] and ["D"]. Accepted
      layouts: a dict whose entries G / D / G_ema (also g, generator, netG, d, discriminator, netD,
      g_ema, generator_ema, Gs) are state dicts (name -> tensor) or persistent modules; a flat dict
      with `G.` / `D.` / `G_ema.` prefixed names; or a single G or D state dict. A `module.` prefix
      (DataParallel) is stripped. Read (zip or legacy torch.save format) by this script's own reader
      through the same restricted unpickler, not by torch.load.
      State dicts carry no kwargs, so they are inferred from tensor shapes: z_dim, w_dim, c_dim,
      img_resolution, img_channels, mapping num_layers / embed_features / layer_features,
      channel_base / channel_max (smallest consistent standard value, 32768 and 16384 first),
      architectures, mbstd_num_channels, cmap_dim, use_noise. NOT recoverable from shapes, taken from
      flags whose defaults are train.py's defaults: --conv-clamp (256), --num-fp16-res (4),
      --mbstd-group-size (4; the paper256/512 configs use 8), and lr multipliers / activations /
      resample filter (official defaults assumed). --g-kwargs / --d-kwargs give the full kwargs as
      JSON instead. Every kwargs set is checked by building the reference network (tools/sg2_ref.py)
      and comparing all tensor names and shapes.
  A missing G_ema is filled with a copy of G (and vice versa), noted on stderr and in gantl.source.

Output (safetensors): tensors `G.<official state_dict name>`, `D.<...>`, `G_ema.<...>` (F32), e.g.
`G_ema.synthesis.b16.conv0.affine.weight`, `D.b4.out.bias`; __metadata__: `gantl.G` and `gantl.D` =
JSON of the official constructor kwargs (G_ema shares gantl.G), `gantl.source` = JSON notes
{file, format, inferred, filled}, and `gantl.training_set_kwargs` when the snapshot has it.
"""
import argparse
import collections
import copy
import copyreg
import io
import json
import os
import pickle
import sys
import zipfile

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_io  # noqa: E402
import sg2_ref  # noqa: E402


class ConvertError(Exception):
    pass

# ------------------------------------------------------------------------------------------------
# Restricted unpickling.


class PersistentRecord:
    """What torch_utils.persistence._reconstruct_persistent_obj(meta) becomes: meta holds type,
    version, module_src, class_name and state (the module's __dict__: _parameters, _buffers,
    _modules, _init_args, _init_kwargs, ...)."""

    def __init__(self, meta):
        if not isinstance(meta, dict) or 'state' not in meta or 'class_name' not in meta:
            raise ConvertError('malformed persistent object in pickle (no class_name/state)')
        if meta.get('type', 'class') != 'class':
            raise ConvertError(f"unsupported persistent object type {meta.get('type')!r}")
        self.meta = meta
        self.class_name = meta['class_name']
        self.state = dict(meta['state'] or {})

    def __repr__(self):
        return f'<persistent {self.class_name}>'


class ModuleRecord:
    """A plain torch.nn module (or other whitelisted class) rebuilt as a bare attribute record."""
    source = '?'
    state = {}

    def __setstate__(self, state):
        self.state = dict(state or {})

    @property
    def class_name(self):
        return self.source.rsplit('.', 1)[-1]


class EasyDict(dict):
    """Stand-in for dnnlib.util.EasyDict."""

    def __setstate__(self, state):
        if state:
            self.update(state)


def _reconstruct_persistent_obj(meta):
    return PersistentRecord(meta)


def _record_class(module, name):
    return type(name, (ModuleRecord,), {'source': f'{module}.{name}'})


# Tensors are rebuilt here, not by torch.load (whose pickle_module argument Debian's torch 1.13
# ignores): storages are plain 1-D tensors and the rebuild functions only take views of them.
_STORAGE_DTYPES = {
    'FloatStorage': torch.float32, 'DoubleStorage': torch.float64, 'HalfStorage': torch.float16,
    'BFloat16Storage': torch.bfloat16, 'LongStorage': torch.int64, 'IntStorage': torch.int32,
    'ShortStorage': torch.int16, 'CharStorage': torch.int8, 'ByteStorage': torch.uint8, 'BoolStorage': torch.bool,
}


class _StorageType:
    def __init__(self, name):
        self.name, self.dtype = name, _STORAGE_DTYPES[name]


def _rebuild_tensor(storage, offset, size, stride, *unused):
    if not isinstance(storage, torch.Tensor) or storage.ndim != 1:
        raise ConvertError('malformed tensor record in pickle')
    return torch.as_strided(storage, tuple(size), tuple(stride), int(offset))


def _rebuild_parameter(data, *unused):
    return data


def _rebuild_from_type(func, new_type, args, *unused):
    return func(*args)


class _Unused:
    """Placeholder for torch.Tensor / torch.nn.Parameter type arguments."""


_ALLOWED = {
    ('torch._utils', '_rebuild_tensor'): _rebuild_tensor,
    ('torch._utils', '_rebuild_tensor_v2'): _rebuild_tensor,
    ('torch._utils', '_rebuild_parameter'): _rebuild_parameter,
    ('torch._utils', '_rebuild_parameter_with_state'): _rebuild_parameter,
    ('torch._tensor', '_rebuild_from_type'): _rebuild_from_type,
    ('torch._tensor', '_rebuild_from_type_v2'): _rebuild_from_type,
    ('torch', 'Tensor'): _Unused, ('torch.nn.parameter', 'Parameter'): _Unused,
    ('torch', 'Size'): tuple,
    ('torch_utils.persistence', '_reconstruct_persistent_obj'): _reconstruct_persistent_obj,
    ('dnnlib.util', 'EasyDict'): EasyDict, ('dnnlib', 'EasyDict'): EasyDict,
    ('collections', 'OrderedDict'): collections.OrderedDict,
    ('copyreg', '_reconstructor'): copyreg._reconstructor, ('copy_reg', '_reconstructor'): copyreg._reconstructor,
    **{(m, n): getattr(__import__('builtins'), n) for m in ['builtins', '__builtin__']
       for n in ['object', 'set', 'frozenset', 'slice', 'complex']},
    ('_codecs', 'encode'): lambda text, encoding='utf-8': text.encode(encoding),  # protocol-2 bytes
    ('numpy', 'dtype'): np.dtype, ('numpy', 'ndarray'): np.ndarray,
    ('numpy.core.multiarray', 'scalar'): np.core.multiarray.scalar,
    ('numpy._core.multiarray', 'scalar'): np.core.multiarray.scalar,
    ('numpy.core.multiarray', '_reconstruct'): np.core.multiarray._reconstruct,
    ('numpy._core.multiarray', '_reconstruct'): np.core.multiarray._reconstruct,
}


class _RestrictedUnpickler(pickle.Unpickler):
    """Only whitelisted globals; persistent objects and torch.nn modules become records; storages
    are read by `storage_loader(pid)` (torch.save formats) or torch.storage._load_from_bytes."""

    def __init__(self, f, storage_loader=None):
        super().__init__(f, encoding='utf-8')
        self.storage_loader = storage_loader

    def persistent_load(self, pid):
        if self.storage_loader is None or not isinstance(pid, tuple) or not pid or pid[0] != 'storage':
            raise ConvertError(f'unexpected persistent id {str(pid)[:80]} in pickle')
        return self.storage_loader(pid)

    def find_class(self, module, name):
        if (module, name) in _ALLOWED:
            return _ALLOWED[module, name]
        if (module, name) == ('torch.storage', '_load_from_bytes'):
            return _load_from_bytes
        if module == 'torch' and name in _STORAGE_DTYPES:
            return _StorageType(name)
        if module.startswith('torch.nn.modules.') or module.startswith('torch_utils.'):
            return _record_class(module, name)
        if module.startswith('dnnlib.tflib'):
            raise ConvertError('this is a TensorFlow StyleGAN2 pickle; convert it to a PyTorch pickle with '
                               'the official legacy.py first')
        raise ConvertError(f'refusing to load global {module}.{name}: not part of an official StyleGAN2-ADA '
                           f'checkpoint (only tensors, persistent networks and plain data are accepted)')


def _storage_dtype(st):
    if not isinstance(st, _StorageType):
        raise ConvertError(f'unsupported storage type {st!r}')
    return st.dtype


_TORCH_LEGACY_MAGIC = 0x1950a86a20f9469cfc6c


def _read_legacy(f):
    """torch.save legacy (non-zip) stream: magic, protocol, sys_info pickles, the object pickle with
    ('storage', type, key, location, numel[, view]) persistent ids, the list of storage keys, then per
    key an int64 element count and the raw little-endian data."""
    magic = _RestrictedUnpickler(f).load()
    if magic != _TORCH_LEGACY_MAGIC:
        raise ConvertError('not a torch.save stream (bad magic number)')
    _RestrictedUnpickler(f).load()  # protocol version
    _RestrictedUnpickler(f).load()  # sys info
    storages = {}

    def loader(pid):
        _, stype, key, _location, numel = pid[:5]
        view = pid[5] if len(pid) > 5 else None
        if key not in storages:
            storages[key] = torch.empty(int(numel), dtype=_storage_dtype(stype))
        base = storages[key]
        if view is not None:
            _vkey, voff, vsize = view
            return base[voff:voff + vsize]
        return base

    obj = _RestrictedUnpickler(f, loader).load()
    keys = _RestrictedUnpickler(f).load()
    for key in keys:
        if key not in storages:
            raise ConvertError(f'storage {key} listed but never used')
        t = storages[key]
        (n,) = np.frombuffer(_read_exact(f, 8), dtype='<i8')
        if n != t.numel():
            raise ConvertError(f'storage {key}: {n} elements on disk, {t.numel()} expected')
        raw = _read_exact(f, int(n) * t.element_size())
        if n:
            t.copy_(torch.frombuffer(bytearray(raw), dtype=t.dtype))
    return obj


def _read_exact(f, n):
    b = f.read(n)
    if len(b) != n:
        raise ConvertError('file ends inside tensor data (truncated)')
    return b


def _load_from_bytes(b):
    return _read_legacy(io.BytesIO(b))


def _read_zip(path):
    """torch.save zip format: <dir>/data.pkl with ('storage', type, key, location, numel) persistent
    ids and the raw little-endian bytes of storage `key` in <dir>/data/<key>."""
    with zipfile.ZipFile(path) as z:
        names = z.namelist()
        pkl = [n for n in names if n.endswith('data.pkl') and n.count('/') == 1]
        if not pkl:
            raise ConvertError('zip file without <dir>/data.pkl: not a torch.save file')
        prefix = pkl[0][:-len('data.pkl')]
        if prefix + 'byteorder' in names and z.read(prefix + 'byteorder').strip() != b'little':
            raise ConvertError('big-endian torch.save files are not supported')

        def loader(pid):
            _, stype, key, _location, numel = pid[:5]
            dtype = _storage_dtype(stype)
            raw = z.read(f'{prefix}data/{key}')
            t = torch.frombuffer(bytearray(raw), dtype=dtype) if raw else torch.empty(0, dtype=dtype)
            if t.numel() != int(numel):
                raise ConvertError(f'storage {key}: {t.numel()} elements on disk, {numel} expected')
            return t

        with z.open(pkl[0]) as f:
            return _RestrictedUnpickler(io.BytesIO(f.read()), loader).load()


def load_any(path):
    """Returns (object, format) with format 'pickle' (a plain pickle such as an official snapshot) or
    'torch' (a torch.save file, zip or legacy)."""
    try:
        with open(path, 'rb') as f:
            head = f.read(4)
    except OSError as e:
        raise ConvertError(f'cannot open {path}: {e}') from None
    if not head:
        raise ConvertError(f'{path} is empty')
    try:
        if head == b'PK\x03\x04':
            return _read_zip(path), 'torch'
        if head[0] != 0x80:
            raise ConvertError(f'{path} is neither a pickle nor a torch.save file (starts with {head!r})')
        with open(path, 'rb') as f:
            obj = _RestrictedUnpickler(f).load()
            if isinstance(obj, int) and obj == _TORCH_LEGACY_MAGIC:
                f.seek(0)
                return _read_legacy(f), 'torch'
        return obj, 'pickle'
    except ConvertError as e:
        raise ConvertError(f'cannot read {path}: {e}') from None
    except (EOFError, pickle.UnpicklingError, RuntimeError, zipfile.BadZipFile, ValueError, KeyError,
            AttributeError, TypeError, IndexError, OverflowError, MemoryError, UnicodeDecodeError, OSError) as e:
        raise ConvertError(f'cannot read {path}: truncated or corrupt file ({type(e).__name__}: {e})') from None


# ------------------------------------------------------------------------------------------------
# Records -> (kwargs, state dict).


def _state_of(rec):
    return rec.state


def record_tensors(rec, prefix='', out=None):
    """Parameters and persistent buffers of a module record, in torch state_dict order."""
    out = collections.OrderedDict() if out is None else out
    st = _state_of(rec)
    if '_parameters' not in st or '_modules' not in st:
        raise ConvertError(f'{prefix or "network"} ({rec.class_name}) has no module state '
                           f'(_parameters/_modules missing)')
    skip = set(st.get('_non_persistent_buffers_set') or ())
    for name, t in list(st['_parameters'].items()) + [(k, v) for k, v in st.get('_buffers', {}).items()
                                                      if k not in skip]:
        if t is not None:
            if not isinstance(t, torch.Tensor):
                raise ConvertError(f'{prefix}{name}: expected a tensor, got {type(t).__name__}')
            out[prefix + name] = t
    for name, child in st['_modules'].items():
        if child is None:
            continue
        if not isinstance(child, (PersistentRecord, ModuleRecord)):
            raise ConvertError(f'{prefix}{name}: unexpected submodule object {type(child).__name__}')
        record_tensors(child, prefix + name + '.', out)
    return out


G_ARGS = ['z_dim', 'c_dim', 'w_dim', 'img_resolution', 'img_channels', 'mapping_kwargs', 'synthesis_kwargs']
D_ARGS = ['c_dim', 'img_resolution', 'img_channels', 'architecture', 'channel_base', 'channel_max', 'num_fp16_res',
          'conv_clamp', 'cmap_dim', 'block_kwargs', 'mapping_kwargs', 'epilogue_kwargs']


def _plain(v, where):
    """EasyDict/numpy -> JSON-able plain Python."""
    if isinstance(v, dict):
        return {str(k): _plain(x, where) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x, where) for x in v]
    if isinstance(v, np.generic):
        return v.item()
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    raise ConvertError(f'{where}: constructor argument of unsupported type {type(v).__name__}')


def record_kwargs(rec, kind):
    st = _state_of(rec)
    if '_init_kwargs' not in st:
        raise ConvertError(f'{kind}: persistent object carries no init_kwargs')
    kwargs = _plain(dict(st['_init_kwargs']), kind)
    args = list(st.get('_init_args') or ())
    names = G_ARGS if kind.startswith('G') else D_ARGS
    if len(args) > len(names):
        raise ConvertError(f'{kind}: too many positional init args ({len(args)})')
    for n, a in zip(names, args):
        kwargs[n] = _plain(a, kind)
    return kwargs

# ------------------------------------------------------------------------------------------------
# Kwargs inference from state dict shapes.


def _channels_params(ch, user_base=None, user_max=None):
    """ch: {res: channels}. Find (channel_base, channel_max) with min(base // res, max) == ch[res]."""
    maxes = [user_max] if user_max else list(dict.fromkeys([512, max(ch.values())]))
    bases = [user_base] if user_base else list(dict.fromkeys(
        [32768, 16384, 65536, 8192, 131072, 4096] + sorted(c * r for r, c in ch.items())))
    for cmax in maxes:
        for base in bases:
            if all(min(base // r, cmax) == c for r, c in ch.items()):
                return base, cmax
    raise ConvertError(f'no channel_base/channel_max reproduces the per-resolution channels {ch}')


def _count(sd, fmt):
    n = 0
    while fmt.format(n) in sd:
        n += 1
    return n


def _check_filter(sd, kind):
    ref = sg2_ref.setup_filter([1, 3, 3, 1])
    for k, v in sd.items():
        if k.endswith('resample_filter') and (v.shape != ref.shape or not torch.allclose(v.float(), ref)):
            raise ConvertError(f'{kind}.{k}: non-default resample filter; pass --{kind[0].lower()}-kwargs')


def infer_G_kwargs(sd, opt):
    try:
        _check_filter(sd, 'G')
        blocks = sorted({int(k.split('.')[1][1:]) for k in sd if k.startswith('synthesis.b')})
        R = max(blocks)
        w_dim = sd['synthesis.b4.conv1.affine.weight'].shape[1]
        nmap = _count(sd, 'mapping.fc{}.weight')
        c_dim = sd['mapping.embed.weight'].shape[1] if 'mapping.embed.weight' in sd else 0
        embed = sd['mapping.embed.weight'].shape[0] if c_dim else 0
        z_dim = sd['mapping.fc0.weight'].shape[1] - embed
        layer_features = sd['mapping.fc0.weight'].shape[0] if nmap > 1 else w_dim
        ch = {r: sd[f'synthesis.b{r}.conv1.weight'].shape[0] for r in blocks}
        img_channels = sd[f'synthesis.b{R}.torgb.weight'].shape[0]
        kernel = sd['synthesis.b4.conv1.weight'].shape[-1]
    except KeyError as e:
        raise ConvertError(f'G state dict lacks {e} needed to infer its kwargs') from None
    torgbs = [r for r in blocks if f'synthesis.b{r}.torgb.weight' in sd]
    arch = 'resnet' if any(k.endswith('.skip.weight') for k in sd) else 'skip' if len(torgbs) == len(blocks) else 'orig'
    base, cmax = _channels_params(ch, opt.channel_base, opt.channel_max)
    mapping = {'num_layers': nmap}
    if c_dim and embed != w_dim:
        mapping['embed_features'] = embed
    if layer_features != w_dim:
        mapping['layer_features'] = layer_features
    synthesis = {'channel_base': base, 'channel_max': cmax, 'num_fp16_res': opt.num_fp16_res,
                 'conv_clamp': opt.conv_clamp}
    if arch != 'skip':
        synthesis['architecture'] = arch
    if kernel != 3:
        synthesis['kernel_size'] = kernel
    if 'synthesis.b4.conv1.noise_strength' not in sd:
        synthesis['use_noise'] = False
    return {'z_dim': z_dim, 'w_dim': w_dim, 'mapping_kwargs': mapping, 'synthesis_kwargs': synthesis,
            'c_dim': c_dim, 'img_resolution': R, 'img_channels': img_channels}


def infer_D_kwargs(sd, opt):
    try:
        _check_filter(sd, 'D')
        blocks = sorted({int(k.split('.')[0][1:]) for k in sd if k.startswith('b') and not k.startswith('b4.')})
        R = max(blocks) if blocks else 4
        ch = {r: sd[f'b{r}.conv0.weight'].shape[0] for r in blocks}
        ch[4] = sd['b4.conv.weight'].shape[0]
        mbstd_ch = sd['b4.conv.weight'].shape[1] - ch[4]
        arch = 'resnet' if f'b{R}.skip.weight' in sd else 'skip' if 'b4.fromrgb.weight' in sd else 'orig'
        img_channels = sd[f'b{R}.fromrgb.weight'].shape[1] if blocks else sd['b4.fromrgb.weight'].shape[1]
        c_dim = sd['mapping.embed.weight'].shape[1] if 'mapping.embed.weight' in sd else 0
        cmap = sd['b4.out.weight'].shape[0] if c_dim else 0
        mapping = {}
        if c_dim:
            nmap = _count(sd, 'mapping.fc{}.weight')
            if nmap != 8:
                mapping['num_layers'] = nmap
            if sd['mapping.embed.weight'].shape[0] != cmap:
                mapping['embed_features'] = sd['mapping.embed.weight'].shape[0]
            if nmap > 1 and sd['mapping.fc0.weight'].shape[0] != cmap:
                mapping['layer_features'] = sd['mapping.fc0.weight'].shape[0]
    except KeyError as e:
        raise ConvertError(f'D state dict lacks {e} needed to infer its kwargs') from None
    base, cmax = _channels_params(ch, opt.channel_base, opt.channel_max)
    epilogue = {'mbstd_group_size': opt.mbstd_group_size}
    if mbstd_ch != 1:
        epilogue['mbstd_num_channels'] = mbstd_ch
    kw = {'block_kwargs': {}, 'mapping_kwargs': mapping, 'epilogue_kwargs': epilogue, 'channel_base': base,
          'channel_max': cmax, 'num_fp16_res': opt.num_fp16_res, 'conv_clamp': opt.conv_clamp}
    if arch != 'resnet':
        kw['architecture'] = arch
    if c_dim and cmap != ch[4]:
        kw['cmap_dim'] = cmap
    kw.update(c_dim=c_dim, img_resolution=R, img_channels=img_channels)
    return kw

# ------------------------------------------------------------------------------------------------
# Validation against the reference architecture.


def build_reference(kind, kwargs):
    cls = sg2_ref.Generator if kind.startswith('G') else sg2_ref.Discriminator
    try:
        with torch.random.fork_rng():
            return cls(**copy.deepcopy(kwargs))
    except (TypeError, AssertionError, ValueError, KeyError, ZeroDivisionError, RuntimeError) as e:
        raise ConvertError(f'{kind}: kwargs {json.dumps(kwargs)} are not valid for the StyleGAN2-ADA '
                           f'{cls.__name__} ({type(e).__name__}: {e}); a different network family?') from None


def validate(kind, kwargs, sd):
    ref = build_reference(kind, kwargs).state_dict()
    missing = [k for k in ref if k not in sd]
    extra = [k for k in sd if k not in ref]
    bad = [f'{k}: file {tuple(sd[k].shape)} vs expected {tuple(ref[k].shape)}' for k in ref
           if k in sd and tuple(sd[k].shape) != tuple(ref[k].shape)]
    if missing or extra or bad:
        msg = [f'{kind} does not match the StyleGAN2-ADA architecture for kwargs {json.dumps(kwargs)}:']
        if missing:
            msg.append(f'  missing {len(missing)}: ' + ', '.join(missing[:8]) + (' ...' if len(missing) > 8 else ''))
        if extra:
            msg.append(f'  unexpected {len(extra)}: ' + ', '.join(extra[:8]) + (' ...' if len(extra) > 8 else ''))
        if bad:
            msg.append(f'  shape mismatch {len(bad)}: ' + '; '.join(bad[:4]))
        raise ConvertError('\n'.join(msg))
    out = collections.OrderedDict()
    for k, t in sd.items():  # the file's order (the official state_dict order of the saved network)
        if not (t.is_floating_point()):
            raise ConvertError(f'{kind}.{k}: non-floating tensor dtype {t.dtype}')
        out[k] = t.detach().to(torch.float32).contiguous()
    return out

# ------------------------------------------------------------------------------------------------
# Top level.

ALIASES = {'G': ['G', 'g', 'generator', 'netG', 'gen'],
           'D': ['D', 'd', 'discriminator', 'netD', 'disc'],
           'G_ema': ['G_ema', 'g_ema', 'generator_ema', 'Gs', 'G_running', 'gen_ema']}


def _is_state_dict(v):
    return isinstance(v, dict) and len(v) > 0 and all(isinstance(k, str) and isinstance(t, torch.Tensor)
                                                      for k, t in v.items())


def _strip_module(sd):
    if sd and all(k.startswith('module.') for k in sd):
        return collections.OrderedDict((k[len('module.'):], v) for k, v in sd.items())
    return sd


def _classify(sd):
    if any(k.startswith('synthesis.') for k in sd):
        return 'G'
    if 'b4.out.weight' in sd:
        return 'D'
    raise ConvertError('state dict is neither a StyleGAN2-ADA G (synthesis.*) nor D (b4.out.weight); '
                       f'first names: {list(sd)[:5]}')


def collect(obj, opt, fmt):
    """-> dict kind -> (kwargs, state dict, inferred?) for the networks present."""
    nets = {}
    if isinstance(obj, (PersistentRecord, ModuleRecord)):
        obj = {'?': obj}
    if not isinstance(obj, dict):
        raise ConvertError(f'unsupported content: a {type(obj).__name__}, expected a dict of networks')
    entries = {}
    if _is_state_dict(obj):  # flat dict: prefixed names or a single network
        sd = _strip_module(obj)
        pre = {k.split('.', 1)[0] for k in sd}
        if pre <= set(ALIASES):
            for p in pre:
                entries[p] = collections.OrderedDict((k[len(p) + 1:], v) for k, v in sd.items() if k.startswith(p + '.'))
        else:
            entries[_classify(sd)] = sd
    else:
        for kind, names in ALIASES.items():
            for n in names:
                if n in obj and obj[n] is not None:
                    entries[kind] = obj[n]
                    break
        if not entries and len(obj) == 1:
            (v,) = obj.values()
            if isinstance(v, PersistentRecord):
                entries[{'Generator': 'G', 'Discriminator': 'D'}.get(v.class_name, '?')] = v
            elif _is_state_dict(v):
                entries[_classify(_strip_module(v))] = v
        if not entries:
            raise ConvertError(f'no networks found; top-level keys: {list(obj)[:10]} (expected G, D, G_ema)')
    for kind, v in entries.items():
        if isinstance(v, PersistentRecord):
            want = 'Generator' if kind.startswith('G') else 'Discriminator'
            if v.class_name != want:
                raise ConvertError(f'{kind} is a {v.class_name}, expected {want}')
            kwargs = record_kwargs(v, kind)
            if (opt.g_kwargs if kind.startswith('G') else opt.d_kwargs):
                print(f'note: ignoring --{kind[0].lower()}-kwargs, the pickle records them', file=sys.stderr)
            nets[kind] = (kwargs, record_tensors(v), False)
        elif isinstance(v, ModuleRecord):
            raise ConvertError(f'{kind} is a plain {v.source} object, not a StyleGAN2-ADA network')
        elif _is_state_dict(v):
            sd = _strip_module(collections.OrderedDict(v))
            if _classify(sd) != kind[0]:
                raise ConvertError(f'entry {kind} holds a {_classify(sd)} state dict')
            given = opt.g_kwargs if kind.startswith('G') else opt.d_kwargs
            if given:
                kwargs = json.loads(given)
            else:
                kwargs = infer_G_kwargs(sd, opt) if kind.startswith('G') else infer_D_kwargs(sd, opt)
            nets[kind] = (kwargs, sd, not given)
        else:
            raise ConvertError(f'{kind}: unsupported entry of type {type(v).__name__}')
    return nets


def convert(in_path, out_path, opt=None):
    """Convert; returns (tensors, metadata) as written. Raises ConvertError."""
    opt = opt or parse_args([in_path, out_path or '-'])
    obj, fmt = load_any(in_path)
    nets = collect(obj, opt, fmt)
    filled = []
    if 'G' not in nets and 'G_ema' not in nets:
        raise ConvertError(f'{in_path}: no generator found')
    if 'D' not in nets:
        raise ConvertError(f'{in_path}: no discriminator found (gantl checkpoints need G, D and G_ema)')
    if 'G_ema' not in nets:
        nets['G_ema'] = nets['G']
        filled.append('G_ema<-G')
    if 'G' not in nets:
        nets['G'] = nets['G_ema']
        filled.append('G<-G_ema')
    for f in filled:
        print(f'note: {in_path} has no {f.split("<-")[0]}; filled with a copy of {f.split("<-")[1]}', file=sys.stderr)
    if nets['G'][0] != nets['G_ema'][0]:
        raise ConvertError(f'G and G_ema constructor kwargs differ: {nets["G"][0]} vs {nets["G_ema"][0]}')
    tensors = collections.OrderedDict()
    for kind in ['G', 'D', 'G_ema']:
        kwargs, sd, _ = nets[kind]
        for k, t in validate(kind, kwargs, sd).items():
            tensors[f'{kind}.{k}'] = t.numpy()
    meta = {'gantl.G': json.dumps(nets['G'][0]), 'gantl.D': json.dumps(nets['D'][0]),
            'gantl.source': json.dumps({'file': os.path.basename(in_path),
                                        'format': 'stylegan2-ada-snapshot-pkl' if fmt == 'pickle' else 'torch-save',
                                        'inferred': sorted(k for k, v in nets.items() if v[2]),
                                        'filled': filled})}
    if isinstance(obj, dict) and isinstance(obj.get('training_set_kwargs'), dict):
        try:
            meta['gantl.training_set_kwargs'] = json.dumps(_plain(obj['training_set_kwargs'], 'training_set_kwargs'))
        except ConvertError:
            pass
    if out_path is not None:
        safetensors_io.save(out_path, tensors, meta)
    return tensors, meta


def _clamp_arg(s):
    return None if s.lower() in ['none', 'null', 'off'] else float(s) if '.' in s or 'e' in s.lower() else int(s)


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0], epilog='See the module docstring for details.')
    p.add_argument('input', help='network-snapshot-*.pkl or *.pt (torch.save of state dicts)')
    p.add_argument('output', help='output .safetensors')
    g = p.add_argument_group('kwargs that state dicts do not record (ignored for .pkl snapshots)')
    g.add_argument('--conv-clamp', type=_clamp_arg, default=256, help="default 256 (train.py); 'none' = off")
    g.add_argument('--num-fp16-res', type=int, default=4, help='default 4 (train.py); no effect on the maths')
    g.add_argument('--mbstd-group-size', type=_clamp_arg, default=4, help="default 4; 'none' = whole batch")
    g.add_argument('--channel-base', type=int, default=None, help='override the inferred channel_base')
    g.add_argument('--channel-max', type=int, default=None, help='override the inferred channel_max')
    g.add_argument('--g-kwargs', default=None, help='full G kwargs as JSON instead of inferring')
    g.add_argument('--d-kwargs', default=None, help='full D kwargs as JSON instead of inferring')
    return p.parse_args(argv)


def main(argv=None):
    opt = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        tensors, meta = convert(opt.input, opt.output, opt)
    except ConvertError as e:
        print(f'convert_official: error: {e}', file=sys.stderr)
        return 1
    n = sum(v.size for v in tensors.values())
    print(f'wrote {opt.output}: {len(tensors)} tensors, {n} floats; G {meta["gantl.G"]}; D {meta["gantl.D"]}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
