/* The CUDA backend against the CPU backend (make test-cuda; needs a GPU).

   Every op of the table runs on both devices from the same random inputs; its output, the
   first-order gradients and the second-order gradients (through gantl_grad with
   create_graph, as R1 and path length use them) must agree within the case's tolerance:
   |gpu - cpu| <= atol + rtol * |cpu| element by element, with atol and rtol the case's for
   the output, 4x them for first-order and 16x for second-order gradients (the gradients are
   longer chains of float sums in different orders: cuBLAS against gantl's SGEMM, atomics in
   grid_sample_adj). Then G and D forward and backward (with R1), one Adam step, the
   parameter-set kernels, one full gantl_trainer_step on each device (path length, R1,
   style mixing, ADA, Adam, EMA), the NCCL transport with one rank (when built with
   NCCL=1), and FID / KID of classifier features extracted on each device.

   Built by `make cuda` with nvcc from this file (C, with the implementation) and
   gantl_cuda.cu; prints one line per test and "N passed, N failed". Without a usable GPU
   it says so and exits with status 2: nothing is reported as passed. */
#include <stdlib.h>

#define GANTL_IMPLEMENTATION
#include "../gantl.h"
#include "test.h"

/* ---------------------------------------------------------------------------------------
   Comparing one function of tensors on both devices
   ------------------------------------------------------------------------------------- */

typedef gantl_tensor *(*cc_fn)(gantl_ctx *ctx, gantl_tensor **x, const void *arg);

typedef struct cc_input {
    int ndim;
    int64_t shape[4];
    float lo, hi; /* uniform values */
    int diff;     /* differentiate with respect to it */
} cc_input;

typedef struct cc_case {
    const char *label;
    cc_fn f;
    const void *arg;
    int n;
    cc_input in[4];
    double atol, rtol; /* for the output; 0: 1e-5 */
} cc_case;

static gantl_ctx *cc_cpu, *cc_gpu;

/* What one device computed, copied to the host. */
typedef struct cc_result {
    float *y, *g[4], *gg[4];
    int64_t ny, n[4];
    int nd;
} cc_result;

static float *cc_fetch(const gantl_tensor *t) {
    float *d = (float *)malloc((size_t)(t && t->numel ? t->numel : 1) * sizeof(float));
    if (!t) return d;
    gantl_device_synchronize((gantl_device)t->device);
    memcpy(d, t->data, (size_t)t->numel * sizeof(float)); /* managed memory: host-readable */
    return d;
}

static void cc_result_free(cc_result *r) {
    free(r->y);
    for (int i = 0; i < r->nd; i++) free(r->g[i]), free(r->gg[i]);
    memset(r, 0, sizeof *r);
}

/* Output, gradient of L1 = <y, r1> and gradient of L2 = sum_i <g_i, r2_i>, on ctx's device.
   r1 NULL: only the output. Returns 0 if an op failed (the context's status). */
static int cc_eval(const cc_case *c, gantl_ctx *ctx, float *const *in, const float *r1, float *const *r2,
                   cc_result *res) {
    gantl_ctx_reset(ctx);
    memset(res, 0, sizeof *res);
    gantl_tensor *x[4], *diff[4];
    int nd = 0;
    for (int i = 0; i < c->n; i++) {
        x[i] = gantl_from_data(ctx, c->in[i].ndim, c->in[i].shape, in[i]);
        if (x[i] && c->in[i].diff) diff[nd++] = gantl_requires_grad(x[i]);
    }
    gantl_tensor *y = c->f(ctx, x, c->arg);
    if (!y) return 0;
    res->y = cc_fetch(y);
    res->ny = y->numel;
    if (!r1) return 1;
    gantl_tensor *L1 = gantl_sum_all(ctx, gantl_mul(ctx, y, gantl_from_data(ctx, y->ndim, y->shape, r1)));
    gantl_tensor *g[4], *gg[4];
    gantl_grad(ctx, 1, &L1, NULL, nd, diff, g, 1);
    gantl_tensor *L2 = NULL;
    for (int i = 0; i < nd; i++) {
        if (!g[i]) return 0;
        gantl_tensor *term = gantl_sum_all(ctx, gantl_mul(ctx, g[i], gantl_from_data(ctx, g[i]->ndim, g[i]->shape, r2[i])));
        L2 = L2 ? gantl_add(ctx, L2, term) : term;
    }
    if (L2 && (L2->flags & GANTL_FLAG_REQUIRES_GRAD))
        gantl_grad(ctx, 1, &L2, NULL, nd, diff, gg, 0);
    else /* linear in x: the second-order gradient is zero */
        for (int i = 0; i < nd; i++) gg[i] = gantl_full_like(ctx, diff[i], 0.0f);
    if (gantl_ctx_status(ctx) != GANTL_OK) return 0;
    res->nd = nd;
    for (int i = 0; i < nd; i++) {
        res->g[i] = cc_fetch(g[i]);
        res->gg[i] = cc_fetch(gg[i]);
        res->n[i] = g[i]->numel;
    }
    return 1;
}

/* Reports the worst element of one comparison. */
static void cc_compare(const char *label, const char *what, int i, const float *gpu, const float *cpu, int64_t n,
                       double atol, double rtol) {
    long long at = 0;
    double w = test__worst(gpu, cpu, n, atol, rtol, &at);
    CHECK_MSG(w <= 1.0, "%s: %s %d: element %lld is %.9g on the GPU, %.9g on the CPU (atol %.2g, rtol %.2g)", label,
              what, i, at, (double)gpu[at], (double)cpu[at], atol, rtol);
}

static void cc_run(const cc_case *c) {
    float *in[4], *r2[4];
    gantl_rng rng = gantl_rng_new(77);
    for (int i = 0; i < c->n; i++) {
        int64_t n = 1;
        for (int d = 0; d < c->in[i].ndim; d++) n *= c->in[i].shape[d];
        in[i] = (float *)malloc((size_t)(n ? n : 1) * sizeof(float));
        gantl_rng_uniform(&rng, in[i], n, c->in[i].lo, c->in[i].hi);
    }
    cc_result cpu, gpu;
    CHECK_MSG(cc_eval(c, cc_cpu, in, NULL, NULL, &cpu), "%s: CPU failed: %s", c->label, gantl_last_error());
    int64_t ny = cpu.ny;
    cc_result_free(&cpu);
    float *r1 = (float *)malloc((size_t)(ny ? ny : 1) * sizeof(float));
    gantl_rng_normal(&rng, r1, ny, 0.0f, 1.0f);
    int nd = 0;
    for (int i = 0; i < c->n; i++) {
        if (!c->in[i].diff) continue;
        int64_t n = 1;
        for (int d = 0; d < c->in[i].ndim; d++) n *= c->in[i].shape[d];
        r2[nd] = (float *)malloc((size_t)(n ? n : 1) * sizeof(float));
        gantl_rng_normal(&rng, r2[nd++], n, 0.0f, 1.0f);
    }
    int ok_cpu = cc_eval(c, cc_cpu, in, r1, r2, &cpu), ok_gpu = cc_eval(c, cc_gpu, in, r1, r2, &gpu);
    CHECK_MSG(ok_cpu, "%s: CPU failed: %s", c->label, gantl_last_error());
    CHECK_MSG(ok_gpu, "%s: GPU failed: %s", c->label, gantl_last_error());
    if (ok_cpu && ok_gpu) {
        double atol = c->atol ? c->atol : 1e-5, rtol = c->rtol ? c->rtol : 1e-5;
        CHECK_MSG(cpu.ny == gpu.ny && cpu.nd == gpu.nd, "%s: shapes differ", c->label);
        cc_compare(c->label, "output", 0, gpu.y, cpu.y, cpu.ny, atol, rtol);
        for (int i = 0; i < cpu.nd && i < gpu.nd; i++) {
            cc_compare(c->label, "gradient of input", i, gpu.g[i], cpu.g[i], cpu.n[i], 4 * atol, 4 * rtol);
            cc_compare(c->label, "second-order gradient of input", i, gpu.gg[i], cpu.gg[i], cpu.n[i], 16 * atol,
                       16 * rtol);
        }
    }
    if (ok_cpu) cc_result_free(&cpu);
    if (ok_gpu) cc_result_free(&gpu);
    for (int i = 0; i < c->n; i++) free(in[i]);
    for (int i = 0; i < nd; i++) free(r2[i]);
    free(r1);
}

