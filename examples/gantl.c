/* The gantl command line. Each command is a function below; `gantl help` lists them and
   `gantl COMMAND --help` describes one.

   build: make   (or: cc -O2 -fopenmp examples/gantl.c -o gantl -lm) */
#define GANTL_IMPLEMENTATION
#include "../gantl.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* PNG output through stb_image_write (Debian: libstb-dev). */
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#endif
#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STBIW_WINDOWS_UTF8
#include <stb/stb_image_write.h>
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

typedef struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
    const char *usage;
} command;

static int wants_help(int argc, char **argv) {
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) return 1;
    return 0;
}

static int cmd_info(int argc, char **argv) {
    int list_ops = argc > 1 && !strcmp(argv[1], "--ops");
    if (argc > 1 && !list_ops) {
        fprintf(stderr, "gantl info: unknown option '%s' (see gantl info --help)\n", argv[1]);
        return 2;
    }
    printf("gantl %s\n", GANTL_VERSION);
#if defined(_OPENMP) && !defined(GANTL_NO_OPENMP)
    printf("cpu threads: %d (OpenMP)\n", gantl_num_threads());
#else
    printf("cpu threads: 1 (built without OpenMP)\n");
#endif
    printf("backends:");
    for (int d = 0; d < GANTL_DEVICE_COUNT; d++) {
        const gantl_backend *b = gantl_get_backend((gantl_device)d);
        if (b) printf(" %s", b->name);
    }
    printf("\nops: %d\n", GANTL_OP_COUNT);
    if (list_ops)
        for (int op = 0; op < GANTL_OP_COUNT; op++)
            printf("  %-18s %d input%s\n", gantl_op_name(op), gantl_op_num_inputs(op), gantl_op_num_inputs(op) == 1 ? "" : "s");
    return 0;
}


/* ---- option parsing: --name value or --name=value ---- */

typedef struct options {
    int argc;
    char **argv;
    int error;
} options;

/* The value of --name, or NULL. A flag given without a value is an error. */
static const char *opt_get(options *o, const char *name) {
    size_t n = strlen(name);
    for (int i = 1; i < o->argc; i++) {
        if (strncmp(o->argv[i], name, n) != 0) continue;
        if (o->argv[i][n] == '=') return o->argv[i] + n + 1;
        if (o->argv[i][n] == 0) {
            if (i + 1 < o->argc) return o->argv[i + 1];
            fprintf(stderr, "gantl: option %s needs a value\n", name);
            o->error = 1;
            return NULL;
        }
    }
    return NULL;
}

/* Rejects options that the command does not know (and stray arguments). */
static int opt_check(options *o, const char *const *known) {
    for (int i = 1; i < o->argc; i++) {
        const char *a = o->argv[i];
        int ok = 0;
        for (int k = 0; known[k] && !ok; k++) {
            size_t n = strlen(known[k]);
            if (!strncmp(a, known[k], n) && (a[n] == 0 || a[n] == '=')) {
                ok = 1;
                if (a[n] == 0) i++; /* skip the value */
            }
        }
        if (!ok) {
            fprintf(stderr, "gantl %s: unknown argument '%s' (see gantl %s --help)\n", o->argv[0], a, o->argv[0]);
            return 0;
        }
    }
    return 1;
}

static int parse_long(const char *s, long lo, long hi, long *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) return 0;
    *out = v;
    return 1;
}

static int parse_float(const char *s, float *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end) return 0;
    *out = (float)v;
    return 1;
}

/* "0-63", "1,5,9" or "0-3,10": a list of seeds; count on success, -1 on a bad spec. */
static int parse_seeds(const char *spec, uint32_t **out) {
    int count = 0, cap = 0;
    uint32_t *seeds = NULL;
    const char *p = spec;
    while (*p) {
        char *end;
        errno = 0;
        long long a = strtoll(p, &end, 10), b;
        if (errno || end == p || a < 0 || a > 4294967295LL) goto bad;
        b = a;
        p = end;
        if (*p == '-') {
            b = strtoll(p + 1, &end, 10);
            if (errno || end == p + 1 || b < a || b > 4294967295LL || b - a > 1000000) goto bad;
            p = end;
        }
        for (long long s = a; s <= b; s++) {
            if (count == cap) {
                cap = cap ? 2 * cap : 64;
                uint32_t *grown = (uint32_t *)realloc(seeds, (size_t)cap * sizeof *seeds);
                if (!grown) goto bad;
                seeds = grown;
            }
            seeds[count++] = (uint32_t)s;
        }
        if (*p == ',') p++;
        else if (*p) goto bad;
    }
    if (count == 0) goto bad;
    *out = seeds;
    return count;
bad:
    free(seeds);
    return -1;
}

