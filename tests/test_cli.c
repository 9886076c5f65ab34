/* The command line: runs build/gantl (built by make test before the suite) and checks its
   outputs against the library and its error messages. POSIX only. */

#if defined(__unix__) || defined(__APPLE__)
#include <time.h> /* nanosleep */
/* Runs a shell command, captures stdout+stderr into out; returns the exit code. */
static int cli_run(const char *command, char *out, size_t size) {
    char full[2048];
    snprintf(full, sizeof full, "%s 2>&1", command);
    FILE *p = popen(full, "r");
    if (!p) return -1;
    size_t n = fread(out, 1, size - 1, p);
    out[n] = 0;
    int status = pclose(p);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* 1 when n floats agree: bit for bit, as the CLI and this test are built with the same flags;
   within 1e-5 * max(1, |value|) in the sanitizer build (make asan: -O1, other rounding). */
static int cli_same_floats(const float *a, const float *b, int64_t n) {
#if defined(__SANITIZE_ADDRESS__)
    for (int64_t i = 0; i < n; i++)
        if (!(fabs((double)a[i] - b[i]) <= 1e-5 * fmax(1.0, fabs(b[i])))) return 0;
    return 1;
#else
    return memcmp(a, b, (size_t)n * sizeof(float)) == 0;
#endif
}

static void test_cli_generate_matches_library(void) {
    char out[4096];
    int rc = cli_run("./build/gantl generate --ckpt tests/fixtures/sg2_g.safetensors --net G --seeds 3-5,9 "
                     "--trunc 0.7 --npy build/test_cli.npy --out build/test_cli.png", out, sizeof out);
    CHECK_MSG(rc == 0, "exit %d: %s", rc, out);
    CHECK(strstr(out, "wrote build/test_cli.npy: 4 images") != NULL);
    /* the same through the library: z from NumPy's RandomState(seed) */
    gantl_st_file f;
    gantl_generator G;
    CHECK(gantl_st_load(&f, "tests/fixtures/sg2_g.safetensors") == GANTL_OK);
    CHECK(gantl_generator_from_file(&G, &f, "G.") == GANTL_OK);
    gantl_st_free(&f);
    gantl_ctx *ctx = gantl_ctx_new(0);
    gantl_tensor *z = gantl_new_2d(ctx, 4, G.cfg.z_dim);
    uint32_t seeds[4] = {3, 4, 5, 9};
    double row[64];
    for (int i = 0; i < 4; i++) {
        gantl_numpy_randn(seeds[i], row, G.cfg.z_dim);
        for (int d = 0; d < G.cfg.z_dim; d++) z->data[i * G.cfg.z_dim + d] = (float)row[d];
    }
    gantl_tensor *img = gantl_generator_synthesis(ctx, &G, gantl_generator_mapping(ctx, &G, z, NULL, 0.7f, -1, 0),
                                                  GANTL_NOISE_CONST, NULL, NULL);
    gantl_npy a;
    CHECK(gantl_npy_load(&a, "build/test_cli.npy") == GANTL_OK);
    CHECK(a.dtype == GANTL_F32 && a.ndim == 4 && a.shape[0] == 4 && a.shape[1] == 3 && a.shape[2] == 16);
    if (a.numel == img->numel) CHECK(cli_same_floats((const float *)a.data, img->data, img->numel));
    gantl_npy_free(&a);
    /* a 2x2 grid of 16x16 RGB images: PNG width and height are big-endian at bytes 16..23 */
    unsigned char *png;
    size_t size;
    CHECK(gantl_read_file("build/test_cli.png", &png, &size) == GANTL_OK && size > 24);
    CHECK(!memcmp(png + 1, "PNG", 3) && png[19] == 32 && png[23] == 32 && png[25] == 2 /* RGB */);
    free(png);
    gantl_ctx_free(ctx);
    gantl_generator_free(&G);
    remove("build/test_cli.npy");
    remove("build/test_cli.png");
}

static void test_cli_discriminate_matches_library(void) {
    char out[8192];
    /* images from the fixture, written as .npy */
    gantl_st_file f;
    CHECK(gantl_st_load(&f, "tests/fixtures/sg2_d.safetensors") == GANTL_OK);
    const gantl_st_tensor *t = gantl_st_find(&f, "in.img_real");
    CHECK(t != NULL);
    if (!t) {
        gantl_st_free(&f);
        return;
    }
    gantl_npy_save("build/test_cli_x.npy", GANTL_F32, t->ndim, t->shape, t->bytes);
    int rc = cli_run("./build/gantl discriminate --ckpt tests/fixtures/sg2_d.safetensors --images build/test_cli_x.npy "
                     "--out build/test_cli_l.npy", out, sizeof out);
    CHECK_MSG(rc == 0, "exit %d: %s", rc, out);
    gantl_discriminator D;
    CHECK(gantl_discriminator_from_file(&D, &f, "D.") == GANTL_OK);
    gantl_ctx *ctx = gantl_ctx_new(0);
    gantl_tensor *x = gantl_new(ctx, t->ndim, t->shape);
    gantl_st_read_f32(&f, "in.img_real", x->data, x->numel, 0, NULL);
    gantl_tensor *l = gantl_discriminator_forward(ctx, &D, x, NULL);
    gantl_npy a;
    CHECK(gantl_npy_load(&a, "build/test_cli_l.npy") == GANTL_OK && a.ndim == 2 && a.shape[0] == l->shape[0]);
    if (a.numel == l->numel) CHECK(cli_same_floats((const float *)a.data, l->data, l->numel));
    gantl_npy_free(&a);
    gantl_ctx_free(ctx);
    gantl_discriminator_free(&D);
    gantl_st_free(&f);
    remove("build/test_cli_x.npy");
    remove("build/test_cli_l.npy");
}

/* The library's images for z and class index klass (-1: unconditional), as the CLI makes them:
   psi 1, one batch, random noise from gantl_rng_new(noise_seed). */
static gantl_tensor *cli_lib_images(gantl_ctx *ctx, gantl_generator *G, gantl_tensor *z, int klass, gantl_noise_mode mode,
                                    uint64_t noise_seed) {
    gantl_tensor *c = NULL;
    if (klass >= 0) {
        int64_t cs[2] = {z->shape[0], G->cfg.c_dim};
        c = gantl_zeros(ctx, 2, cs);
        for (int64_t i = 0; i < z->shape[0]; i++) c->data[i * G->cfg.c_dim + klass] = 1.0f;
    }
    gantl_rng rng = gantl_rng_new(noise_seed);
    return gantl_generator_synthesis(ctx, G, gantl_generator_mapping(ctx, G, z, c, 1.0f, -1, 0), mode, &rng, NULL);
}

/* 1 when the float32 .npy at path holds t's shape and values: bit for bit in a build with the
   CLI's flags, within 1e-5 * max(1, |value|) when the test binary is built otherwise (make asan). */
static int cli_npy_equals(const char *path, const gantl_tensor *t) {
    gantl_npy a;
    if (!t || gantl_npy_load(&a, path) != GANTL_OK) return 0;
    int same = a.dtype == GANTL_F32 && a.ndim == t->ndim && a.numel == t->numel;
    for (int d = 0; same && d < t->ndim; d++) same = a.shape[d] == t->shape[d];
    const float *v = (const float *)a.data;
    for (int64_t i = 0; same && i < t->numel; i++) same = fabs((double)v[i] - t->data[i]) <= 1e-5 * fmax(1.0, fabs(t->data[i]));
    gantl_npy_free(&a);
    return same;
}

/* generate --z, --class, --noise-mode const|random|none and the default --net G_ema, and
   discriminate --class, on a conditional checkpoint made from the fixtures (G_ema: sg2_gc's G;
   G: the same with every parameter scaled by 1.1; D: sg2_dc's D), against the library. */
static void test_cli_generate_options_and_conditional(void) {
    const char *ckpt = "build/test_cli_cond.safetensors";
    gantl_st_file fg, fd;
    gantl_generator G;
    gantl_discriminator D;
    if (gantl_st_load(&fg, "tests/fixtures/sg2_gc.safetensors") != GANTL_OK) {
        CHECK_MSG(0, "%s", gantl_last_error());
        return;
    }
    if (gantl_st_load(&fd, "tests/fixtures/sg2_dc.safetensors") != GANTL_OK) {
        CHECK_MSG(0, "%s", gantl_last_error());
        gantl_st_free(&fg);
        return;
    }
    if (gantl_generator_from_file(&G, &fg, "G.") != GANTL_OK || gantl_discriminator_from_file(&D, &fd, "D.") != GANTL_OK) {
        CHECK_MSG(0, "%s", gantl_last_error());
        gantl_st_free(&fg);
        gantl_st_free(&fd);
        return;
    }
    CHECK(G.cfg.c_dim == 3 && D.cfg.c_dim == 3);
    gantl_st_writer w;
    gantl_st_writer_init(&w);
    char gjson[1024], djson[1024];
    gantl_g_config_to_json(&G.cfg, gjson, sizeof gjson);
    gantl_d_config_to_json(&D.cfg, djson, sizeof djson);
    gantl_st_writer_meta(&w, "gantl.G", gjson);
    gantl_st_writer_meta(&w, "gantl.D", djson);
    gantl_generator G_train;
    CHECK(gantl_generator_from_file(&G_train, &fg, "G.") == GANTL_OK);
    for (int64_t i = 0; i < G_train.params.numel; i++) G_train.params.data[i] *= 1.1f;
    CHECK(gantl_generator_write(&G, &w, "G_ema.") == GANTL_OK);
    CHECK(gantl_generator_write(&G_train, &w, "G.") == GANTL_OK);
    CHECK(gantl_discriminator_write(&D, &w, "D.") == GANTL_OK);
    CHECK(gantl_st_writer_save(&w, ckpt) == GANTL_OK);
    gantl_st_writer_free(&w);
    gantl_ctx *ctx = gantl_ctx_new(0);
    gantl_set_grad_enabled(ctx, 0);
    gantl_rng rng = gantl_rng_new(21);
    int64_t zs[2] = {3, G.cfg.z_dim};
    gantl_tensor *z = gantl_randn(ctx, &rng, 2, zs);
    CHECK(gantl_npy_save("build/test_cli_z.npy", GANTL_F32, 2, z->shape, z->data) == GANTL_OK);
    struct {
        const char *args;
        gantl_generator *net;
        int klass;
        gantl_noise_mode mode;
        int noise_seed;
    } runs[] = {
        {"--class 1 --noise-mode const", &G, 1, GANTL_NOISE_CONST, 0}, /* default --net: G_ema */
        {"--class 1 --noise-mode none", &G, 1, GANTL_NOISE_NONE, 0},
        {"--class 1 --noise-mode random --noise-seed 5", &G, 1, GANTL_NOISE_RANDOM, 5},
        {"--class 1 --noise-mode random --noise-seed 6", &G, 1, GANTL_NOISE_RANDOM, 6},
        {"--class 1 --noise-mode const --net G", &G_train, 1, GANTL_NOISE_CONST, 0},
        {"--class 2 --net G_ema", &G, 2, GANTL_NOISE_CONST, 0},
    };
    enum { RUNS = sizeof runs / sizeof runs[0], NUMEL = 3 * 1 * 16 * 16 };
    static float images[RUNS][NUMEL];
    char out[4096];
    for (int r = 0; r < RUNS; r++) {
        char command[512];
        snprintf(command, sizeof command, "./build/gantl generate --ckpt %s --z build/test_cli_z.npy %s --npy build/test_cli_g.npy",
                 ckpt, runs[r].args);
        int rc = cli_run(command, out, sizeof out);
        CHECK_MSG(rc == 0 && strstr(out, "wrote build/test_cli_g.npy: 3 images, float32 (3, 1, 16, 16)"), "'%s': exit %d: %s",
                  runs[r].args, rc, out);
        gantl_tensor *img = cli_lib_images(ctx, runs[r].net, z, runs[r].klass, runs[r].mode, (uint64_t)runs[r].noise_seed);
        CHECK_MSG(cli_npy_equals("build/test_cli_g.npy", img), "'%s': not the library's images", runs[r].args);
        if (img && img->numel == NUMEL) memcpy(images[r], img->data, sizeof images[r]);
    }
    /* each option changes the images: no two runs above gave the same */
    for (int r = 0; r < RUNS; r++)
        for (int q = 0; q < r; q++)
            CHECK_MSG(memcmp(images[r], images[q], sizeof images[r]) != 0, "'%s' and '%s' gave the same images", runs[r].args,
                      runs[q].args);
    /* discriminate --class 2: D(x, one-hot 2) */
    const gantl_st_tensor *t = gantl_st_find(&fd, "in.img_real");
    CHECK(t != NULL);
    if (t) {
        gantl_npy_save("build/test_cli_x.npy", GANTL_F32, t->ndim, t->shape, t->bytes);
        int rc = cli_run("./build/gantl discriminate --ckpt build/test_cli_cond.safetensors --images build/test_cli_x.npy "
                         "--class 2 --out build/test_cli_l.npy", out, sizeof out);
        CHECK_MSG(rc == 0, "exit %d: %s", rc, out);
        gantl_tensor *x = gantl_new(ctx, t->ndim, t->shape);
        gantl_st_read_f32(&fd, "in.img_real", x->data, x->numel, 0, NULL);
        int64_t cs[2] = {t->shape[0], 3};
        gantl_tensor *c = gantl_zeros(ctx, 2, cs);
        for (int64_t i = 0; i < t->shape[0]; i++) c->data[i * 3 + 2] = 1.0f;
        gantl_tensor *logits = gantl_discriminator_forward(ctx, &D, x, c);
        CHECK(cli_npy_equals("build/test_cli_l.npy", logits));
        c = gantl_zeros(ctx, 2, cs);
        for (int64_t i = 0; i < t->shape[0]; i++) c->data[i * 3] = 1.0f;
        CHECK(!cli_npy_equals("build/test_cli_l.npy", gantl_discriminator_forward(ctx, &D, x, c))); /* class 0 differs */
    }
    CHECK(gantl_ctx_status(ctx) == GANTL_OK);
    gantl_ctx_free(ctx);
    gantl_generator_free(&G);
    gantl_generator_free(&G_train);
    gantl_discriminator_free(&D);
    gantl_st_free(&fg);
    gantl_st_free(&fd);
    remove(ckpt);
    remove("build/test_cli_z.npy");
    remove("build/test_cli_g.npy");
    remove("build/test_cli_x.npy");
    remove("build/test_cli_l.npy");
}

static void test_cli_errors_and_help(void) {
    struct {
        const char *args;
        int rc;
        const char *message;
    } cases[] = {
        {"", 2, "usage: gantl COMMAND"},
        {"frobnicate", 2, "unknown command 'frobnicate'"},
        {"generate --help", 0, "--seeds LIST"},
        {"discriminate --help", 0, "--images X.npy"},
        {"info --help", 0, "usage: gantl info"},
        {"export --help", 0, "usage: gantl export"},
        {"train --help", 0, "usage: gantl train"},
        {"metrics --help", 0, "usage: gantl metrics"},
        {"select --help", 0, "usage: gantl select"},
        {"toy2d --help", 0, "usage: gantl toy2d"},
        {"generate --seeds 0-3", 2, "--ckpt is required"},
        {"generate --ckpt x --seeds 0-3 --z z.npy", 2, "exactly one of --seeds and --z"},
        {"generate --ckpt x --seeds 5-2", 1, "cannot open 'x'"},
        {"generate --ckpt tests/fixtures/sg2_g.safetensors --net G --seeds 5-2", 1, "--seeds must look like"},
        {"generate --ckpt tests/fixtures/sg2_g.safetensors --seeds 0", 1, "'G_ema.synthesis.b4.const' is missing"},
        {"generate --ckpt tests/fixtures/sg2_gc.safetensors --net G --seeds 0", 1, "conditional: give --class 0..2"},
        {"generate --ckpt tests/fixtures/sg2_g.safetensors --net G --seeds 0 --noise-mode loud", 2, "--noise-mode must be"},
        {"generate --ckpt tests/fixtures/sg2_g.safetensors --bogus 1", 2, "unknown argument '--bogus'"},
        {"generate --ckpt tests/fixtures/core.safetensors --seeds 0", 1, "no \"gantl.G\" metadata"},
        {"discriminate --ckpt tests/fixtures/sg2_d.safetensors --images tests/fixtures/array_u8.npy", 1,
         "must be float images in [-1, 1] of shape (N, 3, 16, 16)"},
    };
    char out[8192];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char command[512];
        snprintf(command, sizeof command, "./build/gantl %s", cases[i].args);
        int rc = cli_run(command, out, sizeof out);
        CHECK_MSG(rc == cases[i].rc, "'%s': exit %d, expected %d", cases[i].args, rc, cases[i].rc);
        CHECK_MSG(strstr(out, cases[i].message) != NULL, "'%s': output '%s'", cases[i].args, out);
    }
}

