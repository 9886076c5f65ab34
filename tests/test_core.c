/* Core tests: finite-difference gradient checks (first and second order) for every op,
   autograd semantics, parameters, optimizers, arenas, random numbers.
   Included by tests/test_main.c after gantl.h (with the implementation) and tests/test.h. */

/* ---------------------------------------------------------------------------------------
   Gradient checking.
   L1(x) = sum(f(x) * R1) for a fixed random R1. First order: gantl_grad(L1) against
   central differences of L1, accumulated in double. Second order: L2(x) = sum_i <g_i, R2_i>
   with g = gantl_grad(L1, create_graph); gantl_grad(L2) against central differences of L2.
   Inputs are kept away from kinks by the test that builds them.
   ------------------------------------------------------------------------------------- */

typedef gantl_tensor *(*gc_fn)(gantl_ctx *ctx, gantl_tensor **x, const void *arg);

typedef struct gc_input {
    int ndim;
    int64_t shape[4];
    float *data;
    int diff; /* differentiate with respect to this input */
} gc_input;

#define GC_MAX_IN 4

typedef struct gc_case {
    const char *label;
    gc_fn f;
    const void *arg;
    int n;
    gc_input in[GC_MAX_IN];
    double eps, atol, rtol;
    int samples; /* elements checked per input (all if the input is smaller) */
} gc_case;

static gantl_ctx *gc_ctx;

/* Builds the inputs in ctx, evaluates L1 and, for order 2, L2. Returns L in double;
   grads (if not NULL) receives the analytic gradients of that L w.r.t. the diff inputs. */
static double gc_eval(const gc_case *c, int order, const float *r1, const float *const *r2, gantl_tensor **grads,
                      int64_t *out_numel) {
    gantl_ctx *ctx = gc_ctx;
    gantl_ctx_reset(ctx);
    gantl_tensor *x[GC_MAX_IN], *diff[GC_MAX_IN];
    int nd = 0;
    for (int i = 0; i < c->n; i++) {
        x[i] = gantl_from_data(ctx, c->in[i].ndim, c->in[i].shape, c->in[i].data);
        if (c->in[i].diff) diff[nd++] = gantl_requires_grad(x[i]);
    }
    gantl_tensor *y = c->f(ctx, x, c->arg);
    if (out_numel) *out_numel = y->numel;
    if (!r1) return 0.0;
    gantl_tensor *R1 = gantl_from_data(ctx, y->ndim, y->shape, r1);
    gantl_tensor *L1 = gantl_sum_all(ctx, gantl_mul(ctx, y, R1));
    double l1 = 0.0;
    for (int64_t i = 0; i < y->numel; i++) l1 += (double)y->data[i] * r1[i];
    if (order == 1) {
        if (grads) gantl_grad(ctx, 1, &L1, NULL, nd, diff, grads, 0);
        return l1;
    }
    gantl_tensor *g[GC_MAX_IN];
    gantl_grad(ctx, 1, &L1, NULL, nd, diff, g, 1);
    double l2 = 0.0;
    gantl_tensor *L2 = NULL;
    for (int i = 0; i < nd; i++) {
        for (int64_t j = 0; j < g[i]->numel; j++) l2 += (double)g[i]->data[j] * r2[i][j];
        if (grads) {
            gantl_tensor *R2 = gantl_from_data(ctx, g[i]->ndim, g[i]->shape, r2[i]);
            gantl_tensor *term = gantl_sum_all(ctx, gantl_mul(ctx, g[i], R2));
            L2 = L2 ? gantl_add(ctx, L2, term) : term;
        }
    }
    if (grads) {
        /* L2 may not depend on an input at all (linear ops): gantl_grad gives zeros then,
           but it needs L2 to require grad, which fails when nothing does. */
        if (L2 && (L2->flags & GANTL_FLAG_REQUIRES_GRAD))
            gantl_grad(ctx, 1, &L2, NULL, nd, diff, grads, 0);
        else
            for (int i = 0; i < nd; i++) grads[i] = gantl_full_like(ctx, diff[i], 0.0f);
    }
    return l2;
}

static void gc_check(const gc_case *c, int order) {
    gantl_rng rng = gantl_rng_new(1234);
    int64_t out_numel = 0;
    gc_eval(c, 1, NULL, NULL, NULL, &out_numel);
    float *r1 = (float *)malloc((size_t)out_numel * sizeof(float));
    gantl_rng_normal(&rng, r1, out_numel, 0.0f, 1.0f);
    float *r2[GC_MAX_IN] = {0};
    int nd = 0, input_of[GC_MAX_IN];
    for (int i = 0; i < c->n; i++) {
        if (!c->in[i].diff) continue;
        int64_t n = gantl__numel(c->in[i].ndim, c->in[i].shape);
        r2[nd] = (float *)malloc((size_t)n * sizeof(float));
        gantl_rng_normal(&rng, r2[nd], n, 0.0f, 1.0f);
        input_of[nd++] = i;
    }
    /* analytic gradients, copied out of the arena */
    gantl_tensor *grads[GC_MAX_IN];
    gc_eval(c, order, r1, (const float *const *)r2, grads, NULL);
    float *analytic[GC_MAX_IN];
    for (int k = 0; k < nd; k++) {
        int64_t n = gantl__numel(c->in[input_of[k]].ndim, c->in[input_of[k]].shape);
        analytic[k] = (float *)malloc((size_t)n * sizeof(float));
        CHECK_MSG(grads[k] && grads[k]->numel == n, "%s: gradient %d missing or misshapen", c->label, k);
        if (grads[k] && grads[k]->numel == n) memcpy(analytic[k], grads[k]->data, (size_t)n * sizeof(float));
        else memset(analytic[k], 0, (size_t)n * sizeof(float));
    }
    int samples = c->samples ? c->samples : 24;
    for (int k = 0; k < nd; k++) {
        gc_input *in = (gc_input *)&c->in[input_of[k]];
        int64_t n = gantl__numel(in->ndim, in->shape);
        int64_t count = n < samples ? n : samples;
        int bad = 0;
        for (int64_t s = 0; s < count && bad < 3; s++) {
            int64_t j = n <= samples ? s : gantl_rng_int(&rng, n);
            float saved = in->data[j];
            in->data[j] = saved + (float)c->eps;
            double plus = gc_eval(c, order, r1, (const float *const *)r2, NULL, NULL);
            in->data[j] = saved - (float)c->eps;
            double minus = gc_eval(c, order, r1, (const float *const *)r2, NULL, NULL);
            in->data[j] = saved;
            double numeric = (plus - minus) / (2.0 * c->eps), a = analytic[k][j];
            double tol = c->atol + c->rtol * fmax(fabs(a), fabs(numeric));
            if (!(fabs(a - numeric) <= tol)) {
                bad++;
                CHECK_MSG(0, "%s: order %d, input %d, element %lld: analytic %.7g, numeric %.7g", c->label, order,
                          input_of[k], (long long)j, a, numeric);
            }
        }
    }
    for (int k = 0; k < nd; k++) {
        free(analytic[k]);
        free(r2[k]);
    }
    free(r1);
}

/* Runs the first- and second-order checks. */
static void gc_run(gc_case *c) {
    if (!c->eps) c->eps = 1e-2;
    if (!c->atol) c->atol = 2e-3;
    if (!c->rtol) c->rtol = 1e-2;
    gc_check(c, 1);
    gc_check(c, 2);
}

/* Input helpers: uniform in [lo, hi], then values with |v - kink| < away pushed out. */
static float *gc_data(int64_t n, uint64_t seed, float lo, float hi) {
    float *d = (float *)malloc((size_t)n * sizeof(float));
    gantl_rng rng = gantl_rng_new(seed);
    gantl_rng_uniform(&rng, d, n, lo, hi);
    return d;
}

static void gc_away_from(float *d, int64_t n, float kink, float away) {
    for (int64_t i = 0; i < n; i++) {
        float v = d[i] - kink;
        if (fabsf(v) < away) d[i] = kink + (v < 0 ? -away : away) - v * 0.5f;
    }
}

