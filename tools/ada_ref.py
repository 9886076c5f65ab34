#!/usr/bin/python3
"""Compact PyTorch reference of StyleGAN2-ADA's augmentation pipeline, preset 'bgc'.

Written from the behaviour of NVlabs/stylegan2-ada-pytorch (no code taken from it), split into
two steps so that a C implementation with its own RNG can be tested number for number:

  draws = draw(batch_size, p, generator, num_channels)   # every random number, nothing else
  y     = apply(x, draws)                                # deterministic given the draws

Map to the official sources:
  draw(), matrices()      training/augment.py  AugmentPipe.forward, the "Select parameters" blocks
                          (same call order, shapes, distributions and probability gating)
  translate2d ... rot3d   training/augment.py  matrix helpers (translate2d, scale2d, rotate2d,
                          the *_inv variants, translate3d, scale3d, rotate3d)
  SYM6                    training/augment.py  wavelets['sym6'] -> buffer Hz_geom
  upfirdn2d(), up2, down2 torch_utils/ops/upfirdn2d.py  _upfirdn2d_ref, setup_filter,
                          upsample2d, downsample2d
  grid_sample()           torch_utils/ops/grid_sample_gradfix.py (bilinear, zeros,
                          align_corners=False, any order of gradient w.r.t. the input)
  geom_plan(), apply()    training/augment.py  "Execute geometric transformations" and
                          "Execute color transformations"
  ada_update()            training/training_loop.py  "Execute ADA heuristic"
  BGC                     train.py  augpipe_specs['bgc']

Conventions (all float32, like the official pipeline):
- G (3x3, per sample) is the INVERSE geometric transform: G @ [x_out, y_out, 1] = [x_in, y_in, 1],
  in pixel units with the origin at the image centre (pixel centres at -(W-1)/2 .. (W-1)/2).
  It is built by right-multiplying, starting from I: G = I @ M_xflip @ M_rot90 @ M_xint @ M_scale
  @ M_rot_pre @ M_aniso @ M_rot_post @ M_xfrac, where each M is the inverse of that op.
- C (4x4, per sample) maps [r, g, b, 1] to the output colour; built by LEFT-multiplying, from I:
  C = M_sat @ M_hue @ M_lumaflip @ M_contrast @ M_brightness. Luma axis v = [1,1,1,0]/sqrt(3).
  RGB: y = C[:3,:3] @ x + C[:3,3]. Grey (1 channel): c = mean of C's rows 0..2 (a 1x4 row);
  y = x * (c0 + c1 + c2) + c3. Hue and saturation are neither drawn nor applied for 1 channel.
- The geometric stage runs whenever any geometric op is enabled (multiplier > 0), even at p = 0
  (identity matrices still go through pad/upsample/sample/downsample, which is then ~identity);
  likewise the colour stage whenever any colour op is enabled (hue/saturation count only for RGB).
- Execution of the geometric stage (geom_plan + apply):
  1. Padding, one for the whole batch: transform the 4 corner pixel centres (+-cx, +-cy) with every
     sample's G; m = max over samples and corners of [-x, -y, x, y]; m += [6-cx, 6-cy, 6-cx, 6-cy]
     (6 = Hz_pad*2, Hz_pad = 12 // 4 = 3); clamp to [0, [W-1, H-1, W-1, H-1]]; ceil -> integers
     (mx0, my0, mx1, my1), all in float32. Reflect-pad by them (left, right, top, bottom). The
     padding depends on the whole batch, and float32 rounding can move it by one (e.g. cos(pi/2)
     is not 0), so a C port should mirror the float32 arithmetic and check against fixtures' pad.
  2. G <- T((mx0-mx1)/2, (my0-my1)/2) @ G; then G <- S(2) @ G @ S(1/2); then
     G <- T(-.5,-.5) @ G @ T(.5,.5); then G <- S(2/Wu, 2/Hu) @ G @ S(Wo/2, Ho/2), where (Hu, Wu)
     is the upsampled padded size and (Ho, Wo) = (2(H+6), 2(W+6)) the sampling grid size.
     T = translate2d, S = scale2d. theta = G[:, :2, :] goes to affine_grid(align_corners=False).
  3. Upsample 2x with the separable sym6 filter (normalised to sum 1, gain 2 per axis, padding
     6/5 per axis, true convolution), bilinear grid_sample (zeros outside, align_corners=False),
     downsample 2x with the same filter as a correlation (flip_filter=True) with padding -1/-1
     per axis (= -Hz_pad*2 plus downsample2d's own (12-1)//2 / (12-2)//2), which crops to H x W.
- Rounding: xint uses torch.round (half to even) on t*W and t*H; xflip/rot90/lumaflip use floor.

Checked by tools/ada_crosscheck.py: on CPU, draw() + apply() equal the official AugmentPipe bit
for bit (draws, pad, affine_grid theta, output, first-order input gradient), for RGB, grey and
non-square images, 'bgc' at several p and every single op.
"""
import math