/* Compares every tensor of two files byte for byte (names, shapes, values). */
static int cli_same_tensors(const char *a_path, const char *b_path, const char *prefix) {
    gantl_st_file a, b;
    if (gantl_st_load(&a, a_path) != GANTL_OK) return 0;
    if (gantl_st_load(&b, b_path) != GANTL_OK) {
        gantl_st_free(&a);
        return 0;
    }
    int same = 1, compared = 0;
    for (int i = 0; i < a.count; i++) {
        const gantl_st_tensor *x = &a.tensors[i], *y = gantl_st_find(&b, x->name);
        if (strncmp(x->name, prefix, strlen(prefix)) != 0) continue;
        compared++;
        if (!y || y->numel != x->numel || y->dtype != x->dtype ||
            memcmp(x->bytes, y->bytes, (size_t)x->numel * gantl_dtype_size(x->dtype)) != 0) {
            fprintf(stderr, "    %s differs\n", x->name);
            same = 0;
        }
    }
    gantl_st_free(&a);
    gantl_st_free(&b);
    return same && compared > 0;
}

/* The last line of out parsed as JSON (the --json output), or 0. */
static int cli_last_json(const char *out, gantl_json *j) {
    const char *end = out + strlen(out);
    while (end > out && (end[-1] == '\n' || end[-1] == ' ')) end--;
    const char *line = end;
    while (line > out && line[-1] != '\n') line--;
    return gantl_json_parse(j, line, (size_t)(end - line)) == GANTL_OK && j->type == GANTL_JSON_OBJECT;
}

