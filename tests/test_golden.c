/* Golden tests: gantl's ops, gradients, gradients of gradients and optimizers against
   PyTorch values in tests/fixtures/core.safetensors (written by tools/gen_core_fixtures.py). */

static gantl_st_file golden_file;
static int golden_loaded;

static const gantl_st_file *golden(void) {
    if (!golden_loaded) {
        gantl_status s = gantl_st_load(&golden_file, "tests/fixtures/core.safetensors");
        CHECK_MSG(s == GANTL_OK, "cannot load the core fixture: %s", gantl_last_error());
        golden_loaded = s == GANTL_OK ? 1 : -1;
    }
    return golden_loaded > 0 ? &golden_file : NULL;
}

/* A leaf tensor with the fixture's shape and values; NULL (and a failed check) if missing. */
static gantl_tensor *fx(gantl_ctx *ctx, const char *name) {
    const gantl_st_file *f = golden();
    const gantl_st_tensor *t = f ? gantl_st_find(f, name) : NULL;
    CHECK_MSG(t != NULL, "fixture tensor '%s' missing", name);
    if (!t) return NULL;
    gantl_tensor *x = gantl_new(ctx, t->ndim, t->shape);
    gantl_st_read_f32(f, name, x->data, x->numel, t->ndim, t->shape);
    return x;
}

static void expect_close(gantl_ctx *ctx, const gantl_tensor *got, const char *name, double atol, double rtol) {
    gantl_tensor *want = fx(ctx, name);
    if (!want || !got) {
        CHECK_MSG(got != NULL, "%s: no result", name);
        return;
    }
    CHECK_MSG(got->numel == want->numel, "%s: %lld values, expected %lld", name, (long long)got->numel,
              (long long)want->numel);
    if (got->numel != want->numel) return;
    long long at = 0;
    double worst = test__worst(got->data, want->data, got->numel, atol, rtol, &at);
    CHECK_MSG(worst <= 1.0, "%s: element %lld is %.8g, PyTorch %.8g", name, at, got->data[at], want->data[at]);
}

typedef gantl_tensor *(*golden_fn)(gantl_ctx *ctx, gantl_tensor **x);

/* Runs fn on the case's inputs, compares y and the gradients of sum(y * r). */
static void golden_op(const char *name, golden_fn fn, int n, const char *const *inputs, double atol, double rtol) {
    gantl_ctx *ctx = gantl_ctx_new(0);
    gantl_tensor *x[4];
    char key[128];
    for (int i = 0; i < n; i++) {
        snprintf(key, sizeof key, "%s.%s", name, inputs[i]);
        x[i] = gantl_requires_grad(fx(ctx, key));
        if (!x[i]) {
            gantl_ctx_free(ctx);
            return;
        }
    }
    gantl_tensor *y = fn(ctx, x);
    snprintf(key, sizeof key, "%s.y", name);
    expect_close(ctx, y, key, atol, rtol);
    snprintf(key, sizeof key, "%s.r", name);
    gantl_tensor *r = fx(ctx, key), *g[4];
    if (r && y && r->numel == y->numel) {
        r = gantl_reshape(ctx, r, y->ndim, y->shape);
        gantl_grad(ctx, 1, &y, &r, n, x, g, 0);
        for (int i = 0; i < n; i++) {
            snprintf(key, sizeof key, "%s.g_%s", name, inputs[i]);
            expect_close(ctx, g[i], key, atol, rtol);
        }
    }
    gantl_ctx_free(ctx);
}

static const char *const IN_X[] = {"x"}, *const IN_XW[] = {"x", "w"}, *const IN_XB[] = {"x", "b"},
                         *const IN_AB[] = {"a", "b"}, *const IN_XWB[] = {"x", "w", "b"};

static gantl_tensor *g_conv2d_s2g2(gantl_ctx *c, gantl_tensor **x) { return gantl_conv2d(c, x[0], x[1], 2, 1, 2); }
static gantl_tensor *g_conv2d_5x5(gantl_ctx *c, gantl_tensor **x) { return gantl_conv2d(c, x[0], x[1], 1, 2, 1); }
static gantl_tensor *g_conv2d_1x1(gantl_ctx *c, gantl_tensor **x) { return gantl_conv2d(c, x[0], x[1], 1, 0, 1); }
static gantl_tensor *g_convt_s2g2(gantl_ctx *c, gantl_tensor **x) { return gantl_conv_transpose2d(c, x[0], x[1], 2, 1, 1, 2); }
static gantl_tensor *g_convt_s2p0(gantl_ctx *c, gantl_tensor **x) { return gantl_conv_transpose2d(c, x[0], x[1], 2, 0, 0, 1); }

