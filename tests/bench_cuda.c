/* The CUDA backend's benchmark (make bench-cuda; needs a GPU).

   1. Training throughput in images per second, with the official 'paper256' channel counts
      (channel_base 16384, channel_max 512, 8 mapping layers, conv_clamp 256) at resolution
      32 and 256: one iteration is Gmain (G forward, D forward, backward into G, Adam) and
      Dmain (G forward without gradients, D on fakes and reals, backward, Adam), plus the R1
      phase (Dreg: D's input gradient with create_graph, its squared norm, backward, Adam)
      every 16 iterations as the official lazy regularisation, counted as 1/16 of its time.
      No path length, style mixing, ADA or EMA: tools/bench_cuda_torch.py times the same
      phases with the PyTorch reference networks (tools/sg2_ref.py) on the same GPU. Then
      the full iteration of the trainer on the GPU (gantl_trainer_step, as gantl train
      --device cuda; no PyTorch counterpart).
   2. The fraction of the GPU's FP32 peak reached by gantl's GEMM (matmul) and convolution
      (conv2d: im2col + cuBLAS) on large shapes. The peak is SMs x FP32 lanes per SM x 2 x
      clock, unless given with --peak TFLOPS (the lanes per SM by architecture: 64 on sm_70
      and sm_80, 128 on sm_86 and later).

   Usage: build/bench-cuda [--res 32,256] [--batch32 B] [--batch256 B] [--iters N] [--peak T]
   Prints one line per measurement; exits 2 without a GPU. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cuda_runtime_api.h>

#define GANTL_IMPLEMENTATION
#include "../gantl.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int check(gantl_ctx *ctx, const char *what) {
    if (gantl_ctx_status(ctx) == GANTL_OK && gantl_device_synchronize(GANTL_CUDA) == GANTL_OK) return 1;
    fprintf(stderr, "bench-cuda: %s failed: %s\n", what, gantl_last_error());
    return 0;
}

typedef struct phase_times {
    double g, d, r1; /* seconds per call */
} phase_times;

/* Times Gmain, Dmain and Dreg at a resolution and batch, paper256's networks, on the GPU. */
static int bench_training(int res, int batch, int iters, phase_times *t) {
    gantl_g_config gc;
    gantl_d_config dc;
    gantl_train_config tc;
    if (gantl_train_preset("paper256", res, 3, 0, &gc, &dc, &tc) != GANTL_OK) return 0;
    dc.mbstd_group_size = batch < 8 ? batch : 8;
    gantl_generator G;
    gantl_discriminator D;
    if (gantl_generator_init(&G, &gc, 1) != GANTL_OK || gantl_discriminator_init(&D, &dc, 2) != GANTL_OK) return 0;
    if (gantl_params_to_device(&G.params, GANTL_CUDA) != GANTL_OK || gantl_params_to_device(&G.buffers, GANTL_CUDA) != GANTL_OK ||
        gantl_params_to_device(&D.params, GANTL_CUDA) != GANTL_OK || gantl_params_to_device(&D.buffers, GANTL_CUDA) != GANTL_OK) {
        fprintf(stderr, "bench-cuda: %s\n", gantl_last_error());
        return 0;
    }
    gantl_adam og, od;
    gantl_adam_init(&og, &G.params, 0.0025, 0.0, 0.99, 1e-8);
    gantl_adam_init(&od, &D.params, 0.0025, 0.0, 0.99, 1e-8);
    gantl_ctx *ctx = gantl_ctx_new_device(GANTL_CUDA, 0);
    gantl_rng rng = gantl_rng_new(3);
    int64_t zs[2] = {batch, gc.z_dim}, is[4] = {batch, 3, res, res};
    int ok = 1;
    memset(t, 0, sizeof *t);
    for (int it = -2; it < iters && ok; it++) { /* two warm-up iterations */
        double t0 = now();
        /* Gmain */
        gantl_ctx_reset(ctx);
        gantl_params_requires_grad(&G.params, 1);
        gantl_params_requires_grad(&D.params, 0);
        gantl_params_zero_grad(&G.params);
        gantl_tensor *z = gantl_randn(ctx, &rng, 2, zs);
        gantl_tensor *img = gantl_generator_synthesis(ctx, &G, gantl_generator_mapping(ctx, &G, z, NULL, 1, -1, 0),
                                                      GANTL_NOISE_RANDOM, &rng, NULL);
        gantl_backward(ctx, gantl_mean_all(ctx, gantl_softplus(ctx, gantl_neg(ctx, gantl_discriminator_forward(ctx, &D, img, NULL)))));
        gantl_adam_step(&og, &G.params);
        ok = check(ctx, "Gmain");
        double t1 = now();
        /* Dmain */
        gantl_ctx_reset(ctx);
        gantl_params_requires_grad(&G.params, 0);
        gantl_params_requires_grad(&D.params, 1);
        gantl_params_zero_grad(&D.params);
        z = gantl_randn(ctx, &rng, 2, zs);
        gantl_tensor *fake = gantl_generator_synthesis(ctx, &G, gantl_generator_mapping(ctx, &G, z, NULL, 1, -1, 0),
                                                       GANTL_NOISE_RANDOM, &rng, NULL);
        gantl_tensor *real = gantl_rand(ctx, &rng, 4, is);
        gantl_tensor *loss = gantl_add(ctx, gantl_mean_all(ctx, gantl_softplus(ctx, gantl_discriminator_forward(ctx, &D, fake, NULL))),
                                       gantl_mean_all(ctx, gantl_softplus(ctx, gantl_neg(ctx, gantl_discriminator_forward(ctx, &D, real, NULL)))));
        gantl_backward(ctx, loss);
        gantl_adam_step(&od, &D.params);
        ok = ok && check(ctx, "Dmain");
        double t2 = now();
        /* Dreg: R1 */
        gantl_ctx_reset(ctx);
        gantl_params_zero_grad(&D.params);
        real = gantl_requires_grad(gantl_rand(ctx, &rng, 4, is));
        gantl_tensor *sum = gantl_sum_all(ctx, gantl_discriminator_forward(ctx, &D, real, NULL)), *gr = NULL;
        if (sum) gantl_grad(ctx, 1, &sum, NULL, 1, &real, &gr, 1);
        gantl_backward(ctx, gantl_scale(ctx, gantl_sum_all(ctx, gantl_square(ctx, gr)), tc.r1_gamma * 0.5f / (float)batch));
        gantl_adam_step(&od, &D.params);
        ok = ok && check(ctx, "Dreg (R1)");
        double t3 = now();
        if (it >= 0) t->g += (t1 - t0) / iters, t->d += (t2 - t1) / iters, t->r1 += (t3 - t2) / iters;
    }
    printf("  res %d: arena peak %.1f MiB\n", res, (double)gantl_ctx_peak(ctx) / (1 << 20));
    gantl_ctx_free(ctx);
    gantl_adam_free(&og);
    gantl_adam_free(&od);
    gantl_generator_free(&G);
    gantl_discriminator_free(&D);
    return ok;
}

