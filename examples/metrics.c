/* `gantl metrics`: FID, KID, precision / recall, density / coverage and mode coverage
   between two image sources (folders, dataset specs, .npy arrays, or checkpoints whose
   G_ema is sampled), in the feature space of the Fashion-MNIST classifier (the default,
   for 28-32 px grey images) or of Inception-v3 (the FID network, weights given).
   Features of datasets are cached, keyed by the dataset and the extractor.
   Included by examples/gantl.c (one translation unit). */

#define FEATURES_FMNIST_DEFAULT "models/fmnist_cnn.safetensors"

typedef struct extractor {
    int kind; /* 0: the classifier, 1: Inception */
    char name[600];
    gantl_classifier cls;
    gantl_inception inc;
    int dim, num_classes;
} extractor;

static int extractor_open(extractor *e, const char *spec) {
    memset(e, 0, sizeof *e);
    if (!strncmp(spec, "fmnist", 6) && (spec[6] == 0 || spec[6] == ':')) {
        const char *path = spec[6] == ':' ? spec + 7 : FEATURES_FMNIST_DEFAULT;
        if (gantl_classifier_load(&e->cls, path) != GANTL_OK) {
            fprintf(stderr, "gantl: %s\n(make classifier trains it)\n", gantl_last_error());
            return 0;
        }
        e->kind = 0, e->dim = GANTL_CLASSIFIER_FEATURES, e->num_classes = e->cls.num_classes;
        snprintf(e->name, sizeof e->name, "fmnist-cnn:%s", path);
        return 1;
    }
    if (!strncmp(spec, "inception:", 10)) {
        if (gantl_inception_load(&e->inc, spec + 10) != GANTL_OK) {
            fprintf(stderr, "gantl: %s\n", gantl_last_error());
            return 0;
        }
        e->kind = 1, e->dim = GANTL_INCEPTION_FEATURES;
        snprintf(e->name, sizeof e->name, "inception:%s", spec + 10);
        return 1;
    }
    fprintf(stderr, "gantl: unknown feature extractor '%s' (fmnist, fmnist:PATH or inception:PATH)\n", spec);
    return 0;
}

static void extractor_close(extractor *e) {
    if (e->kind == 0) gantl_classifier_free(&e->cls);
    else gantl_inception_free(&e->inc);
}

/* features (n, dim) and, for the classifier, predictions (n,) of images in [-1, 1]. */
static int extractor_run(extractor *e, const float *images, int64_t n, int channels, int res, float *features,
                         int32_t *predictions) {
    gantl_status s;
    if (e->kind == 0) {
        if (channels != e->cls.channels) {
            fprintf(stderr, "gantl: the classifier takes %d-channel images, these have %d\n", e->cls.channels, channels);
            return 0;
        }
        s = gantl_classifier_run(&e->cls, images, n, res, res, features, predictions);
    } else {
        s = gantl_inception_features(&e->inc, images, n, channels, res, res, features);
    }
    if (s != GANTL_OK) fprintf(stderr, "gantl: %s\n", gantl_last_error());
    return s == GANTL_OK;
}

/* A set of images to score: its features and (classifier) predictions. */
typedef struct feature_set {
    int64_t n;
    float *features;      /* (n, dim) */
    int32_t *predictions; /* (n,) or NULL */
    char name[700];
} feature_set;

static void feature_set_free(feature_set *f) {
    free(f->features);
    free(f->predictions);
    memset(f, 0, sizeof *f);
}

static int is_checkpoint(const char *spec) {
    size_t n = strlen(spec);
    return n > 12 && !strcmp(spec + n - 12, ".safetensors");
}

/* The cache file of a dataset's features: a hash of the names, in dir. */
static void cache_path(char *path, size_t size, const char *dir, const char *dataset, const char *extractor_name, int64_t n) {
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    char key[1600];
    snprintf(key, sizeof key, "%s|%s|%lld", dataset, extractor_name, (long long)n);
    for (const char *p = key; *p; p++) h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    snprintf(path, size, "%s/features-%016llx.safetensors", dir, (unsigned long long)h);
}