import numpy as np
import torch
import torch.nn.functional as F

# ---------------------------------------------------------------------------------------------
# Constants

# Order of the ops in 'bgc' (= official order of the random draws; rotate draws twice: the
# pre-rotation between scale and aniso, the post-rotation between aniso and xfrac).
OPS = ["xflip", "rotate90", "xint", "scale", "rotate", "aniso", "xfrac",
       "brightness", "contrast", "lumaflip", "hue", "saturation"]
GEOM_OPS, COLOR_OPS = OPS[:7], OPS[7:]
BGC = {name: 1.0 for name in OPS}  # probability multipliers of the 'bgc' preset

# Official defaults of the distribution parameters.
XINT_MAX, SCALE_STD, ROTATE_MAX, ANISO_STD, XFRAC_STD = 0.125, 0.2, 1.0, 0.2, 0.125
BRIGHTNESS_STD, CONTRAST_STD, HUE_MAX, SATURATION_STD = 0.2, 0.5, 1.0, 1.0

# Symlet-6 ("least asymmetric" Daubechies wavelet with 6 vanishing moments) low-pass
# decomposition filter, 12 taps, in the ordering of the standard tables (PyWavelets
# Wavelet('sym6').dec_lo; Daubechies, "Ten Lectures on Wavelets", 1992). sym6_check() re-derives
# it by spectral factorisation of the Daubechies product filter and checks these numbers.
SYM6 = [0.015404109327027373, 0.0034907120842174702, -0.11799011114819057,
        -0.048311742585633, 0.4910559419267466, 0.787641141030194,
        0.3379294217276218, -0.07263752278646252, -0.021060292512300564,
        0.04472490177066578, 0.0017677118642428036, -0.007800708325034148]
HZ_PAD = len(SYM6) // 4  # 3


def hz_geom():
    """The 1-D float32 filter used by the geometric stage: SYM6 / sum(SYM6) (sum is sqrt 2)."""
    f = torch.tensor(SYM6, dtype=torch.float32)
    return f / f.sum()


