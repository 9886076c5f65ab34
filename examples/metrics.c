/* `gantl metrics`: FID, KID, precision / recall, density / coverage and mode coverage
   between two image sources (folders, dataset specs, .npy arrays, or checkpoints whose
   G_ema is sampled), in the feature space of the Fashion-MNIST classifier (the default,
   for 28-32 px grey images) or of Inception-v3 (the FID network, weights given).
   Features of datasets are cached, keyed by the dataset (its name and a hash of its pixels and
   labels) and the extractor (its name and its weights file's size and modification time), so
   a changed folder or weights file is never served stale features.
   Included by examples/gantl.c (one translation unit). */

#define FEATURES_FMNIST_DEFAULT "models/fmnist_cnn.safetensors"

/* Where a checkpoint's generator samples (gantl metrics --device); features are extracted on
   the CPU. */
static gantl_device metrics_device = GANTL_CPU;

typedef struct extractor {
    int kind; /* 0: the classifier, 1: Inception */
    char name[600];
    char signature[64]; /* the weights file's "size:mtime", part of the cache key */
    gantl_classifier cls;
    gantl_inception inc;
    int dim, num_classes;
} extractor;

/* The weights file's size and modification time, "size:mtime" ("?" when it cannot be read). */
static void file_signature(char *out, size_t size, const char *path) {
#if defined(__unix__) || defined(__APPLE__)
    struct stat st;
    if (stat(path, &st) == 0) {
        snprintf(out, size, "%lld:%lld", (long long)st.st_size, (long long)st.st_mtime);
        return;
    }
#endif
    snprintf(out, size, "?");
}

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
        file_signature(e->signature, sizeof e->signature, path);
        return 1;
    }
    if (!strncmp(spec, "inception:", 10)) {
        if (gantl_inception_load(&e->inc, spec + 10) != GANTL_OK) {
            fprintf(stderr, "gantl: %s\n", gantl_last_error());
            return 0;
        }
        e->kind = 1, e->dim = GANTL_INCEPTION_FEATURES;
        snprintf(e->name, sizeof e->name, "inception:%s", spec + 10);
        file_signature(e->signature, sizeof e->signature, spec + 10);
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

/* s as a JSON string (quoted, escaped). */
static void json_string(FILE *out, const char *s) {
    fputc('"', out);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') fprintf(out, "\\%c", ch);
        else if (ch < 0x20) fprintf(out, "\\u%04x", ch);
        else fputc(ch, out);
    }
    fputc('"', out);
}