static double cli_json_number(const gantl_json *j, const char *key) {
    const gantl_json *v = gantl_json_get(j, key);
    return v && v->type == GANTL_JSON_NUMBER ? v->number : NAN;
}

static int cli_close(double got, double want, double rel) { return fabs(got - want) <= rel * fmax(1.0, fabs(want)); }

#define CLI_TRAIN "./build/gantl train --data fashion-mnist:sandal --max-images 64 --res 16 --aug noaug --batch 8 " \
                  "--channel-base 64 --channel-max 8 --snap 1 --tick 0.032 "

static void test_cli_train_outputs_and_exact_resume(void) {
    char out[16384];
    int rc = cli_run("rm -rf build/cli_a build/cli_b build/cli_b2 && " CLI_TRAIN "--out build/cli_a --kimg 0.064 "
                     "--metrics fid,pr,modes --metrics-num 64", out, sizeof out);
    CHECK_MSG(rc == 0, "exit %d: %s", rc, out);
    CHECK(strstr(out, "64 images, 1 channel(s), 16x16") && strstr(out, "training from scratch") && strstr(out, "tick 1"));
    const char *files[4] = {"build/cli_a/reals.png", "build/cli_a/fakes_init.png", "build/cli_a/fakes000000.png",
                            "build/cli_a/network-snapshot-000000.safetensors"};
    for (int i = 0; i < 4; i++) {
        FILE *f = fopen(files[i], "rb");
        CHECK_MSG(f != NULL, "%s missing", files[i]);
        if (f) fclose(f);
    }
    unsigned char *log;
    size_t size;
    CHECK(gantl_read_file("build/cli_a/stats.jsonl", &log, &size) == GANTL_OK);
    if (size) { /* two ticks, each a JSON object with the losses */
        int lines = 0;
        for (size_t i = 0; i < size; i++) lines += log[i] == '\n';
        CHECK(lines == 2 && strstr((char *)log, "\"loss_g\": ") && strstr((char *)log, "\"img_per_sec\": ") &&
              strstr((char *)log, "\"metrics\": {\"fid\": "));
        free(log);
    }
    /* --metrics: one line per snapshot (two), also in stats.jsonl (scoring G_ema must not disturb training: cli_b2 below
       runs without it and must match) */
    CHECK(gantl_read_file("build/cli_a/metrics.jsonl", &log, &size) == GANTL_OK);
    if (size) {
        gantl_json j;
        char *nl = (char *)memchr(log, '\n', size);
        int lines = 0;
        for (size_t i = 0; i < size; i++) lines += log[i] == '\n';
        int parsed = lines == 2 && nl && gantl_json_parse(&j, (char *)log, (size_t)(nl - (char *)log)) == GANTL_OK;
        CHECK_MSG(parsed, "metrics.jsonl: %s", (char *)log);
        if (parsed) {
            const gantl_json *m = gantl_json_get(&j, "metrics");
            CHECK(m && cli_json_number(m, "fid") > 0 && cli_json_number(m, "recall") >= 0 && cli_json_number(m, "modes") >= 1);
            CHECK(cli_json_number(&j, "num_fake") == 64 && cli_json_number(&j, "num_real") == 64);
            gantl_json_free(&j);
        }
        free(log);
    }
    /* half the run, then a continuation from its snapshot: the same networks, bit for bit */
    rc = cli_run(CLI_TRAIN "--out build/cli_b --kimg 0.032", out, sizeof out);
    CHECK_MSG(rc == 0, "exit %d: %s", rc, out);
    rc = cli_run(CLI_TRAIN "--out build/cli_b2 --kimg 0.064 --resume build/cli_b/network-snapshot-000000.safetensors", out,
                 sizeof out);
    CHECK_MSG(rc == 0 && strstr(out, "continuing the run"), "exit %d: %s", rc, out);
    CHECK(cli_same_tensors("build/cli_a/network-snapshot-000000.safetensors", "build/cli_b2/network-snapshot-000000.safetensors", "G."));
    CHECK(cli_same_tensors("build/cli_a/network-snapshot-000000.safetensors", "build/cli_b2/network-snapshot-000000.safetensors", "D."));
    CHECK(cli_same_tensors("build/cli_a/network-snapshot-000000.safetensors", "build/cli_b2/network-snapshot-000000.safetensors", "G_ema."));
    CHECK(cli_same_tensors("build/cli_a/network-snapshot-000000.safetensors", "build/cli_b2/network-snapshot-000000.safetensors", "train."));
    /* export: the networks unchanged, no training state; resuming it on the same data fine-tunes */
    rc = cli_run("./build/gantl export --ckpt build/cli_a/network-snapshot-000000.safetensors --out build/cli_a/export.safetensors",
                 out, sizeof out);
    CHECK_MSG(rc == 0 && strstr(out, "wrote build/cli_a/export.safetensors"), "exit %d: %s", rc, out);
    const char *prefixes[3] = {"G.", "D.", "G_ema."};
    for (int i = 0; i < 3; i++)
        CHECK(cli_same_tensors("build/cli_a/network-snapshot-000000.safetensors", "build/cli_a/export.safetensors", prefixes[i]));
    gantl_st_file ex;
    if (gantl_st_load(&ex, "build/cli_a/export.safetensors") == GANTL_OK) {
        int train_tensors = 0;
        for (int i = 0; i < ex.count; i++) train_tensors += !strncmp(ex.tensors[i].name, "train.", 6);
        CHECK(train_tensors == 0 && !gantl_st_meta(&ex, "gantl.train") && gantl_st_meta(&ex, "gantl.G") && gantl_st_meta(&ex, "gantl.D"));
        gantl_st_free(&ex);
    } else
        CHECK_MSG(0, "%s", gantl_last_error());
    rc = cli_run(CLI_TRAIN "--out build/cli_c --kimg 0.008 --resume build/cli_a/export.safetensors", out, sizeof out);
    CHECK_MSG(rc == 0 && strstr(out, "fine-tuning"), "exit %d: %s", rc, out);
    rc = cli_run("./build/gantl export --ckpt tests/fixtures/core.safetensors --out build/cli_a/x.safetensors", out, sizeof out);
    CHECK_MSG(rc == 1 && strstr(out, "no gantl.G / gantl.D configuration"), "exit %d: %s", rc, out);
    cli_run("rm -rf build/cli_a build/cli_b build/cli_b2 build/cli_c", out, sizeof out);
}