static void test_golden_convolutions(void) {
    golden_op("conv2d_s2g2", g_conv2d_s2g2, 2, IN_XW, 1e-4, 1e-4);
    golden_op("conv2d_5x5", g_conv2d_5x5, 2, IN_XW, 1e-4, 1e-4);
    golden_op("conv2d_1x1", g_conv2d_1x1, 2, IN_XW, 1e-4, 1e-4);
    golden_op("convt_s2g2", g_convt_s2g2, 2, IN_XW, 1e-4, 1e-4);
    golden_op("convt_s2p0", g_convt_s2p0, 2, IN_XW, 1e-4, 1e-4);
}

static gantl_tensor *g_fir(gantl_ctx *c, const char *name) { return fx(c, name); }
static gantl_tensor *g_up2(gantl_ctx *c, gantl_tensor **x) {
    int pad[4] = {2, 1, 2, 1};
    return gantl_upfirdn2d(c, x[0], g_fir(c, "fir.f"), 2, 1, pad, 0, 4.0f);
}
static gantl_tensor *g_down2(gantl_ctx *c, gantl_tensor **x) {
    int pad[4] = {1, 1, 1, 1};
    return gantl_upfirdn2d(c, x[0], g_fir(c, "fir.f"), 1, 2, pad, 0, 1.0f);
}
static gantl_tensor *g_crop(gantl_ctx *c, gantl_tensor **x) {
    int pad[4] = {-1, 2, 0, -1};
    return gantl_upfirdn2d(c, x[0], g_fir(c, "fir.g"), 1, 1, pad, 1, 1.5f);
}

static void test_golden_upfirdn2d(void) {
    golden_op("upfirdn_up2", g_up2, 1, IN_X, 1e-5, 1e-4);
    golden_op("upfirdn_down2", g_down2, 1, IN_X, 1e-5, 1e-4);
    golden_op("upfirdn_crop", g_crop, 1, IN_X, 1e-5, 1e-4);
}

static gantl_tensor *g_ba_lrelu(gantl_ctx *c, gantl_tensor **x) {
    return gantl_bias_act(c, x[0], x[1], GANTL_ACT_LRELU, 0.2f, (float)sqrt(2.0), 0.8f);
}
static gantl_tensor *g_ba_linear(gantl_ctx *c, gantl_tensor **x) {
    return gantl_bias_act(c, x[0], x[1], GANTL_ACT_LINEAR, 0.0f, 0.5f, 0.6f);
}

static void test_golden_bias_act(void) {
    golden_op("bias_act_lrelu", g_ba_lrelu, 2, IN_XB, 1e-5, 1e-5);
    golden_op("bias_act_linear", g_ba_linear, 2, IN_XB, 1e-5, 1e-5);
}

static gantl_tensor *g_mm(gantl_ctx *c, gantl_tensor **x) { return gantl_matmul(c, x[0], x[1], 0, 0); }
static gantl_tensor *g_mm_tt(gantl_ctx *c, gantl_tensor **x) { return gantl_matmul(c, x[0], x[1], 1, 1); }
static gantl_tensor *g_linear(gantl_ctx *c, gantl_tensor **x) { return gantl_linear(c, x[0], x[1], x[2]); }
static gantl_tensor *g_softplus(gantl_ctx *c, gantl_tensor **x) { return gantl_softplus(c, x[0]); }
static gantl_tensor *g_sigmoid(gantl_ctx *c, gantl_tensor **x) { return gantl_sigmoid(c, x[0]); }
static gantl_tensor *g_exp(gantl_ctx *c, gantl_tensor **x) { return gantl_exp(c, x[0]); }
static gantl_tensor *g_log(gantl_ctx *c, gantl_tensor **x) { return gantl_log(c, x[0]); }
static gantl_tensor *g_sqrt(gantl_ctx *c, gantl_tensor **x) { return gantl_sqrt(c, x[0]); }
static gantl_tensor *g_rsqrt(gantl_ctx *c, gantl_tensor **x) { return gantl_rsqrt(c, x[0]); }
static gantl_tensor *g_pow(gantl_ctx *c, gantl_tensor **x) { return gantl_pow(c, x[0], 1.7f); }
static gantl_tensor *g_lrelu(gantl_ctx *c, gantl_tensor **x) { return gantl_leaky_relu(c, x[0], 0.2f); }
static gantl_tensor *g_div(gantl_ctx *c, gantl_tensor **x) { return gantl_div(c, x[0], x[1]); }

