/* ADA augmentation: gradient checks (first and second order) of the resampling ops it adds
   (grid_sample, reflect padding, their adjoints, separable upfirdn2d), the pipeline against
   tests/fixtures/ada.safetensors (written by tools/gen_ada_fixtures.py from tools/ada_ref.py,
   itself bit-exact against the official AugmentPipe), the adaptive p, and the statistics of
   gantl's own draws. Included by tests/test_main.c after test_core.c (uses its gc harness). */

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
    /* (up, down, pad x0 x1 y0 y1, flip): the separable passes' fast paths vs the 2-D kernel */
    int cfg[8][7] = {{2, 1, 3, 2, 3, 2, 0}, {1, 2, 1, 2, 0, -1, 1}, {2, 2, 1, 4, -2, 3, 0}, {3, 1, 2, 2, 4, 0, 1},
                     {1, 3, -1, 5, 2, 2, 0}, {1, 1, 0, 0, 0, 0, 1}, {2, 1, -3, -2, 6, -4, 1}, {1, 2, 7, -3, -1, 6, 0}};
    for (int k = 0; k < 8; k++) {
        const int *q = cfg[k];
        gantl_tensor *a1 = gantl_upfirdn2d(ctx, x, f, q[0], q[1], q + 2, q[6], 2.0f);
        gantl_tensor *a2 = gantl_upfirdn2d(ctx, x, f2, q[0], q[1], q + 2, q[6], 2.0f);
        CHECK(gantl_same_shape(a1, a2));
        if (gantl_same_shape(a1, a2)) CHECK_ALLCLOSE(a1->data, a2->data, a1->numel, 1e-6, 1e-5);
    }
    gantl_ctx_free(ctx);
}

/* ---------------------------------------------------------------------------------------
   Against the reference fixtures
   ------------------------------------------------------------------------------------- */

static gantl_st_file aug_file;
static int aug_loaded;

static const gantl_st_file *aug_fixture(void) {
    if (!aug_loaded) {
        gantl_status s = gantl_st_load(&aug_file, "tests/fixtures/ada.safetensors");
        CHECK_MSG(s == GANTL_OK, "cannot load the ADA fixture: %s", gantl_last_error());
        aug_loaded = s == GANTL_OK ? 1 : -1;
    }
    return aug_loaded > 0 ? &aug_file : NULL;
}

static int aug_has(const char *name) {
    const gantl_st_file *f = aug_fixture();
    return f && gantl_st_find(f, name) != NULL;
}

/* The fixture tensor as a leaf (NULL and a failed check if missing). */
static gantl_tensor *aug_fx(gantl_ctx *ctx, const char *name) {
    const gantl_st_file *f = aug_fixture();
    const gantl_st_tensor *t = f ? gantl_st_find(f, name) : NULL;
    CHECK_MSG(t != NULL, "fixture tensor '%s' missing", name);
    if (!t) return NULL;
    gantl_tensor *x = gantl_new(ctx, t->ndim, t->shape);
    gantl_st_read_f32(f, name, x->data, x->numel, 0, NULL);
    return x;
}

/* The fixture's values as doubles (for the float64 adaptive-p tensors). */
static int aug_read_f64(const char *name, double *out, int64_t n) {
    const gantl_st_file *f = aug_fixture();
    const gantl_st_tensor *t = f ? gantl_st_find(f, name) : NULL;
    CHECK_MSG(t && t->numel == n && t->dtype == GANTL_F64, "fixture tensor '%s' missing or not (%lld,) float64", name,
              (long long)n);
    if (!(t && t->numel == n && t->dtype == GANTL_F64)) return 0;
    memcpy(out, t->bytes, (size_t)n * sizeof(double));
    return 1;
}

static double aug_max_abs(const float *v, int64_t n) {
    double m = 0;
    for (int64_t i = 0; i < n; i++) m = fmax(m, fabs((double)v[i]));
    return m;
}

