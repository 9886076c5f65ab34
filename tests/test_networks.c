/* StyleGAN2-ADA networks against tests/fixtures/sg2_*.safetensors, written by
   tools/gen_sg2_fixtures.py from tools/sg2_ref.py (itself bit-exact against the official
   implementation). Tolerances: the networks' outputs (ws, w_avg, images, logits) within 1e-4
   absolute (as the issue asks for outputs of order 1) and within 1e-4 of the tensor's largest
   value; other results (losses, path lengths, R1 terms) within 1e-4 of the tensor's largest
   value, gradients within 1e-4 of the largest gradient of their loss (as the fixture script
   recommends). */

typedef struct net_fixture {
    gantl_st_file f;
    int ok;
} net_fixture;

static int net_open(net_fixture *nf, const char *name) {
    char path[256];
    snprintf(path, sizeof path, "tests/fixtures/%s.safetensors", name);
    gantl_status s = gantl_st_load(&nf->f, path);
    CHECK_MSG(s == GANTL_OK, "cannot load %s: %s", path, gantl_last_error());
    nf->ok = s == GANTL_OK;
    return nf->ok;
}

static void net_close(net_fixture *nf) {
    if (nf->ok) gantl_st_free(&nf->f);
    nf->ok = 0;
}

/* A leaf with the fixture tensor's shape and values (NULL and a failed check if missing). */
static gantl_tensor *net_in(gantl_ctx *ctx, net_fixture *nf, const char *name) {
    const gantl_st_tensor *t = gantl_st_find(&nf->f, name);
    CHECK_MSG(t != NULL, "fixture tensor '%s' missing", name);
    if (!t) return NULL;
    gantl_tensor *x = gantl_new(ctx, t->ndim, t->shape);
    gantl_st_read_f32(&nf->f, name, x->data, x->numel, t->ndim, t->shape);
    return x;
}

static double net_max_abs(const float *v, int64_t n) {
    double m = 0;
    for (int64_t i = 0; i < n; i++) m = fmax(m, fabs((double)v[i]));
    return m;
}

/* got vs the fixture tensor name: max |got - ref| <= rel * scale. scale 0: the tensor's
   largest |value|; scale < 0: the smaller of that and -scale. */
static void net_expect(net_fixture *nf, const float *got, int64_t n, const char *name, double rel, double scale) {
    const gantl_st_tensor *t = gantl_st_find(&nf->f, name);
    CHECK_MSG(t != NULL, "fixture tensor '%s' missing", name);
    if (!t) return;
    CHECK_MSG(got != NULL && t->numel == n, "%s: %lld values, fixture has %lld", name, (long long)n, (long long)t->numel);
    if (!got || t->numel != n) return;
    float *ref = (float *)malloc((size_t)(n ? n : 1) * sizeof(float));
    gantl_st_read_f32(&nf->f, name, ref, n, 0, NULL);
    if (scale <= 0) scale = scale < 0 ? fmin(-scale, net_max_abs(ref, n)) : net_max_abs(ref, n);
    double worst = 0;
    int64_t at = 0;
    for (int64_t i = 0; i < n; i++) {
        double e = fabs((double)got[i] - (double)ref[i]);
        if (!(e <= worst)) worst = e != e ? INFINITY : e, at = i;
    }
    CHECK_MSG(worst <= rel * scale, "%s: element %lld is %.8g, reference %.8g (error %.3g > %.3g)", name,
              (long long)at, got[at], ref[at], worst, rel * scale);
    if (getenv("GANTL_TEST_VERBOSE")) printf("    %s: largest error %.3g, %.3g of the scale %.3g\n", name, worst, worst / scale, scale);
    free(ref);
}

static void net_expect_t(net_fixture *nf, const gantl_tensor *got, const char *name) {
    CHECK_MSG(got != NULL, "%s: no result", name);
    if (got) net_expect(nf, got->data, got->numel, name, 1e-4, 0);
}

/* A network output: within 1e-4 absolute, and within 1e-4 of the tensor's largest |value|. */
static void net_expect_out(net_fixture *nf, const gantl_tensor *got, const char *name) {
    CHECK_MSG(got != NULL, "%s: no result", name);
    if (got) net_expect(nf, got->data, got->numel, name, 1e-4, -1.0);
}

/* The largest |value| over every fixture tensor whose name starts with prefix. */
static double net_group_scale(net_fixture *nf, const char *prefix) {
    double m = 0;
    size_t n = strlen(prefix);
    for (int i = 0; i < nf->f.count; i++) {
        const gantl_st_tensor *t = &nf->f.tensors[i];
        if (strncmp(t->name, prefix, n) != 0) continue;
        float *v = (float *)malloc((size_t)(t->numel ? t->numel : 1) * sizeof(float));
        gantl_st_read_f32(&nf->f, t->name, v, t->numel, 0, NULL);
        m = fmax(m, net_max_abs(v, t->numel));
        free(v);
    }
    return m;
}