static int fail(const char *command, const char *what) {
    fprintf(stderr, "gantl %s: %s\n", command, what);
    return 1;
}

static int fail_status(const char *command) { return fail(command, gantl_last_error()); }

/* Images (N, C, H, W) in [-1, 1] -> a uint8 grid as the official code converts them:
   clamp(x * 127.5 + 128, 0, 255). */
static unsigned char *image_grid(const float *img, int64_t n, int64_t c, int64_t h, int64_t w, int *gw, int *gh) {
    int cols = 1;
    while ((int64_t)cols * cols < n) cols++;
    int rows = (int)((n + cols - 1) / cols);
    *gw = (int)(cols * w), *gh = (int)(rows * h);
    unsigned char *grid = (unsigned char *)calloc((size_t)(*gw) * (size_t)(*gh) * (size_t)c, 1);
    if (!grid) return NULL;
    for (int64_t i = 0; i < n; i++) {
        int64_t x0 = (i % cols) * w, y0 = (i / cols) * h;
        for (int64_t ch = 0; ch < c; ch++)
            for (int64_t y = 0; y < h; y++)
                for (int64_t x = 0; x < w; x++) {
                    float v = img[((i * c + ch) * h + y) * w + x] * 127.5f + 128.0f;
                    v = v < 0 ? 0 : (v > 255 ? 255 : v);
                    grid[((y0 + y) * (*gw) + x0 + x) * c + ch] = (unsigned char)v; /* truncation, as .to(uint8) */
                }
    }
    return grid;
}

static int write_png(const char *path, const float *img, int64_t n, int64_t c, int64_t h, int64_t w) {
    if (c != 1 && c != 3) {
        fprintf(stderr, "gantl: cannot write %lld-channel images as PNG\n", (long long)c);
        return 0;
    }
    int gw, gh;
    unsigned char *grid = image_grid(img, n, c, h, w, &gw, &gh);
    int ok = grid && stbi_write_png(path, gw, gh, (int)c, grid, gw * (int)c);
    free(grid);
    if (!ok) fprintf(stderr, "gantl: cannot write '%s'\n", path);
    return ok;
}

/* Loads the checkpoint's generator under prefix "<net>.". */
static int load_generator(const char *command, const char *path, const char *net, gantl_generator *G) {
    gantl_st_file f;
    char prefix[16];
    if (strcmp(net, "G") && strcmp(net, "G_ema")) return fail(command, "--net must be G or G_ema");
    if (gantl_st_load(&f, path) != GANTL_OK) return fail_status(command);
    snprintf(prefix, sizeof prefix, "%s.", net);
    gantl_status s = gantl_generator_from_file(G, &f, prefix);
    gantl_st_free(&f);
    return s == GANTL_OK ? 0 : fail_status(command);
}

