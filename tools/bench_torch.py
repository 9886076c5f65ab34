#!/usr/bin/python3
"""Runs build/bench and the same work in PyTorch (same thread count), and, when SciPy is
installed, the metrics in NumPy / SciPy / torch.cdist (tools/bench_metrics.py); prints one table.

ratio = reference time / gantl time, so above 1 means gantl is faster. PyTorch and NumPy use
the BLAS that Debian's alternatives point libblas.so.3 at: the reference BLAS unless OpenBLAS
is installed (apt-get install libopenblas0-pthread), which the comparison should have; the
line "BLAS loaded" says which one ran.
"""
import os
import subprocess
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def median_time(fn, min_seconds=1.0):
    fn()
    t0 = time.perf_counter()
    fn()
    once = time.perf_counter() - t0
    inner = int(min_seconds / 5 / once) + 1 if once > 0 else 100
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(inner):
            fn()
        times.append((time.perf_counter() - t0) / inner)
    return sorted(times)[2]


def torch_benchmarks():
    g = torch.Generator().manual_seed(0)
    out = {}
    for m, n, k in [(512, 512, 512), (1024, 1024, 1024), (256, 4096, 1152)]:
        a, b = torch.randn(m, k, generator=g), torch.randn(k, n, generator=g)
        out[f"sgemm_{m}x{n}x{k}"] = median_time(lambda: a @ b)
    x = torch.randn(32, 128, 16, 16, generator=g, requires_grad=True)
    w = torch.randn(128, 128, 3, 3, generator=g, requires_grad=True)
    with torch.no_grad():
        out["conv3x3_fwd_32x128x16x16"] = median_time(lambda: F.conv2d(x, w, padding=1))

    def fwdbwd():
        y = F.conv2d(x, w, padding=1)
        torch.autograd.grad(y.sum(), [x, w])

    out["conv3x3_fwdbwd_32x128x16x16"] = median_time(fwdbwd)

    # ADA 'bgc' (tools/ada_ref.py, bit-exact with the official AugmentPipe on CPU)
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import ada_ref
    xa = torch.randn(32, 3, 32, 32, generator=g, requires_grad=True)
    for p in (0.0, 0.6):
        def aug_fwd(p=p):
            with torch.no_grad():
                ada_ref.apply(xa, ada_ref.draw(32, p, torch.Generator().manual_seed(1)))

        def aug_fwdbwd(p=p):
            y = ada_ref.apply(xa, ada_ref.draw(32, p, torch.Generator().manual_seed(1)))
            torch.autograd.grad(y.square().sum(), [xa])

        out[f"augment_bgc_p{p:g}_fwd_32x3x32x32"] = median_time(aug_fwd)
        out[f"augment_bgc_p{p:g}_fwdbwd_32x3x32x32"] = median_time(aug_fwdbwd)
    out.update(training_benchmarks())
    out.update(inception_benchmarks())
    return {name: [("PyTorch", t)] for name, t in out.items()}


def inception_benchmarks():
    """FID Inception-v3 (tools/inception_ref.py, pytorch-fid's pipeline) on 16 RGB 64x64 images."""
    import inception_ref
    net = inception_ref.random_net()
    u = torch.rand(16, 3, 64, 64)
    with torch.no_grad():
        return {"inception_fid_16x3x64x64": median_time(lambda: inception_ref.fid_features(net, u), 2.0)}


