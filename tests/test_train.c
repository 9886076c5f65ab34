/* Training: two iterations of the trainer against tools/train_ref.py (the official loop and
   loss on the reference networks), replaying the reference's random draws; presets; exact
   resume from a snapshot. */

/* Replays draw.0, draw.1, ... of a fixture as the trainer's random source. */
typedef struct replay {
    const gantl_st_file *f;
    int next, mismatch;
} replay;

static void replay_fill(void *state, float *out, int64_t n) {
    replay *r = (replay *)state;
    char name[32];
    snprintf(name, sizeof name, "draw.%d", r->next++);
    const gantl_st_tensor *t = gantl_st_find(r->f, name);
    if (!t || t->numel != n) {
        if (!r->mismatch)
            fprintf(stderr, "    replay: %s has %lld values, the trainer asked for %lld\n", name,
                    t ? (long long)t->numel : -1LL, (long long)n);
        r->mismatch = 1;
        memset(out, 0, (size_t)n * sizeof(float));
        return;
    }
    gantl_st_read_f32(r->f, name, out, n, 0, NULL);
}

typedef struct train_check {
    net_fixture *nf;
    int iteration;
    int phases_seen;
} train_check;

/* Compares the phase's gradients with it<i>.grad.<phase>.<G|D>.<name>. */
static void train_phase_hook(void *user, const char *phase, const gantl_params *P) {
    train_check *tc = (train_check *)user;
    char group[96], name[256];
    const char *net = phase[0] == 'G' ? "G" : "D";
    snprintf(group, sizeof group, "it%d.grad.%s.", tc->iteration, phase);
    double scale = net_group_scale(tc->nf, group);
    CHECK_MSG(scale > 0, "no reference gradients for %s", group);
    for (int i = 0; i < P->count; i++) {
        snprintf(name, sizeof name, "it%d.grad.%s.%s.%s", tc->iteration, phase, net, P->tensors[i]->name);
        /* PyTorch has a gradient exactly for the tensors the phase's loss reaches */
        int reached = (P->tensors[i]->flags & GANTL_FLAG_GRAD_SET) != 0, in_reference = gantl_st_find(&tc->nf->f, name) != NULL;
        CHECK_MSG(reached == in_reference, "%s: reached %d, PyTorch has a gradient %d", name, reached, in_reference);
        if (reached && in_reference) net_expect(tc->nf, P->tensors[i]->grad, P->tensors[i]->numel, name, 1e-4, scale);
    }
    tc->phases_seen++;
}

/* Every tensor of a network after an iteration, against it<i>.after.<net>.<name>. */
static void train_expect_params(net_fixture *nf, int it, const char *net, const gantl_params *P) {
    char name[256];
    for (int i = 0; i < P->count; i++) {
        snprintf(name, sizeof name, "it%d.after.%s.%s", it, net, P->tensors[i]->name);
        /* Adam moves each value by about lr (0.0025): within 1% of that. Tighter is not
           meaningful: where a gradient is ~1e-6 of its phase's largest, float noise in it
           moves Adam's update by a few 1e-6 (an error in the step count or the bias
           correction moves it by ~lr) */
        net_expect(nf, P->tensors[i]->data, P->tensors[i]->numel, name, 1e-2, 0.0025);
    }
}

/* The mean over the rounds of it<i>.loss.<name> (the reference records one value per round
   of batch_gpu images); NaN if the fixture has none (the phase did not run). */
static double train_ref_loss(net_fixture *nf, int it, const char *name) {
    char key[64];
    snprintf(key, sizeof key, "it%d.loss.%s", it, name);
    const gantl_st_tensor *t = gantl_st_find(&nf->f, key);
    if (!t || t->numel < 1 || t->numel > 16) return NAN;
    float v[16];
    gantl_st_read_f32(&nf->f, key, v, t->numel, 0, NULL);
    double s = 0;
    for (int64_t i = 0; i < t->numel; i++) s += v[i];
    return s / (double)t->numel;
}

