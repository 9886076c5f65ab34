/* The functions under test that the CPU tests (test_core.c: finite-difference gradient
   checks) and the CUDA tests (test_cuda.c: the GPU against the CPU) both run, with their
   argument structs. Each maps inputs x[] to one tensor; most end in a square so that the
   second-order gradient is not trivial. */
#ifndef GANTL_TEST_OP_CASES_H
#define GANTL_TEST_OP_CASES_H

typedef struct conv_arg {
    int stride, pad, groups, out_pad, k; /* k: the kernel size, for f_wgrad */
} conv_arg;
typedef struct fir_arg {
    int up, down, pad[4], flip;
    float gain;
} fir_arg;
typedef struct bias_act_arg {
    gantl_act act;
    float alpha, gain, clamp;
} bias_act_arg;

static gantl_tensor *f_lrelu_grad(gantl_ctx *c, gantl_tensor **x, const void *a) {
    (void)a;
    return gantl_square(c, gantl__lrelu_grad(c, x[0], x[1], 0.2f));
}
static gantl_tensor *f_mean(gantl_ctx *c, gantl_tensor **x, const void *a) {
    (void)a;
    int axes[1] = {-1};
    return gantl_square(c, gantl_mean(c, x[0], 1, axes, 1));
}
static gantl_tensor *f_expand(gantl_ctx *c, gantl_tensor **x, const void *a) {
    (void)a;
    int64_t s[3] = {2, 3, 4};
    return gantl_square(c, gantl_expand(c, x[0], 3, s));
}
static gantl_tensor *f_sum_to(gantl_ctx *c, gantl_tensor **x, const void *a) {
    (void)a;
    int64_t s[2] = {3, 1};
    return gantl_square(c, gantl_sum_to(c, x[0], 2, s));
}
static gantl_tensor *f_reshape(gantl_ctx *c, gantl_tensor **x, const void *a) {
    (void)a;
    int64_t s[2] = {4, -1};
    return gantl_mul(c, gantl_reshape(c, x[0], 2, s), gantl_reshape(c, x[0], 2, s));
}
static gantl_tensor *f_permute(gantl_ctx *c, gantl_tensor **x, const void *a) {
    (void)a;
    int perm[4] = {2, 0, 3, 1};
    return gantl_square(c, gantl_permute(c, x[0], perm));
}
static gantl_tensor *f_repeat_sum(gantl_ctx *c, gantl_tensor **x, const void *a) {
    (void)a;
    int32_t reps[4] = {2, 1, 3, 1};
    return gantl_square(c, gantl__repeat_sum(c, x[0], reps));
}
static gantl_tensor *f_matmul(gantl_ctx *c, gantl_tensor **x, const void *a) {
    const int *t = (const int *)a;
    return gantl_square(c, gantl_matmul(c, x[0], x[1], t[0], t[1]));
}
static gantl_tensor *f_linear(gantl_ctx *c, gantl_tensor **x, const void *a) {
    (void)a;
    return gantl_square(c, gantl_linear(c, x[0], x[1], x[2]));
}
static gantl_tensor *f_conv2d(gantl_ctx *c, gantl_tensor **x, const void *a) {
    const conv_arg *p = (const conv_arg *)a;
    return gantl_square(c, gantl_conv2d(c, x[0], x[1], p->stride, p->pad, p->groups));
}
static gantl_tensor *f_conv_t(gantl_ctx *c, gantl_tensor **x, const void *a) {
    const conv_arg *p = (const conv_arg *)a;
    return gantl_square(c, gantl_conv_transpose2d(c, x[0], x[1], p->stride, p->pad, p->out_pad, p->groups));
}
static gantl_tensor *f_wgrad(gantl_ctx *c, gantl_tensor **x, const void *a) {
    const conv_arg *p = (const conv_arg *)a;
    return gantl_square(c, gantl_conv2d_weight_grad(c, x[0], x[1], p->k, p->k, p->stride, p->pad, p->groups));
}
static gantl_tensor *f_upfirdn(gantl_ctx *c, gantl_tensor **x, const void *a) {
    const fir_arg *p = (const fir_arg *)a;
    return gantl_square(c, gantl_upfirdn2d(c, x[0], x[1], p->up, p->down, p->pad, p->flip, p->gain));
}
static gantl_tensor *f_bias_act_grad(gantl_ctx *c, gantl_tensor **x, const void *a) {
    gantl_tensor like;
    const bias_act_arg *p = (const bias_act_arg *)a;
    memset(&like, 0, sizeof like);
    like.ip[0] = p->act, like.fp[0] = p->alpha, like.fp[1] = p->gain, like.fp[2] = p->clamp;
    return gantl_square(c, gantl__bias_act_grad(c, x[0], x[1], &like));
}

#endif