static void test_cli_train_fine_tunes_a_checkpoint(void) {
    char out[16384];
    /* the fixture's G and D (16x16 RGB): grey bags are replicated to RGB */
    int rc = cli_run("rm -rf build/cli_ft && ./build/gantl train --data fashion-mnist:bag --max-images 16 --resume "
                     "tests/fixtures/sg2_gd.safetensors --out build/cli_ft --kimg 0.008 --batch 4 --tick 0.008",
                     out, sizeof out);
    CHECK_MSG(rc == 0 && strstr(out, "fine-tuning") && strstr(out, "16 images, 3 channel(s), 16x16"), "exit %d: %s", rc, out);
    /* two iterations are three Adam steps of G (Gmain, Greg, Gmain) with lr 0.0025 * 4/5; with
       beta1 = 0 step t moves a value by at most lr * sqrt(t): together 0.0083 at most */
    gantl_st_file a, b;
    CHECK(gantl_st_load(&a, "tests/fixtures/sg2_gd.safetensors") == GANTL_OK);
    CHECK(gantl_st_load(&b, "build/cli_ft/network-snapshot-000000.safetensors") == GANTL_OK);
    /* the official transfer settings: ADA reacting over 100 kimg, no EMA ramp-up (the small
       preset alone has 500 and 0.05), ADA on by default */
    const char *train_meta = gantl_st_meta(&b, "gantl.train");
    gantl_json tj;
    if (train_meta && gantl_json_parse(&tj, train_meta, strlen(train_meta)) == GANTL_OK) {
        const gantl_json *c = gantl_json_get(&tj, "config");
        CHECK_MSG(c && cli_json_number(c, "ada_kimg") == 100 && cli_json_number(c, "ema_rampup") < 0 &&
                      cli_json_number(c, "augment") == 1 && cli_json_number(c, "ada_target") > 0,
                  "fine-tuning config: %s", train_meta);
        gantl_json_free(&tj);
    } else
        CHECK_MSG(0, "the fine-tuned snapshot has no gantl.train metadata");
    const gantl_st_tensor *w0 = gantl_st_find(&a, "G.synthesis.b8.conv0.weight"), *w1 = gantl_st_find(&b, "G.synthesis.b8.conv0.weight");
    CHECK(w0 && w1 && w0->numel == w1->numel);
    if (w0 && w1 && w0->numel == w1->numel) {
        float *x = (float *)malloc((size_t)w0->numel * 4), *y = (float *)malloc((size_t)w0->numel * 4);
        gantl_st_read_f32(&a, w0->name, x, w0->numel, 0, NULL);
        gantl_st_read_f32(&b, w1->name, y, w1->numel, 0, NULL);
        double moved = 0;
        for (int64_t i = 0; i < w0->numel; i++) moved = fmax(moved, fabs((double)x[i] - y[i]));
        CHECK_MSG(moved > 0 && moved <= 0.002 * (1 + sqrt(2.0) + sqrt(3.0)) + 1e-6, "moved by %g", moved);
        free(x), free(y);
    }
    gantl_st_free(&a);
    gantl_st_free(&b);
    /* a checkpoint whose resolution does not fit the data is a clear error */
    rc = cli_run("./build/gantl train --data tests/fixtures/array_u8.npy --resume tests/fixtures/sg2_gd.safetensors "
                 "--out build/cli_ft --kimg 0.008", out, sizeof out);
    CHECK_MSG(rc != 0, "exit %d: %s", rc, out);
    rc = cli_run("./build/gantl train --data fashion-mnist:shoe --out build/cli_ft", out, sizeof out);
    CHECK_MSG(rc == 1 && strstr(out, "shoe"), "exit %d: %s", rc, out);
    cli_run("rm -rf build/cli_ft", out, sizeof out);
}

/* The lines of a JSONL file parsed (at most max); returns how many parsed. */
static int cli_read_jsonl(const char *path, gantl_json *lines, int max) {
    unsigned char *bytes;
    size_t size;
    int n = 0;
    if (gantl_read_file(path, &bytes, &size) != GANTL_OK) return 0;
    for (size_t start = 0; start < size && n < max;) {
        const char *line = (const char *)bytes + start, *nl = (const char *)memchr(line, '\n', size - start);
        size_t len = nl ? (size_t)(nl - line) : size - start;
        if (gantl_json_parse(&lines[n], line, len) != GANTL_OK) break;
        n++;
        start += len + 1;
    }
    if (size) free(bytes);
    return n;
}

/* A grid PNG of 64 RxR grey images (8x8 cells) as written by the trainer: its mean cell, the
   average image of the grid (R * R values, 0..255); 0 if it cannot be read. */
static int cli_grid_mean(const char *path, double *mean, int *res) {
    int w, h, c;
    unsigned char *px = stbi_load(path, &w, &h, &c, 1);
    if (!px) return 0;
    int R = w / 8, ok = w == h && R * 8 == w && R <= 64;
    for (int i = 0; ok && i < R * R; i++) mean[i] = 0;
    for (int y = 0; ok && y < h; y++)
        for (int x = 0; x < w; x++) mean[(y % R) * R + x % R] += px[y * w + x] / 64.0;
    *res = R;
    stbi_image_free(px);
    return ok;
}

/* RMS difference of two mean images. */
static double cli_rms(const double *a, const double *b, int n) {
    double s = 0;
    for (int i = 0; i < n; i++) s += (a[i] - b[i]) * (a[i] - b[i]);
    return sqrt(s / n);
}

/* A short CPU run on 300 Fashion-MNIST bags (40 iterations of 16, four ticks) makes progress,
   as logged: D separates reals from fakes (its score gap D(real) - D(fake) grows), its loss
   falls and the gap between the D and G losses narrows (loss_d - loss_g 0.62 -> 0.36 in
   this deterministic run; at the start D is random, loss_d ~ 2 ln 2, loss_g ~ ln 2), and the
   sample grid of G_ema at the end differs from the one at the start and its mean image is
   closer to the reals' (RMS 73 -> 59 grey levels here). Without training none of these
   moves: the checks have wide margins. ~10 s on two cores. */
static void test_cli_train_learns_fashion_mnist(void) {
    char out[16384];
    int rc = cli_run("rm -rf build/cli_learn && ./build/gantl train --data fashion-mnist:bag --max-images 300 --res 16 "
                     "--aug noaug --batch 16 --channel-base 128 --channel-max 16 --kimg 0.64 --tick 0.16 --snap 100 "
                     "--out build/cli_learn", out, sizeof out);
    CHECK_MSG(rc == 0 && strstr(out, "300 images, 1 channel(s), 16x16"), "exit %d: %s", rc, out);
    gantl_json ticks[8];
    int n = cli_read_jsonl("build/cli_learn/stats.jsonl", ticks, 8);
    CHECK_MSG(n == 4, "%d ticks in stats.jsonl", n);
    if (n >= 2) {
        const gantl_json *first = &ticks[0], *last = &ticks[n - 1];
        double gap0 = cli_json_number(first, "score_real") - cli_json_number(first, "score_fake");
        double gap1 = cli_json_number(last, "score_real") - cli_json_number(last, "score_fake");
        double d0 = cli_json_number(first, "loss_d"), d1 = cli_json_number(last, "loss_d");
        double dg0 = d0 - cli_json_number(first, "loss_g"), dg1 = d1 - cli_json_number(last, "loss_g");
        if (getenv("GANTL_TEST_VERBOSE"))
            printf("    score gap %.3f -> %.3f, loss_d %.3f -> %.3f, loss_d - loss_g %.3f -> %.3f\n", gap0, gap1, d0, d1,
                   dg0, dg1);
        CHECK_MSG(gap1 > 0.1 && gap1 > gap0 + 0.1, "D(real) - D(fake): %g -> %g", gap0, gap1);
        CHECK_MSG(d1 < d0 - 0.05, "loss_d %g -> %g", d0, d1);
        CHECK_MSG(dg1 < dg0 - 0.05, "loss_d - loss_g %g -> %g", dg0, dg1);
        CHECK(cli_json_number(last, "kimg") == 0.64 && cli_json_number(last, "tick") == n - 1);
    }
    for (int i = 0; i < n; i++) gantl_json_free(&ticks[i]);
    /* the sample grids: fakes000000.png (the end, 0.64 kimg) against fakes_init.png and reals.png */
    static double real[64 * 64], init[64 * 64], end[64 * 64];
    int r0 = 0, r1 = 0, r2 = 0;
    int read = cli_grid_mean("build/cli_learn/reals.png", real, &r0) && cli_grid_mean("build/cli_learn/fakes_init.png", init, &r1) &&
               cli_grid_mean("build/cli_learn/fakes000000.png", end, &r2);
    CHECK_MSG(read && r0 == 16 && r1 == 16 && r2 == 16, "grids missing or not 8x8 cells of 16x16 (%d %d %d)", r0, r1, r2);
    if (read && r0 == 16 && r1 == 16 && r2 == 16) {
        unsigned char *a = NULL, *b = NULL;
        size_t na = 0, nb = 0;
        int both = gantl_read_file("build/cli_learn/fakes_init.png", &a, &na) == GANTL_OK &&
                   gantl_read_file("build/cli_learn/fakes000000.png", &b, &nb) == GANTL_OK;
        CHECK(both);
        CHECK_MSG(!both || na != nb || memcmp(a, b, na) != 0, "the final grid is the initial one");
        free(a), free(b);
        double before = cli_rms(init, real, 256), after = cli_rms(end, real, 256), moved = cli_rms(init, end, 256);
        if (getenv("GANTL_TEST_VERBOSE")) printf("    mean image vs reals %.2f -> %.2f (moved %.2f)\n", before, after, moved);
        CHECK_MSG(moved > 5.0 && after < before - 5.0, "mean fake image vs reals: RMS %.2f -> %.2f (moved %.2f)", before,
                  after, moved);
    }
    cli_run("rm -rf build/cli_learn", out, sizeof out);
}

