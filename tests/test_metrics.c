/* Tests of section 9 (metrics). Included into the test translation unit after gantl.h
   (with GANTL_IMPLEMENTATION) and tests/test.h. References: tests/fixtures/metrics.safetensors,
   written by tools/ref_metrics.py (exact / mpmath FID, NumPy KID and PR/DC, brute force and
   scipy assignment, scipy.stats.pearsonr). */

#include <stdlib.h>

/* ------------------------------------------------------------------ helpers */

static int tm__load(gantl_st_file *f) {
    char path[512];
    snprintf(path, sizeof path, "tests/fixtures/metrics.safetensors");
    gantl_status st = gantl_st_load(f, path);
    CHECK_MSG(st == GANTL_OK, "cannot load %s: %s", path, gantl_last_error());
    return st == GANTL_OK;
}

/* The tensor name with its dtype, or NULL (and a failed check). */
static const gantl_st_tensor *tm__tensor(const gantl_st_file *f, const char *name, gantl_dtype dtype) {
    const gantl_st_tensor *t = gantl_st_find(f, name);
    CHECK_MSG(t && t->dtype == dtype, "fixture tensor %s missing or not %s", name, gantl_dtype_name(dtype));
    return t && t->dtype == dtype ? t : NULL;
}

/* A GANTL_MALLOC'd copy of an F32 tensor (rows, cols) (cols = 1 for 1-D); NULL if absent. */
static float *tm__f32(const gantl_st_file *f, const char *name, int64_t *rows, int64_t *cols) {
    const gantl_st_tensor *t = tm__tensor(f, name, GANTL_F32);
    if (!t) return NULL;
    float *out = (float *)malloc((size_t)t->numel * sizeof(float));
    if (gantl_st_read_f32(f, name, out, t->numel, t->ndim, t->shape) != GANTL_OK) {
        free(out);
        return NULL;
    }
    if (rows) *rows = t->ndim ? t->shape[0] : 1;
    if (cols) *cols = t->ndim == 2 ? t->shape[1] : 1;
    return out;
}

/* F64 / I64 tensors: raw little-endian bytes (the hosts we test on are little-endian). */
static double *tm__f64(const gantl_st_file *f, const char *name, int64_t *numel) {
    const gantl_st_tensor *t = tm__tensor(f, name, GANTL_F64);
    if (!t) return NULL;
    double *out = (double *)malloc((size_t)t->numel * sizeof(double) + 1);
    memcpy(out, t->bytes, (size_t)t->numel * sizeof(double));
    if (numel) *numel = t->numel;
    return out;
}

static int64_t *tm__i64(const gantl_st_file *f, const char *name, int64_t *rows, int64_t *cols) {
    const gantl_st_tensor *t = tm__tensor(f, name, GANTL_I64);
    if (!t || t->ndim != 2) return NULL;
    int64_t *out = (int64_t *)malloc((size_t)t->numel * sizeof(int64_t));
    memcpy(out, t->bytes, (size_t)t->numel * sizeof(int64_t));
    *rows = t->shape[0];
    *cols = t->shape[1];
    return out;
}

/* |a - b| <= rel * |b| */
#define TM_CHECK_REL(a, b, rel) CHECK_NEAR((a), (b), (rel) * fabs((double)(b)))

/* Sets the OpenMP thread count, returning the previous one (no-op without OpenMP). */
static int tm__threads(int n) {
#if defined(_OPENMP) && !defined(GANTL_NO_OPENMP)
    int old = omp_get_max_threads();
    omp_set_num_threads(n);
    return old;
#else
    return n;
#endif
}

static float *tm__randn(uint64_t seed, int64_t n, float mean, float std) {
    float *x = (float *)malloc((size_t)n * sizeof(float));
    gantl_rng r = gantl_rng_new(seed);
    gantl_rng_normal(&r, x, n, mean, std);
    return x;
}

/* ------------------------------------------------------------------ linear algebra kernels */

/* c (m, n) -= 2 op(a) @ op(b) by gantl__dgemm, all three in padded rows (c: 1 inside, 7 in
   the padding). Checks that the padding and the elements well outside the triangle asked
   for (|i - j| >= 32, beyond any tile reaching it) are untouched; returns the largest error
   in the triangle against a plain triple loop, relative to 1 + sum |a_ip b_pj|. */
static double tm__dgemm_case(gantl_rng *r, int64_t m, int64_t n, int64_t k, int ta, int tb, int tri) {
    int64_t lda = (ta ? m : k) + 2, ldb = (tb ? k : n) + 1, ldc = n + 3;
    double *a = (double *)malloc((size_t)((ta ? k : m) * lda) * sizeof(double));
    double *b = (double *)malloc((size_t)((tb ? n : k) * ldb) * sizeof(double));
    double *c = (double *)malloc((size_t)(m * ldc) * sizeof(double));
    for (int64_t i = 0; i < (ta ? k : m) * lda; i++) a[i] = gantl_rng_double(r) - 0.5;
    for (int64_t i = 0; i < (tb ? n : k) * ldb; i++) b[i] = gantl_rng_double(r) - 0.5;
    for (int64_t i = 0; i < m * ldc; i++) c[i] = i % ldc < n ? 1.0 : 7.0;
    CHECK(gantl__dgemm(c, ldc, a, lda, ta, b, ldb, tb, m, n, k, -2.0, tri) == GANTL_OK);
    double worst = 0.0;
    int64_t touched = 0; /* elements outside the triangle, away from the diagonal, that changed */
    for (int64_t i = 0; i < m; i++) {
        for (int64_t j = 0; j < n; j++) {
            if ((tri == GANTL__LOWER && j > i) || (tri == GANTL__UPPER && j < i)) {
                touched += (j - i >= 32 || i - j >= 32) && c[i * ldc + j] != 1.0;
                continue;
            }
            double s = 0.0, mag = 0.0;
            for (int64_t p = 0; p < k; p++) {
                double t = (ta ? a[p * lda + i] : a[i * lda + p]) * (tb ? b[j * ldb + p] : b[p * ldb + j]);
                s += t, mag += fabs(t);
            }
            double e = fabs(c[i * ldc + j] - (1.0 - 2.0 * s)) / (1.0 + mag);
            if (!(e <= worst)) worst = e;
        }
        for (int64_t j = n; j < ldc; j++) touched += c[i * ldc + j] != 7.0;
    }
    CHECK_MSG(touched == 0, "dgemm m=%lld n=%lld k=%lld ta=%d tb=%d tri=%d: %lld elements outside changed",
              (long long)m, (long long)n, (long long)k, ta, tb, tri, (long long)touched);
    free(a), free(b), free(c);
    return worst;
}