static int cache_load(const char *path, const char *key, feature_set *f, int dim) {
    gantl_st_file st;
    if (gantl_st_load(&st, path) != GANTL_OK) return 0;
    const char *k = gantl_st_meta(&st, "gantl.cache_key");
    const gantl_st_tensor *t = gantl_st_find(&st, "features"), *p = gantl_st_find(&st, "predictions");
    int ok = k && !strcmp(k, key) && t && t->ndim == 2 && t->shape[1] == dim;
    if (ok) {
        f->n = t->shape[0];
        f->features = (float *)malloc((size_t)(f->n * dim) * sizeof(float));
        ok = f->features && gantl_st_read_f32(&st, "features", f->features, f->n * dim, 0, NULL) == GANTL_OK;
        if (ok && p && p->numel == f->n) {
            float *tmp = (float *)malloc((size_t)f->n * sizeof(float));
            f->predictions = (int32_t *)malloc((size_t)f->n * sizeof(int32_t));
            if (tmp && f->predictions && gantl_st_read_f32(&st, "predictions", tmp, f->n, 0, NULL) == GANTL_OK)
                for (int64_t i = 0; i < f->n; i++) f->predictions[i] = (int32_t)tmp[i];
            free(tmp);
        }
    }
    gantl_st_free(&st);
    if (!ok) feature_set_free(f);
    return ok;
}

static void cache_save(const char *dir, const char *path, const char *key, const feature_set *f, int dim) {
    gantl_st_writer w;
    int64_t shape[2] = {f->n, dim};
    if (!make_dir(dir)) return;
    gantl_st_writer_init(&w);
    gantl_st_writer_meta(&w, "gantl.cache_key", key);
    gantl_st_writer_add(&w, "features", GANTL_F32, 2, shape, f->features);
    if (f->predictions) gantl_st_writer_add(&w, "predictions", GANTL_I32, 1, &f->n, f->predictions);
    if (gantl_st_writer_save(&w, path) != GANTL_OK)
        fprintf(stderr, "gantl: could not write the feature cache: %s\n", gantl_last_error());
    gantl_st_writer_free(&w);
}

/* With K ranks (mpirun), rank r's share [lo, hi) of n items: contiguous whole blocks. */
static void rank_share(int64_t n, int64_t block, int64_t *lo, int64_t *hi) {
    int64_t blocks = (n + block - 1) / block, K = cli_comm.size, r = cli_comm.rank;
    *lo = blocks * r / K * block, *hi = blocks * (r + 1) / K * block;
    if (*lo > n) *lo = n;
    if (*hi > n) *hi = n;
}

/* f's features (and predictions) of images (n, ...) whose rows [lo, hi) this rank holds:
   it extracts those, then every rank gets every row (a sum of zero-filled arrays over the
   ranks, exact). */
static int extract_shared(feature_set *f, extractor *e, const float *images, int64_t lo, int64_t hi, int channels, int res) {
    int64_t n = f->n, per = (int64_t)channels * res * res;
    f->features = (float *)calloc((size_t)(n * e->dim) + 1, sizeof(float));
    f->predictions = e->kind == 0 ? (int32_t *)calloc((size_t)n + 1, sizeof(int32_t)) : NULL;
    if (!f->features || (e->kind == 0 && !f->predictions)) return fail("metrics", "out of memory"), 0;
    if (hi > lo && !extractor_run(e, images + lo * per, hi - lo, channels, res, f->features + lo * e->dim,
                                  f->predictions ? f->predictions + lo : NULL))
        return 0;
    if (cli_comm.size == 1) return 1;
    float *pred = f->predictions ? (float *)calloc((size_t)n + 1, sizeof(float)) : NULL;
    if (f->predictions && !pred) return fail("metrics", "out of memory"), 0;
    for (int64_t i = lo; pred && i < hi; i++) pred[i] = (float)f->predictions[i]; /* class indices: exact as floats */
    int ok = gantl_comm_allreduce_f32(&cli_comm, f->features, n * e->dim) == GANTL_OK &&
             (!pred || gantl_comm_allreduce_f32(&cli_comm, pred, n) == GANTL_OK);
    for (int64_t i = 0; ok && pred && i < n; i++) f->predictions[i] = (int32_t)pred[i];
    free(pred);
    if (!ok) fail("metrics", gantl_last_error());
    return ok;
}

/* Features of a source: a checkpoint's G_ema (n images, seeded z, noise const, labels in
   turn for a conditional G), or a dataset (a seeded subset of n images, all if fewer).
   With K ranks each makes and extracts its share of the images. */