static int cmd_generate(int argc, char **argv) {
    static const char *const known[] = {"--ckpt", "--net", "--seeds", "--z", "--trunc", "--noise-mode", "--class",
                                        "--out", "--outdir", "--npy", "--batch", "--noise-seed", NULL};
    options o = {argc, argv, 0};
    if (!opt_check(&o, known)) return 2;
    const char *ckpt = opt_get(&o, "--ckpt"), *net = opt_get(&o, "--net"), *seeds_spec = opt_get(&o, "--seeds");
    const char *z_path = opt_get(&o, "--z"), *trunc = opt_get(&o, "--trunc"), *noise = opt_get(&o, "--noise-mode");
    const char *klass = opt_get(&o, "--class"), *out = opt_get(&o, "--out"), *outdir = opt_get(&o, "--outdir");
    const char *npy = opt_get(&o, "--npy"), *batch_s = opt_get(&o, "--batch"), *noise_seed_s = opt_get(&o, "--noise-seed");
    if (o.error) return 2;
    if (!ckpt) return fail("generate", "--ckpt is required"), 2;
    if (!seeds_spec == !z_path) return fail("generate", "give exactly one of --seeds and --z"), 2;
    if (!out && !outdir && !npy) out = "generated.png";
    float psi = 1.0f;
    long batch = 16, class_index = -1, noise_seed = 0;
    gantl_noise_mode mode = GANTL_NOISE_CONST;
    if (trunc && !parse_float(trunc, &psi)) return fail("generate", "--trunc must be a number"), 2;
    if (batch_s && !parse_long(batch_s, 1, 4096, &batch)) return fail("generate", "--batch must be 1..4096"), 2;
    if (noise_seed_s && !parse_long(noise_seed_s, 0, LONG_MAX, &noise_seed)) return fail("generate", "bad --noise-seed"), 2;
    if (klass && !parse_long(klass, 0, INT_MAX, &class_index)) return fail("generate", "--class must be a class index"), 2;
    if (noise) {
        if (!strcmp(noise, "const")) mode = GANTL_NOISE_CONST;
        else if (!strcmp(noise, "random")) mode = GANTL_NOISE_RANDOM;
        else if (!strcmp(noise, "none")) mode = GANTL_NOISE_NONE;
        else return fail("generate", "--noise-mode must be const, random or none"), 2;
    }
    gantl_generator G;
    if (load_generator("generate", ckpt, net ? net : "G_ema", &G)) return 1;
    int rc = 1;
    int64_t n = 0, z_dim = G.cfg.z_dim;
    float *z = NULL, *images = NULL;
    uint32_t *seeds = NULL;
    gantl_ctx *ctx = NULL;
    if (G.cfg.c_dim > 0 && (class_index < 0 || class_index >= G.cfg.c_dim)) {
        fprintf(stderr, "gantl generate: this generator is conditional: give --class 0..%d\n", G.cfg.c_dim - 1);
        goto done;
    }
    if (G.cfg.c_dim == 0 && class_index >= 0) {
        fail("generate", "--class given, but this generator is unconditional");
        goto done;
    }
    if (seeds_spec) { /* z = RandomState(seed).randn(1, z_dim), as the official generate.py */
        int count = parse_seeds(seeds_spec, &seeds);
        if (count < 0) {
            fail("generate", "--seeds must look like 0-63 or 1,5,9");
            goto done;
        }
        n = count;
        z = (float *)malloc((size_t)(n * z_dim) * sizeof(float));
        double *row = (double *)malloc((size_t)z_dim * sizeof(double));
        if (!z || !row) {
            free(row);
            fail("generate", "out of memory");
            goto done;
        }
        for (int64_t i = 0; i < n; i++) {
            gantl_numpy_randn(seeds[i], row, z_dim);
            for (int64_t d = 0; d < z_dim; d++) z[i * z_dim + d] = (float)row[d];
        }
        free(row);
    } else {
        gantl_npy a;
        if (gantl_npy_load(&a, z_path) != GANTL_OK) {
            fail_status("generate");
            goto done;
        }
        if (a.ndim != 2 || a.shape[1] != z_dim || (a.dtype != GANTL_F32 && a.dtype != GANTL_F64)) {
            fprintf(stderr, "gantl generate: --z must be a float array of shape (N, %lld)\n", (long long)z_dim);
            gantl_npy_free(&a);
            goto done;
        }
        n = a.shape[0];
        z = (float *)malloc((size_t)(n * z_dim) * sizeof(float));
        if (z) gantl_npy_to_f32(&a, z);
        gantl_npy_free(&a);
        if (!z) {
            fail("generate", "out of memory");
            goto done;
        }
    }
    int64_t C = G.cfg.img_channels, R = G.cfg.img_resolution, per = C * R * R;
    images = (float *)malloc((size_t)(n * per) * sizeof(float));
    ctx = gantl_ctx_new(0);
    if (!images || !ctx) {
        fail("generate", "out of memory");
        goto done;
    }
    gantl_rng rng = gantl_rng_new((uint64_t)noise_seed);
    for (int64_t start = 0; start < n; start += batch) {
        int64_t b = n - start < batch ? n - start : batch;
        gantl_ctx_reset(ctx);
        gantl_set_grad_enabled(ctx, 0);
        int64_t zs[2] = {b, z_dim}, cs[2] = {b, G.cfg.c_dim};
        gantl_tensor *zt = gantl_from_data(ctx, 2, zs, z + start * z_dim), *ct = NULL;
        if (G.cfg.c_dim > 0) {
            ct = gantl_zeros(ctx, 2, cs);
            for (int64_t i = 0; ct && i < b; i++) ct->data[i * G.cfg.c_dim + class_index] = 1.0f;
        }
        gantl_tensor *ws = gantl_generator_mapping(ctx, &G, zt, ct, psi, -1, 0);
        gantl_tensor *img = gantl_generator_synthesis(ctx, &G, ws, mode, &rng, NULL);
        if (!img) {
            fail_status("generate");
            goto done;
        }
        memcpy(images + start * per, img->data, (size_t)(b * per) * sizeof(float));
    }
    if (npy) {
        int64_t shape[4] = {n, C, R, R};
        if (gantl_npy_save(npy, GANTL_F32, 4, shape, images) != GANTL_OK) {
            fail_status("generate");
            goto done;
        }
        printf("wrote %s: %lld images, float32 (%lld, %lld, %lld, %lld)\n", npy, (long long)n, (long long)n,
               (long long)C, (long long)R, (long long)R);
    }
    if (out) {
        if (!write_png(out, images, n, C, R, R)) goto done;
        printf("wrote %s: a grid of %lld images\n", out, (long long)n);
    }
    if (outdir) {
        char path[4096];
        for (int64_t i = 0; i < n; i++) {
            if (seeds) snprintf(path, sizeof path, "%s/seed%04u.png", outdir, seeds[i]);
            else snprintf(path, sizeof path, "%s/z%05lld.png", outdir, (long long)i);
            if (!write_png(path, images + i * per, 1, C, R, R)) goto done;
        }
        printf("wrote %lld images to %s/\n", (long long)n, outdir);
    }
    rc = 0;
done:
    gantl_ctx_free(ctx);
    free(images);
    free(z);
    free(seeds);
    gantl_generator_free(&G);
    return rc;
}