def sym6_check(tol=1e-11):
    """Re-derives sym6: |H(w)|^2 = cos^12(w/2) P(sin^2(w/2)), P(y) = sum_{k<6} C(5+k,k) y^k.
    Each root y of P gives z + 1/z = 2 - 4y; choosing one z of every pair (conjugates alike)
    gives a real orthogonal filter. Among those, the one with the most nearly linear phase is
    sym6 (up to time reversal). Returns the max abs difference to SYM6; asserts < tol."""
    import itertools
    n = 6
    y_roots = np.roots([math.comb(n - 1 + k, k) for k in range(n)][::-1])
    pairs = [np.roots([1.0, -(2.0 - 4.0 * y), 1.0]) for y in y_roots]
    w = np.linspace(0.01, math.pi - 0.01, 512)
    best = None
    for choice in itertools.product([0, 1], repeat=n - 1):
        poly = np.array([1.0 + 0j])
        for pair, c in zip(pairs, choice):
            poly = np.convolve(poly, [1.0, -pair[c]])
        for _ in range(n):
            poly = np.convolve(poly, [1.0, 1.0])
        if np.abs(poly.imag).max() > 1e-9:
            continue
        h = poly.real / poly.real.sum() * math.sqrt(2.0)
        phase = np.unwrap(np.angle(np.polyval(h[::-1], np.exp(-1j * w))))
        a = np.stack([w, np.ones_like(w)], 1)
        nonlin = np.abs(phase - a @ np.linalg.lstsq(a, phase, rcond=None)[0]).max()
        if best is None or nonlin < best[0] - 1e-9:
            best = (nonlin, h)
    ref = np.array(SYM6)
    err = min(np.abs(best[1] - ref).max(), np.abs(best[1][::-1] - ref).max())
    assert err < tol, err
    # Orthonormality and normalisation of the listed taps themselves.
    for k in range(0, 12, 2):
        assert abs(np.dot(ref[:12 - k], ref[k:]) - (1.0 if k == 0 else 0.0)) < 1e-12
    assert abs(ref.sum() - math.sqrt(2.0)) < 1e-12
    return err


# ---------------------------------------------------------------------------------------------
# Step 1: the random draws