/* The "config" object of a snapshot's gantl.train metadata (j is freed by the caller), or NULL. */
static const gantl_json *cli_train_meta(const gantl_st_file *f, gantl_json *j, const char *key) {
    const char *text = gantl_st_meta(f, key);
    if (!text || gantl_json_parse(j, text, strlen(text)) != GANTL_OK) {
        CHECK_MSG(0, "no parsable %s metadata", key);
        return NULL;
    }
    return j;
}

/* Sleeps ms milliseconds. */
static void cli_sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* waitpid with a bound: the exit code, 1000 + the signal that killed it (a shell's 128 +
   signal would look like the 130 that gantl train exits with), or -1 (too long: then the
   child is killed). */
static int cli_wait(pid_t pid, double seconds) {
    int status;
    for (long waited = 0; waited < (long)(seconds * 1000); waited += 20) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid) return WIFEXITED(status) ? WEXITSTATUS(status) : WIFSIGNALED(status) ? 1000 + WTERMSIG(status) : -1;
        if (r < 0) return -1;
        cli_sleep_ms(20);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    return -1;
}

/* Ctrl-C: a run (with ADA, so the stop can fall inside an ADA interval) that gets SIGINT once
   its first tick is logged finishes the iteration, saves a snapshot that loads, exits with
   130, and --resume continues from it. Every wait is bounded (2 minutes). */
static void test_cli_train_ctrl_c_saves_and_resumes(void) {
    char out[16384];
    cli_run("rm -rf build/cli_int build/cli_int2 && mkdir -p build/cli_int", out, sizeof out);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) { /* exec: SIGINT goes to gantl itself, not to a shell */
        execl("/bin/sh", "sh", "-c",
              "exec ./build/gantl train --data fashion-mnist:sandal --max-images 64 --res 16 --aug ada --batch 8 "
              "--channel-base 64 --channel-max 8 --tick 0.008 --snap 1000 --kimg 1000 --out build/cli_int "
              "> build/cli_int/log.txt 2>&1", (char *)NULL);
        _exit(127);
    }
    CHECK(pid > 0);
    if (pid <= 0) return;
    /* the first tick's line: the signal handlers are installed before the loop */
    int logged = 0, exited_early = 0, status;
    for (long waited = 0; waited < 120000 && !logged && !exited_early; waited += 20) {
        unsigned char *bytes;
        size_t size;
        if (gantl_read_file("build/cli_int/stats.jsonl", &bytes, &size) == GANTL_OK) {
            logged = size > 0 && memchr(bytes, '\n', size) != NULL;
            free(bytes);
        }
        if (!logged) {
            exited_early = waitpid(pid, &status, WNOHANG) == pid;
            cli_sleep_ms(20);
        }
    }
    CHECK_MSG(logged && !exited_early, "no tick logged (exited early: %d)", exited_early);
    if (!exited_early) {
        kill(pid, SIGINT);
        int rc = cli_wait(pid, 120);
        CHECK_MSG(rc == 130, "exit %d after SIGINT, expected 130", rc);
    }
    unsigned char *log = NULL;
    size_t size = 0;
    CHECK(gantl_read_file("build/cli_int/log.txt", &log, &size) == GANTL_OK);
    CHECK_MSG(size && strstr((char *)log, "stopped by a signal") && strstr((char *)log, "saved build/cli_int/network-snapshot-000000"),
              "log: %s", size ? (char *)log : "");
    if (size) free(log);
    /* the snapshot loads as a training state; no temporary file is left */
    gantl_st_file f;
    int64_t nimg = 0;
    if (gantl_st_load(&f, "build/cli_int/network-snapshot-000000.safetensors") == GANTL_OK) {
        gantl_trainer t;
        gantl_status s = gantl_trainer_from_snapshot(&t, &f);
        CHECK_MSG(s == GANTL_OK, "%s", gantl_last_error());
        if (s == GANTL_OK) {
            nimg = t.cur_nimg;
            CHECK_MSG(nimg >= 8 && nimg % 8 == 0 && t.cfg.augment && t.cfg.ada_target > 0, "cur_nimg %lld", (long long)nimg);
            gantl_trainer_free(&t);
        }
        gantl_st_free(&f);
    } else
        CHECK_MSG(0, "%s", gantl_last_error());
    FILE *tmp = fopen("build/cli_int/network-snapshot-000000.safetensors.tmp", "rb");
    CHECK(tmp == NULL);
    if (tmp) fclose(tmp);
    /* --resume continues it: two more iterations (to nimg + 12 rounds up to nimg + 16) */
    if (nimg > 0) {
        char cmd[1024];
        snprintf(cmd, sizeof cmd, "./build/gantl train --data fashion-mnist:sandal --max-images 64 --res 16 --aug ada --batch 8 "
                 "--channel-base 64 --channel-max 8 --tick 0.008 --snap 1000 --kimg %.3f --out build/cli_int2 --resume "
                 "build/cli_int/network-snapshot-000000.safetensors", (double)(nimg + 12) / 1000.0);
        int rc = cli_run(cmd, out, sizeof out);
        CHECK_MSG(rc == 0 && strstr(out, "continuing the run"), "exit %d: %s", rc, out);
        if (gantl_st_load(&f, "build/cli_int2/network-snapshot-000000.safetensors") == GANTL_OK) {
            gantl_json j;
            if (cli_train_meta(&f, &j, "gantl.train")) {
                CHECK_MSG(cli_json_number(&j, "cur_nimg") == (double)(nimg + 16), "resumed at %lld, ended at %g", (long long)nimg,
                          cli_json_number(&j, "cur_nimg"));
                gantl_json_free(&j);
            }
            gantl_st_free(&f);
        } else
            CHECK_MSG(0, "%s", gantl_last_error());
    }
    cli_run("rm -rf build/cli_int build/cli_int2", out, sizeof out);
}

/* --cfg, --res, --gamma, --aug fixed:P, --seed and --batch reach the run: one iteration each,
   read back from the snapshot's gantl.G / gantl.D / gantl.train / gantl.data metadata. */