static gc_input gc_in(int ndim, int64_t s0, int64_t s1, int64_t s2, int64_t s3, float *data, int diff) {
    gc_input in;
    int64_t s[4] = {s0, s1, s2, s3};
    in.ndim = ndim;
    for (int d = 0; d < 4; d++) in.shape[d] = d < ndim ? s[d] : 1;
    in.data = data;
    in.diff = diff;
    return in;
}

static void gc_free(gc_case *c) {
    for (int i = 0; i < c->n; i++) free(c->in[i].data);
}

/* ---- the functions under test ---- */
#include "op_cases.h"

static gantl_tensor *f_add(gantl_ctx *c, gantl_tensor **x, const void *a) { (void)a; return gantl_add(c, x[0], x[1]); }
static gantl_tensor *f_sub(gantl_ctx *c, gantl_tensor **x, const void *a) { (void)a; return gantl_sub(c, x[0], x[1]); }
static gantl_tensor *f_mul(gantl_ctx *c, gantl_tensor **x, const void *a) { (void)a; return gantl_mul(c, x[0], x[1]); }
static gantl_tensor *f_div(gantl_ctx *c, gantl_tensor **x, const void *a) { (void)a; return gantl_div(c, x[0], x[1]); }
static gantl_tensor *f_affine(gantl_ctx *c, gantl_tensor **x, const void *a) { (void)a; return gantl_affine(c, x[0], -1.5f, 0.25f); }
static gantl_tensor *f_exp(gantl_ctx *c, gantl_tensor **x, const void *a) { (void)a; return gantl_exp(c, x[0]); }
static gantl_tensor *f_log(gantl_ctx *c, gantl_tensor **x, const void *a) { (void)a; return gantl_log(c, x[0]); }
static gantl_tensor *f_sqrt(gantl_ctx *c, gantl_tensor **x, const void *a) { (void)a; return gantl_sqrt(c, x[0]); }
static gantl_tensor *f_rsqrt(gantl_ctx *c, gantl_tensor **x, const void *a) { (void)a; return gantl_rsqrt(c, x[0]); }
static gantl_tensor *f_square(gantl_ctx *c, gantl_tensor **x, const void *a) { (void)a; return gantl_square(c, x[0]); }
static gantl_tensor *f_pow(gantl_ctx *c, gantl_tensor **x, const void *a) { return gantl_pow(c, x[0], *(const float *)a); }
static gantl_tensor *f_abs(gantl_ctx *c, gantl_tensor **x, const void *a) { (void)a; return gantl_abs(c, x[0]); }
/* sign has zero gradient: check it inside a product so the result still depends on x */
static gantl_tensor *f_sign(gantl_ctx *c, gantl_tensor **x, const void *a) {
    (void)a;
    return gantl_mul(c, gantl_sign(c, x[0]), gantl_square(c, x[0]));
}
static gantl_tensor *f_softplus(gantl_ctx *c, gantl_tensor **x, const void *a) { (void)a; return gantl_softplus(c, x[0]); }
static gantl_tensor *f_sigmoid(gantl_ctx *c, gantl_tensor **x, const void *a) { (void)a; return gantl_sigmoid(c, x[0]); }
static gantl_tensor *f_relu(gantl_ctx *c, gantl_tensor **x, const void *a) { (void)a; return gantl_relu(c, gantl_square(c, x[0])); }
/* lrelu after a smooth op, so its second derivative path (lrelu_grad of x) is exercised */
static gantl_tensor *f_lrelu(gantl_ctx *c, gantl_tensor **x, const void *a) {
    (void)a;
    return gantl_mul(c, gantl_leaky_relu(c, x[0], 0.2f), x[0]);
}
static gantl_tensor *f_sum(gantl_ctx *c, gantl_tensor **x, const void *a) {
    (void)a;
    int axes[2] = {0, 2};
    return gantl_square(c, gantl_sum(c, x[0], 2, axes, 0));
}
static gantl_tensor *f_slice(gantl_ctx *c, gantl_tensor **x, const void *a) {
    (void)a;
    return gantl_square(c, gantl_slice(c, x[0], 1, 1, 3));
}
static gantl_tensor *f_pad(gantl_ctx *c, gantl_tensor **x, const void *a) {
    (void)a;
    return gantl_exp(c, gantl_pad(c, x[0], -1, 2, 1));
}
static gantl_tensor *f_concat(gantl_ctx *c, gantl_tensor **x, const void *a) {
    (void)a;
    return gantl_square(c, gantl_concat(c, x[0], x[1], 1));
}
static gantl_tensor *f_repeat(gantl_ctx *c, gantl_tensor **x, const void *a) {
    (void)a;
    int64_t r[3] = {2, 1, 3};
    return gantl_square(c, gantl_repeat(c, x[0], 3, r));
}

static gantl_tensor *f_bias_act(gantl_ctx *c, gantl_tensor **x, const void *a) {
    const bias_act_arg *p = (const bias_act_arg *)a;
    /* the square makes the second derivative non-trivial in x */
    return gantl_mul(c, gantl_bias_act(c, x[0], x[1], p->act, p->alpha, p->gain, p->clamp), x[0]);
}
static gantl_tensor *f_batch_norm(gantl_ctx *c, gantl_tensor **x, const void *a) {
    int training = *(const int *)a;
    int64_t C = x[0]->shape[1];
    gantl_tensor *rm = gantl_zeros(c, 1, &C), *rv = gantl_full(c, 1, &C, 1.0f);
    if (!training) /* eval: fixed statistics */
        for (int64_t i = 0; i < C; i++) rm->data[i] = 0.1f * (float)i, rv->data[i] = 0.5f + 0.25f * (float)i;
    return gantl_square(c, gantl_batch_norm(c, x[0], x[1], x[2], rm, rv, training, 0.1f, 1e-5f));
}

/* Backward-only ops, checked as ops of their own. */

/* ---- the tests ---- */

static void test_grad_binary_ops(void) {
    gc_fn fns[4] = {f_add, f_sub, f_mul, f_div};
    const char *names[4] = {"add", "sub", "mul", "div"};
    for (int k = 0; k < 4; k++) {
        /* broadcasting: (2, 3, 4) with (3, 1) */
        gc_case c;
        memset(&c, 0, sizeof c);
        c.label = names[k];
        c.f = fns[k];
        c.n = 2;
        c.in[0] = gc_in(3, 2, 3, 4, 1, gc_data(24, 1, -2, 2), 1);
        c.in[1] = gc_in(2, 3, 1, 1, 1, gc_data(3, 2, 0.5f, 2), 1);
        gc_run(&c);
        gc_free(&c);
        /* same shapes, and a scalar on the left */
        memset(&c, 0, sizeof c);
        c.label = names[k];
        c.f = fns[k];
        c.n = 2;
        c.in[0] = gc_in(0, 1, 1, 1, 1, gc_data(1, 3, 0.5f, 2), 1);
        c.in[1] = gc_in(2, 2, 5, 1, 1, gc_data(10, 4, 0.5f, 2), 1);
        gc_run(&c);
        gc_free(&c);
    }
}

static void test_grad_unary_ops(void) {
    struct {
        const char *name;
        gc_fn f;
        float lo, hi, kink, away;
    } ops[] = {
        {"affine", f_affine, -2, 2, 0, 0},      {"exp", f_exp, -2, 1.5f, 0, 0},
        {"log", f_log, 0.5f, 3, 0, 0},          {"sqrt", f_sqrt, 0.5f, 3, 0, 0},
        {"rsqrt", f_rsqrt, 0.5f, 3, 0, 0},      {"square", f_square, -2, 2, 0, 0},
        {"abs", f_abs, -2, 2, 0, 0.1f},         {"sign", f_sign, -2, 2, 0, 0.1f},
        {"softplus", f_softplus, -4, 4, 0, 0},  {"sigmoid", f_sigmoid, -4, 4, 0, 0},
        {"relu", f_relu, -2, 2, 0, 0},          {"lrelu", f_lrelu, -2, 2, 0, 0.1f},
    };
    for (size_t k = 0; k < sizeof ops / sizeof ops[0]; k++) {
        gc_case c;
        memset(&c, 0, sizeof c);
        c.label = ops[k].name;
        c.f = ops[k].f;
        c.n = 1;
        float *d = gc_data(30, 10 + k, ops[k].lo, ops[k].hi);
        if (ops[k].away > 0) gc_away_from(d, 30, ops[k].kink, ops[k].away);
        c.in[0] = gc_in(2, 5, 6, 1, 1, d, 1);
        gc_run(&c);
        gc_free(&c);
    }
    float exps[3] = {1.5f, -0.5f, 3.0f};
    for (int k = 0; k < 3; k++) {
        gc_case c;
        memset(&c, 0, sizeof c);
        c.label = "pow";
        c.f = f_pow;
        c.arg = &exps[k];
        c.n = 1;
        c.in[0] = gc_in(1, 12, 1, 1, 1, gc_data(12, 30 + k, 0.5f, 2), 1);
        gc_run(&c);
        gc_free(&c);
    }
}