def draw(batch_size, p, generator=None, num_channels=3, ops=None):
    """Draws every random number of the official AugmentPipe for one forward pass.

    p: augmentation probability (float). ops: probability multipliers per op name (default BGC;
    an op with multiplier 0 draws nothing, as officially). Uses torch.rand / torch.randn on
    `generator` in exactly the official order and shapes, so with generator seeded like the
    global RNG the official pipeline makes the same numbers.

    Returns a dict of float32 tensors. "ops": [12] multipliers in OPS order. For each of the 13
    random steps k in (xflip, rotate90, xint, scale, rotate_pre, aniso, rotate_post, xfrac,
    brightness, contrast, lumaflip, hue, saturation):
      k.raw   the value sample: uniform [0,1) or standard normal; [B] ([B,2] for xint, xfrac)
      k.gate  the uniform [0,1) gating sample, [B]
      k.mask  1.0 where gate < threshold (threshold = mult * p; rotate: p_rot), else 0.0, [B]
      k.value the op parameter after gating (neutral where mask is 0), same shape as raw:
        xflip    i = floor(2u)                 in {0,1}         neutral 0
        rotate90 i = floor(4u)                 in {0,1,2,3}     neutral 0
        xint     t = (2u-1)*0.125  (x, y)      relative to W, H neutral 0
        scale    s = exp2(0.2 n)                                neutral 1
        rotate_* theta = (2u-1)*pi*1  (radians)                 neutral 0
        aniso    s = exp2(0.2 n)                                neutral 1
        xfrac    t = 0.125 n  (x, y)           relative to W, H neutral 0
        brightness b = 0.2 n                                    neutral 0
        contrast c = exp2(0.5 n)                                neutral 1
        lumaflip i = floor(2u)                 in {0,1}         neutral 0
        hue      theta = (2u-1)*pi*1                            neutral 0
        saturation s = exp2(1 n)                                neutral 1
    Steps that were not drawn (op disabled, or hue/saturation with 1 channel) hold raw 0,
    gate 1, mask 0 and the neutral value. p_rot = 1 - sqrt(clamp(1 - mult_rotate * p, 0, 1)),
    so P(pre or post rotation) = p.
    """
    ops = dict(BGC if ops is None else ops)
    b = batch_size
    gen = generator
    pt = torch.as_tensor(p, dtype=torch.float32)  # the official p is a float32 buffer
    out = {"ops": torch.tensor([float(ops.get(k, 0.0)) for k in OPS], dtype=torch.float32)}

    def rand(*shape):
        return torch.rand(list(shape), generator=gen)

    def randn(*shape):
        return torch.randn(list(shape), generator=gen)

    def step(name, enabled, raw_fn, raw_shape, value_fn, neutral, thresh):
        if enabled:
            raw = raw_fn(*raw_shape)
            gate = rand(b)
            mask = gate < thresh
            val = value_fn(raw)
            m = mask.reshape([b] + [1] * (raw.ndim - 1))
            val = torch.where(m, val, torch.full_like(val, neutral))
        else:
            raw = torch.zeros(raw_shape)
            gate = torch.ones(b)
            mask = torch.zeros(b, dtype=torch.bool)
            val = torch.full(raw_shape, float(neutral))
        out[name + ".raw"] = raw
        out[name + ".gate"] = gate
        out[name + ".mask"] = mask.to(torch.float32)
        out[name + ".value"] = val

    on = {k: ops.get(k, 0.0) > 0 for k in OPS}
    thr = {k: ops.get(k, 0.0) * pt for k in OPS}
    p_rot = 1 - torch.sqrt((1 - ops.get("rotate", 0.0) * pt).clamp(0, 1))
    rgb = num_channels > 1
    step("xflip", on["xflip"], rand, [b], lambda u: torch.floor(u * 2), 0.0, thr["xflip"])
    step("rotate90", on["rotate90"], rand, [b], lambda u: torch.floor(u * 4), 0.0, thr["rotate90"])
    step("xint", on["xint"], rand, [b, 2], lambda u: (u * 2 - 1) * XINT_MAX, 0.0, thr["xint"])
    step("scale", on["scale"], randn, [b], lambda n: torch.exp2(n * SCALE_STD), 1.0, thr["scale"])
    step("rotate_pre", on["rotate"], rand, [b], lambda u: (u * 2 - 1) * np.pi * ROTATE_MAX, 0.0, p_rot)
    step("aniso", on["aniso"], randn, [b], lambda n: torch.exp2(n * ANISO_STD), 1.0, thr["aniso"])
    step("rotate_post", on["rotate"], rand, [b], lambda u: (u * 2 - 1) * np.pi * ROTATE_MAX, 0.0, p_rot)
    step("xfrac", on["xfrac"], randn, [b, 2], lambda n: n * XFRAC_STD, 0.0, thr["xfrac"])
    step("brightness", on["brightness"], randn, [b], lambda n: n * BRIGHTNESS_STD, 0.0, thr["brightness"])
    step("contrast", on["contrast"], randn, [b], lambda n: torch.exp2(n * CONTRAST_STD), 1.0, thr["contrast"])
    step("lumaflip", on["lumaflip"], rand, [b], lambda u: torch.floor(u * 2), 0.0, thr["lumaflip"])
    step("hue", on["hue"] and rgb, rand, [b], lambda u: (u * 2 - 1) * np.pi * HUE_MAX, 0.0, thr["hue"])
    step("saturation", on["saturation"] and rgb, randn, [b], lambda n: torch.exp2(n * SATURATION_STD),
         1.0, thr["saturation"])
    out["num_channels"] = torch.tensor([float(num_channels)])
    return out


STEPS = ["xflip", "rotate90", "xint", "scale", "rotate_pre", "aniso", "rotate_post", "xfrac",
         "brightness", "contrast", "lumaflip", "hue", "saturation"]


# ---------------------------------------------------------------------------------------------
# Matrix helpers ([B] tensors or Python numbers -> [B, n, n] or [n, n], float32)

def _mat(rows):
    """rows: nested list of numbers / [B] tensors -> [B, n, m] (or [n, m] if no tensor)."""
    ref = next((e for r in rows for e in r if torch.is_tensor(e)), None)
    if ref is None:
        return torch.tensor(rows, dtype=torch.float32)
    cols = [e if torch.is_tensor(e) else torch.full_like(ref, float(e)) for r in rows for e in r]
    return torch.stack(cols, -1).reshape(ref.shape + (len(rows), len(rows[0])))


def translate2d(tx, ty):
    return _mat([[1, 0, tx], [0, 1, ty], [0, 0, 1]])


