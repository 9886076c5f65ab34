/* Benchmarks (make bench). Each line: "bench <name> <milliseconds per call> <extra>".
   tools/bench_torch.py runs this binary and the same work in PyTorch and prints ratios.
   Timing is the median of repeated runs after a warm-up. */
#define _POSIX_C_SOURCE 200809L
#define GANTL_IMPLEMENTATION
#include "../gantl.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "bench_metrics.c"

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

/* The machine's peak single-precision FLOP/s, measured: each thread runs chains of independent
   fused multiply-adds in the widest vectors the build targets (AVX-512 or AVX2 + FMA), enough
   chains to cover the FMA latency. This is the roof a GEMM can reach at the clock the cores
   actually run; 0 when the build targets neither (no vector FMA to measure). */
#if defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__))
#include <immintrin.h>
#if defined(__AVX512F__)
#define PEAK_VEC __m512
#define PEAK_SET1 _mm512_set1_ps
#define PEAK_FMA _mm512_fmadd_ps
#define PEAK_ADD _mm512_add_ps
#define PEAK_LANES 16
#define PEAK_STORE _mm512_storeu_ps
#else
#define PEAK_VEC __m256
#define PEAK_SET1 _mm256_set1_ps
#define PEAK_FMA _mm256_fmadd_ps
#define PEAK_ADD _mm256_add_ps
#define PEAK_LANES 8
#define PEAK_STORE _mm256_storeu_ps
#endif
static float peak_fma_loop(int64_t iters) { /* 12 chains * PEAK_LANES lanes * 2 FLOP per iteration */
    /* twelve named accumulators, so that they live in registers whatever the optimiser does */
    PEAK_VEC a = PEAK_SET1(0.999f), b = PEAK_SET1(1e-3f);
    PEAK_VEC c0 = PEAK_SET1(0), c1 = PEAK_SET1(1), c2 = PEAK_SET1(2), c3 = PEAK_SET1(3), c4 = PEAK_SET1(4),
             c5 = PEAK_SET1(5), c6 = PEAK_SET1(6), c7 = PEAK_SET1(7), c8 = PEAK_SET1(8), c9 = PEAK_SET1(9),
             c10 = PEAK_SET1(10), c11 = PEAK_SET1(11);
    for (int64_t i = 0; i < iters; i++) {
        c0 = PEAK_FMA(c0, a, b), c1 = PEAK_FMA(c1, a, b), c2 = PEAK_FMA(c2, a, b), c3 = PEAK_FMA(c3, a, b);
        c4 = PEAK_FMA(c4, a, b), c5 = PEAK_FMA(c5, a, b), c6 = PEAK_FMA(c6, a, b), c7 = PEAK_FMA(c7, a, b);
        c8 = PEAK_FMA(c8, a, b), c9 = PEAK_FMA(c9, a, b), c10 = PEAK_FMA(c10, a, b), c11 = PEAK_FMA(c11, a, b);
    }
    c0 = PEAK_ADD(PEAK_ADD(PEAK_ADD(c0, c1), PEAK_ADD(c2, c3)), PEAK_ADD(PEAK_ADD(c4, c5), PEAK_ADD(c6, c7)));
    c0 = PEAK_ADD(c0, PEAK_ADD(PEAK_ADD(c8, c9), PEAK_ADD(c10, c11)));
    float out[PEAK_LANES];
    PEAK_STORE(out, c0);
    return out[0]; /* returned so that the loop is not optimised away */
}
static double peak_gflops(int *lanes) {
    const int64_t iters = 10000000;
    const double flop = (double)iters * 12.0 * PEAK_LANES * 2.0;
    double best = 0.0;
    *lanes = PEAK_LANES;
    for (int rep = 0; rep < 5; rep++) { /* the best of 5: the first ones also clock the cores up */
        double rate = 0.0;             /* sum over the threads of each one's own FLOP/s */
        GANTL__OMP(parallel reduction(+ : rate))
        {
            double t0 = now_s();
            float r = peak_fma_loop(iters); /* r * 0 keeps the loop: not folded without -ffast-math */
            rate += flop / (now_s() - t0) + (double)(r * 0.0f);
        }
        best = rate > best ? rate : best;
    }
    return best * 1e-9;
}
#else
static double peak_gflops(int *lanes) {
    *lanes = 1;
    return 0.0;
}
#endif

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