static void test_grad_reductions_and_shapes(void) {
    struct {
        const char *name;
        gc_fn f;
        int ndim;
        int64_t s[4];
    } ops[] = {
        {"sum", f_sum, 3, {2, 3, 4, 1}},         {"mean", f_mean, 3, {2, 3, 4, 1}},
        {"expand", f_expand, 2, {3, 1, 1, 1}},   {"sum_to", f_sum_to, 3, {2, 3, 4, 1}},
        {"reshape", f_reshape, 3, {2, 2, 6, 1}}, {"permute", f_permute, 4, {2, 3, 2, 3}},
        {"slice", f_slice, 3, {2, 4, 3, 1}},     {"pad", f_pad, 3, {2, 3, 2, 1}},
        {"repeat", f_repeat, 2, {2, 3, 1, 1}},
    };
    for (size_t k = 0; k < sizeof ops / sizeof ops[0]; k++) {
        gc_case c;
        memset(&c, 0, sizeof c);
        c.label = ops[k].name;
        c.f = ops[k].f;
        c.n = 1;
        int64_t n = gantl__numel(ops[k].ndim, ops[k].s);
        c.in[0] = gc_in(ops[k].ndim, ops[k].s[0], ops[k].s[1], ops[k].s[2], ops[k].s[3], gc_data(n, 40 + k, -1, 1), 1);
        gc_run(&c);
        gc_free(&c);
    }
    gc_case c;
    memset(&c, 0, sizeof c);
    c.label = "concat";
    c.f = f_concat;
    c.n = 2;
    c.in[0] = gc_in(3, 2, 2, 3, 1, gc_data(12, 50, -1, 1), 1);
    c.in[1] = gc_in(3, 2, 3, 3, 1, gc_data(18, 51, -1, 1), 1);
    gc_run(&c);
    gc_free(&c);
}

static void test_grad_matmul(void) {
    int flags[4][2] = {{0, 0}, {1, 0}, {0, 1}, {1, 1}};
    for (int k = 0; k < 4; k++) {
        int ta = flags[k][0], tb = flags[k][1];
        /* batched a (2, M=3, K=4) with shared 2-D b (K=4, N=5), stored transposed on request */
        gc_case c;
        memset(&c, 0, sizeof c);
        c.label = "matmul (batched @ shared)";
        c.f = f_matmul;
        c.arg = flags[k];
        c.n = 2;
        c.in[0] = ta ? gc_in(3, 2, 4, 3, 1, gc_data(24, 60, -1, 1), 1) : gc_in(3, 2, 3, 4, 1, gc_data(24, 60, -1, 1), 1);
        c.in[1] = tb ? gc_in(2, 5, 4, 1, 1, gc_data(20, 61, -1, 1), 1) : gc_in(2, 4, 5, 1, 1, gc_data(20, 61, -1, 1), 1);
        gc_run(&c);
        gc_free(&c);
        /* both batched, and shared a with batched b */
        memset(&c, 0, sizeof c);
        c.label = "matmul (batched @ batched)";
        c.f = f_matmul;
        c.arg = flags[k];
        c.n = 2;
        c.in[0] = gc_in(3, 2, 3, 3, 1, gc_data(18, 62, -1, 1), 1);
        c.in[1] = gc_in(3, 2, 3, 3, 1, gc_data(18, 63, -1, 1), 1);
        gc_run(&c);
        gc_free(&c);
        memset(&c, 0, sizeof c);
        c.label = "matmul (shared @ batched)";
        c.f = f_matmul;
        c.arg = flags[k];
        c.n = 2;
        c.in[0] = gc_in(2, 3, 3, 1, 1, gc_data(9, 64, -1, 1), 1);
        c.in[1] = gc_in(3, 2, 3, 3, 1, gc_data(18, 65, -1, 1), 1);
        gc_run(&c);
        gc_free(&c);
    }
    gc_case c;
    memset(&c, 0, sizeof c);
    c.label = "linear";
    c.f = f_linear;
    c.n = 3;
    c.in[0] = gc_in(2, 4, 3, 1, 1, gc_data(12, 66, -1, 1), 1);
    c.in[1] = gc_in(2, 5, 3, 1, 1, gc_data(15, 67, -1, 1), 1);
    c.in[2] = gc_in(1, 5, 1, 1, 1, gc_data(5, 68, -1, 1), 1);
    gc_run(&c);
    gc_free(&c);
}

static void test_grad_convolutions(void) {
    conv_arg args[4] = {{1, 1, 1, 0, 3}, {2, 1, 2, 1, 3}, {2, 0, 1, 1, 3}, {1, 0, 2, 0, 3}};
    /* each case twice: the stride-1 ones by im2col (mode -1), then by Winograd (mode 1) */
    for (int k = 0; k < 8; k++) {
        conv_arg *p = &args[k % 4];
        gantl__winograd_mode = k < 4 ? -1 : 1;
        /* conv2d: x (2, 4, 6, 5), w (4, 4/g, 3, 3) */
        gc_case c;
        memset(&c, 0, sizeof c);
        c.label = "conv2d";
        c.f = f_conv2d;
        c.arg = p;
        c.n = 2;
        c.in[0] = gc_in(4, 2, 4, 6, 5, gc_data(240, 70 + k, -1, 1), 1);
        c.in[1] = gc_in(4, 4, 4 / p->groups, 3, 3, gc_data(36 * 4 / p->groups, 80 + k, -0.5f, 0.5f), 1);
        gc_run(&c);
        gc_free(&c);
        /* conv_transpose2d: x (2, 4, 3, 4), w (4, 2, 3, 3) -> 2 * groups channels */
        memset(&c, 0, sizeof c);
        c.label = "conv_transpose2d";
        c.f = f_conv_t;
        c.arg = p;
        c.n = 2;
        c.in[0] = gc_in(4, 2, 4, 3, 4, gc_data(96, 90 + k, -1, 1), 1);
        c.in[1] = gc_in(4, 4, 2, 3, 3, gc_data(72, 100 + k, -0.5f, 0.5f), 1);
        gc_run(&c);
        gc_free(&c);
        /* weight gradient as an op of its own: x (2, 4, 6, 5), gy (2, 4, Ho, Wo) */
        int64_t ho = (6 + 2 * p->pad - 3) / p->stride + 1, wo = (5 + 2 * p->pad - 3) / p->stride + 1;
        memset(&c, 0, sizeof c);
        c.label = "conv2d_weight_grad";
        c.f = f_wgrad;
        c.arg = p;
        c.n = 2;
        c.in[0] = gc_in(4, 2, 4, 6, 5, gc_data(240, 110 + k, -1, 1), 1);
        c.in[1] = gc_in(4, 2, 4, ho, wo, gc_data(8 * ho * wo, 120 + k, -1, 1), 1);
        gc_run(&c);
        gc_free(&c);
    }
    gantl__winograd_mode = 0;
    /* 1x1 convolutions: with 3 channels in (and its gradients, 3 out) the thin path of
       fromrgb and torgb, with 6 and 7 the direct GEMM */
    conv_arg one = {1, 0, 1, 0, 1};
    for (int k = 0; k < 2; k++) {
        int64_t C = k ? 6 : 3, O = k ? 7 : 5;
        gc_case c;
        memset(&c, 0, sizeof c);
        c.label = k ? "conv2d 1x1 (GEMM)" : "conv2d 1x1 (thin)";
        c.f = f_conv2d;
        c.arg = &one;
        c.n = 2;
        c.in[0] = gc_in(4, 2, C, 4, 4, gc_data(32 * C, 130 + k, -1, 1), 1);
        c.in[1] = gc_in(4, O, C, 1, 1, gc_data(O * C, 132 + k, -1, 1), 1);
        gc_run(&c);
        gc_free(&c);
    }
}

