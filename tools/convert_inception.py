#!/usr/bin/python3
"""Convert pytorch-fid's Inception-v3 weights into the safetensors file gantl_inception_load reads.

usage: python3 tools/convert_inception.py pt_inception-2015-12-05-6726825d.pth inception.safetensors

The input is the FID weights file of pytorch-fid (its release "fid_weights", about 91 MB; the
TensorFlow FID graph of 2015-12-05 ported to PyTorch): a torch.save'd state dict of torchvision's
Inception3 with num_classes=1008 and no AuxLogits. It is read with torch.load (weights_only where
this torch supports it, so no code from the file runs). Also accepted: the same dict wrapped as
{"state_dict": ...}, or with a "module." prefix (DataParallel).

Every tensor is checked against tools/inception_ref.py's network (names and shapes exactly as
torchvision's): the 94 BasicConv2d layers' conv.weight and bn.{weight,bias,running_mean,
running_var}. fc.weight (1008, 2048) and fc.bias (1008) are kept (the FID features do not use
them); *.num_batches_tracked is dropped. torchvision's own ImageNet weights (AuxLogits.*, a
1000-class fc) are refused: FID needs the 2015-12-05 graph's weights, and pytorch-fid's block
variants only match those. A SHA-256 that does not start with 6726825d (the published file's) is
reported on stderr but not refused.

Output: F32 tensors under the same names (Conv2d_1a_3x3.conv.weight, Mixed_5b.branch1x1.bn.running_mean,
...), and __metadata__ "gantl.inception" = JSON {network, source, sha256}.
"""
import hashlib
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import inception_ref  # noqa: E402
import safetensors_io  # noqa: E402

FID_SHA256_PREFIX = '6726825d'
FC_CLASSES = 1008


class ConvertError(Exception):
    pass


def _shape(t):
    return tuple(int(d) for d in t.shape)


def read_state_dict(path):
    try:
        try:
            obj = torch.load(path, map_location='cpu', weights_only=True)
        except TypeError:  # a torch without weights_only
            obj = torch.load(path, map_location='cpu')
    except FileNotFoundError:
        raise ConvertError(f'{path}: no such file')
    except Exception as e:  # noqa: BLE001 - torch raises many kinds for a bad file
        raise ConvertError(f'{path}: cannot be read as a torch.save file ({type(e).__name__}: {e})')
    if isinstance(obj, dict) and 'state_dict' in obj and isinstance(obj['state_dict'], dict):
        obj = obj['state_dict']
    if not isinstance(obj, dict) or not obj:
        raise ConvertError(f'{path}: expected a state dict (name -> tensor), found {type(obj).__name__}')
    sd = {}
    for k, v in obj.items():
        if not isinstance(k, str) or not torch.is_tensor(v):
            raise ConvertError(f'{path}: entry {k!r} is a {type(v).__name__}, expected a tensor in a state dict')
        sd[k[7:] if k.startswith('module.') else k] = v
    return sd


def check(sd, path):
    """The tensors to write, in order: the network's, then fc.*; raises ConvertError."""
    aux = sorted(k for k in sd if k.startswith('AuxLogits.'))
    fc = sd.get('fc.weight')
    if aux or (fc is not None and fc.ndim == 2 and fc.shape[0] != FC_CLASSES):
        what = f"'{aux[0]}'" if aux else f'fc.weight of shape {_shape(fc)}'
        raise ConvertError(f"{path}: {what}: these look like torchvision's ImageNet Inception-v3 weights; FID needs "
                           "pytorch-fid's pt_inception-2015-12-05-6726825d.pth")
    out = {}
    for name, shape in inception_ref.expected_tensors():
        if name not in sd:
            raise ConvertError(f"{path}: tensor '{name}' is missing (not pytorch-fid's Inception weights?)")
        if _shape(sd[name]) != shape:
            raise ConvertError(f"{path}: tensor '{name}' has shape {_shape(sd[name])}, expected {shape}")
        out[name] = sd[name]
    for name, shape in (('fc.weight', (FC_CLASSES, 2048)), ('fc.bias', (FC_CLASSES,))):
        if name in sd:
            if _shape(sd[name]) != shape:
                raise ConvertError(f"{path}: tensor '{name}' has shape {_shape(sd[name])}, expected {shape}")
            out[name] = sd[name]
    extra = sorted(k for k in sd if k not in out and not k.endswith('.num_batches_tracked'))
    if extra:
        raise ConvertError(f"{path}: unexpected tensor{'s' if len(extra) > 1 else ''} "
                           + ', '.join(f"'{k}'" for k in extra[:5]) + (' ...' if len(extra) > 5 else ''))
    for name, t in out.items():
        if not t.is_floating_point():
            raise ConvertError(f"{path}: tensor '{name}' has dtype {t.dtype}, expected a float type")
        if not bool(torch.isfinite(t).all()):
            raise ConvertError(f"{path}: tensor '{name}' has non-finite values")
    return out


def sha256(path):
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            h.update(block)
    return h.hexdigest()


def convert(in_path, out_path, quiet=False):
    tensors = check(read_state_dict(in_path), in_path)
    digest = sha256(in_path)
    if not digest.startswith(FID_SHA256_PREFIX) and not quiet:
        print(f'warning: {in_path}: SHA-256 {digest[:16]}... does not start with {FID_SHA256_PREFIX} (that of '
              'pt_inception-2015-12-05-6726825d.pth); converting anyway', file=sys.stderr)
    arrays = {k: v.detach().to(torch.float32).contiguous().numpy() for k, v in tensors.items()}
    meta = {'gantl.inception': json.dumps({
        'network': 'pytorch-fid FID Inception-v3 (pt_inception-2015-12-05), torchvision names',
        'source': os.path.basename(in_path), 'sha256': digest})}
    safetensors_io.save(out_path, arrays, meta)
    return arrays


def main(argv):
    if len(argv) != 3 or argv[1] in ('-h', '--help'):
        print(__doc__.strip().split('\n\n')[1], file=sys.stderr)
        return 2
    try:
        arrays = convert(argv[1], argv[2])
    except ConvertError as e:
        print(f'error: {e}', file=sys.stderr)
        return 1
    n = sum(int(np.prod(a.shape)) for a in arrays.values())
    print(f'wrote {argv[2]}: {len(arrays)} tensors, {n} values')
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
