#!/usr/bin/python3
"""NumPy / SciPy (and torch, if importable) timings of the computations that
tests/bench_metrics.c times in C, on the same sizes (random features, not the same values):

  fid   two (10000, 2048) sets: np.mean + np.cov, then scipy.linalg.sqrtm(S1 @ S2) as pytorch-fid
  prdc  two (10000, 4096) sets, k = 3: distances |u|^2 - 2 u.v + |v|^2 in float32 row blocks
        (what torch.cdist does for large inputs, as in NVIDIA's code), np.partition for the
        k-NN radii, then precision / recall / density / coverage as prdc (with '<=')
  w1    two 2048-point 2-D clouds: scipy.optimize.linear_sum_assignment on the cdist matrix
  kid   10 subsets of 1000 from (10000, 2048) sets, float64, NVIDIA's formula

Usage: /usr/bin/python3 tools/bench_metrics.py [--quick] [--skip fid,prdc,...]
(`make bench` runs it through tools/bench_torch.py, which prints gantl's times beside these.)
The numbers depend on the BLAS NumPy loads (printed first): Debian's default is the
netlib reference BLAS (about 2 GFLOPS); OpenBLAS can be used without installing it
system-wide via LD_LIBRARY_PATH=<dir of its libblas.so.3 and liblapack.so.3>.
"""
import argparse
import time

import numpy as np
import scipy
import scipy.linalg
import scipy.optimize
import scipy.spatial.distance


def blas_line():
    a = np.random.default_rng(0).random((1024, 1024), dtype=np.float32)
    a @ a
    t = time.perf_counter()
    a @ a
    t = time.perf_counter() - t
    try:
        info = np.__config__.blas_opt_info.get("libraries", "?")  # older NumPy
    except AttributeError:
        info = "?"
    return f"numpy {np.__version__}, scipy {scipy.__version__}, BLAS {info}: float32 GEMM {2 * 1024 ** 3 / t / 1e9:.1f} GFLOPS"


def bench_fid(n, d):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((n, d), dtype=np.float32)
    y = rng.standard_normal((n, d), dtype=np.float32) + np.float32(0.1)
    t0 = time.perf_counter()
    mu1, s1 = np.mean(x, axis=0), np.cov(x, rowvar=False)
    mu2, s2 = np.mean(y, axis=0), np.cov(y, rowvar=False)
    t1 = time.perf_counter()
    covmean, _ = scipy.linalg.sqrtm(s1.dot(s2), disp=False)
    if np.iscomplexobj(covmean):
        covmean = covmean.real
    diff = mu1 - mu2
    fid = diff.dot(diff) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean)
    t2 = time.perf_counter()
    print(f"fid 2 x ({n}, {d}) numpy+scipy.linalg.sqrtm: {t2 - t0:.2f} s (statistics {t1 - t0:.2f} s, "
          f"sqrtm and rest {t2 - t1:.2f} s), fid = {fid:.6f}", flush=True)
    return {f"fid_{n}x{d}": [("numpy + scipy sqrtm", t2 - t0)]}


def sq_dists(u, v, vn):
    d = (u * u).sum(1, dtype=np.float32)[:, None] - 2 * (u @ v.T) + vn[None, :]
    return np.maximum(d, 0, out=d)


def knn_sq(x, k, bs):
    xn = (x * x).sum(1, dtype=np.float32)
    out = np.empty(len(x), dtype=np.float32)
    for i in range(0, len(x), bs):
        d = sq_dists(x[i:i + bs], x, xn)
        out[i:i + bs] = np.partition(d, k, axis=1)[:, k]  # self (0) is the smallest
    return out


def prdc_numpy(real, fake, k, bs=1024):
    rr, fr = knn_sq(real, k, bs), knn_sq(fake, k, bs)
    rn = (real * real).sum(1, dtype=np.float32)
    prec = np.zeros(len(fake), bool)
    dens = np.zeros(len(fake))
    rec = np.zeros(len(real), bool)
    near = np.full(len(real), np.inf, dtype=np.float32)
    for j in range(0, len(fake), bs):
        d = sq_dists(fake[j:j + bs], real, rn)  # (block, n_real)
        inside = d <= rr[None, :]
        prec[j:j + bs] = inside.any(1)
        dens[j:j + bs] = inside.sum(1)
        rec |= (d <= fr[j:j + bs, None]).any(0)
        near = np.minimum(near, d.min(0))
    return prec.mean(), rec.mean(), dens.mean() / k, (near <= rr).mean()