static int cmd_discriminate(int argc, char **argv) {
    static const char *const known[] = {"--ckpt", "--images", "--out", "--class", "--batch", NULL};
    options o = {argc, argv, 0};
    if (!opt_check(&o, known)) return 2;
    const char *ckpt = opt_get(&o, "--ckpt"), *images = opt_get(&o, "--images"), *out = opt_get(&o, "--out");
    const char *klass = opt_get(&o, "--class"), *batch_s = opt_get(&o, "--batch");
    long batch = 32, class_index = -1;
    if (o.error) return 2;
    if (!ckpt || !images) return fail("discriminate", "--ckpt and --images are required"), 2;
    if (batch_s && !parse_long(batch_s, 1, 4096, &batch)) return fail("discriminate", "--batch must be 1..4096"), 2;
    if (klass && !parse_long(klass, 0, INT_MAX, &class_index)) return fail("discriminate", "--class must be a class index"), 2;
    gantl_st_file f;
    gantl_discriminator D;
    if (gantl_st_load(&f, ckpt) != GANTL_OK) return fail_status("discriminate");
    gantl_status s = gantl_discriminator_from_file(&D, &f, "D.");
    gantl_st_free(&f);
    if (s != GANTL_OK) return fail_status("discriminate");
    int rc = 1;
    gantl_npy a;
    float *x = NULL, *logits = NULL;
    gantl_ctx *ctx = NULL;
    int64_t C = D.cfg.img_channels, R = D.cfg.img_resolution;
    memset(&a, 0, sizeof a);
    if (D.cfg.c_dim > 0 && (class_index < 0 || class_index >= D.cfg.c_dim)) {
        fprintf(stderr, "gantl discriminate: this discriminator is conditional: give --class 0..%d\n", D.cfg.c_dim - 1);
        goto done;
    }
    if (gantl_npy_load(&a, images) != GANTL_OK) {
        fail_status("discriminate");
        goto done;
    }
    if (a.ndim != 4 || a.shape[1] != C || a.shape[2] != R || a.shape[3] != R || (a.dtype != GANTL_F32 && a.dtype != GANTL_F64)) {
        fprintf(stderr, "gantl discriminate: --images must be float images in [-1, 1] of shape (N, %lld, %lld, %lld)\n",
                (long long)C, (long long)R, (long long)R);
        goto done;
    }
    int64_t n = a.shape[0], per = C * R * R;
    x = (float *)malloc((size_t)(a.numel ? a.numel : 1) * sizeof(float));
    logits = (float *)malloc((size_t)(n ? n : 1) * sizeof(float));
    ctx = gantl_ctx_new(0);
    if (!x || !logits || !ctx) {
        fail("discriminate", "out of memory");
        goto done;
    }
    gantl_npy_to_f32(&a, x);
    for (int64_t start = 0; start < n; start += batch) {
        int64_t b = n - start < batch ? n - start : batch;
        gantl_ctx_reset(ctx);
        gantl_set_grad_enabled(ctx, 0);
        int64_t xs[4] = {b, C, R, R}, cs[2] = {b, D.cfg.c_dim};
        gantl_tensor *ct = NULL;
        if (D.cfg.c_dim > 0) {
            ct = gantl_zeros(ctx, 2, cs);
            for (int64_t i = 0; ct && i < b; i++) ct->data[i * D.cfg.c_dim + class_index] = 1.0f;
        }
        gantl_tensor *l = gantl_discriminator_forward(ctx, &D, gantl_from_data(ctx, 4, xs, x + start * per), ct);
        if (!l) {
            fail_status("discriminate");
            goto done;
        }
        memcpy(logits + start, l->data, (size_t)b * sizeof(float));
    }
    if (out) {
        int64_t shape[2] = {n, 1};
        if (gantl_npy_save(out, GANTL_F32, 2, shape, logits) != GANTL_OK) {
            fail_status("discriminate");
            goto done;
        }
        printf("wrote %s: %lld logits\n", out, (long long)n);
    } else
        for (int64_t i = 0; i < n; i++) printf("%.7g\n", logits[i]);
    rc = 0;
done:
    gantl_ctx_free(ctx);
    free(x);
    free(logits);
    gantl_npy_free(&a);
    gantl_discriminator_free(&D);
    return rc;
}

