"""Compact fp32 PyTorch reference of the StyleGAN2-ADA networks and losses (CPU).

Written from the description in /work/shared/reference/stylegan2-ada.md and checked numerically
against NVlabs/stylegan2-ada-pytorch. Where each piece corresponds in the official code:

  setup_filter, upfirdn2d, upsample2d, downsample2d  torch_utils/ops/upfirdn2d.py (reference path)
  bias_act                                           torch_utils/ops/bias_act.py (reference path)
  conv2d_resample                                    torch_utils/ops/conv2d_resample.py
  normalize_2nd_moment, modulated_conv2d,            training/networks.py
  FullyConnectedLayer, Conv2dLayer, MappingNetwork,
  SynthesisLayer, ToRGBLayer, SynthesisBlock,
  SynthesisNetwork, Generator, DiscriminatorBlock,
  MinibatchStdLayer, DiscriminatorEpilogue,
  Discriminator
  StyleGAN2Loss, pl_loss, r1_loss                    training/loss.py

Constructor keyword arguments, module names, parameter/buffer names, shapes and registration order
(hence state_dict() order) are the official ones, so an official state dict loads with
load_state_dict(strict=True) and vice versa. Differences from the official code:
  * fp32 only: `num_fp16_res`, `fp16_channels_last`, `channels_last`, `force_fp32` are accepted and
    ignored (the maths is the official num_fp16_res=0 / force_fp32=True path).
  * SynthesisNetwork/Generator accept `noise_inputs`, a dict {G module path of a SynthesisLayer, e.g.
    'synthesis.b8.conv0': tensor [N,1,res,res]} used in noise_mode='random' instead of drawing
    torch.randn (the drawn noise is still multiplied by noise_strength). Without it, random noise
    is drawn with torch.randn in the official order, so seeded runs match the official code.
  * No persistence decorators, profiling or DDP plumbing; no augmentation pipe (pass a callable).
"""

import numpy as np
import torch
import torch.nn.functional as F

# ------------------------------------------------------------------------------------------------
# Elementwise ops.

# name -> (function(x, alpha), default alpha, default gain)   [bias_act.py: activation_funcs]
ACTIVATIONS = {
    'linear':   (lambda x, a: x,                      0.0, 1.0),
    'relu':     (lambda x, a: F.relu(x),              0.0, np.sqrt(2)),
    'lrelu':    (lambda x, a: F.leaky_relu(x, a),     0.2, np.sqrt(2)),
    'tanh':     (lambda x, a: torch.tanh(x),          0.0, 1.0),
    'sigmoid':  (lambda x, a: torch.sigmoid(x),       0.0, 1.0),
    'elu':      (lambda x, a: F.elu(x),               0.0, 1.0),
    'selu':     (lambda x, a: F.selu(x),              0.0, 1.0),
    'softplus': (lambda x, a: F.softplus(x),          0.0, 1.0),
    'swish':    (lambda x, a: torch.sigmoid(x) * x,   0.0, np.sqrt(2)),
}


def bias_act(x, b=None, dim=1, act='linear', alpha=None, gain=None, clamp=None):
    """x + b (b broadcast along `dim`) -> act -> * gain -> clamp to [-clamp, clamp] (None = off)."""
    func, def_alpha, def_gain = ACTIVATIONS[act]
    if b is not None:
        x = x + b.reshape([-1 if i == dim else 1 for i in range(x.ndim)])
    x = func(x, float(def_alpha if alpha is None else alpha))
    gain = float(def_gain if gain is None else gain)
    if gain != 1:
        x = x * gain
    if clamp is not None and clamp >= 0:
        x = x.clamp(-float(clamp), float(clamp))
    return x


def normalize_2nd_moment(x, dim=1, eps=1e-8):
    return x * (x.square().mean(dim=dim, keepdim=True) + eps).rsqrt()

# ------------------------------------------------------------------------------------------------
# FIR resampling.


def setup_filter(f, normalize=True, flip_filter=False, gain=1, separable=None):
    """List/array -> float32 filter. 1-D taps (< 8 of them) become their outer product."""
    f = torch.as_tensor(1 if f is None else f, dtype=torch.float32)
    if f.ndim == 0:
        f = f[None]
    if separable is None:
        separable = f.ndim == 1 and f.numel() >= 8
    if f.ndim == 1 and not separable:
        f = torch.outer(f, f)
    if normalize:
        f = f / f.sum()
    if flip_filter:
        f = f.flip(list(range(f.ndim)))
    return f * (gain ** (f.ndim / 2))


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def _pad4(p):
    """int | [x, y] | [x0, x1, y0, y1] -> (x0, x1, y0, y1)."""
    if isinstance(p, int):
        p = [p, p]
    return (p[0], p[0], p[1], p[1]) if len(p) == 2 else tuple(p)


def _filter_size(f):
    if f is None:
        return 1, 1
    return (f.shape[-1], f.shape[0])  # (width, height); a 1-D filter is used along both axes