def training_benchmarks():
    """The same training iterations and generation as tests/bench.c, on tools/sg2_ref.py's networks
    with the official loop (tools/train_ref.py's Trainer): res 32, 1 channel, channel_base 4096,
    channel_max 128, z = w = 128, 2 mapping layers, batch 32, gamma 0.01, no path length, no style
    mixing, no augmentation, mbstd group 4."""
    import train_ref
    import sg2_ref
    g_kw = dict(z_dim=128, w_dim=128, c_dim=0, img_resolution=32, img_channels=1, mapping_kwargs=dict(num_layers=2),
                synthesis_kwargs=dict(channel_base=4096, channel_max=128, num_fp16_res=0, conv_clamp=256))
    d_kw = dict(c_dim=0, img_resolution=32, img_channels=1, architecture='resnet', channel_base=4096, channel_max=128,
                num_fp16_res=0, conv_clamp=256, block_kwargs={}, mapping_kwargs={},
                epilogue_kwargs=dict(mbstd_group_size=4))
    cfg = dict(train_ref.CFG, batch_size=32, batch_gpu=32, lr_g=0.0025, lr_d=0.0025, r1_gamma=0.01, pl_weight=0.0,
               style_mixing_prob=0.0, ema_kimg=10.0, ema_rampup=0.05)
    out = {"train_res32_cb4096_b32": train_time(g_kw, d_kw, cfg)}
    # the small preset as `gantl train` runs it: the same networks with mbstd group 4, ADA ('bgc', p = 0
    # at the start, as the official pipeline: the geometric stage runs at p = 0 too)
    out["train_small_preset_ada_res32"] = train_time(
        g_kw, d_kw, dict(cfg, augment=1, augment_p=0.0, ada_target=0.6, ada_interval=4, ada_kimg=500.0))
    G = sg2_ref.Generator(**g_kw).eval()
    z = torch.randn([32, 128])
    with torch.no_grad():
        out["generate_res32_cb4096_b32"] = median_time(lambda: G(z, None, noise_mode='const'))
    return out


def train_time(g_kw, d_kw, cfg):
    """Seconds per iteration (Gmain and Dmain; iteration 0, with R1, is the warm-up)."""
    import train_ref
    import sg2_ref
    train_ref.G_KW = g_kw  # the Trainer builds G_ema from G_KW
    G = sg2_ref.Generator(**g_kw).train()
    D = sg2_ref.Discriminator(**d_kw).train()
    trainer = train_ref.Trainer(G, D, cfg, train_ref.Recorder(0))
    reals = torch.rand([32, 1, 32, 32]) * 2 - 1
    scratch = {}
    trainer.step(reals, scratch, 'warmup')  # iteration 0 (with R1)
    t0 = time.perf_counter()
    for _ in range(3):
        trainer.step(reals, scratch, 'x')
    return (time.perf_counter() - t0) / 3


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    text = subprocess.run([os.path.join(root, "build", "bench")], check=True, capture_output=True, text=True).stdout
    threads = int(os.environ.get("OMP_NUM_THREADS", os.cpu_count() or 1))
    torch.set_num_threads(threads)
    ref = torch_benchmarks()
    try:
        import bench_metrics  # NumPy / SciPy (and torch.cdist) doing the metrics
        print(bench_metrics.blas_line(), flush=True)
        for name, rows in bench_metrics.reference_times().items():
            ref.setdefault(name, []).extend(rows)
    except ImportError:
        print("python3-scipy not installed: no NumPy / SciPy comparison for the metrics")
    print(f"{'benchmark':36s} {'gantl ms':>10s} {'ref ms':>10s} {'ref/gantl':>10s}  {'reference':28s} gantl's notes")
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 4 or parts[0] != "bench":
            print(line)
            continue
        name, ms = parts[1], float(parts[2])
        extra = " ".join(parts[4:])
        rows = ref.get(name) or [("-", None)]
        for i, (what, t) in enumerate(rows):
            label, shown = (name, f"{ms:10.3f}") if i == 0 else ("", f"{'':10s}")
            if t is None:
                print(f"{label:36s} {shown} {'-':>10s} {'-':>10s}  {what:28s} {extra}")
            else:
                print(f"{label:36s} {shown} {1e3 * t:10.3f} {1e3 * t / ms:10.2f}  {what:28s} {extra if i == 0 else ''}")
    print(f"PyTorch {torch.__version__}, {torch.get_num_threads()} threads; BLAS loaded: {loaded_blas()}")


def loaded_blas():
    """The BLAS / LAPACK shared objects this process has mapped (what PyTorch and NumPy call)."""
    libs = set()
    with open("/proc/self/maps") as f:
        for line in f:
            path = line.split()[-1]
            if any(k in os.path.basename(path) for k in ("blas", "lapack", "mkl")):
                libs.add(os.path.realpath(path))
    return ", ".join(sorted(libs)) or "none found"


if __name__ == "__main__":
    sys.exit(main())