static void test_grad_upfirdn2d(void) {
    fir_arg args[4] = {
        {2, 1, {2, 1, 2, 1}, 0, 4.0f},   /* upsample2d as StyleGAN2 does it */
        {1, 2, {1, 1, 1, 1}, 0, 1.0f},   /* downsample2d */
        {1, 1, {-1, 2, 0, -1}, 1, 1.5f}, /* crop and pad, flipped filter */
        {2, 2, {1, 2, 2, 1}, 0, 2.0f},
    };
    for (int k = 0; k < 4; k++) {
        gc_case c;
        memset(&c, 0, sizeof c);
        c.label = "upfirdn2d";
        c.f = f_upfirdn;
        c.arg = &args[k];
        c.n = 2;
        c.in[0] = gc_in(4, 2, 2, 5, 6, gc_data(120, 140 + k, -1, 1), 1);
        /* a non-symmetric 4x3 filter, so flips and transposes would show */
        c.in[1] = gc_in(2, 4, 3, 1, 1, gc_data(12, 150 + k, 0.1f, 1), 0);
        gc_run(&c);
        gc_free(&c);
    }
}

static void test_grad_bias_act(void) {
    bias_act_arg args[4] = {
        {GANTL_ACT_LRELU, 0.2f, 1.41421356f, -1.0f},
        {GANTL_ACT_LRELU, 0.2f, 1.41421356f, 0.8f}, /* a clamp that bites */
        {GANTL_ACT_LINEAR, 0.0f, 0.5f, 0.6f},
        {GANTL_ACT_LRELU, 0.0f, 1.0f, -1.0f}, /* relu */
    };
    for (int k = 0; k < 4; k++) {
        gc_case c;
        memset(&c, 0, sizeof c);
        c.label = "bias_act";
        c.f = f_bias_act;
        c.arg = &args[k];
        c.n = 2;
        float *x = gc_data(48, 160 + k, -1.5f, 1.5f), *b = gc_data(3, 170 + k, -0.3f, 0.3f);
        /* keep x + b away from the kink at 0 and from the clamp edges */
        for (int64_t i = 0; i < 48; i++) {
            float bias = b[(i / 8) % 3];
            float edge = args[k].clamp > 0 ? args[k].clamp / (args[k].gain * (x[i] + bias > 0 ? 1.0f : args[k].alpha + 1e-6f)) : 1e9f;
            float v = x[i] + bias;
            if (fabsf(v) < 0.1f) v = v < 0 ? -0.1f - fabsf(v) : 0.1f + v;
            if (fabsf(fabsf(v) - edge) < 0.1f) v = v > 0 ? edge + 0.15f : -(edge + 0.15f);
            x[i] = v - bias;
        }
        c.in[0] = gc_in(4, 2, 3, 2, 4, x, 1);
        c.in[1] = gc_in(1, 3, 1, 1, 1, b, 1);
        c.eps = 2e-3; /* b moves every x + b: stay well inside the margins */
        c.atol = 1e-2;
        gc_run(&c);
        gc_free(&c);
    }
}

static void test_grad_backward_only_ops(void) {
    /* lrelu_grad(g, x): x only selects the slope, so only g is differentiated */
    gc_case c;
    memset(&c, 0, sizeof c);
    c.label = "lrelu_grad";
    c.f = f_lrelu_grad;
    c.n = 2;
    c.in[0] = gc_in(2, 4, 5, 1, 1, gc_data(20, 300, -2, 2), 1);
    c.in[1] = gc_in(2, 4, 5, 1, 1, gc_data(20, 301, -2, 2), 0);
    gc_run(&c);
    gc_free(&c);
    bias_act_arg ba = {GANTL_ACT_LRELU, 0.2f, 1.41421356f, 0.8f};
    memset(&c, 0, sizeof c);
    c.label = "bias_act_grad";
    c.f = f_bias_act_grad;
    c.arg = &ba;
    c.n = 2;
    c.in[0] = gc_in(4, 2, 3, 2, 2, gc_data(24, 302, -2, 2), 1);
    c.in[1] = gc_in(4, 2, 3, 2, 2, gc_data(24, 303, -1, 1), 0); /* y: some beyond the clamp */
    gc_run(&c);
    gc_free(&c);
    memset(&c, 0, sizeof c);
    c.label = "repeat_sum";
    c.f = f_repeat_sum;
    c.n = 1;
    c.in[0] = gc_in(3, 4, 2, 6, 1, gc_data(48, 304, -1, 1), 1);
    gc_run(&c);
    gc_free(&c);
}

static void test_grad_batch_norm(void) {
    for (int training = 0; training <= 1; training++) {
        for (int rank = 2; rank <= 4; rank += 2) {
            gc_case c;
            memset(&c, 0, sizeof c);
            c.label = training ? "batch_norm (train)" : "batch_norm (eval)";
            c.f = f_batch_norm;
            c.arg = training ? &(const int){1} : &(const int){0};
            c.n = 3;
            c.in[0] = rank == 2 ? gc_in(2, 6, 3, 1, 1, gc_data(18, 180, -2, 2), 1) : gc_in(4, 3, 3, 2, 2, gc_data(36, 181, -2, 2), 1);
            c.in[1] = gc_in(1, 3, 1, 1, 1, gc_data(3, 182, 0.5f, 1.5f), 1);
            c.in[2] = gc_in(1, 3, 1, 1, 1, gc_data(3, 183, -0.5f, 0.5f), 1);
            c.eps = 3e-3;
            gc_run(&c);
            gc_free(&c);
        }
    }
}

/* ---- autograd semantics ---- */

static void test_autograd_accumulates_shared_inputs(void) {
    gantl_ctx *ctx = gantl_ctx_new(0);
    /* y = x * x + x: dy/dx = 2x + 1 through two paths into the same leaf */
    float xv[3] = {1.0f, -2.0f, 0.5f};
    int64_t n = 3;
    gantl_tensor *x = gantl_requires_grad(gantl_from_data(ctx, 1, &n, xv));
    gantl_tensor *y = gantl_sum_all(ctx, gantl_add(ctx, gantl_mul(ctx, x, x), x));
    gantl_tensor *g;
    gantl_grad(ctx, 1, &y, NULL, 1, &x, &g, 0);
    for (int i = 0; i < 3; i++) CHECK_NEAR(g->data[i], 2 * xv[i] + 1, 1e-6);
    CHECK(!(g->flags & GANTL_FLAG_REQUIRES_GRAD)); /* no create_graph: a plain value */
    /* an input the output does not depend on gets zeros */
    gantl_tensor *z = gantl_requires_grad(gantl_from_data(ctx, 1, &n, xv)), *gz;
    gantl_grad(ctx, 1, &y, NULL, 1, &z, &gz, 0);
    for (int i = 0; i < 3; i++) CHECK(gz->data[i] == 0.0f);
    gantl_ctx_free(ctx);
}