def upfirdn2d(x, f, up=1, down=1, padding=0, flip_filter=False, gain=1):
    """Zero-insert upsample by `up`, pad (negative = crop), convolve with FIR f, keep every
    `down`-th pixel. Padding is [x0, x1, y0, y1] on the upsampled image."""
    if f is None:
        f = torch.ones([1, 1], dtype=torch.float32)
    upx, upy = _pair(up)
    downx, downy = _pair(down)
    px0, px1, py0, py1 = _pad4(padding)
    n, c, h, w = x.shape
    x = x.reshape(n, c, h, 1, w, 1)
    x = F.pad(x, [0, upx - 1, 0, 0, 0, upy - 1]).reshape(n, c, h * upy, w * upx)
    x = F.pad(x, [max(px0, 0), max(px1, 0), max(py0, 0), max(py1, 0)])
    x = x[:, :, max(-py0, 0):x.shape[2] - max(-py1, 0), max(-px0, 0):x.shape[3] - max(-px1, 0)]
    f = (f * (gain ** (f.ndim / 2))).to(x.dtype)
    if not flip_filter:  # conv2d correlates; flipping makes it a true convolution
        f = f.flip(list(range(f.ndim)))
    if f.ndim == 2:
        x = F.conv2d(x, f[None, None].repeat(c, 1, 1, 1), groups=c)
    else:
        k = f[None, None].repeat(c, 1, 1)
        x = F.conv2d(x, k.unsqueeze(2), groups=c)
        x = F.conv2d(x, k.unsqueeze(3), groups=c)
    return x[:, :, ::downy, ::downx]


