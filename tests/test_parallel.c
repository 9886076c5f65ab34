/* Data parallelism without MPI: K trainers in K threads of this process, joined by an
   in-process gantl_comm, against one trainer at the full batch. The replicas must stay
   bit-identical, and match the single process within float tolerance (the sums run in
   another order). The same trainer code runs over MPI in test_mpi.c. POSIX threads. */

#if defined(__unix__) || defined(__APPLE__)
#include <pthread.h>

/* ---- an in-process communicator: a barrier, and sums in rank order (the same bits on
   every rank) ---- */

#define TCOMM_MAX 8

typedef struct tcomm_shared {
    int size;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int arrived;
    unsigned generation;
    void *bufs[TCOMM_MAX];
    int64_t counts[TCOMM_MAX];
    int calls[TCOMM_MAX]; /* collectives made by each rank */
} tcomm_shared;

typedef struct tcomm {
    tcomm_shared *sh;
    int rank;
} tcomm;

static void tcomm_barrier(tcomm_shared *sh) {
    pthread_mutex_lock(&sh->mu);
    unsigned gen = sh->generation;
    if (++sh->arrived == sh->size) {
        sh->arrived = 0;
        sh->generation++;
        pthread_cond_broadcast(&sh->cv);
    } else
        while (gen == sh->generation) pthread_cond_wait(&sh->cv, &sh->mu);
    pthread_mutex_unlock(&sh->mu);
}

/* Publishes buf and its size; GANTL_ERR_COMM if the ranks disagree on the size. */
static gantl_status tcomm_publish(tcomm *c, void *buf, int64_t n) {
    tcomm_shared *sh = c->sh;
    sh->bufs[c->rank] = buf, sh->counts[c->rank] = n, sh->calls[c->rank]++;
    tcomm_barrier(sh);
    for (int r = 0; r < sh->size; r++)
        if (sh->counts[r] != n) return gantl__fail(GANTL_ERR_COMM, "tcomm: rank %d has %lld values, rank %d %lld", c->rank,
                                                   (long long)n, r, (long long)sh->counts[r]);
    return GANTL_OK;
}

static gantl_status tcomm_allreduce_f32(void *state, float *buf, int64_t n) {
    tcomm *c = (tcomm *)state;
    gantl_status s = tcomm_publish(c, buf, n);
    float *sum = (float *)malloc((size_t)n * sizeof(float) + 1);
    for (int64_t i = 0; s == GANTL_OK && i < n; i++) {
        float acc = 0.0f;
        for (int r = 0; r < c->sh->size; r++) acc += ((const float *)c->sh->bufs[r])[i];
        sum[i] = acc;
    }
    tcomm_barrier(c->sh); /* everyone has read every buffer */
    if (s == GANTL_OK) memcpy(buf, sum, (size_t)n * sizeof(float));
    free(sum);
    return s;
}

static gantl_status tcomm_allreduce_f64(void *state, double *buf, int64_t n) {
    tcomm *c = (tcomm *)state;
    gantl_status s = tcomm_publish(c, buf, n);
    double *sum = (double *)malloc((size_t)n * sizeof(double) + 1);
    for (int64_t i = 0; s == GANTL_OK && i < n; i++) {
        double acc = 0.0;
        for (int r = 0; r < c->sh->size; r++) acc += ((const double *)c->sh->bufs[r])[i];
        sum[i] = acc;
    }
    tcomm_barrier(c->sh);
    if (s == GANTL_OK) memcpy(buf, sum, (size_t)n * sizeof(double));
    free(sum);
    return s;
}

static gantl_status tcomm_broadcast(void *state, void *buf, int64_t bytes, int root) {
    tcomm *c = (tcomm *)state;
    gantl_status s = tcomm_publish(c, buf, bytes);
    if (s == GANTL_OK && c->rank != root) memcpy(buf, c->sh->bufs[root], (size_t)bytes);
    tcomm_barrier(c->sh);
    return s;
}

static gantl_comm tcomm_make(tcomm *c) {
    gantl_comm g;
    g.rank = c->rank, g.size = c->sh->size, g.state = c;
    g.allreduce_f32 = tcomm_allreduce_f32, g.allreduce_f64 = tcomm_allreduce_f64, g.broadcast = tcomm_broadcast;
    return g;
}