static int feature_set_make(feature_set *f, const char *spec, extractor *e, int64_t n, uint64_t seed, const char *cache_dir) {
    memset(f, 0, sizeof *f);
    int res = 0, channels = 0;
    float *images = NULL;
    int ok = 0;
    int64_t lo = 0, hi = 0;
    if (is_checkpoint(spec)) {
        gantl_st_file st;
        gantl_generator G;
        if (gantl_st_load(&st, spec) != GANTL_OK) return fail("metrics", gantl_last_error()), 0;
        gantl_status s = gantl_generator_from_file(&G, &st, gantl_st_find(&st, "G_ema.mapping.fc0.weight") ? "G_ema." : "G.");
        gantl_st_free(&st);
        if (s != GANTL_OK) return fail("metrics", gantl_last_error()), 0;
        res = G.cfg.img_resolution, channels = G.cfg.img_channels;
        f->n = n;
        images = (float *)malloc((size_t)(n * channels * res * res) * sizeof(float));
        gantl_ctx *ctx = gantl_ctx_new(0);
        gantl_rng rng = gantl_rng_new(seed);
        ok = images && ctx;
        rank_share(n, 32, &lo, &hi);
        for (int64_t start = 0; ok && start < n; start += 32) {
            int64_t b = n - start < 32 ? n - start : 32, zs[2] = {b, G.cfg.z_dim}, cs[2] = {b, G.cfg.c_dim};
            gantl_ctx_reset(ctx);
            gantl_set_grad_enabled(ctx, 0);
            if (start < lo || start >= hi) { /* another rank's images: only their z, for the stream */
                gantl_randn(ctx, &rng, 2, zs);
                continue;
            }
            gantl_tensor *c = NULL;
            if (G.cfg.c_dim) {
                c = gantl_zeros(ctx, 2, cs);
                for (int64_t i = 0; c && i < b; i++) c->data[i * G.cfg.c_dim + (start + i) % G.cfg.c_dim] = 1.0f;
            }
            gantl_tensor *img = gantl_generator_synthesis(ctx, &G, gantl_generator_mapping(ctx, &G, gantl_randn(ctx, &rng, 2, zs), c, 1.0f, -1, 0),
                                                          GANTL_NOISE_CONST, NULL, NULL);
            if (!img) ok = 0;
            else memcpy(images + start * channels * res * res, img->data, (size_t)img->numel * sizeof(float));
        }
        gantl_ctx_free(ctx);
        gantl_generator_free(&G);
        snprintf(f->name, sizeof f->name, "%s (G, %lld samples)", spec, (long long)n);
    } else {
        gantl_dataset ds;
        gantl_dataset_options o;
        gantl_dataset_options_default(&o);
        o.max_images = n, o.seed = seed;
        if (e->kind == 0) o.channels = e->cls.channels;
        if (gantl_dataset_load(&ds, spec, &o) != GANTL_OK) return fail("metrics", gantl_last_error()), 0;
        char path[4096], key[1500];
        snprintf(key, sizeof key, "%s|%s", ds.name, e->name);
        cache_path(path, sizeof path, cache_dir ? cache_dir : ".", ds.name, e->name, ds.count);
        snprintf(f->name, sizeof f->name, "%s", ds.name);
        int hit = cache_dir && cache_load(path, key, f, e->dim);
        if (cli_comm.size > 1) { /* the cache only if every rank has it, else all compute */
            double hits = hit;
            if (gantl_comm_allreduce_f64(&cli_comm, &hits, 1) != GANTL_OK) {
                gantl_dataset_free(&ds);
                return fail("metrics", gantl_last_error()), 0;
            }
            if (hit && hits < cli_comm.size) feature_set_free(f), snprintf(f->name, sizeof f->name, "%s", ds.name), hit = 0;
        }
        if (hit) {
            gantl_dataset_free(&ds);
            return 1;
        }
        res = ds.resolution, channels = ds.channels, f->n = ds.count;
        images = (float *)malloc((size_t)(ds.count * channels * res * res) * sizeof(float));
        int64_t *idx = (int64_t *)malloc((size_t)ds.count * sizeof(int64_t));
        ok = images && idx;
        rank_share(ds.count, 256, &lo, &hi); /* the classifier's batches */
        for (int64_t i = 0; ok && i < ds.count; i++) idx[i] = i;
        if (ok && hi > lo) gantl_dataset_batch(&ds, idx + lo, NULL, hi - lo, images + lo * channels * res * res, NULL);
        free(idx);
        gantl_dataset_free(&ds);
        if (ok) {
            ok = extract_shared(f, e, images, lo, hi, channels, res);
            if (ok && cache_dir && cli_comm.rank == 0) cache_save(cache_dir, path, key, f, e->dim);
        }
        free(images);
        if (!ok) feature_set_free(f);
        return ok;
    }
    if (ok) ok = extract_shared(f, e, images, lo, hi, channels, res);
    free(images);
    if (!ok) feature_set_free(f);
    return ok;
}

