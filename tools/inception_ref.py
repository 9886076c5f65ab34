#!/usr/bin/python3
"""Reference FID Inception-v3 in PyTorch, and the parity fixture of gantl's C version.

    /usr/bin/python3 tools/inception_ref.py fixture     writes tests/fixtures/inception_random.safetensors
    /usr/bin/python3 tools/inception_ref.py crosscheck [PFID_INCEPTION_PY]
        compares this module with torchvision's Inception3 patched by pytorch-fid's blocks
        (needs python3-torchvision; PFID_INCEPTION_PY: a copy of pytorch-fid's
        src/pytorch_fid/inception.py, imported only to build its FIDInception* blocks)

The network (written from the descriptions of torchvision's Inception3 and pytorch-fid's
InceptionV3, not copied): the layers of torchvision Inception3 up to the global average pool,
with the FID weights' block variants:
  BasicConv2d      conv (no bias) -> BatchNorm2d(eps=1e-3, eval: running statistics) -> ReLU
  stem             Conv2d_1a_3x3 (3->32, s2), Conv2d_2a_3x3 (32->32), Conv2d_2b_3x3 (32->64, p1),
                   max_pool 3x3 s2, Conv2d_3b_1x1 (64->80), Conv2d_4a_3x3 (80->192), max_pool 3x3 s2
  Mixed_5b/5c/5d   FIDInceptionA(192/256/288, pool_features 32/64/64): branch1x1, branch5x5_{1,2},
                   branch3x3dbl_{1,2,3}, branch_pool after avg_pool 3x3 s1 p1 count_include_pad=False
  Mixed_6a         InceptionB(288): branch3x3 (s2), branch3x3dbl_{1,2,3} (last s2), max_pool 3x3 s2
  Mixed_6b..6e     FIDInceptionC(768, channels_7x7 128/160/160/192), pool as in A
  Mixed_7a         InceptionD(768): branch3x3_{1,2}, branch7x7x3_{1..4}, max_pool 3x3 s2
  Mixed_7b         FIDInceptionE_1(1280): pool avg 3x3 s1 p1 count_include_pad=False
  Mixed_7c         FIDInceptionE_2(2048): pool max 3x3 s1 p1
  pool3            global average -> (N, 2048)
Every branch list is concatenated along channels in the order written above. pytorch-fid's
InceptionV3 (resize_input, normalize_input) takes images u in [0, 1]: F.interpolate(u, (299, 299),
mode='bilinear', align_corners=False), then 2u - 1. fid_features() does exactly that.

Deterministic weights (reproduced by tests/test_inception.c, so the fixture need not store the
21.8M parameters): for a tensor called NAME with n values, element i (flat, C order) draws
    key = FNV-1a 64 of the bytes of NAME   (offset 0xcbf29ce484222325, prime 0x100000001b3)
    z   = splitmix64 finaliser of key + (i + 1) * 0x9E3779B97F4A7C15   (all mod 2^64):
          z ^= z >> 30; z *= 0xBF58476D1CE4E5B9; z ^= z >> 27; z *= 0x94D049BB133111EB; z ^= z >> 31
    r   = float32((z >> 40) / 2^24) * 2 - 1        exactly representable, in [-1, 1)
and the value is, in float32 arithmetic (constants rounded to float32 first):
    *.conv.weight       r * float32(sqrt(6 / fan_in))    (He uniform; fan_in = in_channels * kh * kw)
    *.bn.weight         1 + 0.25 * r
    *.bn.bias           0.1 * r - 0.05
    *.bn.running_mean   0.1 * r
    *.bn.running_var    1 + 0.5 * r                (in [0.5, 1.5))
See random_value(). These keep the activations O(1) (std 0.35-0.6 at every block, features
std ~0.5) and the features input-dependent. The fixture's 320 x 310 RGB input "big" is
hash_uniform("input.big") in C order, shape (1, 3, 320, 310), also not stored.
"""
import json
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_io  # noqa: E402

FIXTURE = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'tests', 'fixtures',
                       'inception_random.safetensors')

# ------------------------------------------------------------------------------------------------
# The network.


class BasicConv2d(nn.Module):
    def __init__(self, cin, cout, kernel_size, stride=1, padding=0):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel_size, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=0.001)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))


def avg_pool_fid(x):
    return F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)