/* ---- the run: a small conditional G and D with everything on (ADA moving p, R1, path
   length, style mixing, minibatch std, lazy regularisation every other iteration) ---- */

#define PAR_STEPS 4
#define PAR_B 8

static void par_configs(gantl_g_config *g, gantl_d_config *d, gantl_train_config *cfg) {
    CHECK(gantl_train_preset("small", 8, 1, 2, g, d, cfg) == GANTL_OK);
    g->channel_base = d->channel_base = 64, g->channel_max = d->channel_max = 8, g->z_dim = g->w_dim = 8;
    d->mbstd_group_size = 2;
    cfg->batch_size = PAR_B, cfg->batch_gpu = 0;
    cfg->pl_weight = 2.0f, cfg->style_mixing_prob = 0.9f, cfg->r1_gamma = 1.0f;
    cfg->g_reg_interval = 2, cfg->d_reg_interval = 2;
    cfg->augment = 1, cfg->augment_p = 0.3f, cfg->ada_target = 0.6f, cfg->ada_interval = 1, cfg->ada_kimg = 0.4f;
}

/* The global batch of step `step`: reals (B, 1, 8, 8), real_c (B, 2), gen_c (np * B, 2). */
static void par_batch(int step, int np, float *reals, float *real_c, float *gen_c) {
    gantl_rng rng = gantl_rng_new(100 + (uint64_t)step);
    gantl_rng_uniform(&rng, reals, PAR_B * 64, -1, 1);
    memset(real_c, 0, (size_t)PAR_B * 2 * sizeof(float));
    memset(gen_c, 0, (size_t)np * PAR_B * 2 * sizeof(float));
    for (int i = 0; i < PAR_B; i++) real_c[i * 2 + (i % 3 == 1)] = 1;
    for (int i = 0; i < np * PAR_B; i++) gen_c[i * 2 + (gantl_rng_u32(&rng) & 1)] = 1;
}

typedef struct par_rank {
    tcomm c;
    int batch_gpu, seed;
    gantl_trainer t;
    gantl_status status;
    char error[1024];
    int replicas_ok;
} par_rank;

static void *par_rank_main(void *arg) {
    par_rank *p = (par_rank *)arg;
#if defined(_OPENMP) && !defined(GANTL_NO_OPENMP)
    omp_set_num_threads(1); /* the ranks share the cores */
#endif
    gantl_g_config g;
    gantl_d_config d;
    gantl_train_config cfg;
    par_configs(&g, &d, &cfg);
    cfg.batch_gpu = p->batch_gpu;
    gantl_comm comm = tcomm_make(&p->c);
    int K = comm.size;
    /* every rank but 0 starts from another seed: set_comm gives it rank 0's state */
    gantl_status s = gantl_trainer_init(&p->t, &g, &d, &cfg, (uint64_t)(p->seed + p->c.rank));
    if (s == GANTL_OK) s = gantl_trainer_set_comm(&p->t, &comm);
    int np = s == GANTL_OK ? gantl_trainer_num_phases(&p->t) : 4;
    int64_t n = PAR_B / K;
    float reals[PAR_B * 64], real_c[PAR_B * 2], gen_c[4 * PAR_B * 2];
    float my_reals[PAR_B * 64], my_real_c[PAR_B * 2], my_gen_c[4 * PAR_B * 2];
    for (int step = 0; step < PAR_STEPS && s == GANTL_OK; step++) {
        par_batch(step, np, reals, real_c, gen_c);
        for (int64_t i = 0; i < n; i++) { /* this rank's rows: i * K + rank */
            int64_t row = i * K + p->c.rank;
            memcpy(my_reals + i * 64, reals + row * 64, 64 * sizeof(float));
            memcpy(my_real_c + i * 2, real_c + row * 2, 2 * sizeof(float));
            for (int ph = 0; ph < np; ph++)
                memcpy(my_gen_c + (ph * n + i) * 2, gen_c + (ph * PAR_B + row) * 2, 2 * sizeof(float));
        }
        s = gantl_trainer_step(&p->t, my_reals, my_real_c, my_gen_c, NULL);
    }
    if (s == GANTL_OK) p->replicas_ok = gantl_trainer_check_replicas(&p->t) == GANTL_OK;
    p->status = s;
    snprintf(p->error, sizeof p->error, "%s", s == GANTL_OK ? "" : gantl_last_error());
    return NULL;
}