/* The whole training iteration as `gantl train --device cuda` runs it: gantl_trainer_step on
   the GPU (paper256's networks and training config at res, batch images per iteration in one
   round, lazy regularisation: path length every 4th iteration, R1 every 16th, style mixing,
   ADA at p 0.2, EMA), over a multiple of 16 iterations after one warm-up; img/s. The reals
   are random, copied in every iteration as the CLI's. */
static int bench_trainer(int res, int batch, int iters, double *img_per_s) {
    gantl_g_config gc;
    gantl_d_config dc;
    gantl_train_config tc;
    if (gantl_train_preset("paper256", res, 3, 0, &gc, &dc, &tc) != GANTL_OK) return 0;
    tc.batch_size = tc.batch_gpu = batch;
    tc.augment = 1, tc.augment_p = 0.2f;
    dc.mbstd_group_size = batch < 4 ? batch : 4;
    gantl_trainer t;
    if (gantl_trainer_init(&t, &gc, &dc, &tc, 1) != GANTL_OK) return 0;
    int ok = gantl_trainer_to_device(&t, GANTL_CUDA) == GANTL_OK;
    float *reals = (float *)malloc((size_t)batch * 3 * res * res * sizeof(float));
    gantl_rng rng = gantl_rng_new(9);
    int n = (iters + 15) / 16 * 16;
    double t0 = 0;
    for (int it = -1; it < n && ok && reals; it++) {
        if (it == 0) t0 = now();
        gantl_rng_uniform(&rng, reals, (int64_t)batch * 3 * res * res, -1, 1);
        ok = gantl_trainer_step(&t, reals, NULL, NULL, NULL) == GANTL_OK;
    }
    ok = ok && reals && gantl_device_synchronize(GANTL_CUDA) == GANTL_OK;
    if (ok) *img_per_s = (double)n * batch / (now() - t0);
    else fprintf(stderr, "bench-cuda: trainer at res %d: %s\n", res, gantl_last_error());
    free(reals);
    gantl_trainer_free(&t);
    return ok;
}

/* FP32 lanes per SM by compute capability (the CUDA programming guide's table). */
static int fp32_lanes(int major, int minor) {
    if (major == 8 && minor == 0) return 64;
    if (major >= 8) return 128;
    return 64;
}

