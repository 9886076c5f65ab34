"""Tests for tools/convert_inception.py. Plain script: python3 tools/test_convert_inception.py
Last line of output: 'N passed, M failed'; exit status non-zero on any failure.

The real pytorch-fid weights are not available here, so the test writes files with their layout
(torchvision Inception3 state dict, num_classes 1008, no AuxLogits, deterministic values from
tools/inception_ref.py) with torch.save in the zip and the legacy format, converts them through the
command line, and checks names, order, values and metadata, plus clear failures for incomplete,
misshapen, foreign (torchvision ImageNet) and unreadable inputs.
"""
import contextlib
import io
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import convert_inception as ci  # noqa: E402
import inception_ref  # noqa: E402
import safetensors_io  # noqa: E402

PASSED, FAILED = [0], [0]


def check(name, cond, detail=''):
    if cond:
        PASSED[0] += 1
    else:
        FAILED[0] += 1
        print(f'FAIL {name} {detail}')


def run(*args):
    p = subprocess.run([sys.executable, os.path.join(HERE, 'convert_inception.py'), *args], capture_output=True,
                       text=True)
    return p.returncode, p.stdout + p.stderr


def fid_like_state_dict():
    sd = {k: torch.from_numpy(v) for k, v in inception_ref.random_state_dict().items()}
    out = {}
    for k, v in sd.items():  # torchvision's order: each BatchNorm ends with num_batches_tracked
        out[k] = v
        if k.endswith('bn.running_var'):
            out[k[:-len('running_var')] + 'num_batches_tracked'] = torch.tensor(0)
    out['fc.weight'] = torch.linspace(-1, 1, 1008 * 2048).reshape(1008, 2048)
    out['fc.bias'] = torch.linspace(0, 1, 1008)
    return out


def expect_error(tmp, name, sd_or_bytes, needle):
    """A state dict is checked in memory (ci.check, what convert() runs after reading); bytes or
    other objects go through a file (None: no file) and ci.main, as from the command line."""
    if isinstance(sd_or_bytes, dict):
        try:
            ci.check(sd_or_bytes, name + '.pth')
            check(name, False, 'no error')
        except ci.ConvertError as e:
            check(name, needle in str(e), str(e))
        return
    path = os.path.join(tmp, name + '.pth')
    if sd_or_bytes is None:  # no file at all
        pass
    elif isinstance(sd_or_bytes, bytes):
        with open(path, 'wb') as f:
            f.write(sd_or_bytes)
    else:
        torch.save(sd_or_bytes, path)
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        rc = ci.main(['convert_inception.py', path, os.path.join(tmp, name + '.safetensors')])
    check(name, rc == 1 and needle in err.getvalue(), f'rc {rc}: {err.getvalue().strip()[:300]}')
    check(name + ' writes nothing', not os.path.exists(os.path.join(tmp, name + '.safetensors')))


def main():
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        sd = fid_like_state_dict()
        expected = [k for k, _ in inception_ref.expected_tensors()] + ['fc.weight', 'fc.bias']
        for fmt in ('zip', 'legacy'):
            src, dst = os.path.join(tmp, f'fid_{fmt}.pth'), os.path.join(tmp, f'fid_{fmt}.safetensors')
            obj = sd if fmt == 'zip' else {'state_dict': {'module.' + k: v for k, v in sd.items()}}
            torch.save(obj, src, _use_new_zipfile_serialization=fmt == 'zip')
            if fmt == 'zip':
                rc, text = run(src, dst)
            else:
                out, err = io.StringIO(), io.StringIO()
                with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                    rc = ci.main(['convert_inception.py', src, dst])
                text = out.getvalue() + err.getvalue()
            check(f'{fmt}: converts', rc == 0 and 'wrote' in text, text)
            check(f'{fmt}: warns about the hash', 'does not start with 6726825d' in text, text)
            if rc:
                continue
            t, meta = safetensors_io.load(dst)
            check(f'{fmt}: names and order', list(t) == expected, str(list(t)[:5]))
            check(f'{fmt}: all float32', all(a.dtype == np.float32 for a in t.values()))
            check(f'{fmt}: values', all(np.array_equal(t[k], sd[k].numpy()) for k in expected))
            check(f'{fmt}: no num_batches_tracked', not any(k.endswith('num_batches_tracked') for k in t))
            check(f'{fmt}: metadata', 'gantl.inception' in meta and ci.sha256(src) in meta['gantl.inception'],
                  str(meta))
        # float64 tensors are accepted (and written as float32 by convert)
        sd64 = {k: (v.double() if v.is_floating_point() else v) for k, v in sd.items()}
        check('float64 input', len(ci.check(sd64, 'fid64.pth')) == len(expected))

        small = {k: v for k, v in list(sd.items())[:12]}
        missing = dict(sd)
        del missing['Mixed_6c.branch7x7dbl_3.bn.running_mean']
        expect_error(tmp, 'missing', missing, "tensor 'Mixed_6c.branch7x7dbl_3.bn.running_mean' is missing")
        bad = dict(sd)
        bad['Mixed_5b.branch5x5_2.conv.weight'] = torch.zeros(64, 48, 3, 3)
        expect_error(tmp, 'shape', bad, "'Mixed_5b.branch5x5_2.conv.weight' has shape (64, 48, 3, 3), expected "
                     "(64, 48, 5, 5)")
        aux = dict(sd)
        aux['AuxLogits.conv0.conv.weight'] = torch.zeros(128, 768, 1, 1)
        expect_error(tmp, 'aux', aux, "torchvision's ImageNet Inception-v3")
        imagenet = dict(sd)
        imagenet['fc.weight'], imagenet['fc.bias'] = torch.zeros(1000, 2048), torch.zeros(1000)
        expect_error(tmp, 'imagenet', imagenet, "fc.weight of shape (1000, 2048)")
        extra = dict(sd)
        extra['Mixed_5b.branch1x1.conv.bias'] = torch.zeros(64)
        expect_error(tmp, 'extra', extra, "unexpected tensor 'Mixed_5b.branch1x1.conv.bias'")
        nonfinite = dict(sd)
        nonfinite['Conv2d_1a_3x3.bn.running_var'] = torch.full((32,), float('nan'))
        expect_error(tmp, 'nan', nonfinite, "'Conv2d_1a_3x3.bn.running_var' has non-finite values")
        expect_error(tmp, 'small', small, "is missing")
        expect_error(tmp, 'tensor', torch.zeros(3), 'expected a state dict')
        expect_error(tmp, 'garbage', b'not a torch file at all', 'cannot be read as a torch.save file')
        expect_error(tmp, 'nope', None, 'no such file')
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            rc = ci.main(['convert_inception.py'])
        check('usage', rc == 2 and 'usage' in err.getvalue(), err.getvalue())
    print(f'{PASSED[0]} passed, {FAILED[0]} failed')
    return 1 if FAILED[0] else 0


if __name__ == '__main__':
    sys.exit(main())