def scale2d(sx, sy):
    return _mat([[sx, 0, 0], [0, sy, 0], [0, 0, 1]])


def rotate2d(theta):
    return _mat([[torch.cos(theta), torch.sin(-theta), 0], [torch.sin(theta), torch.cos(theta), 0],
                 [0, 0, 1]])


def translate3d(tx, ty, tz):
    return _mat([[1, 0, 0, tx], [0, 1, 0, ty], [0, 0, 1, tz], [0, 0, 0, 1]])


def scale3d(sx, sy, sz):
    return _mat([[sx, 0, 0, 0], [0, sy, 0, 0], [0, 0, sz, 0], [0, 0, 0, 1]])


def rotate3d(v, theta):
    """Rotation by theta about the unit axis v (Rodrigues), homogeneous 4x4."""
    x, y, z = (v[i].expand_as(theta) for i in range(3))  # float32 like the official buffer
    s, c = torch.sin(theta), torch.cos(theta)
    d = 1 - c
    return _mat([[x * x * d + c, x * y * d - z * s, x * z * d + y * s, 0],
                 [y * x * d + z * s, y * y * d + c, y * z * d - x * s, 0],
                 [z * x * d - y * s, z * y * d + x * s, z * z * d + c, 0],
                 [0, 0, 0, 1]])


LUMA = torch.tensor(np.array([1.0, 1.0, 1.0, 0.0]) / np.sqrt(3.0), dtype=torch.float32)  # luma axis


def matrices(draws, height, width):
    """Per-sample G (inverse geometric, [B,3,3]) and C (colour, [B,4,4]) from the draws.
    Returns (G, C); either is None when its stage is not executed (see module docstring)."""
    val = {k: draws[k + ".value"] for k in STEPS}
    mult = dict(zip(OPS, draws["ops"].tolist()))
    rgb = int(draws["num_channels"].item()) > 1
    b = val["xflip"].shape[0]

    g = None
    if any(mult[k] > 0 for k in GEOM_OPS):
        g = torch.eye(3).expand(b, 3, 3)
        if mult["xflip"] > 0:       # inverse of scale(1 - 2i, 1) (its own inverse)
            g = g @ scale2d(1 / (1 - 2 * val["xflip"]), torch.ones(b))
        if mult["rotate90"] > 0:    # rotate by i * 90 degrees; inverse = rotate2d(i * pi/2)
            g = g @ rotate2d(-(-np.pi / 2 * val["rotate90"]))
        if mult["xint"] > 0:        # integer pixel shift
            t = val["xint"]
            g = g @ translate2d(-torch.round(t[:, 0] * width), -torch.round(t[:, 1] * height))
        if mult["scale"] > 0:
            s = val["scale"]
            g = g @ scale2d(1 / s, 1 / s)
        if mult["rotate"] > 0:
            g = g @ rotate2d(-(-val["rotate_pre"]))
        if mult["aniso"] > 0:
            s = val["aniso"]
            g = g @ scale2d(1 / s, 1 / (1 / s))
        if mult["rotate"] > 0:
            g = g @ rotate2d(-(-val["rotate_post"]))
        if mult["xfrac"] > 0:
            t = val["xfrac"]
            g = g @ translate2d(-(t[:, 0] * width), -(t[:, 1] * height))

    c = None
    eye4 = torch.eye(4)
    vv = torch.outer(LUMA, LUMA)
    if any(mult[k] > 0 for k in ["brightness", "contrast", "lumaflip"]) or \
            (rgb and any(mult[k] > 0 for k in ["hue", "saturation"])):
        c = eye4.expand(b, 4, 4)
        if mult["brightness"] > 0:
            v = val["brightness"]
            c = translate3d(v, v, v) @ c
        if mult["contrast"] > 0:
            v = val["contrast"]
            c = scale3d(v, v, v) @ c
        if mult["lumaflip"] > 0:   # Householder reflection about the plane normal to LUMA
            c = (eye4 - 2 * vv * val["lumaflip"].reshape(b, 1, 1)) @ c
        if rgb and mult["hue"] > 0:
            c = rotate3d(LUMA, val["hue"]) @ c
        if rgb and mult["saturation"] > 0:
            c = (vv + (eye4 - vv) * val["saturation"].reshape(b, 1, 1)) @ c
    return g, c