/* max |got - ref| <= rel * max |ref| + abs; returns the error relative to that scale. */
static double aug_expect(const float *got, int64_t n, const char *name, double rel, double abs_tol) {
    gantl_ctx *ctx = gantl_ctx_new(0);
    gantl_tensor *ref = aug_fx(ctx, name);
    double rel_err = INFINITY;
    CHECK_MSG(got != NULL, "%s: no result", name);
    if (ref && got) {
        CHECK_MSG(ref->numel == n, "%s: %lld values, fixture %lld", name, (long long)n, (long long)ref->numel);
        if (ref->numel == n) {
            double scale = aug_max_abs(ref->data, n), worst = 0;
            int64_t at = 0;
            for (int64_t i = 0; i < n; i++) {
                double e = fabs((double)got[i] - (double)ref->data[i]);
                if (!(e <= worst)) worst = e != e ? INFINITY : e, at = i;
            }
            rel_err = worst / (scale > 0 ? scale : 1);
            CHECK_MSG(worst <= rel * scale + abs_tol, "%s: element %lld is %.9g, reference %.9g (error %.3g, scale %.3g)",
                      name, (long long)at, got[at], ref->data[at], worst, scale);
        }
    }
    gantl_ctx_free(ctx);
    return rel_err;
}

/* The case's augment settings and its stored draws. */
static int aug_case_setup(gantl_ctx *ctx, const char *cs, gantl_augment *a, gantl_augment_draws *d,
                          gantl_tensor **x_out) {
    char key[160];
    snprintf(key, sizeof key, "%s.x", cs);
    gantl_tensor *x = aug_fx(ctx, key);
    snprintf(key, sizeof key, "%s.p", cs);
    gantl_tensor *p = aug_fx(ctx, key);
    snprintf(key, sizeof key, "%s.ops", cs);
    gantl_tensor *ops = aug_fx(ctx, key);
    if (!x || !p || !ops || ops->numel != GANTL_AUG_NUM_OPS) return 0;
    gantl_augment_init(a, p->data[0], 0.6, 500.0f);
    memcpy(a->op_mult, ops->data, sizeof a->op_mult);
    if (gantl_augment_draws_alloc(ctx, x->shape[0], (int)x->shape[1], d) != GANTL_OK) return 0;
    const char *parts[4] = {"raw", "gate", "mask", "value"};
    for (int k = 0; k < GANTL_AUG_NUM_STEPS; k++)
        for (int j = 0; j < 4; j++) {
            float *dst = j == 0 ? d->raw[k] : j == 1 ? d->gate[k] : j == 2 ? d->mask[k] : d->value[k];
            int64_t n = d->batch * (j == 0 || j == 3 ? gantl_aug_step_width(k) : 1);
            snprintf(key, sizeof key, "%s.draw.%s.%s", cs, gantl_aug_step_name(k), parts[j]);
            gantl_tensor *t = aug_fx(ctx, key);
            CHECK_MSG(t && t->numel == n, "%s: %lld values expected", key, (long long)n);
            if (!t || t->numel != n) return 0;
            memcpy(dst, t->data, (size_t)n * sizeof(float));
        }
    *x_out = x;
    return 1;
}

static const char *const AUG_CASES[] = {
    "rgb16_p0", "rgb16_p0.3", "rgb16_p1", "grey32_p0.3", "grey32_p1", "rgb12x20_p1", "only_xflip", "only_rotate90",
    "only_xint", "only_scale", "only_rotate", "only_aniso", "only_xfrac", "only_brightness", "only_contrast",
    "only_lumaflip", "only_hue", "only_saturation", "r1"};
#define AUG_NUM_CASES ((int)(sizeof AUG_CASES / sizeof AUG_CASES[0]))