static void test_cli_train_options_reach_the_run(void) {
    char out[16384];
    /* cifar: train.py's constants, batch 64 in rounds of batch_gpu 64 // 2 = 32 */
    int rc = cli_run("rm -rf build/cli_opt && ./build/gantl train --data fashion-mnist:sandal --max-images 64 --cfg cifar "
                     "--res 8 --channel-base 64 --channel-max 8 --gamma 0.5 --aug fixed:0.3 --seed 5 --kimg 0.064 "
                     "--tick 0.064 --out build/cli_opt", out, sizeof out);
    CHECK_MSG(rc == 0 && strstr(out, "64 images, 1 channel(s), 8x8") && strstr(out, "batch 64, gamma 0.5, fixed augmentation"),
              "exit %d: %s", rc, out);
    gantl_st_file f;
    if (gantl_st_load(&f, "build/cli_opt/network-snapshot-000000.safetensors") == GANTL_OK) {
        gantl_json j, g, d, data;
        if (cli_train_meta(&f, &j, "gantl.train")) {
            const gantl_json *c = gantl_json_get(&j, "config");
            CHECK(c != NULL);
            if (c) {
                CHECK(cli_json_number(c, "batch_size") == 64 && cli_json_number(c, "batch_gpu") == 32);
                CHECK(cli_json_number(c, "r1_gamma") == 0.5 && cli_json_number(c, "augment") == 1);
                CHECK_MSG((float)cli_json_number(c, "augment_p") == 0.3f && cli_json_number(c, "ada_target") < 0,
                          "augment_p %g, ada_target %g", cli_json_number(c, "augment_p"), cli_json_number(c, "ada_target"));
                CHECK(cli_json_number(c, "ema_kimg") == 500 && (float)cli_json_number(c, "ema_rampup") == 0.05f &&
                      cli_json_number(c, "pl_weight") == 0 && cli_json_number(c, "style_mixing_prob") == 0 &&
                      cli_json_number(c, "ada_kimg") == 500);
            }
            const gantl_json *rs = gantl_json_get(&j, "rng_seed"); /* the run's stream: seed * 3 + 3 */
            CHECK_MSG(rs && rs->type == GANTL_JSON_STRING && !strcmp(rs->string, "18"), "rng_seed %s", rs ? rs->string : "?");
            CHECK(cli_json_number(&j, "cur_nimg") == 64);
            gantl_json_free(&j);
        }
        float p = -1;
        CHECK(gantl_st_read_f32(&f, "train.augment_p", &p, 1, 0, NULL) == GANTL_OK && p == 0.3f); /* fixed: p stays */
        if (cli_train_meta(&f, &g, "gantl.G")) {
            const gantl_json *m = gantl_json_get(&g, "mapping_kwargs"), *syn = gantl_json_get(&g, "synthesis_kwargs");
            CHECK(cli_json_number(&g, "img_resolution") == 8 && syn && cli_json_number(syn, "channel_base") == 64);
            CHECK_MSG(m && cli_json_number(m, "num_layers") == 2, "cifar: 2 mapping layers");
            gantl_json_free(&g);
        }
        if (cli_train_meta(&f, &d, "gantl.D")) {
            const gantl_json *a = gantl_json_get(&d, "architecture");
            CHECK_MSG(a && a->type == GANTL_JSON_STRING && !strcmp(a->string, "orig"), "cifar: D 'orig'");
            const gantl_json *e = gantl_json_get(&d, "epilogue_kwargs");
            CHECK(e && cli_json_number(e, "mbstd_group_size") == 32);
            gantl_json_free(&d);
        }
        if (cli_train_meta(&f, &data, "gantl.data")) { /* --seed also picks the --max-images subset */
            const gantl_json *name = gantl_json_get(&data, "name"), *ss = gantl_json_get(&data, "sampler_seed");
            CHECK_MSG(name && name->type == GANTL_JSON_STRING && strstr(name->string, "max=64 seed=5"), "data %s",
                      name && name->type == GANTL_JSON_STRING ? name->string : "?");
            CHECK(ss && ss->type == GANTL_JSON_STRING && !strcmp(ss->string, "5"));
            gantl_json_free(&data);
        }
        gantl_st_free(&f);
    } else
        CHECK_MSG(0, "%s", gantl_last_error());
    /* paper256 (batch_gpu 64 // 8 = 8) with --batch 16: as train.py, batch_gpu = batch // gpus = 16 */
    rc = cli_run("rm -rf build/cli_opt && ./build/gantl train --data fashion-mnist:sandal --max-images 64 --cfg paper256 "
                 "--res 8 --channel-base 64 --channel-max 8 --batch 16 --aug noaug --kimg 0.016 --tick 0.016 "
                 "--out build/cli_opt", out, sizeof out);
    CHECK_MSG(rc == 0 && strstr(out, "batch 16, gamma 1, no augmentation"), "exit %d: %s", rc, out);
    if (gantl_st_load(&f, "build/cli_opt/network-snapshot-000000.safetensors") == GANTL_OK) {
        gantl_json j;
        if (cli_train_meta(&f, &j, "gantl.train")) {
            const gantl_json *c = gantl_json_get(&j, "config");
            CHECK(c && cli_json_number(c, "batch_size") == 16 && cli_json_number(c, "batch_gpu") == 16 &&
                  cli_json_number(c, "augment") == 0 && cli_json_number(c, "pl_weight") == 2 &&
                  cli_json_number(c, "ema_kimg") == 20 && cli_json_number(c, "ema_rampup") < 0);
            const gantl_json *rs = gantl_json_get(&j, "rng_seed"); /* --seed 0 by default */
            CHECK(rs && rs->type == GANTL_JSON_STRING && !strcmp(rs->string, "3"));
            gantl_json_free(&j);
        }
        gantl_st_free(&f);
    } else
        CHECK_MSG(0, "%s", gantl_last_error());
    cli_run("rm -rf build/cli_opt", out, sizeof out);
}

/* Features given as .npy: the JSON equals the library's metrics on the same arrays. */
static void test_cli_metrics_features_match_library(void) {
    enum { NR = 300, NF = 250, D = 16 };
    static float real[NR * D], fake[NF * D];
    gantl_rng rng = gantl_rng_new(77);
    gantl_rng_normal(&rng, real, NR * D, 0.0f, 1.0f);
    gantl_rng_normal(&rng, fake, NF * D, 0.3f, 0.8f);
    int64_t sr[2] = {NR, D}, sf[2] = {NF, D};
    CHECK(gantl_npy_save("build/cli_real_f.npy", GANTL_F32, 2, sr, real) == GANTL_OK);
    CHECK(gantl_npy_save("build/cli_fake_f.npy", GANTL_F32, 2, sf, fake) == GANTL_OK);
    char out[8192];
    int rc = cli_run("./build/gantl metrics --real-features build/cli_real_f.npy --fake-features build/cli_fake_f.npy "
                     "--metrics fid,kid,pr,dc --k 4 --json 1", out, sizeof out);
    CHECK_MSG(rc == 0, "exit %d: %s", rc, out);
    gantl_json j;
    if (!cli_last_json(out, &j)) {
        CHECK_MSG(0, "no JSON in '%s'", out);
        return;
    }
    double fid, kid, kid_std;
    gantl_prdc p;
    CHECK(gantl_fid(real, NR, fake, NF, D, 1, &fid) == GANTL_OK);
    CHECK(gantl_kid(real, NR, fake, NF, D, 100, 0, 0, &kid, &kid_std) == GANTL_OK);
    CHECK(gantl_prdc_compute(real, NR, fake, NF, D, 4, 0, &p) == GANTL_OK);
    CHECK_MSG(cli_close(cli_json_number(&j, "fid"), fid, 1e-6), "fid %g vs %g", cli_json_number(&j, "fid"), fid);
    CHECK_MSG(cli_close(cli_json_number(&j, "kid"), kid, 1e-6), "kid %g vs %g", cli_json_number(&j, "kid"), kid);
    CHECK(cli_close(cli_json_number(&j, "kid_std"), kid_std, 1e-6));
    CHECK(cli_close(cli_json_number(&j, "precision"), p.precision, 1e-6));
    CHECK(cli_close(cli_json_number(&j, "recall"), p.recall, 1e-6));
    CHECK(cli_close(cli_json_number(&j, "density"), p.density, 1e-6));
    CHECK(cli_close(cli_json_number(&j, "coverage"), p.coverage, 1e-6));
    CHECK(fid > 0.5 && p.recall < 1.0); /* the two sets do differ */
    gantl_json_free(&j);
    remove("build/cli_real_f.npy");
    remove("build/cli_fake_f.npy");
}

/* Features of the shipped classifier for a dataset spec, as the CLI takes them. */
static int cli_classifier_features(gantl_classifier *c, const char *spec, int64_t n, uint64_t seed, float **features,
                                   int32_t **predictions, int64_t *count) {
    gantl_dataset ds;
    gantl_dataset_options o;
    gantl_dataset_options_default(&o);
    o.max_images = n, o.seed = seed, o.channels = 1;
    if (gantl_dataset_load(&ds, spec, &o) != GANTL_OK) return 0;
    int64_t per = (int64_t)ds.resolution * ds.resolution, *idx = (int64_t *)malloc((size_t)ds.count * sizeof(int64_t));
    float *images = (float *)malloc((size_t)(ds.count * per) * sizeof(float));
    *features = (float *)malloc((size_t)ds.count * GANTL_CLASSIFIER_FEATURES * sizeof(float));
    *predictions = (int32_t *)malloc((size_t)ds.count * sizeof(int32_t));
    for (int64_t i = 0; i < ds.count; i++) idx[i] = i;
    gantl_dataset_batch(&ds, idx, NULL, ds.count, images, NULL);
    int ok = gantl_classifier_run(c, images, ds.count, ds.resolution, ds.resolution, *features, *predictions) == GANTL_OK;
    *count = ds.count;
    free(idx), free(images);
    gantl_dataset_free(&ds);
    return ok;
}

/* Images in: the CLI's numbers equal the library pipeline's (dataset -> classifier ->
   metrics); the second run reads the feature cache and prints the same; a corrupt cache
   file is recomputed. */