static cc_input cc_in(int ndim, int64_t s0, int64_t s1, int64_t s2, int64_t s3, float lo, float hi, int diff) {
    cc_input in;
    int64_t s[4] = {s0, s1, s2, s3};
    in.ndim = ndim;
    for (int d = 0; d < 4; d++) in.shape[d] = d < ndim ? s[d] : 1;
    in.lo = lo, in.hi = hi, in.diff = diff;
    return in;
}

static cc_case cc_make(const char *label, cc_fn f, const void *arg, double atol, double rtol) {
    cc_case c;
    memset(&c, 0, sizeof c);
    c.label = label, c.f = f, c.arg = arg, c.atol = atol, c.rtol = rtol;
    return c;
}

/* ---------------------------------------------------------------------------------------
   The functions under test (each op's forward, and through the gradients its backward)
   ------------------------------------------------------------------------------------- */
#include "op_cases.h" /* the ones test_core.c checks too */

static gantl_tensor *f_add(gantl_ctx *c, gantl_tensor **x, const void *a) { (void)a; return gantl_mul(c, gantl_add(c, x[0], x[1]), x[0]); }
static gantl_tensor *f_sub(gantl_ctx *c, gantl_tensor **x, const void *a) { (void)a; return gantl_mul(c, gantl_sub(c, x[0], x[1]), x[1]); }
static gantl_tensor *f_mul(gantl_ctx *c, gantl_tensor **x, const void *a) { (void)a; return gantl_mul(c, x[0], x[1]); }
static gantl_tensor *f_div(gantl_ctx *c, gantl_tensor **x, const void *a) { (void)a; return gantl_div(c, x[0], x[1]); }

typedef struct unary_arg {
    int op;
    float p;
} unary_arg;
static gantl_tensor *f_unary(gantl_ctx *c, gantl_tensor **x, const void *a) {
    const unary_arg *u = (const unary_arg *)a;
    gantl_tensor *v = x[0];
    switch (u->op) {
    case GANTL_OP_SCALE: return gantl_square(c, gantl_affine(c, v, -1.5f, 0.25f));
    case GANTL_OP_EXP: return gantl_exp(c, v);
    case GANTL_OP_LOG: return gantl_log(c, v);
    case GANTL_OP_SQRT: return gantl_sqrt(c, v);
    case GANTL_OP_RSQRT: return gantl_rsqrt(c, v);
    case GANTL_OP_SQUARE: return gantl_square(c, v);
    case GANTL_OP_POW: return gantl_pow(c, v, u->p);
    case GANTL_OP_ABS: return gantl_mul(c, gantl_abs(c, v), v);
    case GANTL_OP_SIGN: return gantl_mul(c, gantl_sign(c, v), gantl_square(c, v));
    case GANTL_OP_SOFTPLUS: return gantl_softplus(c, v);
    case GANTL_OP_SIGMOID: return gantl_sigmoid(c, v);
    default: return gantl_mul(c, gantl_leaky_relu(c, v, u->p), v); /* LRELU (relu: p = 0) */
    }
}

static gantl_tensor *f_sum(gantl_ctx *c, gantl_tensor **x, const void *a) {
    const int *axes = (const int *)a; /* count, then the axes */
    return gantl_square(c, gantl_sum(c, x[0], axes[0], axes + 1, axes[0] == 1));
}
static gantl_tensor *f_slice(gantl_ctx *c, gantl_tensor **x, const void *a) { (void)a; return gantl_square(c, gantl_slice(c, x[0], 1, 1, 3)); }
static gantl_tensor *f_pad(gantl_ctx *c, gantl_tensor **x, const void *a) { (void)a; return gantl_exp(c, gantl_pad(c, x[0], -1, 2, 1)); }
static gantl_tensor *f_concat(gantl_ctx *c, gantl_tensor **x, const void *a) { (void)a; return gantl_square(c, gantl_concat(c, x[0], x[1], 1)); }
static gantl_tensor *f_repeat(gantl_ctx *c, gantl_tensor **x, const void *a) {
    (void)a;
    int64_t r[3] = {2, 1, 3};
    return gantl_square(c, gantl_repeat(c, x[0], 3, r));
}

static gantl_tensor *f_bias_act(gantl_ctx *c, gantl_tensor **x, const void *a) {
    const bias_act_arg *p = (const bias_act_arg *)a;
    return gantl_mul(c, gantl_bias_act(c, x[0], x[1], p->act, p->alpha, p->gain, p->clamp), x[0]);
}
static gantl_tensor *f_grid_sample(gantl_ctx *c, gantl_tensor **x, const void *a) {
    (void)a;
    return gantl_square(c, gantl_grid_sample(c, x[0], x[1]));
}
static gantl_tensor *f_grid_sample_adj(gantl_ctx *c, gantl_tensor **x, const void *a) {
    (void)a;
    return gantl_square(c, gantl__grid_sample_adj(c, x[0], x[1], 6, 7));
}
static gantl_tensor *f_pad_reflect(gantl_ctx *c, gantl_tensor **x, const void *a) {
    return gantl_square(c, gantl_pad_reflect(c, x[0], (const int *)a));
}
static gantl_tensor *f_pad_reflect_adj(gantl_ctx *c, gantl_tensor **x, const void *a) {
    return gantl_square(c, gantl__pad_reflect_adj(c, x[0], (const int32_t *)a));
}
static gantl_tensor *f_batch_norm(gantl_ctx *c, gantl_tensor **x, const void *a) {
    (void)a;
    int64_t C = x[0]->shape[1];
    gantl_tensor *rm = gantl_zeros(c, 1, &C), *rv = gantl_full(c, 1, &C, 1.0f);
    return gantl_square(c, gantl_batch_norm(c, x[0], x[1], x[2], rm, rv, 1, 0.1f, 1e-5f));
}
static gantl_tensor *f_minibatch_std(gantl_ctx *c, gantl_tensor **x, const void *a) {
    (void)a;
    return gantl_square(c, gantl_minibatch_std(c, x[0], 2, 1));
}

/* ---------------------------------------------------------------------------------------
   The op tests
   ------------------------------------------------------------------------------------- */