/* Every parameter gradient of P against grad.<loss>.<net prefix><name>. */
static void net_expect_grads(net_fixture *nf, const gantl_params *P, const char *loss, const char *net_prefix) {
    char group[64], name[256];
    snprintf(group, sizeof group, "grad.%s.", loss);
    double scale = net_group_scale(nf, group);
    CHECK_MSG(scale > 0, "no gradients for loss %s in the fixture", loss);
    for (int i = 0; i < P->count; i++) {
        snprintf(name, sizeof name, "grad.%s.%s%s", loss, net_prefix, P->tensors[i]->name);
        net_expect(nf, P->tensors[i]->grad, P->tensors[i]->numel, name, 1e-4, scale);
    }
}

/* in.noise.<module> for every noise layer, in the order synthesis uses them; the first
   `batch` samples when batch > 0. */
static void net_noise(gantl_ctx *ctx, net_fixture *nf, gantl_generator *G, gantl_tensor **noise, int64_t batch) {
    int k = 0;
    char name[128];
    for (int b = 0; b < G->num_blocks; b++) {
        const gantl_synthesis_block *B = &G->blocks[b];
        for (int l = B->in_channels ? 0 : 1; l < 2; l++) {
            snprintf(name, sizeof name, "in.noise.synthesis.b%d.conv%d", B->resolution, l);
            gantl_tensor *t = net_in(ctx, nf, name);
            noise[k++] = t && batch > 0 ? gantl_slice(ctx, t, 0, 0, batch) : t;
        }
    }
}

static gantl_tensor *net_slice0(gantl_ctx *ctx, gantl_tensor *t, int64_t n) { return t ? gantl_slice(ctx, t, 0, 0, n) : NULL; }