/* Gating and values recomputed from the stored raw and gate samples. */
static void test_augment_fixture_gating(void) {
    for (int ci = 0; ci < AUG_NUM_CASES; ci++) {
        gantl_ctx *ctx = gantl_ctx_new(0);
        gantl_augment a;
        gantl_augment_draws d, e;
        gantl_tensor *x;
        if (!aug_case_setup(ctx, AUG_CASES[ci], &a, &d, &x) ||
            gantl_augment_draws_alloc(ctx, d.batch, d.channels, &e) != GANTL_OK) {
            gantl_ctx_free(ctx);
            continue;
        }
        for (int k = 0; k < GANTL_AUG_NUM_STEPS; k++) {
            int w = gantl_aug_step_width(k);
            memcpy(e.raw[k], d.raw[k], (size_t)(d.batch * w) * sizeof(float));
            memcpy(e.gate[k], d.gate[k], (size_t)d.batch * sizeof(float));
        }
        gantl_augment_gate(&a, &e);
        for (int k = 0; k < GANTL_AUG_NUM_STEPS; k++) {
            int w = gantl_aug_step_width(k);
            for (int64_t i = 0; i < d.batch; i++) {
                CHECK_MSG(e.mask[k][i] == d.mask[k][i] && e.gate[k][i] == d.gate[k][i], "%s: %s mask %lld: %g, ref %g",
                          AUG_CASES[ci], gantl_aug_step_name(k), (long long)i, e.mask[k][i], d.mask[k][i]);
                for (int j = 0; j < w; j++) {
                    float got = e.value[k][i * w + j], ref = d.value[k][i * w + j];
                    CHECK_MSG(fabsf(got - ref) <= 2e-7f * fmaxf(1.0f, fabsf(ref)), "%s: %s value %lld: %.9g, ref %.9g",
                              AUG_CASES[ci], gantl_aug_step_name(k), (long long)i, got, ref);
                }
            }
        }
        gantl_ctx_free(ctx);
    }
}

/* The filter, matrices, padding and theta from the stored draws. */
static void test_augment_fixture_matrices_and_plan(void) {
    gantl_ctx *ctx = gantl_ctx_new(0);
    gantl_tensor *hz = aug_fx(ctx, "ada.hz_geom");
    if (hz) {
        float sum = 0.0f, f[12];
        for (int k = 0; k < 12; k++) sum += (float)gantl__sym6[k];
        for (int k = 0; k < 12; k++) f[k] = (float)gantl__sym6[k] / sum;
        CHECK_ALLCLOSE(f, hz->data, 12, 0, 1.5e-7);
    }
    gantl_ctx_free(ctx);
    for (int ci = 0; ci < AUG_NUM_CASES; ci++) {
        const char *cs = AUG_CASES[ci];
        char key[160];
        ctx = gantl_ctx_new(0);
        gantl_augment a;
        gantl_augment_draws d;
        gantl_tensor *x;
        if (!aug_case_setup(ctx, cs, &a, &d, &x)) {
            gantl_ctx_free(ctx);
            continue;
        }
        int64_t B = x->shape[0], H = x->shape[2], W = x->shape[3];
        int stages = gantl__aug_stages(&a, (int)x->shape[1]);
        snprintf(key, sizeof key, "%s.G", cs);
        CHECK_MSG(!!(stages & 1) == aug_has(key), "%s: geometric stage %d, fixture G %d", cs, stages & 1, aug_has(key));
        if (stages & 1 && aug_has(key)) {
            float *G = (float *)malloc((size_t)B * 9 * sizeof(float)), *theta = (float *)malloc((size_t)B * 6 * sizeof(float));
            gantl__aug_geom_matrices(&a, &d, H, W, G);
            aug_expect(G, B * 9, key, 1e-6, 1e-6);
            int pad[4];
            gantl__aug_geom_plan(G, B, H, W, pad, theta);
            snprintf(key, sizeof key, "%s.pad", cs);
            gantl_tensor *rp = aug_fx(ctx, key);
            if (rp)
                CHECK_MSG(pad[0] == rp->data[0] && pad[1] == rp->data[1] && pad[2] == rp->data[2] && pad[3] == rp->data[3],
                          "%s: pad (%d, %d, %d, %d), reference (%g, %g, %g, %g)", cs, pad[0], pad[1], pad[2], pad[3],
                          rp->data[0], rp->data[1], rp->data[2], rp->data[3]);
            snprintf(key, sizeof key, "%s.theta", cs);
            aug_expect(theta, B * 6, key, 1e-6, 1e-7);
            /* the plan from the reference's own G (isolates the padding arithmetic) */
            snprintf(key, sizeof key, "%s.G", cs);
            gantl_tensor *rg = aug_fx(ctx, key);
            if (rg && rp) {
                gantl__aug_geom_plan(rg->data, B, H, W, pad, theta);
                CHECK_MSG(pad[0] == rp->data[0] && pad[1] == rp->data[1] && pad[2] == rp->data[2] && pad[3] == rp->data[3],
                          "%s: pad from the reference G (%d, %d, %d, %d)", cs, pad[0], pad[1], pad[2], pad[3]);
            }
            free(G);
            free(theta);
        }
        snprintf(key, sizeof key, "%s.C", cs);
        CHECK_MSG(!!(stages & 2) == aug_has(key), "%s: colour stage %d, fixture C %d", cs, !!(stages & 2), aug_has(key));
        if (stages & 2 && aug_has(key)) {
            float *C = (float *)malloc((size_t)B * 16 * sizeof(float));
            gantl__aug_color_matrices(&a, &d, C);
            aug_expect(C, B * 16, key, 1e-6, 1e-6);
            free(C);
        }
        gantl_ctx_free(ctx);
    }
}