/* Features straight from an .npy (n, d) float array. */
static int feature_set_from_npy(feature_set *f, const char *path) {
    gantl_npy a;
    memset(f, 0, sizeof *f);
    if (gantl_npy_load(&a, path) != GANTL_OK) return fail("metrics", gantl_last_error()), 0;
    if (a.ndim != 2 || (a.dtype != GANTL_F32 && a.dtype != GANTL_F64)) {
        gantl_npy_free(&a);
        fprintf(stderr, "gantl metrics: %s must be a float array of shape (n, d)\n", path);
        return 0;
    }
    f->n = a.shape[0];
    f->features = (float *)malloc((size_t)(a.numel ? a.numel : 1) * sizeof(float));
    if (f->features) gantl_npy_to_f32(&a, f->features);
    snprintf(f->name, sizeof f->name, "%s", path);
    int dim = (int)a.shape[1];
    gantl_npy_free(&a);
    return f->features ? dim : 0;
}

/* Which metrics: a comma list. */
typedef struct metric_set {
    int fid, kid, pr, dc, modes;
} metric_set;

static int parse_metrics(const char *list, metric_set *m) {
    char buf[256];
    memset(m, 0, sizeof *m);
    snprintf(buf, sizeof buf, "%s", list);
    for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
        if (!strcmp(tok, "fid")) m->fid = 1;
        else if (!strcmp(tok, "kid")) m->kid = 1;
        else if (!strcmp(tok, "pr")) m->pr = 1;
        else if (!strcmp(tok, "dc")) m->dc = 1;
        else if (!strcmp(tok, "modes")) m->modes = 1;
        else return 0;
    }
    return 1;
}

/* The chosen metrics between real and fake features, as one JSON object (printed to out). */
static int compute_metrics(FILE *out, const metric_set *m, const feature_set *real, const feature_set *fake, int dim, int k,
                           int strict, int64_t mode_min, int num_classes, uint64_t seed) {
    int first = 1;
    fprintf(out, "{");
#define METRIC_KEY(name) fprintf(out, "%s\"%s\": ", first ? "" : ", ", name), first = 0
    if (m->fid) {
        double fid;
        if (gantl_fid(real->features, real->n, fake->features, fake->n, dim, 1, &fid) != GANTL_OK) return fail("metrics", gantl_last_error()), 0;
        METRIC_KEY("fid");
        fprintf(out, "%.6f", fid);
    }
    if (m->kid) {
        double mean, std;
        if (gantl_kid(real->features, real->n, fake->features, fake->n, dim, 100, 0, seed, &mean, &std) != GANTL_OK)
            return fail("metrics", gantl_last_error()), 0;
        METRIC_KEY("kid");
        fprintf(out, "%.8f", mean);
        METRIC_KEY("kid_std");
        fprintf(out, "%.8f", std);
    }
    if (m->pr || m->dc) {
        gantl_prdc r;
        if (gantl_prdc_compute(real->features, real->n, fake->features, fake->n, dim, k, strict, &r) != GANTL_OK)
            return fail("metrics", gantl_last_error()), 0;
        if (m->pr) {
            METRIC_KEY("precision");
            fprintf(out, "%.6f", r.precision);
            METRIC_KEY("recall");
            fprintf(out, "%.6f", r.recall);
        }
        if (m->dc) {
            METRIC_KEY("density");
            fprintf(out, "%.6f", r.density);
            METRIC_KEY("coverage");
            fprintf(out, "%.6f", r.coverage);
        }
    }
    if (m->modes) {
        if (!fake->predictions || num_classes <= 0) return fail("metrics", "modes needs the classifier's predictions (--features fmnist)"), 0;
        METRIC_KEY("modes");
        fprintf(out, "%d", gantl_mode_coverage(fake->predictions, fake->n, num_classes, mode_min));
        METRIC_KEY("modes_of");
        fprintf(out, "%d", num_classes);
    }
#undef METRIC_KEY
    fprintf(out, "}");
    return 1;
}

static const char *default_cache_dir(char *buf, size_t size) {
    const char *env = getenv("GANTL_CACHE");
    if (env && *env) return env;
    const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    if (xdg && *xdg) snprintf(buf, size, "%s/gantl", xdg);
    else if (home && *home) snprintf(buf, size, "%s/.cache/gantl", home);
    else return NULL;
    return buf;
}