static void net_check_generator(const char *file) {
    net_fixture nf;
    if (!net_open(&nf, file)) return;
    gantl_generator G;
    gantl_status s = gantl_generator_from_file(&G, &nf.f, "G.");
    CHECK_MSG(s == GANTL_OK, "%s: %s", file, gantl_last_error());
    if (s != GANTL_OK) {
        net_close(&nf);
        return;
    }
    gantl_json meta;
    const char *fixture_meta = gantl_st_meta(&nf.f, "gantl.fixture");
    double psi = 0.7, pl_decay = 0.01, pl_weight = 2.0;
    int cutoff = 2;
    if (fixture_meta && gantl_json_parse(&meta, fixture_meta, strlen(fixture_meta)) == GANTL_OK) {
        const gantl_json *v;
        if ((v = gantl_json_get(&meta, "psi"))) psi = v->number;
        if ((v = gantl_json_get(&meta, "cutoff"))) cutoff = (int)v->number;
        if ((v = gantl_json_get(&meta, "pl_decay"))) pl_decay = v->number;
        if ((v = gantl_json_get(&meta, "pl_weight"))) pl_weight = v->number;
        gantl_json_free(&meta);
    }
    gantl_ctx *ctx = gantl_ctx_new(0);
    gantl_tensor *z = net_in(ctx, &nf, "in.z"), *c = G.cfg.c_dim ? net_in(ctx, &nf, "in.c") : NULL;
    gantl_tensor *noise[2 * GANTL_MAX_BLOCKS];
    /* mapping, truncation, and the three noise modes */
    gantl_set_grad_enabled(ctx, 0);
    gantl_tensor *ws = gantl_generator_mapping(ctx, &G, z, c, 1.0f, -1, 0);
    net_expect_out(&nf, ws, "out.ws");
    net_expect_out(&nf, gantl_generator_mapping(ctx, &G, z, c, (float)psi, -1, 0), "out.ws_trunc");
    net_expect_out(&nf, gantl_generator_mapping(ctx, &G, z, c, (float)psi, cutoff, 0), "out.ws_trunc_cutoff");
    net_expect_out(&nf, gantl_generator_synthesis(ctx, &G, ws, GANTL_NOISE_CONST, NULL, NULL), "out.img_const");
    net_expect_out(&nf, gantl_generator_synthesis(ctx, &G, ws, GANTL_NOISE_NONE, NULL, NULL), "out.img_none");
    net_expect_out(&nf, gantl_generator_synthesis(ctx, &G, net_in(ctx, &nf, "out.ws_trunc"), GANTL_NOISE_CONST, NULL, NULL),
                   "out.img_trunc");
    /* the training-mode moving average of w (on a copy of w_avg, restored after) */
    float *saved = (float *)malloc((size_t)G.cfg.w_dim * sizeof(float));
    memcpy(saved, G.mapping.w_avg->data, (size_t)G.cfg.w_dim * sizeof(float));
    gantl_generator_mapping(ctx, &G, z, c, 1.0f, -1, 1);
    net_expect(&nf, G.mapping.w_avg->data, G.cfg.w_dim, "out.w_avg_updated", 1e-4, -1.0);
    memcpy(G.mapping.w_avg->data, saved, (size_t)G.cfg.w_dim * sizeof(float));
    free(saved);
    gantl_set_grad_enabled(ctx, 1);
    /* random noise given explicitly, and the gradients of sum(img * R) */
    net_noise(ctx, &nf, &G, noise, 0);
    gantl_tensor *img = gantl_generator_synthesis(ctx, &G, gantl_generator_mapping(ctx, &G, z, c, 1.0f, -1, 0),
                                                  GANTL_NOISE_RANDOM, NULL, noise);
    net_expect_out(&nf, img, "out.img_random");
    gantl_params_zero_grad(&G.params);
    gantl_backward(ctx, gantl_sum_all(ctx, gantl_mul(ctx, img, net_in(ctx, &nf, "in.R"))));
    net_expect_grads(&nf, &G.params, "img", "G.");
    /* path-length regularisation on the first half of the batch: a gradient of a gradient */
    gantl_ctx_reset(ctx);
    int64_t half = z->shape[0] / 2;
    z = net_slice0(ctx, net_in(ctx, &nf, "in.z"), half);
    c = G.cfg.c_dim ? net_slice0(ctx, net_in(ctx, &nf, "in.c"), half) : NULL;
    net_noise(ctx, &nf, &G, noise, half);
    ws = gantl_generator_mapping(ctx, &G, z, c, 1.0f, -1, 0);
    img = gantl_generator_synthesis(ctx, &G, ws, GANTL_NOISE_RANDOM, NULL, noise);
    gantl_tensor *dot = gantl_sum_all(ctx, gantl_mul(ctx, img, net_in(ctx, &nf, "in.pl_noise"))), *gws;
    gantl_grad(ctx, 1, &dot, NULL, 1, &ws, &gws, 1);
    int axis1 = 1, axis2 = 2;
    gantl_tensor *lengths = gantl_sqrt(ctx, gantl_mean(ctx, gantl_sum(ctx, gantl_square(ctx, gws), 1, &axis2, 0), 1, &axis1, 0));
    net_expect_t(&nf, lengths, "out.pl_lengths");
    gantl_tensor *pl_mean = net_in(ctx, &nf, "in.pl_mean"); /* lerp(pl_mean, mean(lengths), decay), not detached */
    pl_mean = gantl_add(ctx, gantl_scale(ctx, pl_mean, (float)(1.0 - pl_decay)),
                        gantl_scale(ctx, gantl_mean_all(ctx, lengths), (float)pl_decay));
    net_expect_t(&nf, pl_mean, "out.pl_mean");
    gantl_tensor *loss_pl = gantl_scale(ctx, gantl_square(ctx, gantl_sub(ctx, lengths, pl_mean)), (float)pl_weight);
    net_expect_t(&nf, loss_pl, "out.loss_pl");
    gantl_params_zero_grad(&G.params);
    gantl_backward(ctx, gantl_mean_all(ctx, loss_pl));
    net_expect_grads(&nf, &G.params, "pl", "G.");
    CHECK(gantl_ctx_status(ctx) == GANTL_OK);
    gantl_ctx_free(ctx);
    gantl_generator_free(&G);
    net_close(&nf);
}

static void test_generator_parity(void) { net_check_generator("sg2_g"); }
static void test_generator_conditional_parity(void) { net_check_generator("sg2_gc"); }