/* The iteration's losses (gantl_train_stats, means over the rounds) against the reference's:
   G main (softplus(-D(G(z)))), D main (its fake plus its real term), path length (weighted)
   and R1 (gamma / 2 times the penalty), each within 1e-5 * (1 + |reference|). They are
   float32 reductions, and the two sides agree to 6e-7 at most (R1, ~0.01, to ~5e-9), while
   a wrong sign, weight, gamma, draw or round moves a loss by far more than the tolerance
   (which is 0.1% of the R1 loss). A phase that did not run has no
   reference value and must be NaN in the stats. */
static void train_expect_losses(net_fixture *nf, int it, const gantl_train_stats *st) {
    double d_fake = train_ref_loss(nf, it, "D_fake"), d_real = train_ref_loss(nf, it, "D_real");
    struct { const char *name; double got, want; } l[4] = {
        {"G", st->loss_g, train_ref_loss(nf, it, "G")},
        {"D", st->loss_d, d_fake + d_real},
        {"pl", st->loss_pl, train_ref_loss(nf, it, "pl")},
        {"r1", st->loss_r1, train_ref_loss(nf, it, "r1")},
    };
    CHECK_MSG(!isnan(l[0].want) && !isnan(l[1].want), "it%d: the fixture has no G / D losses", it);
    for (int i = 0; i < 4; i++) {
        if (isnan(l[i].want)) {
            CHECK_MSG(isnan(l[i].got), "it%d loss %s: %.9g, but the phase did not run in the reference", it, l[i].name, l[i].got);
            continue;
        }
        double err = fabs(l[i].got - l[i].want);
        CHECK_MSG(err <= 1e-5 * (1.0 + fabs(l[i].want)), "it%d loss %s: %.9g, reference %.9g (error %.3g)", it,
                  l[i].name, l[i].got, l[i].want, err);
        if (getenv("GANTL_TEST_VERBOSE")) printf("    it%d loss %s: %.9g vs %.9g (error %.2g)\n", it, l[i].name, l[i].got, l[i].want, err);
    }
}

static int train_from_fixture(gantl_trainer *t, net_fixture *nf) {
    const char *fixture = gantl_st_meta(&nf->f, "gantl.fixture");
    gantl_g_config g;
    gantl_d_config d;
    gantl_train_config cfg;
    CHECK(fixture != NULL);
    if (!fixture) return 0;
    /* the fixture's config object has two extra keys; strip them for the config parser */
    char text[2048];
    snprintf(text, sizeof text, "%s", fixture);
    char *extra = strstr(text, ", \"iterations\"");
    if (extra) strcpy(extra, "}");
    gantl_status s = gantl_g_config_from_json(&g, gantl_st_meta(&nf->f, "gantl.G"));
    if (s == GANTL_OK) s = gantl_d_config_from_json(&d, gantl_st_meta(&nf->f, "gantl.D"));
    if (s == GANTL_OK) s = gantl_train_config_from_json(&cfg, text);
    if (s == GANTL_OK) s = gantl_trainer_init(t, &g, &d, &cfg, 0);
    if (s == GANTL_OK) s = gantl_trainer_load_networks(t, &nf->f);
    CHECK_MSG(s == GANTL_OK, "%s", gantl_last_error());
    return s == GANTL_OK;
}

static void train_check_reference(const char *fixture_name) {
    net_fixture nf;
    if (!net_open(&nf, fixture_name)) return;
    gantl_trainer t;
    if (!train_from_fixture(&t, &nf)) {
        net_close(&nf);
        return;
    }
    replay r = {&nf.f, 0, 0};
    t.random.state = &r;
    t.random.normal = replay_fill;
    t.random.uniform = replay_fill;
    train_check tc = {&nf, 0, 0};
    t.phase_hook = train_phase_hook;
    t.phase_hook_user = &tc;
    const gantl_st_tensor *reals = gantl_st_find(&nf.f, "in.reals");
    CHECK(reals != NULL);
    int64_t per = (int64_t)t.cfg.batch_size * 3 * 16 * 16;
    float *x = (float *)malloc((size_t)(2 * per) * sizeof(float));
    if (reals) gantl_st_read_f32(&nf.f, "in.reals", x, 2 * per, 0, NULL);
    for (int it = 0; it < 2 && reals; it++) {
        tc.iteration = it;
        gantl_train_stats st;
        CHECK_MSG(gantl_trainer_step(&t, x + it * per, NULL, NULL, &st) == GANTL_OK, "%s", gantl_last_error());
        train_expect_params(&nf, it, "G", &t.G.params);
        train_expect_params(&nf, it, "G", &t.G.buffers); /* w_avg */
        train_expect_params(&nf, it, "D", &t.D.params);
        train_expect_params(&nf, it, "G_ema", &t.G_ema.params);
        train_expect_params(&nf, it, "G_ema", &t.G_ema.buffers);
        char name[32];
        snprintf(name, sizeof name, "it%d.pl_mean", it);
        net_expect(&nf, &t.pl_mean, 1, name, 1e-4, 0);
        snprintf(name, sizeof name, "it%d.augment_p", it);
        net_expect(&nf, &t.augment.p, 1, name, 1e-7, 1.0);
        train_expect_losses(&nf, it, &st);
    }
    CHECK_MSG(tc.phases_seen == 6, "%d phases ran, expected 4 + 2", tc.phases_seen);
    const char *fixture = gantl_st_meta(&nf.f, "gantl.fixture");
    const char *draws = fixture ? strstr(fixture, "\"draws\": ") : NULL;
    CHECK(!r.mismatch && draws && r.next == atoi(draws + 9));
    free(x);
    gantl_trainer_free(&t);
    net_close(&nf);
}