static void test_metrics_dgemm(void) {
    /* every transpose combination, ragged sizes, k across panels, the three triangles */
    const int64_t sizes[] = {1, 7, 17, 300}, ks[] = {1, 7, 17, 300, 1100};
    gantl_rng r = gantl_rng_new(1);
    for (int a_ = 0; a_ < 4; a_++)
        for (int b_ = 0; b_ < 4; b_++)
            for (int c_ = 0; c_ < 5; c_++)
                for (int tr = 0; tr < 12; tr++) {
                    int64_t m = sizes[a_], n = sizes[b_], k = ks[c_];
                    int ta = tr & 1, tb = (tr >> 1) & 1, tri = tr >> 2; /* full, lower, upper */
                    if ((tri && m != n) || (k > 300 && m * n < 300 * 300)) continue;
                    double worst = tm__dgemm_case(&r, m, n, k, ta, tb, tri);
                    CHECK_MSG(worst < 1e-13, "dgemm m=%lld n=%lld k=%lld ta=%d tb=%d tri=%d: error %g", (long long)m,
                              (long long)n, (long long)k, ta, tb, tri, worst);
                }
    /* c larger than one packing block (2048 and some) each way */
    for (int tri = 0; tri < 3; tri++)
        for (int t = 0; t < 2; t++) {
            double worst = tm__dgemm_case(&r, 2200, tri ? 2200 : 2100, 3, t, !t, tri);
            CHECK_MSG(worst < 1e-13, "dgemm 2200 x %d: error %g", tri ? 2200 : 2100, worst);
        }
}

static void test_metrics_dgemm_threads(void) {
    /* 1 and 3 threads agree bitwise */
    int64_t m = 300, k = 1100;
    gantl_rng r = gantl_rng_new(2);
    double *a = (double *)malloc((size_t)(m * k) * sizeof(double)), *c[2];
    for (int64_t i = 0; i < m * k; i++) a[i] = gantl_rng_double(&r) - 0.5;
    for (int tri = 0; tri < 3; tri++) {
        for (int run = 0; run < 2; run++) {
            int old = tm__threads(run ? 3 : 1);
            c[run] = (double *)calloc((size_t)(m * m), sizeof(double));
            CHECK(gantl__dgemm(c[run], m, a, k, 0, a, k, 1, m, m, k, 0.5, tri) == GANTL_OK);
            tm__threads(old);
        }
        CHECK_MSG(memcmp(c[0], c[1], (size_t)(m * m) * sizeof(double)) == 0, "dgemm tri=%d: 1 and 3 threads differ", tri);
        free(c[0]), free(c[1]);
    }
    free(a);
}

/* a (n, n) = Q diag(lambda) Q^T with Q from Householder reflections of random vectors */
static void tm__spectrum_matrix(double *a, const double *lambda, int64_t n, uint64_t seed) {
    gantl_rng r = gantl_rng_new(seed);
    double *v = (double *)malloc((size_t)n * sizeof(double));
    memset(a, 0, (size_t)(n * n) * sizeof(double));
    for (int64_t i = 0; i < n; i++) a[i * n + i] = lambda[i];
    for (int rep = 0; rep < 3; rep++) { /* a = H a H, H = I - 2 v v^T / v.v */
        double vv = 0.0;
        for (int64_t i = 0; i < n; i++) v[i] = gantl_rng_double(&r) - 0.5, vv += v[i] * v[i];
        for (int side = 0; side < 2; side++)
            for (int64_t j = 0; j < n; j++) { /* columns (side 0) then rows (side 1) */
                double dot = 0.0;
                for (int64_t i = 0; i < n; i++) dot += v[i] * (side ? a[j * n + i] : a[i * n + j]);
                for (int64_t i = 0; i < n; i++) *(side ? &a[j * n + i] : &a[i * n + j]) -= 2.0 * dot / vv * v[i];
            }
    }
    free(v);
}

static int tm__cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void test_metrics_eigenvalues(void) {
    const int64_t sizes[] = {1, 2, 3, 10, 33, 34, 35, 200}; /* around the panel width (32) + 2 */
    for (int s = 0; s < 8; s++) {
        int64_t n = sizes[s];
        double *lambda = (double *)malloc((size_t)n * sizeof(double)), *a = (double *)malloc((size_t)(n * n) * sizeof(double));
        double *dg = (double *)malloc((size_t)n * sizeof(double)), *e = (double *)malloc((size_t)n * sizeof(double));
        for (int64_t i = 0; i < n; i++) lambda[i] = i % 3 == 0 ? 0.0 : (double)(i + 1) * (i % 2 ? 1.0 : -0.5); /* zeros, repeats */
        tm__spectrum_matrix(a, lambda, n, 7 + (uint64_t)s);
        CHECK(gantl__tridiagonalize(a, n, dg, e) == GANTL_OK);
        CHECK(gantl__tridiagonal_eigenvalues(dg, e, n) == 0);
        qsort(dg, (size_t)n, sizeof(double), tm__cmp_double);
        qsort(lambda, (size_t)n, sizeof(double), tm__cmp_double);
        for (int64_t i = 0; i < n; i++) CHECK_NEAR(dg[i], lambda[i], 1e-11 * (double)n);
        free(lambda), free(a), free(dg), free(e);
    }
}