static void test_autograd_grad_of_grad(void) {
    /* f = sum(x^3): g = 3x^2, h = d sum(g)/dx = 6x, third order: 6 */
    gantl_ctx *ctx = gantl_ctx_new(0);
    float xv[2] = {1.5f, -0.5f};
    int64_t n = 2;
    gantl_tensor *x = gantl_requires_grad(gantl_from_data(ctx, 1, &n, xv));
    gantl_tensor *f = gantl_sum_all(ctx, gantl_pow(ctx, x, 3.0f)), *g, *h, *k;
    gantl_grad(ctx, 1, &f, NULL, 1, &x, &g, 1);
    CHECK(g->flags & GANTL_FLAG_REQUIRES_GRAD);
    gantl_tensor *sg = gantl_sum_all(ctx, g);
    gantl_grad(ctx, 1, &sg, NULL, 1, &x, &h, 1);
    gantl_tensor *sh = gantl_sum_all(ctx, h);
    gantl_grad(ctx, 1, &sh, NULL, 1, &x, &k, 0);
    for (int i = 0; i < 2; i++) {
        CHECK_NEAR(g->data[i], 3 * xv[i] * xv[i], 1e-5);
        CHECK_NEAR(h->data[i], 6 * xv[i], 1e-5);
        CHECK_NEAR(k->data[i], 6.0, 1e-5);
    }
    gantl_ctx_free(ctx);
}

static void test_autograd_no_grad_and_detach(void) {
    gantl_ctx *ctx = gantl_ctx_new(0);
    int64_t n = 2;
    float xv[2] = {1, 2};
    gantl_tensor *x = gantl_requires_grad(gantl_from_data(ctx, 1, &n, xv));
    int was = gantl_set_grad_enabled(ctx, 0);
    CHECK(was == 1);
    gantl_tensor *a = gantl_mul(ctx, x, x);
    CHECK(!(a->flags & GANTL_FLAG_REQUIRES_GRAD));
    gantl_set_grad_enabled(ctx, 1);
    /* y = x * detach(x): dy/dx = detach(x) only */
    gantl_tensor *y = gantl_sum_all(ctx, gantl_mul(ctx, x, gantl_detach(ctx, x))), *g;
    gantl_grad(ctx, 1, &y, NULL, 1, &x, &g, 0);
    CHECK_NEAR(g->data[0], 1.0, 1e-7);
    CHECK_NEAR(g->data[1], 2.0, 1e-7);
    gantl_ctx_free(ctx);
}

static void test_autograd_grad_outputs_and_multiple_outputs(void) {
    gantl_ctx *ctx = gantl_ctx_new(0);
    int64_t n = 3;
    float xv[3] = {1, 2, 3}, wv[3] = {0.5f, -1, 2};
    gantl_tensor *x = gantl_requires_grad(gantl_from_data(ctx, 1, &n, xv));
    gantl_tensor *y1 = gantl_square(ctx, x), *y2 = gantl_scale(ctx, x, 3.0f);
    gantl_tensor *outs[2] = {y1, y2}, *gos[2] = {gantl_from_data(ctx, 1, &n, wv), NULL}, *g;
    gantl_grad(ctx, 2, outs, gos, 1, &x, &g, 0);
    /* d/dx [<x^2, w> + <3x, 1>] = 2 x w + 3 */
    for (int i = 0; i < 3; i++) CHECK_NEAR(g->data[i], 2 * xv[i] * wv[i] + 3, 1e-6);
    gantl_ctx_free(ctx);
}

static void test_autograd_deep_chain(void) {
    /* 20000 ops in a chain: the graph walk must not recurse */
    gantl_ctx *ctx = gantl_ctx_new(0);
    gantl_tensor *x = gantl_requires_grad(gantl_scalar(ctx, 1.0f)), *y = x, *g;
    for (int i = 0; i < 20000; i++) y = gantl_scale(ctx, y, 1.0001f);
    gantl_grad(ctx, 1, &y, NULL, 1, &x, &g, 0);
    CHECK_NEAR(g->data[0], pow((double)1.0001f, 20000), 1e-3 * pow((double)1.0001f, 20000));
    gantl_ctx_free(ctx);
}

static void test_backward_into_params(void) {
    gantl_params P;
    gantl_params_init(&P, 1);
    int64_t s2[2] = {2, 3}, s1[1] = {2};
    gantl_tensor *w = gantl_params_add(&P, "w", 2, s2), *b = gantl_params_add(&P, "b", 1, s1);
    CHECK(w && b && P.count == 2 && P.numel >= 8);
    CHECK(gantl_params_find(&P, "b") == b && !gantl_params_find(&P, "c"));
    for (int i = 0; i < 6; i++) w->data[i] = 0.1f * (float)(i + 1);
    b->data[0] = 0.5f, b->data[1] = -0.5f;
    gantl_ctx *ctx = gantl_ctx_new(0);
    float xv[3] = {1, 2, 3};
    int64_t xs[2] = {1, 3};
    for (int rep = 0; rep < 2; rep++) { /* two backward calls accumulate */
        gantl_ctx_reset(ctx);
        gantl_tensor *x = gantl_from_data(ctx, 2, xs, xv);
        gantl_tensor *loss = gantl_sum_all(ctx, gantl_linear(ctx, x, w, b));
        gantl_backward(ctx, loss);
    }
    for (int o = 0; o < 2; o++) {
        for (int i = 0; i < 3; i++) CHECK_NEAR(w->grad[o * 3 + i], 2 * xv[i], 1e-6);
        CHECK_NEAR(b->grad[o], 2.0, 1e-6);
    }
    /* the flat buffers are the tensors' storage */
    CHECK(w->data == P.data && w->grad == P.grad && b->data == P.data + 16);
    gantl_params_zero_grad(&P);
    CHECK(w->grad[0] == 0.0f && b->grad[1] == 0.0f);
    gantl_ctx_free(ctx);
    gantl_params_free(&P);
}

/* ---- params, optimizers ---- */

static void test_params_buffers_copy_lerp(void) {
    gantl_params P, Q, B;
    gantl_params_init(&P, 1);
    gantl_params_init(&B, 0);
    int64_t s[1] = {5};
    gantl_params_add(&P, "a", 1, s);
    gantl_params_add(&P, "b", 1, s);
    gantl_tensor *buf = gantl_params_add(&B, "running", 1, s);
    CHECK(B.grad == NULL && buf->grad == NULL && !(buf->flags & GANTL_FLAG_REQUIRES_GRAD));
    CHECK(gantl_params_clone_layout(&Q, &P, 0) == GANTL_OK);
    CHECK(Q.count == 2 && Q.numel == P.numel && !strcmp(Q.tensors[1]->name, "b"));
    for (int64_t i = 0; i < P.numel; i++) P.data[i] = (float)i, Q.data[i] = 10.0f;
    gantl_params_lerp(&Q, &P, 0.25f); /* q = p + (q - p) * 0.25 */
    CHECK_NEAR(Q.data[3], 3 + (10 - 3) * 0.25, 1e-6);
    gantl_params_copy(&Q, &P);
    CHECK(Q.data[7] == 7.0f);
    P.grad[0] = NAN, P.grad[1] = INFINITY, P.grad[2] = -INFINITY, P.grad[3] = 2.0f;
    gantl_params_nan_to_num_grad(&P, 1e5f);
    CHECK(P.grad[0] == 0.0f && P.grad[1] == 1e5f && P.grad[2] == -1e5f && P.grad[3] == 2.0f);
    gantl_params_free(&P);
    gantl_params_free(&Q);
    gantl_params_free(&B);
}

static void test_adam_matches_formula(void) {
    /* Adam by hand in double for three steps with varying gradients. */
    gantl_params P;
    gantl_params_init(&P, 1);
    int64_t s[1] = {3};
    gantl_tensor *w = gantl_params_add(&P, "w", 1, s);
    double p[3] = {1, -2, 0.5}, m[3] = {0}, v[3] = {0};
    for (int i = 0; i < 3; i++) w->data[i] = (float)p[i];
    gantl_adam opt;
    CHECK(gantl_adam_init(&opt, &P, 0.01, 0.9, 0.99, 1e-8) == GANTL_OK);
    for (int t = 1; t <= 3; t++) {
        for (int i = 0; i < 3; i++) {
            double g = 0.3 * (i + 1) - 0.2 * t;
            w->grad[i] = (float)g;
            m[i] = 0.9 * m[i] + 0.1 * g;
            v[i] = 0.99 * v[i] + 0.01 * g * g;
            p[i] -= 0.01 / (1 - pow(0.9, t)) * m[i] / (sqrt(v[i]) / sqrt(1 - pow(0.99, t)) + 1e-8);
        }
        gantl_adam_step(&opt, &P);
    }
    for (int i = 0; i < 3; i++) CHECK_NEAR(w->data[i], p[i], 1e-6);
    gantl_adam_free(&opt);
    gantl_params_free(&P);
}