class FIDInceptionA(nn.Module):
    def __init__(self, cin, pool_features):
        super().__init__()
        self.branch1x1 = BasicConv2d(cin, 64, 1)
        self.branch5x5_1 = BasicConv2d(cin, 48, 1)
        self.branch5x5_2 = BasicConv2d(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(cin, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, padding=1)
        self.branch_pool = BasicConv2d(cin, pool_features, 1)

    def forward(self, x):
        a = self.branch1x1(x)
        b = self.branch5x5_2(self.branch5x5_1(x))
        c = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        d = self.branch_pool(avg_pool_fid(x))
        return torch.cat([a, b, c, d], 1)


class InceptionB(nn.Module):
    def __init__(self, cin):
        super().__init__()
        self.branch3x3 = BasicConv2d(cin, 384, 3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(cin, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, stride=2)

    def forward(self, x):
        a = self.branch3x3(x)
        b = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([a, b, F.max_pool2d(x, 3, stride=2)], 1)


class FIDInceptionC(nn.Module):
    def __init__(self, cin, c7):
        super().__init__()
        self.branch1x1 = BasicConv2d(cin, 192, 1)
        self.branch7x7_1 = BasicConv2d(cin, c7, 1)
        self.branch7x7_2 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7_3 = BasicConv2d(c7, 192, (7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = BasicConv2d(cin, c7, 1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = BasicConv2d(c7, 192, (1, 7), padding=(0, 3))
        self.branch_pool = BasicConv2d(cin, 192, 1)

    def forward(self, x):
        a = self.branch1x1(x)
        b = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        c = self.branch7x7dbl_1(x)
        for m in (self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4, self.branch7x7dbl_5):
            c = m(c)
        d = self.branch_pool(avg_pool_fid(x))
        return torch.cat([a, b, c, d], 1)


class InceptionD(nn.Module):
    def __init__(self, cin):
        super().__init__()
        self.branch3x3_1 = BasicConv2d(cin, 192, 1)
        self.branch3x3_2 = BasicConv2d(192, 320, 3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(cin, 192, 1)
        self.branch7x7x3_2 = BasicConv2d(192, 192, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(192, 192, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(192, 192, 3, stride=2)

    def forward(self, x):
        a = self.branch3x3_2(self.branch3x3_1(x))
        b = self.branch7x7x3_1(x)
        for m in (self.branch7x7x3_2, self.branch7x7x3_3, self.branch7x7x3_4):
            b = m(b)
        return torch.cat([a, b, F.max_pool2d(x, 3, stride=2)], 1)


class FIDInceptionE(nn.Module):
    """pool 'avg' is pytorch-fid's FIDInceptionE_1, 'max' its FIDInceptionE_2."""

    def __init__(self, cin, pool):
        super().__init__()
        self.pool = pool
        self.branch1x1 = BasicConv2d(cin, 320, 1)
        self.branch3x3_1 = BasicConv2d(cin, 384, 1)
        self.branch3x3_2a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(cin, 448, 1)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch_pool = BasicConv2d(cin, 192, 1)

    def forward(self, x):
        a = self.branch1x1(x)
        t = self.branch3x3_1(x)
        b = torch.cat([self.branch3x3_2a(t), self.branch3x3_2b(t)], 1)
        t = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        c = torch.cat([self.branch3x3dbl_3a(t), self.branch3x3dbl_3b(t)], 1)
        p = avg_pool_fid(x) if self.pool == 'avg' else F.max_pool2d(x, 3, stride=1, padding=1)
        return torch.cat([a, b, c, self.branch_pool(p)], 1)


class FIDInception(nn.Module):
    """Images in [-1, 1], any size (pytorch-fid always feeds 299 x 299) -> pool3 (N, 2048)."""

    def __init__(self):
        super().__init__()
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, 3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, 3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, 1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, 3)
        self.Mixed_5b = FIDInceptionA(192, 32)
        self.Mixed_5c = FIDInceptionA(256, 64)
        self.Mixed_5d = FIDInceptionA(288, 64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = FIDInceptionC(768, 128)
        self.Mixed_6c = FIDInceptionC(768, 160)
        self.Mixed_6d = FIDInceptionC(768, 160)
        self.Mixed_6e = FIDInceptionC(768, 192)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = FIDInceptionE(1280, 'avg')
        self.Mixed_7c = FIDInceptionE(2048, 'max')

    def forward(self, x):
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, 3, stride=2)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
        x = F.max_pool2d(x, 3, stride=2)
        for name in ('5b', '5c', '5d', '6a', '6b', '6c', '6d', '6e', '7a', '7b', '7c'):
            x = getattr(self, 'Mixed_' + name)(x)
        return x.mean(dim=(2, 3))


def resize299(u):
    return F.interpolate(u, size=(299, 299), mode='bilinear', align_corners=False)


def fid_features(net, u):
    """pytorch-fid's InceptionV3 defaults: u (N, 3, H, W) in [0, 1] -> (N, 2048)."""
    return net(2 * resize299(u) - 1)


_EXPECTED = []


def expected_tensors(net=None):
    """(name, shape) of every tensor the converted file and gantl's loader have, in order."""
    if net is None and _EXPECTED:
        return list(_EXPECTED)
    out = [(k, tuple(v.shape)) for k, v in (net or FIDInception()).state_dict().items()
           if not k.endswith('num_batches_tracked')]
    if net is None:
        _EXPECTED[:] = out
    return out

# ------------------------------------------------------------------------------------------------
# Deterministic weights.


def fnv1a64(name):
    h = 0xcbf29ce484222325
    for b in name.encode():
        h = ((h ^ b) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return h


def hash_uniform(name, n):
    """r in [-1, 1) (float32), element i of tensor NAME (see the module docstring)."""
    with np.errstate(over='ignore'):
        z = np.uint64(fnv1a64(name)) + (np.arange(1, n + 1, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15))
        z ^= z >> np.uint64(30)
        z *= np.uint64(0xBF58476D1CE4E5B9)
        z ^= z >> np.uint64(27)
        z *= np.uint64(0x94D049BB133111EB)
        z ^= z >> np.uint64(31)
    u = (z >> np.uint64(40)).astype(np.float32) * np.float32(1.0 / 16777216.0)
    return u * np.float32(2) - np.float32(1)


BIG_NAME, BIG_SHAPE = 'input.big', (1, 3, 320, 310)


def hash_image(name, shape):
    """A test image in [-1, 1) that needs no storing: hash_uniform(name) in C order."""
    return torch.from_numpy(hash_uniform(name, int(np.prod(shape))).reshape(shape))


def random_value(name, shape):
    n = int(np.prod(shape))
    r = hash_uniform(name, n)
    f = np.float32
    if name.endswith('conv.weight'):
        fan_in = int(np.prod(shape[1:]))
        v = r * f(np.sqrt(6.0 / fan_in))
    elif name.endswith('bn.weight'):
        v = f(1) + f(0.25) * r
    elif name.endswith('bn.bias'):
        v = f(0.1) * r - f(0.05)
    elif name.endswith('bn.running_mean'):
        v = f(0.1) * r
    elif name.endswith('bn.running_var'):
        v = f(1) + f(0.5) * r
    else:
        raise ValueError(name)
    return v.astype(np.float32).reshape(shape)


def random_state_dict(net=None):
    return {k: random_value(k, s) for k, s in expected_tensors(net)}


def random_net(dtype=torch.float32):
    net = FIDInception()
    sd = {k: torch.from_numpy(v) for k, v in random_state_dict(net).items()}
    net.load_state_dict(sd, strict=False)
    return net.to(dtype).eval()

# ------------------------------------------------------------------------------------------------
# Fixture.


def make_fixture(path=FIXTURE):
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(20151205)
    # smooth-ish images in [-1, 1]: a random low-resolution pattern plus noise
    def image(n, c, h, w):
        base = F.interpolate(torch.rand(n, c, 4, 4, generator=g) * 2 - 1, size=(h, w), mode='bilinear',
                             align_corners=False)
        return (0.7 * base + 0.3 * (torch.rand(n, c, h, w, generator=g) * 2 - 1)).clamp(-1, 1).float()

    inputs = {'rgb': image(2, 3, 32, 32), 'grey': image(1, 1, 28, 28), 'rect': image(1, 3, 20, 36),
              'big': hash_image(BIG_NAME, BIG_SHAPE)}
    t = {}
    net64 = random_net(torch.float64)
    net32 = random_net(torch.float32)
    stats = {}
    with torch.no_grad():
        for case, x in inputs.items():
            if case != 'big':  # regenerated by the test
                t['in.' + case] = x.numpy()
            rgb = x.repeat(1, 3, 1, 1) if x.shape[1] == 1 else x
            u = (rgb.double() + 1) / 2  # the [0, 1] image pytorch-fid would be given
            f64 = fid_features(net64, u)
            f32 = fid_features(net32, (rgb + 1) / 2)
            t['out.features.' + case] = f64.float().numpy()
            t['out.features32.' + case] = f32.numpy()
            scale = f64.abs().max().item()
            stats[case] = {'max_abs': scale, 'mean': f64.mean().item(),
                           'torch_f32_err_rel': ((f32.double() - f64).abs().max() / scale).item()}
        # resize parity (float32, as pytorch-fid runs it)
        src = (torch.rand(1, 2, 9, 7, generator=g) * 2 - 1).float()
        t['in.resize'] = src.numpy()
        for h, w in ((11, 13), (3, 4), (9, 7), (5, 20)):
            t['out.resize_%dx%d' % (h, w)] = F.interpolate(src, size=(h, w), mode='bilinear',
                                                            align_corners=False).numpy()
        t['out.resize_299x299'] = resize299(src[:, :1]).numpy()
        big = resize299(inputs['big'][:, :1])[0, 0]
        t['out.resize_big_rows'] = torch.cat([big[:16], big[-4:]]).numpy()  # rows 0-15 and 295-298
    meta = {
        'gantl.fixture': json.dumps({
            'description': 'FID Inception-v3 with deterministic hash weights (tools/inception_ref.py '
                           'docstring); out.features.* from float64, pytorch-fid semantics on u = (x + 1) / 2; '
                           'grey inputs replicated to RGB',
            'stats': stats}),
        'gantl.tensors': json.dumps([[k, list(s)] for k, s in expected_tensors()]),
    }
    safetensors_io.save(path, t, meta)
    print('wrote', os.path.relpath(path), '(%d bytes)' % os.path.getsize(path))
    for case, s in stats.items():
        print('  %-5s max|f| %.4g  mean %.4g  torch f32 vs f64: %.3g of max' % (case, s['max_abs'], s['mean'],
                                                                              s['torch_f32_err_rel']))

# ------------------------------------------------------------------------------------------------
# Cross-check against torchvision + pytorch-fid.


def crosscheck(pfid_path=None):
    import importlib.util
    import torchvision
    torch.set_num_threads(2)
    ok = True

    def report(what, cond):
        nonlocal ok
        ok &= bool(cond)
        print(('ok   ' if cond else 'FAIL ') + what)

    tv = torchvision.models.inception_v3(weights=None, aux_logits=False, num_classes=1008, init_weights=False)
    if pfid_path:
        spec = importlib.util.spec_from_file_location('pfid_inception', pfid_path)
        pfid = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(pfid)
        tv.Mixed_5b = pfid.FIDInceptionA(192, pool_features=32)
        tv.Mixed_5c = pfid.FIDInceptionA(256, pool_features=64)
        tv.Mixed_5d = pfid.FIDInceptionA(288, pool_features=64)
        tv.Mixed_6b = pfid.FIDInceptionC(768, channels_7x7=128)
        tv.Mixed_6c = pfid.FIDInceptionC(768, channels_7x7=160)
        tv.Mixed_6d = pfid.FIDInceptionC(768, channels_7x7=160)
        tv.Mixed_6e = pfid.FIDInceptionC(768, channels_7x7=192)
        tv.Mixed_7b = pfid.FIDInceptionE_1(1280)
        tv.Mixed_7c = pfid.FIDInceptionE_2(2048)
    ours = expected_tensors()
    theirs = [(k, tuple(v.shape)) for k, v in tv.state_dict().items()
              if not k.endswith('num_batches_tracked') and not k.startswith('fc.')]
    report('state_dict names, order and shapes equal torchvision Inception3 (%d tensors, %d parameters)'
           % (len(ours), sum(int(np.prod(s)) for _, s in ours)), ours == theirs)
    if not pfid_path:
        print('(no pytorch-fid inception.py given: forward not compared)')
        return ok
    sd = {k: torch.from_numpy(v) for k, v in random_state_dict().items()}
    tv.load_state_dict(sd, strict=False)
    tv = tv.double().eval()
    net = random_net(torch.float64)
    # pytorch-fid's InceptionV3 forward, rebuilt from its blocks (its constructor downloads weights)
    blocks = [tv.Conv2d_1a_3x3, tv.Conv2d_2a_3x3, tv.Conv2d_2b_3x3, nn.MaxPool2d(3, 2), tv.Conv2d_3b_1x1,
              tv.Conv2d_4a_3x3, nn.MaxPool2d(3, 2), tv.Mixed_5b, tv.Mixed_5c, tv.Mixed_5d, tv.Mixed_6a,
              tv.Mixed_6b, tv.Mixed_6c, tv.Mixed_6d, tv.Mixed_6e, tv.Mixed_7a, tv.Mixed_7b, tv.Mixed_7c,
              nn.AdaptiveAvgPool2d((1, 1))]
    g = torch.Generator().manual_seed(1)
    u = torch.rand(2, 3, 40, 33, generator=g, dtype=torch.float64)
    with torch.no_grad():
        x = 2 * F.interpolate(u, size=(299, 299), mode='bilinear', align_corners=False) - 1
        for b in blocks:
            x = b(x)
        ref = x.flatten(1)
        got = fid_features(net, u)
    err = ((got - ref).abs().max() / ref.abs().max()).item()
    report('pool3 features equal torchvision + pytorch-fid blocks in float64 (max rel err %.2g)' % err, err < 1e-12)
    return ok


if __name__ == '__main__':
    cmd = sys.argv[1] if len(sys.argv) > 1 else ''
    if cmd == 'fixture':
        make_fixture()
    elif cmd == 'crosscheck':
        sys.exit(0 if crosscheck(sys.argv[2] if len(sys.argv) > 2 else None) else 1)
    else:
        print(__doc__)
        sys.exit(2)
