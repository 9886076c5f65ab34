"""Tests for tools/convert_official.py. Plain script: python3 tools/test_convert.py
Last line of output: 'N passed, M failed'; exit status non-zero on any failure.

It builds, inside the test, a pickle with the structure of an official `network-snapshot-*.pkl`
(dict {G, D, G_ema, augment_pipe, training_set_kwargs}; every module pickled as
torch_utils.persistence._reconstruct_persistent_obj(meta) with meta = {type, version, module_src,
class_name, state=module __dict__ + _init_args/_init_kwargs}, kwargs as dnnlib.util.EasyDict), using
fake `torch_utils.persistence` / `dnnlib.util` modules registered only in this process and the
reference networks of tools/sg2_ref.py as the state. It also writes torch.save state-dict files
(zip and legacy formats, several layouts), converts everything, and checks names, order, shapes,
dtype, values and metadata, plus clear failures on truncated, corrupt, hostile and incomplete inputs.
"""
import collections
import copy
import json
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import types

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import convert_official as co  # noqa: E402
import safetensors_io  # noqa: E402
import sg2_ref  # noqa: E402

PASSED, FAILED = [0], [0]


def check(name, cond, detail=''):
    if cond:
        PASSED[0] += 1
    else:
        FAILED[0] += 1
        print(f'FAIL {name} {detail}'.rstrip())


def expect_error(name, fn, *needles):
    try:
        fn()
    except co.ConvertError as e:
        msg = str(e)
        check(name, all(n in msg for n in needles), f'message {msg!r} lacks {needles}')
        return
    except Exception as e:  # noqa: BLE001
        check(name, False, f'raised {type(e).__name__}: {e} instead of ConvertError')
        return
    check(name, False, 'no error raised')

# ------------------------------------------------------------------------------------------------
# Fake official modules (only so that pickle can name the globals an official snapshot names).


def _install_fake_modules():
    tu, pers = types.ModuleType('torch_utils'), types.ModuleType('torch_utils.persistence')
    dn, du = types.ModuleType('dnnlib'), types.ModuleType('dnnlib.util')

    def _reconstruct_persistent_obj(meta):
        raise RuntimeError('the converter must never call the real reconstruction')
    _reconstruct_persistent_obj.__module__ = 'torch_utils.persistence'
    _reconstruct_persistent_obj.__qualname__ = '_reconstruct_persistent_obj'

    class EasyDict(dict):
        pass
    EasyDict.__module__, EasyDict.__qualname__ = 'dnnlib.util', 'EasyDict'
    pers._reconstruct_persistent_obj = _reconstruct_persistent_obj
    tu.persistence = pers
    du.EasyDict = EasyDict
    dn.util, dn.EasyDict = du, EasyDict
    sys.modules.update({'torch_utils': tu, 'torch_utils.persistence': pers, 'dnnlib': dn, 'dnnlib.util': du})
    return pers, EasyDict


PERS, EasyDict = _install_fake_modules()
FAKE_SRC = '# stands for the training/networks.py source that official snapshots embed\n'


def ed(d):
    """dict -> nested EasyDict, as train.py builds the kwargs."""
    return EasyDict({k: ed(v) if isinstance(v, dict) else v for k, v in d.items()})


class Persistent:
    """Pickles like an official persistent object."""

    def __init__(self, module, init_kwargs=None, class_name=None):
        self.module, self.init_kwargs = module, init_kwargs if init_kwargs is not None else {}
        self.class_name = class_name or type(module).__name__

    def __reduce__(self):
        state = dict(self.module.__dict__)
        state['_modules'] = collections.OrderedDict(
            (k, Persistent(v) if v is not None else None) for k, v in state['_modules'].items())
        state['_init_args'] = ()
        state['_init_kwargs'] = self.init_kwargs
        meta = dict(type='class', version=6, module_src=FAKE_SRC, class_name=self.class_name, state=state)
        return (PERS._reconstruct_persistent_obj, (meta,), None)