static void test_golden_matmul_and_elementwise(void) {
    golden_op("matmul_batched", g_mm, 2, IN_AB, 1e-5, 1e-5);
    golden_op("matmul_tt", g_mm_tt, 2, IN_AB, 1e-5, 1e-5);
    golden_op("linear", g_linear, 3, IN_XWB, 1e-5, 1e-5);
    golden_op("softplus", g_softplus, 1, IN_X, 1e-6, 1e-5);
    golden_op("sigmoid", g_sigmoid, 1, IN_X, 1e-6, 1e-5);
    golden_op("exp", g_exp, 1, IN_X, 1e-6, 1e-5);
    golden_op("log", g_log, 1, IN_X, 1e-6, 1e-5);
    golden_op("sqrt", g_sqrt, 1, IN_X, 1e-6, 1e-5);
    golden_op("rsqrt", g_rsqrt, 1, IN_X, 1e-6, 1e-5);
    golden_op("pow", g_pow, 1, IN_X, 1e-6, 1e-5);
    golden_op("lrelu", g_lrelu, 1, IN_X, 1e-6, 1e-5);
    golden_op("div_bcast", g_div, 2, IN_AB, 1e-6, 1e-5);
}

static gantl_tensor *g_sum02(gantl_ctx *c, gantl_tensor **x) { return gantl_sum(c, x[0], 2, (int[]){0, 2}, 0); }
static gantl_tensor *g_mean13(gantl_ctx *c, gantl_tensor **x) { return gantl_mean(c, x[0], 2, (int[]){1, 3}, 1); }
static gantl_tensor *g_permute(gantl_ctx *c, gantl_tensor **x) { return gantl_permute(c, x[0], (int[]){2, 0, 3, 1}); }
static gantl_tensor *g_repeat(gantl_ctx *c, gantl_tensor **x) { return gantl_repeat(c, x[0], 4, (int64_t[]){2, 1, 3, 2}); }
static gantl_tensor *g_concat(gantl_ctx *c, gantl_tensor **x) { return gantl_concat(c, x[0], x[1], 1); }
static gantl_tensor *g_slice(gantl_ctx *c, gantl_tensor **x) { return gantl_slice(c, x[0], 1, 1, 4); }

static void test_golden_shapes(void) {
    golden_op("sum_02", g_sum02, 1, IN_X, 1e-5, 1e-5);
    golden_op("mean_13k", g_mean13, 1, IN_X, 1e-6, 1e-5);
    golden_op("permute", g_permute, 1, IN_X, 0, 0);
    golden_op("repeat", g_repeat, 1, IN_X, 1e-6, 0);
    golden_op("concat", g_concat, 2, IN_AB, 0, 0);
    golden_op("slice", g_slice, 1, IN_X, 0, 0);
}

/* Batch norm with running statistics shared across the three cases, as in PyTorch. */
static gantl_ctx *bn_ctx;
static gantl_tensor *bn_w, *bn_b, *bn_rm, *bn_rv;
static int bn_training;
static gantl_tensor *g_bn(gantl_ctx *c, gantl_tensor **x) {
    return gantl_batch_norm(c, x[0], bn_w, bn_b, bn_rm, bn_rv, bn_training, 0.1f, 1e-5f);
}

