/* Train a small MLP with Adam to tell two interleaved spirals apart, the loss printed as
   it falls. The smallest complete gantl program: parameters, a per-step arena, a forward
   pass, backward into the flat gradient buffer, an optimizer step.

   build: cc -O2 -fopenmp examples/mlp.c -o mlp -lm   (or: make mlp-demo) */
#define GANTL_IMPLEMENTATION
#include "../gantl.h"

#include <math.h>
#include <stdio.h>

enum { N = 512, HIDDEN = 64, STEPS = 1500 };

/* Two spirals: class 0 at angle t, class 1 rotated by pi, with a little noise. */
static void make_spirals(float *x /* (N, 2) */, float *label /* (N, 1) */, gantl_rng *rng) {
    float noise[2 * N];
    gantl_rng_normal(rng, noise, 2 * N, 0.0f, 0.02f);
    for (int i = 0; i < N; i++) {
        float t = 0.25f + 3.0f * (float)(i / 2) / (N / 2) * 3.14159265f, cls = (float)(i % 2);
        float r = t / (3.0f * 3.14159265f);
        x[2 * i] = r * cosf(t + cls * 3.14159265f) + noise[2 * i];
        x[2 * i + 1] = r * sinf(t + cls * 3.14159265f) + noise[2 * i + 1];
        label[i] = cls;
    }
}

/* PyTorch's default Linear init: U(-1/sqrt(in), 1/sqrt(in)) for weight and bias. */
static gantl_tensor *linear_param(gantl_params *P, gantl_rng *rng, const char *name, int64_t out, int64_t in,
                                  gantl_tensor **bias) {
    char bname[64];
    int64_t wshape[2] = {out, in};
    gantl_tensor *w = gantl_params_add(P, name, 2, wshape);
    snprintf(bname, sizeof bname, "%s.bias", name);
    *bias = gantl_params_add(P, bname, 1, &out);
    if (!w || !*bias) return NULL;
    float bound = 1.0f / sqrtf((float)in);
    gantl_rng_uniform(rng, w->data, w->numel, -bound, bound);
    gantl_rng_uniform(rng, (*bias)->data, out, -bound, bound);
    return w;
}

int main(void) {
    gantl_rng rng = gantl_rng_new(2022);
    float x[2 * N], label[N];
    make_spirals(x, label, &rng);

    gantl_params P;
    gantl_params_init(&P, 1);
    gantl_tensor *b1, *b2, *b3;
    gantl_tensor *w1 = linear_param(&P, &rng, "fc1", HIDDEN, 2, &b1);
    gantl_tensor *w2 = linear_param(&P, &rng, "fc2", HIDDEN, HIDDEN, &b2);
    gantl_tensor *w3 = linear_param(&P, &rng, "fc3", 1, HIDDEN, &b3);
    gantl_adam opt;
    gantl_ctx *ctx = gantl_ctx_new(0);
    if (!w1 || !w2 || !w3 || !ctx || gantl_adam_init(&opt, &P, 0.01, 0.9, 0.999, 1e-8) != GANTL_OK) {
        fprintf(stderr, "mlp: %s\n", gantl_last_error());
        return 1;
    }
    printf("two spirals, %d points, MLP 2-%d-%d-1, %lld parameters, Adam lr 0.01\n", N, HIDDEN, HIDDEN,
           (long long)P.numel);
    int64_t xshape[2] = {N, 2}, yshape[2] = {N, 1};
    float first_loss = 0.0f, loss_value = 0.0f, accuracy = 0.0f;
    for (int step = 0; step <= STEPS; step++) {
        gantl_ctx_reset(ctx);
        gantl_tensor *xt = gantl_from_data(ctx, 2, xshape, x);      // (N, 2)
        gantl_tensor *yt = gantl_from_data(ctx, 2, yshape, label);  // (N, 1)
        gantl_tensor *h = gantl_leaky_relu(ctx, gantl_linear(ctx, xt, w1, b1), 0.2f);  // (N, HIDDEN)
        h = gantl_leaky_relu(ctx, gantl_linear(ctx, h, w2, b2), 0.2f);                 // (N, HIDDEN)
        gantl_tensor *logit = gantl_linear(ctx, h, w3, b3);                             // (N, 1)
        /* logistic loss: softplus(logit) - y * logit, the mean over the batch */
        gantl_tensor *loss = gantl_mean_all(ctx, gantl_sub(ctx, gantl_softplus(ctx, logit), gantl_mul(ctx, yt, logit)));
        if (!loss) {
            fprintf(stderr, "mlp: %s\n", gantl_last_error());
            return 1;
        }
        loss_value = loss->data[0];
        if (step == 0) first_loss = loss_value;
        int correct = 0;
        for (int i = 0; i < N; i++) correct += (logit->data[i] > 0.0f) == (label[i] > 0.5f);
        accuracy = (float)correct / N;
        if (step % 250 == 0) printf("step %4d  loss %.4f  accuracy %.3f\n", step, loss_value, accuracy);
        gantl_params_zero_grad(&P);
        gantl_backward(ctx, loss);
        gantl_adam_step(&opt, &P);
    }
    printf("loss %.4f -> %.4f, accuracy %.3f\n", first_loss, loss_value, accuracy);
    gantl_ctx_free(ctx);
    gantl_adam_free(&opt);
    gantl_params_free(&P);
    return loss_value < first_loss ? 0 : 1;
}