class AugmentPipe(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer('p', torch.tensor(0.25))
        self.register_buffer('Hz_geom', torch.randn(12))

# ------------------------------------------------------------------------------------------------
# Networks.


G_KW = dict(z_dim=32, w_dim=32, mapping_kwargs=dict(num_layers=2),
            synthesis_kwargs=dict(channel_base=256, channel_max=32, num_fp16_res=4, conv_clamp=256),
            c_dim=0, img_resolution=16, img_channels=3)
D_KW = dict(block_kwargs={}, mapping_kwargs={}, epilogue_kwargs=dict(mbstd_group_size=4), channel_base=256,
            channel_max=32, num_fp16_res=4, conv_clamp=256, c_dim=0, img_resolution=16, img_channels=3)
# conditional, non-default architectures, Freeze-D (frozen layers are buffers), custom cmap_dim
GC_KW = dict(z_dim=16, w_dim=24, mapping_kwargs=dict(num_layers=3, embed_features=8),
             synthesis_kwargs=dict(channel_base=512, channel_max=32, num_fp16_res=0, conv_clamp=None,
                                   architecture='resnet'),
             c_dim=5, img_resolution=32, img_channels=1)
DC_KW = dict(block_kwargs=dict(freeze_layers=2), mapping_kwargs=dict(num_layers=2),
             epilogue_kwargs=dict(mbstd_group_size=2, mbstd_num_channels=2), channel_base=512, channel_max=32,
             num_fp16_res=0, conv_clamp=None, architecture='orig', cmap_dim=12, c_dim=5, img_resolution=32,
             img_channels=1)


def make_nets(gkw, dkw, seed):
    torch.manual_seed(seed)
    G = sg2_ref.Generator(**copy.deepcopy(gkw))
    D = sg2_ref.Discriminator(**copy.deepcopy(dkw))
    with torch.no_grad():
        for k, t in list(G.state_dict().items()) + list(D.state_dict().items()):
            if not k.endswith('resample_filter'):
                t.add_(torch.randn(t.shape) * 0.1)
    G_ema = copy.deepcopy(G)  # EMA: own parameters, buffers copied from G
    with torch.no_grad():
        for t in G_ema.parameters():
            t.mul_(0.9)
    return G, D, G_ema


def write_snapshot(path, gkw, dkw, nets):
    G, D, G_ema = nets
    snap = dict(training_set_kwargs=dict(ed(dict(class_name='training.dataset.ImageFolderDataset', path='x.zip',
                                                 use_labels=False, max_size=10, xflip=False, resolution=16))),
                G=Persistent(G, ed(gkw)), D=Persistent(D, ed(dkw)), G_ema=Persistent(G_ema, ed(gkw)),
                augment_pipe=Persistent(AugmentPipe(), ed(dict(xflip=1))))
    with open(path, 'wb') as f:
        pickle.dump(snap, f)


def expected(nets):
    out = collections.OrderedDict()
    for prefix, net in zip(['G', 'D', 'G_ema'], nets):
        for k, v in net.state_dict().items():
            out[f'{prefix}.{k}'] = v.numpy()
    return out


def check_checkpoint(tag, path, nets, gkw, dkw):
    t, meta = safetensors_io.load(path)
    exp = expected(nets)
    check(f'{tag}: tensor names and order', list(t) == list(exp),
          f'{[k for k in t if k not in exp][:3]} / {[k for k in exp if k not in t][:3]}')
    check(f'{tag}: all F32', all(v.dtype == np.float32 for v in t.values()))
    check(f'{tag}: shapes', all(k in t and t[k].shape == v.shape for k, v in exp.items()))
    check(f'{tag}: values', all(k in t and np.array_equal(t[k], v) for k, v in exp.items()))
    check(f'{tag}: gantl.G', json.loads(meta.get('gantl.G', 'null')) == json.loads(json.dumps(gkw)),
          meta.get('gantl.G'))
    check(f'{tag}: gantl.D', json.loads(meta.get('gantl.D', 'null')) == json.loads(json.dumps(dkw)),
          meta.get('gantl.D'))
    # the checkpoint rebuilds working reference networks
    G = sg2_ref.Generator(**json.loads(meta['gantl.G'])).eval()
    G.load_state_dict({k[6:]: torch.from_numpy(v) for k, v in t.items() if k.startswith('G_ema.')})
    D = sg2_ref.Discriminator(**json.loads(meta['gantl.D']))
    D.load_state_dict({k[2:]: torch.from_numpy(v) for k, v in t.items() if k.startswith('D.')})
    z = torch.randn(4, gkw['z_dim'])
    c = torch.randn(4, gkw['c_dim'])
    img = G(z, c, noise_mode='const')
    check(f'{tag}: G_ema output reproduced', torch.equal(img, nets[2].eval()(z, c, noise_mode='const')))
    check(f'{tag}: D output reproduced', torch.equal(D(img, c), nets[1](img, c)))
    return t, meta


def run_cli(*args):
    return subprocess.run([sys.executable, os.path.join(HERE, 'convert_official.py'), *args],
                          capture_output=True, text=True)


def main():
    tmp = tempfile.mkdtemp(prefix='gantl_test_convert_')
    P = lambda name: os.path.join(tmp, name)  # noqa: E731

    # 1. Official-style snapshot, converted by the CLI in a fresh process (no fake modules there).
    nets = make_nets(G_KW, D_KW, 1)
    write_snapshot(P('snap.pkl'), G_KW, D_KW, nets)
    r = run_cli(P('snap.pkl'), P('snap.safetensors'))
    check('cli pkl: exit 0', r.returncode == 0, r.stderr)
    if r.returncode == 0:
        t, meta = check_checkpoint('cli pkl', P('snap.safetensors'), nets, G_KW, D_KW)
        src = json.loads(meta.get('gantl.source', '{}'))
        check('cli pkl: source notes', src.get('format') == 'stylegan2-ada-snapshot-pkl' and src.get('filled') == []
              and src.get('inferred') == [], meta.get('gantl.source'))
        check('cli pkl: training_set_kwargs kept', 'gantl.training_set_kwargs' in meta)
        check('cli pkl: example names', 'G_ema.synthesis.b16.conv0.affine.weight' in t and 'D.b4.out.bias' in t
              and 'G.mapping.w_avg' in t and 'G.synthesis.b8.conv1.noise_const' in t)
        check('cli pkl: 0-d noise_strength stays 0-d', t['G.synthesis.b4.conv1.noise_strength'].shape == ())

    # 2. Conditional / resnet G / orig D with Freeze-D and cmap_dim, in process.
    cnets = make_nets(GC_KW, DC_KW, 2)
    write_snapshot(P('snapc.pkl'), GC_KW, DC_KW, cnets)
    co.convert(P('snapc.pkl'), P('snapc.safetensors'))
    check_checkpoint('cond pkl', P('snapc.safetensors'), cnets, GC_KW, DC_KW)

    # 3. state.pt (zip) with G, D, G_ema state dicts; kwargs inferred with default flags.
    sds = {k: n.state_dict() for k, n in zip(['G', 'D', 'G_ema'], nets)}
    torch.save(sds, P('imagenet-16-state.pt'))
    r = run_cli(P('imagenet-16-state.pt'), P('state.safetensors'))
    check('cli state.pt: exit 0', r.returncode == 0, r.stderr)
    if r.returncode == 0:
        _, meta = check_checkpoint('cli state.pt', P('state.safetensors'), nets, G_KW, D_KW)
        check('cli state.pt: inferred noted', json.loads(meta['gantl.source'])['inferred'] == ['D', 'G', 'G_ema'])

    # 4. Legacy (non-zip) torch.save, conditional nets, flags for what shapes cannot tell.
    torch.save({k: n.state_dict() for k, n in zip(['G', 'D', 'G_ema'], cnets)}, P('legacy.pt'),
               _use_new_zipfile_serialization=False)
    opt = co.parse_args([P('legacy.pt'), P('legacy.safetensors'), '--conv-clamp', 'none', '--num-fp16-res', '0',
                         '--mbstd-group-size', '2'])
    co.convert(opt.input, opt.output, opt)
    dkw = copy.deepcopy(DC_KW)
    dkw['block_kwargs'] = {}  # Freeze-D is not visible in a state dict (and does not change names)
    _, meta = safetensors_io.load(P('legacy.safetensors'))
    check('legacy state.pt: inferred G kwargs', json.loads(meta['gantl.G']) == GC_KW, meta['gantl.G'])
    d_inf = json.loads(meta['gantl.D'])
    check('legacy state.pt: inferred D kwargs', d_inf == dkw, meta['gantl.D'])
    check_checkpoint('legacy state.pt', P('legacy.safetensors'), cnets, GC_KW, d_inf)

    # 5. Only G and D, DataParallel 'module.' prefix, other key spellings: G_ema filled from G.
    torch.save({'generator': {'module.' + k: v for k, v in nets[0].state_dict().items()},
                'discriminator': nets[1].state_dict()}, P('gd.pt'))
    r = run_cli(P('gd.pt'), P('gd.safetensors'))
    check('G+D only: exit 0', r.returncode == 0, r.stderr)
    check('G+D only: note on stderr', 'filled with a copy of G' in r.stderr, r.stderr)
    if r.returncode == 0:
        check_checkpoint('G+D only', P('gd.safetensors'), (nets[0], nets[1], nets[0]), G_KW, D_KW)

    # 6. Flat dict with G./D./G_ema. prefixes, and explicit --g-kwargs.
    flat = collections.OrderedDict((k, torch.from_numpy(v.copy())) for k, v in expected(nets).items())
    torch.save(flat, P('flat.pt'))
    opt = co.parse_args([P('flat.pt'), P('flat.safetensors'), '--g-kwargs', json.dumps(G_KW)])
    co.convert(opt.input, opt.output, opt)
    _, meta = check_checkpoint('flat prefixed', P('flat.safetensors'), nets, G_KW, D_KW)
    check('flat prefixed: --g-kwargs not marked inferred', json.loads(meta['gantl.source'])['inferred'] == ['D'])

    # 7. Failures.
    raw = open(P('snap.pkl'), 'rb').read()
    open(P('trunc.pkl'), 'wb').write(raw[:len(raw) // 2])
    r = run_cli(P('trunc.pkl'), P('trunc.safetensors'))
    check('truncated pkl: non-zero exit', r.returncode != 0)
    check('truncated pkl: clear message', 'truncated or corrupt' in r.stderr and 'Traceback' not in r.stderr,
          r.stderr)
    check('truncated pkl: no output written', not os.path.exists(P('trunc.safetensors')))
    raw = open(P('imagenet-16-state.pt'), 'rb').read()
    open(P('trunc.pt'), 'wb').write(raw[:len(raw) * 2 // 3])
    expect_error('truncated zip .pt', lambda: co.convert(P('trunc.pt'), P('x.safetensors')), 'truncated or corrupt')
    raw = open(P('legacy.pt'), 'rb').read()
    open(P('trunc_legacy.pt'), 'wb').write(raw[:len(raw) - 1000])
    expect_error('truncated legacy .pt', lambda: co.convert(P('trunc_legacy.pt'), P('x.safetensors')), 'truncated')
    zipped = bytearray(open(P('imagenet-16-state.pt'), 'rb').read())
    mid = len(zipped) // 2
    zipped[mid:mid + 64] = b'\xff' * 64
    open(P('corrupt.pt'), 'wb').write(bytes(zipped))
    expect_error('corrupt zip .pt', lambda: co.convert(P('corrupt.pt'), P('x.safetensors')), 'cannot read')
    open(P('garbage.pkl'), 'wb').write(b'hello, not a checkpoint')
    expect_error('garbage file', lambda: co.convert(P('garbage.pkl'), P('x.safetensors')), 'neither a pickle')
    open(P('empty.pkl'), 'wb').close()
    expect_error('empty file', lambda: co.convert(P('empty.pkl'), P('x.safetensors')), 'empty')
    marker = P('pwned')

    class Evil:
        def __reduce__(self):
            return (os.system, (f'touch {marker}',))
    with open(P('evil.pkl'), 'wb') as f:
        pickle.dump({'G': Evil()}, f)
    expect_error('hostile global refused', lambda: co.convert(P('evil.pkl'), P('x.safetensors')),
                 'refusing to load global')
    check('hostile global not executed', not os.path.exists(marker))
    with open(P('nonet.pkl'), 'wb') as f:
        pickle.dump({'training_set_kwargs': {}, 'foo': 1}, f)
    expect_error('no networks', lambda: co.convert(P('nonet.pkl'), P('x.safetensors')), 'no networks found')
    sd = copy.copy(sds)
    sd['D'] = collections.OrderedDict((k, v) for k, v in sds['D'].items() if k != 'b8.conv0.bias')
    torch.save(sd, P('missing.pt'))
    expect_error('missing tensor named', lambda: co.convert(P('missing.pt'), P('x.safetensors')), 'b8.conv0.bias')
    opt = co.parse_args([P('imagenet-16-state.pt'), P('x.safetensors'), '--g-kwargs',
                         json.dumps(dict(G_KW, w_dim=48))])
    expect_error('wrong kwargs -> mismatch', lambda: co.convert(opt.input, opt.output, opt), 'shape mismatch')
    torch.save({'G': sds['G']}, P('gonly.pt'))
    expect_error('G only', lambda: co.convert(P('gonly.pt'), P('x.safetensors')), 'no discriminator')
    with open(P('wrongclass.pkl'), 'wb') as f:
        pickle.dump({'G': Persistent(nets[0], ed(G_KW), 'SuperResolutionNet'), 'D': Persistent(nets[1], ed(D_KW))}, f)
    expect_error('wrong class name', lambda: co.convert(P('wrongclass.pkl'), P('x.safetensors')), 'SuperResolutionNet')
    with open(P('badkw.pkl'), 'wb') as f:
        bad = ed(dict(G_KW, magnitude_ema_beta=0.99))
        pickle.dump({'G': Persistent(nets[0], bad), 'D': Persistent(nets[1], ed(D_KW)),
                     'G_ema': Persistent(nets[2], bad)}, f)
    expect_error('foreign kwargs', lambda: co.convert(P('badkw.pkl'), P('x.safetensors')), 'magnitude_ema_beta')
    check('no stray output', not os.path.exists(P('x.safetensors')))

    shutil.rmtree(tmp, ignore_errors=True)
    print(f'{PASSED[0]} passed, {FAILED[0]} failed')
    return 1 if FAILED[0] else 0


if __name__ == '__main__':
    sys.exit(main())