static void test_golden_batch_norm(void) {
    bn_ctx = gantl_ctx_new(0);
    bn_w = fx(bn_ctx, "bn.weight"), bn_b = fx(bn_ctx, "bn.bias");
    bn_rm = gantl_zeros(bn_ctx, 1, (int64_t[]){5}), bn_rv = gantl_full(bn_ctx, 1, (int64_t[]){5}, 1.0f);
    bn_training = 1;
    golden_op("bn_train1", g_bn, 1, IN_X, 1e-5, 1e-4);
    golden_op("bn_train2", g_bn, 1, IN_X, 1e-5, 1e-4);
    expect_close(bn_ctx, bn_rm, "bn.running_mean", 1e-6, 1e-5);
    expect_close(bn_ctx, bn_rv, "bn.running_var", 1e-6, 1e-5);
    bn_training = 0;
    golden_op("bn_eval", g_bn, 1, IN_X, 1e-5, 1e-4);
    /* 2-D batch norm without affine parameters */
    bn_w = bn_b = NULL;
    bn_rm = gantl_zeros(bn_ctx, 1, (int64_t[]){4}), bn_rv = gantl_full(bn_ctx, 1, (int64_t[]){4}, 1.0f);
    bn_training = 1;
    gantl_ctx *ctx = gantl_ctx_new(0);
    gantl_tensor *w = gantl_full(ctx, 1, (int64_t[]){4}, 1.0f), *b = gantl_zeros(ctx, 1, (int64_t[]){4});
    bn_w = w, bn_b = b; /* BatchNorm2d's default affine parameters */
    golden_op("bn2d_train", g_bn, 1, IN_X, 1e-5, 1e-4);
    expect_close(bn_ctx, bn_rm, "bn2d.running_mean", 1e-6, 1e-5);
    expect_close(bn_ctx, bn_rv, "bn2d.running_var", 1e-6, 1e-5);
    gantl_ctx_free(ctx);
    gantl_ctx_free(bn_ctx);
}

static void test_golden_optimizers(void) {
    gantl_ctx *ctx = gantl_ctx_new(0);
    gantl_tensor *p0 = fx(ctx, "adam.p0"), *grads = fx(ctx, "adam.grads");
    if (!p0 || !grads) {
        gantl_ctx_free(ctx);
        return;
    }
    for (int which = 0; which < 3; which++) {
        gantl_params P;
        gantl_params_init(&P, 1);
        gantl_tensor *p = gantl_params_add(&P, "p", 1, (int64_t[]){10});
        memcpy(p->data, p0->data, 10 * sizeof(float));
        gantl_adam adam;
        gantl_sgd sgd;
        if (which == 0) gantl_adam_init(&adam, &P, 0.01, 0.0, 0.99, 1e-8);
        if (which == 1) gantl_adam_init(&adam, &P, 0.002, 0.5, 0.999, 1e-8);
        if (which == 2) gantl_sgd_init(&sgd, &P, 0.1, 0.9);
        for (int t = 0; t < 5; t++) {
            memcpy(p->grad, grads->data + 10 * t, 10 * sizeof(float));
            if (which < 2) gantl_adam_step(&adam, &P);
            else gantl_sgd_step(&sgd, &P);
        }
        const char *names[3] = {"adam.p5", "adam2.p5", "sgd.p5"};
        expect_close(ctx, p, names[which], 1e-6, 1e-6);
        if (which < 2) gantl_adam_free(&adam);
        else gantl_sgd_free(&sgd);
        gantl_params_free(&P);
    }
    gantl_ctx_free(ctx);
}