static void test_mlp_learns_with_adam(void) {
    /* A 2-16-1 tanh-free MLP (lrelu) fits y = x0 * x1 on a fixed batch: the loss must fall. */
    gantl_params P;
    gantl_params_init(&P, 1);
    int64_t s1[2] = {16, 2}, s2[1] = {16}, s3[2] = {1, 16}, s4[1] = {1};
    gantl_tensor *w1 = gantl_params_add(&P, "w1", 2, s1), *b1 = gantl_params_add(&P, "b1", 1, s2);
    gantl_tensor *w2 = gantl_params_add(&P, "w2", 2, s3), *b2 = gantl_params_add(&P, "b2", 1, s4);
    gantl_rng rng = gantl_rng_new(7);
    gantl_rng_normal(&rng, w1->data, w1->numel, 0.0f, 0.7f);
    gantl_rng_normal(&rng, w2->data, w2->numel, 0.0f, 0.25f);
    (void)b1, (void)b2;
    float xs[64 * 2], ys[64];
    gantl_rng_uniform(&rng, xs, 128, -1, 1);
    for (int i = 0; i < 64; i++) ys[i] = xs[2 * i] * xs[2 * i + 1];
    gantl_adam opt;
    gantl_adam_init(&opt, &P, 0.02, 0.9, 0.999, 1e-8);
    gantl_ctx *ctx = gantl_ctx_new(0);
    float first = 0, last = 0;
    int64_t xshape[2] = {64, 2}, yshape[2] = {64, 1};
    for (int step = 0; step < 300; step++) {
        gantl_ctx_reset(ctx);
        gantl_tensor *x = gantl_from_data(ctx, 2, xshape, xs), *y = gantl_from_data(ctx, 2, yshape, ys);
        gantl_tensor *h = gantl_leaky_relu(ctx, gantl_linear(ctx, x, w1, b1), 0.2f);
        gantl_tensor *loss = gantl_mean_all(ctx, gantl_square(ctx, gantl_sub(ctx, gantl_linear(ctx, h, w2, b2), y)));
        if (step == 0) first = loss->data[0];
        last = loss->data[0];
        gantl_params_zero_grad(&P);
        gantl_backward(ctx, loss);
        gantl_adam_step(&opt, &P);
    }
    CHECK_MSG(last < 0.1f * first, "loss %g -> %g", first, last);
    gantl_ctx_free(ctx);
    gantl_adam_free(&opt);
    gantl_params_free(&P);
}

/* ---- contexts, arenas, errors ---- */

static void test_ctx_reset_reuses_memory(void) {
    gantl_ctx *ctx = gantl_ctx_new(1 << 12); /* tiny chunks: force several */
    size_t used_first = 0, held_first = 0;
    for (int step = 0; step < 3; step++) {
        gantl_ctx_reset(ctx);
        gantl_tensor *t = gantl_zeros(ctx, 1, &(int64_t){1000});
        for (int i = 0; i < 20; i++) t = gantl_add_scalar(ctx, t, 1.0f);
        CHECK(t && t->data[999] == 20.0f);
        if (step == 0) used_first = gantl_ctx_used(ctx), held_first = ctx->held;
        CHECK(gantl_ctx_used(ctx) == used_first);
        /* the chunks are reused: no new ones after the first step */
        CHECK(ctx->held == held_first);
    }
    CHECK(gantl_ctx_peak(ctx) == used_first);
    CHECK(ctx->chunks && ctx->chunks->next != NULL);
    /* a smaller step and then a bigger one: still no new chunk */
    gantl_ctx_reset(ctx);
    CHECK(gantl_zeros(ctx, 1, &(int64_t){10}) != NULL);
    gantl_ctx_reset(ctx);
    gantl_tensor *t = gantl_zeros(ctx, 1, &(int64_t){1000});
    for (int i = 0; i < 20; i++) t = gantl_add_scalar(ctx, t, 1.0f);
    CHECK(t && t->data[999] == 20.0f && ctx->held == held_first);
    gantl_ctx_free(ctx);
}

static void test_ctx_out_of_memory_is_a_status(void) {
    gantl_ctx *ctx = gantl_ctx_new(1 << 16);
    gantl_ctx_set_limit(ctx, 1 << 16);
    int64_t big = 1 << 20;
    gantl_tensor *x = gantl_zeros(ctx, 1, &big);
    CHECK(x == NULL);
    CHECK(gantl_ctx_status(ctx) == GANTL_ERR_NOMEM);
    CHECK(strstr(gantl_last_error(), "out of memory") != NULL);
    /* ops on NULL pass NULL along; gradients too */
    CHECK(gantl_exp(ctx, x) == NULL);
    CHECK(gantl_add(ctx, x, x) == NULL);
    gantl_ctx_reset(ctx); /* the status clears, memory is usable again */
    CHECK(gantl_ctx_status(ctx) == GANTL_OK);
    CHECK(gantl_zeros(ctx, 1, &(int64_t){100}) != NULL);
    gantl_ctx_free(ctx);
}