static void test_metrics_cholesky(void) {
    int64_t n = 300; /* crosses the 128 block and the GEMM panels */
    double *lambda = (double *)malloc((size_t)n * sizeof(double)), *s = (double *)malloc((size_t)(n * n) * sizeof(double));
    double *l = (double *)malloc((size_t)(n * n) * sizeof(double)), *diag = (double *)malloc((size_t)n * sizeof(double));
    int64_t *perm = (int64_t *)malloc((size_t)n * sizeof(int64_t));
    for (int64_t i = 0; i < n; i++) lambda[i] = 0.5 + (double)i / 10.0;
    tm__spectrum_matrix(s, lambda, n, 3);
    gantl_status st;
    memcpy(l, s, (size_t)(n * n) * sizeof(double));
    CHECK(gantl__cholesky(l, n, 0.0, &st) == 0 && st == GANTL_OK);
    double worst = 0.0;
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < n; j++) {
            double t = 0.0;
            for (int64_t p = 0; p < n; p++) t += l[i * n + p] * l[j * n + p];
            if (fabs(t - s[i * n + j]) > worst) worst = fabs(t - s[i * n + j]);
            if (j > i) CHECK(l[i * n + j] == 0.0);
        }
    CHECK_MSG(worst < 1e-12, "blocked Cholesky: |L L^T - S| = %g", worst);
    /* rank 100: the blocked factorisation refuses, the pivoted one finds the rank */
    for (int64_t i = 0; i < n; i++) lambda[i] = i < 100 ? 1.0 + (double)i : 0.0;
    tm__spectrum_matrix(s, lambda, n, 4);
    memcpy(l, s, (size_t)(n * n) * sizeof(double));
    double tol = (double)n * GANTL__DBL_EPS * 100.0;
    CHECK(gantl__cholesky(l, n, tol, &st) == 1);
    int64_t rank = gantl__pivoted_cholesky(s, n, tol, l, perm, diag);
    CHECK_MSG(rank == 100, "pivoted Cholesky rank %lld, expected 100", (long long)rank);
    worst = 0.0;
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < n; j++) {
            double t = 0.0;
            for (int64_t p = 0; p < rank; p++) t += l[i * n + p] * l[j * n + p];
            if (fabs(t - s[perm[i] * n + perm[j]]) > worst) worst = fabs(t - s[perm[i] * n + perm[j]]);
        }
    CHECK_MSG(worst < 1e-10, "pivoted Cholesky: |L L^T - P S P^T| = %g", worst);
    free(lambda), free(s), free(l), free(diag), free(perm);
}

/* ------------------------------------------------------------------ FID */

static void test_metrics_fid_stats(void) {
    const float x[] = {1, 2, 3, 4, 5, 9}; /* (3, 2) */
    gantl_fid_stats s;
    CHECK(gantl_fid_stats_compute(&s, x, 3, 2, 1) == GANTL_OK);
    CHECK(s.dim == 2 && s.count == 3);
    CHECK(s.mean[0] == 3.0 && s.mean[1] == 5.0);
    CHECK(s.cov[0] == 4.0 && s.cov[1] == 7.0 && s.cov[2] == 7.0 && s.cov[3] == 13.0);
    gantl_fid_stats_free(&s);
    CHECK(s.mean == NULL && s.cov == NULL);
    CHECK(gantl_fid_stats_compute(&s, x, 3, 2, 0) == GANTL_OK); /* 1/N */
    CHECK_NEAR(s.cov[0], 8.0 / 3.0, 1e-15);
    CHECK_NEAR(s.cov[3], 26.0 / 3.0, 1e-15);
    gantl_fid_stats_free(&s);
    /* a bigger set: symmetric, and the biased / unbiased ratio is (n-1)/n */
    int64_t n = 700, d = 300;
    float *f = tm__randn(5, n * d, 1.0f, 2.0f);
    gantl_fid_stats u, b;
    CHECK(gantl_fid_stats_compute(&u, f, n, d, 1) == GANTL_OK);
    CHECK(gantl_fid_stats_compute(&b, f, n, d, 0) == GANTL_OK);
    int sym = 1;
    double worst = 0.0;
    for (int64_t i = 0; i < d; i++)
        for (int64_t j = 0; j < d; j++) {
            sym &= u.cov[i * d + j] == u.cov[j * d + i];
            double e = fabs(b.cov[i * d + j] - u.cov[i * d + j] * (double)(n - 1) / (double)n);
            if (e > worst) worst = e;
        }
    CHECK(sym);
    CHECK(worst < 1e-14);
    /* against a plain double-precision two-pass covariance of a few entries */
    for (int64_t i = 0; i < d; i += 37)
        for (int64_t j = 0; j <= i; j += 29) {
            double mi = 0.0, mj = 0.0, c = 0.0;
            for (int64_t r = 0; r < n; r++) mi += f[r * d + i], mj += f[r * d + j];
            mi /= (double)n, mj /= (double)n;
            for (int64_t r = 0; r < n; r++) c += (f[r * d + i] - mi) * (f[r * d + j] - mj);
            CHECK_NEAR(u.cov[i * d + j], c / (double)(n - 1), 1e-12);
            CHECK_NEAR(u.mean[i], mi, 1e-13);
        }
    gantl_fid_stats_free(&u);
    gantl_fid_stats_free(&b);
    free(f);
}

static void test_metrics_fid_reference(void) {
    gantl_st_file f;
    if (!tm__load(&f)) return;
    const char *pairs = gantl_st_meta(&f, "fid_pairs");
    int64_t nref = 0;
    double *ref = tm__f64(&f, "fid_ref", &nref);
    CHECK(pairs && ref && nref >= 6);
    int idx = 0;
    for (const char *p = pairs; p && ref && *p && idx < nref; idx++) {
        char xn[64], yn[64];
        int unbiased, used = 0;
        if (sscanf(p, "%63[^,],%63[^,],%d%n", xn, yn, &unbiased, &used) != 3) break;
        p += used + (p[used] == ';');
        int64_t nx, ny, dx, dy;
        float *x = tm__f32(&f, xn, &nx, &dx), *y = tm__f32(&f, yn, &ny, &dy);
        double fid = -1.0;
        CHECK(x && y && dx == dy);
        if (x && y) CHECK(gantl_fid(x, nx, y, ny, dx, unbiased, &fid) == GANTL_OK);
        double rel = fabs(fid - ref[idx]) / ref[idx];
        /* the requirement is 1e-6; all pairs, singular ones included, reach ~1e-15 */
        CHECK_MSG(rel <= 1e-10, "FID %s vs %s (unbiased %d) = %.15g, reference %.15g, rel %.2g", xn,
                  yn, unbiased, fid, ref[idx], rel);
        free(x), free(y);
    }
    CHECK_MSG(idx == nref, "parsed %d of %lld FID pairs", idx, (long long)nref);
    free(ref);
    gantl_st_free(&f);
}

