#!/usr/bin/python3
"""Reference values for gantl's metrics (section 9 of gantl.h), written to
tests/fixtures/metrics.safetensors for tests/test_metrics.c.

Run from the repository root:  /usr/bin/python3 tools/ref_metrics.py
Needs NumPy, SciPy and mpmath only. Deterministic (fixed seeds).

What it writes (F32 inputs as the C code sees them; F64 references):
  FID   fid_a (600, 64), fid_b (600, 64)  well-conditioned Gaussians
        fid_c (40, 64), fid_d (50, 64)    singular covariances (n < d)
        fid_e (70, 64)                    full rank but ill-conditioned (n just above d)
        fid_ref: FID for the pairs listed in metadata fid_pairs, from EXACT statistics
        (the float32 features are dyadic rationals, summed in Python integers) and
        mpmath at 40 digits: Tr sqrt(S1 S2) via Cholesky + symmetric eigenvalues, cross-
        checked against the eigenvalues of the non-symmetric S1 S2 (well-conditioned
        pair) or against the nuclear norm of the centred features A1 A2^T (singular
        pairs), which is exact for any rank.
  KID   kid_x (300, 32), kid_y (250, 32), kid_xi/kid_yi (10, 50) I64 subset indices,
        kid_ref (2,) mean and population std, NumPy float64 on those subsets.
  PR/DC prdc_int_real/fake: integer points (many exact ties, duplicates, zero radii),
        prdc_cont_real/fake: Gaussians, seed chosen so that no comparison is within 1e-5
        relative of its radius (float32 rounding cannot flip one);
        refs (4,) = precision, recall, density, coverage for k and strict in the name;
        knn radii references.
  W1    w1_tiny_*: n = 1..7 clouds and cost matrices with brute-force optima;
        w1_a/w1_b (300, 2), w1_big_a/w1_big_b (1500, 2) and cost matrices vs
        scipy.optimize.linear_sum_assignment.
  Pearson  pearson_x_i/pearson_y_i with pearson_ref (cases, 2) = r, p from scipy.stats.pearsonr.
"""
import itertools
import os
import sys
from fractions import Fraction

import mpmath as mp
import numpy as np
import scipy
import scipy.linalg
import scipy.optimize
import scipy.stats

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_io  # noqa: E402

mp.mp.dps = 40
OUT = "tests/fixtures/metrics.safetensors"
T = {}


# ----------------------------------------------------------------------------- FID

def gaussian_features(rng, n, d, cond, shift):
    """n samples of a d-dim Gaussian with a random covariance of condition number cond^2."""
    q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    s = np.exp(np.linspace(0.0, np.log(cond), d))[rng.permutation(d)]
    a = q * s  # columns scaled
    return (rng.standard_normal((n, d)) @ a.T + shift * rng.standard_normal(d)).astype(np.float32)


class Exact:
    """Exact moments of float32 features: X = Xi / 2^K with Python integers Xi."""

    def __init__(self, x):
        x = np.asarray(x, dtype=np.float64)
        self.n, self.d = x.shape
        k = 0
        for v in x.ravel():
            k = max(k, Fraction(float(v)).denominator.bit_length() - 1)
        self.k = k
        self.xi = np.array([[int(Fraction(float(v)) * (1 << k)) for v in row] for row in x], dtype=object)
        self.sum = self.xi.sum(axis=0)                      # (d,) ints
        self.centred = self.n * self.xi - self.sum[None, :]  # n 2^K (x - mean), ints
        self.scale = self.n * (1 << self.k)                  # centred / scale = x - mean

    def mean(self):
        return [mp.mpf(int(s)) / (self.n * (1 << self.k)) for s in self.sum]

    def cov(self, unbiased):
        g = self.centred.T @ self.centred  # (d, d) ints: scale^2 * sum (x-m)(x-m)^T
        den = mp.mpf(self.scale) ** 2 * (self.n - 1 if unbiased else self.n)
        return mp.matrix([[mp.mpf(int(g[i, j])) / den for j in range(self.d)] for i in range(self.d)])


def trsqrt_cholesky(s1, s2):
    l = mp.cholesky(s1)
    ev = mp.eigsy(l.T * s2 * l, eigvals_only=True)
    return mp.fsum(mp.sqrt(max(e, 0)) for e in ev)


