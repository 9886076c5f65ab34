#!/usr/bin/python3
"""Reference training iterations for gantl's trainer: writes tests/fixtures/train_step.safetensors.

    /usr/bin/python3 tools/train_ref.py            (from the repository root)

The official training loop (training/training_loop.py) and loss (training/loss.py) of
stylegan2-ada-pytorch, written out for one process, on tools/sg2_ref.py's networks: phases
Gmain, Greg (path length), Dmain, Dreg (R1) with lazy regularisation (Adam lr * r and
betas ^ r, r = I / (I + 1), loss gain = interval), gradient accumulation over rounds of
batch_gpu images, style mixing, nan_to_num before each Adam step, the G EMA with ramp-up,
the w_avg tracking of the mapping network, and the ADA statistics.

Random numbers: every random array is drawn from a Recorder (torch.randn / torch.rand on a
seeded generator) and recorded, in the order the C trainer consumes them, so the C test can
replay them ("draw.<k>", float32, flat). The order within one iteration:
  1. z for every phase: normal (num_phases * batch, z_dim), phase p uses rows p*batch...
  2. for each phase that runs (batch_idx % interval == 0), for each round of batch_gpu images:
     Gmain: run_G, run_D;  Greg: run_G on batch_gpu / pl_batch_shrink images, then pl noise
     normal (n, C, H, W);  Dmain: run_G (no grad), run_D on it, then run_D on the reals;
     Dreg: run_D on the reals.
     run_G: if style mixing is on, uniform (2) [cutoff = 1 + floor(u0 * (num_ws - 1)), used
     when u1 < prob] and the mixing z normal (n, z_dim); then the noise of every synthesis
     layer in order (b4.conv1, b8.conv0, b8.conv1, ...), normal (n, 1, res, res).
     run_D: with augmentation, for each of ADA's 13 random steps that is drawn (tools/ada_ref.py,
     in its order) its raw samples then its gate samples (uniform or normal as ada_ref).
Two fixtures: train_step.safetensors without augmentation, train_step_ada.safetensors with ADA
(augmentation before every D call, R1 through it, the adaptive p updated every iteration).

Fixture naming: G.* / D.* / G_ema.* the networks before training (checkpoint names); in.reals
(iterations, batch, C, H, W); draw.<k>; for each iteration i: it<i>.grad.<phase>.<G|D>.<name>
the gradient of each phase just before its Adam step (after nan_to_num), it<i>.loss.<name>
each round's mean loss (one value per round of batch_gpu images: G, pl, D_fake, D_real, r1),
it<i>.after.<G|D|G_ema>.<name> every tensor after the iteration
(parameters and buffers, so w_avg too), it<i>.pl_mean. Metadata: gantl.G, gantl.D, and
gantl.fixture with the training config (the names of gantl_train_config).
"""
import json
import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import ada_ref  # noqa: E402
import safetensors_io  # noqa: E402
import sg2_ref  # noqa: E402

G_KW = dict(z_dim=16, w_dim=16, c_dim=0, img_resolution=16, img_channels=3, mapping_kwargs=dict(num_layers=2),
            synthesis_kwargs=dict(channel_base=128, channel_max=16, num_fp16_res=0, conv_clamp=256))
D_KW = dict(c_dim=0, img_resolution=16, img_channels=3, architecture='resnet', channel_base=128, channel_max=16,
            num_fp16_res=0, conv_clamp=256, block_kwargs={}, mapping_kwargs={},
            epilogue_kwargs=dict(mbstd_group_size=2))
CFG = dict(batch_size=4, batch_gpu=2, lr_g=0.0025, lr_d=0.002, beta1=0.0, beta2=0.99, eps=1e-8, r1_gamma=1.0,
           pl_weight=2.0, pl_decay=0.01, pl_batch_shrink=2, style_mixing_prob=0.9, g_reg_interval=4,
           d_reg_interval=16, ema_kimg=0.01, ema_rampup=2.0, total_kimg=1.0, augment=0, augment_p=0.0,
           ada_target=0.6, ada_interval=4, ada_kimg=500.0)
ITERATIONS = 2


class Recorder:
    def __init__(self, seed):
        self.gen = torch.Generator().manual_seed(seed)
        self.log = []

    def normal(self, shape):
        x = torch.randn(shape, generator=self.gen)
        self.log.append(x.reshape(-1).clone())
        return x

    def uniform(self, n):
        x = torch.rand([n], generator=self.gen)
        self.log.append(x.clone())
        return x


