#!/usr/bin/env python3
"""PyTorch on the same GPU, for `make bench-cuda`: the phases that build/bench-cuda times
(tests/bench_cuda.c), with the reference networks of tools/sg2_ref.py (the official
architecture in fp32, reference ops: no custom CUDA kernels), 'paper256' channel counts
(channel_base 16384, channel_max 512, 8 mapping layers, conv_clamp 256, mbstd group 8).

One iteration: Gmain (G forward, D forward, backward into G, Adam), Dmain (G forward without
gradients, D on fakes and reals, backward, Adam), and Dreg (R1: D's input gradient with
create_graph, its squared norm, backward, Adam) counted as 1/16 of its time, as the official
lazy regularisation. Both sides compute in full FP32: TF32 is switched off for matmul and
cuDNN so that the comparison with gantl's FP32 cuBLAS SGEMM is like for like (pass --tf32 to
see PyTorch's default cuDNN behaviour).

Usage: python3 tools/bench_cuda_torch.py [--res 32,256] [--batch32 32] [--batch256 8] [--iters 10]
"""
import argparse
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sg2_ref  # noqa: E402


def networks(res, mbstd, device):
    G = sg2_ref.Generator(z_dim=512, c_dim=0, w_dim=512, img_resolution=res, img_channels=3,
                          mapping_kwargs=dict(num_layers=8),
                          synthesis_kwargs=dict(channel_base=16384, channel_max=512, conv_clamp=256))
    D = sg2_ref.Discriminator(c_dim=0, img_resolution=res, img_channels=3, channel_base=16384, channel_max=512,
                              conv_clamp=256, epilogue_kwargs=dict(mbstd_group_size=mbstd))
    return G.to(device), D.to(device)


def bench(res, batch, iters, device):
    G, D = networks(res, min(batch, 8), device)
    opt_g = torch.optim.Adam(G.parameters(), lr=0.0025, betas=(0, 0.99), eps=1e-8)
    opt_d = torch.optim.Adam(D.parameters(), lr=0.0025, betas=(0, 0.99), eps=1e-8)
    sync = torch.cuda.synchronize
    tg = td = tr = 0.0
    for it in range(-2, iters):
        t0 = time.perf_counter()
        # Gmain
        G.requires_grad_(True), D.requires_grad_(False)
        opt_g.zero_grad(set_to_none=True)
        img = G(torch.randn(batch, 512, device=device), None, noise_mode='random')
        torch.nn.functional.softplus(-D(img, None)).mean().backward()
        opt_g.step()
        sync()
        t1 = time.perf_counter()
        # Dmain
        G.requires_grad_(False), D.requires_grad_(True)
        opt_d.zero_grad(set_to_none=True)
        with torch.no_grad():
            fake = G(torch.randn(batch, 512, device=device), None, noise_mode='random')
        real = torch.rand(batch, 3, res, res, device=device)
        loss = torch.nn.functional.softplus(D(fake, None)).mean() + torch.nn.functional.softplus(-D(real, None)).mean()
        loss.backward()
        opt_d.step()
        sync()
        t2 = time.perf_counter()
        # Dreg (R1)
        opt_d.zero_grad(set_to_none=True)
        real = torch.rand(batch, 3, res, res, device=device).requires_grad_(True)
        (g,) = torch.autograd.grad(D(real, None).sum(), [real], create_graph=True)
        (g.square().sum() * (1.0 * 0.5 / batch)).backward()
        opt_d.step()
        sync()
        t3 = time.perf_counter()
        if it >= 0:
            tg += (t1 - t0) / iters
            td += (t2 - t1) / iters
            tr += (t3 - t2) / iters
    per_iter = tg + td + tr / 16
    print(f"torch train paper256 res {res} batch {batch}: Gmain {tg * 1e3:.1f} ms, Dmain {td * 1e3:.1f} ms, "
          f"Dreg {tr * 1e3:.1f} ms -> {batch / per_iter:.1f} img/s")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--res', default='32,256')
    ap.add_argument('--batch32', type=int, default=32)
    ap.add_argument('--batch256', type=int, default=8)
    ap.add_argument('--iters', type=int, default=10)
    ap.add_argument('--tf32', action='store_true', help="allow TF32 (PyTorch's cuDNN default)")
    a = ap.parse_args()
    if not torch.cuda.is_available():
        print("bench_cuda_torch: no CUDA device for PyTorch", file=sys.stderr)
        return 2
    torch.backends.cuda.matmul.allow_tf32 = a.tf32
    torch.backends.cudnn.allow_tf32 = a.tf32
    torch.backends.cudnn.benchmark = True
    device = torch.device('cuda')
    print(f"torch {torch.__version__} on {torch.cuda.get_device_name(0)} (TF32 {'on' if a.tf32 else 'off'})")
    for r in a.res.split(','):
        res = int(r)
        bench(res, a.batch32 if res <= 64 else a.batch256, a.iters, device)
    return 0


if __name__ == '__main__':
    sys.exit(main())