/* R1 through conv, bias_act (clamped lrelu), FIR downsampling, conv, linear. */
static void test_golden_r1_grad_of_grad(void) {
    gantl_ctx *ctx = gantl_ctx_new(0);
    const char *names[6] = {"r1.x", "r1.w1", "r1.b1", "r1.w2", "r1.b2", "r1.wf"};
    gantl_tensor *t[6];
    for (int i = 0; i < 6; i++) t[i] = gantl_requires_grad(fx(ctx, names[i]));
    gantl_tensor *f = fx(ctx, "fir.f");
    if (!t[0] || !t[5] || !f) {
        gantl_ctx_free(ctx);
        return;
    }
    gantl_tensor *x = t[0];
    int pad[4] = {1, 1, 1, 1};
    gantl_tensor *h = gantl_bias_act(ctx, gantl_conv2d(ctx, x, t[1], 1, 1, 1), t[2], GANTL_ACT_LRELU, 0.2f,
                                     (float)sqrt(2.0), 256.0f);
    h = gantl_upfirdn2d(ctx, h, f, 1, 2, pad, 0, 1.0f);
    h = gantl_bias_act(ctx, gantl_conv2d(ctx, h, t[3], 1, 1, 1), t[4], GANTL_ACT_LRELU, 0.2f, 1.0f, -1.0f);
    gantl_tensor *logits = gantl_linear(ctx, gantl_reshape(ctx, h, 2, (int64_t[]){2, -1}), t[5], NULL);
    expect_close(ctx, logits, "r1.logits", 1e-5, 1e-4);
    gantl_tensor *sum = gantl_sum_all(ctx, logits), *gx;
    gantl_grad(ctx, 1, &sum, NULL, 1, &x, &gx, 1);
    expect_close(ctx, gx, "r1.gx", 1e-5, 1e-4);
    gantl_tensor *pen = gantl_sum_all(ctx, gantl_square(ctx, gx)), *gw[5];
    expect_close(ctx, pen, "r1.pen", 1e-5, 1e-4);
    gantl_grad(ctx, 1, &pen, NULL, 5, t + 1, gw, 0);
    const char *gnames[5] = {"r1.g_w1", "r1.g_b1", "r1.g_w2", "r1.g_b2", "r1.g_wf"};
    for (int i = 0; i < 5; i++) expect_close(ctx, gw[i], gnames[i], 1e-4, 1e-4);
    gantl_ctx_free(ctx);
}

/* Path length through a modulated, demodulated conv: d/dw of |d<y, noise>/ds|. */
static void test_golden_path_length_grad_of_grad(void) {
    gantl_ctx *ctx = gantl_ctx_new(0);
    gantl_tensor *x = fx(ctx, "pl.x"), *s = gantl_requires_grad(fx(ctx, "pl.s"));
    gantl_tensor *w = gantl_requires_grad(fx(ctx, "pl.w")), *noise = fx(ctx, "pl.noise");
    if (!x || !s || !w || !noise) {
        gantl_ctx_free(ctx);
        return;
    }
    /* d (N, O) = rsqrt(sum_{i,kh,kw} (w * s_i)^2 + 1e-8) */
    gantl_tensor *ws = gantl_mul(ctx, gantl_reshape(ctx, w, 4, (int64_t[]){1, 3, 4, 9}),
                                 gantl_reshape(ctx, s, 4, (int64_t[]){2, 1, 4, 1}));
    gantl_tensor *d = gantl_rsqrt(ctx, gantl_add_scalar(ctx, gantl_sum(ctx, gantl_square(ctx, ws), 2, (int[]){2, 3}, 0), 1e-8f));
    gantl_tensor *y = gantl_conv2d(ctx, gantl_mul(ctx, x, gantl_reshape(ctx, s, 4, (int64_t[]){2, 4, 1, 1})), w, 1, 1, 1);
    y = gantl_mul(ctx, y, gantl_reshape(ctx, d, 4, (int64_t[]){2, 3, 1, 1}));
    expect_close(ctx, y, "pl.y", 1e-5, 1e-4);
    gantl_tensor *dot = gantl_sum_all(ctx, gantl_mul(ctx, y, noise)), *gs;
    gantl_grad(ctx, 1, &dot, NULL, 1, &s, &gs, 1);
    expect_close(ctx, gs, "pl.gs", 1e-5, 1e-4);
    gantl_tensor *len = gantl_sqrt(ctx, gantl_mean_all(ctx, gantl_sum(ctx, gantl_square(ctx, gs), 1, (int[]){1}, 0)));
    expect_close(ctx, len, "pl.len", 1e-5, 1e-4);
    gantl_tensor *gw;
    gantl_grad(ctx, 1, &len, NULL, 1, &w, &gw, 0);
    expect_close(ctx, gw, "pl.g_w", 1e-5, 1e-4);
    gantl_ctx_free(ctx);
}

static void run_golden_tests(void) {
    RUN(test_golden_convolutions);
    RUN(test_golden_upfirdn2d);
    RUN(test_golden_bias_act);
    RUN(test_golden_matmul_and_elementwise);
    RUN(test_golden_shapes);
    RUN(test_golden_batch_norm);
    RUN(test_golden_optimizers);
    RUN(test_golden_r1_grad_of_grad);
    RUN(test_golden_path_length_grad_of_grad);
    if (golden_loaded > 0) gantl_st_free(&golden_file);
    golden_loaded = 0;
}
