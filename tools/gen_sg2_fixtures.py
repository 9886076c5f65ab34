"""Generate StyleGAN2-ADA parity fixtures for gantl's C networks: tests/fixtures/sg2_*.safetensors.

    /usr/bin/python3 tools/gen_sg2_fixtures.py        (from the repository root)

Values come from tools/sg2_ref.py (checked bit-for-bit against the official stylegan2-ada-pytorch on
CPU), fp32, batch N = 4, torch.manual_seed per file (single thread, so reruns reproduce the files up
to the host's float rounding). Parameters are the official initialisation plus random perturbations
(non-zero noise_strength, biases, w_avg, ...) so that every term matters.

Tensor naming scheme (all F32; scalars are 0-d tensors):
  G.<name>, D.<name>     every official state_dict tensor (parameters and buffers: w_avg, noise_const,
                         resample_filter), named exactly as in a converted gantl checkpoint.
  in.<name>              inputs: in.z [N,z_dim], in.c [N,c_dim] (only if c_dim > 0),
                         in.noise.<G module path> e.g. in.noise.synthesis.b8.conv0 [N,1,res,res]: the
                         standard-normal noise for noise_mode 'random' (the layer multiplies it by its
                         noise_strength), in.R, in.pl_noise, in.pl_mean, in.img_real, in.img_fake.
  out.<name>             forward results (listed per file below).
  out.block.<module>.x / .img   intermediate block outputs of the first forward of the file, e.g.
                         out.block.synthesis.b8.x [N,C,8,8], out.block.synthesis.b8.img, out.block.b16.x
                         (D block output, [N,C_out,8,8]); for debugging.
  grad.<loss>.<tensor>   gradient of the scalar loss <loss> w.r.t. a parameter (full prefixed name,
                         e.g. grad.img.G.synthesis.b4.conv1.weight, grad.r1.D.b4.out.bias; every
                         parameter, buffers never) or an input (grad.dmain.in.img_real).
  __metadata__           gantl.G / gantl.D: JSON constructor kwargs, exactly like a converted
                         checkpoint; gantl.fixture: JSON with the constants below and a description.

sg2_g.safetensors  (unconditional G: res 16, 3 channels, z = w = 32, 2 mapping layers, channel_base
                    256, channel_max 32, conv_clamp 256)
sg2_gc.safetensors (conditional G: c_dim 3, 1 channel, z 16, w 24, 3 mapping layers, conv_clamp 0.5,
                    which clamps a sizeable fraction of activations)
  out.ws              mapping(z, c) in eval mode [N,num_ws,w_dim]
  out.ws_trunc        truncation_psi = psi (0.7), all ws
  out.ws_trunc_cutoff truncation_psi = psi, truncation_cutoff = cutoff (2)
  out.img_const       G(z, c, noise_mode='const'), eval path (fused_modconv=True) [N,C,res,res]
  out.img_none        noise_mode='none'
  out.img_trunc       synthesis(out.ws_trunc, noise_mode='const')
  out.img_random      noise_mode='random' with in.noise.*, training path (fused_modconv=False)
  out.w_avg_updated   w_avg after one training-mode mapping(z, c): lerp(mean_n w, w_avg, 0.995)
  out.loss_img, grad.img.G.*   L = sum(out.img_random * in.R)
  path length (training path, first N/2 samples: z[:2], c[:2], noise[:2], no style mixing):
    in.pl_noise [N/2,C,res,res]  y, already divided by sqrt(res*res);  in.pl_mean (0-d) pl_mean before
    g = d sum(img * y) / d ws;  out.pl_lengths [N/2] = sqrt(mean_ws sum_wdim g^2)
    out.pl_mean (0-d) = in.pl_mean + pl_decay * (mean(pl_lengths) - in.pl_mean)   [NOT detached below]
    out.loss_pl [N/2] = pl_weight * (pl_lengths - out.pl_mean)^2
    grad.pl.G.* = d mean(out.loss_pl) / d params   (gradient of a gradient; includes the path through
                                                    out.pl_mean's dependence on pl_lengths)
sg2_d.safetensors      D 'resnet' (default), res 16, 3 channels, channel_base 256, channel_max 32,
                       conv_clamp 256, mbstd_group_size 2
sg2_d_orig.safetensors D 'orig', conv_clamp 0.5 (bites), mbstd_group_size 4
sg2_d_skip.safetensors D 'skip', conv_clamp None, mbstd_group_size 2, mbstd_num_channels 2
sg2_dc.safetensors     conditional D 'resnet', c_dim 3 (cmap_dim 32 = channels at 4x4, 8-layer
                       label mapping), conv_clamp 256, mbstd_group_size 4
sg2_d_gray.safetensors D 'skip' on 1-channel images, channel_base 128, channel_max 8 (kept small),
                       conv_clamp 256, mbstd_group_size 2
  out.logits_real, out.logits_fake [N,1]     D(in.img_real, c), D(in.img_fake, c)
  out.loss_dmain = mean softplus(logits_fake) + mean softplus(-logits_real)
  grad.dmain.D.*, grad.dmain.in.img_real, grad.dmain.in.img_fake
  out.r1_grads [N,C,res,res] = d sum D(img_real) / d img_real
  out.r1_penalty [N] = sum_CHW r1_grads^2;  out.loss_r1 = mean(r1_penalty * r1_gamma / 2)
  grad.r1.D.* = d out.loss_r1 / d params (gradient of a gradient)
sg2_gd.safetensors  G of sg2_g's config (other seed) + D of sg2_d's config, chained like training:
  out.img_fake = G(z, noise_mode='random' with in.noise.*, fused_modconv=False)
  out.logits_fake = D(out.img_fake);  out.loss_gmain = mean softplus(-logits_fake);  grad.gmain.G.*
  out.logits_real = D(in.img_real);  out.loss_dmain = mean softplus(D(out.img_fake detached))
                    + mean softplus(-logits_real);  grad.dmain.D.*

Suggested C tolerances (fp32):
  out.*            max|c - ref| <= 1e-4 * max|ref| of that tensor;
  grad.<loss>.*    max|c - ref| <= 1e-4 * (largest |ref| over all grad.<loss>.* tensors of the file).
  Gradients are compared against their group's scale because some are (near) zero by construction,
  e.g. grad.r1.D.b4.conv.bias (R1 of a piecewise-linear net does not depend on biases that only feed
  lrelu layers) and grad.pl.G.synthesis.b16.torgb.bias, and R1 gradients are small (gamma 10).
  These files recomputed in float64 differ from the stored fp32 values by at most 6e-6 (out.*) and
  3e-6 (grad groups) of those scales.
"""
import json
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import safetensors_io  # noqa: E402
import sg2_ref  # noqa: E402