static void net_check_discriminator(const char *file, double r1_gamma) {
    net_fixture nf;
    if (!net_open(&nf, file)) return;
    gantl_discriminator D;
    gantl_status s = gantl_discriminator_from_file(&D, &nf.f, "D.");
    CHECK_MSG(s == GANTL_OK, "%s: %s", file, gantl_last_error());
    if (s != GANTL_OK) {
        net_close(&nf);
        return;
    }
    gantl_ctx *ctx = gantl_ctx_new(0);
    gantl_tensor *real = gantl_requires_grad(net_in(ctx, &nf, "in.img_real"));
    gantl_tensor *fake = gantl_requires_grad(net_in(ctx, &nf, "in.img_fake"));
    gantl_tensor *c = D.cfg.c_dim ? net_in(ctx, &nf, "in.c") : NULL;
    /* D main loss: softplus(D(fake)) + softplus(-D(real)), gradients to D and to both inputs */
    gantl_tensor *lr = gantl_discriminator_forward(ctx, &D, real, c), *lf = gantl_discriminator_forward(ctx, &D, fake, c);
    net_expect_out(&nf, lr, "out.logits_real");
    net_expect_out(&nf, lf, "out.logits_fake");
    gantl_tensor *loss = gantl_add(ctx, gantl_mean_all(ctx, gantl_softplus(ctx, lf)),
                                   gantl_mean_all(ctx, gantl_softplus(ctx, gantl_neg(ctx, lr))));
    net_expect_t(&nf, loss, "out.loss_dmain");
    gantl_tensor *inputs[2] = {real, fake}, *gin[2];
    gantl_grad(ctx, 1, &loss, NULL, 2, inputs, gin, 0);
    double scale = net_group_scale(&nf, "grad.dmain.");
    net_expect(&nf, gin[0]->data, gin[0]->numel, "grad.dmain.in.img_real", 1e-4, scale);
    net_expect(&nf, gin[1]->data, gin[1]->numel, "grad.dmain.in.img_fake", 1e-4, scale);
    gantl_params_zero_grad(&D.params);
    gantl_backward(ctx, loss);
    net_expect_grads(&nf, &D.params, "dmain", "D.");
    /* R1: gamma/2 * |d sum D(real) / d real|^2, differentiated w.r.t. D's parameters */
    gantl_ctx_reset(ctx);
    real = gantl_requires_grad(net_in(ctx, &nf, "in.img_real"));
    c = D.cfg.c_dim ? net_in(ctx, &nf, "in.c") : NULL;
    gantl_tensor *sum = gantl_sum_all(ctx, gantl_discriminator_forward(ctx, &D, real, c)), *g;
    gantl_grad(ctx, 1, &sum, NULL, 1, &real, &g, 1);
    net_expect_t(&nf, g, "out.r1_grads");
    int axes[3] = {1, 2, 3};
    gantl_tensor *penalty = gantl_sum(ctx, gantl_square(ctx, g), 3, axes, 0);
    net_expect_t(&nf, penalty, "out.r1_penalty");
    gantl_tensor *loss_r1 = gantl_mean_all(ctx, gantl_scale(ctx, penalty, (float)(r1_gamma / 2)));
    net_expect_t(&nf, loss_r1, "out.loss_r1");
    gantl_params_zero_grad(&D.params);
    gantl_backward(ctx, loss_r1);
    net_expect_grads(&nf, &D.params, "r1", "D.");
    CHECK(gantl_ctx_status(ctx) == GANTL_OK);
    gantl_ctx_free(ctx);
    gantl_discriminator_free(&D);
    net_close(&nf);
}

static void test_discriminator_resnet_parity(void) { net_check_discriminator("sg2_d", 10.0); }
static void test_discriminator_orig_parity(void) { net_check_discriminator("sg2_d_orig", 10.0); }
static void test_discriminator_skip_parity(void) { net_check_discriminator("sg2_d_skip", 10.0); }
static void test_discriminator_conditional_parity(void) { net_check_discriminator("sg2_dc", 10.0); }
static void test_discriminator_one_channel_parity(void) { net_check_discriminator("sg2_d_gray", 10.0); }