/* Outputs (geometric stage alone and the whole pipeline) and the input gradient of sum(y*r). */
static void test_augment_fixture_outputs(void) {
    double worst_y = 0, worst_g = 0;
    for (int ci = 0; ci < AUG_NUM_CASES; ci++) {
        const char *cs = AUG_CASES[ci];
        char key[160];
        gantl_ctx *ctx = gantl_ctx_new(0);
        gantl_augment a;
        gantl_augment_draws d;
        gantl_tensor *x;
        if (!aug_case_setup(ctx, cs, &a, &d, &x)) {
            gantl_ctx_free(ctx);
            continue;
        }
        snprintf(key, sizeof key, "%s.yg", cs);
        if (aug_has(key)) {
            gantl_augment geom = a;
            for (int k = GANTL_AUG_BRIGHTNESS; k < GANTL_AUG_NUM_OPS; k++) geom.op_mult[k] = 0.0f;
            gantl_tensor *yg = gantl_augment_apply_draws(ctx, &geom, x, &d);
            if (yg) aug_expect(yg->data, yg->numel, key, 1e-5, 0);
        }
        gantl_requires_grad(x);
        gantl_tensor *y = gantl_augment_apply_draws(ctx, &a, x, &d);
        snprintf(key, sizeof key, "%s.y", cs);
        if (y) worst_y = fmax(worst_y, aug_expect(y->data, y->numel, key, 1e-5, 0));
        snprintf(key, sizeof key, "%s.r", cs);
        gantl_tensor *r = aug_fx(ctx, key), *gx = NULL;
        if (y && r && r->numel == y->numel) {
            r = gantl_reshape(ctx, r, 4, y->shape);
            gantl_grad(ctx, 1, &y, &r, 1, &x, &gx, 0);
            snprintf(key, sizeof key, "%s.gx", cs);
            if (gx) worst_g = fmax(worst_g, aug_expect(gx->data, gx->numel, key, 1e-5, 0));
        }
        gantl_ctx_free(ctx);
    }
    printf("     ada fixtures: worst output error %.2g, input gradient %.2g (relative to the largest value)\n",
           worst_y, worst_g);
}

/* D(y) = sum_{o,h,w} w2[o] * lrelu_0.2(conv2d(y, w1, pad 1) + b1[o]) */
static gantl_tensor *aug_tiny_d(gantl_ctx *ctx, gantl_tensor *y, gantl_tensor *w1, gantl_tensor *b1, gantl_tensor *w2) {
    int64_t cs[4] = {1, w1->shape[0], 1, 1};
    int axes[3] = {1, 2, 3};
    gantl_tensor *z = gantl_leaky_relu(ctx, gantl_add(ctx, gantl_conv2d(ctx, y, w1, 1, 1, 1), gantl_reshape(ctx, b1, 4, cs)), 0.2f);
    return gantl_sum(ctx, gantl_mul(ctx, z, gantl_reshape(ctx, w2, 4, cs)), 3, axes, 0);
}