class Trainer:
    def __init__(self, G, D, cfg, rec):
        self.G, self.D, self.cfg, self.rec = G, D, cfg, rec
        self.G_ema = sg2_ref.Generator(**G_KW).eval()
        self.G_ema.load_state_dict(G.state_dict())
        self.pl_mean = torch.zeros([])
        self.cur_nimg = 0
        self.batch_idx = 0
        self.ada_sign_sum, self.ada_sign_count = 0.0, 0
        self.augment_p = cfg['augment_p']
        self.opts = {}
        for name, net, lr, interval in [('G', G, cfg['lr_g'], cfg['g_reg_interval']),
                                        ('D', D, cfg['lr_d'], cfg['d_reg_interval'])]:
            r = interval / (interval + 1)
            betas = [cfg['beta1'] ** r, cfg['beta2'] ** r]
            self.opts[name] = torch.optim.Adam(net.parameters(), lr=lr * r, betas=betas, eps=cfg['eps'])

    def run_G(self, z, c):
        G, cfg, rec = self.G, self.cfg, self.rec
        ws = G.mapping(z, c)
        if cfg['style_mixing_prob'] > 0:
            u = rec.uniform(2)
            cutoff = min(1 + int(np.float32(u[0]) * np.float32(G.num_ws - 1)), G.num_ws - 1)
            if not (u[1] < cfg['style_mixing_prob']):
                cutoff = G.num_ws
            z2 = rec.normal(list(z.shape))
            ws2 = G.mapping(z2, c, skip_w_avg_update=True)
            ws = torch.cat([ws[:, :cutoff], ws2[:, cutoff:]], dim=1)
        noise = {}
        for res in G.synthesis.block_resolutions:
            for conv in (['conv1'] if res == 4 else ['conv0', 'conv1']):
                noise[f'synthesis.b{res}.{conv}'] = rec.normal([z.shape[0], 1, res, res])
        img = G.synthesis(ws, noise_mode='random', fused_modconv=False, noise_inputs=noise)
        return img, ws

    def run_D(self, img, c):
        if self.cfg['augment']:
            draws = ada_ref.draw(img.shape[0], self.augment_p, generator=self.rec.gen, num_channels=img.shape[1])
            for step in ada_ref.STEPS:  # the draws, in the order the C side consumes them
                if not bool((draws[step + '.gate'] == 1).all()):
                    self.rec.log.append(draws[step + '.raw'].reshape(-1).clone())
                    self.rec.log.append(draws[step + '.gate'].reshape(-1).clone())
            img = ada_ref.apply(img, draws)
        return self.D(img, c)

    def round(self, what, reals, z, losses):
        cfg, gain = self.cfg, what['gain']
        c = None
        if 'Gmain' in what['do']:
            img, _ = self.run_G(z, c)
            logits = self.run_D(img, c)
            loss = F.softplus(-logits).mean()
            losses.setdefault('G', []).append(loss.item())
            (loss * gain).backward()
        if 'Greg' in what['do'] and cfg['pl_weight'] != 0:
            n = z.shape[0] // cfg['pl_batch_shrink']
            img, ws = self.run_G(z[:n], None)
            pl_noise = self.rec.normal(list(img.shape)) / np.sqrt(img.shape[2] * img.shape[3])
            (pl_grads,) = torch.autograd.grad([(img * pl_noise).sum()], [ws], create_graph=True)
            pl_lengths = pl_grads.square().sum(2).mean(1).sqrt()
            pl_mean = self.pl_mean.lerp(pl_lengths.mean(), cfg['pl_decay'])
            self.pl_mean.copy_(pl_mean.detach())
            loss = ((pl_lengths - pl_mean).square() * cfg['pl_weight']).mean()
            losses.setdefault('pl', []).append(loss.item())
            (loss * gain).backward()
        if 'Dmain' in what['do']:
            with torch.no_grad():
                img, _ = self.run_G(z, c)
            logits = self.run_D(img, c)
            loss = F.softplus(logits).mean()
            losses.setdefault('D_fake', []).append(loss.item())
            (loss * gain).backward()
        if 'Dmain' in what['do'] or 'Dreg' in what['do']:
            do_r1 = 'Dreg' in what['do'] and cfg['r1_gamma'] != 0
            real = reals.detach().requires_grad_(do_r1)
            logits = self.run_D(real, c)
            self.ada_sign_sum += float(logits.sign().sum())
            self.ada_sign_count += logits.numel()
            loss = torch.zeros([])
            if 'Dmain' in what['do']:
                lr = F.softplus(-logits).mean()
                losses.setdefault('D_real', []).append(lr.item())
                loss = loss + lr
            if do_r1:
                (g,) = torch.autograd.grad([logits.sum()], [real], create_graph=True)
                r1 = (g.square().sum([1, 2, 3]) * (cfg['r1_gamma'] / 2)).mean()
                losses.setdefault('r1', []).append(r1.item())
                loss = loss + r1
            (loss * gain).backward()

    def step(self, reals, out, prefix):
        cfg, B, bg = self.cfg, self.cfg['batch_size'], self.cfg['batch_gpu']
        phases = [('Gmain', self.G, 'G', 1), ('Greg', self.G, 'G', cfg['g_reg_interval']),
                  ('Dmain', self.D, 'D', 1), ('Dreg', self.D, 'D', cfg['d_reg_interval'])]
        all_z = self.rec.normal([len(phases) * B, self.G.z_dim])
        losses = {}
        for p, (name, net, which, interval) in enumerate(phases):
            if self.batch_idx % interval != 0:
                continue
            other = self.D if which == 'G' else self.G
            net.requires_grad_(True)
            other.requires_grad_(False)
            self.opts[which].zero_grad(set_to_none=True)  # as the official loop: no grad, no step
            for start in range(0, B, bg):
                z = all_z[p * B + start: p * B + start + bg]
                self.round(dict(do=[name], gain=interval), reals[start:start + bg], z, losses)
            for pname, param in net.named_parameters():
                if param.grad is not None:
                    param.grad.copy_(param.grad.nan_to_num(0, 1e5, -1e5).clamp(-1e5, 1e5))
                    out[f'{prefix}.grad.{name}.{which}.{pname}'] = param.grad.detach().clone()
            self.opts[which].step()
            net.requires_grad_(False)
        ema_nimg = cfg['ema_kimg'] * 1000
        if cfg['ema_rampup'] >= 0:
            ema_nimg = min(ema_nimg, self.cur_nimg * cfg['ema_rampup'])
        beta = 0.5 ** (B / max(ema_nimg, 1e-8))
        with torch.no_grad():
            for p_ema, p in zip(self.G_ema.parameters(), self.G.parameters()):
                p_ema.copy_(p.lerp(p_ema, beta))
            for b_ema, b in zip(self.G_ema.buffers(), self.G.buffers()):
                b_ema.copy_(b)
        self.cur_nimg += B
        self.batch_idx += 1
        if cfg['augment'] and self.batch_idx % cfg['ada_interval'] == 0 and self.ada_sign_count:
            self.augment_p = ada_ref.ada_update(self.augment_p, self.ada_sign_sum / self.ada_sign_count, B,
                                                cfg['ada_target'], cfg['ada_interval'], cfg['ada_kimg'])
            self.ada_sign_sum, self.ada_sign_count = 0.0, 0
        out[f'{prefix}.augment_p'] = torch.tensor(self.augment_p, dtype=torch.float32)
        for k, v in losses.items():
            out[f'{prefix}.loss.{k}'] = torch.tensor(v, dtype=torch.float32)
        for net_name, net in [('G', self.G), ('D', self.D), ('G_ema', self.G_ema)]:
            for k, v in net.state_dict().items():
                out[f'{prefix}.after.{net_name}.{k}'] = v.detach().clone()
        out[f'{prefix}.pl_mean'] = self.pl_mean.detach().clone()


