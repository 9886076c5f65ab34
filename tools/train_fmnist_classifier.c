/* Trains the Fashion-MNIST classifier that gantl ships as models/fmnist_cnn.safetensors (its
   features serve FID / KID / precision / recall on 32x32 grey images, its predictions count
   covered modes). Deterministic for a given thread count: seed 0, Adam, 6 epochs of the 60k
   training images (with x-flips), evaluated on the 10k test images.

   make classifier     (builds this and writes models/fmnist_cnn.safetensors) */
#define _POSIX_C_SOURCE 200809L
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#endif
#define STB_IMAGE_IMPLEMENTATION
#include <stb/stb_image.h>
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif
#define GANTL_IMPLEMENTATION
#include "../gantl.h"

#include <stdio.h>
#include <time.h>

enum { BATCH = 128, EPOCHS = 6 };

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static double accuracy(gantl_classifier *c, const gantl_dataset *test) {
    float *x = (float *)malloc((size_t)test->count * 1024 * sizeof(float));
    int32_t *pred = (int32_t *)malloc((size_t)test->count * sizeof(int32_t));
    int64_t *idx = (int64_t *)malloc((size_t)test->count * sizeof(int64_t)), correct = 0;
    for (int64_t i = 0; i < test->count; i++) idx[i] = i;
    gantl_dataset_batch(test, idx, NULL, test->count, x, NULL);
    if (gantl_classifier_run(c, x, test->count, 32, 32, NULL, pred) != GANTL_OK) return -1;
    for (int64_t i = 0; i < test->count; i++) correct += pred[i] == test->labels[i];
    free(x), free(pred), free(idx);
    return (double)correct / (double)test->count;
}

int main(int argc, char **argv) {
    const char *out = argc > 1 ? argv[1] : "models/fmnist_cnn.safetensors";
    gantl_dataset train, test;
    if (gantl_dataset_load(&train, "fashion-mnist@train", NULL) != GANTL_OK ||
        gantl_dataset_load(&test, "fashion-mnist@test", NULL) != GANTL_OK) {
        fprintf(stderr, "train_fmnist_classifier: %s\n", gantl_last_error());
        return 1;
    }
    gantl_classifier c;
    gantl_adam opt;
    gantl_sampler sampler;
    if (gantl_classifier_init(&c, 1, train.num_classes, 0) != GANTL_OK || gantl_adam_init(&opt, &c.params, 1e-3, 0.9, 0.999, 1e-8) != GANTL_OK ||
        gantl_sampler_init(&sampler, train.count, 1, 0) != GANTL_OK) {
        fprintf(stderr, "train_fmnist_classifier: %s\n", gantl_last_error());
        return 1;
    }
    printf("Fashion-MNIST: %lld training, %lld test images; %lld parameters, %d threads\n", (long long)train.count,
           (long long)test.count, (long long)c.params.numel, gantl_num_threads());
    gantl_ctx *ctx = gantl_ctx_new(0);
    float *x = (float *)malloc(BATCH * 1024 * sizeof(float));
    int64_t idx[BATCH];
    unsigned char flip[BATCH];
    int32_t labels[BATCH];
    int64_t steps = EPOCHS * (2 * train.count) / BATCH; /* mirrored: 2 x 60k per epoch */
    double t0 = now_s(), loss_sum = 0;
    for (int64_t step = 0; step < steps; step++) {
        if (step == steps * 2 / 3) opt.lr = 3e-4; /* a lower rate for the last third */
        gantl_sampler_next(&sampler, BATCH, idx, flip);
        gantl_dataset_batch(&train, idx, flip, BATCH, x, NULL);
        for (int i = 0; i < BATCH; i++) labels[i] = train.labels[idx[i]];
        gantl_ctx_reset(ctx);
        gantl_tensor *loss = gantl_cross_entropy(ctx, gantl_classifier_forward(ctx, &c, gantl_from_data(ctx, 4, (int64_t[]){BATCH, 1, 32, 32}, x), NULL), labels);
        if (!loss) {
            fprintf(stderr, "train_fmnist_classifier: %s\n", gantl_last_error());
            return 1;
        }
        loss_sum += loss->data[0];
        gantl_params_zero_grad(&c.params);
        gantl_backward(ctx, loss);
        gantl_adam_step(&opt, &c.params);
        if ((step + 1) % 100 == 0) {
            printf("step %lld/%lld  loss %.4f  %.0f img/s\n", (long long)step + 1, (long long)steps, loss_sum / 100,
                   (double)(step + 1) * BATCH / (now_s() - t0));
            fflush(stdout);
            loss_sum = 0;
        }
    }
    double acc = accuracy(&c, &test);
    printf("test accuracy %.4f (%.0f s)\n", acc, now_s() - t0);
    if (gantl_classifier_save(&c, out, acc) != GANTL_OK) {
        fprintf(stderr, "train_fmnist_classifier: %s\n", gantl_last_error());
        return 1;
    }
    printf("wrote %s\n", out);
    free(x);
    gantl_ctx_free(ctx);
    gantl_adam_free(&opt);
    gantl_sampler_free(&sampler);
    gantl_classifier_free(&c);
    gantl_dataset_free(&train);
    gantl_dataset_free(&test);
    return 0;
}