static void test_metrics_fid_identical(void) {
    gantl_st_file f;
    if (!tm__load(&f)) return;
    const char *names[] = {"fid_a", "fid_c"}; /* full rank and singular */
    for (int i = 0; i < 2; i++) {
        int64_t n, d;
        float *x = tm__f32(&f, names[i], &n, &d);
        if (!x) continue;
        for (int unbiased = 0; unbiased < 2; unbiased++) {
            double fid = -1.0;
            CHECK(gantl_fid(x, n, x, n, d, unbiased, &fid) == GANTL_OK);
            CHECK_MSG(fid == 0.0, "FID(%s, %s) = %g, not exactly 0", names[i], names[i], fid);
            gantl_fid_stats s;
            CHECK(gantl_fid_stats_compute(&s, x, n, d, unbiased) == GANTL_OK);
            fid = -1.0;
            CHECK(gantl_fid_from_stats(&s, &s, &fid) == GANTL_OK && fid == 0.0);
            gantl_fid_stats_free(&s);
        }
        /* a copy of the features in other memory: same statistics, still exactly 0 */
        float *copy = (float *)malloc((size_t)(n * d) * sizeof(float));
        memcpy(copy, x, (size_t)(n * d) * sizeof(float));
        double fid = -1.0;
        CHECK(gantl_fid(x, n, copy, n, d, 1, &fid) == GANTL_OK && fid == 0.0);
        free(copy), free(x);
    }
    gantl_st_free(&f);
}

/* y = x + 0.5 (exact for small integers): covariances equal up to rounding, so
   FID = |0.5|^2 d through the general (not the identical-statistics) path. */
static void test_metrics_fid_shift(void) {
    const int64_t ns[] = {400, 12}, d = 40; /* full rank; singular (pivoted Cholesky path) */
    for (int c = 0; c < 2; c++) {
        int64_t n = ns[c];
        float *x = (float *)malloc((size_t)(n * d) * sizeof(float)), *y = (float *)malloc((size_t)(n * d) * sizeof(float));
        gantl_rng r = gantl_rng_new(9);
        for (int64_t i = 0; i < n * d; i++) x[i] = (float)gantl_rng_int(&r, 17) - 8.0f, y[i] = x[i] + 0.5f;
        double fid = -1.0;
        CHECK(gantl_fid(x, n, y, n, d, 1, &fid) == GANTL_OK);
        CHECK_NEAR(fid, 0.25 * (double)d, 1e-8);
        free(x), free(y);
    }
}

static void test_metrics_fid_errors(void) {
    float x[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13}; /* (4, 3) or (3, 4) */
    gantl_fid_stats s, t;
    double fid = 0.0;
    CHECK(gantl_fid_stats_compute(&s, x, 1, 3, 1) == GANTL_ERR_INVALID); /* n = 1 */
    CHECK(strstr(gantl_last_error(), "2 samples") != NULL);
    CHECK(s.mean == NULL && s.cov == NULL);
    CHECK(gantl_fid_stats_compute(&s, x, 4, 0, 1) == GANTL_ERR_INVALID); /* d = 0 */
    x[7] = NAN;
    CHECK(gantl_fid_stats_compute(&s, x, 4, 3, 1) == GANTL_ERR_INVALID);
    CHECK(strstr(gantl_last_error(), "NaN") != NULL);
    CHECK(gantl_fid(x, 4, x, 4, 3, 1, &fid) == GANTL_ERR_INVALID);
    x[7] = INFINITY;
    CHECK(gantl_fid_stats_compute(&s, x, 4, 3, 1) == GANTL_ERR_INVALID);
    x[7] = 8.0f;
    CHECK(gantl_fid_stats_compute(&s, x, 4, 3, 1) == GANTL_OK);
    CHECK(gantl_fid_stats_compute(&t, x, 3, 4, 1) == GANTL_OK);
    CHECK(gantl_fid_from_stats(&s, &t, &fid) == GANTL_ERR_INVALID); /* d mismatch */
    CHECK(strstr(gantl_last_error(), "differ") != NULL);
    s.cov[4] = NAN;
    CHECK(gantl_fid_from_stats(&s, &s, &fid) == GANTL_OK && fid == 0.0); /* the same object: 0 by definition */
    gantl_fid_stats_free(&t);
    CHECK(gantl_fid_stats_compute(&t, x, 4, 3, 1) == GANTL_OK);
    CHECK(gantl_fid_from_stats(&s, &t, &fid) == GANTL_ERR_INVALID); /* NaN in a covariance */
    gantl_fid_stats_free(&s);
    gantl_fid_stats_free(&t);
}

static void test_metrics_fid_threads(void) {
    int64_t n = 500, d = 200;
    float *x = tm__randn(21, n * d, 0.0f, 1.0f), *y = tm__randn(22, n * d, 0.3f, 1.2f);
    double fid[3];
    int old = tm__threads(1);
    CHECK(gantl_fid(x, n, y, n, d, 1, &fid[0]) == GANTL_OK);
    tm__threads(3);
    CHECK(gantl_fid(x, n, y, n, d, 1, &fid[1]) == GANTL_OK);
    tm__threads(old);
    CHECK(gantl_fid(x, n / 4, y, n, d, 1, &fid[2]) == GANTL_OK); /* singular x: pivoted path */
    CHECK_MSG(fid[0] == fid[1], "FID with 1 and 3 threads: %.17g vs %.17g", fid[0], fid[1]);
    CHECK(fid[0] > 0.0 && fid[2] > 0.0);
    free(x), free(y);
}

/* ------------------------------------------------------------------ KID */

