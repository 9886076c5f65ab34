/* The paper's synthetic 2-D experiment ("When, Why, and Which Pretrained GANs Are Useful?",
   section 3, and the authors' yandex-research/gan-transfer playground), for `gantl toy2d`.

   Target: 10 Gaussians (std 0.25) on a circle of radius 20. Source-I: a "fat circle" (radius
   20, radial std 4). Source-II: the target's first three centres (numpy.roots order), std
   0.5. G: an MLP with BatchNorm, z in R^64; D: an MLP, sigmoid output; the non-saturating
   loss; Adam 2e-4, betas (0.5, 0.999), batch 64, one D step per iteration, a G step every
   fourth. Pretraining on a source for 5001 G steps saves a checkpoint every 50 (after the
   G update, as the authors' loop does: 101 checkpoints). Each is fine-tuned on the target
   for 1001 G steps (fresh Adam); its score is the least W1 (exact, 2048 target vs 2048
   generated points, G in eval mode) at G steps 0, 250, 500, 750, 1000. Per checkpoint also:
   recall (k = 5, strict '<') of 1000 generated points against 1000 target points, and the
   grad-D similarity: the mean cosine between the direction to the nearest target centre
   and the gradient of the G loss -log D(x) at 1000 generated points.

   Included by examples/gantl.c (one translation unit). */

#define TOY_Z 64
#define TOY_BATCH 64

/* The target's centres in numpy.roots([1, 0, ..., 0, -1]) order (what the authors' code
   uses): angles k * 2 pi / 10 for these k. Source-II takes the first three. */
static const int toy_center_k[10] = {5, 4, -4, 3, -3, 2, -2, 0, 1, -1};

typedef enum toy_data { TOY_TARGET, TOY_SOURCE_I, TOY_SOURCE_II } toy_data;

static void toy_center(int i, float *xy) {
    double a = toy_center_k[i] * 2.0 * 3.14159265358979323846 / 10.0;
    xy[0] = (float)(20.0 * cos(a)), xy[1] = (float)(20.0 * sin(a));
}

/* n points (n, 2) of a distribution. */
static void toy_sample(toy_data which, gantl_rng *rng, float *out, int64_t n) {
    float noise[2];
    for (int64_t i = 0; i < n; i++) {
        if (which == TOY_SOURCE_I) {
            double t = 2.0 * 3.14159265358979323846 * gantl_rng_double(rng);
            gantl_rng_normal(rng, noise, 1, 0.0f, 1.0f);
            double r = 20.0 + 4.0 * noise[0];
            out[2 * i] = (float)(r * sin(t)), out[2 * i + 1] = (float)(r * cos(t));
        } else {
            float c[2];
            toy_center((int)gantl_rng_int(rng, which == TOY_TARGET ? 10 : 3), c);
            gantl_rng_normal(rng, noise, 2, 0.0f, which == TOY_TARGET ? 0.25f : 0.5f);
            out[2 * i] = c[0] + noise[0], out[2 * i + 1] = c[1] + noise[1];
        }
    }
}

/* G: 64 -> 64 -> 128 -> 128 -> 128 -> 64 (Linear, BatchNorm, ReLU) -> 2;
   D: 2 -> 64 -> 128 -> 128 -> 64 (Linear, ReLU) -> 1 (a logit: the sigmoid is in the loss). */
typedef struct toy_net {
    int is_g, layers;
    gantl_params params, buffers;
    gantl_tensor *w[6], *b[6];
    gantl_tensor *bn_w[5], *bn_b[5], *bn_mean[5], *bn_var[5];
} toy_net;

static const int toy_g_dims[7] = {TOY_Z, 64, 128, 128, 128, 64, 2}, toy_d_dims[6] = {2, 64, 128, 128, 64, 1};

/* PyTorch's defaults: Linear weight and bias U(-1/sqrt(in), 1/sqrt(in)); BatchNorm 1, 0. */
static int toy_net_init(toy_net *n, int is_g, gantl_rng *rng) {
    const int *dims = is_g ? toy_g_dims : toy_d_dims;
    char name[32];
    memset(n, 0, sizeof *n);
    n->is_g = is_g, n->layers = is_g ? 6 : 5;
    gantl_params_init(&n->params, 1);
    gantl_params_init(&n->buffers, 0);
    for (int i = 0; i < n->layers; i++) {
        int64_t ws[2] = {dims[i + 1], dims[i]}, bs = dims[i + 1];
        float bound = 1.0f / sqrtf((float)dims[i]);
        snprintf(name, sizeof name, "fc%d.weight", i);
        n->w[i] = gantl_params_add(&n->params, name, 2, ws);
        snprintf(name, sizeof name, "fc%d.bias", i);
        n->b[i] = gantl_params_add(&n->params, name, 1, &bs);
        if (!n->w[i] || !n->b[i]) return 0;
        gantl_rng_uniform(rng, n->w[i]->data, n->w[i]->numel, -bound, bound);
        gantl_rng_uniform(rng, n->b[i]->data, bs, -bound, bound);
        if (is_g && i < 5) {
            snprintf(name, sizeof name, "bn%d.weight", i);
            n->bn_w[i] = gantl_params_add(&n->params, name, 1, &bs);
            snprintf(name, sizeof name, "bn%d.bias", i);
            n->bn_b[i] = gantl_params_add(&n->params, name, 1, &bs);
            snprintf(name, sizeof name, "bn%d.running_mean", i);
            n->bn_mean[i] = gantl_params_add(&n->buffers, name, 1, &bs);
            snprintf(name, sizeof name, "bn%d.running_var", i);
            n->bn_var[i] = gantl_params_add(&n->buffers, name, 1, &bs);
            if (!n->bn_w[i] || !n->bn_b[i] || !n->bn_mean[i] || !n->bn_var[i]) return 0;
            for (int64_t k = 0; k < bs; k++) n->bn_w[i]->data[k] = 1.0f, n->bn_var[i]->data[k] = 1.0f;
        }
    }
    return 1;
}