def trsqrt_nuclear(e1, e2, unbiased):
    """Tr sqrt(S1 S2) = sum of singular values of A1 A2^T / sqrt(c1 c2), any rank."""
    b = e1.centred @ e2.centred.T  # ints, = scale1 scale2 A1 A2^T
    bm = mp.matrix([[mp.mpf(int(v)) for v in row] for row in b])
    sv = mp.svd_r(bm, compute_uv=False)
    c1 = e1.n - 1 if unbiased else e1.n
    c2 = e2.n - 1 if unbiased else e2.n
    return mp.fsum(sv) / (mp.mpf(e1.scale) * e2.scale * mp.sqrt(mp.mpf(c1) * c2))


def fid_exact(e1, e2, unbiased, method):
    m1, m2 = e1.mean(), e2.mean()
    s1, s2 = e1.cov(unbiased), e2.cov(unbiased)
    diff = mp.fsum((a - b) ** 2 for a, b in zip(m1, m2))
    tr = mp.fsum(s1[i, i] + s2[i, i] for i in range(e1.d))
    if method == "cholesky":  # factor whichever covariance is full rank
        t = trsqrt_cholesky(s1, s2) if e1.n > e1.d else trsqrt_cholesky(s2, s1)
    elif method == "eig":  # eigenvalues of the non-symmetric product, real and >= 0
        ev = mp.eig(s1 * s2, left=False, right=False)
        t = mp.fsum(mp.sqrt(max(mp.re(e), 0)) for e in ev)
    else:
        t = trsqrt_nuclear(e1, e2, unbiased)
    return diff + tr - 2 * t