static void test_shape_errors_name_the_op(void) {
    /* Programmer errors abort with a message: check the message in a child process. */
#if defined(__unix__)
    fflush(stdout);
    fflush(stderr);
    int fds[2];
    if (pipe(fds) != 0) return;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fds[1], 2);
        gantl_ctx *ctx = gantl_ctx_new(0);
        gantl_tensor *a = gantl_zeros(ctx, 2, (int64_t[]){2, 3}), *b = gantl_zeros(ctx, 2, (int64_t[]){4, 3});
        gantl_add(ctx, a, b);
        _exit(0);
    }
    close(fds[1]);
    char buf[512] = {0};
    ssize_t got = 0, r;
    while ((r = read(fds[0], buf + got, sizeof buf - 1 - (size_t)got)) > 0) got += r;
    close(fds[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
    CHECK_MSG(strstr(buf, "add: shapes (2, 3) and (4, 3) do not broadcast") != NULL, "message was: %s", buf);
#endif
}

/* ---- random numbers ---- */

static void test_rng_reproducible_and_thread_independent(void) {
    enum { N = 200001 };
    float *a = (float *)malloc(N * sizeof(float)), *b = (float *)malloc(N * sizeof(float));
    gantl_rng r1 = gantl_rng_new(42), r2 = gantl_rng_new(42);
    gantl_rng_normal(&r1, a, N, 0.0f, 1.0f);
#if defined(_OPENMP)
    int threads = omp_get_max_threads();
    omp_set_num_threads(1);
#endif
    gantl_rng_normal(&r2, b, N, 0.0f, 1.0f);
#if defined(_OPENMP)
    omp_set_num_threads(threads);
#endif
    CHECK(memcmp(a, b, N * sizeof(float)) == 0);
    CHECK(r1.offset == r2.offset);
    /* moments of N(0, 1) */
    double s = 0, s2 = 0;
    for (int i = 0; i < N; i++) s += a[i], s2 += (double)a[i] * a[i];
    CHECK_NEAR(s / N, 0.0, 0.01);
    CHECK_NEAR(s2 / N, 1.0, 0.02);
    /* the next draw continues the stream, a different seed differs */
    gantl_rng_normal(&r1, b, 4, 0.0f, 1.0f);
    CHECK(memcmp(a, b, 4 * sizeof(float)) != 0);
    gantl_rng r3 = gantl_rng_new(43);
    gantl_rng_uniform(&r3, b, N, 2.0f, 3.0f);
    double lo = 9, hi = 0, mean = 0;
    for (int i = 0; i < N; i++) lo = fmin(lo, b[i]), hi = fmax(hi, b[i]), mean += b[i];
    CHECK(lo >= 2.0 && hi < 3.0);
    CHECK_NEAR(mean / N, 2.5, 0.01);
    int64_t perm[10];
    gantl_rng_permutation(&r3, perm, 10);
    int seen = 0;
    for (int i = 0; i < 10; i++) seen |= 1 << perm[i];
    CHECK(seen == 1023);
    free(a);
    free(b);
}

/* ---- forward values of simple ops (the golden tests cover the rest) ---- */

static void test_forward_values(void) {
    gantl_ctx *ctx = gantl_ctx_new(0);
    float av[6] = {1, 2, 3, 4, 5, 6};
    gantl_tensor *a = gantl_from_data(ctx, 2, (int64_t[]){2, 3}, av);
    gantl_tensor *t = gantl_transpose(ctx, a, 0, 1); /* (3, 2) */
    CHECK(t->shape[0] == 3 && t->shape[1] == 2 && t->data[1] == 4 && t->data[2] == 2);
    gantl_tensor *s = gantl_sum(ctx, a, 1, (int[]){1}, 0); /* (2,) */
    CHECK(s->ndim == 1 && s->data[0] == 6 && s->data[1] == 15);
    gantl_tensor *r = gantl_repeat(ctx, a, 2, (int64_t[]){2, 2}); /* (4, 6) */
    CHECK(r->shape[0] == 4 && r->shape[1] == 6 && r->data[3] == 1 && r->data[6 * 2 + 4] == 2 && r->data[23] == 6);
    gantl_tensor *c = gantl_concat(ctx, a, a, 0);
    CHECK(c->shape[0] == 4 && c->data[7] == 2);
    gantl_tensor *p = gantl_pad(ctx, a, 1, 1, 0); /* (2, 4) */
    CHECK(p->data[0] == 0 && p->data[1] == 1 && p->data[4] == 0 && p->data[7] == 6);
    gantl_tensor *m = gantl_mean_all(ctx, a);
    CHECK(m->ndim == 0 && m->numel == 1 && m->data[0] == 3.5f);
    gantl_tensor *big = gantl_full(ctx, 1, (int64_t[]){100000}, 0.1f);
    CHECK_NEAR(gantl_sum_all(ctx, big)->data[0], 10000.0, 1e-2); /* summed in double */
    CHECK_NEAR(gantl_softplus(ctx, gantl_scalar(ctx, 50.0f))->data[0], 50.0, 1e-6);
    CHECK_NEAR(gantl_softplus(ctx, gantl_scalar(ctx, -50.0f))->data[0] / exp(-50.0), 1.0, 1e-6);
    CHECK(gantl_sigmoid(ctx, gantl_scalar(ctx, -100.0f))->data[0] == 0.0f);
    gantl_tensor *e = gantl_expand(ctx, gantl_from_data(ctx, 1, (int64_t[]){3}, av), 2, (int64_t[]){2, 3});
    CHECK(e->data[3] == 1 && e->data[5] == 3);
    gantl_ctx_free(ctx);
}

static void test_sgemm_all_paths(void) {
    /* sizes that hit the tiny path, ragged tiles, several panels, and transposes */
    int64_t sizes[4][3] = {{3, 5, 7}, {37, 45, 300}, {130, 4100, 9}, {9, 33, 600}};
    for (int s = 0; s < 4; s++)
        for (int ta = 0; ta <= 1; ta++)
            for (int tb = 0; tb <= 1; tb++) {
                int64_t m = sizes[s][0], n = sizes[s][1], k = sizes[s][2];
                float *a = gc_data(m * k, 200 + s, -1, 1), *b = gc_data(k * n, 210 + s, -1, 1);
                float *c = gc_data(m * n, 220 + s, -1, 1), *ref = (float *)malloc((size_t)(m * n) * sizeof(float));
                for (int64_t i = 0; i < m; i++)
                    for (int64_t j = 0; j < n; j++) {
                        double acc = 0;
                        for (int64_t p = 0; p < k; p++)
                            acc += (double)(ta ? a[p * m + i] : a[i * k + p]) * (tb ? b[j * k + p] : b[p * n + j]);
                        ref[i * n + j] = (float)(0.5 * acc + 2.0 * c[i * n + j]);
                    }
                gantl_sgemm(c, a, b, ta, tb, 0.5f, 2.0f, m, n, k);
                CHECK_ALLCLOSE(c, ref, m * n, 1e-4, 1e-4);
                free(a), free(b), free(c), free(ref);
            }
}

/* The device slot of the backend table: a fake backend for GANTL_CUDA (host memory, one
   kernel, add, that marks its output with +1000) gets the ops of tensors on that device;
   the CPU's ops do not reach it. */
static int fake_backend_allocs, fake_backend_adds;
static void *fake_backend_alloc(size_t bytes) {
    fake_backend_allocs++;
    return malloc(bytes);
}
static void fake_backend_free(void *p) { free(p); }
static void fake_backend_add(gantl_ctx *ctx, gantl_tensor *out) {
    (void)ctx;
    fake_backend_adds++;
    for (int64_t i = 0; i < out->numel; i++) out->data[i] = out->src[0]->data[i] + out->src[1]->data[i] + 1000.0f;
}

static void test_backend_slot_dispatches_to_device(void) {
    const gantl_backend *saved = gantl_get_backend(GANTL_CUDA);
    if (!saved) CHECK(gantl_ctx_new_device(GANTL_CUDA, 0) == NULL && strstr(gantl_last_error(), "no backend"));
    static gantl_backend fake;
    memset(&fake, 0, sizeof fake);
    fake.name = "fake";
    fake.forward[GANTL_OP_ADD] = fake_backend_add;
    fake.alloc = fake_backend_alloc;
    fake.free = fake_backend_free;
    gantl_register_backend(GANTL_CUDA, &fake);
    CHECK(gantl_get_backend(GANTL_CUDA) == &fake && gantl_get_backend(GANTL_CPU) != &fake);
    fake_backend_allocs = fake_backend_adds = 0;
    gantl_ctx *ctx = gantl_ctx_new_device(GANTL_CUDA, 1 << 12), *cpu = gantl_ctx_new(1 << 12);
    CHECK(ctx && gantl_ctx_device(ctx) == GANTL_CUDA);
    if (ctx && cpu) {
        float av[4] = {1, 2, 3, 4}, bv[4] = {10, 20, 30, 40};
        int64_t n = 4;
        gantl_tensor *a = gantl_from_data(ctx, 1, &n, av), *b = gantl_from_data(ctx, 1, &n, bv);
        CHECK(a && b && a->device == GANTL_CUDA && b->device == GANTL_CUDA && fake_backend_allocs >= 1);
        gantl_tensor *c = a && b ? gantl_add(ctx, a, b) : NULL;
        CHECK(fake_backend_adds == 1 && c && c->device == GANTL_CUDA && c->data[0] == 1011.0f && c->data[3] == 1044.0f);
        gantl_tensor *d = gantl_add(cpu, gantl_from_data(cpu, 1, &n, av), gantl_from_data(cpu, 1, &n, bv));
        CHECK(fake_backend_adds == 1 && d && d->device == GANTL_CPU && d->data[3] == 44.0f);
    }
    gantl_ctx_free(ctx);
    gantl_ctx_free(cpu);
    gantl_register_backend(GANTL_CUDA, saved);
}

/* ---- Winograd against im2col ----
   conv2d, conv_transpose2d (stride 1) and the weight gradient of 3x3 stride-1 convolutions
   by Winograd F(4x4, 3x3) (gantl__winograd_mode 1) against im2col (mode -1) on random
   inputs: odd sizes, padding 0..2, groups, one and many images, channel counts off the
   GEMM's tiles, several tile runs (and weight-gradient chunks). Tolerance: 4e-5 of the
   largest |output| (up to about 8e-6 is seen: the transforms' entries reach 8 and 1/24);
   and the same bits on one thread as on all. */

typedef struct wino_case {
    int64_t N, C, O, H, W;
    int pad, groups;
} wino_case;

/* the three ops of case k under the given mode: out[0..2] (caller frees) */
static void wino_run(gantl_ctx *ctx, const wino_case *k, int mode, float *out[3], int64_t n[3]) {
    gantl_rng rng = gantl_rng_new(500 + (uint64_t)(k->N * 7 + k->C * 3 + k->pad));
    int64_t ho = k->H + 2 * k->pad - 2, wo = k->W + 2 * k->pad - 2;
    gantl_tensor *x = gantl_randn(ctx, &rng, 4, (int64_t[]){k->N, k->C, k->H, k->W});
    gantl_tensor *w = gantl_randn(ctx, &rng, 4, (int64_t[]){k->O, k->C / k->groups, 3, 3});
    gantl_tensor *wt = gantl_randn(ctx, &rng, 4, (int64_t[]){k->C, k->O / k->groups, 3, 3});
    gantl_tensor *gy = gantl_randn(ctx, &rng, 4, (int64_t[]){k->N, k->O, ho, wo});
    gantl__winograd_mode = mode;
    gantl_tensor *r[3] = {gantl_conv2d(ctx, x, w, 1, k->pad, k->groups),
                          gantl_conv_transpose2d(ctx, x, wt, 1, k->pad, 0, k->groups),
                          gantl_conv2d_weight_grad(ctx, x, gy, 3, 3, 1, k->pad, k->groups)};
    gantl__winograd_mode = 0;
    for (int i = 0; i < 3; i++) {
        n[i] = r[i] ? r[i]->numel : 0;
        out[i] = (float *)malloc((size_t)(n[i] > 0 ? n[i] : 1) * sizeof(float));
        if (r[i]) memcpy(out[i], r[i]->data, (size_t)n[i] * sizeof(float));
    }
}

/* gantl_sum's kernel paths (runs of kept last-axis outputs, long vectorised runs, short
   runs) against a plain double sum in index order. */
static void test_sum_paths(void) {
    gantl_ctx *ctx = gantl_ctx_new(0);
    gantl_rng rng = gantl_rng_new(7);
    static const int64_t shapes[2][4] = {{3, 5, 4, 70}, {4, 3, 9, 12}};
    static const int masks[] = {1, 3, 5, 8, 9, 12, 13, 14};
    for (int si = 0; si < 2; si++)
        for (size_t mi = 0; mi < sizeof masks / sizeof masks[0]; mi++) {
            const int64_t *sh = shapes[si];
            int axes[4], na = 0;
            for (int d = 0; d < 4; d++)
                if (masks[mi] >> (3 - d) & 1) axes[na++] = d;
            gantl_tensor *x = gantl_randn(ctx, &rng, 4, sh), *y = gantl_sum(ctx, x, na, axes, 1);
            double worst = 0.0;
            for (int64_t o = 0; o < y->numel; o++) {
                int64_t oi[4], rem = o;
                for (int d = 3; d >= 0; d--) oi[d] = rem % y->shape[d], rem /= y->shape[d];
                double acc = 0.0;
                for (int64_t i = 0; i < x->numel; i++) {
                    int64_t xi[4], r = i, in = 1;
                    for (int d = 3; d >= 0; d--) xi[d] = r % sh[d], r /= sh[d];
                    for (int d = 0; d < 4; d++) in &= y->shape[d] == 1 || xi[d] == oi[d];
                    if (in) acc += x->data[i];
                }
                double diff = fabs(acc - y->data[o]) / (fabs(acc) + 1.0);
                worst = diff > worst ? diff : worst;
            }
            CHECK_MSG(worst < 1e-6, "shape %d axes mask %d: relative error %.3g", si, masks[mi], worst);
            gantl_ctx_reset(ctx);
        }
    gantl_ctx_free(ctx);
}

static void test_winograd_matches_im2col(void) {
    static const wino_case cases[] = {
        {1, 3, 5, 7, 7, 1, 1},    {3, 34, 33, 9, 6, 0, 1},  {2, 8, 6, 5, 8, 2, 2},
        {5, 40, 36, 16, 16, 1, 1}, {33, 6, 4, 4, 4, 1, 1},  {2, 64, 64, 12, 11, 1, 2},
        {9, 4, 4, 16, 16, 1, 1},  {1, 5, 3, 3, 3, 0, 1},   {2, 300, 20, 6, 6, 1, 1},
    };
    static const char *ops[3] = {"conv2d", "conv_transpose2d", "conv2d_weight_grad"};
    gantl_ctx *ctx = gantl_ctx_new(0);
    double worst_seen = 0.0;
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        float *ref[3], *win[3], *one[3];
        int64_t n[3], n2[3], n3[3];
        wino_run(ctx, &cases[c], -1, ref, n);
        wino_run(ctx, &cases[c], 1, win, n2);
#if defined(_OPENMP)
        int threads = omp_get_max_threads();
        omp_set_num_threads(1);
#endif
        wino_run(ctx, &cases[c], 1, one, n3);
#if defined(_OPENMP)
        omp_set_num_threads(threads);
#endif
        for (int i = 0; i < 3; i++) {
            CHECK(n[i] > 0 && n[i] == n2[i] && n[i] == n3[i]);
            double big = 0.0, diff = 0.0;
            for (int64_t j = 0; j < n[i] && n[i] == n2[i]; j++) {
                big = fabs(ref[i][j]) > big ? fabs(ref[i][j]) : big;
                diff = fabs(ref[i][j] - win[i][j]) > diff ? fabs(ref[i][j] - win[i][j]) : diff;
            }
            worst_seen = diff / big > worst_seen ? diff / big : worst_seen;
            CHECK_MSG(diff <= 4e-5 * big, "case %zu %s: max |winograd - im2col| %.3g of max |y| %.3g", c, ops[i],
                      diff, big);
            CHECK_MSG(n[i] == n3[i] && memcmp(win[i], one[i], (size_t)n[i] * sizeof(float)) == 0,
                      "case %zu %s: one thread differs from all", c, ops[i]);
            free(ref[i]), free(win[i]), free(one[i]);
        }
        gantl_ctx_reset(ctx);
    }
    if (getenv("GANTL_TEST_VERBOSE")) printf("    winograd: worst relative difference %.3g\n", worst_seen);
    /* the rule: 3x3, stride 1, and 32 channels in and out per group */
    CHECK(gantl__use_winograd(3, 3, 1, 128, 128, 16, 16) && gantl__use_winograd(3, 3, 1, 32, 32, 4, 4));
    CHECK(!gantl__use_winograd(3, 3, 2, 128, 128, 16, 16) && !gantl__use_winograd(1, 1, 1, 128, 128, 16, 16));
    CHECK(!gantl__use_winograd(3, 3, 1, 3, 128, 16, 16) && !gantl__use_winograd(3, 3, 1, 128, 128, 1, 16));
    gantl_ctx_free(ctx);
}