static void toy_net_free(toy_net *n) {
    gantl_params_free(&n->params);
    gantl_params_free(&n->buffers);
}

static void toy_net_copy(toy_net *dst, const toy_net *src) {
    gantl_params_copy(&dst->params, &src->params);
    gantl_params_copy(&dst->buffers, &src->buffers);
}

/* x (N, in) -> (N, out); G in training mode uses batch statistics and updates the running ones. */
static gantl_tensor *toy_forward(gantl_ctx *ctx, toy_net *n, gantl_tensor *x, int training) {
    for (int i = 0; i < n->layers; i++) {
        x = gantl_linear(ctx, x, n->w[i], n->b[i]);
        if (i == n->layers - 1) break;
        if (n->is_g) x = gantl_batch_norm(ctx, x, n->bn_w[i], n->bn_b[i], n->bn_mean[i], n->bn_var[i], training, 0.1f, 1e-5f);
        x = gantl_relu(ctx, x);
    }
    return x;
}

/* A G or D step's loss: D: -log D(real) - log(1 - D(fake)); G: -log D(fake), the sigmoid's
   logs written stably as softplus (the same function). */
typedef struct toy_run {
    toy_net G, D;
    gantl_adam opt_g, opt_d;
    gantl_rng rng;
    gantl_ctx *ctx;
} toy_run;

static int toy_run_init(toy_run *r, const toy_net *g_from, const toy_net *d_from, uint64_t seed) {
    memset(r, 0, sizeof *r);
    r->rng = gantl_rng_new(seed);
    if (!toy_net_init(&r->G, 1, &r->rng) || !toy_net_init(&r->D, 0, &r->rng)) return 0;
    if (g_from) toy_net_copy(&r->G, g_from);
    if (d_from) toy_net_copy(&r->D, d_from);
    r->ctx = gantl_ctx_new(1 << 20);
    return r->ctx && gantl_adam_init(&r->opt_g, &r->G.params, 2e-4, 0.5, 0.999, 1e-8) == GANTL_OK &&
           gantl_adam_init(&r->opt_d, &r->D.params, 2e-4, 0.5, 0.999, 1e-8) == GANTL_OK;
}

static void toy_run_free(toy_run *r) {
    toy_net_free(&r->G);
    toy_net_free(&r->D);
    gantl_adam_free(&r->opt_g);
    gantl_adam_free(&r->opt_d);
    gantl_ctx_free(r->ctx);
}

/* Called after each G update with its index (the checkpoint and test hook). */
typedef void (*toy_hook)(void *user, toy_run *r, int64_t g_step);

/* One iteration of the authors' loop: a D step on real (B, 2) against G(z_d) (G in training
   mode: its BatchNorm statistics move, its weights do not), then, when z_g is given, a G step
   on G(z_g). The losses go to d_loss / g_loss (g_loss may be NULL). */
static int toy_step(toy_run *r, const float *real, const float *z_d, const float *z_g, double *d_loss, double *g_loss) {
    gantl_ctx *ctx = r->ctx;
    int64_t shape_x[2] = {TOY_BATCH, 2}, shape_z[2] = {TOY_BATCH, TOY_Z};
    gantl_ctx_reset(ctx);
    gantl_set_grad_enabled(ctx, 0);
    gantl_tensor *fake = toy_forward(ctx, &r->G, gantl_from_data(ctx, 2, shape_z, (float *)z_d), 1);
    gantl_set_grad_enabled(ctx, 1);
    gantl_tensor *real_logits = toy_forward(ctx, &r->D, gantl_from_data(ctx, 2, shape_x, (float *)real), 1);
    gantl_tensor *loss = gantl_add(ctx, gantl_mean_all(ctx, gantl_softplus(ctx, gantl_neg(ctx, real_logits))),
                                   gantl_mean_all(ctx, gantl_softplus(ctx, toy_forward(ctx, &r->D, fake, 1))));
    if (!loss) return 0;
    *d_loss = loss->data[0];
    gantl_params_zero_grad(&r->D.params);
    gantl_backward(ctx, loss);
    gantl_adam_step(&r->opt_d, &r->D.params);
    if (!z_g) return 1;
    gantl_ctx_reset(ctx);
    gantl_params_requires_grad(&r->D.params, 0);
    gantl_tensor *gen = toy_forward(ctx, &r->G, gantl_from_data(ctx, 2, shape_z, (float *)z_g), 1);
    loss = gantl_mean_all(ctx, gantl_softplus(ctx, gantl_neg(ctx, toy_forward(ctx, &r->D, gen, 1))));
    if (!loss) return 0;
    if (g_loss) *g_loss = loss->data[0];
    gantl_params_zero_grad(&r->G.params);
    gantl_backward(ctx, loss);
    gantl_params_requires_grad(&r->D.params, 1);
    gantl_adam_step(&r->opt_g, &r->G.params);
    return 1;
}