static void test_cli_metrics_images_and_cache(void) {
    const char *cmd = "./build/gantl metrics --real fashion-mnist:bag@test --fake fashion-mnist:bag,sandal --num 200 "
                      "--metrics fid,pr,modes --json 1 --cache build/cli_cache";
    char out[8192], out2[8192], out3[8192];
    cli_run("rm -rf build/cli_cache", out, sizeof out);
    int rc = cli_run(cmd, out, sizeof out);
    CHECK_MSG(rc == 0, "exit %d: %s", rc, out);
    gantl_json j;
    gantl_classifier c;
    if (!cli_last_json(out, &j) || gantl_classifier_load(&c, "models/fmnist_cnn.safetensors") != GANTL_OK) {
        CHECK_MSG(0, "no JSON or no classifier: '%s'", out);
        return;
    }
    float *fr = NULL, *ff = NULL;
    int32_t *pr = NULL, *pf = NULL;
    int64_t nr = 0, nf = 0;
    CHECK(cli_classifier_features(&c, "fashion-mnist:bag@test", 200, 0, &fr, &pr, &nr));
    CHECK(cli_classifier_features(&c, "fashion-mnist:bag,sandal", 200, 1, &ff, &pf, &nf));
    CHECK(nr == 200 && nf == 200);
    double fid;
    gantl_prdc p;
    CHECK(gantl_fid(fr, nr, ff, nf, GANTL_CLASSIFIER_FEATURES, 1, &fid) == GANTL_OK);
    CHECK(gantl_prdc_compute(fr, nr, ff, nf, GANTL_CLASSIFIER_FEATURES, 3, 0, &p) == GANTL_OK);
    int modes = gantl_mode_coverage(pf, nf, 10, 10);
    CHECK_MSG(cli_close(cli_json_number(&j, "fid"), fid, 1e-5), "fid %g vs %g", cli_json_number(&j, "fid"), fid);
    CHECK(cli_close(cli_json_number(&j, "precision"), p.precision, 1e-6));
    CHECK(cli_close(cli_json_number(&j, "recall"), p.recall, 1e-6));
    CHECK_MSG(cli_json_number(&j, "modes") == modes && modes >= 2, "modes %g vs %d", cli_json_number(&j, "modes"), modes);
    gantl_json_free(&j);
    free(fr), free(ff), free(pr), free(pf);
    gantl_classifier_free(&c);
    /* the cache: two feature files; the same numbers from them; a corrupt one is rebuilt */
    rc = cli_run("ls build/cli_cache | grep -c '^features-.*\\.safetensors$'", out2, sizeof out2);
    CHECK_MSG(atoi(out2) == 2, "cache files: %s", out2);
    rc = cli_run(cmd, out2, sizeof out2);
    CHECK(rc == 0 && !strcmp(strrchr(out, '{'), strrchr(out2, '{')));
    cli_run("for f in build/cli_cache/*.safetensors; do head -c 100 $f > $f.x && mv $f.x $f; done", out3, sizeof out3);
    rc = cli_run(cmd, out3, sizeof out3);
    CHECK_MSG(rc == 0 && !strcmp(strrchr(out, '{'), strrchr(out3, '{')), "after a corrupt cache: %s", out3);
    cli_run("rm -rf build/cli_cache", out3, sizeof out3);
}

/* The feature cache is keyed by content, not only by names: images changed under the same
   file name and count, or a weights file with a new modification time, are not served the old
   features. */
static void test_cli_metrics_cache_is_not_stale(void) {
    const char *cmd = "./build/gantl metrics --real build/cli_stale.npy --fake fashion-mnist:bag --num 100 "
                      "--metrics fid --json 1 --features fmnist:build/cli_stale_cnn.safetensors --cache build/cli_stale_cache";
    char out[8192], out2[8192], out3[8192];
    gantl_dataset ds;
    gantl_dataset_options o;
    gantl_dataset_options_default(&o);
    o.max_images = 100;
    cli_run("rm -rf build/cli_stale_cache && cp models/fmnist_cnn.safetensors build/cli_stale_cnn.safetensors", out,
            sizeof out);
    if (gantl_dataset_load(&ds, "fashion-mnist:sandal@test", &o) != GANTL_OK) {
        CHECK_MSG(0, "%s", gantl_last_error());
        return;
    }
    int64_t shape[4] = {ds.count, ds.channels, ds.resolution, ds.resolution};
    size_t bytes = (size_t)(ds.count * ds.channels * ds.resolution * ds.resolution);
    CHECK(gantl_npy_save("build/cli_stale.npy", GANTL_U8, 4, shape, ds.images) == GANTL_OK);
    int rc = cli_run(cmd, out, sizeof out);
    CHECK_MSG(rc == 0, "exit %d: %s", rc, out);
    /* the same file name and count, other pixels (the images turned upside down) */
    unsigned char *flipped = (unsigned char *)malloc(bytes);
    int64_t rows = ds.count * ds.channels * ds.resolution, r = ds.resolution;
    for (int64_t i = 0; i < rows; i++) {
        int64_t plane = i / r, y = i % r;
        memcpy(flipped + (size_t)(i * r), ds.images + (size_t)((plane * r + (r - 1 - y)) * r), (size_t)r);
    }
    CHECK(gantl_npy_save("build/cli_stale.npy", GANTL_U8, 4, shape, flipped) == GANTL_OK);
    free(flipped);
    rc = cli_run(cmd, out2, sizeof out2);
    CHECK_MSG(rc == 0 && strcmp(strrchr(out, '{'), strrchr(out2, '{')), "changed images, same numbers: %s / %s", out,
              out2);
    /* the result with the cache equals the one without it */
    char nocache[1024];
    snprintf(nocache, sizeof nocache, "%s", cmd);
    *strstr(nocache, " --cache") = 0;
    rc = cli_run(nocache, out3, sizeof out3);
    CHECK_MSG(rc == 0 && !strcmp(strrchr(out2, '{'), strrchr(out3, '{')), "cache %s / none %s", out2, out3);
    /* a weights file with a new modification time gets its own cache entries (real and fake) */
    rc = cli_run("ls build/cli_stale_cache | grep -c '^features-'", out3, sizeof out3);
    int before = atoi(out3);
    cli_run("touch -d '2001-01-01' build/cli_stale_cnn.safetensors", out3, sizeof out3);
    rc = cli_run(cmd, out3, sizeof out3);
    CHECK_MSG(rc == 0, "exit %d: %s", rc, out3);
    rc = cli_run("ls build/cli_stale_cache | grep -c '^features-'", out3, sizeof out3);
    CHECK_MSG(atoi(out3) == before + 2, "cache files %d, then %d (one more for each side)", before, atoi(out3));
    cli_run("rm -rf build/cli_stale_cache build/cli_stale.npy build/cli_stale_cnn.safetensors", out3, sizeof out3);
    gantl_dataset_free(&ds);
}

