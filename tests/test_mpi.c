/* Data parallelism over MPI: build/gantl-mpi (make test builds it when mpicc and mpirun
   are found) under Open MPI's mpirun with 2 ranks on this machine; skipped without them.
   Two ranks at 2 x 16 against one process at 32, a rank killed, a rank that hangs, and the
   plain build refusing to run under mpirun. POSIX only. Uses cli_run from test_cli.c. */

#if defined(__unix__) || defined(__APPLE__)
#include <time.h>

/* root may run mpirun in CI; one OpenMP thread per rank (the ranks share the cores);
   timeout bounds every run */
#define MPIRUN                                                                                  \
    "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl=self,vader timeout 300 mpirun -np 2 " \
    "--oversubscribe --bind-to none -x OMP_NUM_THREADS=1 "

static double mpi_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int mpi_skip(void) {
    static int state = -1; /* -1 unknown, 0 run, 1 skip */
    char out[4096];
    if (state < 0) {
        FILE *f = fopen("build/gantl-mpi", "rb");
        if (f) fclose(f);
        int openmpi = cli_run("mpirun --version", out, sizeof out) == 0 && strstr(out, "Open MPI");
        state = !(f && openmpi);
        if (state) printf("     (MPI tests skipped: %s)\n", f ? "mpirun is not Open MPI's" : "no build/gantl-mpi: install mpicc, mpirun");
    }
    return state;
}

/* fashion-mnist sandals and bags with their labels, small networks, ADA (its p updated
   every 4 iterations from the sign statistics of both ranks), R1 on the first iteration
   (d_reg_interval 16): five iterations of 32 images, a snapshot after the last */
#define MPI_TRAIN "train --data fashion-mnist:sandal,bag --cond 1 --max-images 64 --res 16 --batch 32 " \
                  "--channel-base 512 --channel-max 32 --kimg 0.16 --tick 1 --snap 1 "

/* Largest |a - b| over the float tensors named prefix* of two files; -1 if they differ in
   names or shapes. *apart (if not NULL) counts the values more than beyond apart, *total
   the values compared. */
static double mpi_max_diff(const char *a_path, const char *b_path, const char *prefix, double beyond, int64_t *apart,
                           int64_t *total) {
    if (apart) *apart = 0;
    if (total) *total = 0;
    gantl_st_file a, b;
    if (gantl_st_load(&a, a_path) != GANTL_OK) return -1;
    if (gantl_st_load(&b, b_path) != GANTL_OK) {
        gantl_st_free(&a);
        return -1;
    }
    double worst = 0;
    int compared = 0;
    for (int i = 0; i < a.count && worst >= 0; i++) {
        const gantl_st_tensor *x = &a.tensors[i], *y = gantl_st_find(&b, x->name);
        if (strncmp(x->name, prefix, strlen(prefix)) != 0 || x->dtype != GANTL_F32) continue;
        if (!y || y->numel != x->numel || y->dtype != GANTL_F32) {
            worst = -1;
            break;
        }
        float *u = (float *)malloc((size_t)x->numel * 4 + 4), *v = (float *)malloc((size_t)x->numel * 4 + 4);
        gantl_st_read_f32(&a, x->name, u, x->numel, 0, NULL);
        gantl_st_read_f32(&b, y->name, v, y->numel, 0, NULL);
        for (int64_t k = 0; k < x->numel; k++) {
            double e = fabs((double)u[k] - v[k]) + (u[k] != u[k] ? 1e9 : 0);
            worst = fmax(worst, e);
            if (apart && e > beyond) ++*apart;
        }
        if (total) *total += x->numel;
        free(u), free(v);
        compared++;
    }
    gantl_st_free(&a);
    gantl_st_free(&b);
    return compared ? worst : -1;
}

/* A number from a snapshot's gantl.train metadata. */
static double mpi_train_meta(const char *path, const char *key) {
    gantl_st_file f;
    double v = NAN;
    if (gantl_st_load(&f, path) != GANTL_OK) return v;
    const char *m = gantl_st_meta(&f, "gantl.train"), *at = m ? strstr(m, key) : NULL;
    if (at) {
        at += strlen(key);
        while (*at == '"' || *at == ':' || *at == ' ') at++;
        v = atof(at);
    }
    gantl_st_free(&f);
    return v;
}

/* The metrics object of the only line of a metrics.jsonl; 0 if there is not exactly one. */
static int mpi_metrics_line(const char *path, gantl_json *j, const gantl_json **m) {
    unsigned char *log;
    size_t size;
    if (gantl_read_file(path, &log, &size) != GANTL_OK) return 0;
    char *nl = (char *)memchr(log, '\n', size);
    int ok = nl && (size_t)(nl - (char *)log) + 1 == size && gantl_json_parse(j, (char *)log, (size_t)(nl - (char *)log)) == GANTL_OK;
    free(log);
    *m = ok ? gantl_json_get(j, "metrics") : NULL;
    if (ok && !*m) gantl_json_free(j), ok = 0;
    return ok;
}