int main(int argc, char **argv) {
    const char *res_list = "32,256";
    int batch32 = 32, batch256 = 8, iters = 10;
    double peak = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--res")) res_list = argv[i + 1];
        else if (!strcmp(argv[i], "--batch32")) batch32 = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--batch256")) batch256 = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--iters")) iters = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--peak")) peak = atof(argv[i + 1]);
        else {
            fprintf(stderr, "bench-cuda: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if (gantl_cuda_init(0) != GANTL_OK) {
        fprintf(stderr, "bench-cuda: no usable CUDA GPU, nothing was measured: %s\n", gantl_last_error());
        return 2;
    }
    printf("device: %s\n", gantl_get_backend(GANTL_CUDA)->name);
    if (peak <= 0) {
        int dev = 0, sms = 0, khz = 0, major = 0, minor = 0;
        cudaGetDevice(&dev);
        cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev);
        cudaDeviceGetAttribute(&khz, cudaDevAttrClockRate, dev);
        cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev);
        cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, dev);
        peak = (double)sms * fp32_lanes(major, minor) * 2.0 * (double)khz * 1e3 / 1e12;
        printf("FP32 peak: %.1f TFLOPS (%d SMs x %d lanes x 2 x %.0f MHz; --peak to override)\n", peak, sms,
               fp32_lanes(major, minor), khz / 1e3);
    }

    /* 2. GEMM and convolution throughput */
    gantl_ctx *ctx = gantl_ctx_new_device(GANTL_CUDA, 0);
    gantl_set_grad_enabled(ctx, 0);
    gantl_rng rng = gantl_rng_new(1);
    struct {
        const char *name;
        int64_t a[4], b[4];
        int conv;
    } cases[] = {
        {"matmul 4096 x 4096 x 4096", {4096, 4096}, {4096, 4096}, 0},
        {"conv2d 3x3, 512 -> 512, 32x32, batch 32", {32, 512, 32, 32}, {512, 512, 3, 3}, 1},
        {"conv2d 3x3, 128 -> 128, 128x128, batch 8", {8, 128, 128, 128}, {128, 128, 3, 3}, 1},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        gantl_ctx_reset(ctx);
        gantl_tensor *a = gantl_randn(ctx, &rng, cases[k].conv ? 4 : 2, cases[k].a);
        gantl_tensor *b = gantl_randn(ctx, &rng, cases[k].conv ? 4 : 2, cases[k].b);
        double flops = cases[k].conv ? 2.0 * (double)cases[k].a[0] * cases[k].b[0] * cases[k].a[2] * cases[k].a[3] *
                                           cases[k].b[1] * cases[k].b[2] * cases[k].b[3]
                                     : 2.0 * 4096.0 * 4096.0 * 4096.0;
        double best = 1e30;
        for (int rep = 0; rep < 5; rep++) {
            gantl_device_synchronize(GANTL_CUDA);
            double t0 = now();
            gantl_tensor *y = cases[k].conv ? gantl_conv2d(ctx, a, b, 1, 1, 1) : gantl_matmul(ctx, a, b, 0, 0);
            if (!y || !check(ctx, cases[k].name)) return 1;
            double dt = now() - t0;
            best = dt < best ? dt : best;
        }
        printf("%-44s %8.3f ms  %6.2f TFLOPS  %5.1f%% of peak\n", cases[k].name, best * 1e3, flops / best / 1e12,
               100.0 * flops / best / 1e12 / peak);
    }
    gantl_ctx_free(ctx);

    /* 1. training throughput */
    int rc = 0;
    for (const char *p = res_list; *p;) {
        int res = atoi(p), batch = res <= 64 ? batch32 : batch256;
        phase_times t;
        if (res >= 4 && bench_training(res, batch, iters, &t)) {
            double per_iter = t.g + t.d + t.r1 / 16.0;
            printf("train paper256 res %d batch %d: Gmain %.1f ms, Dmain %.1f ms, Dreg %.1f ms -> %.1f img/s\n", res,
                   batch, t.g * 1e3, t.d * 1e3, t.r1 * 1e3, batch / per_iter);
        } else
            rc = 1;
        double ips = 0;
        if (res >= 4 && bench_trainer(res, batch, iters, &ips))
            printf("trainer paper256 res %d batch %d (gantl_trainer_step: + path length, style mixing, ADA, EMA): "
                   "%.1f img/s\n", res, batch, ips);
        else
            rc = 1;
        while (*p && *p != ',') p++;
        if (*p == ',') p++;
    }
    return rc;
}
