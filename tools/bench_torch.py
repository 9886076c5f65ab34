#!/usr/bin/python3
"""Runs build/bench and the same work in PyTorch (same thread count), and prints ratios.

ratio = PyTorch time / gantl time, so above 1 means gantl is faster.
"""
import os
import subprocess
import sys
import time

import torch
import torch.nn.functional as F


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
    return out


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    text = subprocess.run([os.path.join(root, "build", "bench")], check=True, capture_output=True, text=True).stdout
    threads = int(os.environ.get("OMP_NUM_THREADS", os.cpu_count() or 1))
    torch.set_num_threads(threads)
    ref = torch_benchmarks()
    print(f"{'benchmark':36s} {'gantl ms':>10s} {'torch ms':>10s} {'torch/gantl':>12s}")
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 4 or parts[0] != "bench":
            print(line)
            continue
        name, ms = parts[1], float(parts[2])
        t = ref.get(name)
        extra = " ".join(parts[4:])
        if t is None:
            print(f"{name:36s} {ms:10.3f} {'-':>10s} {'-':>12s}  {extra}")
        else:
            print(f"{name:36s} {ms:10.3f} {1e3 * t:10.3f} {1e3 * t / ms:12.2f}  {extra}")
    print(f"PyTorch {torch.__version__}, {torch.get_num_threads()} threads; BLAS: "
          f"{'mkl' if torch.backends.mkl.is_available() else 'see torch.__config__.show()'}")


if __name__ == "__main__":
    sys.exit(main())