OUT_DIR = os.path.join(os.path.dirname(HERE), 'tests', 'fixtures')
N = 4
PSI, CUTOFF = 0.7, 2
PL_DECAY, PL_WEIGHT, PL_SHRINK = 0.01, 2.0, 2
R1_GAMMA = 10.0

G_KW = dict(z_dim=32, w_dim=32, mapping_kwargs=dict(num_layers=2),
            synthesis_kwargs=dict(channel_base=256, channel_max=32, num_fp16_res=0, conv_clamp=256),
            c_dim=0, img_resolution=16, img_channels=3)
GC_KW = dict(z_dim=16, w_dim=24, mapping_kwargs=dict(num_layers=3),
             synthesis_kwargs=dict(channel_base=256, channel_max=32, num_fp16_res=0, conv_clamp=0.5),
             c_dim=3, img_resolution=16, img_channels=1)
D_KW = dict(block_kwargs={}, mapping_kwargs={}, epilogue_kwargs=dict(mbstd_group_size=2), channel_base=256,
            channel_max=32, num_fp16_res=0, conv_clamp=256, c_dim=0, img_resolution=16, img_channels=3)
D_ORIG_KW = dict(D_KW, architecture='orig', conv_clamp=0.5, epilogue_kwargs=dict(mbstd_group_size=4))
D_SKIP_KW = dict(D_KW, architecture='skip', conv_clamp=None,
                 epilogue_kwargs=dict(mbstd_group_size=2, mbstd_num_channels=2))