def upsample2d(x, f, up=2, padding=0, flip_filter=False, gain=1):
    upx, upy = _pair(up)
    px0, px1, py0, py1 = _pad4(padding)
    fw, fh = _filter_size(f)
    p = [px0 + (fw + upx - 1) // 2, px1 + (fw - upx) // 2, py0 + (fh + upy - 1) // 2, py1 + (fh - upy) // 2]
    return upfirdn2d(x, f, up=up, padding=p, flip_filter=flip_filter, gain=gain * upx * upy)


def downsample2d(x, f, down=2, padding=0, flip_filter=False, gain=1):
    downx, downy = _pair(down)
    px0, px1, py0, py1 = _pad4(padding)
    fw, fh = _filter_size(f)
    p = [px0 + (fw - downx + 1) // 2, px1 + (fw - downx) // 2, py0 + (fh - downy + 1) // 2, py1 + (fh - downy) // 2]
    return upfirdn2d(x, f, down=down, padding=p, flip_filter=flip_filter, gain=gain)


def _conv(x, w, stride=1, padding=0, groups=1, transpose=False, flip_weight=True):
    if not flip_weight:  # flip_weight=False means a true convolution
        w = w.flip([2, 3])
    if transpose:
        return F.conv_transpose2d(x, w, stride=stride, padding=padding, groups=groups)
    return F.conv2d(x, w, stride=stride, padding=padding, groups=groups)


def conv2d_resample(x, w, f=None, up=1, down=1, padding=0, groups=1, flip_weight=True, flip_filter=False):
    """Conv with optional FIR up/downsampling; padding refers to the upsampled image and is applied
    once. Same decomposition as the official op (which determines float rounding):
      1x1 down: FIR-downsample, conv.   1x1 up: conv, FIR-upsample (gain up^2).
      down: FIR with padding, stride-`down` conv.
      up:   stride-`up` transposed conv (unflipped kernel w.r.t. flip_weight), FIR (gain up^2).
      else: plain padded conv."""
    out_ch, in_ch_per_group, kh, kw = w.shape
    fw, fh = _filter_size(f)
    px0, px1, py0, py1 = _pad4(padding)
    if up > 1:
        px0 += (fw + up - 1) // 2
        px1 += (fw - up) // 2
        py0 += (fh + up - 1) // 2
        py1 += (fh - up) // 2
    if down > 1:
        px0 += (fw - down + 1) // 2
        px1 += (fw - down) // 2
        py0 += (fh - down + 1) // 2
        py1 += (fh - down) // 2
    if kw == 1 and kh == 1 and down > 1 and up == 1:
        x = upfirdn2d(x, f, down=down, padding=[px0, px1, py0, py1], flip_filter=flip_filter)
        return _conv(x, w, groups=groups, flip_weight=flip_weight)
    if kw == 1 and kh == 1 and up > 1 and down == 1:
        x = _conv(x, w, groups=groups, flip_weight=flip_weight)
        return upfirdn2d(x, f, up=up, padding=[px0, px1, py0, py1], gain=up ** 2, flip_filter=flip_filter)
    if down > 1 and up == 1:
        x = upfirdn2d(x, f, padding=[px0, px1, py0, py1], flip_filter=flip_filter)
        return _conv(x, w, stride=down, groups=groups, flip_weight=flip_weight)
    if up > 1:
        if groups == 1:
            w = w.transpose(0, 1)
        else:
            w = w.reshape(groups, out_ch // groups, in_ch_per_group, kh, kw).transpose(1, 2)
            w = w.reshape(groups * in_ch_per_group, out_ch // groups, kh, kw)
        px0 -= kw - 1
        px1 -= kw - up
        py0 -= kh - 1
        py1 -= kh - up
        pxt = max(min(-px0, -px1), 0)
        pyt = max(min(-py0, -py1), 0)
        x = _conv(x, w, stride=up, padding=[pyt, pxt], groups=groups, transpose=True, flip_weight=not flip_weight)
        x = upfirdn2d(x, f, padding=[px0 + pxt, px1 + pxt, py0 + pyt, py1 + pyt], gain=up ** 2, flip_filter=flip_filter)
        if down > 1:
            x = upfirdn2d(x, f, down=down, flip_filter=flip_filter)
        return x
    if px0 == px1 and py0 == py1 and px0 >= 0 and py0 >= 0:
        return _conv(x, w, padding=[py0, px0], groups=groups, flip_weight=flip_weight)
    x = upfirdn2d(x, None, padding=[px0, px1, py0, py1])  # generic fallback (unused by the networks)
    return _conv(x, w, groups=groups, flip_weight=flip_weight)

# ------------------------------------------------------------------------------------------------
# Layers.


def modulated_conv2d(x, weight, styles, noise=None, up=1, down=1, padding=0, resample_filter=None,
                     demodulate=True, flip_weight=True, fused_modconv=True):
    """Style-modulated conv: w'[n,o,i] = W[o,i] * s[n,i]; demod d[n,o] = rsqrt(sum_{i,k} w'^2 + 1e-8).
    fused_modconv=False (training path): (x * s) -> conv -> * d + noise.
    fused_modconv=True (eval path): the same maths as one grouped conv with per-sample weights."""
    n = x.shape[0]
    out_ch, in_ch, kh, kw = weight.shape
    w = dcoefs = None
    if demodulate or fused_modconv:
        w = weight.unsqueeze(0) * styles.reshape(n, 1, -1, 1, 1)  # [N,O,I,k,k]
    if demodulate:
        dcoefs = (w.square().sum(dim=[2, 3, 4]) + 1e-8).rsqrt()  # [N,O]
    if demodulate and fused_modconv:
        w = w * dcoefs.reshape(n, -1, 1, 1, 1)
    if not fused_modconv:
        x = x * styles.reshape(n, -1, 1, 1)
        x = conv2d_resample(x, weight, f=resample_filter, up=up, down=down, padding=padding, flip_weight=flip_weight)
        if demodulate and noise is not None:
            return torch.addcmul(noise, x, dcoefs.reshape(n, -1, 1, 1))
        if demodulate:
            return x * dcoefs.reshape(n, -1, 1, 1)
        return x + noise if noise is not None else x
    x = x.reshape(1, -1, *x.shape[2:])
    w = w.reshape(-1, in_ch, kh, kw)
    x = conv2d_resample(x, w, f=resample_filter, up=up, down=down, padding=padding, groups=n, flip_weight=flip_weight)
    x = x.reshape(n, -1, *x.shape[2:])
    return x + noise if noise is not None else x


class FullyConnectedLayer(torch.nn.Module):
    """[weight (out,in), bias (out)]; runtime weight * lr_multiplier/sqrt(in), bias * lr_multiplier."""

    def __init__(self, in_features, out_features, bias=True, activation='linear', lr_multiplier=1, bias_init=0):
        super().__init__()
        self.activation = activation
        self.weight = torch.nn.Parameter(torch.randn([out_features, in_features]) / lr_multiplier)
        self.bias = torch.nn.Parameter(torch.full([out_features], np.float32(bias_init))) if bias else None
        self.weight_gain = lr_multiplier / np.sqrt(in_features)
        self.bias_gain = lr_multiplier

    def forward(self, x):
        w = self.weight * self.weight_gain
        b = self.bias
        if b is not None and self.bias_gain != 1:
            b = b * self.bias_gain
        if self.activation == 'linear' and b is not None:
            return torch.addmm(b.unsqueeze(0), x, w.t())
        return bias_act(x.matmul(w.t()), b, act=self.activation)


class Conv2dLayer(torch.nn.Module):
    """[weight (O,I,k,k), bias (O), buffer resample_filter]; weight * 1/sqrt(I*k*k), 'same' padding,
    then bias_act(act, gain=def_gain*gain, clamp=conv_clamp*gain). trainable=False stores weight and
    bias as buffers (Freeze-D), names unchanged."""

    def __init__(self, in_channels, out_channels, kernel_size, bias=True, activation='linear', up=1, down=1,
                 resample_filter=[1, 3, 3, 1], conv_clamp=None, channels_last=False, trainable=True):
        super().__init__()
        self.activation = activation
        self.up = up
        self.down = down
        self.conv_clamp = conv_clamp
        self.register_buffer('resample_filter', setup_filter(resample_filter))
        self.padding = kernel_size // 2
        self.weight_gain = 1 / np.sqrt(in_channels * (kernel_size ** 2))
        self.act_gain = ACTIVATIONS[activation][2]
        weight = torch.randn([out_channels, in_channels, kernel_size, kernel_size])
        bias = torch.zeros([out_channels]) if bias else None
        if trainable:
            self.weight = torch.nn.Parameter(weight)
            self.bias = torch.nn.Parameter(bias) if bias is not None else None
        else:
            self.register_buffer('weight', weight)
            if bias is not None:
                self.register_buffer('bias', bias)
            else:
                self.bias = None

    def forward(self, x, gain=1):
        w = self.weight * self.weight_gain
        x = conv2d_resample(x, w, f=self.resample_filter, up=self.up, down=self.down, padding=self.padding,
                            flip_weight=(self.up == 1))
        clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        return bias_act(x, self.bias, act=self.activation, gain=self.act_gain * gain, clamp=clamp)


class MappingNetwork(torch.nn.Module):
    """z -> normalize_2nd_moment (|| normalize(embed(c))) -> num_layers FC (lrelu, lr mult 0.01).
    Buffer w_avg (only if num_ws and w_avg_beta are not None): in training mode
    w_avg = lerp(mean_batch(w), w_avg, w_avg_beta). Broadcast to num_ws, then truncation
    w = lerp(w_avg, w, psi) on the first truncation_cutoff ws (all if None)."""

    def __init__(self, z_dim, c_dim, w_dim, num_ws, num_layers=8, embed_features=None, layer_features=None,
                 activation='lrelu', lr_multiplier=0.01, w_avg_beta=0.995):
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim, self.num_ws = z_dim, c_dim, w_dim, num_ws
        self.num_layers = num_layers
        self.w_avg_beta = w_avg_beta
        if embed_features is None:
            embed_features = w_dim
        if c_dim == 0:
            embed_features = 0
        if layer_features is None:
            layer_features = w_dim
        feats = [z_dim + embed_features] + [layer_features] * (num_layers - 1) + [w_dim]
        if c_dim > 0:
            self.embed = FullyConnectedLayer(c_dim, embed_features)
        for i in range(num_layers):
            setattr(self, f'fc{i}', FullyConnectedLayer(feats[i], feats[i + 1], activation=activation,
                                                        lr_multiplier=lr_multiplier))
        if num_ws is not None and w_avg_beta is not None:
            self.register_buffer('w_avg', torch.zeros([w_dim]))

    def forward(self, z, c, truncation_psi=1, truncation_cutoff=None, skip_w_avg_update=False):
        x = None
        if self.z_dim > 0:
            x = normalize_2nd_moment(z.to(torch.float32))
        if self.c_dim > 0:
            y = normalize_2nd_moment(self.embed(c.to(torch.float32)))
            x = torch.cat([x, y], dim=1) if x is not None else y
        for i in range(self.num_layers):
            x = getattr(self, f'fc{i}')(x)
        if self.w_avg_beta is not None and self.training and not skip_w_avg_update:
            with torch.no_grad():
                self.w_avg.copy_(x.detach().mean(dim=0).lerp(self.w_avg, self.w_avg_beta))
        if self.num_ws is not None:
            x = x.unsqueeze(1).repeat([1, self.num_ws, 1])
        if truncation_psi != 1:
            assert self.w_avg_beta is not None
            if self.num_ws is None or truncation_cutoff is None:
                x = self.w_avg.lerp(x, truncation_psi)
            else:
                x[:, :truncation_cutoff] = self.w_avg.lerp(x[:, :truncation_cutoff], truncation_psi)
        return x


class SynthesisLayer(torch.nn.Module):
    """Modulated 3x3 conv (optionally up=2) + noise + bias + lrelu*sqrt(2) (* gain) + clamp.
    [weight, noise_strength (scalar), bias, buffers resample_filter, noise_const (res,res), affine.*]."""

    def __init__(self, in_channels, out_channels, w_dim, resolution, kernel_size=3, up=1, use_noise=True,
                 activation='lrelu', resample_filter=[1, 3, 3, 1], conv_clamp=None, channels_last=False):
        super().__init__()
        self.resolution = resolution
        self.up = up
        self.use_noise = use_noise
        self.activation = activation
        self.conv_clamp = conv_clamp
        self.register_buffer('resample_filter', setup_filter(resample_filter))
        self.padding = kernel_size // 2
        self.act_gain = ACTIVATIONS[activation][2]
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = torch.nn.Parameter(torch.randn([out_channels, in_channels, kernel_size, kernel_size]))
        if use_noise:
            self.register_buffer('noise_const', torch.randn([resolution, resolution]))
            self.noise_strength = torch.nn.Parameter(torch.zeros([]))
        self.bias = torch.nn.Parameter(torch.zeros([out_channels]))

    def forward(self, x, w, noise_mode='random', fused_modconv=True, gain=1, noise_input=None):
        assert noise_mode in ['random', 'const', 'none']
        styles = self.affine(w)
        noise = None
        if self.use_noise and noise_mode == 'random':
            if noise_input is None:
                noise_input = torch.randn([x.shape[0], 1, self.resolution, self.resolution])
            noise = noise_input * self.noise_strength
        if self.use_noise and noise_mode == 'const':
            noise = self.noise_const * self.noise_strength
        x = modulated_conv2d(x, self.weight, styles, noise=noise, up=self.up, padding=self.padding,
                             resample_filter=self.resample_filter, flip_weight=(self.up == 1),
                             fused_modconv=fused_modconv)
        clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        return bias_act(x, self.bias, act=self.activation, gain=self.act_gain * gain, clamp=clamp)


class ToRGBLayer(torch.nn.Module):
    """1x1 modulated conv without demodulation; styles = affine(w) / sqrt(I); bias, linear, clamp."""

    def __init__(self, in_channels, out_channels, w_dim, kernel_size=1, conv_clamp=None, channels_last=False):
        super().__init__()
        self.conv_clamp = conv_clamp
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = torch.nn.Parameter(torch.randn([out_channels, in_channels, kernel_size, kernel_size]))
        self.bias = torch.nn.Parameter(torch.zeros([out_channels]))
        self.weight_gain = 1 / np.sqrt(in_channels * (kernel_size ** 2))

    def forward(self, x, w, fused_modconv=True):
        styles = self.affine(w) * self.weight_gain
        x = modulated_conv2d(x, self.weight, styles, demodulate=False, fused_modconv=fused_modconv)
        return bias_act(x, self.bias, clamp=self.conv_clamp)


class SynthesisBlock(torch.nn.Module):
    """b4: const -> conv1. Others: conv0 (up 2) -> conv1. 'skip': img = upsample2d(img) + torgb(x);
    'resnet': x = skip(x, gain sqrt .5) + conv1(conv0(x), gain sqrt .5); 'orig'/'resnet' have torgb
    only in the last block. Consumes num_conv + num_torgb ws."""

    def __init__(self, in_channels, out_channels, w_dim, resolution, img_channels, is_last, architecture='skip',
                 resample_filter=[1, 3, 3, 1], conv_clamp=None, use_fp16=False, fp16_channels_last=False,
                 **layer_kwargs):
        assert architecture in ['orig', 'skip', 'resnet']
        super().__init__()
        self.in_channels = in_channels
        self.w_dim = w_dim
        self.resolution = resolution
        self.img_channels = img_channels
        self.is_last = is_last
        self.architecture = architecture
        self.register_buffer('resample_filter', setup_filter(resample_filter))
        self.num_conv = 0
        self.num_torgb = 0
        if in_channels == 0:
            self.const = torch.nn.Parameter(torch.randn([out_channels, resolution, resolution]))
        if in_channels != 0:
            self.conv0 = SynthesisLayer(in_channels, out_channels, w_dim=w_dim, resolution=resolution, up=2,
                                        resample_filter=resample_filter, conv_clamp=conv_clamp, **layer_kwargs)
            self.num_conv += 1
        self.conv1 = SynthesisLayer(out_channels, out_channels, w_dim=w_dim, resolution=resolution,
                                    conv_clamp=conv_clamp, **layer_kwargs)
        self.num_conv += 1
        if is_last or architecture == 'skip':
            self.torgb = ToRGBLayer(out_channels, img_channels, w_dim=w_dim, conv_clamp=conv_clamp)
            self.num_torgb += 1
        if in_channels != 0 and architecture == 'resnet':
            self.skip = Conv2dLayer(in_channels, out_channels, kernel_size=1, bias=False, up=2,
                                    resample_filter=resample_filter)

    def forward(self, x, img, ws, force_fp32=False, fused_modconv=None, noise_mode='random', noise_inputs=None,
                prefix=''):
        w_iter = iter(ws.unbind(dim=1))
        if fused_modconv is None:
            fused_modconv = not self.training
        noise_inputs = noise_inputs or {}
        kw = dict(fused_modconv=fused_modconv, noise_mode=noise_mode)
        if self.in_channels == 0:
            x = self.const.unsqueeze(0).repeat([ws.shape[0], 1, 1, 1])
            x = self.conv1(x, next(w_iter), noise_input=noise_inputs.get(prefix + 'conv1'), **kw)
        elif self.architecture == 'resnet':
            y = self.skip(x, gain=np.sqrt(0.5))
            x = self.conv0(x, next(w_iter), noise_input=noise_inputs.get(prefix + 'conv0'), **kw)
            x = self.conv1(x, next(w_iter), noise_input=noise_inputs.get(prefix + 'conv1'), gain=np.sqrt(0.5), **kw)
            x = y + x
        else:
            x = self.conv0(x, next(w_iter), noise_input=noise_inputs.get(prefix + 'conv0'), **kw)
            x = self.conv1(x, next(w_iter), noise_input=noise_inputs.get(prefix + 'conv1'), **kw)
        if img is not None:
            img = upsample2d(img, self.resample_filter)
        if self.is_last or self.architecture == 'skip':
            y = self.torgb(x, next(w_iter), fused_modconv=fused_modconv)
            img = img + y if img is not None else y
        return x, img


class SynthesisNetwork(torch.nn.Module):
    """Blocks b4..b{img_resolution}, channels(res) = min(channel_base // res, channel_max).
    Block at res reads ws[w_idx : w_idx + num_conv + num_torgb], then w_idx += num_conv."""

    def __init__(self, w_dim, img_resolution, img_channels, channel_base=32768, channel_max=512, num_fp16_res=0,
                 **block_kwargs):
        assert img_resolution >= 4 and img_resolution & (img_resolution - 1) == 0
        super().__init__()
        self.w_dim = w_dim
        self.img_resolution = img_resolution
        self.img_resolution_log2 = int(np.log2(img_resolution))
        self.img_channels = img_channels
        self.block_resolutions = [2 ** i for i in range(2, self.img_resolution_log2 + 1)]
        ch = {res: min(channel_base // res, channel_max) for res in self.block_resolutions}
        self.num_ws = 0
        for res in self.block_resolutions:
            is_last = res == img_resolution
            block = SynthesisBlock(ch[res // 2] if res > 4 else 0, ch[res], w_dim=w_dim, resolution=res,
                                   img_channels=img_channels, is_last=is_last, **block_kwargs)
            self.num_ws += block.num_conv + (block.num_torgb if is_last else 0)
            setattr(self, f'b{res}', block)

    def forward(self, ws, noise_inputs=None, **block_kwargs):
        assert ws.ndim == 3 and ws.shape[1] == self.num_ws and ws.shape[2] == self.w_dim, ws.shape
        ws = ws.to(torch.float32)
        x = img = None
        w_idx = 0
        for res in self.block_resolutions:
            block = getattr(self, f'b{res}')
            cur = ws.narrow(1, w_idx, block.num_conv + block.num_torgb)
            w_idx += block.num_conv
            x, img = block(x, img, cur, noise_inputs=noise_inputs, prefix=f'synthesis.b{res}.', **block_kwargs)
        return img


class Generator(torch.nn.Module):
    def __init__(self, z_dim, c_dim, w_dim, img_resolution, img_channels, mapping_kwargs={}, synthesis_kwargs={}):
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim = z_dim, c_dim, w_dim
        self.img_resolution, self.img_channels = img_resolution, img_channels
        self.synthesis = SynthesisNetwork(w_dim=w_dim, img_resolution=img_resolution, img_channels=img_channels,
                                          **synthesis_kwargs)
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, num_ws=self.num_ws, **mapping_kwargs)

    def forward(self, z, c, truncation_psi=1, truncation_cutoff=None, **synthesis_kwargs):
        ws = self.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)
        return self.synthesis(ws, **synthesis_kwargs)

    def noise_layers(self):
        """[(G module path, resolution)] of the SynthesisLayers with noise, in the order forward
        draws their random noise."""
        out = []
        for res in self.synthesis.block_resolutions:
            for name in ['conv0', 'conv1']:
                layer = getattr(getattr(self.synthesis, f'b{res}'), name, None)
                if layer is not None and layer.use_noise:
                    out.append((f'synthesis.b{res}.{name}', res))
        return out

# ------------------------------------------------------------------------------------------------
# Discriminator.


class DiscriminatorBlock(torch.nn.Module):
    """[fromrgb (first block or 'skip')], conv0 3x3, conv1 3x3 down 2, ['resnet': skip 1x1 down 2, no
    bias]; resnet: x = skip(x, gain sqrt .5) + conv1(conv0(x), gain sqrt .5). 'skip' also carries a
    FIR-downsampled image to the next block."""

    def __init__(self, in_channels, tmp_channels, out_channels, resolution, img_channels, first_layer_idx,
                 architecture='resnet', activation='lrelu', resample_filter=[1, 3, 3, 1], conv_clamp=None,
                 use_fp16=False, fp16_channels_last=False, freeze_layers=0):
        assert in_channels in [0, tmp_channels]
        assert architecture in ['orig', 'skip', 'resnet']
        super().__init__()
        self.in_channels = in_channels
        self.resolution = resolution
        self.img_channels = img_channels
        self.first_layer_idx = first_layer_idx
        self.architecture = architecture
        self.register_buffer('resample_filter', setup_filter(resample_filter))
        self.num_layers = 0

        def trainable():
            t = self.first_layer_idx + self.num_layers >= freeze_layers
            self.num_layers += 1
            return t

        if in_channels == 0 or architecture == 'skip':
            self.fromrgb = Conv2dLayer(img_channels, tmp_channels, kernel_size=1, activation=activation,
                                       trainable=trainable(), conv_clamp=conv_clamp)
        self.conv0 = Conv2dLayer(tmp_channels, tmp_channels, kernel_size=3, activation=activation,
                                 trainable=trainable(), conv_clamp=conv_clamp)
        self.conv1 = Conv2dLayer(tmp_channels, out_channels, kernel_size=3, activation=activation, down=2,
                                 trainable=trainable(), resample_filter=resample_filter, conv_clamp=conv_clamp)
        if architecture == 'resnet':
            self.skip = Conv2dLayer(tmp_channels, out_channels, kernel_size=1, bias=False, down=2,
                                    trainable=trainable(), resample_filter=resample_filter)

    def forward(self, x, img, force_fp32=False):
        if self.in_channels == 0 or self.architecture == 'skip':
            y = self.fromrgb(img)
            x = x + y if x is not None else y
            img = downsample2d(img, self.resample_filter) if self.architecture == 'skip' else None
        if self.architecture == 'resnet':
            y = self.skip(x, gain=np.sqrt(0.5))
            x = self.conv1(self.conv0(x), gain=np.sqrt(0.5))
            x = y + x
        else:
            x = self.conv1(self.conv0(x))
        return x, img


class MinibatchStdLayer(torch.nn.Module):
    """Groups of G = min(group_size, N) samples, sample n in group n mod (N/G); per group and per
    channel-group f: mean over (c,H,W) of sqrt(var over group + 1e-8); appended as F channels."""

    def __init__(self, group_size, num_channels=1):
        super().__init__()
        self.group_size = group_size
        self.num_channels = num_channels

    def forward(self, x):
        n, c, h, w = x.shape
        g = min(self.group_size, n) if self.group_size is not None else n
        f = self.num_channels
        y = x.reshape(g, -1, f, c // f, h, w)
        y = y - y.mean(dim=0)
        y = y.square().mean(dim=0)
        y = (y + 1e-8).sqrt()
        y = y.mean(dim=[2, 3, 4]).reshape(-1, f, 1, 1).repeat(g, 1, h, w)
        return torch.cat([x, y], dim=1)


class DiscriminatorEpilogue(torch.nn.Module):
    """['skip': fromrgb], mbstd, conv 3x3 (C+F -> C), fc (C*16 -> C) lrelu, out (C -> 1 or cmap_dim);
    conditional: sum(out * cmap) / sqrt(cmap_dim)."""

    def __init__(self, in_channels, cmap_dim, resolution, img_channels, architecture='resnet', mbstd_group_size=4,
                 mbstd_num_channels=1, activation='lrelu', conv_clamp=None):
        assert architecture in ['orig', 'skip', 'resnet']
        super().__init__()
        self.in_channels = in_channels
        self.cmap_dim = cmap_dim
        self.resolution = resolution
        self.img_channels = img_channels
        self.architecture = architecture
        if architecture == 'skip':
            self.fromrgb = Conv2dLayer(img_channels, in_channels, kernel_size=1, activation=activation)
        self.mbstd = MinibatchStdLayer(mbstd_group_size, mbstd_num_channels) if mbstd_num_channels > 0 else None
        self.conv = Conv2dLayer(in_channels + mbstd_num_channels, in_channels, kernel_size=3, activation=activation,
                                conv_clamp=conv_clamp)
        self.fc = FullyConnectedLayer(in_channels * (resolution ** 2), in_channels, activation=activation)
        self.out = FullyConnectedLayer(in_channels, 1 if cmap_dim == 0 else cmap_dim)

    def forward(self, x, img, cmap, force_fp32=False):
        if self.architecture == 'skip':
            x = x + self.fromrgb(img)
        if self.mbstd is not None:
            x = self.mbstd(x)
        x = self.out(self.fc(self.conv(x).flatten(1)))
        if self.cmap_dim > 0:
            x = (x * cmap).sum(dim=1, keepdim=True) * (1 / np.sqrt(self.cmap_dim))
        return x


class Discriminator(torch.nn.Module):
    def __init__(self, c_dim, img_resolution, img_channels, architecture='resnet', channel_base=32768,
                 channel_max=512, num_fp16_res=0, conv_clamp=None, cmap_dim=None, block_kwargs={},
                 mapping_kwargs={}, epilogue_kwargs={}):
        super().__init__()
        self.c_dim = c_dim
        self.img_resolution = img_resolution
        self.img_resolution_log2 = int(np.log2(img_resolution))
        self.img_channels = img_channels
        self.block_resolutions = [2 ** i for i in range(self.img_resolution_log2, 2, -1)]
        ch = {res: min(channel_base // res, channel_max) for res in self.block_resolutions + [4]}
        if cmap_dim is None:
            cmap_dim = ch[4]
        if c_dim == 0:
            cmap_dim = 0
        common = dict(img_channels=img_channels, architecture=architecture, conv_clamp=conv_clamp)
        layer_idx = 0
        for res in self.block_resolutions:
            block = DiscriminatorBlock(ch[res] if res < img_resolution else 0, ch[res], ch[res // 2], resolution=res,
                                       first_layer_idx=layer_idx, **block_kwargs, **common)
            setattr(self, f'b{res}', block)
            layer_idx += block.num_layers
        if c_dim > 0:
            self.mapping = MappingNetwork(z_dim=0, c_dim=c_dim, w_dim=cmap_dim, num_ws=None, w_avg_beta=None,
                                          **mapping_kwargs)
        self.b4 = DiscriminatorEpilogue(ch[4], cmap_dim=cmap_dim, resolution=4, **epilogue_kwargs, **common)

    def forward(self, img, c, **block_kwargs):
        x = None
        for res in self.block_resolutions:
            x, img = getattr(self, f'b{res}')(x, img)
        cmap = self.mapping(None, c) if self.c_dim > 0 else None
        return self.b4(x, img, cmap)

# ------------------------------------------------------------------------------------------------
# Losses (training/loss.py).


def r1_loss(D, real_img, real_c, r1_gamma):
    """R1 on the (pre-augmentation) reals: penalty_n = sum_{CHW} (d sum D(x) / dx)^2, computed with
    create_graph so that its parameter gradient is a gradient of a gradient.
    Returns (loss_n = penalty_n * gamma/2, logits, penalty)."""
    x = real_img.detach().requires_grad_(True)
    logits = D(x, real_c)
    grads = torch.autograd.grad(outputs=[logits.sum()], inputs=[x], create_graph=True, only_inputs=True)[0]
    penalty = grads.square().sum([1, 2, 3])
    return penalty * (r1_gamma / 2), logits, penalty


def pl_loss(img, ws, pl_mean, pl_noise, pl_decay=0.01, pl_weight=2):
    """Path length: g = d sum(img * y) / d ws (y = randn/sqrt(H*W) given as pl_noise), L_n =
    sqrt(mean_ws sum_wdim g^2); new_mean = lerp(pl_mean, mean(L), pl_decay) (NOT detached inside the
    penalty, as in the official code); loss_n = (L_n - new_mean)^2 * pl_weight.
    Returns (loss_n, pl_lengths, new_mean detached)."""
    grads = torch.autograd.grad(outputs=[(img * pl_noise).sum()], inputs=[ws], create_graph=True, only_inputs=True)[0]
    lengths = grads.square().sum(2).mean(1).sqrt()
    new_mean = pl_mean.lerp(lengths.mean(), pl_decay)
    return (lengths - new_mean).square() * pl_weight, lengths, new_mean.detach()


class StyleGAN2Loss:
    """The official StyleGAN2Loss phases (Gmain, Greg, Gboth, Dmain, Dreg, Dboth), same RNG draw order.
    G and D are the networks (G.mapping / G.synthesis used as in the official code); augment_pipe is an
    optional callable. synthesis_kwargs (e.g. noise_inputs) are passed to every synthesis call."""

    def __init__(self, G, D, augment_pipe=None, style_mixing_prob=0.9, r1_gamma=10, pl_batch_shrink=2, pl_decay=0.01,
                 pl_weight=2):
        self.G_mapping, self.G_synthesis, self.D = G.mapping, G.synthesis, D
        self.augment_pipe = augment_pipe
        self.style_mixing_prob = style_mixing_prob
        self.r1_gamma = r1_gamma
        self.pl_batch_shrink = pl_batch_shrink
        self.pl_decay = pl_decay
        self.pl_weight = pl_weight
        self.pl_mean = torch.zeros([])

    def run_G(self, z, c, **synthesis_kwargs):
        ws = self.G_mapping(z, c)
        if self.style_mixing_prob > 0:
            cutoff = torch.empty([], dtype=torch.int64).random_(1, ws.shape[1])
            cutoff = torch.where(torch.rand([]) < self.style_mixing_prob, cutoff, torch.full_like(cutoff, ws.shape[1]))
            ws[:, cutoff:] = self.G_mapping(torch.randn_like(z), c, skip_w_avg_update=True)[:, cutoff:]
        return self.G_synthesis(ws, **synthesis_kwargs), ws

    def run_D(self, img, c):
        if self.augment_pipe is not None:
            img = self.augment_pipe(img)
        return self.D(img, c)

    def accumulate_gradients(self, phase, real_img, real_c, gen_z, gen_c, gain=1, **synthesis_kwargs):
        assert phase in ['Gmain', 'Greg', 'Gboth', 'Dmain', 'Dreg', 'Dboth']
        do_Gmain = phase in ['Gmain', 'Gboth']
        do_Dmain = phase in ['Dmain', 'Dboth']
        do_Gpl = phase in ['Greg', 'Gboth'] and self.pl_weight != 0
        do_Dr1 = phase in ['Dreg', 'Dboth'] and self.r1_gamma != 0
        if do_Gmain:  # softplus(-D(G(z)))
            gen_img, _ = self.run_G(gen_z, gen_c, **synthesis_kwargs)
            F.softplus(-self.run_D(gen_img, gen_c)).mean().mul(gain).backward()
        if do_Gpl:
            n = gen_z.shape[0] // self.pl_batch_shrink
            gen_img, gen_ws = self.run_G(gen_z[:n], gen_c[:n], **synthesis_kwargs)
            pl_noise = torch.randn_like(gen_img) / np.sqrt(gen_img.shape[2] * gen_img.shape[3])
            loss, _, new_mean = pl_loss(gen_img, gen_ws, self.pl_mean, pl_noise, self.pl_decay, self.pl_weight)
            self.pl_mean.copy_(new_mean)
            (gen_img[:, 0, 0, 0] * 0 + loss).mean().mul(gain).backward()
        if do_Dmain:  # softplus(D(G(z)))
            gen_img, _ = self.run_G(gen_z, gen_c, **synthesis_kwargs)
            F.softplus(self.run_D(gen_img, gen_c)).mean().mul(gain).backward()
        if do_Dmain or do_Dr1:  # softplus(-D(x)) and/or R1
            x = real_img.detach().requires_grad_(do_Dr1)
            logits = self.run_D(x, real_c)
            loss = 0
            if do_Dmain:
                loss = F.softplus(-logits)
            if do_Dr1:
                grads = torch.autograd.grad(outputs=[logits.sum()], inputs=[x], create_graph=True, only_inputs=True)[0]
                loss = loss + grads.square().sum([1, 2, 3]) * (self.r1_gamma / 2)
            (logits * 0 + loss).mean().mul(gain).backward()