/* The authors' loop: a D step every iteration, a G step every fourth, until g_steps. */
static int toy_train(toy_run *r, toy_data data, int64_t g_steps, toy_hook hook, void *user) {
    float real[TOY_BATCH * 2], z_d[TOY_BATCH * TOY_Z], z_g[TOY_BATCH * TOY_Z]; /* 33 KB of stack */
    for (int64_t step = 0, g_step = 0; g_step < g_steps; step++) {
        double d_loss;
        int g_now = step % 4 == 0;
        toy_sample(data, &r->rng, real, TOY_BATCH);
        gantl_rng_normal(&r->rng, z_d, TOY_BATCH * TOY_Z, 0.0f, 1.0f);
        if (g_now) gantl_rng_normal(&r->rng, z_g, TOY_BATCH * TOY_Z, 0.0f, 1.0f);
        if (!toy_step(r, real, z_d, g_now ? z_g : NULL, &d_loss, NULL)) return 0;
        if (!g_now) continue;
        if (hook) hook(user, r, g_step);
        g_step++;
    }
    return 1;
}

/* n generated points with G in eval mode. */
static void toy_generate(toy_run *r, gantl_rng *rng, float *out, int64_t n) {
    gantl_ctx *ctx = gantl_ctx_new(1 << 20);
    int64_t shape_z[2] = {n, TOY_Z};
    gantl_set_grad_enabled(ctx, 0);
    gantl_tensor *z = gantl_randn(ctx, rng, 2, shape_z), *x = toy_forward(ctx, &r->G, z, 0);
    if (x) memcpy(out, x->data, (size_t)(2 * n) * sizeof(float));
    gantl_ctx_free(ctx);
}

/* The exact W1 between 2048 target points and 2048 points of G (eval mode). */
static double toy_w1(toy_run *r, gantl_rng *rng) {
    float real[2048 * 2], fake[2048 * 2];
    double w1 = NAN;
    toy_sample(TOY_TARGET, rng, real, 2048);
    toy_generate(r, rng, fake, 2048);
    if (gantl_w1_2d(real, fake, 2048, &w1) != GANTL_OK) return NAN;
    return w1;
}

/* The grad-D similarity at points x (n, 2): the mean, over finite values, of the cosine
   between c(x) - x (c: the nearest target centre) and the gradient wrt x of the G loss
   -log D(x) (the authors' sign: the loss's gradient, not D's). */
static double toy_grad_similarity(toy_net *D, const float *x_data, int64_t n) {
    gantl_ctx *ctx = gantl_ctx_new(1 << 20);
    int64_t shape[2] = {n, 2};
    gantl_tensor *x = gantl_requires_grad(gantl_from_data(ctx, 2, shape, (float *)x_data)), *g;
    gantl_tensor *loss = gantl_mean_all(ctx, gantl_softplus(ctx, gantl_neg(ctx, toy_forward(ctx, D, x, 0))));
    gantl_grad(ctx, 1, &loss, NULL, 1, &x, &g, 0);
    double sum = 0;
    int64_t count = 0;
    for (int64_t i = 0; g && i < n; i++) {
        float best[2] = {0, 0}, c[2];
        double best_d = INFINITY;
        for (int k = 0; k < 10; k++) {
            toy_center(k, c);
            double d = hypot(c[0] - x_data[2 * i], c[1] - x_data[2 * i + 1]);
            if (d < best_d) best_d = d, best[0] = c[0], best[1] = c[1];
        }
        double dx = best[0] - x_data[2 * i], dy = best[1] - x_data[2 * i + 1], gx = g->data[2 * i], gy = g->data[2 * i + 1];
        double cosine = (dx * gx + dy * gy) / (hypot(dx, dy) * hypot(gx, gy));
        if (cosine == cosine) sum += cosine, count++; /* the authors average the finite values */
    }
    gantl_ctx_free(ctx);
    return count ? sum / (double)count : NAN;
}

/* Recall of G against the target, and the grad-D similarity, at a checkpoint. */
static void toy_checkpoint_metrics(toy_run *r, gantl_rng *rng, double *recall, double *similarity) {
    float real[1000 * 2], fake[1000 * 2];
    toy_generate(r, rng, fake, 1000);
    toy_sample(TOY_TARGET, rng, real, 1000);
    gantl_prdc pr;
    *recall = gantl_prdc_compute(real, 1000, fake, 1000, 2, 5, 1, &pr) == GANTL_OK ? pr.recall : NAN;
    *similarity = toy_grad_similarity(&r->D, fake, 1000);
}