/* select ranks the target's own class first, by recall and by FID; bad input is refused. */
static void test_cli_select(void) {
    char out[16384];
    const char *base = "./build/gantl select --target fashion-mnist:bag@test --sources fashion-mnist:sandal "
                       "fashion-mnist:bag fashion-mnist:trouser --num 200 --json --cache build/cli_cache";
    const char *bys[2] = {"recall", "fid"};
    for (int b = 0; b < 2; b++) {
        char cmd[1024];
        snprintf(cmd, sizeof cmd, "%s --by %s", base, bys[b]);
        int rc = cli_run(cmd, out, sizeof out);
        CHECK_MSG(rc == 0, "exit %d: %s", rc, out);
        gantl_json j;
        if (!cli_last_json(out, &j)) {
            CHECK_MSG(0, "no JSON: %s", out);
            continue;
        }
        const gantl_json *r = gantl_json_get(&j, "ranking");
        CHECK(r && r->type == GANTL_JSON_ARRAY && r->count == 3);
        if (r && r->count == 3) {
            const gantl_json *first = gantl_json_get(&r->items[0], "source");
            CHECK_MSG(first && !strcmp(first->string, "fashion-mnist:bag"), "ranked first: %s", first ? first->string : "?");
            for (int i = 0; i + 1 < 3; i++) { /* sorted by the metric */
                double a = cli_json_number(&r->items[i], bys[b]), c = cli_json_number(&r->items[i + 1], bys[b]);
                CHECK_MSG(b == 0 ? a >= c : a <= c, "%s not sorted: %g then %g", bys[b], a, c);
            }
        }
        gantl_json_free(&j);
    }
    struct {
        const char *args;
        int rc;
        const char *message;
    } cases[] = {
        {"select --sources fashion-mnist:bag", 2, "--target SPEC and --sources A B ... are required"},
        {"select --target fashion-mnist:bag --sources fashion-mnist:bag --by beauty", 2, "--by must be recall"},
        {"select --target fashion-mnist:bag@test --sources tests/fixtures/sg2_g.safetensors --num 8", 1,
         "the classifier takes 1-channel images, these have 3"},
        {"metrics --real fashion-mnist:bag --fake fashion-mnist:bag --features resnet", 1, "unknown feature extractor 'resnet'"},
        {"metrics --real fashion-mnist:bag --fake nowhere/ --num 8", 1, "nowhere"},
        {"metrics --real fashion-mnist:bag --fake fashion-mnist:bag --metrics fid,beauty", 2, "--metrics is a list of"},
        {"metrics --real fashion-mnist:bag --fake fashion-mnist:bag --features fmnist:tests/fixtures/core.safetensors", 1,
         "classifier"},
        {"metrics --real-features tests/fixtures/array_u8.npy --fake-features tests/fixtures/array_u8.npy", 1,
         "must be a float array of shape (n, d)"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char command[512];
        snprintf(command, sizeof command, "./build/gantl %s", cases[i].args);
        int rc = cli_run(command, out, sizeof out);
        CHECK_MSG(rc == cases[i].rc, "'%s': exit %d, expected %d", cases[i].args, rc, cases[i].rc);
        CHECK_MSG(strstr(out, cases[i].message) != NULL, "'%s': output '%s'", cases[i].args, out);
    }
    cli_run("rm -rf build/cli_cache", out, sizeof out);
}
/* The 2-D experiment's networks and loop against PyTorch (tools/toy2d_ref.py): the same
   weights and batches give the same losses, weights, BatchNorm statistics, eval-mode output
   and grad-D similarity. */
static void test_cli_toy2d_matches_pytorch(void) {
    char out[4096];
    int rc = cli_run("./build/gantl toy2d --replay tests/fixtures/toy2d_replay.safetensors --replay-out build/toy2d_replay.safetensors",
                     out, sizeof out);
    CHECK_MSG(rc == 0, "exit %d: %s", rc, out);
    gantl_st_file got, want;
    if (gantl_st_load(&got, "build/toy2d_replay.safetensors") != GANTL_OK) {
        CHECK_MSG(0, "%s", gantl_last_error());
        return;
    }
    CHECK(gantl_st_load(&want, "tests/fixtures/toy2d_replay.safetensors") == GANTL_OK);
    int compared = 0;
    for (int i = 0; i < got.count; i++) {
        const gantl_st_tensor *t = &got.tensors[i];
        char name[128];
        snprintf(name, sizeof name, "expected.%s", t->name);
        const gantl_st_tensor *e = gantl_st_find(&want, name);
        CHECK_MSG(e && e->numel == t->numel, "%s: missing or of another size", name);
        if (!e || e->numel != t->numel) continue;
        float *a = (float *)malloc((size_t)t->numel * sizeof(float)), *b = (float *)malloc((size_t)t->numel * sizeof(float));
        gantl_st_read_f32(&got, t->name, a, t->numel, 0, NULL);
        gantl_st_read_f32(&want, name, b, t->numel, 0, NULL);
        /* Adam normalises the step, so elements with near-zero gradients may differ by a few
           1e-5 after rounding; a real error moves many elements by ~lr = 2e-4 per step. */
        double max_diff = 0, sum_diff = 0, tol = strstr(t->name, "loss") || strstr(t->name, "similarity") ? 1e-5 : 1e-4;
        for (int64_t k = 0; k < t->numel; k++) {
            double d = fabs((double)a[k] - b[k]) / (strstr(t->name, "loss") ? fmax(1.0, fabs(b[k])) : 1.0);
            max_diff = fmax(max_diff, d), sum_diff += d;
        }
        CHECK_MSG(max_diff <= tol && sum_diff / t->numel <= 1e-5, "%s: max diff %g, mean %g", t->name, max_diff,
                  sum_diff / t->numel);
        compared++;
        free(a), free(b);
    }
    CHECK_MSG(compared == 46, "%d tensors compared", compared); /* G: 6 fc x 2 + 5 bn x 4, D: 5 fc x 2, 4 results */
    gantl_st_free(&got);
    gantl_st_free(&want);
    remove("build/toy2d_replay.safetensors");
}

/* A tiny run of the whole experiment writes every output, with the keys it promises. */
static void test_cli_toy2d_outputs(void) {
    char out[8192];
    int rc = cli_run("rm -rf build/toy2d && ./build/gantl toy2d --out build/toy2d --pretrain-steps 51 --every 25 "
                     "--finetune-steps 26 --test-every 25 --variants 0 --seeds 0-1", out, sizeof out);
    CHECK_MSG(rc == 0, "exit %d: %s", rc, out);
    CHECK(strstr(out, "Pearson(recall, W1) = ") && strstr(out, "(paper: -0.843)"));
    const char *files[6] = {"build/toy2d/samples.png", "build/toy2d/w1_vs_recall.png", "build/toy2d/w1_vs_similarity.png",
                            "build/toy2d/checkpoints_seed0.csv", "build/toy2d/checkpoints_seed1.csv", "build/toy2d/results.json"};
    for (int i = 0; i < 6; i++) {
        unsigned char *bytes;
        size_t size;
        CHECK_MSG(gantl_read_file(files[i], &bytes, &size) == GANTL_OK && size > 20, "%s missing", files[i]);
        if (i < 3 && size > 8) CHECK_MSG(!memcmp(bytes, "\x89PNG", 4), "%s is not a PNG", files[i]);
        if (i == 3 && size) { /* header + 3 checkpoints (G steps 0, 25, 50), 2 tests each */
            int lines = 0;
            for (size_t k = 0; k < size; k++) lines += bytes[k] == '\n';
            CHECK_MSG(!strncmp((char *)bytes, "g_step,recall,grad_d_similarity,w1_min,w1_at_0,w1_at_25\n", 56) && lines == 4,
                      "csv: %.200s", (char *)bytes);
        }
        if (i == 5 && size) {
            gantl_json j;
            int parsed = gantl_json_parse(&j, (char *)bytes, size) == GANTL_OK;
            CHECK_MSG(parsed, "results.json: %s", gantl_last_error());
            if (parsed) {
                const gantl_json *s = gantl_json_get(&j, "seeds");
                CHECK(s && s->type == GANTL_JSON_ARRAY && s->count == 2);
                if (s && s->count == 2) {
                    const gantl_json *pc = gantl_json_get(&s->items[1], "per_checkpoint");
                    CHECK(pc && pc->type == GANTL_JSON_ARRAY && pc->count == 3);
                    if (pc && pc->count == 3) {
                        double w1 = cli_json_number(&pc->items[2], "w1"), r = cli_json_number(&pc->items[2], "recall");
                        CHECK_MSG(w1 > 0 && w1 < 40 && r >= 0 && r <= 1, "w1 %g recall %g", w1, r);
                        CHECK(cli_json_number(&pc->items[2], "g_step") == 50);
                    }
                }
                CHECK(isfinite(cli_json_number(&j, "pearson_recall_w1_mean")) && isfinite(cli_json_number(&j, "pearson_recall_w1_std")));
                gantl_json_free(&j);
            }
        }
        if (size) free(bytes);
    }
    struct {
        const char *args;
        int rc;
        const char *message;
    } cases[] = {
        {"toy2d --source III", 2, "--source must be I or II"},
        {"toy2d --seeds 0-9", 2, "one to four seeds"},
        {"toy2d --every 1", 2, "at most 128 checkpoints"},
        {"toy2d --replay tests/fixtures/core.safetensors --replay-out build/x.safetensors", 1, "--replay: needs real"},
        {"toy2d --replay tests/fixtures/toy2d_replay.safetensors", 2, "--replay needs --replay-out"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char command[512];
        snprintf(command, sizeof command, "./build/gantl %s", cases[i].args);
        rc = cli_run(command, out, sizeof out);
        CHECK_MSG(rc == cases[i].rc, "'%s': exit %d, expected %d", cases[i].args, rc, cases[i].rc);
        CHECK_MSG(strstr(out, cases[i].message) != NULL, "'%s': output '%s'", cases[i].args, out);
    }
    cli_run("rm -rf build/toy2d", out, sizeof out);
}
#endif

static void run_cli_tests(void) {
#if defined(__unix__) || defined(__APPLE__)
    RUN(test_cli_generate_matches_library);
    RUN(test_cli_discriminate_matches_library);
    RUN(test_cli_generate_options_and_conditional);
    RUN(test_cli_errors_and_help);
    RUN(test_cli_train_outputs_and_exact_resume);
    RUN(test_cli_train_fine_tunes_a_checkpoint);
    RUN(test_cli_train_learns_fashion_mnist);
    RUN(test_cli_train_ctrl_c_saves_and_resumes);
    RUN(test_cli_train_options_reach_the_run);
    RUN(test_cli_metrics_features_match_library);
    RUN(test_cli_metrics_images_and_cache);
    RUN(test_cli_metrics_cache_is_not_stale);
    RUN(test_cli_select);
    RUN(test_cli_toy2d_matches_pytorch);
    RUN(test_cli_toy2d_outputs);
#endif
}