static void run_core_tests(void) {
    gc_ctx = gantl_ctx_new(0);
    RUN(test_grad_binary_ops);
    RUN(test_grad_unary_ops);
    RUN(test_grad_reductions_and_shapes);
    RUN(test_grad_matmul);
    RUN(test_grad_convolutions);
    RUN(test_grad_upfirdn2d);
    RUN(test_grad_bias_act);
    RUN(test_grad_backward_only_ops);
    RUN(test_grad_batch_norm);
    RUN(test_autograd_accumulates_shared_inputs);
    RUN(test_autograd_grad_of_grad);
    RUN(test_autograd_no_grad_and_detach);
    RUN(test_autograd_grad_outputs_and_multiple_outputs);
    RUN(test_autograd_deep_chain);
    RUN(test_backward_into_params);
    RUN(test_params_buffers_copy_lerp);
    RUN(test_adam_matches_formula);
    RUN(test_mlp_learns_with_adam);
    RUN(test_ctx_reset_reuses_memory);
    RUN(test_ctx_out_of_memory_is_a_status);
    RUN(test_shape_errors_name_the_op);
    RUN(test_rng_reproducible_and_thread_independent);
    RUN(test_forward_values);
    RUN(test_sgemm_all_paths);
    RUN(test_sum_paths);
    RUN(test_winograd_matches_im2col);
    RUN(test_backend_slot_dispatches_to_device);
    gantl_ctx_free(gc_ctx);
}