def bench_prdc(n, d):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((n, d), dtype=np.float32)
    y = rng.standard_normal((n, d), dtype=np.float32) + np.float32(0.02)
    t0 = time.perf_counter()
    p, r, de, c = prdc_numpy(x, y, 3)
    t1 = time.perf_counter()
    print(f"prdc 2 x ({n}, {d}), k = 3, numpy blocked GEMM distances: {t1 - t0:.2f} s, "
          f"P {p:.4f} R {r:.4f} D {de:.4f} C {c:.4f}", flush=True)
    out = {f"prdc_{n}x{d}": [("numpy blocked GEMM, P/R/D/C", t1 - t0)]}
    try:
        import torch
    except ImportError:
        print("prdc torch: skipped (no torch)", flush=True)
        return out
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    t0 = time.perf_counter()
    kr = torch.cat([torch.cdist(xt[i:i + 1024], xt).kthvalue(4, dim=1).values for i in range(0, n, 1024)])
    kf = torch.cat([torch.cdist(yt[i:i + 1024], yt).kthvalue(4, dim=1).values for i in range(0, n, 1024)])
    prec = torch.cat([(torch.cdist(yt[i:i + 1024], xt) <= kr[None, :]).any(1) for i in range(0, n, 1024)])
    rec = torch.cat([(torch.cdist(xt[i:i + 1024], yt) <= kf[None, :]).any(1) for i in range(0, n, 1024)])
    t1 = time.perf_counter()
    print(f"prdc torch.cdist (precision and recall only, as NVIDIA): {t1 - t0:.2f} s, "
          f"P {prec.float().mean():.4f} R {rec.float().mean():.4f}", flush=True)
    out[f"prdc_{n}x{d}"].append(("torch.cdist, P/R only", t1 - t0))
    return out


def bench_w1(n):
    rng = np.random.default_rng(5)
    a = rng.standard_normal((n, 2)).astype(np.float32)
    b = (rng.standard_normal((n, 2)) + 0.5).astype(np.float32)
    t0 = time.perf_counter()
    c = scipy.spatial.distance.cdist(a.astype(np.float64), b.astype(np.float64))
    r, col = scipy.optimize.linear_sum_assignment(c)
    w1 = c[r, col].mean()
    t1 = time.perf_counter()
    print(f"w1_2d n = {n} scipy linear_sum_assignment: {t1 - t0:.3f} s, w1 = {w1:.6f}", flush=True)
    return {f"w1_2d_{n}": [("scipy linear_sum_assignment", t1 - t0)]}


def bench_kid(n, d, subsets, m):
    rng = np.random.default_rng(7)
    x = rng.standard_normal((n, d), dtype=np.float32)
    y = rng.standard_normal((n, d), dtype=np.float32) + np.float32(0.1)
    t0 = time.perf_counter()
    t = []
    for _ in range(subsets):
        a = x[rng.choice(n, m, replace=False)].astype(np.float64)
        b = y[rng.choice(n, m, replace=False)].astype(np.float64)
        kk = (a @ a.T / d + 1) ** 3 + (b @ b.T / d + 1) ** 3
        kxy = (a @ b.T / d + 1) ** 3
        t.append((kk.sum() - np.diag(kk).sum()) / (m * (m - 1)) - kxy.sum() * 2 / (m * m))
    t1 = time.perf_counter()
    print(f"kid {subsets} subsets of {m}, d = {d}, numpy float64: {t1 - t0:.2f} s, kid = {np.mean(t):.6f} "
          f"+- {np.std(t):.6f}", flush=True)
    return {f"kid_{subsets}x{m}_d{d}": [("numpy float64", t1 - t0)]}


def reference_times(quick=False, skip=()):
    """{benchmark name: [(what, seconds), ...]} for the names tests/bench_metrics.c prints."""
    q = quick
    out = {}
    if "fid" not in skip:
        out.update(bench_fid(1000 if q else 10000, 256 if q else 2048))
    if "prdc" not in skip:
        out.update(bench_prdc(1000 if q else 10000, 256 if q else 4096))
    if "w1" not in skip:
        out.update(bench_w1(256 if q else 2048))
    if "kid" not in skip:
        out.update(bench_kid(1000 if q else 10000, 256 if q else 2048, 2 if q else 10, 100 if q else 1000))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="small sizes, to check the script")
    ap.add_argument("--skip", default="", help="comma-separated: fid,prdc,w1,kid")
    args = ap.parse_args()
    print(blas_line(), flush=True)
    reference_times(args.quick, set(args.skip.split(",")))


if __name__ == "__main__":
    main()