def fid_scipy(x, y, unbiased):
    """pytorch-fid's formula with scipy.linalg.sqrtm, for information only."""
    x, y = x.astype(np.float64), y.astype(np.float64)
    ddof = 1 if unbiased else 0
    m1, m2 = x.mean(0), y.mean(0)
    s1, s2 = np.cov(x, rowvar=False, ddof=ddof), np.cov(y, rowvar=False, ddof=ddof)
    c = scipy.linalg.sqrtm(s1 @ s2)
    if np.iscomplexobj(c):
        c = c.real
    return float(((m1 - m2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(c))


def make_fid():
    rng = np.random.default_rng(20220401)
    feats = {
        "fid_a": gaussian_features(rng, 600, 64, 4.0, 0.5),
        "fid_b": gaussian_features(rng, 600, 64, 3.0, 0.5),
        "fid_c": gaussian_features(rng, 40, 64, 3.0, 0.5),
        "fid_d": gaussian_features(rng, 50, 64, 2.0, 0.5),
        "fid_e": gaussian_features(rng, 70, 64, 5.0, 0.5),
    }
    T.update(feats)
    ex = {k: Exact(v) for k, v in feats.items()}
    # (x, y, unbiased, reference method, independent cross-check): a and b are
    # well-conditioned; c and d singular; e full rank but nearly singular
    pairs = [("fid_a", "fid_b", 1, "cholesky", "eig"), ("fid_a", "fid_b", 0, "cholesky", "eig"),
             ("fid_c", "fid_d", 1, "nuclear", "eig"), ("fid_c", "fid_a", 1, "nuclear", "cholesky"),
             ("fid_a", "fid_c", 1, "nuclear", "cholesky"), ("fid_e", "fid_a", 1, "cholesky", "nuclear")]
    refs = []
    for x, y, unbiased, method, check in pairs:
        v = fid_exact(ex[x], ex[y], unbiased, method)
        v2 = fid_exact(ex[x], ex[y], unbiased, check)
        # eig leaves ~1e-20 from the zero eigenvalues of a singular product
        assert abs(v - v2) <= mp.mpf(10) ** -15 * abs(v), (x, y, v, v2)
        sc = fid_scipy(feats[x], feats[y], unbiased)
        print(f"  FID {x} {y} unbiased={unbiased}: {mp.nstr(v, 20)}   (vs {check}: {mp.nstr(abs(v - v2) / v, 3)}; "
              f"scipy sqrtm: {sc:.12g}, rel {abs(sc - float(v)) / float(v):.1e})")
        refs.append(float(v))
    T["fid_ref"] = np.array(refs, dtype=np.float64)
    return ";".join(f"{x},{y},{u}" for x, y, u, _, _ in pairs)


# ----------------------------------------------------------------------------- KID

def kid_reference(x, y, xi, yi):
    d = x.shape[1]
    m = xi.shape[1]
    mmd = []
    for s in range(xi.shape[0]):
        a, b = x[xi[s]].astype(np.float64), y[yi[s]].astype(np.float64)
        kxx = (a @ a.T / d + 1) ** 3
        kyy = (b @ b.T / d + 1) ** 3
        kxy = (a @ b.T / d + 1) ** 3
        mmd.append((kxx.sum() - np.trace(kxx) + kyy.sum() - np.trace(kyy)) / (m * (m - 1)) - 2 * kxy.sum() / m ** 2)
    mmd = np.array(mmd)
    return np.array([mmd.mean(), mmd.std()])  # population std (ddof=0)


def make_kid():
    rng = np.random.default_rng(7)
    x = np.abs(rng.standard_normal((300, 32))).astype(np.float32)           # non-negative, like pool3
    y = (np.abs(rng.standard_normal((250, 32))) * 1.1 + 0.05).astype(np.float32)
    xi = np.stack([rng.choice(300, 50, replace=False) for _ in range(10)]).astype(np.int64)
    yi = np.stack([rng.choice(250, 50, replace=False) for _ in range(10)]).astype(np.int64)
    T.update(kid_x=x, kid_y=y, kid_xi=xi, kid_yi=yi, kid_ref=kid_reference(x, y, xi, yi))
    print(f"  KID mean {T['kid_ref'][0]:.12g} std {T['kid_ref'][1]:.6g}")


# ----------------------------------------------------------------------------- PR / DC

def sq_dists(a, b):
    a, b = a.astype(np.float64), b.astype(np.float64)
    return ((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)


def knn_sq(x, k):
    dd = sq_dists(x, x)
    np.fill_diagonal(dd, np.inf)  # self excluded by index, duplicates stay
    return np.sort(dd, axis=1)[:, k - 1]


def prdc_reference(real, fake, k, strict):
    rr, fr, dd = knn_sq(real, k), knn_sq(fake, k), sq_dists(real, fake)  # dd (N, M)
    cmp = np.less if strict else np.less_equal
    precision = cmp(dd, rr[:, None]).any(axis=0).mean()
    recall = cmp(dd, fr[None, :]).any(axis=1).mean()
    density = cmp(dd, rr[:, None]).sum(axis=0).mean() / k
    coverage = cmp(dd.min(axis=1), rr).mean()
    return np.array([precision, recall, density, coverage])


def min_margin(real, fake, k):
    """Smallest relative gap between a compared squared distance and its squared radius."""
    rr, fr, dd = knn_sq(real, k), knn_sq(fake, k), sq_dists(real, fake)
    m1 = np.abs(dd - rr[:, None]) / rr[:, None]
    m2 = np.abs(dd - fr[None, :]) / fr[None, :]
    return min(m1.min(), m2.min())


def make_prdc():
    rng = np.random.default_rng(11)
    # integers: every squared distance is exact in float32 too, so ties are real ties
    real = rng.integers(-2, 3, size=(300, 6)).astype(np.float32)
    real[290:300] = real[0:10]          # duplicates
    real[280:284] = real[20]            # a point with 4 copies: zero radius for k <= 4
    fake = (rng.integers(-2, 3, size=(200, 6)) + (rng.random((200, 6)) < 0.2)).astype(np.float32)
    fake[190:200] = real[100:110]       # fakes equal to reals
    T.update(prdc_int_real=real, prdc_int_fake=fake)
    for k in (3, 5):
        for strict in (0, 1):
            T[f"prdc_int_k{k}_s{strict}"] = prdc_reference(real, fake, k, strict)
    assert not np.array_equal(T["prdc_int_k3_s0"], T["prdc_int_k3_s1"]), "ties should make '<' and '<=' differ"
    T["prdc_int_radii_k3"] = np.sqrt(knn_sq(real, 3)).astype(np.float64)
    # continuous: pick the first seed whose comparisons all have a clear margin
    for seed in range(1000):
        r = np.random.default_rng(1000 + seed)
        real = r.standard_normal((200, 40)).astype(np.float32)
        fake = (r.standard_normal((150, 40)) * 1.15 + 0.25).astype(np.float32)
        if min(min_margin(real, fake, 3), min_margin(real, fake, 5)) > 1e-5:
            break
    else:
        raise SystemExit("no clean seed")
    print(f"  PRDC continuous: seed {1000 + seed}")
    T.update(prdc_cont_real=real, prdc_cont_fake=fake)
    for k in (3, 5):
        for strict in (0, 1):
            T[f"prdc_cont_k{k}_s{strict}"] = prdc_reference(real, fake, k, strict)
    T["prdc_cont_radii_k5"] = np.sqrt(knn_sq(real, 5))
    for name in sorted(k for k in T if k.startswith("prdc_") and "_k" in k and "radii" not in k):
        print(f"  {name}: {T[name]}")


# ----------------------------------------------------------------------------- W1 / assignment

def brute_force(cost):
    n = cost.shape[0]
    best = np.inf
    for p in itertools.permutations(range(n)):
        best = min(best, sum(cost[i, p[i]] for i in range(n)))
    return best


def cloud_cost(a, b):
    a, b = a.astype(np.float64), b.astype(np.float64)
    return np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1))


def make_w1():
    rng = np.random.default_rng(3)
    tiny_w1, tiny_lap, tiny_int = [], [], []
    for n in range(1, 8):
        a = rng.random((n, 2)).astype(np.float32)
        b = rng.standard_normal((n, 2)).astype(np.float32)
        T[f"w1_tiny_a{n}"], T[f"w1_tiny_b{n}"] = a, b
        tiny_w1.append(brute_force(cloud_cost(a, b)) / n)
        c = rng.random((n, n))
        T[f"w1_tiny_cost{n}"] = c
        tiny_lap.append(brute_force(c))
        ci = rng.integers(0, 3, size=(n, n)).astype(np.float64)  # many ties
        T[f"w1_tiny_icost{n}"] = ci
        tiny_int.append(brute_force(ci))
    T["w1_tiny_ref"] = np.array(tiny_w1)
    T["w1_tiny_cost_ref"] = np.array(tiny_lap)
    T["w1_tiny_icost_ref"] = np.array(tiny_int)
    # larger: scipy.optimize.linear_sum_assignment
    a = rng.random((300, 2)).astype(np.float32)
    b = (rng.standard_normal((300, 2)) * 0.3 + 0.5).astype(np.float32)
    c = cloud_cost(a, b)
    r, col = scipy.optimize.linear_sum_assignment(c)
    T.update(w1_a=a, w1_b=b, w1_ref=np.array([c[r, col].sum() / 300]))
    # big enough that the auction's bid budget runs out before step 3 (long augmenting paths)
    a = rng.standard_normal((1500, 2)).astype(np.float32)
    b = (rng.standard_normal((1500, 2)) + 0.5).astype(np.float32)
    c = cloud_cost(a, b)
    r, col = scipy.optimize.linear_sum_assignment(c)
    T.update(w1_big_a=a, w1_big_b=b, w1_big_ref=np.array([c[r, col].sum() / 1500]))
    c = rng.random((200, 200)) * 10
    r, col = scipy.optimize.linear_sum_assignment(c)
    T.update(lap_cost=c, lap_ref=np.array([c[r, col].sum()]))
    c = rng.integers(0, 6, size=(150, 150)).astype(np.float64)
    r, col = scipy.optimize.linear_sum_assignment(c)
    T.update(lap_icost=c.astype(np.float32), lap_iref=np.array([c[r, col].sum()]))  # integers: F32 is exact
    c = -rng.random((120, 120)) * 1e6  # negative, large
    r, col = scipy.optimize.linear_sum_assignment(c)
    T.update(lap_ncost=c, lap_nref=np.array([c[r, col].sum()]))
    print(f"  W1 300: {T['w1_ref'][0]:.12g}")


# ----------------------------------------------------------------------------- Pearson

def make_pearson():
    rng = np.random.default_rng(5)
    cases = [(3, 0.5), (10, 0.9), (50, 0.1), (1000, 0.2), (500, -0.6), (20, 0.999), (200, 0.0), (7, -0.3),
             (5000, 0.03)]
    refs = []
    for i, (n, rho) in enumerate(cases):
        x = rng.standard_normal(n)
        y = rho * x + np.sqrt(1 - rho ** 2) * rng.standard_normal(n) + 3.0
        res = scipy.stats.pearsonr(x, y)
        T[f"pearson_x_{i}"], T[f"pearson_y_{i}"] = x, y
        refs.append([float(res[0]), float(res[1])])
        print(f"  pearson n={n}: r={res[0]:.6g} p={res[1]:.6g}")
    T["pearson_ref"] = np.array(refs)


def main():
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    print("FID (exact statistics, mpmath)")
    pairs = make_fid()
    print("KID")
    make_kid()
    print("PR / DC")
    make_prdc()
    print("W1 / assignment")
    make_w1()
    print("Pearson")
    make_pearson()
    meta = {"generator": "tools/ref_metrics.py", "numpy": np.__version__, "scipy": scipy.__version__,
            "mpmath": mp.__version__, "fid_pairs": pairs}
    safetensors_io.save(OUT, T, meta)
    print(f"wrote {OUT}: {os.path.getsize(OUT)} bytes, {len(T)} tensors")


if __name__ == "__main__":
    main()