/* ---- replay: the loop on recorded weights and batches (tools/toy2d_ref.py), for tests ---- */

static int toy_net_read(toy_net *n, const gantl_st_file *st, const char *prefix) {
    gantl_params *sets[2] = {&n->params, &n->buffers};
    char name[64];
    for (int s = 0; s < 2; s++)
        for (int i = 0; i < sets[s]->count; i++) {
            gantl_tensor *t = sets[s]->tensors[i];
            snprintf(name, sizeof name, "%s%s", prefix, t->name);
            if (gantl_st_read_f32(st, name, t->data, t->numel, t->ndim, t->shape) != GANTL_OK) return 0;
        }
    return 1;
}

static void toy_net_write(gantl_st_writer *w, const toy_net *n, const char *prefix) {
    const gantl_params *sets[2] = {&n->params, &n->buffers};
    char name[64];
    for (int s = 0; s < 2; s++)
        for (int i = 0; i < sets[s]->count; i++) {
            const gantl_tensor *t = sets[s]->tensors[i];
            snprintf(name, sizeof name, "%s%s", prefix, t->name);
            gantl_st_writer_add(w, name, GANTL_F32, t->ndim, t->shape, t->data);
        }
}

/* Reads G.*, D.*, real (T, B, 2), z_d (T, B, 64), z_g (ceil(T / 4), B, 64) and sim_x (n, 2)
   from in; runs T iterations; writes the weights (G.*, D.*), the losses, G's eval-mode
   output for z_d[0][:16] and the similarity at sim_x to out. */
static int toy_replay(const char *in, const char *out) {
    gantl_st_file st;
    toy_run r;
    int ok = 0;
    if (gantl_st_load(&st, in) != GANTL_OK) return fail("toy2d", gantl_last_error()), 0;
    const gantl_st_tensor *real = gantl_st_find(&st, "real"), *zd = gantl_st_find(&st, "z_d"), *zg = gantl_st_find(&st, "z_g");
    const gantl_st_tensor *sx = gantl_st_find(&st, "sim_x");
    if (!real || !zd || !zg || !sx || real->ndim != 3 || real->shape[1] != TOY_BATCH || real->shape[2] != 2 || zd->ndim != 3 ||
        zd->shape[0] != real->shape[0] || zd->shape[1] != TOY_BATCH || zd->shape[2] != TOY_Z || zg->ndim != 3 ||
        zg->shape[0] != (real->shape[0] + 3) / 4 || sx->ndim != 2 || sx->shape[1] != 2) {
        gantl_st_free(&st);
        return fail("toy2d", "--replay: needs real (T, 64, 2), z_d (T, 64, 64), z_g (ceil(T/4), 64, 64), sim_x (n, 2)"), 0;
    }
    int64_t T = real->shape[0], nsim = sx->shape[0];
    float *x = (float *)malloc((size_t)(T * TOY_BATCH * 2) * sizeof(float));
    float *z1 = (float *)malloc((size_t)(T * TOY_BATCH * TOY_Z) * sizeof(float));
    float *z2 = (float *)malloc((size_t)(zg->shape[0] * TOY_BATCH * TOY_Z) * sizeof(float));
    float *sim_x = (float *)malloc((size_t)(nsim * 2) * sizeof(float)), gen[16 * 2];
    double *d_loss = (double *)malloc((size_t)T * sizeof(double)), *g_loss = (double *)malloc((size_t)T * sizeof(double));
    if (x && z1 && z2 && sim_x && d_loss && g_loss && gantl_st_read_f32(&st, "real", x, T * TOY_BATCH * 2, 0, NULL) == GANTL_OK &&
        gantl_st_read_f32(&st, "z_d", z1, T * TOY_BATCH * TOY_Z, 0, NULL) == GANTL_OK &&
        gantl_st_read_f32(&st, "z_g", z2, zg->shape[0] * TOY_BATCH * TOY_Z, 0, NULL) == GANTL_OK &&
        gantl_st_read_f32(&st, "sim_x", sim_x, nsim * 2, 0, NULL) == GANTL_OK && toy_run_init(&r, NULL, NULL, 0)) {
        ok = toy_net_read(&r.G, &st, "G.") && toy_net_read(&r.D, &st, "D.");
        int64_t ng = 0;
        for (int64_t it = 0; ok && it < T; it++) {
            int g_now = it % 4 == 0;
            ok = toy_step(&r, x + it * TOY_BATCH * 2, z1 + it * TOY_BATCH * TOY_Z, g_now ? z2 + (it / 4) * TOY_BATCH * TOY_Z : NULL,
                          &d_loss[it], g_now ? &g_loss[ng] : NULL);
            ng += g_now;
        }
        if (ok) {
            gantl_ctx *ctx = gantl_ctx_new(0);
            int64_t zs[2] = {16, TOY_Z}, ls[1] = {T}, gs[1] = {ng}, es[2] = {16, 2}, one = 1;
            gantl_set_grad_enabled(ctx, 0);
            gantl_tensor *y = toy_forward(ctx, &r.G, gantl_from_data(ctx, 2, zs, z1), 0);
            if (y) memcpy(gen, y->data, sizeof gen);
            gantl_ctx_free(ctx);
            double sim = toy_grad_similarity(&r.D, sim_x, nsim);
            gantl_st_writer w;
            gantl_st_writer_init(&w);
            toy_net_write(&w, &r.G, "G.");
            toy_net_write(&w, &r.D, "D.");
            gantl_st_writer_add(&w, "d_loss", GANTL_F64, 1, ls, d_loss);
            gantl_st_writer_add(&w, "g_loss", GANTL_F64, 1, gs, g_loss);
            gantl_st_writer_add(&w, "g_eval", GANTL_F32, 2, es, gen);
            gantl_st_writer_add(&w, "similarity", GANTL_F64, 1, &one, &sim);
            ok = y && gantl_st_writer_save(&w, out) == GANTL_OK;
            gantl_st_writer_free(&w);
        }
        if (!ok) fail("toy2d", gantl_last_error());
        toy_run_free(&r);
    } else
        fail("toy2d", gantl_last_error());
    free(x), free(z1), free(z2), free(sim_x), free(d_loss), free(g_loss);
    gantl_st_free(&st);
    if (ok) printf("replayed %lld iterations of %s into %s\n", (long long)T, in, out);
    return ok;
}