static void test_train_steps_match_reference(void) { train_check_reference("train_step"); }
/* with ADA: the augmentation before every D call, R1 through it, p adjusted each iteration */
static void test_train_steps_with_ada_match_reference(void) { train_check_reference("train_step_ada"); }

/* Run `steps` steps in one go, or 2 steps + snapshot + the rest in a new trainer: identical.
   With augment, ADA runs with a p update every 3 iterations: the snapshot (after 2) falls in
   the middle of an interval, so the continuation must restore p and the half-collected sign
   statistics (the update after iteration 3 uses all three iterations' signs), and the run
   ends mid-interval again so the statistics are compared too. */
static void train_resume_check(int augment, int steps) {
    gantl_g_config g;
    gantl_d_config d;
    gantl_train_config cfg;
    CHECK(gantl_train_preset("small", 8, 1, 2, &g, &d, &cfg) == GANTL_OK);
    g.channel_base = d.channel_base = 64, g.channel_max = d.channel_max = 8, g.z_dim = g.w_dim = 8;
    cfg.augment = 0, cfg.batch_size = 4, cfg.batch_gpu = 2, cfg.pl_weight = 2.0f, cfg.style_mixing_prob = 0.9f;
    cfg.g_reg_interval = 2, cfg.d_reg_interval = 3;
    if (augment) /* p moves by 4 * 3 / (0.1 * 1000) = 0.12 per update */
        cfg.augment = 1, cfg.augment_p = 0.5f, cfg.ada_interval = 3, cfg.ada_kimg = 0.1f;
    gantl_trainer a, b;
    CHECK(gantl_trainer_init(&a, &g, &d, &cfg, 7) == GANTL_OK);
    int np = gantl_trainer_num_phases(&a), resumed = 0;
    float reals[4 * 64], real_c[4 * 2], gen_c[4 * 4 * 2];
    gantl_rng rng = gantl_rng_new(3);
    for (int step = 0; step < steps; step++) {
        gantl_rng_uniform(&rng, reals, 4 * 64, -1, 1);
        memset(real_c, 0, sizeof real_c);
        memset(gen_c, 0, sizeof gen_c);
        for (int i = 0; i < 4; i++) real_c[i * 2 + (i & 1)] = 1;
        for (int i = 0; i < 4 * np; i++) gen_c[i * 2 + (i % 3 == 0)] = 1;
        CHECK(gantl_trainer_step(&a, reals, real_c, gen_c, NULL) == GANTL_OK);
        if (step == 1) { /* snapshot half way, continue from it in b */
            gantl_st_writer w;
            gantl_st_writer_init(&w);
            CHECK(gantl_trainer_write(&a, &w) == GANTL_OK);
            CHECK(gantl_st_writer_save(&w, "build/test_resume.safetensors") == GANTL_OK);
            gantl_st_writer_free(&w);
            gantl_st_file f;
            CHECK(gantl_st_load(&f, "build/test_resume.safetensors") == GANTL_OK);
            resumed = gantl_trainer_from_snapshot(&b, &f) == GANTL_OK;
            CHECK_MSG(resumed, "%s", gantl_last_error());
            gantl_st_free(&f);
            if (!resumed) break;
            if (augment) { /* mid-interval: statistics of two iterations, carried over exactly */
                CHECK_MSG(a.batch_idx % cfg.ada_interval != 0 && a.augment.sign_count > 0,
                          "the snapshot is not in the middle of an ADA interval (%lld, %lld signs)",
                          (long long)a.batch_idx, (long long)a.augment.sign_count);
                CHECK(b.augment.p == a.augment.p && b.augment.sign_sum == a.augment.sign_sum &&
                      b.augment.sign_count == a.augment.sign_count);
                CHECK(b.augment.ada_interval == 3 && b.augment.ada_kimg == a.augment.ada_kimg &&
                      b.augment.ada_target == a.augment.ada_target && b.cfg.augment);
            }
        }
        if (step >= 2) CHECK(gantl_trainer_step(&b, reals, real_c, gen_c, NULL) == GANTL_OK);
    }
    if (!resumed) {
        gantl_trainer_free(&a);
        return;
    }
    CHECK(a.cur_nimg == 4 * steps && b.cur_nimg == 4 * steps && a.batch_idx == b.batch_idx && a.pl_mean == b.pl_mean);
    CHECK(!memcmp(a.G.params.data, b.G.params.data, (size_t)a.G.params.numel * 4));
    CHECK(!memcmp(a.D.params.data, b.D.params.data, (size_t)a.D.params.numel * 4));
    CHECK(!memcmp(a.G_ema.params.data, b.G_ema.params.data, (size_t)a.G_ema.params.numel * 4));
    CHECK(!memcmp(a.G.buffers.data, b.G.buffers.data, (size_t)a.G.buffers.numel * 4));
    CHECK(!memcmp(a.opt_d.v, b.opt_d.v, (size_t)a.opt_d.numel * 4) && a.rng.offset == b.rng.offset);
    CHECK(a.augment.p == b.augment.p && a.augment.sign_sum == b.augment.sign_sum &&
          a.augment.sign_count == b.augment.sign_count);
    if (augment) { /* ADA did run: p was updated (steps / 3 times) and the run ends mid-interval */
        CHECK_MSG(a.augment.p != 0.5f && a.batch_idx % 3 != 0 && a.augment.sign_count > 0, "p %g after %lld iterations",
                  (double)a.augment.p, (long long)a.batch_idx);
    }
    gantl_trainer_free(&a);
    gantl_trainer_free(&b);
    remove("build/test_resume.safetensors");
}