/* Training: img/s of iterations 1..n of a run (Gmain and Dmain; R1 runs every 16th). */
typedef struct train_arg {
    gantl_trainer t;
    float *reals;
} train_arg;
static void run_train_step(void *p) {
    train_arg *a = (train_arg *)p;
    gantl_trainer_step(&a->t, a->reals, NULL, NULL, NULL);
}

/* Training img/s. preset as `gantl train --cfg` sets it; base / zdim / map / batch > 0 and gamma >= 0 override
   it, and with override the run has no augmentation, path length or style mixing and mbstd group 4 (the
   training issue's benchmark configuration). */
static void bench_training(const char *name, const char *preset, int res, int channels, int override, int base,
                           int max, int zdim, int map, int batch, float gamma) {
    gantl_g_config g;
    gantl_d_config d;
    gantl_train_config c;
    train_arg a;
    if (gantl_train_preset(preset, res, channels, 0, &g, &d, &c) != GANTL_OK) return;
    if (override) {
        g.channel_base = d.channel_base = base, g.channel_max = d.channel_max = max;
        g.z_dim = g.w_dim = zdim;
        g.mapping.num_layers = map;
        c.augment = 0, c.batch_size = batch, c.r1_gamma = gamma, c.pl_weight = 0.0f, c.style_mixing_prob = 0.0f;
        d.mbstd_group_size = 4;
    }
    batch = c.batch_size;
    if (gantl_trainer_init(&a.t, &g, &d, &c, 0) != GANTL_OK) {
        printf("bench %s: %s\n", name, gantl_last_error());
        return;
    }
    a.reals = (float *)malloc((size_t)batch * channels * res * res * sizeof(float));
    gantl_rng rng = gantl_rng_new(1);
    gantl_rng_uniform(&rng, a.reals, (int64_t)batch * channels * res * res, -1, 1);
    gantl_trainer_step(&a.t, a.reals, NULL, NULL, NULL); /* iteration 0 (with R1) as warm-up */
    double t0 = now_s();
    int iters = 3;
    for (int i = 0; i < iters; i++) run_train_step(&a);
    double t = (now_s() - t0) / iters;
    printf("bench %s %.3f ms %.2f img/s\n", name, 1e3 * t, batch / t);
    free(a.reals);
    gantl_trainer_free(&a.t);
}