/* ---- the experiment ---- */

typedef struct toy_options {
    int64_t pretrain_steps, finetune_steps, every, test_every;
    toy_data source;
} toy_options;

typedef struct toy_checkpoint {
    int64_t step;
    toy_net G, D;
    double recall, similarity, w1, w1_tests[64];
    int tests;
} toy_checkpoint;

typedef struct toy_pretrain_state {
    const toy_options *o;
    toy_checkpoint *ckpt;
    int count;
} toy_pretrain_state;

static void toy_pretrain_hook(void *user, toy_run *r, int64_t g_step) {
    toy_pretrain_state *s = (toy_pretrain_state *)user;
    if (g_step % s->o->every != 0) return;
    toy_checkpoint *c = &s->ckpt[s->count++];
    gantl_rng unused = gantl_rng_new(0);
    c->step = g_step;
    toy_net_init(&c->G, 1, &unused);
    toy_net_init(&c->D, 0, &unused);
    toy_net_copy(&c->G, &r->G);
    toy_net_copy(&c->D, &r->D);
}

typedef struct toy_finetune_state {
    const toy_options *o;
    gantl_rng test_rng;
    double w1[64];
    int tests;
} toy_finetune_state;

static void toy_finetune_hook(void *user, toy_run *r, int64_t g_step) {
    toy_finetune_state *s = (toy_finetune_state *)user;
    if (g_step % s->o->test_every != 0 || s->tests >= 64) return;
    s->w1[s->tests++] = toy_w1(r, &s->test_rng);
}

/* Fine-tunes from (G, D) (either may be NULL: a fresh network) on the target; the least W1 of
   the tests, and each test's W1 in w1_tests. */
static double toy_finetune(const toy_options *o, const toy_net *G, const toy_net *D, uint64_t seed, double *w1_tests,
                           int *tests) {
    toy_run r;
    toy_finetune_state s;
    memset(&s, 0, sizeof s);
    s.o = o;
    s.test_rng = gantl_rng_new(seed ^ 0x5eedULL);
    double best = NAN;
    if (toy_run_init(&r, G, D, seed) && toy_train(&r, TOY_TARGET, o->finetune_steps, toy_finetune_hook, &s))
        for (int i = 0; i < s.tests; i++)
            if (!(s.w1[i] >= best)) best = s.w1[i];
    toy_run_free(&r);
    if (w1_tests) memcpy(w1_tests, s.w1, (size_t)s.tests * sizeof(double));
    if (tests) *tests = s.tests;
    return best;
}

/* Pretrains on the source, keeping a checkpoint every o->every G steps. */
static int toy_pretrain(const toy_options *o, uint64_t seed, toy_checkpoint *ckpt, int *count, toy_run *run) {
    toy_pretrain_state s = {o, ckpt, 0};
    if (!toy_run_init(run, NULL, NULL, seed) || !toy_train(run, o->source, o->pretrain_steps, toy_pretrain_hook, &s)) return 0;
    *count = s.count;
    return 1;
}

static const char *toy_source_name(toy_data d) { return d == TOY_SOURCE_I ? "Source-I" : d == TOY_SOURCE_II ? "Source-II" : "target"; }

/* ---- the command ---- */

static void toy_mean_std(const double *v, int n, double *mean, double *std) {
    double s = 0, s2 = 0;
    int k = 0;
    for (int i = 0; i < n; i++)
        if (v[i] == v[i]) s += v[i], s2 += v[i] * v[i], k++;
    *mean = k ? s / k : NAN;
    *std = k > 1 ? sqrt(fmax(0.0, (s2 - s * s / k) / (k - 1))) : 0.0;
}