/* G and D chained as in training: the G main loss through D, the D main loss on a detached fake. */
static void test_generator_through_discriminator_parity(void) {
    net_fixture nf;
    if (!net_open(&nf, "sg2_gd")) return;
    gantl_generator G;
    gantl_discriminator D;
    gantl_status sg = gantl_generator_from_file(&G, &nf.f, "G."), sd = gantl_discriminator_from_file(&D, &nf.f, "D.");
    CHECK_MSG(sg == GANTL_OK && sd == GANTL_OK, "sg2_gd: %s", gantl_last_error());
    if (sg != GANTL_OK || sd != GANTL_OK) {
        if (sg == GANTL_OK) gantl_generator_free(&G);
        if (sd == GANTL_OK) gantl_discriminator_free(&D);
        net_close(&nf);
        return;
    }
    gantl_ctx *ctx = gantl_ctx_new(0);
    gantl_tensor *noise[2 * GANTL_MAX_BLOCKS];
    net_noise(ctx, &nf, &G, noise, 0);
    gantl_tensor *img = gantl_generator_synthesis(
        ctx, &G, gantl_generator_mapping(ctx, &G, net_in(ctx, &nf, "in.z"), NULL, 1.0f, -1, 0), GANTL_NOISE_RANDOM, NULL, noise);
    net_expect_out(&nf, img, "out.img_fake");
    gantl_tensor *lf = gantl_discriminator_forward(ctx, &D, img, NULL);
    net_expect_out(&nf, lf, "out.logits_fake");
    gantl_tensor *loss_g = gantl_mean_all(ctx, gantl_softplus(ctx, gantl_neg(ctx, lf)));
    net_expect_t(&nf, loss_g, "out.loss_gmain");
    gantl_params_zero_grad(&G.params);
    gantl_params_zero_grad(&D.params);
    gantl_backward(ctx, loss_g);
    net_expect_grads(&nf, &G.params, "gmain", "G.");
    gantl_params_zero_grad(&D.params);
    gantl_tensor *lr = gantl_discriminator_forward(ctx, &D, net_in(ctx, &nf, "in.img_real"), NULL);
    net_expect_out(&nf, lr, "out.logits_real");
    gantl_tensor *lfd = gantl_discriminator_forward(ctx, &D, gantl_detach(ctx, img), NULL);
    gantl_tensor *loss_d = gantl_add(ctx, gantl_mean_all(ctx, gantl_softplus(ctx, lfd)),
                                     gantl_mean_all(ctx, gantl_softplus(ctx, gantl_neg(ctx, lr))));
    net_expect_t(&nf, loss_d, "out.loss_dmain");
    gantl_params_zero_grad(&G.params);
    gantl_backward(ctx, loss_d);
    net_expect_grads(&nf, &D.params, "dmain", "D.");
    CHECK(net_max_abs(G.params.grad, G.params.numel) == 0.0); /* the fake was detached */
    gantl_ctx_free(ctx);
    gantl_generator_free(&G);
    gantl_discriminator_free(&D);
    net_close(&nf);
}

/* Save and load give back the same network, bit for bit, with the kwargs in the metadata. */
static void test_checkpoint_round_trip(void) {
    net_fixture nf;
    if (!net_open(&nf, "sg2_gd")) return;
    gantl_generator G, G2;
    gantl_discriminator D, D2;
    if (gantl_generator_from_file(&G, &nf.f, "G.") != GANTL_OK || gantl_discriminator_from_file(&D, &nf.f, "D.") != GANTL_OK) {
        CHECK_MSG(0, "%s", gantl_last_error());
        net_close(&nf);
        return;
    }
    gantl_st_writer w;
    gantl_st_writer_init(&w);
    char gjson[1024], djson[1024];
    gantl_g_config_to_json(&G.cfg, gjson, sizeof gjson);
    gantl_d_config_to_json(&D.cfg, djson, sizeof djson);
    gantl_st_writer_meta(&w, "gantl.G", gjson);
    gantl_st_writer_meta(&w, "gantl.D", djson);
    CHECK(gantl_generator_write(&G, &w, "G.") == GANTL_OK);
    CHECK(gantl_generator_write(&G, &w, "G_ema.") == GANTL_OK);
    CHECK(gantl_discriminator_write(&D, &w, "D.") == GANTL_OK);
    CHECK(gantl_st_writer_save(&w, "build/test_ckpt.safetensors") == GANTL_OK);
    gantl_st_writer_free(&w);
    gantl_st_file f;
    CHECK(gantl_st_load(&f, "build/test_ckpt.safetensors") == GANTL_OK);
    CHECK(gantl_generator_from_file(&G2, &f, "G_ema.") == GANTL_OK);
    CHECK(gantl_discriminator_from_file(&D2, &f, "D.") == GANTL_OK);
    CHECK(G2.params.numel == G.params.numel && !memcmp(G2.params.data, G.params.data, (size_t)G.params.numel * 4));
    CHECK(!memcmp(G2.buffers.data, G.buffers.data, (size_t)G.buffers.numel * 4));
    CHECK(D2.params.numel == D.params.numel && !memcmp(D2.params.data, D.params.data, (size_t)D.params.numel * 4));
    CHECK(!memcmp(&G2.cfg, &G.cfg, sizeof G.cfg) && !memcmp(&D2.cfg, &D.cfg, sizeof D.cfg));
    gantl_st_free(&f);
    gantl_generator_free(&G2);
    gantl_discriminator_free(&D2);
    gantl_generator_free(&G);
    gantl_discriminator_free(&D);
    net_close(&nf);
    remove("build/test_ckpt.safetensors");
}

static int net_all_finite(const gantl_tensor *t) {
    if (!t) return 0;
    for (int64_t i = 0; i < t->numel; i++)
        if (!isfinite(t->data[i])) return 0;
    return 1;
}