static void test_cuda_elementwise(void) {
    cc_fn bin[4] = {f_add, f_sub, f_mul, f_div};
    const char *names[4] = {"add", "sub", "mul", "div"};
    for (int k = 0; k < 4; k++) {
        cc_case c = cc_make(names[k], bin[k], NULL, 1e-5, 1e-5);
        c.n = 2; /* broadcasting (2, 3, 4) with (3, 1) */
        c.in[0] = cc_in(3, 2, 3, 4, 1, -2, 2, 1);
        c.in[1] = cc_in(2, 3, 1, 1, 1, 0.5f, 2, 1);
        cc_run(&c);
        c.in[0] = cc_in(2, 37, 129, 1, 1, -2, 2, 1); /* same shapes, several blocks */
        c.in[1] = cc_in(2, 37, 129, 1, 1, 0.5f, 2, 1);
        cc_run(&c);
        c.in[0] = cc_in(0, 1, 1, 1, 1, 0.5f, 2, 1); /* a scalar with a matrix */
        c.in[1] = cc_in(4, 2, 3, 5, 7, 0.5f, 2, 1);
        cc_run(&c);
    }
    struct {
        const char *name;
        unary_arg arg;
        float lo, hi;
    } ops[] = {
        {"affine", {GANTL_OP_SCALE, 0}, -2, 2},     {"exp", {GANTL_OP_EXP, 0}, -3, 3},
        {"log", {GANTL_OP_LOG, 0}, 0.1f, 5},        {"sqrt", {GANTL_OP_SQRT, 0}, 0.1f, 5},
        {"rsqrt", {GANTL_OP_RSQRT, 0}, 0.1f, 5},    {"square", {GANTL_OP_SQUARE, 0}, -3, 3},
        {"pow 1.5", {GANTL_OP_POW, 1.5f}, 0.2f, 3}, {"pow -0.5", {GANTL_OP_POW, -0.5f}, 0.2f, 3},
        {"pow 3", {GANTL_OP_POW, 3.0f}, -2, 2},     {"abs", {GANTL_OP_ABS, 0}, -3, 3},
        {"sign", {GANTL_OP_SIGN, 0}, -3, 3},        {"softplus", {GANTL_OP_SOFTPLUS, 0}, -30, 30},
        {"sigmoid", {GANTL_OP_SIGMOID, 0}, -8, 8},  {"relu", {GANTL_OP_LRELU, 0}, -3, 3},
        {"lrelu", {GANTL_OP_LRELU, 0.2f}, -3, 3},
    };
    for (size_t k = 0; k < sizeof ops / sizeof ops[0]; k++) {
        /* exp, log, pow, softplus, sigmoid: CUDA's libm is within 1-2 ulp of glibc's */
        cc_case c = cc_make(ops[k].name, f_unary, &ops[k].arg, 1e-5, 2e-5);
        c.n = 1;
        c.in[0] = cc_in(3, 7, 11, 13, 1, ops[k].lo, ops[k].hi, 1);
        cc_run(&c);
    }
    cc_case c = cc_make("lrelu_grad", f_lrelu_grad, NULL, 1e-5, 1e-5);
    c.n = 2;
    c.in[0] = cc_in(2, 9, 10, 1, 1, -2, 2, 1);
    c.in[1] = cc_in(2, 9, 10, 1, 1, -2, 2, 0);
    cc_run(&c);
}

static void test_cuda_reductions_and_shapes(void) {
    static const int sum02[3] = {2, 0, 2}, sum0[2] = {1, 0}, sum_all[1] = {0}, sum23[3] = {2, 2, 3};
    cc_case c = cc_make("sum (0, 2)", f_sum, sum02, 1e-5, 1e-5);
    c.n = 1;
    c.in[0] = cc_in(3, 5, 6, 7, 1, -1, 1, 1);
    cc_run(&c);
    c = cc_make("sum over the batch (many outputs)", f_sum, sum0, 1e-5, 1e-5);
    c.n = 1;
    c.in[0] = cc_in(4, 8, 16, 32, 32, -1, 1, 1);
    cc_run(&c);
    c = cc_make("sum_all (long reduction)", f_sum, sum_all, 1e-4, 1e-5);
    c.n = 1;
    c.in[0] = cc_in(4, 4, 64, 33, 35, -1, 1, 1);
    cc_run(&c);
    c = cc_make("sum (2, 3) (per plane)", f_sum, sum23, 1e-5, 1e-5);
    c.n = 1;
    c.in[0] = cc_in(4, 3, 5, 40, 41, -1, 1, 1);
    cc_run(&c);
    struct {
        const char *name;
        cc_fn f;
        int ndim;
        int64_t s[4];
    } ops[] = {
        {"mean", f_mean, 3, {2, 3, 4, 1}},       {"expand", f_expand, 2, {3, 1, 1, 1}},
        {"sum_to", f_sum_to, 3, {2, 3, 4, 1}},   {"reshape", f_reshape, 3, {2, 2, 6, 1}},
        {"permute", f_permute, 4, {2, 3, 4, 5}}, {"slice", f_slice, 3, {2, 4, 3, 1}},
        {"pad", f_pad, 3, {2, 3, 2, 1}},         {"repeat", f_repeat, 2, {2, 3, 1, 1}},
        {"repeat_sum", f_repeat_sum, 4, {4, 3, 6, 2}},
    };
    for (size_t k = 0; k < sizeof ops / sizeof ops[0]; k++) {
        c = cc_make(ops[k].name, ops[k].f, NULL, 1e-5, 1e-5);
        c.n = 1;
        c.in[0] = cc_in(ops[k].ndim, ops[k].s[0], ops[k].s[1], ops[k].s[2], ops[k].s[3], -1, 1, 1);
        cc_run(&c);
    }
    c = cc_make("concat", f_concat, NULL, 1e-5, 1e-5);
    c.n = 2;
    c.in[0] = cc_in(3, 2, 2, 3, 1, -1, 1, 1);
    c.in[1] = cc_in(3, 2, 3, 3, 1, -1, 1, 1);
    cc_run(&c);
}

static void test_cuda_matmul(void) {
    static const int t[4][2] = {{0, 0}, {1, 0}, {0, 1}, {1, 1}};
    for (int k = 0; k < 4; k++) {
        cc_case c = cc_make("matmul 2-D", f_matmul, t[k], 1e-4, 1e-4);
        c.n = 2;
        c.in[0] = t[k][0] ? cc_in(2, 67, 33, 1, 1, -1, 1, 1) : cc_in(2, 33, 67, 1, 1, -1, 1, 1);
        c.in[1] = t[k][1] ? cc_in(2, 45, 67, 1, 1, -1, 1, 1) : cc_in(2, 67, 45, 1, 1, -1, 1, 1);
        cc_run(&c);
        c.label = "matmul batched";
        c.in[0] = t[k][0] ? cc_in(3, 3, 20, 9, 1, -1, 1, 1) : cc_in(3, 3, 9, 20, 1, -1, 1, 1);
        c.in[1] = t[k][1] ? cc_in(3, 3, 11, 20, 1, -1, 1, 1) : cc_in(3, 3, 20, 11, 1, -1, 1, 1);
        cc_run(&c);
        c.label = "matmul batched with a shared right side";
        c.in[1] = t[k][1] ? cc_in(2, 11, 20, 1, 1, -1, 1, 1) : cc_in(2, 20, 11, 1, 1, -1, 1, 1);
        cc_run(&c);
        c.label = "matmul batched with a shared left side";
        c.in[0] = t[k][0] ? cc_in(2, 20, 9, 1, 1, -1, 1, 1) : cc_in(2, 9, 20, 1, 1, -1, 1, 1);
        c.in[1] = t[k][1] ? cc_in(4, 2, 3, 11, 20, -1, 1, 1) : cc_in(4, 2, 3, 20, 11, -1, 1, 1);
        cc_run(&c);
    }
    cc_case c = cc_make("linear", f_linear, NULL, 1e-4, 1e-4);
    c.n = 3;
    c.in[0] = cc_in(2, 16, 300, 1, 1, -1, 1, 1);
    c.in[1] = cc_in(2, 70, 300, 1, 1, -0.1f, 0.1f, 1);
    c.in[2] = cc_in(1, 70, 1, 1, 1, -1, 1, 1);
    cc_run(&c);
}