/* Scatter of a metric against W1, one colour per seed. */
static int toy_plot_xy(const char *path, const char *title, const char *xlabel, double (*xs)[128], double (*w1)[128],
                       const int *counts, int seeds) {
    static const unsigned char *const colours[4] = {plot_blue, plot_red, plot_green, plot_gold};
    double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
    for (int s = 0; s < seeds; s++)
        for (int i = 0; i < counts[s]; i++)
            if (xs[s][i] == xs[s][i] && w1[s][i] == w1[s][i]) {
                x0 = fmin(x0, xs[s][i]), x1 = fmax(x1, xs[s][i]), y0 = fmin(y0, w1[s][i]), y1 = fmax(y1, w1[s][i]);
            }
    if (!(x0 <= x1)) return 0;
    double mx = 0.05 * (x1 - x0 + 1e-9), my = 0.05 * (y1 - y0 + 1e-9);
    plot p;
    if (!plot_init(&p, 640, 480, x0 - mx, x1 + mx, y0 - my, y1 + my, title, xlabel, "W1 after fine-tuning")) return 0;
    for (int s = 0; s < seeds; s++) {
        char label[32];
        for (int i = 0; i < counts[s]; i++) plot_point(&p, xs[s][i], w1[s][i], 3, colours[s % 4], 0.8f);
        snprintf(label, sizeof label, "seed %d", s);
        if (seeds > 1) plot_legend(&p, s, label, colours[s % 4]);
    }
    return plot_save(&p, path);
}