static int net_has_shape(const gantl_tensor *t, int ndim, int64_t n0, int64_t n1, int64_t n2, int64_t n3) {
    return t && t->ndim == ndim && t->shape[0] == n0 && t->shape[1] == n1 && t->shape[2] == n2 && t->shape[3] == n3;
}

/* A freshly initialised G (and D when res >= 8) at resolution res with tiny channels
   (channel_base 1024, channel_max 4: 1 channel at 1024, 2 at 512, 4 below), run on a batch:
   shapes, block / ws / noise counts, the highest-resolution layer names and shapes in a
   written checkpoint, finite outputs, and the same images and logits bit for bit after the
   checkpoint is loaded back. */
static void net_smoke(int res, int channels, int64_t batch, gantl_d_arch arch) {
    int log2 = 0;
    while ((1 << log2) < res) log2++;
    gantl_g_config gc;
    gantl_g_config_default(&gc);
    gc.z_dim = gc.w_dim = 8, gc.mapping.num_layers = 2, gc.img_resolution = res, gc.img_channels = channels;
    gc.channel_base = 1024, gc.channel_max = 4, gc.conv_clamp = 256;
    gantl_d_config dc;
    gantl_d_config_default(&dc);
    dc.img_resolution = res, dc.img_channels = channels, dc.architecture = arch;
    dc.channel_base = 1024, dc.channel_max = 4, dc.mbstd_group_size = 2;
    int top_channels = 1024 / res < 4 ? 1024 / res : 4;
    gantl_generator G, G2;
    gantl_discriminator D, D2;
    int has_d = res >= 8;
    if (gantl_generator_init(&G, &gc, 5) != GANTL_OK) {
        CHECK_MSG(0, "G at %d: %s", res, gantl_last_error());
        return;
    }
    if (!has_d) { /* like the official one, D needs at least one block before the 4x4 epilogue */
        CHECK(gantl_discriminator_init(&D, &dc, 6) == GANTL_ERR_INVALID &&
              strstr(gantl_last_error(), "img_resolution 4 must be at least 8"));
    } else if (gantl_discriminator_init(&D, &dc, 6) != GANTL_OK) {
        CHECK_MSG(0, "D at %d: %s", res, gantl_last_error());
        gantl_generator_free(&G);
        return;
    }
    CHECK(G.num_blocks == log2 - 1 && G.num_ws == 2 * log2 - 2 && G.num_noise == 2 * log2 - 3);
    CHECK(G.blocks[G.num_blocks - 1].resolution == res && G.blocks[G.num_blocks - 1].out_channels == top_channels);
    if (has_d) CHECK(D.num_blocks == log2 - 2 && D.blocks[0].resolution == res && D.blocks[0].in_channels == 0);
    gantl_ctx *ctx = gantl_ctx_new(0);
    gantl_set_grad_enabled(ctx, 0);
    gantl_rng rng = gantl_rng_new(7);
    int64_t zshape[2] = {batch, 8};
    gantl_tensor *z = gantl_randn(ctx, &rng, 2, zshape);
    gantl_tensor *ws = gantl_generator_mapping(ctx, &G, z, NULL, 1.0f, -1, 0);
    gantl_tensor *img = gantl_generator_synthesis(ctx, &G, ws, GANTL_NOISE_CONST, NULL, NULL);
    gantl_tensor *logits = has_d ? gantl_discriminator_forward(ctx, &D, img, NULL) : NULL;
    CHECK(net_has_shape(ws, 3, batch, 2 * log2 - 2, 8, 1));
    CHECK(net_has_shape(img, 4, batch, channels, res, res));
    CHECK(net_all_finite(img) && net_max_abs(img->data, img->numel) > 0);
    if (has_d) CHECK(net_has_shape(logits, 2, batch, 1, 1, 1) && net_all_finite(logits));
    /* the checkpoint: official names at the ends of the range, loaded back bit for bit */
    gantl_st_writer w;
    gantl_st_writer_init(&w);
    char gjson[1024], djson[1024], name[96];
    gantl_g_config_to_json(&G.cfg, gjson, sizeof gjson);
    gantl_st_writer_meta(&w, "gantl.G", gjson);
    CHECK(gantl_generator_write(&G, &w, "G.") == GANTL_OK);
    if (has_d) {
        gantl_d_config_to_json(&D.cfg, djson, sizeof djson);
        gantl_st_writer_meta(&w, "gantl.D", djson);
        CHECK(gantl_discriminator_write(&D, &w, "D.") == GANTL_OK);
    }
    CHECK(gantl_st_writer_save(&w, "build/test_smoke.safetensors") == GANTL_OK);
    gantl_st_writer_free(&w);
    gantl_st_file f;
    if (gantl_st_load(&f, "build/test_smoke.safetensors") != GANTL_OK) {
        CHECK_MSG(0, "%s", gantl_last_error());
    } else {
        snprintf(name, sizeof name, "G.synthesis.b%d.torgb.weight", res);
        const gantl_st_tensor *t = gantl_st_find(&f, name);
        CHECK_MSG(t && t->ndim == 4 && t->shape[0] == channels && t->shape[1] == top_channels && t->shape[2] == 1,
                  "%s missing or misshapen", name);
        snprintf(name, sizeof name, "G.synthesis.b%d.conv0.weight", res * 2);
        CHECK(gantl_st_find(&f, name) == NULL);
        CHECK(gantl_st_find(&f, "G.synthesis.b4.const") != NULL && gantl_st_find(&f, "G.synthesis.b4.conv0.weight") == NULL);
        CHECK(gantl_st_find(&f, "G.mapping.w_avg") != NULL);
        if (has_d) {
            snprintf(name, sizeof name, "D.b%d.fromrgb.weight", res);
            t = gantl_st_find(&f, name);
            CHECK_MSG(t && t->ndim == 4 && t->shape[0] == top_channels && t->shape[1] == channels, "%s missing or misshapen",
                      name);
            CHECK(gantl_st_find(&f, "D.b8.conv1.weight") != NULL && gantl_st_find(&f, "D.b4.out.weight") != NULL);
            CHECK((gantl_st_find(&f, "D.b8.skip.weight") != NULL) == (arch == GANTL_D_RESNET));
            CHECK((gantl_st_find(&f, "D.b4.fromrgb.weight") != NULL) == (arch == GANTL_D_SKIP));
        }
        int g_ok = gantl_generator_from_file(&G2, &f, "G.") == GANTL_OK;
        int d_ok = has_d && gantl_discriminator_from_file(&D2, &f, "D.") == GANTL_OK;
        CHECK_MSG(g_ok && d_ok == has_d, "%s", gantl_last_error());
        if (g_ok) {
            gantl_tensor *img2 =
                gantl_generator_synthesis(ctx, &G2, gantl_generator_mapping(ctx, &G2, z, NULL, 1.0f, -1, 0), GANTL_NOISE_CONST, NULL, NULL);
            CHECK(img2 && img2->numel == img->numel && !memcmp(img2->data, img->data, (size_t)img->numel * sizeof(float)));
            if (d_ok) {
                gantl_tensor *l2 = gantl_discriminator_forward(ctx, &D2, img2, NULL);
                CHECK(l2 && logits && !memcmp(l2->data, logits->data, (size_t)batch * sizeof(float)));
            }
            gantl_generator_free(&G2);
        }
        if (d_ok) gantl_discriminator_free(&D2);
        gantl_st_free(&f);
    }
    CHECK(gantl_ctx_status(ctx) == GANTL_OK);
    gantl_ctx_free(ctx);
    gantl_generator_free(&G);
    if (has_d) gantl_discriminator_free(&D);
    remove("build/test_smoke.safetensors");
}