static int cmd_metrics(int argc, char **argv) {
    static const char *const known[] = {"--real", "--fake", "--metrics", "--features", "--num", "--k", "--strict", "--json",
                                        "--real-features", "--fake-features", "--mode-min", "--seed", "--cache",
                                        "--comm-timeout", NULL};
    options o = {argc, argv, 0};
    if (!opt_check(&o, known)) return 2;
    const char *real_s = opt_get(&o, "--real"), *fake_s = opt_get(&o, "--fake"), *list = opt_get(&o, "--metrics");
    const char *feat_s = opt_get(&o, "--features"), *num_s = opt_get(&o, "--num"), *k_s = opt_get(&o, "--k");
    const char *strict_s = opt_get(&o, "--strict"), *json_s = opt_get(&o, "--json"), *rf = opt_get(&o, "--real-features");
    const char *ff = opt_get(&o, "--fake-features"), *min_s = opt_get(&o, "--mode-min"), *seed_s = opt_get(&o, "--seed");
    const char *cache_s = opt_get(&o, "--cache"), *timeout_s = opt_get(&o, "--comm-timeout");
    if (o.error) return 2;
    long num = 10000, k = 3, strict = 0, json = 0, mode_min = 10, seed = 0;
    float comm_timeout = 600.0f;
    if (timeout_s && (!parse_float(timeout_s, &comm_timeout) || comm_timeout <= 0))
        return fail("metrics", "--comm-timeout must be a positive number of seconds"), 2;
    if (!parallel_comm("metrics", comm_timeout)) return 1;
    if ((num_s && !parse_long(num_s, 2, 1 << 24, &num)) || (k_s && !parse_long(k_s, 1, 1000, &k)) ||
        (strict_s && !parse_long(strict_s, 0, 1, &strict)) || (json_s && !parse_long(json_s, 0, 1, &json)) ||
        (min_s && !parse_long(min_s, 1, 1 << 24, &mode_min)) || (seed_s && !parse_long(seed_s, 0, LONG_MAX, &seed)))
        return fail("metrics", "a numeric option is out of range (see gantl metrics --help)"), 2;
    metric_set m;
    if (!parse_metrics(list ? list : "fid,kid,pr", &m)) return fail("metrics", "--metrics is a list of fid, kid, pr, dc, modes"), 2;
    feature_set real, fake;
    int dim = 0, num_classes = 0;
    extractor e;
    int have_e = 0;
    if (rf || ff) {
        if (!rf || !ff || real_s || fake_s) return fail("metrics", "give --real-features and --fake-features together, without --real/--fake"), 2;
        int dr = feature_set_from_npy(&real, rf);
        if (!dr) return 1;
        int df = feature_set_from_npy(&fake, ff);
        if (!df) {
            feature_set_free(&real);
            return 1;
        }
        if (dr != df) {
            feature_set_free(&real), feature_set_free(&fake);
            return fail("metrics", "the two feature arrays have different widths"), 1;
        }
        dim = dr;
        if (m.modes) return fail("metrics", "modes needs images (the classifier's predictions), not features"), 2;
    } else {
        if (!real_s || !fake_s) return fail("metrics", "--real and --fake are required (or --real-features / --fake-features)"), 2;
        if (!extractor_open(&e, feat_s ? feat_s : "fmnist")) return 1;
        have_e = 1, dim = e.dim, num_classes = e.num_classes;
        char buf[4096];
        const char *cache_dir = cache_s ? cache_s : default_cache_dir(buf, sizeof buf);
        if (!feature_set_make(&real, real_s, &e, num, (uint64_t)seed, cache_dir)) {
            extractor_close(&e);
            return 1;
        }
        if (!feature_set_make(&fake, fake_s, &e, num, (uint64_t)seed + 1, cache_dir)) {
            feature_set_free(&real);
            extractor_close(&e);
            return 1;
        }
    }
    if (!json) printf("real: %s (%lld)\nfake: %s (%lld)\nfeatures: %s (%d-d)\n", real.name, (long long)real.n, fake.name,
                      (long long)fake.n, have_e ? e.name : "given", dim);
    /* the features are on every rank; rank 0 computes and prints */
    int ok = cli_comm.rank != 0 || compute_metrics(stdout, &m, &real, &fake, dim, (int)k, (int)strict, mode_min, num_classes, (uint64_t)seed);
    printf("\n");
    feature_set_free(&real);
    feature_set_free(&fake);
    if (have_e) extractor_close(&e);
    return ok ? 0 : 1;
}