static void test_cuda_convolutions(void) {
    static const conv_arg args[] = {
        {1, 1, 1, 0, 3}, {2, 1, 1, 0, 3}, {1, 0, 1, 0, 3}, {1, 1, 2, 0, 3}, {2, 0, 2, 0, 3}, {1, 0, 1, 0, 1},
    };
    for (size_t k = 0; k < sizeof args / sizeof args[0]; k++) {
        const conv_arg *a = &args[k];
        int64_t C = 4, O = 6, kk = a->k;
        cc_case c = cc_make("conv2d", f_conv2d, a, 1e-4, 1e-4);
        c.n = 2;
        c.in[0] = cc_in(4, 3, C, 9, 8, -1, 1, 1);
        c.in[1] = cc_in(4, O, C / a->groups, kk, kk, -0.5f, 0.5f, 1);
        cc_run(&c);
        /* conv_transpose2d: x has conv2d's output channels O; output_padding up to stride - 1 */
        for (int op = 0; op < a->stride; op++) {
            conv_arg b = *a;
            b.out_pad = op;
            c = cc_make("conv_transpose2d", f_conv_t, &b, 1e-4, 1e-4);
            c.n = 2;
            c.in[0] = cc_in(4, 3, O, 5, 4, -1, 1, 1);
            c.in[1] = cc_in(4, O, C / a->groups, kk, kk, -0.5f, 0.5f, 1);
            cc_run(&c);
        }
        /* the weight gradient of conv2d from x (N, C, 9, 8) and gy (N, O, Ho, Wo), for N = 3 and 1 */
        for (int64_t N = 3; N >= 1; N -= 2) {
            int64_t Ho = (9 + 2 * a->pad - kk) / a->stride + 1, Wo = (8 + 2 * a->pad - kk) / a->stride + 1;
            c = cc_make("conv2d_wgrad", f_wgrad, a, 1e-4, 1e-4);
            c.n = 2;
            c.in[0] = cc_in(4, N, C, 9, 8, -1, 1, 1);
            c.in[1] = cc_in(4, N, O, Ho, Wo, -1, 1, 1);
            cc_run(&c);
        }
    }
    /* a bigger one: several cuBLAS tiles */
    static const conv_arg big = {1, 1, 1, 0, 3};
    cc_case c = cc_make("conv2d 64 -> 96 channels, 16x16", f_conv2d, &big, 3e-4, 3e-4);
    c.n = 2;
    c.in[0] = cc_in(4, 4, 64, 16, 16, -1, 1, 1);
    c.in[1] = cc_in(4, 96, 64, 3, 3, -0.1f, 0.1f, 1);
    cc_run(&c);
}

static void test_cuda_stylegan_ops(void) {
    static const fir_arg firs[] = {
        {2, 1, {2, 1, 2, 1}, 0, 4.0f},  /* upsample2d: 4 taps, gain up^2 */
        {1, 2, {1, 1, 1, 1}, 0, 1.0f},  /* downsample2d */
        {1, 1, {1, 1, 1, 1}, 1, 1.0f},  /* a plain FIR, flipped */
        {2, 2, {-1, 0, 2, -1}, 0, 0.5f}, /* up and down, a crop */
        {3, 1, {1, 2, 1, 2}, 0, 1.0f},  /* up 3 */
    };
    for (size_t k = 0; k < sizeof firs / sizeof firs[0]; k++) {
        cc_case c = cc_make("upfirdn2d 2-D filter", f_upfirdn, &firs[k], 1e-5, 1e-5);
        c.n = 2;
        c.in[0] = cc_in(4, 2, 3, 7, 6, -1, 1, 1);
        c.in[1] = cc_in(2, 4, 3, 1, 1, 0, 0.5f, 0);
        cc_run(&c);
        c.label = "upfirdn2d 1-D filter (separable)";
        c.in[1] = cc_in(1, 4, 1, 1, 1, 0, 0.5f, 0);
        cc_run(&c);
    }
    static const bias_act_arg bas[] = {
        {GANTL_ACT_LINEAR, 0, 1, -1}, {GANTL_ACT_LRELU, 0.2f, 1.41421356f, -1}, {GANTL_ACT_LRELU, 0.2f, 1.41421356f, 0.8f},
        {GANTL_ACT_LRELU, 0.0f, 1.0f, 0.5f},
    };
    for (size_t k = 0; k < sizeof bas / sizeof bas[0]; k++) {
        cc_case c = cc_make("bias_act", f_bias_act, &bas[k], 1e-5, 1e-5);
        c.n = 2;
        c.in[0] = cc_in(4, 3, 5, 4, 6, -1.5f, 1.5f, 1);
        c.in[1] = cc_in(1, 5, 1, 1, 1, -0.5f, 0.5f, 1);
        cc_run(&c);
        c = cc_make("bias_act_grad", f_bias_act_grad, &bas[k], 1e-5, 1e-5);
        c.n = 2;
        c.in[0] = cc_in(2, 8, 9, 1, 1, -1, 1, 1);
        c.in[1] = cc_in(2, 8, 9, 1, 1, -1.5f, 1.5f, 0);
        cc_run(&c);
    }
    /* grid_sample: the grid reaches outside [-1, 1] (zeros there); atomics in its adjoint */
    cc_case c = cc_make("grid_sample", f_grid_sample, NULL, 1e-5, 1e-5);
    c.n = 2;
    c.in[0] = cc_in(4, 2, 3, 6, 7, -1, 1, 1);
    c.in[1] = cc_in(4, 2, 5, 9, 2, -1.2f, 1.2f, 0);
    cc_run(&c);
    c = cc_make("grid_sample_adj", f_grid_sample_adj, NULL, 1e-5, 1e-5);
    c.n = 2;
    c.in[0] = cc_in(4, 2, 3, 5, 9, -1, 1, 1);
    c.in[1] = cc_in(4, 2, 5, 9, 2, -1.2f, 1.2f, 0);
    cc_run(&c);
    static const int pads[2][4] = {{2, 1, 3, 0}, {4, 4, 5, 5}};
    for (int k = 0; k < 2; k++) {
        c = cc_make("pad_reflect", f_pad_reflect, pads[k], 1e-5, 1e-5);
        c.n = 1;
        c.in[0] = cc_in(4, 2, 3, 6, 5, -1, 1, 1);
        cc_run(&c);
        c = cc_make("pad_reflect_adj", f_pad_reflect_adj, pads[k], 1e-5, 1e-5);
        c.n = 1;
        c.in[0] = cc_in(4, 2, 3, 6 + pads[k][2] + pads[k][3], 5 + pads[k][0] + pads[k][1], -1, 1, 1);
        cc_run(&c);
    }
    c = cc_make("batch_norm (training)", f_batch_norm, NULL, 1e-4, 1e-4);
    c.n = 3;
    c.in[0] = cc_in(4, 4, 3, 5, 5, -1, 2, 1);
    c.in[1] = cc_in(1, 3, 1, 1, 1, 0.5f, 1.5f, 1);
    c.in[2] = cc_in(1, 3, 1, 1, 1, -0.5f, 0.5f, 1);
    cc_run(&c);
    c = cc_make("minibatch_std", f_minibatch_std, NULL, 1e-4, 1e-4);
    c.n = 1;
    c.in[0] = cc_in(4, 4, 6, 4, 4, -1, 1, 1);
    cc_run(&c);
}

/* ---------------------------------------------------------------------------------------
   Devices, contexts and parameter sets
   ------------------------------------------------------------------------------------- */

