/* ADA augmentation: gradient checks (first and second order) of the resampling ops it adds
   (grid_sample, reflect padding, their adjoints, separable upfirdn2d). Included by
   tests/test_main.c after test_core.c (uses its gc harness). */

/* ---------------------------------------------------------------------------------------
   The ops
   ------------------------------------------------------------------------------------- */

static gantl_tensor *f_grid_sample(gantl_ctx *c, gantl_tensor **x, const void *a) {
    (void)a;
    return gantl_square(c, gantl_grid_sample(c, x[0], x[1]));
}
static gantl_tensor *f_grid_sample_adj(gantl_ctx *c, gantl_tensor **x, const void *a) {
    const int64_t *hw = (const int64_t *)a;
    return gantl_square(c, gantl__grid_sample_adj(c, x[0], x[1], hw[0], hw[1]));
}
static gantl_tensor *f_pad_reflect(gantl_ctx *c, gantl_tensor **x, const void *a) {
    return gantl_square(c, gantl_pad_reflect(c, x[0], (const int *)a));
}
static gantl_tensor *f_pad_reflect_adj(gantl_ctx *c, gantl_tensor **x, const void *a) {
    const int *p = (const int *)a;
    int32_t pad[4] = {p[0], p[1], p[2], p[3]};
    return gantl_square(c, gantl__pad_reflect_adj(c, x[0], pad));
}
/* an upfirdn2d with a 1-D (separable) filter; x[1] is the filter */
static gantl_tensor *f_upfirdn_sep(gantl_ctx *c, gantl_tensor **x, const void *a) {
    const fir_arg *p = (const fir_arg *)a;
    return gantl_square(c, gantl_upfirdn2d(c, x[0], x[1], p->up, p->down, p->pad, p->flip, p->gain));
}

/* A grid of (x, y) in [-1.15, 1.15]: some samples fall partly or wholly outside the image.
   grid_sample is linear in x, so the grid needs no distance from pixel boundaries. */
static float *aug_grid_data(int64_t n, int64_t Ho, int64_t Wo, uint64_t seed) {
    return gc_data(n * Ho * Wo * 2, seed, -1.15f, 1.15f);
}

static void test_grad_grid_sample(void) {
    for (int k = 0; k < 2; k++) {
        gc_case c;
        memset(&c, 0, sizeof c);
        c.label = k ? "grid_sample (upsampling)" : "grid_sample";
        c.f = f_grid_sample;
        c.n = 2;
        int64_t N = 2, C = 2, H = 5, W = 6, Ho = k ? 9 : 4, Wo = k ? 7 : 5;
        c.in[0] = gc_in(4, N, C, H, W, gc_data(N * C * H * W, 300 + k, -1, 1), 1);
        c.in[1] = gc_in(4, N, Ho, Wo, 2, aug_grid_data(N, Ho, Wo, 310 + k), 0);
        gc_run(&c);
        gc_free(&c);
    }
    int64_t hw[2] = {5, 6};
    gc_case c;
    memset(&c, 0, sizeof c);
    c.label = "grid_sample_adj";
    c.f = f_grid_sample_adj;
    c.arg = hw;
    c.n = 2;
    c.in[0] = gc_in(4, 2, 2, 4, 7, gc_data(2 * 2 * 4 * 7, 320, -1, 1), 1);
    c.in[1] = gc_in(4, 2, 4, 7, 2, aug_grid_data(2, 4, 7, 321), 0);
    gc_run(&c);
    gc_free(&c);
}

static void test_grad_pad_reflect(void) {
    int pads[3][4] = {{2, 1, 3, 0}, {4, 4, 3, 3}, {0, 0, 1, 2}}; /* the largest: size - 1 */
    for (int k = 0; k < 3; k++) {
        gc_case c;
        memset(&c, 0, sizeof c);
        c.label = "pad_reflect";
        c.f = f_pad_reflect;
        c.arg = pads[k];
        c.n = 1;
        c.in[0] = gc_in(4, 2, 2, 4, 5, gc_data(80, 330 + k, -1, 1), 1);
        gc_run(&c);
        gc_free(&c);
        memset(&c, 0, sizeof c);
        c.label = "pad_reflect_adj";
        c.f = f_pad_reflect_adj;
        c.arg = pads[k];
        c.n = 1;
        int64_t Hp = 4 + pads[k][2] + pads[k][3], Wp = 5 + pads[k][0] + pads[k][1];
        c.in[0] = gc_in(4, 2, 2, Hp, Wp, gc_data(4 * Hp * Wp, 340 + k, -1, 1), 1);
        gc_run(&c);
        gc_free(&c);
    }
}

static void test_grad_upfirdn2d_separable(void) {
    fir_arg args[4] = {
        {2, 1, {6, 5, 6, 5}, 0, 4.0f},  /* upsample2d with 12 taps */
        {1, 2, {-1, -1, -1, -1}, 1, 1.0f}, /* the ADA downsample: crop, flipped */
        {1, 1, {2, 0, 1, 3}, 0, 1.5f},
        {2, 2, {3, 2, 1, 4}, 1, 2.0f},
    };
    int64_t taps[4] = {12, 12, 3, 5};
    for (int k = 0; k < 4; k++) {
        gc_case c;
        memset(&c, 0, sizeof c);
        c.label = "upfirdn2d separable";
        c.f = f_upfirdn_sep;
        c.arg = &args[k];
        c.n = 2;
        int64_t H = k == 1 ? 14 : 5, W = k == 1 ? 16 : 6;
        c.in[0] = gc_in(4, 2, 2, H, W, gc_data(4 * H * W, 350 + k, -1, 1), 1);
        c.in[1] = gc_in(1, taps[k], 1, 1, 1, gc_data(taps[k], 360 + k, -0.5f, 1), 0);
        gc_run(&c);
        gc_free(&c);
    }
}