/* , "key": value with value as JSON (null when not finite). */
static void json_field(FILE *out, const char *key, double value) {
    if (isfinite(value)) fprintf(out, ", \"%s\": %.9g", key, value);
    else fprintf(out, ", \"%s\": null", key);
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

/* 64-bit FNV-1a of n bytes, continuing from h (start: 1469598103934665603). */
static uint64_t fnv1a(uint64_t h, const void *data, size_t n) {
    const unsigned char *p = (const unsigned char *)data;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 1099511628211ULL;
    return h;
}

/* The cache key of a dataset's features: the dataset's name and a hash of its pixels and
   labels, the extractor's name and its weights file's signature. */
static void cache_key(char *key, size_t size, const gantl_dataset *ds, const extractor *e) {
    uint64_t h = fnv1a(1469598103934665603ULL, ds->images,
                       (size_t)(ds->count * ds->channels * ds->resolution * ds->resolution));
    if (ds->labels) h = fnv1a(h, ds->labels, (size_t)ds->count * sizeof(int32_t));
    snprintf(key, size, "%s|pixels %016llx|%s|%s", ds->name, (unsigned long long)h, e->name, e->signature);
}

/* The cache file of a dataset's features: a hash of its key, in dir. */
static void cache_path(char *path, size_t size, const char *dir, const char *key) {
    uint64_t h = fnv1a(1469598103934665603ULL, key, strlen(key));
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

/* Features (n, dim) and, for the classifier, predictions of images (n, C, R, R) in [-1, 1] of
   which this rank holds rows [lo, hi) (all of them with one process): it extracts those, then
   every rank gets every row (a sum of zero-filled arrays over the ranks, exact). */
static int feature_set_from_images(feature_set *f, extractor *e, const float *images, int64_t n, int64_t lo, int64_t hi,
                                   int channels, int res) {
    int64_t per = (int64_t)channels * res * res;
    f->n = n;
    f->features = (float *)calloc((size_t)(n * e->dim) + 1, sizeof(float));
    f->predictions = e->kind == 0 ? (int32_t *)calloc((size_t)n + 1, sizeof(int32_t)) : NULL;
    int ok = f->features && (e->kind != 0 || f->predictions);
    if (!ok) fail("metrics", "out of memory for the features");
    if (ok && hi > lo)
        ok = extractor_run(e, images + lo * per, hi - lo, channels, res, f->features + lo * e->dim,
                           f->predictions ? f->predictions + lo : NULL);
    if (ok && cli_comm.size > 1) {
        float *pred = f->predictions ? (float *)calloc((size_t)n + 1, sizeof(float)) : NULL;
        if (f->predictions && !pred) ok = 0, fail("metrics", "out of memory");
        for (int64_t i = lo; ok && pred && i < hi; i++) pred[i] = (float)f->predictions[i]; /* class indices: exact as floats */
        if (ok && (gantl_comm_allreduce_f32(&cli_comm, f->features, n * e->dim) != GANTL_OK ||
                   (pred && gantl_comm_allreduce_f32(&cli_comm, pred, n) != GANTL_OK)))
            ok = 0, fail("metrics", gantl_last_error());
        for (int64_t i = 0; ok && pred && i < n; i++) f->predictions[i] = (int32_t)pred[i];
        free(pred);
    }
    if (!ok) feature_set_free(f);
    return ok;
}

/* n images (n, C, R, R) of a generator: z from (seed), constant noise, labels in turn for a
   conditional G; only the blocks of 32 in rows [lo, hi) are generated (the z of the others are
   drawn all the same, for the stream), the other rows are left unset. NULL when out of memory. */
static float *generator_images(gantl_generator *G, int64_t n, int64_t lo, int64_t hi, uint64_t seed) {
    int64_t res = G->cfg.img_resolution, channels = G->cfg.img_channels, per = channels * res * res;
    float *images = (float *)malloc((size_t)(n * per + 1) * sizeof(float));
    gantl_ctx *ctx = gantl_ctx_new_device((gantl_device)G->params.device, 0); /* where G is (--device) */
    gantl_rng rng = gantl_rng_new(seed);
    int ok = images && ctx;
    for (int64_t start = 0; ok && start < n; start += 32) {
        int64_t b = n - start < 32 ? n - start : 32, zs[2] = {b, G->cfg.z_dim}, cs[2] = {b, G->cfg.c_dim};
        gantl_ctx_reset(ctx);
        gantl_set_grad_enabled(ctx, 0);
        if (start + b <= lo || start >= hi) { /* another rank's images: only their z, for the stream */
            gantl_randn(ctx, &rng, 2, zs);
            continue;
        }
        gantl_tensor *c = NULL;
        if (G->cfg.c_dim) {
            c = gantl_zeros(ctx, 2, cs);
            for (int64_t i = 0; c && i < b; i++) c->data[i * G->cfg.c_dim + (start + i) % G->cfg.c_dim] = 1.0f;
        }
        gantl_tensor *w = gantl_generator_mapping(ctx, G, gantl_randn(ctx, &rng, 2, zs), c, 1.0f, -1, 0);
        gantl_tensor *img = gantl_generator_synthesis(ctx, G, w, GANTL_NOISE_CONST, NULL, NULL);
        if (!img || gantl_device_synchronize((gantl_device)img->device) != GANTL_OK) ok = 0;
        else memcpy(images + start * per, img->data, (size_t)img->numel * sizeof(float));
    }
    gantl_ctx_free(ctx);
    if (!ok) free(images);
    return ok ? images : NULL;
}

/* With K ranks, each generates and extracts its share of the images (a collective). */
static int feature_set_from_generator(feature_set *f, gantl_generator *G, extractor *e, int64_t n, uint64_t seed) {
    int64_t lo, hi;
    rank_share(n, 32, &lo, &hi);
    float *images = generator_images(G, n, lo, hi, seed);
    if (!images) return fail("metrics", "out of memory for the generated images"), 0;
    int ok = feature_set_from_images(f, e, images, n, lo, hi, G->cfg.img_channels, G->cfg.img_resolution);
    free(images);
    return ok;
}

/* Features of all the images of a loaded dataset, through the cache when cache_dir is given.
   With K ranks (a collective), the cache is used only when every rank has it, else each loads
   and extracts its share of the images; rank 0 writes the cache. */
static int feature_set_from_dataset(feature_set *f, const gantl_dataset *ds, extractor *e, const char *cache_dir) {
    char path[4096], key[1500];
    memset(f, 0, sizeof *f);
    cache_key(key, sizeof key, ds, e);
    cache_path(path, sizeof path, cache_dir ? cache_dir : ".", key);
    snprintf(f->name, sizeof f->name, "%s", ds->name);
    int hit = cache_dir && cache_load(path, key, f, e->dim);
    if (cli_comm.size > 1) {
        double hits = hit;
        if (gantl_comm_allreduce_f64(&cli_comm, &hits, 1) != GANTL_OK) {
            feature_set_free(f);
            return fail("metrics", gantl_last_error()), 0;
        }
        if (hit && hits < cli_comm.size) feature_set_free(f), hit = 0;
    }
    snprintf(f->name, sizeof f->name, "%s", ds->name);
    if (hit) return 1;
    int64_t per = (int64_t)ds->channels * ds->resolution * ds->resolution, lo, hi;
    rank_share(ds->count, 256, &lo, &hi); /* the classifier's batches */
    float *images = (float *)malloc((size_t)(ds->count * per + 1) * sizeof(float));
    int64_t *idx = (int64_t *)malloc((size_t)ds->count * sizeof(int64_t) + 1);
    int ok = images && idx;
    for (int64_t i = 0; ok && i < ds->count; i++) idx[i] = i;
    if (ok && hi > lo) gantl_dataset_batch(ds, idx + lo, NULL, hi - lo, images + lo * per, NULL);
    if (!ok) fail("metrics", "out of memory for the dataset's images");
    free(idx);
    if (ok) ok = feature_set_from_images(f, e, images, ds->count, lo, hi, ds->channels, ds->resolution);
    free(images);
    if (ok) snprintf(f->name, sizeof f->name, "%s", ds->name);
    if (ok && cache_dir && cli_comm.rank == 0) cache_save(cache_dir, path, key, f, e->dim);
    return ok;
}

/* Features of a source: a checkpoint's G_ema (n samples, seeded), or a dataset (a seeded
   subset of n images, all if fewer), at the extractor's channels. With K ranks, a collective:
   every rank ends with all the features. */
static int feature_set_make(feature_set *f, const char *spec, extractor *e, int64_t n, uint64_t seed, const char *cache_dir) {
    memset(f, 0, sizeof *f);
    if (is_checkpoint(spec)) {
        gantl_st_file st;
        gantl_generator G;
        if (gantl_st_load(&st, spec) != GANTL_OK) return fail("metrics", gantl_last_error()), 0;
        gantl_status s = gantl_generator_from_file(&G, &st, gantl_st_find(&st, "G_ema.mapping.fc0.weight") ? "G_ema." : "G.");
        gantl_st_free(&st);
        if (s != GANTL_OK) return fail("metrics", gantl_last_error()), 0;
        if (metrics_device != GANTL_CPU && ((s = gantl_params_to_device(&G.params, metrics_device)) != GANTL_OK ||
                                            (s = gantl_params_to_device(&G.buffers, metrics_device)) != GANTL_OK)) {
            gantl_generator_free(&G);
            return fail("metrics", gantl_last_error()), 0;
        }
        int ok = feature_set_from_generator(f, &G, e, n, seed);
        gantl_generator_free(&G);
        if (ok) snprintf(f->name, sizeof f->name, "%s (G, %lld samples)", spec, (long long)n);
        return ok;
    }
    gantl_dataset ds;
    gantl_dataset_options o;
    gantl_dataset_options_default(&o);
    o.max_images = n, o.seed = seed;
    if (e->kind == 0) o.channels = e->cls.channels;
    if (gantl_dataset_load(&ds, spec, &o) != GANTL_OK) return fail("metrics", gantl_last_error()), 0;
    int ok = feature_set_from_dataset(f, &ds, e, cache_dir);
    gantl_dataset_free(&ds);
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
                                        "--comm-timeout", "--device", NULL};
    options o = {argc, argv, 0};
    if (!opt_check(&o, known)) return 2;
    const char *real_s = opt_get(&o, "--real"), *fake_s = opt_get(&o, "--fake"), *list = opt_get(&o, "--metrics");
    const char *feat_s = opt_get(&o, "--features"), *num_s = opt_get(&o, "--num"), *k_s = opt_get(&o, "--k");
    const char *strict_s = opt_get(&o, "--strict"), *json_s = opt_get(&o, "--json"), *rf = opt_get(&o, "--real-features");
    const char *ff = opt_get(&o, "--fake-features"), *min_s = opt_get(&o, "--mode-min"), *seed_s = opt_get(&o, "--seed");
    const char *cache_s = opt_get(&o, "--cache"), *timeout_s = opt_get(&o, "--comm-timeout");
    const char *device_s = opt_get(&o, "--device");
    if (o.error) return 2;
    long num = 10000, k = 3, strict = 0, json = 0, mode_min = 10, seed = 0;
    float comm_timeout = 600.0f;
    if (timeout_s && (!parse_float(timeout_s, &comm_timeout) || comm_timeout <= 0))
        return fail("metrics", "--comm-timeout must be a positive number of seconds"), 2;
    if (!parallel_comm("metrics", comm_timeout)) return 1;
    int dev_rc = parse_device("metrics", device_s, &metrics_device);
    if (dev_rc) return dev_rc;
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

/* ---- gantl select: rank source checkpoints (or datasets) for a target ---- */

typedef struct source_score {
    const char *spec;
    double fid, kid, precision, recall;
    int ok;
} source_score;

static const char *select_by = "recall";

/* recall and precision rank high-first, FID and KID low-first; failed sources last */
static int source_score_compare(const void *pa, const void *pb) {
    const source_score *a = (const source_score *)pa, *b = (const source_score *)pb;
    if (a->ok != b->ok) return b->ok - a->ok;
    double va, vb;
    int high = 1;
    if (!strcmp(select_by, "fid")) va = a->fid, vb = b->fid, high = 0;
    else if (!strcmp(select_by, "kid")) va = a->kid, vb = b->kid, high = 0;
    else if (!strcmp(select_by, "precision")) va = a->precision, vb = b->precision;
    else va = a->recall, vb = b->recall;
    if (va == vb) return 0;
    return (high ? va < vb : va > vb) ? 1 : -1;
}

static int cmd_select(int argc, char **argv) {
    static const char *const known[] = {"--target", "--by", "--num", "--features", "--k", "--strict", "--json", "--seed",
                                        "--cache", "--max-target", NULL};
    /* --sources takes every following argument up to the next option */
    char **rest = (char **)malloc((size_t)(argc + 1) * sizeof(char *));
    const char **sources = (const char **)malloc((size_t)(argc + 1) * sizeof(char *));
    int nrest = 0, nsources = 0;
    if (!rest || !sources) {
        free(rest), free(sources);
        return fail("select", "out of memory"), 1;
    }
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--sources")) {
            while (i + 1 < argc && strncmp(argv[i + 1], "--", 2)) sources[nsources++] = argv[++i];
        } else
            rest[nrest++] = argv[i];
    }
    options o = {nrest, rest, 0};
    int rc = 2;
    source_score *scores = NULL;
    if (!opt_check(&o, known)) goto out;
    const char *target_s = opt_get(&o, "--target"), *by = opt_get(&o, "--by"), *num_s = opt_get(&o, "--num");
    const char *feat_s = opt_get(&o, "--features"), *k_s = opt_get(&o, "--k"), *strict_s = opt_get(&o, "--strict");
    const char *json_s = opt_get(&o, "--json"), *seed_s = opt_get(&o, "--seed"), *cache_s = opt_get(&o, "--cache");
    const char *max_target_s = opt_get(&o, "--max-target");
    if (o.error) goto out;
    long num = 10000, k = 3, strict = 0, json = 0, seed = 0, max_target = 0;
    if ((num_s && !parse_long(num_s, 2, 1 << 24, &num)) || (k_s && !parse_long(k_s, 1, 1000, &k)) ||
        (strict_s && !parse_long(strict_s, 0, 1, &strict)) || (json_s && !parse_long(json_s, 0, 1, &json)) ||
        (seed_s && !parse_long(seed_s, 0, LONG_MAX, &seed)) || (max_target_s && !parse_long(max_target_s, 2, 1 << 24, &max_target))) {
        fail("select", "a numeric option is out of range (see gantl select --help)");
        goto out;
    }
    if (!target_s || !nsources) {
        fail("select", "--target SPEC and --sources A B ... are required");
        goto out;
    }
    if (by && strcmp(by, "recall") && strcmp(by, "precision") && strcmp(by, "fid") && strcmp(by, "kid")) {
        fail("select", "--by must be recall, precision, fid or kid");
        goto out;
    }
    select_by = by ? by : "recall";
    rc = 1;
    extractor e;
    if (!extractor_open(&e, feat_s ? feat_s : "fmnist")) goto out;
    char buf[4096];
    const char *cache_dir = cache_s ? cache_s : default_cache_dir(buf, sizeof buf);
    feature_set target;
    if (!feature_set_make(&target, target_s, &e, max_target ? max_target : num, (uint64_t)seed, cache_dir)) {
        extractor_close(&e);
        goto out;
    }
    scores = (source_score *)calloc((size_t)nsources, sizeof *scores);
    if (!scores) fail("select", "out of memory");
    for (int i = 0; scores && i < nsources; i++) {
        feature_set src;
        source_score *sc = &scores[i];
        sc->spec = sources[i];
        if (!json) {
            printf("scoring %s...\n", sources[i]);
            fflush(stdout);
        }
        if (!feature_set_make(&src, sources[i], &e, num, (uint64_t)seed + 1, cache_dir)) continue;
        gantl_prdc pr;
        double kid_std;
        /* the target is "real", the source "fake": recall = how much of the target the source covers */
        sc->ok = gantl_fid(target.features, target.n, src.features, src.n, e.dim, 1, &sc->fid) == GANTL_OK &&
                 gantl_kid(target.features, target.n, src.features, src.n, e.dim, 100, 0, (uint64_t)seed, &sc->kid,
                           &kid_std) == GANTL_OK &&
                 gantl_prdc_compute(target.features, target.n, src.features, src.n, e.dim, (int)k, (int)strict, &pr) == GANTL_OK;
        if (sc->ok) sc->precision = pr.precision, sc->recall = pr.recall;
        else fprintf(stderr, "gantl select: %s: %s\n", sources[i], gantl_last_error());
        feature_set_free(&src);
    }
    if (scores) {
        qsort(scores, (size_t)nsources, sizeof *scores, source_score_compare);
        if (!json) {
            printf("target: %s (%lld images), features %s, ranked by %s\n", target.name, (long long)target.n, e.name, select_by);
            printf("rank  %-10s %-10s %-10s %-10s source\n", "recall", "precision", "fid", "kid");
            for (int i = 0; i < nsources; i++) {
                if (scores[i].ok)
                    printf("%-5d %-10.4f %-10.4f %-10.3f %-10.5f %s\n", i + 1, scores[i].recall, scores[i].precision,
                           scores[i].fid, scores[i].kid, scores[i].spec);
                else
                    printf("-     (failed)                                       %s\n", scores[i].spec);
            }
        }
        printf("{\"target\": ");
        json_string(stdout, target.name);
        printf(", \"by\": \"%s\", \"num\": %ld, \"k\": %ld, \"features\": ", select_by, num, k);
        json_string(stdout, e.name);
        printf(", \"ranking\": [");
        for (int i = 0, first = 1; i < nsources; i++) {
            if (!scores[i].ok) continue;
            printf("%s{\"source\": ", first ? "" : ", ");
            json_string(stdout, scores[i].spec);
            printf(", \"recall\": %.6f, \"precision\": %.6f, \"fid\": %.6f, \"kid\": %.8f}", scores[i].recall,
                   scores[i].precision, scores[i].fid, scores[i].kid);
            first = 0;
        }
        printf("]}\n");
        rc = scores[0].ok && scores[nsources - 1].ok ? 0 : 1;
    }
    feature_set_free(&target);
    extractor_close(&e);
out:
    free(scores);
    free(rest);
    free(sources);
    return rc;
}