static void test_cuda_copies_and_params(void) {
    gantl_ctx *ctx = gantl_ctx_new_device(GANTL_CUDA, 1 << 16); /* small chunks: several */
    CHECK(ctx && gantl_ctx_device(ctx) == GANTL_CUDA);
    if (!ctx) return;
    float host[1000];
    for (int i = 0; i < 1000; i++) host[i] = (float)i * 0.5f;
    for (int step = 0; step < 3; step++) { /* reset merges the chunks, and the data survives copies */
        gantl_ctx_reset(ctx);
        gantl_tensor *a = gantl_from_data(ctx, 1, (int64_t[]){1000}, host), *b = gantl_to_device(ctx, a, GANTL_CPU);
        gantl_tensor *z = gantl_zeros(ctx, 2, (int64_t[]){300, 300});
        CHECK(a && a->device == GANTL_CUDA && b && b->device == GANTL_CPU && z);
        CHECK(gantl_to_device(ctx, a, GANTL_CUDA) == a);
        if (!a || !b || !z) break;
        gantl_tensor *c = gantl_to_device(ctx, b, GANTL_CUDA);
        CHECK(c && c->device == GANTL_CUDA && c->data != a->data);
        gantl_device_synchronize(GANTL_CUDA);
        CHECK(memcmp(b->data, host, sizeof host) == 0 && c && memcmp(c->data, host, sizeof host) == 0);
        CHECK(z->data[0] == 0.0f && z->data[89999] == 0.0f);
    }
    CHECK(gantl_ctx_status(ctx) == GANTL_OK);
    gantl_ctx_free(ctx);

    /* a parameter set moved to the GPU and back, tensors added while there */
    gantl_params P;
    gantl_params_init(&P, 1);
    gantl_tensor *w = gantl_params_add(&P, "w", 2, (int64_t[]){3, 5});
    for (int i = 0; i < 15; i++) w->data[i] = (float)i;
    CHECK(gantl_params_to_device(&P, GANTL_CUDA) == GANTL_OK && P.device == GANTL_CUDA && w->device == GANTL_CUDA);
    gantl_tensor *b = gantl_params_add(&P, "b", 1, (int64_t[]){7});
    CHECK(b && b->device == GANTL_CUDA && w->data[14] == 14.0f && b->data[6] == 0.0f);
    gantl_params Q;
    CHECK(gantl_params_clone_layout(&Q, &P, 1) == GANTL_OK && Q.device == GANTL_CUDA);
    gantl_params_copy(&Q, &P);
    gantl_params_lerp(&Q, &P, 0.5f);
    gantl_device_synchronize(GANTL_CUDA);
    CHECK(Q.tensors[0]->data[7] == 7.0f);
    P.grad[0] = NAN, P.grad[1] = INFINITY, P.grad[2] = -3.0f;
    gantl_params_nan_to_num_grad(&P, 2.0f);
    CHECK(P.grad[0] == 0.0f && P.grad[1] == 2.0f && P.grad[2] == -2.0f);
    gantl_params_zero_grad(&P);
    CHECK(P.grad[1] == 0.0f && P.grad[15] == 0.0f);
    CHECK(gantl_params_to_device(&P, GANTL_CPU) == GANTL_OK && P.device == GANTL_CPU && w->data[3] == 3.0f);
    gantl_params_free(&P);
    gantl_params_free(&Q);

    /* Adam and SGD on both devices from the same gradients */
    for (int opt = 0; opt < 2; opt++) {
        gantl_params S[2];
        gantl_adam adam[2];
        gantl_sgd sgd[2];
        gantl_rng rng = gantl_rng_new(5);
        float vals[500], grads[500];
        gantl_rng_normal(&rng, vals, 500, 0, 1);
        for (int d = 0; d < 2; d++) {
            gantl_params_init(&S[d], 1);
            gantl_tensor *t = gantl_params_add(&S[d], "t", 1, (int64_t[]){500});
            memcpy(t->data, vals, sizeof vals);
            if (d) CHECK(gantl_params_to_device(&S[d], GANTL_CUDA) == GANTL_OK);
            if (opt == 0) CHECK(gantl_adam_init(&adam[d], &S[d], 0.01, 0.0, 0.99, 1e-8) == GANTL_OK);
            else CHECK(gantl_sgd_init(&sgd[d], &S[d], 0.01, 0.9) == GANTL_OK);
        }
        for (int step = 0; step < 3; step++) {
            gantl_rng_normal(&rng, grads, 500, 0, 1);
            for (int d = 0; d < 2; d++) {
                memcpy(S[d].grad, grads, sizeof grads);
                if (opt == 0) gantl_adam_step(&adam[d], &S[d]);
                else gantl_sgd_step(&sgd[d], &S[d]);
            }
        }
        gantl_device_synchronize(GANTL_CUDA);
        cc_compare(opt == 0 ? "adam" : "sgd", "parameters", 0, S[1].data, S[0].data, 500, 1e-6, 1e-5);
        for (int d = 0; d < 2; d++) {
            if (opt == 0) gantl_adam_free(&adam[d]);
            else gantl_sgd_free(&sgd[d]);
            gantl_params_free(&S[d]);
        }
    }
}

/* ---------------------------------------------------------------------------------------
   Networks: G and D forward and backward, R1, one Adam step
   ------------------------------------------------------------------------------------- */

static void net_configs(gantl_g_config *g, gantl_d_config *d) {
    gantl_g_config_default(g);
    gantl_d_config_default(d);
    g->z_dim = g->w_dim = 32, g->img_resolution = d->img_resolution = 16, g->img_channels = d->img_channels = 3;
    g->mapping.num_layers = 2;
    g->channel_base = d->channel_base = 256, g->channel_max = d->channel_max = 32;
    g->conv_clamp = d->conv_clamp = 256.0f;
    d->mbstd_group_size = 2;
}

/* One G step (non-saturating loss, backward, Adam) and one D step (loss on reals and fakes,
   R1 with gamma 1, backward, Adam) on a device; the images, logits and gradients copied out. */
typedef struct net_run {
    float *img, *logits, *g_grad, *d_grad, *g_after, *d_after;
    int64_t n_img, g_numel, d_numel;
} net_run;