static void test_train_resume_is_exact(void) { train_resume_check(0, 4); }
static void test_train_resume_with_ada_is_exact(void) { train_resume_check(1, 5); }

static void test_train_presets(void) {
    gantl_g_config g;
    gantl_d_config d;
    gantl_train_config c;
    CHECK(gantl_train_preset("paper256", 256, 3, 0, &g, &d, &c) == GANTL_OK);
    CHECK(c.batch_size == 64 && d.mbstd_group_size == 8 && g.channel_base == 16384 && c.r1_gamma == 1.0f &&
          c.ema_kimg == 20.0f && c.ema_rampup < 0 && g.mapping.num_layers == 8 && c.pl_weight == 2.0f);
    /* train.py: batch_gpu = mb // ref_gpus (paper256: 8 reference GPUs, cifar 2, auto the GPUs used) */
    CHECK_MSG(c.batch_gpu == 8, "paper256 batch_gpu %d, expected 64 // 8", c.batch_gpu);
    CHECK(gantl_train_preset("cifar", 32, 3, 10, &g, &d, &c) == GANTL_OK);
    CHECK(c.batch_size == 64 && d.mbstd_group_size == 32 && g.channel_base == 32768 && c.r1_gamma == 0.01f &&
          c.ema_kimg == 500.0f && c.ema_rampup == 0.05f && c.pl_weight == 0.0f && c.style_mixing_prob == 0.0f &&
          d.architecture == GANTL_D_ORIG && g.mapping.num_layers == 2 && g.c_dim == 10);
    CHECK_MSG(c.batch_gpu == 32, "cifar batch_gpu %d, expected 64 // 2", c.batch_gpu);
    { /* a trainer runs cifar's batch in two rounds of 32 (the minibatch-std group 32 fits them) */
        gantl_trainer t;
        g.channel_base = d.channel_base = 64, g.channel_max = d.channel_max = 8, g.img_resolution = d.img_resolution = 8;
        g.z_dim = g.w_dim = 8;
        CHECK_MSG(gantl_trainer_init(&t, &g, &d, &c, 0) == GANTL_OK, "%s", gantl_last_error());
        CHECK(t.cfg.batch_gpu == 32 && t.cfg.batch_size == 64);
        gantl_trainer_free(&t);
    }
    CHECK(gantl_train_preset("auto", 128, 3, 0, &g, &d, &c) == GANTL_OK); /* one GPU */
    CHECK(c.batch_size == 32 && d.mbstd_group_size == 4 && g.channel_base == 16384 &&
          fabs(c.r1_gamma - 0.0002 * 128 * 128 / 32) < 1e-6 && c.ema_kimg == 10.0f && c.lr_g == 0.0025);
    CHECK(c.batch_gpu == 0); /* one GPU: the whole batch (mb // 1) */
    CHECK(gantl_train_preset("auto", 1024, 3, 0, &g, &d, &c) == GANTL_OK);
    CHECK(c.batch_size == 4 && c.lr_g == 0.002 && g.channel_base == 32768);
    CHECK(gantl_train_preset("small", 32, 1, 0, &g, &d, &c) == GANTL_OK && c.batch_size == 32 && c.batch_gpu == 0);
    CHECK(gantl_train_preset("tiny", 32, 3, 0, &g, &d, &c) == GANTL_ERR_INVALID);
    char buf[1024];
    gantl_train_config back;
    gantl_train_config_to_json(&c, buf, sizeof buf);
    CHECK(gantl_train_config_from_json(&back, buf) == GANTL_OK && !memcmp(&back, &c, sizeof c));
}