/* ---- metrics during training (gantl train --metrics) ---- */

typedef struct train_metrics {
    metric_set m;
    extractor e;
    feature_set real;
    int64_t num;
    FILE *log; /* metrics.jsonl */
} train_metrics;

/* The real side: real_spec, or else the training set itself (as the official loop: the
   dataset with its --max-images subset, no flips). With K ranks (mpirun), every rank calls it
   (the features are shared out) and rank 0 alone writes metrics.jsonl. */
static int train_metrics_open(train_metrics *tm, const char *list, const char *features, const char *real_spec,
                              const gantl_dataset *train_set, int64_t num, uint64_t seed, const char *out_dir) {
    char path[4096], buf[4096];
    memset(tm, 0, sizeof *tm);
    tm->num = num;
    if (!parse_metrics(list, &tm->m)) return fail("train", "--metrics is a list of fid, kid, pr, dc, modes"), 0;
    if (!extractor_open(&tm->e, features ? features : "fmnist")) return 0;
    const char *cache_dir = default_cache_dir(buf, sizeof buf);
    int ok = real_spec ? feature_set_make(&tm->real, real_spec, &tm->e, num, seed, cache_dir)
                       : feature_set_from_dataset(&tm->real, train_set, &tm->e, cache_dir);
    if (ok && cli_comm.rank == 0) {
        snprintf(path, sizeof path, "%s/metrics.jsonl", out_dir);
        tm->log = fopen(path, "a");
        if (!tm->log) fprintf(stderr, "gantl train: cannot open '%s'\n", path), ok = 0;
    }
    if (!ok) feature_set_free(&tm->real), extractor_close(&tm->e);
    return ok;
}