def perturb(net, gen):
    with torch.no_grad():
        for name, p in net.named_parameters():
            if name.endswith('noise_strength'):
                p.copy_(torch.randn([], generator=gen) * 0.3)
            elif name.endswith('bias'):
                p.add_(torch.randn(p.shape, generator=gen) * 0.1)


def run(cfg, name):
    torch.manual_seed(0)
    torch.set_num_threads(1)
    gen = torch.Generator().manual_seed(1)
    G = sg2_ref.Generator(**G_KW).train()
    D = sg2_ref.Discriminator(**D_KW).train()
    perturb(G, gen)
    perturb(D, gen)
    out = {}
    for prefix, net in [('G', G), ('D', D)]:
        for k, v in net.state_dict().items():
            out[f'{prefix}.{k}'] = v.detach().clone()
    reals = torch.rand([ITERATIONS, CFG['batch_size'], 3, 16, 16], generator=gen) * 2 - 1
    out['in.reals'] = reals
    rec = Recorder(2)
    trainer = Trainer(G, D, cfg, rec)
    for i in range(ITERATIONS):
        trainer.step(reals[i], out, f'it{i}')
    for k, x in enumerate(rec.log):
        out[f'draw.{k}'] = x
    meta = {'gantl.G': json.dumps(G_KW), 'gantl.D': json.dumps(D_KW),
            'gantl.fixture': json.dumps(dict(cfg, iterations=ITERATIONS, draws=len(rec.log)))}
    path = os.path.join(os.path.dirname(HERE), 'tests', 'fixtures', name)
    safetensors_io.save(path, {k: v.detach().cpu().numpy().astype(np.float32) for k, v in out.items()}, meta)
    print(f'wrote {path}: {len(out)} tensors, {len(rec.log)} draws, {os.path.getsize(path)} bytes')


def main():
    run(CFG, 'train_step.safetensors')
    # ADA: augmentation before every D call (R1 through it), p starting at 0.2, updated every
    # iteration by 4 images / 1 kimg toward the target
    run(dict(CFG, augment=1, augment_p=0.2, ada_target=0.6, ada_interval=1, ada_kimg=1.0), 'train_step_ada.safetensors')


if __name__ == '__main__':
    main()