static void test_metrics_kid_reference(void) {
    gantl_st_file f;
    if (!tm__load(&f)) return;
    int64_t nx, ny, dx, dy, s, m, s2, m2;
    float *x = tm__f32(&f, "kid_x", &nx, &dx), *y = tm__f32(&f, "kid_y", &ny, &dy);
    int64_t *xi = tm__i64(&f, "kid_xi", &s, &m), *yi = tm__i64(&f, "kid_yi", &s2, &m2);
    double *ref = tm__f64(&f, "kid_ref", NULL);
    if (x && y && xi && yi && ref) {
        CHECK(dx == dy && s == s2 && m == m2);
        double mean = 0.0, std = 0.0;
        CHECK(gantl_kid_from_subsets(x, nx, y, ny, dx, (int)s, m, xi, yi, &mean, &std) == GANTL_OK);
        TM_CHECK_REL(mean, ref[0], 1e-9);
        TM_CHECK_REL(std, ref[1], 1e-9);
        /* 1 and 3 threads agree bitwise */
        double mean1 = 0.0, std1 = 0.0;
        int old = tm__threads(1);
        CHECK(gantl_kid_from_subsets(x, nx, y, ny, dx, (int)s, m, xi, yi, &mean1, &std1) == GANTL_OK);
        tm__threads(old);
        CHECK(mean1 == mean && std1 == std);
        /* errors: index out of range, NaN, bad sizes */
        int64_t keep = xi[3];
        xi[3] = nx;
        CHECK(gantl_kid_from_subsets(x, nx, y, ny, dx, (int)s, m, xi, yi, &mean, &std) == GANTL_ERR_INVALID);
        xi[3] = keep;
        CHECK(gantl_kid_from_subsets(x, nx, y, ny, dx, 0, m, xi, yi, &mean, &std) == GANTL_ERR_INVALID);
        CHECK(gantl_kid_from_subsets(x, nx, y, ny, dx, (int)s, 1, xi, yi, &mean, &std) == GANTL_ERR_INVALID);
        y[5] = NAN;
        CHECK(gantl_kid_from_subsets(x, nx, y, ny, dx, (int)s, m, xi, yi, &mean, &std) == GANTL_ERR_INVALID);
        CHECK(gantl_kid(x, nx, y, ny, dx, 10, 50, 1, &mean, &std) == GANTL_ERR_INVALID);
    }
    free(x), free(y), free(xi), free(yi), free(ref);
    gantl_st_free(&f);
}

static void test_metrics_kid_subsets(void) {
    int64_t nx = 300, ny = 250, m = 50;
    int num = 20;
    int64_t *a = (int64_t *)malloc((size_t)(4 * num * m) * sizeof(int64_t)), *b = a + num * m, *c = b + num * m,
            *e = c + num * m;
    CHECK(gantl_kid_subsets(nx, ny, num, m, 123, a, b) == GANTL_OK);
    CHECK(gantl_kid_subsets(nx, ny, num, m, 123, c, e) == GANTL_OK);
    CHECK(!memcmp(a, c, (size_t)(2 * num * m) * sizeof(int64_t))); /* reproducible */
    CHECK(gantl_kid_subsets(nx, ny, num, m, 124, c, e) == GANTL_OK);
    CHECK(memcmp(a, c, (size_t)(num * m) * sizeof(int64_t)) != 0); /* seed matters */
    int ok = 1, differ = 0;
    unsigned char *seen = (unsigned char *)malloc((size_t)nx);
    for (int s = 0; s < num; s++)
        for (int side = 0; side < 2; side++) {
            int64_t n = side ? ny : nx;
            const int64_t *idx = (side ? b : a) + s * m;
            memset(seen, 0, (size_t)nx);
            for (int64_t i = 0; i < m; i++) {
                ok &= idx[i] >= 0 && idx[i] < n && !seen[idx[i]]; /* in range, no repeats */
                if (idx[i] >= 0 && idx[i] < n) seen[idx[i]] = 1;
            }
            if (s) differ |= memcmp(idx, idx - m, (size_t)m * sizeof(int64_t)) != 0;
        }
    CHECK(ok);
    CHECK(differ);
    CHECK(gantl_kid_subsets(nx, ny, num, 251, 1, a, b) == GANTL_ERR_INVALID); /* m > ny */
    free(seen);
    /* gantl_kid = gantl_kid_from_subsets on gantl_kid_subsets; subset_size 0 = min(nx, ny, 1000) */
    int64_t d = 24;
    float *x = tm__randn(31, nx * d, 0.5f, 1.0f), *y = tm__randn(32, ny * d, 0.8f, 1.0f);
    double m1, s1, m2, s2, m3, s3;
    CHECK(gantl_kid(x, nx, y, ny, d, num, m, 7, &m1, &s1) == GANTL_OK);
    CHECK(gantl_kid_subsets(nx, ny, num, m, 7, a, b) == GANTL_OK);
    CHECK(gantl_kid_from_subsets(x, nx, y, ny, d, num, m, a, b, &m2, &s2) == GANTL_OK);
    CHECK(m1 == m2 && s1 == s2);
    CHECK(gantl_kid(x, nx, y, ny, d, 3, 0, 7, &m2, &s2) == GANTL_OK);
    CHECK(gantl_kid(x, nx, y, ny, d, 3, ny, 7, &m3, &s3) == GANTL_OK);
    CHECK(m2 == m3 && s2 == s3);
    /* the shifted set is detectably different; the same distribution is not */
    CHECK(m1 > 3.0 * s1 / sqrt((double)num));
    float *x2 = tm__randn(33, nx * d, 0.5f, 1.0f);
    CHECK(gantl_kid(x, nx, x2, nx, d, num, 100, 7, &m3, &s3) == GANTL_OK);
    CHECK(fabs(m3) < m1 / 5.0);
    free(x), free(y), free(x2), free(a);
}

/* ------------------------------------------------------------------ PR / DC */

static void test_metrics_prdc_reference(void) {
    gantl_st_file f;
    if (!tm__load(&f)) return;
    const char *sets[] = {"int", "cont"};
    for (int s = 0; s < 2; s++) {
        char name[64];
        int64_t nr, nf, d, d2;
        snprintf(name, sizeof name, "prdc_%s_real", sets[s]);
        float *real = tm__f32(&f, name, &nr, &d);
        snprintf(name, sizeof name, "prdc_%s_fake", sets[s]);
        float *fake = tm__f32(&f, name, &nf, &d2);
        if (!real || !fake) continue;
        for (int k = 3; k <= 5; k += 2)
            for (int strict = 0; strict < 2; strict++) {
                snprintf(name, sizeof name, "prdc_%s_k%d_s%d", sets[s], k, strict);
                double *ref = tm__f64(&f, name, NULL);
                gantl_prdc out;
                CHECK(gantl_prdc_compute(real, nr, fake, nf, d, k, strict, &out) == GANTL_OK);
                if (!ref) continue;
                CHECK_MSG(fabs(out.precision - ref[0]) < 1e-12 && fabs(out.recall - ref[1]) < 1e-12 &&
                              fabs(out.density - ref[2]) < 1e-12 && fabs(out.coverage - ref[3]) < 1e-12,
                          "%s: got P %.6f R %.6f D %.6f C %.6f, expected %.6f %.6f %.6f %.6f", name, out.precision,
                          out.recall, out.density, out.coverage, ref[0], ref[1], ref[2], ref[3]);
                free(ref);
            }
        /* k-NN radii; the integer set has a point with 5 copies: radius 0 */
        int kk = s ? 5 : 3;
        snprintf(name, sizeof name, "prdc_%s_radii_k%d", sets[s], kk);
        double *rref = tm__f64(&f, name, NULL);
        float *radii = (float *)malloc((size_t)nr * sizeof(float));
        CHECK(gantl_knn_radii(real, nr, d, kk, radii) == GANTL_OK);
        if (rref) {
            double worst = 0.0;
            for (int64_t i = 0; i < nr; i++) {
                double e = fabs(radii[i] - rref[i]) / (1e-30 + rref[i]);
                if (rref[i] == 0.0) e = radii[i] == 0.0f ? 0.0 : 1.0;
                if (e > worst) worst = e;
            }
            CHECK_MSG(worst < 1e-6, "%s: worst relative error %g", name, worst);
        }
        if (!s) CHECK(radii[20] == 0.0f && radii[280] == 0.0f);
        free(rref), free(radii), free(real), free(fake);
    }
    gantl_st_free(&f);
}