/* The ends of the resolution range (the parity fixtures are all 16x16). */
static void test_networks_smallest_and_largest_resolution(void) {
    net_smoke(4, 3, 2, GANTL_D_SKIP);
    net_smoke(1024, 1, 1, GANTL_D_RESNET);
    net_smoke(1024, 3, 1, GANTL_D_SKIP);
}

/* Writes the fixture's G under "G." with one change, and expects loading it to fail with
   a message containing want. change: 0 drop a tensor, 1 extra tensor, 2 wrong shape,
   3 integer dtype, 4 bad kwargs, 5 unsupported architecture. */
static void net_expect_load_error(net_fixture *nf, int change, const char *want) {
    gantl_st_writer w;
    gantl_st_writer_init(&w);
    const char *kw = gantl_st_meta(&nf->f, "gantl.G");
    if (change == 4) kw = "{\"z_dim\": 32, \"img_resolution\": 12}";
    if (change == 5) kw = "{\"z_dim\": 32, \"w_dim\": 32, \"img_resolution\": 16, \"synthesis_kwargs\": {\"architecture\": \"resnet\"}}";
    gantl_st_writer_meta(&w, "gantl.G", kw);
    for (int i = 0; i < nf->f.count; i++) {
        const gantl_st_tensor *t = &nf->f.tensors[i];
        if (strncmp(t->name, "G.", 2) != 0) continue;
        int is_target = !strcmp(t->name, "G.synthesis.b8.conv0.weight");
        if (change == 0 && is_target) continue;
        if (change == 2 && is_target) {
            int64_t shape[4] = {t->shape[0], t->shape[1], 1, t->shape[2] * t->shape[3]};
            gantl_st_writer_add(&w, t->name, t->dtype, 4, shape, t->bytes);
            continue;
        }
        if (change == 3 && is_target) {
            gantl_st_writer_add(&w, t->name, GANTL_I32, t->ndim, t->shape, t->bytes);
            continue;
        }
        gantl_st_writer_add(&w, t->name, t->dtype, t->ndim, t->shape, t->bytes);
    }
    if (change == 1) gantl_st_writer_add(&w, "G.synthesis.b8.conv2.weight", GANTL_F32, 0, NULL, "\0\0\0\0");
    gantl_st_writer_save(&w, "build/test_bad_ckpt.safetensors");
    gantl_st_writer_free(&w);
    gantl_st_file f;
    CHECK(gantl_st_load(&f, "build/test_bad_ckpt.safetensors") == GANTL_OK);
    gantl_generator G;
    gantl_status s = gantl_generator_from_file(&G, &f, "G.");
    CHECK_MSG(s != GANTL_OK, "change %d loaded", change);
    CHECK_MSG(strstr(gantl_last_error(), want) != NULL, "change %d: message '%s'", change, gantl_last_error());
    if (s == GANTL_OK) gantl_generator_free(&G);
    gantl_st_free(&f);
}