/* --metrics in training: 300 samples of G_ema (rank 0 makes blocks 0-4 of 32, rank 1 the
   rest) against 300 sandals (rank 0 the first 256, rank 1 the rest), at the snapshot */
#define MPI_TRAIN_METRICS "--metrics fid,pr,modes --metrics-num 300 --metrics-real fashion-mnist:sandal "

/* train (with --metrics), then metrics on the snapshot */
static void test_mpi_two_ranks_match_one_process(void) {
    if (mpi_skip()) return;
    char out[16384];
    /* separate feature caches: the two ranks extract the real images themselves */
    int rc = cli_run("rm -rf build/mpi_one build/mpi_two build/mpi_tcache0 build/mpi_tcache1 && GANTL_CACHE=build/mpi_tcache0 "
                     "./build/gantl " MPI_TRAIN MPI_TRAIN_METRICS "--out build/mpi_one", out, sizeof out);
    CHECK_MSG(rc == 0, "one process: exit %d: %s", rc, out);
    rc = cli_run("GANTL_CACHE=build/mpi_tcache1 " MPIRUN "./build/gantl-mpi " MPI_TRAIN MPI_TRAIN_METRICS "--out build/mpi_two", out,
                 sizeof out);
    CHECK_MSG(rc == 0 && strstr(out, "data parallel: 2 ranks of 16 images"), "mpirun: exit %d: %s", rc, out);
    /* rank 0 alone speaks and writes: one header, one log line per tick */
    const char *first = strstr(out, "training from scratch");
    CHECK_MSG(first && !strstr(first + 1, "training from scratch"), "%s", out);
    unsigned char *log;
    size_t size;
    if (gantl_read_file("build/mpi_two/stats.jsonl", &log, &size) == GANTL_OK) {
        int lines = 0;
        for (size_t i = 0; i < size; i++) lines += log[i] == '\n';
        CHECK_MSG(lines == 1 && strstr((char *)log, "\"metrics\": {\"fid\": "), "%d lines in stats.jsonl: %s", lines, (char *)log);
        free(log);
    } else
        CHECK_MSG(0, "no build/mpi_two/stats.jsonl");
    const char *one = "build/mpi_one/network-snapshot-000000.safetensors", *two = "build/mpi_two/network-snapshot-000000.safetensors";
    /* Adam (beta1 0) moves a value by about lr = 0.0025 an iteration whatever the size of
       its gradient, and the float noise of the sums (about 1e-5 relative through Winograd
       F(4x4) convolutions) moves most by ~1e-5 over these five; but where a gradient is
       near zero the noise can turn a step. So: every value within 4 lr, and at most 0.1%
       of them more than 0.1 lr apart. */
    const char *nets[3] = {"G.", "D.", "G_ema."};
    for (int i = 0; i < 3; i++) {
        int64_t apart = 0, total = 0;
        double d = mpi_max_diff(one, two, nets[i], 2.5e-4, &apart, &total);
        CHECK_MSG(d >= 0 && d <= 1e-2 && apart * 1000 <= total, "%s tensors differ by up to %g, %lld of %lld by more than 2.5e-4",
                  nets[i], d, (long long)apart, (long long)total);
        if (getenv("GANTL_TEST_VERBOSE"))
            printf("    %s: largest difference %.3g, %lld of %lld values beyond 2.5e-4\n", nets[i], d, (long long)apart,
                   (long long)total);
    }
    double d = mpi_max_diff(one, two, "train.adam_", 0, NULL, NULL); /* the moments (the int64 step counts are not compared here) */
    CHECK_MSG(d >= 0 && d <= 1e-3, "Adam moments differ by %g", d);
    /* the same iterations: progress, Adam steps and the random stream exactly */
    const char *keys[5] = {"\"cur_nimg\"", "\"batch_idx\"", "\"adam_g_step\"", "\"rng_offset\"", "\"ada_sign_count\""};
    for (int i = 0; i < 5; i++) {
        double a = mpi_train_meta(one, keys[i]), b = mpi_train_meta(two, keys[i]);
        CHECK_MSG(a == b && a > 0, "%s: one process %g, two ranks %g", keys[i], a, b);
    }
    CHECK(mpi_train_meta(one, "\"ada_sign_sum\"") == mpi_train_meta(two, "\"ada_sign_sum\""));
    /* the training metrics: one line, written by rank 0, near one process's (G_ema differs by
       the float noise above: FID within 1%, a few of the 300 neighbourhoods may flip) */
    gantl_json ja, jb;
    const gantl_json *ma, *mb;
    int have_a = mpi_metrics_line("build/mpi_one/metrics.jsonl", &ja, &ma), have_b = mpi_metrics_line("build/mpi_two/metrics.jsonl", &jb, &mb);
    CHECK_MSG(have_a && have_b, "metrics.jsonl: one process %d, two ranks %d (one line each)", have_a, have_b);
    if (have_a && have_b) {
        CHECK(cli_json_number(&ja, "num_fake") == 300 && cli_json_number(&jb, "num_fake") == 300);
        CHECK(cli_json_number(&ja, "num_real") == 300 && cli_json_number(&jb, "num_real") == 300);
        double fa = cli_json_number(ma, "fid"), fb = cli_json_number(mb, "fid");
        CHECK_MSG(fa > 0 && fabs(fa - fb) <= 0.01 * fa, "fid: one process %g, two ranks %g", fa, fb);
        const char *keys[3] = {"precision", "recall", "modes"};
        double tolerance[3] = {0.02, 0.02, 1};
        for (int i = 0; i < 3; i++) {
            double a = cli_json_number(ma, keys[i]), b = cli_json_number(mb, keys[i]);
            CHECK_MSG(a == a && fabs(a - b) <= tolerance[i], "%s: one process %g, two ranks %g", keys[i], a, b);
        }
    }
    if (have_a) gantl_json_free(&ja);
    if (have_b) gantl_json_free(&jb);
    /* metrics: the ranks share the generated images (blocks of 32) and the real ones
       (blocks of 256, the classifier's batches) and get one process's numbers */
    char json[2][4096];
    for (int i = 0; i < 2; i++) {
        char command[1024];
        snprintf(command, sizeof command,
                 "%s metrics --real fashion-mnist:sandal --num 300 --fake %s --metrics fid,pr,dc,modes --json 1 "
                 "--cache build/mpi_cache%d 2>&1 | grep '^{'",
                 i ? MPIRUN "./build/gantl-mpi" : "./build/gantl", one, i);
        rc = cli_run(command, json[i], sizeof json[i]);
        CHECK_MSG(rc == 0 && strstr(json[i], "\"fid\": "), "%s: exit %d: %s", i ? "mpirun" : "one process", rc, json[i]);
    }
    CHECK_MSG(!strcmp(json[0], json[1]), "one process %s, two ranks %s", json[0], json[1]);
    cli_run("rm -rf build/mpi_one build/mpi_two build/mpi_cache0 build/mpi_cache1 build/mpi_tcache0 build/mpi_tcache1", out, sizeof out);
}