static int tm__same_prdc(const gantl_prdc *a, const gantl_prdc *b) {
    return a->precision == b->precision && a->recall == b->recall && a->density == b->density &&
           a->coverage == b->coverage;
}

/* Block sizes and thread counts change nothing, also for d > 256 (several GEMM k-panels). */
static void test_metrics_prdc_blocks(void) {
    {   /* squared distances: one big block (gantl_sgemm) and 9 x 7 tiles (written-out loop) agree bitwise */
        int64_t n = 120, d = 300, same = 1;
        float *x = tm__randn(40, n * d, 0.5f, 1.0f), *xn = (float *)malloc((size_t)n * sizeof(float));
        float *big = (float *)malloc((size_t)(n * n) * sizeof(float));
        gantl__sq_norms(x, n, d, xn);
        gantl__dist_ws w;
        CHECK(gantl__dist_ws_init(&w, n, n, d) == GANTL_OK);
        gantl__sq_dist_block(&w, x, xn, n, x, xn, n);
        memcpy(big, w.blk, (size_t)(n * n) * sizeof(float));
        for (int64_t i0 = 0; i0 < n; i0 += 9)
            for (int64_t j0 = 0; j0 < n; j0 += 7) {
                int64_t r = n - i0 < 9 ? n - i0 : 9, c = n - j0 < 7 ? n - j0 : 7;
                gantl__sq_dist_block(&w, x + i0 * d, xn + i0, r, x + j0 * d, xn + j0, c);
                for (int64_t i = 0; i < r; i++)
                    for (int64_t j = 0; j < c; j++) same &= w.blk[i * c + j] == big[(i0 + i) * n + j0 + j];
            }
        CHECK(same);
        /* k-NN radii bitwise equal for several block shapes */
        float *r1 = (float *)malloc((size_t)(2 * n) * sizeof(float)), *r2 = r1 + n;
        CHECK(gantl__knn_sq(&w, x, xn, n, 4, r1) == GANTL_OK);
        gantl__dist_ws_free(&w);
        const int64_t shapes[][2] = {{7, 5}, {5, 7}, {1, 120}, {120, 1}, {33, 64}};
        for (int b = 0; b < 5; b++) {
            CHECK(gantl__dist_ws_init(&w, shapes[b][0], shapes[b][1], d) == GANTL_OK);
            CHECK(gantl__knn_sq(&w, x, xn, n, 4, r2) == GANTL_OK);
            CHECK_MSG(!memcmp(r1, r2, (size_t)n * sizeof(float)), "k-NN radii change with blocks %lld x %lld",
                      (long long)shapes[b][0], (long long)shapes[b][1]);
            gantl__dist_ws_free(&w);
        }
        free(x), free(xn), free(big), free(r1);
    }
    const int64_t dims[] = {40, 300};
    const int64_t blocks[][2] = {{7, 5}, {64, 33}, {1, 1000}, {1000, 1}, {128, 256}};
    for (int c = 0; c < 2; c++) {
        int64_t d = dims[c], nr = 230, nf = 170;
        float *real = tm__randn(41, nr * d, 0.0f, 1.0f), *fake = tm__randn(42, nf * d, 0.2f, 1.1f);
        for (int strict = 0; strict < 2; strict++) {
            gantl_prdc ref, out;
            CHECK(gantl_prdc_compute(real, nr, fake, nf, d, 3, strict, &ref) == GANTL_OK);
            CHECK(ref.precision > 0.0 && ref.recall > 0.0 && ref.density > 0.0 && ref.coverage > 0.0);
            for (int b = 0; b < 5; b++) {
                CHECK(gantl__prdc(real, nr, fake, nf, d, 3, strict, &out, blocks[b][0], blocks[b][1]) == GANTL_OK);
                CHECK_MSG(tm__same_prdc(&out, &ref), "d %lld, blocks %lld x %lld: results changed", (long long)d,
                          (long long)blocks[b][0], (long long)blocks[b][1]);
            }
            int old = tm__threads(1);
            CHECK(gantl_prdc_compute(real, nr, fake, nf, d, 3, strict, &out) == GANTL_OK);
            CHECK(tm__same_prdc(&out, &ref));
            tm__threads(3);
            CHECK(gantl__prdc(real, nr, fake, nf, d, 3, strict, &out, 50, 70) == GANTL_OK);
            CHECK(tm__same_prdc(&out, &ref));
            tm__threads(old);
        }
        free(real), free(fake);
    }
}

/* Answers known by construction; catches precision and recall swapped. */
static void test_metrics_prdc_direction(void) {
    int64_t n = 1000, d = 8;
    float *real = tm__randn(51, n * d, 0.0f, 1.0f);
    float *tight = tm__randn(52, n * d, 0.0f, 0.2f); /* inside the real support, covering little of it */
    gantl_prdc out;
    CHECK(gantl_prdc_compute(real, n, tight, n, d, 3, 0, &out) == GANTL_OK);
    CHECK_MSG(out.precision > 0.9 && out.recall < 0.2, "tight fake set: precision %.3f (want high), recall %.3f (want low)",
              out.precision, out.recall);
    CHECK(out.density > 1.5 && out.coverage < 0.3); /* crowded where the reals are dense; covers little */
    CHECK(gantl_prdc_compute(tight, n, real, n, d, 3, 0, &out) == GANTL_OK); /* roles swapped */
    CHECK_MSG(out.precision < 0.2 && out.recall > 0.9, "wide fake set: precision %.3f (want low), recall %.3f (want high)",
              out.precision, out.recall);
    CHECK(out.density < 0.2 && out.coverage < 0.2); /* the tight reals' balls are tiny */
    /* fake = real: all inside (the points themselves are at distance 0) */
    for (int strict = 0; strict < 2; strict++) {
        CHECK(gantl_prdc_compute(real, n, real, n, d, 3, strict, &out) == GANTL_OK);
        CHECK(out.precision == 1.0 && out.recall == 1.0 && out.coverage == 1.0 && out.density >= 1.0 / 3.0);
    }
    /* far apart: nothing */
    for (int64_t i = 0; i < n * d; i++) tight[i] = real[i] + 100.0f;
    CHECK(gantl_prdc_compute(real, n, tight, n, d, 3, 0, &out) == GANTL_OK);
    CHECK(out.precision == 0.0 && out.recall == 0.0 && out.density == 0.0 && out.coverage == 0.0);
    free(real), free(tight);
}