/* R1 through the pipeline: the weight gradients of the squared input-gradient norm. */
static void test_augment_fixture_r1(void) {
    gantl_ctx *ctx = gantl_ctx_new(0);
    gantl_augment a;
    gantl_augment_draws d;
    gantl_tensor *x;
    if (!aug_case_setup(ctx, "r1", &a, &d, &x)) {
        gantl_ctx_free(ctx);
        return;
    }
    gantl_tensor *w[3] = {aug_fx(ctx, "r1.w1"), aug_fx(ctx, "r1.b1"), aug_fx(ctx, "r1.w2")};
    if (!w[0] || !w[1] || !w[2]) {
        gantl_ctx_free(ctx);
        return;
    }
    for (int i = 0; i < 3; i++) gantl_requires_grad(w[i]);
    gantl_requires_grad(x);
    gantl_tensor *score = aug_tiny_d(ctx, gantl_augment_apply_draws(ctx, &a, x, &d), w[0], w[1], w[2]);
    gantl_tensor *total = gantl_sum_all(ctx, score), *gx = NULL;
    gantl_grad(ctx, 1, &total, NULL, 1, &x, &gx, 1);
    CHECK(gx != NULL);
    if (!gx) {
        gantl_ctx_free(ctx);
        return;
    }
    aug_expect(gx->data, gx->numel, "r1.gx_r1", 1e-5, 0);
    int axes[3] = {1, 2, 3};
    gantl_tensor *pen = gantl_sum(ctx, gantl_square(ctx, gx), 3, axes, 0);
    aug_expect(pen->data, pen->numel, "r1.penalty", 1e-5, 0);
    gantl_tensor *loss = gantl_sum_all(ctx, pen), *gw[3];
    gantl_grad(ctx, 1, &loss, NULL, 3, w, gw, 0);
    /* the weight gradients are ~1e4: compare relative to the largest of them */
    gantl_tensor *ref1 = aug_fx(ctx, "r1.g_w1"), *ref3 = aug_fx(ctx, "r1.g_w2");
    double scale = fmax(ref1 ? aug_max_abs(ref1->data, ref1->numel) : 0, ref3 ? aug_max_abs(ref3->data, ref3->numel) : 0);
    const char *names[3] = {"r1.g_w1", "r1.g_b1", "r1.g_w2"};
    double worst = 0;
    for (int i = 0; i < 3; i++) {
        double e = aug_expect(gw[i]->data, gw[i]->numel, names[i], 0, 1e-5 * scale);
        gantl_tensor *ref = aug_fx(ctx, names[i]);
        if (ref) worst = fmax(worst, e * aug_max_abs(ref->data, ref->numel) / scale);
    }
    printf("     ada r1: weight gradients (largest %.3g) within %.2g of it\n", scale, worst);
    gantl_ctx_free(ctx);
}

static void aug_ada_sequence(const char *name) {
    char key[64];
    double params[4], signs[12], p[13];
    snprintf(key, sizeof key, "%s.params", name);
    int ok = aug_read_f64(key, params, 4);
    snprintf(key, sizeof key, "%s.signs", name);
    ok = ok && aug_read_f64(key, signs, 12);
    snprintf(key, sizeof key, "%s.p", name);
    ok = ok && aug_read_f64(key, p, 13);
    if (!ok) return;
    gantl_augment a;
    gantl_augment_init(&a, (float)p[0], params[3], (float)params[2]);
    a.ada_interval = (int)params[1];
    for (int t = 0; t < 12; t++) {
        a.sign_sum = signs[t]; /* one "logit" whose sign is the stored mean */
        a.sign_count = 1;
        gantl_augment_update(&a, (int64_t)params[0]);
        CHECK_MSG(a.p == (float)p[t + 1], "%s: step %d: p %.9g, reference %.9g", name, t, a.p, p[t + 1]);
        CHECK(a.sign_count == 0 && a.sign_sum == 0.0);
    }
}