static void *par_rank_check(void *arg) {
    par_rank *p = (par_rank *)arg;
    p->status = gantl_trainer_check_replicas(&p->t);
    p->replicas_ok = p->status == GANTL_OK;
    snprintf(p->error, sizeof p->error, "%s", p->status == GANTL_OK ? "" : gantl_last_error());
    return NULL;
}

static void par_threads(par_rank *ranks, int K, void *(*fn)(void *)) {
    pthread_t threads[TCOMM_MAX];
    for (int r = 0; r < K; r++) CHECK(pthread_create(&threads[r], NULL, fn, &ranks[r]) == 0);
    for (int r = 0; r < K; r++) pthread_join(threads[r], NULL);
}

/* Runs K ranks at batch_gpu; one process at batch_gpu_single. */
static void par_check(int K, int batch_gpu, int batch_gpu_single) {
    tcomm_shared sh;
    memset(&sh, 0, sizeof sh);
    sh.size = K;
    pthread_mutex_init(&sh.mu, NULL);
    pthread_cond_init(&sh.cv, NULL);
    par_rank ranks[TCOMM_MAX];
    memset(ranks, 0, sizeof ranks);
    for (int r = 0; r < K; r++) ranks[r].c.sh = &sh, ranks[r].c.rank = r, ranks[r].batch_gpu = batch_gpu, ranks[r].seed = 5;
    par_threads(ranks, K, par_rank_main);
    int ok = 1;
    for (int r = 0; r < K; r++) {
        CHECK_MSG(ranks[r].status == GANTL_OK, "rank %d: %s", r, ranks[r].error);
        CHECK_MSG(sh.calls[r] == sh.calls[0], "rank %d made %d collectives, rank 0 %d", r, sh.calls[r], sh.calls[0]);
        ok = ok && ranks[r].status == GANTL_OK;
    }
    /* one process at the full batch */
    gantl_g_config g;
    gantl_d_config d;
    gantl_train_config cfg;
    par_configs(&g, &d, &cfg);
    cfg.batch_gpu = batch_gpu_single;
    gantl_trainer one;
    CHECK(gantl_trainer_init(&one, &g, &d, &cfg, 5) == GANTL_OK);
    int np = gantl_trainer_num_phases(&one);
    float reals[PAR_B * 64], real_c[PAR_B * 2], gen_c[4 * PAR_B * 2];
    for (int step = 0; step < PAR_STEPS; step++) {
        par_batch(step, np, reals, real_c, gen_c);
        CHECK(gantl_trainer_step(&one, reals, real_c, gen_c, NULL) == GANTL_OK);
    }
    if (ok) {
        gantl_trainer *t0 = &ranks[0].t;
        for (int r = 1; r < K; r++) { /* bit-identical replicas */
            gantl_trainer *t = &ranks[r].t;
            CHECK(ranks[r].replicas_ok);
            CHECK(!memcmp(t->G.params.data, t0->G.params.data, (size_t)t0->G.params.numel * 4));
            CHECK(!memcmp(t->D.params.data, t0->D.params.data, (size_t)t0->D.params.numel * 4));
            CHECK(!memcmp(t->G_ema.params.data, t0->G_ema.params.data, (size_t)t0->G_ema.params.numel * 4));
            CHECK(!memcmp(t->G.buffers.data, t0->G.buffers.data, (size_t)t0->G.buffers.numel * 4));
            CHECK(!memcmp(t->opt_d.v, t0->opt_d.v, (size_t)t0->opt_d.numel * 4));
            CHECK(t->pl_mean == t0->pl_mean && t->augment.p == t0->augment.p && t->rng.offset == t0->rng.offset);
        }
        /* the same iterations as one process: the random stream, ADA's p, progress exactly;
           the networks within float tolerance. Adam moves a value by about lr = 0.0025 per
           step: where a gradient is at the float noise of its phase, the step direction
           may differ, so the tolerance is a share of the distance 4 steps can move. */
        CHECK_MSG(t0->rng.offset == one.rng.offset, "random stream at %llu, one process at %llu",
                  (unsigned long long)t0->rng.offset, (unsigned long long)one.rng.offset);
        CHECK(t0->cur_nimg == one.cur_nimg && t0->batch_idx == one.batch_idx && t0->opt_g.step == one.opt_g.step);
        CHECK_MSG(t0->augment.p == one.augment.p && t0->augment.p != cfg.augment_p, "p %.9g, one process %.9g",
                  (double)t0->augment.p, (double)one.augment.p);
        CHECK_NEAR(t0->pl_mean, one.pl_mean, 1e-5 * (1 + fabs(one.pl_mean)));
        CHECK_ALLCLOSE(t0->G.params.data, one.G.params.data, one.G.params.numel, 2e-4, 1e-4);
        CHECK_ALLCLOSE(t0->D.params.data, one.D.params.data, one.D.params.numel, 2e-4, 1e-4);
        CHECK_ALLCLOSE(t0->G_ema.params.data, one.G_ema.params.data, one.G_ema.params.numel, 2e-4, 1e-4);
        CHECK_ALLCLOSE(t0->G.buffers.data, one.G.buffers.data, one.G.buffers.numel, 1e-5, 1e-5); /* w_avg */
        CHECK_ALLCLOSE(t0->opt_g.v, one.opt_g.v, one.opt_g.numel, 1e-9, 1e-2);
        /* a replica that drifted is caught, on every rank */
        ranks[K - 1].t.D.params.data[3] += 1e-3f;
        par_threads(ranks, K, par_rank_check);
        for (int r = 0; r < K; r++)
            CHECK_MSG(!ranks[r].replicas_ok && ranks[r].status == GANTL_ERR_COMM && strstr(ranks[r].error, "replicas differ"),
                      "rank %d: %s", r, ranks[r].error);
    }
    gantl_trainer_free(&one);
    for (int r = 0; r < K; r++) gantl_trainer_free(&ranks[r].t);
    pthread_mutex_destroy(&sh.mu);
    pthread_cond_destroy(&sh.cv);
}