static int net_step(gantl_device dev, net_run *out) {
    gantl_g_config gc;
    gantl_d_config dc;
    net_configs(&gc, &dc);
    gantl_generator G;
    gantl_discriminator D;
    memset(out, 0, sizeof *out);
    if (gantl_generator_init(&G, &gc, 11) != GANTL_OK || gantl_discriminator_init(&D, &dc, 12) != GANTL_OK) return 0;
    if (dev != GANTL_CPU &&
        (gantl_params_to_device(&G.params, dev) != GANTL_OK || gantl_params_to_device(&G.buffers, dev) != GANTL_OK ||
         gantl_params_to_device(&D.params, dev) != GANTL_OK || gantl_params_to_device(&D.buffers, dev) != GANTL_OK))
        return 0;
    gantl_adam og, od;
    gantl_adam_init(&og, &G.params, 1e-3, 0.0, 0.99, 1e-8);
    gantl_adam_init(&od, &D.params, 1e-3, 0.0, 0.99, 1e-8);
    gantl_ctx *ctx = gantl_ctx_new_device(dev, 0);
    gantl_rng rng = gantl_rng_new(3);
    int64_t N = 4;
    float zh[4 * 32]; /* the latents on the host: the context is reset between the two passes */
    gantl_rng_normal(&rng, zh, N * 32, 0.0f, 1.0f);
    gantl_tensor *z = gantl_from_data(ctx, 2, (int64_t[]){N, 32}, zh);
    /* G: softplus(-D(G(z))) */
    gantl_params_requires_grad(&D.params, 0);
    gantl_params_zero_grad(&G.params);
    gantl_tensor *img = gantl_generator_synthesis(ctx, &G, gantl_generator_mapping(ctx, &G, z, NULL, 1, -1, 0),
                                                  GANTL_NOISE_CONST, NULL, NULL);
    gantl_tensor *lf = gantl_discriminator_forward(ctx, &D, img, NULL);
    gantl_backward(ctx, gantl_mean_all(ctx, gantl_softplus(ctx, gantl_neg(ctx, lf))));
    int ok = gantl_ctx_status(ctx) == GANTL_OK && img && lf;
    if (ok) {
        out->img = cc_fetch(img), out->n_img = img->numel, out->logits = cc_fetch(lf);
        gantl_device_synchronize(dev);
        out->g_numel = G.params.numel;
        out->g_grad = (float *)malloc((size_t)G.params.numel * sizeof(float));
        memcpy(out->g_grad, G.params.grad, (size_t)G.params.numel * sizeof(float));
        gantl_adam_step(&og, &G.params);
    }
    /* D: softplus(D(fake)) + softplus(-D(real)) + R1 on the reals */
    gantl_ctx_reset(ctx);
    z = gantl_from_data(ctx, 2, (int64_t[]){N, 32}, zh);
    gantl_params_requires_grad(&D.params, 1);
    gantl_params_requires_grad(&G.params, 0);
    gantl_params_zero_grad(&D.params);
    gantl_set_grad_enabled(ctx, 0);
    gantl_tensor *fake = gantl_generator_synthesis(ctx, &G, gantl_generator_mapping(ctx, &G, z, NULL, 1, -1, 0),
                                                   GANTL_NOISE_CONST, NULL, NULL);
    gantl_set_grad_enabled(ctx, 1);
    /* reals in [-1, 1], a leaf that requires grad (for R1) */
    gantl_tensor *real = gantl_requires_grad(
        gantl_detach(ctx, gantl_affine(ctx, gantl_rand(ctx, &rng, 4, (int64_t[]){N, 3, 16, 16}), 2.0f, -1.0f)));
    gantl_tensor *lr = gantl_discriminator_forward(ctx, &D, real, NULL), *gr = NULL;
    gantl_tensor *lfd = gantl_discriminator_forward(ctx, &D, fake, NULL);
    gantl_tensor *sum_lr = gantl_sum_all(ctx, lr);
    if (sum_lr) gantl_grad(ctx, 1, &sum_lr, NULL, 1, &real, &gr, 1);
    gantl_tensor *loss = gantl_add(ctx, gantl_mean_all(ctx, gantl_softplus(ctx, lfd)),
                                   gantl_mean_all(ctx, gantl_softplus(ctx, gantl_neg(ctx, lr))));
    loss = gantl_add(ctx, loss, gantl_scale(ctx, gantl_sum_all(ctx, gantl_square(ctx, gr)), 0.5f / (float)N));
    gantl_backward(ctx, loss);
    ok = ok && gantl_ctx_status(ctx) == GANTL_OK && loss;
    if (ok) {
        gantl_device_synchronize(dev);
        out->d_numel = D.params.numel;
        out->d_grad = (float *)malloc((size_t)D.params.numel * sizeof(float));
        memcpy(out->d_grad, D.params.grad, (size_t)D.params.numel * sizeof(float));
        gantl_adam_step(&od, &D.params);
        gantl_device_synchronize(dev);
        out->g_after = (float *)malloc((size_t)G.params.numel * sizeof(float));
        out->d_after = (float *)malloc((size_t)D.params.numel * sizeof(float));
        memcpy(out->g_after, G.params.data, (size_t)G.params.numel * sizeof(float));
        memcpy(out->d_after, D.params.data, (size_t)D.params.numel * sizeof(float));
    } else
        fprintf(stderr, "    net_step on device %d: %s\n", (int)dev, gantl_last_error());
    gantl_ctx_free(ctx);
    gantl_adam_free(&og);
    gantl_adam_free(&od);
    gantl_generator_free(&G);
    gantl_discriminator_free(&D);
    return ok;
}

static void net_run_free(net_run *r) {
    free(r->img), free(r->logits), free(r->g_grad), free(r->d_grad), free(r->g_after), free(r->d_after);
}

/* Largest |x| of n values: gradients are compared relative to their scale. */
static double max_abs(const float *x, int64_t n) {
    double m = 0;
    for (int64_t i = 0; i < n; i++) m = fabs((double)x[i]) > m ? fabs((double)x[i]) : m;
    return m;
}

static void test_cuda_networks_train_step(void) {
    net_run cpu, gpu;
    int ok_cpu = net_step(GANTL_CPU, &cpu), ok_gpu = net_step(GANTL_CUDA, &gpu);
    CHECK(ok_cpu && ok_gpu);
    if (ok_cpu && ok_gpu) {
        cc_compare("G", "images", 0, gpu.img, cpu.img, cpu.n_img, 1e-4, 1e-3);
        cc_compare("D", "logits", 0, gpu.logits, cpu.logits, 4, 1e-4, 1e-3);
        /* gradients: within 1e-3 of each set's largest, or 1e-2 relative */
        cc_compare("G", "gradients", 0, gpu.g_grad, cpu.g_grad, cpu.g_numel, 1e-3 * max_abs(cpu.g_grad, cpu.g_numel), 1e-2);
        cc_compare("D (with R1)", "gradients", 0, gpu.d_grad, cpu.d_grad, cpu.d_numel,
                   1e-3 * max_abs(cpu.d_grad, cpu.d_numel), 1e-2);
        /* after one Adam step (lr 1e-3, beta1 0): the first step moves every parameter by
           about lr times the sign of its gradient, so a gradient near 0 whose sign the two
           devices round differently moves the other way: up to 2 lr apart */
        cc_compare("G", "parameters after Adam", 0, gpu.g_after, cpu.g_after, cpu.g_numel, 2.01e-3, 1e-5);
        cc_compare("D", "parameters after Adam", 0, gpu.d_after, cpu.d_after, cpu.d_numel, 2.01e-3, 1e-5);
    }
    if (ok_cpu) net_run_free(&cpu);
    if (ok_gpu) net_run_free(&gpu);
}

/* ---------------------------------------------------------------------------------------
   The trainer on the GPU: one full iteration of gantl_trainer_step (Gmain, Greg with path
   length and style mixing, Dmain, Dreg with R1, ADA augmentation at p 0.5, Adam, EMA)
   ------------------------------------------------------------------------------------- */

/* Of n values, how many differ by more than atol + rtol |cpu|. */
static int64_t count_apart(const float *gpu, const float *cpu, int64_t n, double atol, double rtol) {
    int64_t k = 0;
    for (int64_t i = 0; i < n; i++)
        if (!(fabs((double)gpu[i] - (double)cpu[i]) <= atol + rtol * fabs((double)cpu[i]))) k++;
    return k;
}

static void train_configs(gantl_g_config *g, gantl_d_config *d, gantl_train_config *tc) {
    net_configs(g, d);
    gantl_train_config_default(tc);
    tc->batch_size = 4, tc->batch_gpu = 4;
    tc->r1_gamma = 1.0f;     /* R1 (Dreg) and path length (Greg) both run at batch_idx 0 */
    tc->augment_p = 0.5f;    /* every ADA stage runs on about half the images */
    tc->ada_interval = 1;    /* p is updated from the step's sign statistics */
    tc->ada_kimg = 0.1f;
}

/* One trainer step on dev from the same seed and reals as on the CPU; the state copied out. */
typedef struct train_run {
    gantl_train_stats st;
    float *g, *d, *g_ema, *m_g, *v_d;
    int64_t ng, nd;
    double sign_sum;
    int64_t sign_count;
    float p, pl_mean, w_avg0;
} train_run;