static void test_metrics_prdc_errors(void) {
    float x[24];
    for (int i = 0; i < 24; i++) x[i] = (float)(i * i % 7);
    gantl_prdc out;
    float radii[8];
    CHECK(gantl_prdc_compute(x, 8, x, 8, 3, 8, 0, &out) == GANTL_ERR_INVALID); /* k >= n */
    CHECK(gantl_prdc_compute(x, 8, x, 4, 6, 4, 0, &out) == GANTL_ERR_INVALID); /* k >= n_fake */
    CHECK(gantl_prdc_compute(x, 8, x, 8, 3, 0, 0, &out) == GANTL_ERR_INVALID); /* k = 0 */
    CHECK(gantl_knn_radii(x, 8, 3, 8, radii) == GANTL_ERR_INVALID);
    CHECK(gantl_knn_radii(x, 8, 3, 7, radii) == GANTL_OK);
    x[5] = NAN;
    CHECK(gantl_prdc_compute(x, 8, x, 8, 3, 3, 0, &out) == GANTL_ERR_INVALID);
    CHECK(strstr(gantl_last_error(), "NaN") != NULL);
    CHECK(gantl_knn_radii(x, 8, 3, 3, radii) == GANTL_ERR_INVALID);
}

/* ------------------------------------------------------------------ W1 and assignment */

/* assign is a permutation and total its cost */
static int tm__check_assignment(const double *cost, int64_t n, const int64_t *assign, double total) {
    unsigned char *seen = (unsigned char *)calloc((size_t)n + 1, 1);
    double sum = 0.0;
    int ok = 1;
    for (int64_t i = 0; i < n; i++) {
        ok &= assign[i] >= 0 && assign[i] < n && !seen[assign[i]];
        if (ok) seen[assign[i]] = 1, sum += cost[i * n + assign[i]];
    }
    free(seen);
    return ok && sum == total;
}

static void test_metrics_assignment_bruteforce(void) {
    gantl_st_file f;
    if (!tm__load(&f)) return;
    double *w1_ref = tm__f64(&f, "w1_tiny_ref", NULL), *c_ref = tm__f64(&f, "w1_tiny_cost_ref", NULL),
           *i_ref = tm__f64(&f, "w1_tiny_icost_ref", NULL);
    for (int n = 1; n <= 7 && w1_ref && c_ref && i_ref; n++) {
        char name[64];
        snprintf(name, sizeof name, "w1_tiny_a%d", n);
        float *a = tm__f32(&f, name, NULL, NULL);
        snprintf(name, sizeof name, "w1_tiny_b%d", n);
        float *b = tm__f32(&f, name, NULL, NULL);
        double w1 = -1.0;
        CHECK(a && b && gantl_w1_2d(a, b, n, &w1) == GANTL_OK);
        TM_CHECK_REL(w1, w1_ref[n - 1], 1e-12);
        for (int kind = 0; kind < 2; kind++) {
            snprintf(name, sizeof name, kind ? "w1_tiny_icost%d" : "w1_tiny_cost%d", n);
            double *cost = tm__f64(&f, name, NULL), total = -1.0;
            int64_t assign[7];
            if (!cost) continue;
            CHECK(gantl_linear_assignment(cost, n, assign, &total) == GANTL_OK);
            CHECK(tm__check_assignment(cost, n, assign, total));
            CHECK_NEAR(total, (kind ? i_ref : c_ref)[n - 1], 1e-12);
            free(cost);
        }
        free(a), free(b);
    }
    free(w1_ref), free(c_ref), free(i_ref);
    gantl_st_free(&f);
}

static void test_metrics_assignment_scipy(void) {
    gantl_st_file f;
    if (!tm__load(&f)) return;
    int64_t n, two;
    float *a = tm__f32(&f, "w1_a", &n, &two), *b = tm__f32(&f, "w1_b", NULL, NULL);
    double *ref = tm__f64(&f, "w1_ref", NULL), w1 = -1.0;
    CHECK(a && b && ref && two == 2);
    if (a && b && ref) {
        CHECK(gantl_w1_2d(a, b, n, &w1) == GANTL_OK);
        TM_CHECK_REL(w1, ref[0], 1e-12);
        CHECK(gantl_w1_2d(a, a, n, &w1) == GANTL_OK && w1 == 0.0);
    }
    free(a), free(b), free(ref);
    a = tm__f32(&f, "w1_big_a", &n, &two), b = tm__f32(&f, "w1_big_b", NULL, NULL);
    ref = tm__f64(&f, "w1_big_ref", NULL);
    if (a && b && ref) {
        CHECK(gantl_w1_2d(a, b, n, &w1) == GANTL_OK);
        TM_CHECK_REL(w1, ref[0], 1e-12);
    }
    free(a), free(b), free(ref);
    const char *costs[] = {"lap_cost", "lap_icost", "lap_ncost"}, *refs[] = {"lap_ref", "lap_iref", "lap_nref"};
    for (int c = 0; c < 3; c++) {
        int64_t numel = 0;
        double *cost = NULL;
        if (c == 1) { /* integers, stored as F32 */
            int64_t r, cc;
            float *ci = tm__f32(&f, costs[c], &r, &cc);
            if (ci) {
                numel = r * cc;
                cost = (double *)malloc((size_t)numel * sizeof(double));
                for (int64_t i = 0; i < numel; i++) cost[i] = ci[i];
                free(ci);
            }
        } else {
            cost = tm__f64(&f, costs[c], &numel);
        }
        double *r = tm__f64(&f, refs[c], NULL), total = 0.0;
        if (!cost || !r) continue;
        int64_t m = (int64_t)(sqrt((double)numel) + 0.5);
        int64_t *assign = (int64_t *)malloc((size_t)m * sizeof(int64_t));
        CHECK(gantl_linear_assignment(cost, m, assign, &total) == GANTL_OK);
        CHECK(tm__check_assignment(cost, m, assign, total));
        CHECK_MSG(fabs(total - r[0]) <= 1e-12 * (1.0 + fabs(r[0])), "%s: total %.17g, scipy %.17g", costs[c], total, r[0]);
        free(cost), free(r), free(assign);
    }
    gantl_st_free(&f);
}