static int cmd_toy2d(int argc, char **argv) {
    static const char *const known[] = {"--out", "--seeds", "--every", "--pretrain-steps", "--finetune-steps", "--test-every",
                                        "--source", "--variants", "--replay", "--replay-out", NULL};
    options o = {argc, argv, 0};
    if (!opt_check(&o, known)) return 2;
    const char *out = opt_get(&o, "--out"), *seeds_s = opt_get(&o, "--seeds"), *every_s = opt_get(&o, "--every");
    const char *pre_s = opt_get(&o, "--pretrain-steps"), *ft_s = opt_get(&o, "--finetune-steps");
    const char *test_s = opt_get(&o, "--test-every"), *source_s = opt_get(&o, "--source"), *var_s = opt_get(&o, "--variants");
    const char *replay = opt_get(&o, "--replay"), *replay_out = opt_get(&o, "--replay-out");
    if (o.error) return 2;
    if (replay) return replay_out ? (toy_replay(replay, replay_out) ? 0 : 1) : (fail("toy2d", "--replay needs --replay-out"), 2);
    toy_options opt = {5001, 1001, 50, 250, TOY_SOURCE_I};
    long v, variants = 1;
    if (!out) out = "out/toy2d";
    if ((every_s && (!parse_long(every_s, 1, 1 << 30, &v) || !(opt.every = v))) ||
        (pre_s && (!parse_long(pre_s, 1, 1 << 30, &v) || !(opt.pretrain_steps = v))) ||
        (ft_s && (!parse_long(ft_s, 1, 1 << 30, &v) || !(opt.finetune_steps = v))) ||
        (test_s && (!parse_long(test_s, 1, 1 << 30, &v) || !(opt.test_every = v))) ||
        (var_s && !parse_long(var_s, 0, 1, &variants)))
        return fail("toy2d", "a numeric option is out of range (see gantl toy2d --help)"), 2;
    if (source_s && strcmp(source_s, "I") && strcmp(source_s, "II")) return fail("toy2d", "--source must be I or II"), 2;
    if (source_s && !strcmp(source_s, "II")) opt.source = TOY_SOURCE_II;
    if ((opt.pretrain_steps + opt.every - 1) / opt.every > 128 || (opt.finetune_steps + opt.test_every - 1) / opt.test_every > 64)
        return fail("toy2d", "at most 128 checkpoints and 64 tests per fine-tuning"), 2;
    uint32_t *seed_list = NULL;
    int seeds = parse_seeds(seeds_s ? seeds_s : "0", &seed_list);
    if (seeds < 1 || seeds > 4) {
        free(seed_list);
        return fail("toy2d", "--seeds: one to four seeds, like 0 or 0-2"), 2;
    }
    if (!make_dir(out)) {
        free(seed_list);
        fprintf(stderr, "gantl toy2d: cannot create '%s'\n", out);
        return 1;
    }
    static double recall[4][128], sim[4][128], w1[4][128];
    int counts[4] = {0};
    double r_recall[4], p_recall[4], r_sim[4], p_sim[4];
    double var_w1[4][5]; /* full, G only, D only, scratch, Source-II */
    char path[4096];
    double t0 = wall_seconds();
    printf("2-D experiment: pretraining on %s for %lld G steps (a checkpoint every %lld), fine-tuning each on the "
           "target for %lld G steps (W1 tested every %lld); %d seed(s)\n", toy_source_name(opt.source),
           (long long)opt.pretrain_steps, (long long)opt.every, (long long)opt.finetune_steps, (long long)opt.test_every, seeds);
    for (int si = 0; si < seeds; si++) {
        uint64_t seed = seed_list[si];
        static toy_checkpoint ckpt[128];
        int count = 0;
        toy_run pre;
        if (!toy_pretrain(&opt, seed * 7919 + 1, ckpt, &count, &pre)) {
            fprintf(stderr, "gantl toy2d: %s\n", gantl_last_error());
            return 1;
        }
        printf("seed %llu: pretrained (%.0f s); fine-tuning %d checkpoints...\n", (unsigned long long)seed,
               wall_seconds() - t0, count);
        fflush(stdout);
        GANTL__OMP(parallel for schedule(dynamic, 1))
        for (int i = 0; i < count; i++) { /* each checkpoint with its own random streams */
            toy_run r;
            gantl_rng metrics_rng = gantl_rng_new(seed * 1000003 + (uint64_t)i * 2 + 1);
            if (toy_run_init(&r, &ckpt[i].G, &ckpt[i].D, 0)) toy_checkpoint_metrics(&r, &metrics_rng, &ckpt[i].recall, &ckpt[i].similarity);
            toy_run_free(&r);
            ckpt[i].w1 = toy_finetune(&opt, &ckpt[i].G, &ckpt[i].D, seed * 1000003 + (uint64_t)i * 2 + 2, ckpt[i].w1_tests,
                                      &ckpt[i].tests);
        }
        counts[si] = count;
        for (int i = 0; i < count; i++) recall[si][i] = ckpt[i].recall, sim[si][i] = ckpt[i].similarity, w1[si][i] = ckpt[i].w1;
        gantl_pearson(recall[si], w1[si], count, &r_recall[si], &p_recall[si]);
        gantl_pearson(sim[si], w1[si], count, &r_sim[si], &p_sim[si]);
        /* per-checkpoint table */
        snprintf(path, sizeof path, "%s/checkpoints_seed%llu.csv", out, (unsigned long long)seed);
        FILE *csv = fopen(path, "w");
        if (csv) {
            fprintf(csv, "g_step,recall,grad_d_similarity,w1_min");
            for (int k = 0; k < ckpt[0].tests; k++) fprintf(csv, ",w1_at_%lld", (long long)(k * opt.test_every));
            fprintf(csv, "\n");
            for (int i = 0; i < count; i++) {
                fprintf(csv, "%lld,%.6f,%.6f,%.6f", (long long)ckpt[i].step, ckpt[i].recall, ckpt[i].similarity, ckpt[i].w1);
                for (int k = 0; k < ckpt[i].tests; k++) fprintf(csv, ",%.6f", ckpt[i].w1_tests[k]);
                fprintf(csv, "\n");
            }
            fclose(csv);
        }
        printf("seed %llu: Pearson(recall, W1) = %.3f (p %.2g), Pearson(grad-D similarity, W1) = %.3f (p %.2g)  [%.0f s]\n",
               (unsigned long long)seed, r_recall[si], p_recall[si], r_sim[si], p_sim[si], wall_seconds() - t0);
        fflush(stdout);
        /* the roles of G and D: fine-tune from the last checkpoint's G and D, one of them, none, and Source-II */
        if (variants) {
            toy_checkpoint *last = &ckpt[count - 1];
            toy_options o2 = opt;
            o2.source = opt.source == TOY_SOURCE_I ? TOY_SOURCE_II : TOY_SOURCE_I;
            static toy_checkpoint other[128];
            int other_count = 0;
            toy_run pre2;
            o2.every = 1 << 30; /* the final networks are what counts (pre2 holds them) */
            int ok2 = toy_pretrain(&o2, seed * 7919 + 2, other, &other_count, &pre2);
            GANTL__OMP(parallel for schedule(dynamic, 1))
            for (int k = 0; k < 5; k++) {
                uint64_t fs = seed * 1000003 + 900001 + (uint64_t)k;
                if (k == 0) var_w1[si][0] = toy_finetune(&opt, &last->G, &last->D, fs, NULL, NULL);
                if (k == 1) var_w1[si][1] = toy_finetune(&opt, &last->G, NULL, fs, NULL, NULL);
                if (k == 2) var_w1[si][2] = toy_finetune(&opt, NULL, &last->D, fs, NULL, NULL);
                if (k == 3) var_w1[si][3] = toy_finetune(&opt, NULL, NULL, fs, NULL, NULL);
                if (k == 4) var_w1[si][4] = ok2 ? toy_finetune(&opt, &pre2.G, &pre2.D, fs, NULL, NULL) : NAN;
            }
            toy_run_free(&pre2);
            for (int i = 0; i < other_count; i++) toy_net_free(&other[i].G), toy_net_free(&other[i].D);
            printf("seed %llu: fine-tuned W1 from %s G+D %.3f, G only %.3f, D only %.3f, scratch %.3f, %s G+D %.3f\n",
                   (unsigned long long)seed, toy_source_name(opt.source), var_w1[si][0], var_w1[si][1], var_w1[si][2],
                   var_w1[si][3], toy_source_name(o2.source), var_w1[si][4]);
            fflush(stdout);
        }
        if (si == 0) { /* the distributions and the pretrained generator */
            static float pts[3000 * 2];
            gantl_rng rng = gantl_rng_new(4242);
            plot p;
            if (plot_init(&p, 640, 640, -32, 32, -32, 32, "target, sources and the pretrained G", "x", "y")) {
                toy_sample(TOY_SOURCE_I, &rng, pts, 1500);
                for (int i = 0; i < 1500; i++) plot_point(&p, pts[2 * i], pts[2 * i + 1], 2, plot_blue, 0.15f);
                toy_sample(TOY_SOURCE_II, &rng, pts, 500);
                for (int i = 0; i < 500; i++) plot_point(&p, pts[2 * i], pts[2 * i + 1], 2, plot_green, 0.6f);
                toy_generate(&pre, &rng, pts, 1000);
                for (int i = 0; i < 1000; i++) plot_point(&p, pts[2 * i], pts[2 * i + 1], 2, plot_gold, 0.5f);
                toy_sample(TOY_TARGET, &rng, pts, 300);
                for (int i = 0; i < 300; i++) plot_point(&p, pts[2 * i], pts[2 * i + 1], 2, plot_red, 0.9f);
                plot_legend(&p, 0, "Source-I", plot_blue);
                plot_legend(&p, 1, "Source-II", plot_green);
                plot_legend(&p, 2, "target", plot_red);
                plot_legend(&p, 3, "G pretrained", plot_gold);
                snprintf(path, sizeof path, "%s/samples.png", out);
                plot_save(&p, path);
            }
        }
        toy_run_free(&pre);
        for (int i = 0; i < count; i++) toy_net_free(&ckpt[i].G), toy_net_free(&ckpt[i].D);
    }
    snprintf(path, sizeof path, "%s/w1_vs_recall.png", out);
    toy_plot_xy(path, "fine-tuned W1 against recall", "recall of the checkpoint (k = 5)", recall, w1, counts, seeds);
    snprintf(path, sizeof path, "%s/w1_vs_similarity.png", out);
    toy_plot_xy(path, "fine-tuned W1 against grad-D similarity", "grad-D similarity of the checkpoint", sim, w1, counts, seeds);
    double mr, sr, ms, ss;
    toy_mean_std(r_recall, seeds, &mr, &sr);
    toy_mean_std(r_sim, seeds, &ms, &ss);
    snprintf(path, sizeof path, "%s/results.json", out);
    FILE *js = fopen(path, "w");
    if (js) { /* non-finite numbers (a constant metric's Pearson, say) as null */
        fprintf(js, "{\"source\": \"%s\", \"pretrain_steps\": %lld, \"every\": %lld, \"finetune_steps\": %lld, "
                "\"test_every\": %lld, \"seeds\": [", toy_source_name(opt.source), (long long)opt.pretrain_steps,
                (long long)opt.every, (long long)opt.finetune_steps, (long long)opt.test_every);
        for (int s = 0; s < seeds; s++) {
            fprintf(js, "%s{\"seed\": %u, \"checkpoints\": %d", s ? ", " : "", seed_list[s], counts[s]);
            json_field(js, "pearson_recall_w1", r_recall[s]);
            json_field(js, "p_recall_w1", p_recall[s]);
            json_field(js, "pearson_similarity_w1", r_sim[s]);
            json_field(js, "p_similarity_w1", p_sim[s]);
            if (variants) {
                static const char *const names[5] = {"w1_full", "w1_g_only", "w1_d_only", "w1_scratch", "w1_other_source"};
                for (int k = 0; k < 5; k++) json_field(js, names[k], var_w1[s][k]);
            }
            fprintf(js, ", \"per_checkpoint\": [");
            for (int i = 0; i < counts[s]; i++) {
                fprintf(js, "%s{\"g_step\": %lld", i ? ", " : "", (long long)i * opt.every);
                json_field(js, "recall", recall[s][i]);
                json_field(js, "grad_d_similarity", sim[s][i]);
                json_field(js, "w1", w1[s][i]);
                fprintf(js, "}");
            }
            fprintf(js, "]}");
        }
        fprintf(js, "]");
        json_field(js, "pearson_recall_w1_mean", mr);
        json_field(js, "pearson_recall_w1_std", sr);
        json_field(js, "pearson_similarity_w1_mean", ms);
        json_field(js, "pearson_similarity_w1_std", ss);
        fprintf(js, ", \"paper\": {\"pearson_recall_w1\": -0.843, \"pearson_similarity_w1\": -0.728}}\n");
        fclose(js);
    }
    printf("Pearson(recall, W1) = %.3f +- %.3f (paper: -0.843); Pearson(grad-D similarity, W1) = %.3f +- %.3f (paper: -0.728)\n",
           mr, sr, ms, ss);
    printf("wrote %s/{results.json, checkpoints_seed*.csv, samples.png, w1_vs_recall.png, w1_vs_similarity.png} (%.0f s)\n",
           out, wall_seconds() - t0);
    free(seed_list);
    return 0;
}