/* A rank that dies (SIGKILL) or hangs (SIGSTOP) once training runs: the job ends with a
   clear message instead of waiting forever. mpirun notices a dead rank and ends the job;
   a stopped one is alive, and the other rank's collective gives up after --comm-timeout. */
static void test_mpi_lost_rank_ends_the_job(void) {
    if (mpi_skip()) return;
    const char *signals[2] = {"KILL", "STOP"};
    char out[16384], command[2048];
    for (int i = 0; i < 2; i++) {
        /* rank 1's shell starts a watcher that signals it (exec keeps the pid) once the
           first tick is logged */
        snprintf(command, sizeof command,
                 "rm -rf build/mpi_lost && mkdir -p build/mpi_lost && " MPIRUN "sh -c 'if [ \"$OMPI_COMM_WORLD_RANK\" = 1 ]; "
                 "then (while [ ! -s build/mpi_lost/stats.jsonl ]; do sleep 0.1; done; kill -%s $$) & fi; exec "
                 "./build/gantl-mpi train --data fashion-mnist:sandal --max-images 64 --res 16 --batch 32 --channel-base 512 "
                 "--channel-max 32 --kimg 1000 --tick 0.032 --snap 100000 --comm-timeout 5 --out build/mpi_lost'",
                 signals[i]);
        double start = mpi_now();
        int rc = cli_run(command, out, sizeof out);
        double seconds = mpi_now() - start;
        CHECK_MSG(rc != 0 && rc != 124 && seconds < 120, "SIG%s: exit %d after %.0f s: %s", signals[i], rc, seconds, out);
        if (i == 0)
            CHECK_MSG(strstr(out, "rank 1") && strstr(out, "signal 9"), "SIGKILL: %s", out);
        else
            CHECK_MSG(strstr(out, "gantl train: rank 0: rank 0 of 2: MPI_Iallreduce") && strstr(out, "within 5 s"), "SIGSTOP: %s",
                      out);
    }
    cli_run("rm -rf build/mpi_lost", out, sizeof out);
}

/* Without MPI, K copies under mpirun would each train alone: the plain build refuses. */
static void test_mpi_plain_build_refuses_mpirun(void) {
    if (mpi_skip()) return;
    char out[8192];
    if (cli_run("./build/gantl info", out, sizeof out) != 0 || strstr(out, "data parallel: MPI")) return; /* make MPI=1 */
    int rc = cli_run(MPIRUN "./build/gantl train --data fashion-mnist:sandal --out build/mpi_plain", out, sizeof out);
    CHECK_MSG(rc != 0 && strstr(out, "built without MPI"), "exit %d: %s", rc, out);
    cli_run("rm -rf build/mpi_plain", out, sizeof out);
}
#endif

static void run_mpi_tests(void) {
#if defined(__unix__) || defined(__APPLE__)
    RUN(test_mpi_two_ranks_match_one_process);
    RUN(test_mpi_lost_rank_ends_the_job);
    RUN(test_mpi_plain_build_refuses_mpirun);
#endif
}