static int train_step_on(gantl_device dev, train_run *r) {
    gantl_g_config gc;
    gantl_d_config dc;
    gantl_train_config tc;
    train_configs(&gc, &dc, &tc);
    memset(r, 0, sizeof *r);
    gantl_trainer t;
    if (gantl_trainer_init(&t, &gc, &dc, &tc, 5) != GANTL_OK) return 0;
    int ok = gantl_trainer_to_device(&t, dev) == GANTL_OK;
    ok = ok && t.device == (int32_t)dev && t.G.params.device == (int32_t)dev && t.D.buffers.device == (int32_t)dev &&
         t.G_ema.params.device == (int32_t)dev && t.opt_g.device == (int32_t)dev && gantl_ctx_device(t.ctx) == dev;
    float *reals = (float *)malloc(4 * 3 * 16 * 16 * sizeof(float));
    gantl_rng rng = gantl_rng_new(77);
    gantl_rng_uniform(&rng, reals, 4 * 3 * 16 * 16, -1, 1);
    ok = ok && gantl_trainer_step(&t, reals, NULL, NULL, &r->st) == GANTL_OK;
    if (ok) {
        gantl_device_synchronize(dev);
        r->ng = t.G.params.numel, r->nd = t.D.params.numel;
        r->g = (float *)malloc((size_t)r->ng * sizeof(float)), r->g_ema = (float *)malloc((size_t)r->ng * sizeof(float));
        r->m_g = (float *)malloc((size_t)r->ng * sizeof(float));
        r->d = (float *)malloc((size_t)r->nd * sizeof(float)), r->v_d = (float *)malloc((size_t)r->nd * sizeof(float));
        memcpy(r->g, t.G.params.data, (size_t)r->ng * sizeof(float)); /* managed memory: host-readable */
        memcpy(r->g_ema, t.G_ema.params.data, (size_t)r->ng * sizeof(float));
        memcpy(r->m_g, t.opt_g.m, (size_t)r->ng * sizeof(float));
        memcpy(r->d, t.D.params.data, (size_t)r->nd * sizeof(float));
        memcpy(r->v_d, t.opt_d.v, (size_t)r->nd * sizeof(float));
        r->sign_sum = t.augment.sign_sum, r->sign_count = t.augment.sign_count, r->p = t.augment.p;
        r->pl_mean = t.pl_mean, r->w_avg0 = t.G.mapping.w_avg ? t.G.mapping.w_avg->data[0] : 0.0f;
        /* and back: the state on the CPU equals what was on the device */
        ok = gantl_trainer_to_device(&t, GANTL_CPU) == GANTL_OK && t.device == GANTL_CPU &&
             t.G.params.device == GANTL_CPU && t.opt_d.device == GANTL_CPU &&
             memcmp(t.G.params.data, r->g, (size_t)r->ng * sizeof(float)) == 0 &&
             memcmp(t.opt_d.v, r->v_d, (size_t)r->nd * sizeof(float)) == 0;
        if (!ok) fprintf(stderr, "    trainer back to the CPU differs or failed: %s\n", gantl_last_error());
    } else
        fprintf(stderr, "    trainer step on device %d: %s\n", (int)dev, gantl_last_error());
    free(reals);
    gantl_trainer_free(&t);
    return ok;
}

static void train_run_free(train_run *r) { free(r->g), free(r->d), free(r->g_ema), free(r->m_g), free(r->v_d); }

static void test_cuda_trainer_step(void) {
    train_run cpu, gpu;
    int ok_cpu = train_step_on(GANTL_CPU, &cpu), ok_gpu = train_step_on(GANTL_CUDA, &gpu);
    CHECK(ok_cpu && ok_gpu);
    if (ok_cpu && ok_gpu) {
        /* every phase ran, on both */
        CHECK(gpu.st.loss_g == gpu.st.loss_g && gpu.st.loss_pl == gpu.st.loss_pl && gpu.st.loss_r1 == gpu.st.loss_r1);
        /* the measured values: float sums in other orders, through G, D, augmentation and R1 */
        CHECK_NEAR(gpu.st.loss_g, cpu.st.loss_g, 1e-3 * fabs(cpu.st.loss_g) + 1e-4);
        CHECK_NEAR(gpu.st.loss_d, cpu.st.loss_d, 1e-3 * fabs(cpu.st.loss_d) + 1e-4);
        CHECK_NEAR(gpu.st.loss_pl, cpu.st.loss_pl, 1e-2 * fabs(cpu.st.loss_pl) + 1e-5);
        CHECK_NEAR(gpu.st.loss_r1, cpu.st.loss_r1, 1e-2 * fabs(cpu.st.loss_r1) + 1e-5);
        CHECK_NEAR(gpu.st.score_real, cpu.st.score_real, 1e-3 * fabs(cpu.st.score_real) + 1e-4);
        CHECK_NEAR((double)gpu.pl_mean, (double)cpu.pl_mean, 1e-3 * fabs((double)cpu.pl_mean) + 1e-6);
        CHECK_NEAR((double)gpu.w_avg0, (double)cpu.w_avg0, 1e-4 * fabs((double)cpu.w_avg0) + 1e-6);
        /* ADA: the same number of logits; a logit within rounding of 0 may take the other
           sign (then sum differs by 1 or 2 per logit, and p may move the other way) */
        CHECK(gpu.sign_count == 0 && cpu.sign_count == 0); /* ada_interval 1: reset by the update */
        CHECK_NEAR(gpu.st.sign_real, cpu.st.sign_real, 2.0 / 8.0 + 1e-12);
        if (gpu.st.sign_real == cpu.st.sign_real) CHECK(gpu.p == cpu.p);
        /* Each network took two Adam steps (main, then regularisation phase; beta1 0): the
           first moves a parameter by about lr sign(g), the second by at most sqrt(1 + beta2)
           lr. Equal up to float rounding unless a gradient is near 0, where the sign may
           differ: then up to 2 (1 + sqrt(2)) lr < 5 lr apart, for at most 1% of them. */
        double lr_g = 0.0025 * 4 / 5, lr_d = 0.0025 * 16 / 17;
        cc_compare("trainer G", "parameters", 0, gpu.g, cpu.g, cpu.ng, 5.0 * lr_g, 1e-5);
        cc_compare("trainer D", "parameters", 0, gpu.d, cpu.d, cpu.nd, 5.0 * lr_d, 1e-5);
        cc_compare("trainer G_ema", "parameters", 0, gpu.g_ema, cpu.g_ema, cpu.ng, 5.0 * lr_g, 1e-5);
        int64_t ag = count_apart(gpu.g, cpu.g, cpu.ng, 1e-2 * lr_g, 1e-5), ad = count_apart(gpu.d, cpu.d, cpu.nd, 1e-2 * lr_d, 1e-5);
        CHECK_MSG(ag * 100 <= cpu.ng && ad * 100 <= cpu.nd,
                  "Adam steps of other direction: %lld of %lld G parameters, %lld of %lld D (at most 1%% allowed)",
                  (long long)ag, (long long)cpu.ng, (long long)ad, (long long)cpu.nd);
        /* the optimizer state after the regularisation phase's step: m = its gradient (beta1
           0), v = beta2 (1 - beta2) g1^2 + (1 - beta2) g2^2; compared relative to their scale
           as the gradients in the networks test */
        cc_compare("trainer Adam G", "m", 0, gpu.m_g, cpu.m_g, cpu.ng, 1e-3 * max_abs(cpu.m_g, cpu.ng), 1e-2);
        cc_compare("trainer Adam D", "v", 0, gpu.v_d, cpu.v_d, cpu.nd, 1e-3 * max_abs(cpu.v_d, cpu.nd), 2e-2);
    }
    if (ok_cpu) train_run_free(&cpu);
    if (ok_gpu) train_run_free(&gpu);
}