static void test_augment_adaptive_p(void) {
    aug_ada_sequence("ada_p");
    aug_ada_sequence("ada_p100");
    /* statistics from logits: 3 positive, 1 negative, 1 zero -> mean 0.4 < 0.6: p goes down */
    gantl_ctx *ctx = gantl_ctx_new(0);
    float v[5] = {1.5f, 0.2f, -3.0f, 0.0f, 7.0f};
    int64_t n = 5;
    gantl_augment a;
    gantl_augment_init(&a, 0.01f, 0.6, 100.0f);
    gantl_augment_accumulate(&a, gantl_from_data(ctx, 1, &n, v));
    CHECK(a.sign_count == 5 && a.sign_sum == 2.0);
    gantl_augment_update(&a, 16);
    CHECK_NEAR(a.p, 0.01 - 16.0 * 4 / 100000.0, 1e-9);
    gantl_augment_accumulate(&a, gantl_from_data(ctx, 1, &n, v));
    gantl_augment_accumulate(&a, gantl_from_data(ctx, 1, &n, v));
    for (int i = 0; i < 5; i++) v[i] = 1.0f;
    gantl_augment_accumulate(&a, gantl_from_data(ctx, 1, &n, v)); /* mean (4 + 5) / 15 = 0.6: no change */
    float before = a.p;
    gantl_augment_update(&a, 16);
    CHECK(a.p == before);
    gantl_augment_update(&a, 16); /* no statistics: no change */
    CHECK(a.p == before);
    for (int i = 0; i < 1000; i++) { /* p never goes below 0 */
        gantl_augment_accumulate(&a, gantl_from_data(ctx, 1, &n, v));
        for (int j = 0; j < 5; j++) v[j] = -1.0f;
        gantl_augment_update(&a, 64);
    }
    CHECK(a.p == 0.0f);
    gantl_augment_init(&a, 0.25f, -1.0f, 500.0f); /* fixed p */
    gantl_augment_accumulate(&a, gantl_from_data(ctx, 1, &n, v));
    gantl_augment_update(&a, 64);
    CHECK(a.p == 0.25f && a.sign_count == 0);
    gantl_ctx_free(ctx);
}

/* ---------------------------------------------------------------------------------------
   gantl's own draws
   ------------------------------------------------------------------------------------- */