typedef struct gen_arg {
    gantl_generator G;
    gantl_ctx *ctx;
    gantl_tensor *z;
} gen_arg;
static void run_generate(void *p) {
    gen_arg *a = (gen_arg *)p;
    gantl_ctx_reset(a->ctx);
    gantl_set_grad_enabled(a->ctx, 0);
    gantl_generator_synthesis(a->ctx, &a->G, gantl_generator_mapping(a->ctx, &a->G, a->z, NULL, 1.0f, -1, 0),
                              GANTL_NOISE_CONST, NULL, NULL);
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

/* FID Inception-v3 features of 16 RGB 64x64 images (resized to 299), random weights */
typedef struct inception_arg {
    gantl_inception net;
    float *images, *features;
} inception_arg;
static void run_inception(void *p) {
    inception_arg *a = (inception_arg *)p;
    gantl_inception_features(&a->net, a->images, 16, 3, 64, 64, a->features);
}

static void bench_inception(gantl_rng *rng) {
    const char *path = "build/bench_inception.safetensors";
    gantl_inception layout;
    memset(&layout, 0, sizeof layout);
    gantl__inc_layers(&layout);
    gantl_st_writer w;
    gantl_st_writer_init(&w);
    int64_t most = 0;
    for (int i = 0; i < GANTL_INCEPTION_CONVS; i++) {
        const gantl_inception_conv *L = &layout.conv[i];
        int64_t n = (int64_t)L->out_channels * L->in_channels * L->kh * L->kw;
        most = n > most ? n : most;
    }
    float *buf = (float *)malloc((size_t)most * sizeof(float));
    for (int i = 0; i < GANTL_INCEPTION_CONVS; i++) { /* He-normal convolutions, identity BatchNorms */
        const gantl_inception_conv *L = &layout.conv[i];
        int64_t shape[4] = {L->out_channels, L->in_channels, L->kh, L->kw}, fan_in = shape[1] * shape[2] * shape[3];
        char name[64];
        gantl_rng_normal(rng, buf, shape[0] * fan_in, 0, sqrtf(2.0f / (float)fan_in));
        snprintf(name, sizeof name, "%s.conv.weight", L->name);
        gantl_st_writer_add(&w, name, GANTL_F32, 4, shape, buf);
        for (int k = 1; k < 5; k++) {
            static const char *const bn[5] = {"", "weight", "bias", "running_mean", "running_var"};
            for (int64_t o = 0; o < shape[0]; o++) buf[o] = k == 1 || k == 4 ? 1.0f : 0.0f;
            snprintf(name, sizeof name, "%s.bn.%s", L->name, bn[k]);
            gantl_st_writer_add(&w, name, GANTL_F32, 1, shape, buf);
        }
    }
    free(buf);
    inception_arg a;
    if (gantl_st_writer_save(&w, path) != GANTL_OK || gantl_inception_load(&a.net, path) != GANTL_OK) {
        printf("bench inception: %s\n", gantl_last_error());
        gantl_st_writer_free(&w);
        return;
    }
    gantl_st_writer_free(&w);
    remove(path);
    a.images = (float *)malloc((size_t)(16 * 3 * 64 * 64) * sizeof(float));
    a.features = (float *)malloc((size_t)(16 * 2048) * sizeof(float));
    gantl_rng_uniform(rng, a.images, 16 * 3 * 64 * 64, -1, 1);
    double t = bench_time(run_inception, &a, 2.0);
    printf("bench inception_fid_16x3x64x64 %.3f ms %.2f img/s\n", 1e3 * t, 16 / t);
    free(a.images);
    free(a.features);
    gantl_inception_free(&a.net);
}

int main(void) {
    printf("gantl bench: %d thread(s)\n", gantl_num_threads());
    int lanes = 1;
    double peak = peak_gflops(&lanes);
    if (peak > 0)
        printf("peak %.1f GFLOP/s fp32, measured: %d thread(s) of independent %d-lane FMA chains\n", peak,
               gantl_num_threads(), lanes);
    else
        printf("peak: not measured (build without AVX2+FMA or AVX-512)\n");
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
        double gflops = 2.0 * (double)(g.m * g.n * g.k) / t * 1e-9;
        printf("bench sgemm_%lldx%lldx%lld %.3f ms %.1f GFLOP/s", (long long)g.m, (long long)g.n, (long long)g.k,
               1e3 * t, gflops);
        if (peak > 0) printf(" (%.0f%% of peak)", 100.0 * gflops / peak);
        printf("\n");
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
    printf("bench conv3x3_fwd_32x128x16x16 %.3f ms %.1f GFLOP/s", 1e3 * t, flops / t * 1e-9);
    if (peak > 0) /* counted as the direct method's FLOPs: Winograd does fewer */
        printf(" (%.0f%% of peak; direct-method FLOPs)", 100.0 * flops / t * 1e-9 / peak);
    printf("\n");
    c.backward = 1;
    t = bench_time(run_conv, &c, 1.0);
    printf("bench conv3x3_fwdbwd_32x128x16x16 %.3f ms %.1f GFLOP/s", 1e3 * t, 3 * flops / t * 1e-9);
    if (peak > 0) printf(" (%.0f%% of peak; direct-method FLOPs)", 100.0 * 3 * flops / t * 1e-9 / peak);
    printf("\n");
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
    /* training: the configuration (no augmentation), then the small preset as `gantl train`
       runs it on 32x32 grey images (ADA on, p = 0 at the start) */
    bench_training("train_res32_cb4096_b32", "small", 32, 1, 1, 4096, 128, 128, 2, 32, 0.01f);
    bench_training("train_small_preset_ada_res32", "small", 32, 1, 0, 0, 0, 0, 0, 0, 0.0f);
    /* generation: G of that configuration, batch 32 */
    gen_arg ga;
    gantl_g_config g;
    gantl_g_config_default(&g);
    g.img_resolution = 32, g.img_channels = 1, g.channel_base = 4096, g.channel_max = 128, g.z_dim = g.w_dim = 128;
    g.mapping.num_layers = 2, g.conv_clamp = 256;
    if (gantl_generator_init(&ga.G, &g, 0) == GANTL_OK) {
        ga.ctx = gantl_ctx_new(0);
        gantl_ctx *zc = gantl_ctx_new(0);
        ga.z = gantl_randn(zc, &rng, 2, (int64_t[]){32, 128});
        double tg = bench_time(run_generate, &ga, 1.0);
        printf("bench generate_res32_cb4096_b32 %.3f ms %.1f img/s\n", 1e3 * tg, 32 / tg);
        gantl_ctx_free(ga.ctx);
        gantl_ctx_free(zc);
        gantl_generator_free(&ga.G);
    }
    bench_metrics();
    bench_inception(&rng);
    return 0;
}