# ---------------------------------------------------------------------------------------------
# Execution helpers

def upfirdn2d(x, f, up=1, down=1, pad=(0, 0, 0, 0), flip_filter=False, gain=1.0):
    """Separable FIR resampling with a 1-D filter f applied along x then y.
    pad = (x0, x1, y0, y1), negative crops. Zero insertion, pad, true convolution (correlation
    if flip_filter), keep every down-th sample. gain multiplies each 1-D pass by sqrt(gain)."""
    n, c, h, w = x.shape
    x = x.reshape(n, c, h, 1, w, 1)
    x = F.pad(x, [0, up - 1, 0, 0, 0, up - 1]).reshape(n, c, h * up, w * up)
    x = F.pad(x, [max(pad[0], 0), max(pad[1], 0), max(pad[2], 0), max(pad[3], 0)])
    x = x[:, :, max(-pad[2], 0):x.shape[2] - max(-pad[3], 0), max(-pad[0], 0):x.shape[3] - max(-pad[1], 0)]
    f = f * (gain ** 0.5)
    if not flip_filter:
        f = f.flip(0)
    k = f.numel()
    x = F.conv2d(x, f.reshape(1, 1, 1, k).repeat(c, 1, 1, 1), groups=c)
    x = F.conv2d(x, f.reshape(1, 1, k, 1).repeat(c, 1, 1, 1), groups=c)
    return x[:, :, ::down, ::down]


def up2(x, f):
    k = f.numel()
    p0, p1 = (k + 1) // 2, (k - 2) // 2
    return upfirdn2d(x, f, up=2, pad=(p0, p1, p0, p1), gain=4.0)


def down2(x, f, extra_pad=0):
    k = f.numel()
    p0, p1 = extra_pad + (k - 1) // 2, extra_pad + (k - 2) // 2
    return upfirdn2d(x, f, down=2, pad=(p0, p1, p0, p1), flip_filter=True)


class _GridSample(torch.autograd.Function):
    """Bilinear grid_sample (zeros, align_corners=False), linear in the input; its backward is
    the adjoint (_GridSampleT), whose backward is again this op, so gradients of any order
    w.r.t. the input work. The grid receives no gradient (it only depends on the draws)."""

    @staticmethod
    def forward(ctx, x, grid):
        ctx.save_for_backward(grid)
        ctx.in_shape = x.shape
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)

    @staticmethod
    def backward(ctx, dy):
        grid, = ctx.saved_tensors
        return _GridSampleT.apply(dy, grid, ctx.in_shape), None