DC_KW = dict(D_KW, c_dim=3, epilogue_kwargs=dict(mbstd_group_size=4))
D_GRAY_KW = dict(D_KW, architecture='skip', img_channels=1, channel_base=128, channel_max=8)


def perturb(net):
    """Move parameters/buffers off their initial values (noise_strength and biases start at 0, w_avg
    at 0, affine biases at 1) so that the fixtures exercise every term. Uses the global RNG."""
    with torch.no_grad():
        for name, p in net.named_parameters():
            if name.endswith('noise_strength'):
                p.copy_(torch.randn([]) * 0.5)
            elif name.endswith('bias'):
                p.add_(torch.randn(p.shape) * 0.2)
            else:
                p.mul_(1 + 0.1 * torch.randn(p.shape))
        for name, b in net.named_buffers():
            if name.endswith('w_avg'):
                b.copy_(torch.randn(b.shape) * 0.5)


class Clamps:
    """Counts how many bias_act outputs a clamp actually cut (for the summary)."""

    def __enter__(self):
        self.cut, self.total, self.orig = 0, 0, sg2_ref.bias_act

        def spy(x, b=None, dim=1, act='linear', alpha=None, gain=None, clamp=None):
            y = self.orig(x, b, dim, act, alpha, gain, clamp)
            if clamp is not None:
                self.cut += int((self.orig(x, b, dim, act, alpha, gain, None).abs() > clamp).sum())
                self.total += y.numel()
            return y
        sg2_ref.bias_act = spy
        return self

    def __exit__(self, *exc):
        sg2_ref.bias_act = self.orig

    def __str__(self):
        return f'{self.cut}/{self.total} clamped' if self.total else 'no clamp'


def put(t, name, v):
    t[name] = v.detach().to(torch.float32).contiguous().numpy().copy()


def put_state(t, prefix, net):
    for k, v in net.state_dict().items():
        put(t, f'{prefix}.{k}', v)


def put_grads(t, tag, prefix, net):
    for k, p in net.named_parameters():
        put(t, f'grad.{tag}.{prefix}.{k}', p.grad if p.grad is not None else torch.zeros_like(p))


def synthesis_blocks(t, G, ws, **kw):
    """The synthesis forward, block by block, recording out.block.*; returns img."""
    x = img = None
    w_idx = 0
    for res in G.synthesis.block_resolutions:
        block = getattr(G.synthesis, f'b{res}')
        x, img = block(x, img, ws.narrow(1, w_idx, block.num_conv + block.num_torgb), prefix=f'synthesis.b{res}.', **kw)
        w_idx += block.num_conv
        put(t, f'out.block.synthesis.b{res}.x', x)
        put(t, f'out.block.synthesis.b{res}.img', img)
    return img


def d_blocks(t, D, img, c):
    x = None
    for res in D.block_resolutions:
        x, img = getattr(D, f'b{res}')(x, img)
        put(t, f'out.block.b{res}.x', x)
    return D.b4(x, img, D.mapping(None, c) if D.c_dim > 0 else None)


def draw_noise(G):
    return {name: torch.randn(N, 1, r, r) for name, r in G.noise_layers()}


