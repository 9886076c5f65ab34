/* Timings of the metrics at realistic sizes (compare: tools/bench_metrics.py).
   Included into a benchmark translation unit after gantl.h (with GANTL_IMPLEMENTATION);
   defines bench_metrics(), which prints one "bench" line per measurement to stdout. */

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

/* Wall-clock seconds: clock_gettime(CLOCK_MONOTONIC) where the headers declare it (POSIX;
   strict -std=c99 hides it unless _POSIX_C_SOURCE is defined first), else OpenMP's
   wall clock, else clock() (CPU time, an over-estimate with threads). */
static double bm__now(void) {
#if defined(CLOCK_MONOTONIC)
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
#elif defined(_OPENMP) && !defined(GANTL_NO_OPENMP)
    return omp_get_wtime();
#else
    return (double)clock() / CLOCKS_PER_SEC;
#endif
}

static float *bm__features(uint64_t seed, int64_t n, int64_t d, float shift) {
    float *x = (float *)malloc((size_t)(n * d) * sizeof(float));
    if (!x) return NULL;
    gantl_rng r = gantl_rng_new(seed);
    gantl_rng_normal(&r, x, n * d, shift, 1.0f);
    return x;
}

static void bench_metrics(void) {
    /* FID and PR on 10k x 2048 / 10k x 4096 features, W1 of 2048-point clouds, KID: one line each,
       "bench NAME MS ms ...", which tools/bench_torch.py lines up with tools/bench_metrics.py */
    {   /* FID: two 10k x 2048 sets, statistics + FID */
        int64_t n = 10000, d = 2048;
        float *x = bm__features(1, n, d, 0.0f), *y = bm__features(2, n, d, 0.1f);
        if (!x || !y) {
            printf("fid: out of memory\n");
        } else {
            gantl_fid_stats sx, sy;
            double fid = 0.0, t0 = bm__now();
            gantl_status st = gantl_fid_stats_compute(&sx, x, n, d, 1);
            if (!st) st = gantl_fid_stats_compute(&sy, y, n, d, 1);
            double t1 = bm__now();
            if (!st) st = gantl_fid_from_stats(&sx, &sy, &fid);
            double t2 = bm__now();
            printf("bench fid_%lldx%lld %.1f ms (statistics %.2f s, fid from statistics %.2f s), fid = %.6f%s\n",
                   (long long)n, (long long)d, 1e3 * (t2 - t0), t1 - t0, t2 - t1, fid, st ? " FAILED" : "");
            if (!st) {
                gantl_fid_stats_free(&sx);
                gantl_fid_stats_free(&sy);
            }
        }
        free(x), free(y);
    }
    {   /* PR / DC: two 10k x 4096 sets, k = 3 */
        int64_t n = 10000, d = 4096;
        float *x = bm__features(3, n, d, 0.0f), *y = bm__features(4, n, d, 0.02f);
        if (!x || !y) {
            printf("prdc: out of memory\n");
        } else {
            gantl_prdc out;
            double t0 = bm__now();
            gantl_status st = gantl_prdc_compute(x, n, y, n, d, 3, 0, &out);
            double t1 = bm__now();
            printf("bench prdc_%lldx%lld %.1f ms k = 3, P %.4f R %.4f D %.4f C %.4f%s\n", (long long)n, (long long)d,
                   1e3 * (t1 - t0), out.precision, out.recall, out.density, out.coverage, st ? " FAILED" : "");
        }
        free(x), free(y);
    }
    {   /* W1 between two 2048-point 2-D clouds */
        int64_t n = 2048;
        float *a = bm__features(5, n, 2, 0.0f), *b = bm__features(6, n, 2, 0.5f);
        double w1 = 0.0, t0 = bm__now();
        gantl_status st = gantl_w1_2d(a, b, n, &w1);
        double t1 = bm__now();
        printf("bench w1_2d_%lld %.1f ms w1 = %.6f%s\n", (long long)n, 1e3 * (t1 - t0), w1, st ? " FAILED" : "");
        free(a), free(b);
    }
    {   /* KID: 10 subsets of 1000 from 10k x 2048 sets (the usual 100 subsets take 10x) */
        int64_t n = 10000, d = 2048;
        float *x = bm__features(7, n, d, 0.0f), *y = bm__features(8, n, d, 0.1f);
        double mean = 0.0, std = 0.0, t0 = bm__now();
        gantl_status st = x && y ? gantl_kid(x, n, y, n, d, 10, 1000, 1, &mean, &std) : GANTL_ERR_NOMEM;
        double t1 = bm__now();
        printf("bench kid_10x1000_d%lld %.1f ms kid = %.6f +- %.6f%s\n", (long long)d, 1e3 * (t1 - t0), mean, std,
               st ? " FAILED" : "");
        free(x), free(y);
    }
}