static void test_checkpoint_errors_are_clear(void) {
    net_fixture nf;
    if (!net_open(&nf, "sg2_g")) return;
    net_expect_load_error(&nf, 0, "tensor 'G.synthesis.b8.conv0.weight' is missing");
    net_expect_load_error(&nf, 1, "unexpected tensor 'G.synthesis.b8.conv2.weight'");
    net_expect_load_error(&nf, 2, "has shape (32, 32, 1, 9), expected (32, 32, 3, 3)");
    net_expect_load_error(&nf, 3, "has dtype I32, expected a float type");
    net_expect_load_error(&nf, 4, "img_resolution 12 must be a power of two");
    net_expect_load_error(&nf, 5, "architecture = resnet is not supported");
    gantl_generator G;
    CHECK(gantl_generator_from_file(&G, &nf.f, "G_ema.") != GANTL_OK); /* nothing under that prefix */
    net_close(&nf);
    remove("build/test_bad_ckpt.safetensors");
}

static void test_config_json_round_trip(void) {
    gantl_g_config g, g2;
    gantl_g_config_default(&g);
    g.c_dim = 10, g.conv_clamp = 256, g.mapping.num_layers = 2, g.num_fp16_res = 4;
    char buf[1024];
    gantl_g_config_to_json(&g, buf, sizeof buf);
    CHECK(gantl_g_config_from_json(&g2, buf) == GANTL_OK && !memcmp(&g, &g2, sizeof g));
    gantl_d_config d, d2;
    gantl_d_config_default(&d);
    d.architecture = GANTL_D_SKIP, d.mbstd_group_size = 0, d.cmap_dim = 64, d.freeze_layers = 3;
    gantl_d_config_to_json(&d, buf, sizeof buf);
    CHECK(gantl_d_config_from_json(&d2, buf) == GANTL_OK && !memcmp(&d, &d2, sizeof d));
    /* the official kwargs of a paper256 snapshot */
    const char *official = "{\"c_dim\": 0, \"img_resolution\": 256, \"img_channels\": 3, \"architecture\": \"resnet\", "
                           "\"channel_base\": 16384, \"channel_max\": 512, \"num_fp16_res\": 4, \"conv_clamp\": 256, "
                           "\"cmap_dim\": null, \"block_kwargs\": {}, \"mapping_kwargs\": {}, "
                           "\"epilogue_kwargs\": {\"mbstd_group_size\": 8}}";
    CHECK(gantl_d_config_from_json(&d, official) == GANTL_OK);
    CHECK(d.channel_base == 16384 && d.conv_clamp == 256 && d.mbstd_group_size == 8 && d.cmap_dim == 0);
    CHECK(gantl_d_config_from_json(&d, "{\"surprise\": 1}") == GANTL_ERR_UNSUPPORTED);
}

static void run_network_tests(void) {
    RUN(test_generator_parity);
    RUN(test_generator_conditional_parity);
    RUN(test_discriminator_resnet_parity);
    RUN(test_discriminator_orig_parity);
    RUN(test_discriminator_skip_parity);
    RUN(test_discriminator_conditional_parity);
    RUN(test_discriminator_one_channel_parity);
    RUN(test_generator_through_discriminator_parity);
    RUN(test_checkpoint_round_trip);
    RUN(test_networks_smallest_and_largest_resolution);
    RUN(test_checkpoint_errors_are_clear);
    RUN(test_config_json_round_trip);
}