static void test_metrics_w1_properties(void) {
    int64_t n = 500;
    float *a = (float *)malloc((size_t)(4 * n) * sizeof(float)), *b = a + 2 * n;
    gantl_rng r = gantl_rng_new(61);
    for (int64_t i = 0; i < 2 * n; i++) a[i] = (float)gantl_rng_int(&r, 1024) / 64.0f; /* exact in float */
    for (int64_t i = 0; i < n; i++) b[2 * i] = a[2 * i] + 3.0f, b[2 * i + 1] = a[2 * i + 1] - 4.0f;
    double w1 = -1.0;
    CHECK(gantl_w1_2d(a, b, n, &w1) == GANTL_OK);
    CHECK_NEAR(w1, 5.0, 1e-12); /* a translation by t costs exactly |t| */
    CHECK(gantl_w1_2d(a, b, 0, &w1) == GANTL_ERR_INVALID);
    b[3] = NAN;
    CHECK(gantl_w1_2d(a, b, n, &w1) == GANTL_ERR_INVALID);
    double cost[4] = {1, 2, INFINITY, 0}, total;
    CHECK(gantl_linear_assignment(cost, 2, NULL, &total) == GANTL_ERR_INVALID);
    CHECK(gantl_linear_assignment(cost, 0, NULL, &total) == GANTL_OK && total == 0.0);
    free(a);
}

/* ------------------------------------------------------------------ Pearson */

static void test_metrics_pearson(void) {
    gantl_st_file f;
    if (!tm__load(&f)) return;
    int64_t ncases = 0;
    double *ref = tm__f64(&f, "pearson_ref", &ncases);
    ncases /= 2;
    CHECK(ncases >= 8);
    for (int64_t c = 0; ref && c < ncases; c++) {
        char nx[64], ny[64];
        snprintf(nx, sizeof nx, "pearson_x_%lld", (long long)c);
        snprintf(ny, sizeof ny, "pearson_y_%lld", (long long)c);
        int64_t n = 0;
        double *x = tm__f64(&f, nx, &n), *y = tm__f64(&f, ny, NULL), r = 0.0, p = -1.0;
        if (!x || !y) continue;
        CHECK(gantl_pearson(x, y, n, &r, &p) == GANTL_OK);
        CHECK_MSG(fabs(r - ref[2 * c]) <= 1e-13 * (fabs(ref[2 * c]) + 1e-3), "case %lld (n %lld): r %.17g, scipy %.17g",
                  (long long)c, (long long)n, r, ref[2 * c]);
        CHECK_MSG(fabs(p - ref[2 * c + 1]) <= 1e-10 * ref[2 * c + 1], "case %lld (n %lld): p %.17g, scipy %.17g",
                  (long long)c, (long long)n, p, ref[2 * c + 1]);
        free(x), free(y);
    }
    free(ref);
    gantl_st_free(&f);
    /* edge cases */
    double x[5] = {1, 2, 3, 4, 5}, y[5] = {2, 4, 6, 8, 10}, z[5] = {3, 3, 3, 3, 3}, r, p;
    CHECK(gantl_pearson(x, y, 5, &r, &p) == GANTL_OK && fabs(r - 1.0) < 1e-15 && p < 1e-20);
    CHECK(gantl_pearson(x, y, 2, &r, &p) == GANTL_OK && fabs(r - 1.0) < 1e-15 && p == 1.0); /* scipy: n = 2 gives p = 1 */
    for (int i = 0; i < 5; i++) z[i] = -y[i];
    CHECK(gantl_pearson(x, z, 5, &r, &p) == GANTL_OK && fabs(r + 1.0) < 1e-15 && p < 1e-20);
    z[0] = z[1] = z[2] = z[3] = z[4] = 3.0;
    CHECK(gantl_pearson(x, z, 5, &r, &p) == GANTL_ERR_INVALID);                 /* constant */
    CHECK(gantl_pearson(x, y, 1, &r, &p) == GANTL_ERR_INVALID);
    y[2] = NAN;
    CHECK(gantl_pearson(x, y, 5, &r, &p) == GANTL_ERR_INVALID);
    /* the incomplete beta against closed forms: I_x(1, 1) = x, I_x(a, 1) = x^a, I_x(1/2, 1/2) = 2/pi asin(sqrt x) */
    CHECK_NEAR(gantl__beta_inc(1.0, 1.0, 0.3, 0.7), 0.3, 1e-15);
    CHECK_NEAR(gantl__beta_inc(2.5, 1.0, 0.6, 0.4), pow(0.6, 2.5), 1e-15);
    CHECK_NEAR(gantl__beta_inc(0.5, 0.5, 0.9, 0.1), 2.0 / 3.14159265358979323846 * asin(sqrt(0.9)), 1e-14);
}

static void run_metrics_tests(void) {
    RUN(test_metrics_dgemm);
    RUN(test_metrics_dgemm_threads);
    RUN(test_metrics_eigenvalues);
    RUN(test_metrics_cholesky);
    RUN(test_metrics_fid_stats);
    RUN(test_metrics_fid_reference);
    RUN(test_metrics_fid_identical);
    RUN(test_metrics_fid_shift);
    RUN(test_metrics_fid_errors);
    RUN(test_metrics_fid_threads);
    RUN(test_metrics_kid_reference);
    RUN(test_metrics_kid_subsets);
    RUN(test_metrics_prdc_reference);
    RUN(test_metrics_prdc_blocks);
    RUN(test_metrics_prdc_direction);
    RUN(test_metrics_prdc_errors);
    RUN(test_metrics_assignment_bruteforce);
    RUN(test_metrics_assignment_scipy);
    RUN(test_metrics_w1_properties);
    RUN(test_metrics_pearson);
}