def gen_G(path, kw, seed):
    torch.manual_seed(seed)
    G = sg2_ref.Generator(**kw)
    perturb(G)
    G.eval()
    t = {}
    put_state(t, 'G', G)
    z = torch.randn(N, kw['z_dim'])
    c = torch.randn(N, kw['c_dim']) if kw['c_dim'] else None
    put(t, 'in.z', z)
    if c is not None:
        put(t, 'in.c', c)
    noise = draw_noise(G)
    for k, v in noise.items():
        put(t, f'in.noise.{k}', v)
    res, ch = kw['img_resolution'], kw['img_channels']
    R = torch.randn(N, ch, res, res) * 0.05
    put(t, 'in.R', R)
    pl_noise = torch.randn(N // PL_SHRINK, ch, res, res) / np.sqrt(res * res)
    pl_mean0 = torch.tensor(0.6)
    put(t, 'in.pl_noise', pl_noise)
    put(t, 'in.pl_mean', pl_mean0)

    with torch.no_grad(), Clamps() as clamps:
        ws = G.mapping(z, c)
        put(t, 'out.ws', ws)
        ws_t = G.mapping(z, c, truncation_psi=PSI)
        put(t, 'out.ws_trunc', ws_t)
        put(t, 'out.ws_trunc_cutoff', G.mapping(z, c, truncation_psi=PSI, truncation_cutoff=CUTOFF))
        img_const = synthesis_blocks(t, G, ws, noise_mode='const', fused_modconv=True)
        assert torch.equal(img_const, G(z, c, noise_mode='const'))
        put(t, 'out.img_const', img_const)
        put(t, 'out.img_none', G(z, c, noise_mode='none'))
        put(t, 'out.img_trunc', G.synthesis(ws_t, noise_mode='const'))
        w_avg = G.mapping.w_avg.clone()
        G.mapping.train()
        G.mapping(z, c)
        put(t, 'out.w_avg_updated', G.mapping.w_avg)
        G.mapping.w_avg.copy_(w_avg)
        G.mapping.eval()

    G.zero_grad()
    img = G(z, c, noise_mode='random', noise_inputs=noise, fused_modconv=False)
    put(t, 'out.img_random', img)
    loss = (img * R).sum()
    put(t, 'out.loss_img', loss)
    loss.backward()
    put_grads(t, 'img', 'G', G)

    G.zero_grad()
    n = N // PL_SHRINK
    ws = G.mapping(z[:n], c[:n] if c is not None else None)
    img = G.synthesis(ws, noise_mode='random', noise_inputs={k: v[:n] for k, v in noise.items()},
                      fused_modconv=False)
    loss_pl, lengths, new_mean = sg2_ref.pl_loss(img, ws, pl_mean0, pl_noise, PL_DECAY, PL_WEIGHT)
    put(t, 'out.pl_lengths', lengths)
    put(t, 'out.pl_mean', new_mean)
    put(t, 'out.loss_pl', loss_pl)
    loss_pl.mean().backward()
    put_grads(t, 'pl', 'G', G)

    meta = {'gantl.G': json.dumps(kw), 'gantl.fixture': json.dumps(dict(
        kind='G', batch=N, psi=PSI, cutoff=CUTOFF, pl_decay=PL_DECAY, pl_weight=PL_WEIGHT, pl_batch_shrink=PL_SHRINK,
        doc='see tools/gen_sg2_fixtures.py'))}
    return write(path, t, meta, str(clamps))


def gen_D(path, kw, seed):
    torch.manual_seed(seed)
    D = sg2_ref.Discriminator(**kw)
    perturb(D)
    t = {}
    put_state(t, 'D', D)
    res, ch = kw['img_resolution'], kw['img_channels']
    real = torch.rand(N, ch, res, res) * 2 - 1
    fake = torch.randn(N, ch, res, res) * 0.7
    c = torch.randn(N, kw['c_dim']) if kw['c_dim'] else None
    put(t, 'in.img_real', real)
    put(t, 'in.img_fake', fake)
    if c is not None:
        put(t, 'in.c', c)
    with torch.no_grad(), Clamps() as clamps:
        logits = d_blocks(t, D, real, c)
        assert torch.equal(logits, D(real, c))
    xr, xf = real.clone().requires_grad_(True), fake.clone().requires_grad_(True)
    lr, lf = D(xr, c), D(xf, c)
    put(t, 'out.logits_real', lr)
    put(t, 'out.logits_fake', lf)
    loss = F.softplus(lf).mean() + F.softplus(-lr).mean()
    put(t, 'out.loss_dmain', loss)
    loss.backward()
    put_grads(t, 'dmain', 'D', D)
    put(t, 'grad.dmain.in.img_real', xr.grad)
    put(t, 'grad.dmain.in.img_fake', xf.grad)

    D.zero_grad()
    x = real.clone().requires_grad_(True)
    put(t, 'out.r1_grads', torch.autograd.grad(D(x, c).sum(), x)[0])
    loss_n, _, penalty = sg2_ref.r1_loss(D, real, c, R1_GAMMA)
    put(t, 'out.r1_penalty', penalty)
    put(t, 'out.loss_r1', loss_n.mean())
    loss_n.mean().backward()
    put_grads(t, 'r1', 'D', D)
    meta = {'gantl.D': json.dumps(kw), 'gantl.fixture': json.dumps(dict(
        kind='D', batch=N, r1_gamma=R1_GAMMA, doc='see tools/gen_sg2_fixtures.py'))}
    return write(path, t, meta, str(clamps))


def gen_GD(path, gkw, dkw, seed):
    torch.manual_seed(seed)
    G = sg2_ref.Generator(**gkw)
    D = sg2_ref.Discriminator(**dkw)
    perturb(G)
    perturb(D)
    G.eval()  # fused_modconv is passed explicitly; eval only keeps w_avg as stored
    t = {}
    put_state(t, 'G', G)
    put_state(t, 'D', D)
    z = torch.randn(N, gkw['z_dim'])
    noise = draw_noise(G)
    res, ch = gkw['img_resolution'], gkw['img_channels']
    real = torch.rand(N, ch, res, res) * 2 - 1
    put(t, 'in.z', z)
    for k, v in noise.items():
        put(t, f'in.noise.{k}', v)
    put(t, 'in.img_real', real)
    D.requires_grad_(False)
    img = G(z, None, noise_mode='random', noise_inputs=noise, fused_modconv=False)
    put(t, 'out.img_fake', img)
    lf = D(img, None)
    put(t, 'out.logits_fake', lf)
    loss = F.softplus(-lf).mean()
    put(t, 'out.loss_gmain', loss)
    loss.backward()
    put_grads(t, 'gmain', 'G', G)
    D.requires_grad_(True)
    G.requires_grad_(False)
    lr = D(real, None)
    put(t, 'out.logits_real', lr)
    loss = F.softplus(D(img.detach(), None)).mean() + F.softplus(-lr).mean()
    put(t, 'out.loss_dmain', loss)
    loss.backward()
    put_grads(t, 'dmain', 'D', D)
    meta = {'gantl.G': json.dumps(gkw), 'gantl.D': json.dumps(dkw), 'gantl.fixture': json.dumps(dict(
        kind='GD', batch=N, doc='see tools/gen_sg2_fixtures.py'))}
    return write(path, t, meta, '')


def write(name, t, meta, note):
    path = os.path.join(OUT_DIR, name)
    safetensors_io.save(path, t, meta)
    size = os.path.getsize(path)
    assert size < 2 * 1024 * 1024, (name, size)
    big = max((float(np.abs(v).max()) if v.size else 0.0, k) for k, v in t.items() if not k.startswith(('G.', 'D.')))
    print(f'{name}: {len(t)} tensors, {size / 1024:.0f} KiB; largest |value| {big[0]:.3g} ({big[1]}); {note}')
    return size


def main():
    torch.set_num_threads(1)
    os.makedirs(OUT_DIR, exist_ok=True)
    total = 0
    total += gen_G('sg2_g.safetensors', G_KW, 1)
    total += gen_G('sg2_gc.safetensors', GC_KW, 2)
    total += gen_D('sg2_d.safetensors', D_KW, 3)
    total += gen_D('sg2_d_orig.safetensors', D_ORIG_KW, 4)
    total += gen_D('sg2_d_skip.safetensors', D_SKIP_KW, 5)
    total += gen_D('sg2_dc.safetensors', DC_KW, 6)
    total += gen_GD('sg2_gd.safetensors', G_KW, D_KW, 7)
    total += gen_D('sg2_d_gray.safetensors', D_GRAY_KW, 8)
    assert total < 8 * 1024 * 1024, total
    print(f'total {total / 1024:.0f} KiB')


if __name__ == '__main__':
    main()