/* Scores num samples of G (the EMA generator) against the real features: one line of
   metrics.jsonl and of the console; the metrics' JSON object also into json (for stats.jsonl).
   With K ranks every rank calls it: each generates and extracts its share of the samples, then
   every rank computes the scores (deterministic, small beside the sampling), so that none waits
   in a collective while rank 0 alone computes them; rank 0 writes. */
static int train_metrics_eval(train_metrics *tm, gantl_generator *G, double kimg, const char *snapshot, char *json,
                              size_t json_size) {
    feature_set fake;
    memset(&fake, 0, sizeof fake);
    double t0 = wall_seconds();
    if (!feature_set_from_generator(&fake, G, &tm->e, tm->num, 123456789u)) return 0;
    char line[2048];
    FILE *mem = tmpfile();
    int ok = mem && compute_metrics(mem, &tm->m, &tm->real, &fake, tm->e.dim, 3, 0, 10, tm->e.num_classes, 0);
    size_t len = 0;
    if (ok) {
        rewind(mem);
        len = fread(line, 1, sizeof line - 1, mem);
    }
    line[len] = 0;
    if (mem) fclose(mem);
    feature_set_free(&fake);
    if (!ok) return 0;
    snprintf(json, json_size, "%s", line);
    if (!tm->log) return 1; /* not rank 0 */
    fprintf(tm->log, "{\"kimg\": %.3f, \"snapshot\": ", kimg);
    json_string(tm->log, snapshot);
    fprintf(tm->log, ", \"num_fake\": %lld, \"num_real\": %lld, \"features\": ", (long long)tm->num, (long long)tm->real.n);
    json_string(tm->log, tm->e.name);
    fprintf(tm->log, ", \"metrics\": %s}\n", line);
    fflush(tm->log);
    printf("metrics at %.3f kimg (%.0f s): %s\n", kimg, wall_seconds() - t0, line);
    return 1;
}

static void train_metrics_close(train_metrics *tm) {
    if (tm->log) fclose(tm->log);
    feature_set_free(&tm->real);
    extractor_close(&tm->e);
    memset(tm, 0, sizeof *tm);
}