static void test_augment_draw_statistics(void) {
    gantl_ctx *ctx = gantl_ctx_new(0);
    const int64_t B = 20000;
    float ps[3] = {0.0f, 0.3f, 1.0f};
    for (int pi = 0; pi < 3; pi++) {
        gantl_augment a;
        gantl_augment_draws d;
        gantl_rng rng = gantl_rng_new(500 + (uint64_t)pi);
        gantl_augment_init(&a, ps[pi], 0.6, 500.0f);
        gantl_ctx_reset(ctx);
        gantl_random src = gantl_random_philox(&rng);
        CHECK(gantl_augment_draw(ctx, &a, &src, B, 3, &d) == GANTL_OK);
        float p_rot = 1.0f - sqrtf(1.0f - ps[pi]);
        for (int k = 0; k < GANTL_AUG_NUM_STEPS; k++) {
            int rot = gantl_aug_step_op(k) == GANTL_AUG_ROTATE, w = gantl_aug_step_width(k);
            double fired = 0, mean = 0, sq = 0;
            int in_range = 1;
            for (int64_t i = 0; i < B; i++) {
                fired += d.mask[k][i];
                CHECK_MSG(d.mask[k][i] == (d.gate[k][i] < (rot ? p_rot : ps[pi]) ? 1.0f : 0.0f), "mask vs gate");
                for (int j = 0; j < w; j++) {
                    float r = d.raw[k][i * w + j], v = d.value[k][i * w + j];
                    mean += r, sq += (double)r * r;
                    if (d.mask[k][i] == 0.0f) in_range &= v == gantl__aug_neutral[k];
                    switch (k) {
                    case GANTL_AUG_STEP_XFLIP: case GANTL_AUG_STEP_LUMAFLIP: in_range &= v == 0.0f || v == 1.0f; break;
                    case GANTL_AUG_STEP_ROTATE90: in_range &= v == floorf(v) && v >= 0.0f && v <= 3.0f; break;
                    case GANTL_AUG_STEP_XINT: in_range &= fabsf(v) <= 0.125f; break;
                    case GANTL_AUG_STEP_ROTATE_PRE: case GANTL_AUG_STEP_ROTATE_POST: case GANTL_AUG_STEP_HUE:
                        in_range &= fabsf(v) <= (float)GANTL__AUG_PI; break;
                    case GANTL_AUG_STEP_SCALE: case GANTL_AUG_STEP_ANISO: case GANTL_AUG_STEP_CONTRAST:
                    case GANTL_AUG_STEP_SATURATION: in_range &= v > 0.0f; break;
                    default: break;
                    }
                }
            }
            double frac = fired / (double)B, want = rot ? p_rot : ps[pi];
            mean /= (double)(B * w), sq /= (double)(B * w);
            CHECK_MSG(fabs(frac - want) < 0.015, "p %g: %s fired in %.4f of the samples, expected %.4f", ps[pi],
                      gantl_aug_step_name(k), frac, want);
            if (ps[pi] == 0.0f || ps[pi] == 1.0f) CHECK(frac == want);
            CHECK_MSG(in_range, "p %g: %s values out of range", ps[pi], gantl_aug_step_name(k));
            if (gantl__aug_normal[k])
                CHECK_MSG(fabs(mean) < 0.03 && fabs(sq - 1) < 0.05, "%s: normal raw mean %g, E[r^2] %g",
                          gantl_aug_step_name(k), mean, sq);
            else
                CHECK_MSG(fabs(mean - 0.5) < 0.01 && fabs(sq - 1.0 / 3) < 0.01, "%s: uniform raw mean %g, E[r^2] %g",
                          gantl_aug_step_name(k), mean, sq);
        }
        /* P(pre or post rotation) = p */
        double either = 0;
        for (int64_t i = 0; i < B; i++)
            either += d.mask[GANTL_AUG_STEP_ROTATE_PRE][i] > 0 || d.mask[GANTL_AUG_STEP_ROTATE_POST][i] > 0;
        CHECK_NEAR(either / (double)B, ps[pi], 0.015);
    }
    /* grey images draw no hue or saturation; disabled ops draw nothing */
    gantl_augment a;
    gantl_augment_draws d1, d2;
    gantl_augment_init(&a, 1.0f, 0.6, 500.0f);
    a.op_mult[GANTL_AUG_SCALE] = 0.0f;
    gantl_rng r1 = gantl_rng_new(9), r2 = gantl_rng_new(9);
    gantl_ctx_reset(ctx);
    gantl_random s1 = gantl_random_philox(&r1), s2 = gantl_random_philox(&r2);
    CHECK(gantl_augment_draw(ctx, &a, &s1, 8, 1, &d1) == GANTL_OK);
    CHECK(gantl_augment_draw(ctx, &a, &s2, 8, 3, &d2) == GANTL_OK);
    CHECK(r2.offset > r1.offset);
    for (int64_t i = 0; i < 8; i++) {
        CHECK(d1.mask[GANTL_AUG_STEP_HUE][i] == 0.0f && d1.value[GANTL_AUG_STEP_SATURATION][i] == 1.0f);
        CHECK(d1.gate[GANTL_AUG_STEP_SCALE][i] == 1.0f && d1.value[GANTL_AUG_STEP_SCALE][i] == 1.0f);
        CHECK(d2.mask[GANTL_AUG_STEP_HUE][i] == 1.0f && d2.mask[GANTL_AUG_STEP_XFLIP][i] == 1.0f);
        CHECK(d1.raw[GANTL_AUG_STEP_XFLIP][i] == d2.raw[GANTL_AUG_STEP_XFLIP][i]); /* same stream up to hue */
    }
    gantl_ctx_free(ctx);
}