static void test_optimizer_skips_unreached_parameters(void) {
    /* As PyTorch after zero_grad(set_to_none=True): a tensor the loss does not reach is not
       stepped, and its own step count stays behind; the leaky ReLU's mask does reach. */
    gantl_params P;
    gantl_params_init(&P, 1);
    int64_t n = 3;
    gantl_tensor *a = gantl_params_add(&P, "a", 1, &n), *b = gantl_params_add(&P, "b", 1, &n);
    gantl_tensor *m = gantl_params_add(&P, "m", 1, &n);
    for (int i = 0; i < 3; i++) a->data[i] = b->data[i] = 1.0f + (float)i, m->data[i] = 0.5f;
    gantl_adam opt;
    gantl_adam_init(&opt, &P, 0.1, 0.0, 0.99, 1e-8);
    gantl_ctx *ctx = gantl_ctx_new(0);
    gantl_params_zero_grad(&P);
    gantl_backward(ctx, gantl_sum_all(ctx, gantl_square(ctx, a))); /* reaches a only */
    gantl_adam_step(&opt, &P);
    CHECK(opt.steps[0] == 1 && opt.steps[1] == 0 && b->data[0] == 1.0f);
    /* second order through a leaky ReLU: m only shapes the mask */
    gantl_ctx_reset(ctx);
    gantl_params_zero_grad(&P);
    gantl_tensor *x = gantl_requires_grad(gantl_full(ctx, 1, &n, 0.7f)), *g;
    gantl_tensor *y = gantl_sum_all(ctx, gantl_leaky_relu(ctx, gantl_add(ctx, gantl_mul(ctx, x, b), m), 0.2f));
    gantl_grad(ctx, 1, &y, NULL, 1, &x, &g, 1);
    gantl_backward(ctx, gantl_sum_all(ctx, gantl_square(ctx, g)));
    CHECK((m->flags & GANTL_FLAG_GRAD_SET) && m->grad[0] == 0.0f); /* reached, with a zero gradient */
    CHECK((b->flags & GANTL_FLAG_GRAD_SET) && !(a->flags & GANTL_FLAG_GRAD_SET));
    gantl_ctx_free(ctx);
    gantl_adam_free(&opt);
    gantl_params_free(&P);
}


