/* Benchmarks (make bench). Each line: "bench <name> <milliseconds per call> <extra>".
   tools/bench_torch.py runs this binary and the same work in PyTorch and prints ratios.
   Timing is the median of repeated runs after a warm-up. */
#define _POSIX_C_SOURCE 200809L
#define GANTL_IMPLEMENTATION
#include "../gantl.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

typedef void (*bench_fn)(void *arg);

/* Median seconds per call over repeats of at least min_seconds / 5 each. */
static double bench_time(bench_fn fn, void *arg, double min_seconds) {
    fn(arg); /* warm-up */
    double t0 = now_s();
    fn(arg);
    double once = now_s() - t0;
    int inner = once > 0 ? (int)(min_seconds / 5 / once) + 1 : 100;
    double times[5];
    for (int r = 0; r < 5; r++) {
        t0 = now_s();
        for (int i = 0; i < inner; i++) fn(arg);
        times[r] = (now_s() - t0) / inner;
    }
    qsort(times, 5, sizeof times[0], cmp_double);
    return times[2];
}

typedef struct gemm_arg {
    int64_t m, n, k;
    int tb;
    float *a, *b, *c;
} gemm_arg;
static void run_gemm(void *p) {
    gemm_arg *g = (gemm_arg *)p;
    gantl_sgemm(g->c, g->a, g->b, 0, g->tb, 1.0f, 0.0f, g->m, g->n, g->k);
}

typedef struct conv_arg {
    gantl_ctx *ctx;
    gantl_tensor *x, *w;
    int backward;
} conv_arg;
static void run_conv(void *p) {
    conv_arg *c = (conv_arg *)p;
    gantl_ctx_reset(c->ctx);
    gantl_tensor *y = gantl_conv2d(c->ctx, c->x, c->w, 1, 1, 1);
    if (c->backward) {
        gantl_tensor *in[2] = {c->x, c->w}, *g[2], *loss = gantl_sum_all(c->ctx, y);
        gantl_grad(c->ctx, 1, &loss, NULL, 2, in, g, 0);
    }
}

/* ADA 'bgc' on a batch of 32 3x32x32 images; a fresh draw each call (same seed) */
typedef struct augment_arg {
    gantl_ctx *ctx;
    gantl_tensor *x;
    gantl_augment aug;
    int backward;
} augment_arg;
static void run_augment(void *p) {
    augment_arg *a = (augment_arg *)p;
    gantl_rng rng = gantl_rng_new(1);
    gantl_ctx_reset(a->ctx);
    gantl_tensor *y = gantl_augment_apply(a->ctx, &a->aug, a->x, &rng);
    if (a->backward) {
        gantl_tensor *loss = gantl_sum_all(a->ctx, gantl_square(a->ctx, y)), *g;
        gantl_grad(a->ctx, 1, &loss, NULL, 1, &a->x, &g, 0);
    }
}

int main(void) {
    printf("gantl bench: %d thread(s)\n", gantl_num_threads());
    gantl_rng rng = gantl_rng_new(0);
    int64_t gemms[3][3] = {{512, 512, 512}, {1024, 1024, 1024}, {256, 4096, 1152}};
    for (int i = 0; i < 3; i++) {
        gemm_arg g = {gemms[i][0], gemms[i][1], gemms[i][2], 0, NULL, NULL, NULL};
        g.a = (float *)malloc((size_t)(g.m * g.k) * sizeof(float));
        g.b = (float *)malloc((size_t)(g.k * g.n) * sizeof(float));
        g.c = (float *)malloc((size_t)(g.m * g.n) * sizeof(float));
        gantl_rng_normal(&rng, g.a, g.m * g.k, 0, 1);
        gantl_rng_normal(&rng, g.b, g.k * g.n, 0, 1);
        double t = bench_time(run_gemm, &g, 1.0);
        printf("bench sgemm_%lldx%lldx%lld %.3f ms %.1f GFLOP/s\n", (long long)g.m, (long long)g.n, (long long)g.k,
               1e3 * t, 2.0 * (double)(g.m * g.n * g.k) / t * 1e-9);
        free(g.a), free(g.b), free(g.c);
    }
    /* a StyleGAN-sized 3x3 convolution: batch 32, 128 -> 128 channels, 16x16 */
    conv_arg c;
    c.ctx = gantl_ctx_new(0);
    gantl_ctx *params = gantl_ctx_new(0);
    c.x = gantl_requires_grad(gantl_randn(params, &rng, 4, (int64_t[]){32, 128, 16, 16}));
    c.w = gantl_requires_grad(gantl_randn(params, &rng, 4, (int64_t[]){128, 128, 3, 3}));
    double flops = 2.0 * 32 * 128 * 128 * 9 * 256;
    c.backward = 0;
    double t = bench_time(run_conv, &c, 1.0);
    printf("bench conv3x3_fwd_32x128x16x16 %.3f ms %.1f GFLOP/s\n", 1e3 * t, flops / t * 1e-9);
    c.backward = 1;
    t = bench_time(run_conv, &c, 1.0);
    printf("bench conv3x3_fwdbwd_32x128x16x16 %.3f ms %.1f GFLOP/s\n", 1e3 * t, 3 * flops / t * 1e-9);
    augment_arg au;
    au.ctx = gantl_ctx_new(0);
    au.x = gantl_requires_grad(gantl_randn(params, &rng, 4, (int64_t[]){32, 3, 32, 32}));
    float ps[2] = {0.0f, 0.6f};
    for (int i = 0; i < 2; i++) {
        gantl_augment_init(&au.aug, ps[i], 0.6, 500.0f);
        for (au.backward = 0; au.backward < 2; au.backward++) {
            t = bench_time(run_augment, &au, 1.0);
            printf("bench augment_bgc_p%g_%s_32x3x32x32 %.3f ms\n", ps[i], au.backward ? "fwdbwd" : "fwd", 1e3 * t);
        }
    }
    gantl_ctx_free(au.ctx);
    gantl_ctx_free(c.ctx);
    gantl_ctx_free(params);
    return 0;
}