#ifdef GANTL_NCCL
/* The NCCL transport with one rank (built with make cuda NCCL=1): init through a one-rank
   bootstrap, the transport's own functions on device (managed) and host buffers (the
   gantl_comm_* wrappers skip one rank), then free. */
static void test_cuda_nccl_one_rank(void) {
    gantl_comm single = gantl_comm_single(), c;
    gantl_status s = gantl_comm_nccl_init(&c, &single, 60);
    CHECK_MSG(s == GANTL_OK, "gantl_comm_nccl_init: %s", gantl_last_error());
    if (s != GANTL_OK) return;
    CHECK(c.rank == 0 && c.size == 1 && c.state && c.allreduce_f32 && c.allreduce_f64 && c.broadcast);
    gantl_params P;
    gantl_params_init(&P, 1);
    gantl_tensor *w = gantl_params_add(&P, "w", 1, (int64_t[]){1000});
    for (int i = 0; i < 1000; i++) w->data[i] = (float)i * 0.5f - 7.0f;
    CHECK(gantl_params_to_device(&P, GANTL_CUDA) == GANTL_OK);
    CHECK(c.allreduce_f32(c.state, P.data, P.numel) == GANTL_OK); /* managed memory, in place */
    gantl_device_synchronize(GANTL_CUDA);
    int same = 1;
    for (int i = 0; i < 1000; i++) same = same && w->data[i] == (float)i * 0.5f - 7.0f;
    CHECK(same);
    double h[3] = {1.5, -2.25, 1e300};
    CHECK(c.allreduce_f64(c.state, h, 3) == GANTL_OK); /* host memory: staged */
    CHECK(h[0] == 1.5 && h[1] == -2.25 && h[2] == 1e300);
    char bytes[5] = "abcd";
    CHECK(c.broadcast(c.state, bytes, 5, 0) == GANTL_OK);
    CHECK(!strcmp(bytes, "abcd"));
    /* the trainer's collective of a parameter set, through the wrapper (one rank: a no-op) */
    CHECK(gantl_params_allreduce_grad(&c, &P) == GANTL_OK);
    gantl_params_free(&P);
    gantl_comm_nccl_free(&c);
    CHECK(c.size == 1 && c.state == NULL);
}
#endif

/* ---------------------------------------------------------------------------------------
   Metrics on features extracted on the GPU
   ------------------------------------------------------------------------------------- */

static int features_on(gantl_device dev, const float *images, int64_t n, float *features) {
    gantl_classifier cls;
    if (gantl_classifier_init(&cls, 1, 10, 21) != GANTL_OK) return 0;
    if (dev != GANTL_CPU && gantl_params_to_device(&cls.params, dev) != GANTL_OK) return 0;
    gantl_ctx *ctx = gantl_ctx_new_device(dev, 0);
    gantl_set_grad_enabled(ctx, 0);
    gantl_tensor *f = NULL;
    gantl_classifier_forward(ctx, &cls, gantl_from_data(ctx, 4, (int64_t[]){n, 1, 32, 32}, images), &f);
    int ok = f != NULL;
    if (ok) {
        gantl_device_synchronize(dev);
        memcpy(features, f->data, (size_t)(n * GANTL_CLASSIFIER_FEATURES) * sizeof(float));
    }
    gantl_ctx_free(ctx);
    gantl_classifier_free(&cls);
    return ok;
}

static void test_cuda_metrics_on_gpu_features(void) {
    enum { n = 96 };
    const int64_t d = GANTL_CLASSIFIER_FEATURES;
    float *a = (float *)malloc(n * 1024 * sizeof(float)), *b = (float *)malloc(n * 1024 * sizeof(float));
    float *fa[2], *fb[2];
    gantl_rng rng = gantl_rng_new(8);
    gantl_rng_uniform(&rng, a, n * 1024, -1, 1);
    gantl_rng_uniform(&rng, b, n * 1024, -1, 0.5f);
    int ok = 1;
    for (int dev = 0; dev < 2; dev++) {
        fa[dev] = (float *)malloc(n * d * sizeof(float));
        fb[dev] = (float *)malloc(n * d * sizeof(float));
        ok = ok && features_on((gantl_device)dev, a, n, fa[dev]) && features_on((gantl_device)dev, b, n, fb[dev]);
    }
    CHECK_MSG(ok, "feature extraction failed: %s", gantl_last_error());
    if (ok) {
        cc_compare("classifier", "features", 0, fa[1], fa[0], n * d, 1e-4, 1e-3);
        double fid[2] = {0, 0}, kid[2] = {0, 0}, kid_std;
        for (int dev = 0; dev < 2; dev++) {
            CHECK(gantl_fid(fa[dev], n, fb[dev], n, d, 1, &fid[dev]) == GANTL_OK);
            CHECK(gantl_kid(fa[dev], n, fb[dev], n, d, 10, 48, 1, &kid[dev], &kid_std) == GANTL_OK);
        }
        CHECK_NEAR(fid[1], fid[0], 1e-3 * fabs(fid[0]) + 1e-4);
        CHECK_NEAR(kid[1], kid[0], 1e-3 * fabs(kid[0]) + 1e-6);
    }
    for (int dev = 0; dev < 2; dev++) free(fa[dev]), free(fb[dev]);
    free(a);
    free(b);
}

/* Errors are statuses, not crashes: a context on a device without a backend. */
static void test_cuda_errors(void) {
    CHECK(gantl_get_backend(GANTL_CUDA) != NULL);
    CHECK(gantl_cuda_init(0) == GANTL_OK); /* again: the same GPU is fine */
    CHECK(gantl_cuda_init(1000) != GANTL_OK && strlen(gantl_last_error()) > 0);
    gantl_ctx *ctx = gantl_ctx_new_device(GANTL_CUDA, 0);
    gantl_ctx_set_limit(ctx, 1 << 20);
    gantl_tensor *t = gantl_zeros(ctx, 2, (int64_t[]){1024, 1024});
    CHECK(t == NULL && gantl_ctx_status(ctx) == GANTL_ERR_NOMEM);
    gantl_ctx_reset(ctx);
    CHECK(gantl_ctx_status(ctx) == GANTL_OK);
    gantl_ctx_free(ctx);
}

int main(int argc, char **argv) {
    if (argc > 1) test__filter = argv[1];
    if (gantl_cuda_init(0) != GANTL_OK) {
        fprintf(stderr, "test-cuda: no usable CUDA GPU, nothing was tested: %s\n", gantl_last_error());
        printf("test-cuda: no GPU, nothing tested\n0 passed, 1 failed\n");
        return 2;
    }
    printf("device: %s\n", gantl_get_backend(GANTL_CUDA)->name);
    cc_cpu = gantl_ctx_new(0);
    cc_gpu = gantl_ctx_new_device(GANTL_CUDA, 0);
    RUN(test_cuda_elementwise);
    RUN(test_cuda_reductions_and_shapes);
    RUN(test_cuda_matmul);
    RUN(test_cuda_convolutions);
    RUN(test_cuda_stylegan_ops);
    RUN(test_cuda_copies_and_params);
    RUN(test_cuda_networks_train_step);
    RUN(test_cuda_trainer_step);
#ifdef GANTL_NCCL
    RUN(test_cuda_nccl_one_rank);
#endif
    RUN(test_cuda_metrics_on_gpu_features);
    RUN(test_cuda_errors);
    gantl_ctx_free(cc_cpu);
    gantl_ctx_free(cc_gpu);
    printf("%d passed, %d failed\n", test__passed, test__failed);
    return test__failed ? 1 : 0;
}