static void test_augment_apply_reproducible_and_identity(void) {
    gantl_ctx *ctx = gantl_ctx_new(0);
    gantl_rng data = gantl_rng_new(3);
    int64_t s[4] = {4, 3, 16, 16};
    gantl_tensor *x = gantl_randn(ctx, &data, 4, s);
    gantl_augment a;
    gantl_augment_init(&a, 0.7f, 0.6, 500.0f);
    gantl_rng r1 = gantl_rng_new(42), r2 = gantl_rng_new(42), r3 = gantl_rng_new(43);
    gantl_tensor *y1 = gantl_augment_apply(ctx, &a, x, &r1), *y2 = gantl_augment_apply(ctx, &a, x, &r2);
    gantl_tensor *y3 = gantl_augment_apply(ctx, &a, x, &r3);
    CHECK(y1 && y2 && y3 && y1 != x && gantl_same_shape(y1, x));
    if (y1 && y2 && y3) {
        CHECK(memcmp(y1->data, y2->data, (size_t)y1->numel * sizeof(float)) == 0);
        CHECK(memcmp(y1->data, y3->data, (size_t)y1->numel * sizeof(float)) != 0);
    }
    /* every op disabled: the images themselves, no random numbers used */
    for (int k = 0; k < GANTL_AUG_NUM_OPS; k++) a.op_mult[k] = 0.0f;
    uint64_t before = r1.offset;
    CHECK(gantl_augment_apply(ctx, &a, x, &r1) == x && r1.offset == before);
    /* grey images with only hue and saturation: nothing runs */
    a.op_mult[GANTL_AUG_HUE] = a.op_mult[GANTL_AUG_SATURATION] = 1.0f;
    int64_t gs[4] = {2, 1, 8, 8};
    gantl_tensor *grey = gantl_randn(ctx, &data, 4, gs);
    CHECK(gantl_augment_apply(ctx, &a, grey, &r1) == grey);
    /* p = 0 with 'bgc': official behaviour, the geometric stage still filters (near identity) */
    gantl_augment_init(&a, 0.0f, 0.6, 500.0f);
    gantl_tensor *y0 = gantl_augment_apply(ctx, &a, x, &r1);
    CHECK(y0 && y0 != x);
    if (y0) {
        double err = 0, scale = aug_max_abs(x->data, x->numel);
        for (int64_t i = 0; i < x->numel; i++) err = fmax(err, fabs((double)y0->data[i] - x->data[i]));
        CHECK_MSG(err < 0.5 * scale && err > 0, "p = 0: max change %g of %g", err, scale);
    }
    gantl_ctx_free(ctx);
}

/* Second order through the whole pipeline with gantl's own draws: R1-style gradient of a
   gradient, checked against finite differences by the gc harness. */
static gantl_tensor *f_augment(gantl_ctx *c, gantl_tensor **x, const void *arg) {
    const gantl_augment *a = (const gantl_augment *)arg;
    gantl_rng rng = gantl_rng_new(11);
    return gantl_square(c, gantl_augment_apply(c, a, x[0], &rng));
}

static void test_grad_augment_pipeline(void) {
    gantl_augment a;
    gantl_augment_init(&a, 0.8f, 0.6, 500.0f);
    gc_case c;
    memset(&c, 0, sizeof c);
    c.label = "augment pipeline";
    c.f = f_augment;
    c.arg = &a;
    c.n = 1;
    c.in[0] = gc_in(4, 2, 3, 8, 8, gc_data(2 * 3 * 64, 380, -1, 1), 1);
    c.samples = 16;
    gc_run(&c);
    gc_free(&c);
}

static void run_augment_tests(void) {
    gc_ctx = gantl_ctx_new(0); /* the gc harness' context (run_core_tests frees its own) */
    RUN(test_grad_grid_sample);
    RUN(test_grad_pad_reflect);
    RUN(test_grad_upfirdn2d_separable);
    RUN(test_augment_ops_values);
    RUN(test_augment_fixture_gating);
    RUN(test_augment_fixture_matrices_and_plan);
    RUN(test_augment_fixture_outputs);
    RUN(test_augment_fixture_r1);
    RUN(test_augment_adaptive_p);
    RUN(test_augment_draw_statistics);
    RUN(test_augment_apply_reproducible_and_identity);
    RUN(test_grad_augment_pipeline);
    gantl_ctx_free(gc_ctx);
    gc_ctx = NULL;
    if (aug_loaded > 0) gantl_st_free(&aug_file);
    aug_loaded = 0;
}