/* 2 ranks of 4 images, one round each = one process at 8 */
static void test_parallel_two_ranks_match_one_process(void) { par_check(2, 0, 0); }
/* 2 ranks in rounds of 2 = one process in rounds of 4 (per-round means summed, as officially) */
static void test_parallel_rounds_match_one_process(void) { par_check(2, 2, 4); }
/* 4 ranks of 2 images (minibatch-std groups of 2, path length on 1 image each) */
static void test_parallel_four_ranks_match_one_process(void) { par_check(4, 0, 0); }

static void test_parallel_set_comm_checks_the_split(void) {
    gantl_g_config g;
    gantl_d_config d;
    gantl_train_config cfg;
    par_configs(&g, &d, &cfg);
    gantl_trainer t;
    CHECK(gantl_trainer_init(&t, &g, &d, &cfg, 1) == GANTL_OK);
    gantl_comm c = gantl_comm_single();
    c.size = 3; /* never called: the checks come first */
    CHECK(gantl_trainer_set_comm(&t, &c) == GANTL_ERR_INVALID && strstr(gantl_last_error(), "does not split over 3"));
    c.size = 8; /* one image a rank: no path length on half of it */
    CHECK(gantl_trainer_set_comm(&t, &c) == GANTL_ERR_INVALID && strstr(gantl_last_error(), "path length"));
    c.size = 2; /* rounds of 4 images are not groups of 3 */
    t.D.cfg.mbstd_group_size = 3;
    CHECK(gantl_trainer_set_comm(&t, &c) == GANTL_ERR_INVALID && strstr(gantl_last_error(), "minibatch-std group 3"));
    t.D.cfg.mbstd_group_size = 2;
    c.size = 1;
    CHECK(gantl_trainer_set_comm(&t, &c) == GANTL_OK && gantl_trainer_local_batch(&t) == PAR_B);
    CHECK(gantl_trainer_check_replicas(&t) == GANTL_OK);
    gantl_trainer_free(&t);
    /* the single communicator's collectives change nothing */
    float x[2] = {1, 2};
    c = gantl_comm_single();
    CHECK(gantl_comm_allreduce_f32(&c, x, 2) == GANTL_OK && gantl_comm_broadcast(&c, x, 8, 0) == GANTL_OK && x[1] == 2);
}
#endif

static void run_parallel_tests(void) {
#if defined(__unix__) || defined(__APPLE__)
    RUN(test_parallel_set_comm_checks_the_split);
    RUN(test_parallel_two_ranks_match_one_process);
    RUN(test_parallel_rounds_match_one_process);
    RUN(test_parallel_four_ranks_match_one_process);
#endif
}