static const command commands[] = {
    {"info", cmd_info, "version, threads, backends and ops of this build",
     "usage: gantl info [--ops]\n  --ops   list every op of the op table with its number of inputs\n"},
    {"generate", cmd_generate, "images from a checkpoint's generator, as PNG and/or .npy",
     "usage: gantl generate --ckpt F (--seeds 0-63 | --z z.npy) [options]\n"
     "  --ckpt F            a gantl checkpoint (.safetensors)\n"
     "  --net G|G_ema       which generator (default G_ema)\n"
     "  --seeds LIST        seeds like 0-63 or 1,5,9: z = numpy RandomState(seed).randn(z_dim), as the\n"
     "                      official generate.py, so the same seed gives the same image\n"
     "  --z FILE            latents instead: a float .npy of shape (N, z_dim)\n"
     "  --trunc PSI         truncation psi (default 1: none)\n"
     "  --noise-mode MODE   const (default), random or none\n"
     "  --noise-seed S      seed of the random noise (default 0)\n"
     "  --class N           class index for a conditional generator\n"
     "  --out FILE          a PNG grid (default generated.png when no other output is given)\n"
     "  --outdir DIR        one PNG per image (seedNNNN.png)\n"
     "  --npy FILE          the raw float32 (N, C, H, W) output in [-1, 1]\n"
     "  --batch B           images per forward pass (default 16)\n"},
    {"discriminate", cmd_discriminate, "run a checkpoint's discriminator on images",
     "usage: gantl discriminate --ckpt F --images X.npy [--out logits.npy] [--class N] [--batch B]\n"
     "  --images X.npy   float images in [-1, 1] of shape (N, C, H, W)\n"
     "  --out FILE       write the (N, 1) logits as float32 .npy (default: print them)\n"
     "  --class N        class index for a conditional discriminator\n"},
};
static const int command_count = (int)(sizeof commands / sizeof commands[0]);

static void print_help(FILE *out) {
    fprintf(out, "gantl %s: GAN transfer learning in one C header\n\nusage: gantl COMMAND [OPTIONS]\n\ncommands:\n",
            GANTL_VERSION);
    for (int i = 0; i < command_count; i++) fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\n'gantl COMMAND --help' describes a command.\n");
}

int main(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "help") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        print_help(stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("gantl %s\n", GANTL_VERSION);
        return 0;
    }
    for (int i = 0; i < command_count; i++) {
        if (strcmp(argv[1], commands[i].name) != 0) continue;
        if (wants_help(argc - 1, argv + 1)) {
            printf("%s", commands[i].usage);
            return 0;
        }
        return commands[i].run(argc - 1, argv + 1);
    }
    fprintf(stderr, "gantl: unknown command '%s'\n\n", argv[1]);
    print_help(stderr);
    return 2;
}