/* 300 Fashion-MNIST bags and a small network: after 40 iterations on the CPU the
   generator's mean image is at least 25% closer to the data's than at the start (it goes
   0.55 -> 0.37, falling at every check; the run is deterministic). */
static void test_train_learns_fashion_mnist(void) {
    gantl_dataset ds;
    gantl_dataset_options o;
    gantl_dataset_options_default(&o);
    o.max_images = 300, o.resolution = 16;
    if (gantl_dataset_load(&ds, "fashion-mnist:bag", &o) != GANTL_OK) {
        CHECK_MSG(0, "%s", gantl_last_error());
        return;
    }
    gantl_g_config g;
    gantl_d_config d;
    gantl_train_config c;
    gantl_train_preset("small", 16, 1, 0, &g, &d, &c);
    g.channel_base = d.channel_base = 128, g.channel_max = d.channel_max = 16, g.z_dim = g.w_dim = 32;
    c.augment = 0, c.batch_size = 16, c.ema_kimg = 0.1f;
    gantl_trainer t;
    gantl_sampler s;
    CHECK(gantl_trainer_init(&t, &g, &d, &c, 1) == GANTL_OK && gantl_sampler_init(&s, ds.count, 1, 1) == GANTL_OK);
    float *reals = (float *)malloc(16 * 256 * sizeof(float)), *mean_real = (float *)calloc(256, sizeof(float));
    int64_t idx[16], all[300] = {0}; /* max_images 300: ds.count <= 300 */
    unsigned char flip[16];
    for (int64_t i = 0; i < ds.count; i++) all[i] = i;
    float *every = (float *)malloc((size_t)ds.count * 256 * sizeof(float));
    gantl_dataset_batch(&ds, all, NULL, ds.count, every, NULL);
    for (int64_t i = 0; i < ds.count * 256; i++) mean_real[i % 256] += every[i] / (float)ds.count;
    double before = 0, after = 0;
    for (int step = 0; step <= 40; step++) {
        if (step % 10 == 0) { /* distance of G_ema's mean image (64 samples) to the data's */
            gantl_ctx *ctx = gantl_ctx_new(0);
            gantl_rng rng = gantl_rng_new(9);
            gantl_set_grad_enabled(ctx, 0);
            gantl_tensor *z = gantl_randn(ctx, &rng, 2, (int64_t[]){64, 32});
            gantl_tensor *img = gantl_generator_synthesis(ctx, &t.G_ema, gantl_generator_mapping(ctx, &t.G_ema, z, NULL, 1, -1, 0),
                                                          GANTL_NOISE_CONST, NULL, NULL);
            double dist = 0;
            for (int p = 0; p < 256; p++) {
                double m = 0;
                for (int i = 0; i < 64; i++) m += img->data[i * 256 + p] / 64.0;
                dist += (m - mean_real[p]) * (m - mean_real[p]);
            }
            *(step == 0 ? &before : &after) = sqrt(dist / 256);
            if (getenv("GANTL_TEST_VERBOSE")) printf("    step %d: %.3f\n", step, sqrt(dist / 256));
            gantl_ctx_free(ctx);
        }
        if (step == 40) break;
        gantl_sampler_next(&s, 16, idx, flip);
        gantl_dataset_batch(&ds, idx, flip, 16, reals, NULL);
        gantl_train_stats st;
        CHECK(gantl_trainer_step(&t, reals, NULL, NULL, &st) == GANTL_OK);
        CHECK(st.loss_g == st.loss_g && st.loss_d == st.loss_d && st.loss_d > 0);
    }
    CHECK_MSG(after < 0.75 * before, "mean-image distance %.3f -> %.3f", before, after);
    if (getenv("GANTL_TEST_VERBOSE")) printf("    mean-image distance %.3f -> %.3f\n", before, after);
    free(reals), free(mean_real), free(every);
    gantl_sampler_free(&s);
    gantl_trainer_free(&t);
    gantl_dataset_free(&ds);
}

static void run_train_tests(void) {
    RUN(test_train_steps_match_reference);
    RUN(test_train_steps_with_ada_match_reference);
    RUN(test_train_resume_is_exact);
    RUN(test_train_resume_with_ada_is_exact);
    RUN(test_train_presets);
    RUN(test_optimizer_skips_unreached_parameters);
    RUN(test_train_learns_fashion_mnist);
}