class _GridSampleT(torch.autograd.Function):
    @staticmethod
    def forward(ctx, dy, grid, in_shape):
        ctx.save_for_backward(grid)
        with torch.enable_grad():
            z = torch.zeros(in_shape, dtype=dy.dtype, requires_grad=True)
            y = F.grid_sample(z, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
            gz, = torch.autograd.grad(y, z, dy)
        return gz

    @staticmethod
    def backward(ctx, ddx):
        grid, = ctx.saved_tensors
        return _GridSample.apply(ddx, grid), None, None


def grid_sample(x, grid):
    assert not grid.requires_grad
    return _GridSample.apply(x, grid)


def geom_plan(g, height, width):
    """From G (pixel space) to the execution plan: pad (mx0, mx1, my0, my1) as ints and the
    [B,2,3] affine_grid theta (normalised coordinates of the padded, upsampled image)."""
    cx, cy = (width - 1) / 2, (height - 1) / 2
    corners = torch.tensor([[-cx, -cy, 1], [cx, -cy, 1], [cx, cy, 1], [-cx, cy, 1]],
                           dtype=torch.float32)
    cp = g @ corners.t()                                   # [B, xyz, corner]
    m = cp[:, :2, :].permute(1, 0, 2).flatten(1)           # [xy, B*corner]
    m = torch.cat([-m, m]).max(dim=1).values               # [x0, y0, x1, y1]
    m = m + torch.tensor([HZ_PAD * 2 - cx, HZ_PAD * 2 - cy] * 2, dtype=torch.float32)
    m = m.max(torch.zeros(4))
    m = m.min(torch.tensor([width - 1, height - 1] * 2, dtype=torch.float32))
    mx0, my0, mx1, my1 = (int(v) for v in m.ceil().to(torch.int32))

    g = translate2d(torch.tensor((mx0 - mx1) / 2), torch.tensor((my0 - my1) / 2)) @ g
    g = scale2d(2.0, 2.0) @ g @ scale2d(0.5, 0.5)
    g = translate2d(-0.5, -0.5) @ g @ translate2d(0.5, 0.5)
    hu, wu = (height + my0 + my1) * 2, (width + mx0 + mx1) * 2   # upsampled padded size
    ho, wo = (height + HZ_PAD * 2) * 2, (width + HZ_PAD * 2) * 2  # sampling grid size
    g = scale2d(2 / wu, 2 / hu) @ g @ scale2d(1 / (2 / wo), 1 / (2 / ho))
    return (mx0, mx1, my0, my1), g[:, :2, :], (ho, wo)


def apply(images, draws):
    """Augments images [B, C, H, W] (C = 1 or 3) with the given draws. Differentiable (twice
    and more) w.r.t. images. Matrices are always float32; float64 images (for gradcheck) are
    processed in float64 after the float32 matrices and grid are built."""
    b, nc, h, w = images.shape
    assert int(draws["num_channels"].item()) == nc
    g, c = matrices(draws, h, w)
    x = images
    if g is not None:
        pad, theta, (ho, wo) = geom_plan(g, h, w)
        f = hz_geom().to(x.dtype)
        x = F.pad(x, list(pad), mode="reflect")
        x = up2(x, f)
        grid = F.affine_grid(theta, [b, nc, ho, wo], align_corners=False).to(x.dtype)
        x = grid_sample(x, grid)
        x = down2(x, f, extra_pad=-HZ_PAD * 2)
    if c is not None:
        c = c.to(x.dtype)
        x = x.reshape(b, nc, h * w)
        if nc == 3:
            x = c[:, :3, :3] @ x + c[:, :3, 3:]
        elif nc == 1:
            row = c[:, :3, :].mean(dim=1, keepdim=True)     # [B, 1, 4]
            x = x * row[:, :, :3].sum(dim=2, keepdim=True) + row[:, :, 3:]
        else:
            raise ValueError("images must have 1 or 3 channels")
        x = x.reshape(b, nc, h, w)
    return x


# ---------------------------------------------------------------------------------------------
# Adaptive p

def ada_update(p, signs_real_mean, batch_size, ada_target=0.6, ada_interval=4, ada_kimg=500):
    """One ADA adjustment, done after every ada_interval-th iteration (when the incremented
    batch counter is divisible by ada_interval). signs_real_mean is the mean of sign(D logits on
    augmented reals), sign(0) = 0, over every real logit computed since the previous adjustment
    (Dmain and, on lazy-regularisation iterations, also the Dreg forward pass; all GPUs).
    batch_size is the total batch. ada_kimg is 500, or 100 when resuming (transfer learning).
      p <- max(p + sign(signs_real_mean - ada_target) * batch_size * ada_interval
                   / (ada_kimg * 1000), 0)
    No upper clamp. The official p is a float32 buffer; the step is computed in float64 and the
    sum rounded to float32, which this function mirrors."""
    adjust = float(np.sign(signs_real_mean - ada_target)) * (batch_size * ada_interval) / (ada_kimg * 1000)
    pt = torch.as_tensor(p, dtype=torch.float32)
    return float((pt + adjust).clamp(min=0))