/* <A x, y> == <x, A^T y> for grid_sample and pad_reflect with their adjoint ops; forward
   values of simple cases; the separable filter equals its outer product. */
static void test_augment_ops_values(void) {
    gantl_ctx *ctx = gantl_ctx_new(0);
    gantl_rng rng = gantl_rng_new(77);
    int64_t xs[4] = {2, 3, 6, 7}, gs[4] = {2, 5, 8, 2}, ys[4] = {2, 3, 5, 8};
    gantl_tensor *x = gantl_randn(ctx, &rng, 4, xs), *y = gantl_randn(ctx, &rng, 4, ys);
    gantl_tensor *grid = gantl_rand(ctx, &rng, 4, gs);
    for (int64_t i = 0; i < grid->numel; i++) grid->data[i] = grid->data[i] * 2.4f - 1.2f;
    gantl_tensor *ax = gantl_grid_sample(ctx, x, grid), *aty = gantl__grid_sample_adj(ctx, y, grid, 6, 7);
    double d1 = 0, d2 = 0;
    for (int64_t i = 0; i < ax->numel; i++) d1 += (double)ax->data[i] * y->data[i];
    for (int64_t i = 0; i < x->numel; i++) d2 += (double)x->data[i] * aty->data[i];
    CHECK_NEAR(d1, d2, 1e-4 * (fabs(d1) + 1));

    int pad[4] = {3, 6, 5, 2};
    int32_t pad32[4] = {3, 6, 5, 2};
    int64_t ps[4] = {2, 3, 6 + 7, 7 + 9};
    gantl_tensor *px = gantl_pad_reflect(ctx, x, pad), *py = gantl_randn(ctx, &rng, 4, ps);
    gantl_tensor *pty = gantl__pad_reflect_adj(ctx, py, pad32);
    CHECK(px->shape[2] == 13 && px->shape[3] == 16 && pty->shape[2] == 6 && pty->shape[3] == 7);
    d1 = d2 = 0;
    for (int64_t i = 0; i < px->numel; i++) d1 += (double)px->data[i] * py->data[i];
    for (int64_t i = 0; i < x->numel; i++) d2 += (double)x->data[i] * pty->data[i];
    CHECK_NEAR(d1, d2, 1e-4 * (fabs(d1) + 1));

    /* reflect: a row 0..4 padded by 3 / 2 is 3 2 1 0 1 2 3 4 3 2 (the edge is not repeated) */
    float row[5] = {0, 1, 2, 3, 4}, want[10] = {3, 2, 1, 0, 1, 2, 3, 4, 3, 2};
    int64_t rs[4] = {1, 1, 1, 5};
    int rpad[4] = {3, 2, 0, 0};
    gantl_tensor *r = gantl_pad_reflect(ctx, gantl_from_data(ctx, 4, rs, row), rpad);
    CHECK_ALLCLOSE(r->data, want, 10, 0, 0);

    /* grid_sample at pixel centres reproduces the image; halfway between two pixels it
       averages them; beyond the outer edge it fades to zero */
    int64_t is[4] = {1, 1, 2, 4}, g1s[4] = {1, 1, 4, 2};
    float img[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    float pts[8] = {-0.75f, -0.5f, 0.0f, -0.5f, 0.75f, 0.5f, 1.0f, 0.5f}; /* (x, y) */
    gantl_tensor *s = gantl_grid_sample(ctx, gantl_from_data(ctx, 4, is, img), gantl_from_data(ctx, 4, g1s, pts));
    float swant[4] = {1, 2.5f, 8, 4};
    CHECK_ALLCLOSE(s->data, swant, 4, 1e-6, 1e-6);

    /* a 1-D filter is applied separably; the result equals its outer product's */
    int64_t fs1 = 5, fs2[2] = {5, 5};
    float f1[5] = {0.1f, -0.3f, 0.7f, 0.2f, 0.05f};
    gantl_tensor *f = gantl_from_data(ctx, 1, &fs1, f1), *f2 = gantl_new(ctx, 2, fs2);
    for (int i = 0; i < 5; i++)
        for (int j = 0; j < 5; j++) f2->data[i * 5 + j] = f1[i] * f1[j];
    int fpads[2][4] = {{3, 2, 3, 2}, {1, 2, 0, -1}};
    for (int k = 0; k < 2; k++) {
        gantl_tensor *a1 = gantl_upfirdn2d(ctx, x, f, 2 - k, 1 + k, fpads[k], k, 2.0f);
        gantl_tensor *a2 = gantl_upfirdn2d(ctx, x, f2, 2 - k, 1 + k, fpads[k], k, 2.0f);
        CHECK(gantl_same_shape(a1, a2));
        if (gantl_same_shape(a1, a2)) CHECK_ALLCLOSE(a1->data, a2->data, a1->numel, 1e-6, 1e-5);
    }
    gantl_ctx_free(ctx);
}

static void run_augment_tests(void) {
    gc_ctx = gantl_ctx_new(0); /* the gc harness' context (run_core_tests frees its own) */
    RUN(test_grad_grid_sample);
    RUN(test_grad_pad_reflect);
    RUN(test_grad_upfirdn2d_separable);
    RUN(test_augment_ops_values);
    gantl_ctx_free(gc_ctx);
    gc_ctx = NULL;
}
