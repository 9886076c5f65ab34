/* The gantl command line. Each command is a function below; `gantl help` lists them and
   `gantl COMMAND --help` describes one.

   build: make   (or: cc -O2 -fopenmp examples/gantl.c -o gantl -lm) */
#if defined(__unix__) || defined(__APPLE__)
#define _POSIX_C_SOURCE 200809L
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>
#else
#define isatty(fd) 0
#endif
/* stb (Debian: libstb-dev): PNG output, and, included before gantl.h, image folders,
   .gz files and resizing for datasets. */
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#endif
#define STB_IMAGE_IMPLEMENTATION
#include <stb/stb_image.h>
#define STB_IMAGE_RESIZE_IMPLEMENTATION
#include <stb/stb_image_resize.h>
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb/stb_image_write.h>
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

#define GANTL_IMPLEMENTATION
#include "../gantl.h"

#include <errno.h>
#include <signal.h>
#include <time.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


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
#ifdef GANTL_WITH_CUDA
    if (gantl_cuda_init(0) != GANTL_OK) printf("cuda: built with the CUDA backend, but %s\n", gantl_last_error());
#endif
    printf("backends:");
    for (int d = 0; d < GANTL_DEVICE_COUNT; d++) {
        const gantl_backend *b = gantl_get_backend((gantl_device)d);
        if (b) printf(" %s", b->name);
    }
    printf("\nops: %d\n", GANTL_OP_COUNT);
#ifdef GANTL_MPI
    printf("data parallel: MPI (mpirun -np K gantl train|metrics ...)\n");
#else
    printf("data parallel: no (one process; make MPI=1 builds with MPI)\n");
#endif
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

/* Switches: given alone they mean 1 (--json), or take 0 / 1 (--json 0). */
static int is_switch(const char *name, size_t n) {
    static const char *const switches[] = {"--json", "--strict", "--mirror", "--cond", "--variants", "--with-d", NULL};
    for (int k = 0; switches[k]; k++)
        if (strlen(switches[k]) == n && !strncmp(name, switches[k], n)) return 1;
    return 0;
}

/* A switch's value follows it only when it is 0 or 1. */
static int switch_value_follows(options *o, int i) {
    return i + 1 < o->argc && (!strcmp(o->argv[i + 1], "0") || !strcmp(o->argv[i + 1], "1"));
}

/* The value of --name, or NULL. An option other than a switch given without a value is an
   error. */
static const char *opt_get(options *o, const char *name) {
    size_t n = strlen(name);
    for (int i = 1; i < o->argc; i++) {
        if (strncmp(o->argv[i], name, n) != 0) continue;
        if (o->argv[i][n] == '=') return o->argv[i] + n + 1;
        if (o->argv[i][n] == 0) {
            if (is_switch(name, n)) return switch_value_follows(o, i) ? o->argv[i + 1] : "1";
            if (i + 1 < o->argc && strncmp(o->argv[i + 1], "--", 2)) return o->argv[i + 1];
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
                if (a[n] == 0 && (is_switch(a, n) ? switch_value_follows(o, i) : i + 1 < o->argc && strncmp(o->argv[i + 1], "--", 2)))
                    i++; /* skip the value */
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

/* ---- data parallelism: `mpirun -np K gantl train|metrics ...` in MPI builds (make MPI=1) ---- */

static gantl_comm cli_comm; /* the ranks of train and metrics; one process unless MPI runs them */
#ifdef GANTL_MPI
static int cli_mpi; /* MPI was initialised */
#endif

static int fail(const char *command, const char *what) {
    if (cli_comm.size > 1) fprintf(stderr, "gantl %s: rank %d: %s\n", command, cli_comm.rank, what);
    else fprintf(stderr, "gantl %s: %s\n", command, what);
    return 1;
}

static int fail_status(const char *command) { return fail(command, gantl_last_error()); }

#ifdef GANTL_WITH_CUDA
/* This process's index among the ranks on its machine: the launcher's variable (Open MPI,
   MPICH / Hydra, MVAPICH, Slurm), else MPI's shared-memory split; 0 for one process. */
static int local_rank(void) {
    const char *names[5] = {"OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID", "MV2_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID",
                            "PMI_LOCAL_RANK"};
    if (cli_comm.size <= 1) return 0;
    for (int i = 0; i < 5; i++) {
        const char *v = getenv(names[i]);
        if (v && *v) return atoi(v);
    }
    int r = 0;
#ifdef GANTL_MPI
    MPI_Comm node; /* collective: every rank gets here alike (same launcher, same variables) */
    if (cli_mpi && MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node) == MPI_SUCCESS) {
        MPI_Comm_rank(node, &r);
        MPI_Comm_free(&node);
    }
#endif
    return r;
}
#endif

/* --device cpu | cuda | cuda:N: where generate, discriminate, metrics (the generator) and
   train run. The CUDA build (make cuda: build/gantl-cuda, with GANTL_WITH_CUDA) initialises
   the GPU here: cuda:N, or for cuda GPU 0, or with several ranks (mpirun) the local rank
   modulo the GPUs of the machine, one GPU per rank. The plain build has no CUDA backend and
   says so. 0 on success, else the exit status. */
static int parse_device(const char *command, const char *spec, gantl_device *dev) {
    *dev = GANTL_CPU;
    if (!spec || !strcmp(spec, "cpu")) return 0;
    if (strcmp(spec, "cuda") && strncmp(spec, "cuda:", 5)) return fail(command, "--device must be cpu, cuda or cuda:N"), 2;
#ifdef GANTL_WITH_CUDA
    long index = 0;
    if (spec[4] == ':' && !parse_long(spec + 5, 0, 1023, &index)) return fail(command, "--device cuda:N needs a GPU index"), 2;
    if (spec[4] != ':' && cli_comm.size > 1) {
        int count = gantl_cuda_device_count();
        index = count > 0 ? local_rank() % count : 0;
    }
    if (gantl_cuda_init((int)index) != GANTL_OK) return fail_status(command);
    *dev = GANTL_CUDA;
    return 0;
#else
    return fail(command, "--device cuda: this build has no CUDA backend (make cuda builds build/gantl-cuda)"), 2;
#endif
}

#ifndef GANTL_MPI
/* How many processes a launcher (mpirun, mpiexec) started, from its environment; 1 if none. */
static int launched_processes(void) {
    const char *names[3] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE"};
    for (int i = 0; i < 3; i++) {
        const char *v = getenv(names[i]);
        if (v && atoi(v) > 1) return atoi(v);
    }
    return 1;
}
#endif

/* Before train or metrics: MPI_Init in MPI builds; elsewhere a refusal to run as several
   independent copies under mpirun. */
static int parallel_begin(const char *command) {
    cli_comm = gantl_comm_single();
#ifdef GANTL_MPI
    int provided = 0;
    if (MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) {
        fprintf(stderr, "gantl %s: MPI_Init failed\n", command);
        return 0;
    }
    cli_mpi = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &cli_comm.rank);
    MPI_Comm_size(MPI_COMM_WORLD, &cli_comm.size);
    if (cli_comm.rank != 0 && !freopen("/dev/null", "w", stdout)) /* rank 0 speaks for all */
        fprintf(stderr, "gantl %s: rank %d: cannot silence stdout\n", command, cli_comm.rank);
    return 1;
#else
    int k = launched_processes();
    if (k > 1) {
        fprintf(stderr, "gantl %s: started as one of %d processes, but this gantl is built without MPI: they would "
                "not train together (build with make MPI=1)\n", command, k);
        return 0;
    }
    return 1;
#endif
}

/* The command's communicator, collectives timing out after timeout seconds (<= 0: 600). */
static int parallel_comm(const char *command, double timeout) {
#ifdef GANTL_MPI
    if (cli_mpi && cli_comm.size > 1 && gantl_comm_mpi_init(&cli_comm, timeout) != GANTL_OK) return !fail_status(command);
#else
    (void)command, (void)timeout;
#endif
    return 1;
}

/* After the command: with several ranks, a failure ends them all (a rank left waiting in a
   collective would wait out its timeout). */
static int parallel_end(int rc) {
#ifdef GANTL_MPI
    if (cli_mpi) {
        fflush(stdout);
        fflush(stderr);
        if (rc != 0 && rc != 130 && cli_comm.size > 1) MPI_Abort(MPI_COMM_WORLD, rc); /* 130: all stopped together */
        gantl_comm_mpi_free(&cli_comm);
        MPI_Finalize();
        cli_mpi = 0;
    }
#endif
    cli_comm = gantl_comm_single();
    return rc;
}

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
                                        "--out", "--outdir", "--npy", "--batch", "--noise-seed", "--device", NULL};
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
    gantl_device dev;
    int dev_rc = parse_device("generate", opt_get(&o, "--device"), &dev);
    if (dev_rc) return dev_rc;
    if (noise) {
        if (!strcmp(noise, "const")) mode = GANTL_NOISE_CONST;
        else if (!strcmp(noise, "random")) mode = GANTL_NOISE_RANDOM;
        else if (!strcmp(noise, "none")) mode = GANTL_NOISE_NONE;
        else return fail("generate", "--noise-mode must be const, random or none"), 2;
    }
    gantl_generator G;
    if (load_generator("generate", ckpt, net ? net : "G_ema", &G)) return 1;
    if (dev != GANTL_CPU && (gantl_params_to_device(&G.params, dev) != GANTL_OK ||
                             gantl_params_to_device(&G.buffers, dev) != GANTL_OK)) {
        gantl_generator_free(&G);
        return fail_status("generate");
    }
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
    ctx = gantl_ctx_new_device(dev, 0);
    if (!images || !ctx) {
        fail("generate", ctx ? "out of memory" : gantl_last_error());
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
        if (!img || gantl_device_synchronize(dev) != GANTL_OK) {
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
    static const char *const known[] = {"--ckpt", "--images", "--out", "--class", "--batch", "--device", NULL};
    options o = {argc, argv, 0};
    if (!opt_check(&o, known)) return 2;
    const char *ckpt = opt_get(&o, "--ckpt"), *images = opt_get(&o, "--images"), *out = opt_get(&o, "--out");
    const char *klass = opt_get(&o, "--class"), *batch_s = opt_get(&o, "--batch");
    long batch = 32, class_index = -1;
    if (o.error) return 2;
    if (!ckpt || !images) return fail("discriminate", "--ckpt and --images are required"), 2;
    if (batch_s && !parse_long(batch_s, 1, 4096, &batch)) return fail("discriminate", "--batch must be 1..4096"), 2;
    if (klass && !parse_long(klass, 0, INT_MAX, &class_index)) return fail("discriminate", "--class must be a class index"), 2;
    gantl_device dev;
    int dev_rc = parse_device("discriminate", opt_get(&o, "--device"), &dev);
    if (dev_rc) return dev_rc;
    gantl_st_file f;
    gantl_discriminator D;
    if (gantl_st_load(&f, ckpt) != GANTL_OK) return fail_status("discriminate");
    gantl_status s = gantl_discriminator_from_file(&D, &f, "D.");
    gantl_st_free(&f);
    if (s != GANTL_OK) return fail_status("discriminate");
    if (dev != GANTL_CPU && (gantl_params_to_device(&D.params, dev) != GANTL_OK ||
                             gantl_params_to_device(&D.buffers, dev) != GANTL_OK)) {
        gantl_discriminator_free(&D);
        return fail_status("discriminate");
    }
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
    ctx = gantl_ctx_new_device(dev, 0);
    if (!x || !logits || !ctx) {
        fail("discriminate", ctx ? "out of memory" : gantl_last_error());
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
        if (!l || gantl_device_synchronize(dev) != GANTL_OK) {
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

/* ---- train ---- */

/* A checkpoint for sharing: the networks and their configurations, without the training
   state (Adam moments, sampler, augmentation statistics), so another run fine-tunes it. */
static int cmd_export(int argc, char **argv) {
    static const char *const known[] = {"--ckpt", "--out", "--with-d", NULL};
    options o = {argc, argv, 0};
    if (!opt_check(&o, known)) return 2;
    const char *in = opt_get(&o, "--ckpt"), *out = opt_get(&o, "--out"), *with_d_s = opt_get(&o, "--with-d");
    long with_d = 1;
    if (o.error) return 2;
    if (!in || !out) return fail("export", "--ckpt and --out are required"), 2;
    if (with_d_s && !parse_long(with_d_s, 0, 1, &with_d)) return fail("export", "--with-d is 0 or 1"), 2;
    gantl_st_file st;
    if (gantl_st_load(&st, in) != GANTL_OK) return fail_status("export");
    if (!gantl_st_meta(&st, "gantl.G") || (with_d && !gantl_st_meta(&st, "gantl.D"))) {
        gantl_st_free(&st);
        return fail("export", "the checkpoint has no gantl.G / gantl.D configuration (not a gantl checkpoint?)"), 1;
    }
    gantl_st_writer w;
    gantl_st_writer_init(&w);
    int64_t kept = 0, floats = 0;
    for (int i = 0; i < st.count; i++) {
        const gantl_st_tensor *t = &st.tensors[i];
        int keep = !strncmp(t->name, "G.", 2) || !strncmp(t->name, "G_ema.", 6) || (with_d && !strncmp(t->name, "D.", 2));
        if (!keep) continue;
        gantl_st_writer_add(&w, t->name, t->dtype, t->ndim, t->shape, t->bytes);
        kept++, floats += t->numel;
    }
    for (int i = 0; i < st.meta_count; i++) {
        const char *k = st.meta_keys[i];
        if (!strcmp(k, "gantl.train") || (!with_d && !strcmp(k, "gantl.D"))) continue;
        /* the data description stays, renamed, so the export is never mistaken for a run to continue */
        gantl_st_writer_meta(&w, !strcmp(k, "gantl.data") ? "gantl.source_data" : k, st.meta_values[i]);
    }
    gantl_st_writer_meta(&w, "gantl.exported_from", in);
    gantl_status s = gantl_st_writer_save(&w, out);
    gantl_st_writer_free(&w);
    gantl_st_free(&st);
    if (s != GANTL_OK) return fail_status("export");
    printf("wrote %s: %lld tensors, %.2f MB of parameters (G, G_ema%s)\n", out, (long long)kept, floats * 4.0 / 1e6,
           with_d ? ", D" : "");
    return 0;
}

static volatile sig_atomic_t stop_requested;
static void on_stop_signal(int sig) {
    (void)sig;
    stop_requested = 1;
}

static double wall_seconds(void) {
#if defined(CLOCK_MONOTONIC)
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
#else
    return (double)clock() / CLOCKS_PER_SEC;
#endif
}

/* Seconds as dnnlib.util.format_time writes them: "42s", "3m 07s", "2h 05m 09s", "1d 04h 10m". */
static const char *format_time(double seconds, char *buf, size_t size) {
    long long s = seconds > 0 && seconds < 1e12 ? (long long)(seconds + 0.5) : 0;
    if (s < 60) snprintf(buf, size, "%llds", s);
    else if (s < 60 * 60) snprintf(buf, size, "%lldm %02llds", s / 60, s % 60);
    else if (s < 24 * 60 * 60) snprintf(buf, size, "%lldh %02lldm %02llds", s / 3600, (s / 60) % 60, s % 60);
    else snprintf(buf, size, "%lldd %02lldh %02lldm", s / 86400, (s / 3600) % 24, (s / 60) % 60);
    return buf;
}

static int make_dir(const char *path) {
#if defined(__unix__) || defined(__APPLE__)
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++) /* mkdir -p */
        if (*p == '/') {
            *p = 0;
            mkdir(buf, 0777);
            *p = '/';
        }
    if (mkdir(buf, 0777) != 0 && errno != EEXIST) return 0;
    struct stat st;
    return stat(buf, &st) == 0 && S_ISDIR(st.st_mode);
#else
    (void)path;
    return 1;
#endif
}

/* The data part of a snapshot: what to load and where the sampler is. */
static int data_meta(char *buf, size_t size, const gantl_dataset *ds, const gantl_sampler *s, int cond) {
    char name[600];
    size_t n = 0;
    for (const char *p = ds->name; *p && n + 2 < sizeof name; p++) { /* JSON-escape the name */
        if (*p == '"' || *p == '\\') name[n++] = '\\';
        name[n++] = *p;
    }
    name[n] = 0;
    return snprintf(buf, size, "{\"name\": \"%s\", \"count\": %lld, \"cond\": %d, \"mirror\": %d, \"sampler_seed\": \"%llu\", "
                    "\"epoch\": %lld, \"position\": %lld}", name, (long long)ds->count, cond, s->mirror,
                    (unsigned long long)s->seed, (long long)s->epoch, (long long)s->position);
}

static int save_snapshot(const char *dir, const gantl_trainer *t, const gantl_dataset *ds, const gantl_sampler *s,
                         int cond, char *path, size_t path_size) {
    gantl_st_writer w;
    char meta[1024];
    snprintf(path, path_size, "%s/network-snapshot-%06lld.safetensors", dir, (long long)(t->cur_nimg / 1000));
    gantl_st_writer_init(&w);
    gantl_status st = gantl_trainer_write(t, &w);
    data_meta(meta, sizeof meta, ds, s, cond);
    if (st == GANTL_OK) st = gantl_st_writer_meta(&w, "gantl.data", meta);
    if (st == GANTL_OK) st = gantl_st_writer_save(&w, path);
    gantl_st_writer_free(&w);
    if (st != GANTL_OK) fprintf(stderr, "gantl train: cannot save a snapshot: %s\n", gantl_last_error());
    return st == GANTL_OK;
}

/* Images of G_ema for the fixed grid latents, with noise_mode const (as the official). */
static int save_fakes(const char *path, gantl_trainer *t, const float *grid_z, const float *grid_c, int64_t count) {
    gantl_generator *G = &t->G_ema;
    int64_t C = G->cfg.img_channels, R = G->cfg.img_resolution, per = C * R * R, zdim = G->cfg.z_dim;
    float *images = (float *)malloc((size_t)(count * per) * sizeof(float));
    gantl_ctx *ctx = gantl_ctx_new_device((gantl_device)G->params.device, 0); /* where the trainer is */
    int ok = images && ctx;
    for (int64_t start = 0; ok && start < count; start += 16) {
        int64_t b = count - start < 16 ? count - start : 16, zs[2] = {b, zdim}, cs[2] = {b, G->cfg.c_dim};
        gantl_ctx_reset(ctx);
        gantl_set_grad_enabled(ctx, 0);
        gantl_tensor *c = grid_c ? gantl_from_data(ctx, 2, cs, grid_c + start * G->cfg.c_dim) : NULL;
        gantl_tensor *ws = gantl_generator_mapping(ctx, G, gantl_from_data(ctx, 2, zs, grid_z + start * zdim), c, 1.0f, -1, 0);
        gantl_tensor *img = gantl_generator_synthesis(ctx, G, ws, GANTL_NOISE_CONST, NULL, NULL);
        if (!img || gantl_device_synchronize((gantl_device)img->device) != GANTL_OK) ok = 0;
        else memcpy(images + start * per, img->data, (size_t)(b * per) * sizeof(float));
    }
    if (ok) ok = write_png(path, images, count, C, R, R);
    gantl_ctx_free(ctx);
    free(images);
    return ok;
}

#include "metrics.c"

typedef struct tick_sums {
    double v[9];
    int n[9];
} tick_sums;
static const char *const tick_names[9] = {"loss_g", "loss_d", "loss_pl", "pl_penalty", "loss_r1", "r1_penalty",
                                          "score_real", "score_fake", "sign_real"};

static void tick_add(tick_sums *t, const gantl_train_stats *s) {
    double v[9] = {s->loss_g, s->loss_d, s->loss_pl, s->pl_penalty, s->loss_r1, s->r1_penalty, s->score_real,
                   s->score_fake, s->sign_real};
    for (int i = 0; i < 9; i++)
        if (v[i] == v[i]) t->v[i] += v[i], t->n[i]++;
}

static double tick_mean(const tick_sums *t, int i) { return t->n[i] ? t->v[i] / t->n[i] : NAN; }

static int cmd_train(int argc, char **argv) {
    static const char *const known[] = {"--data", "--out", "--cfg", "--res", "--kimg", "--batch", "--batch-gpu",
                                        "--gamma", "--aug", "--resume", "--seed", "--snap", "--tick", "--max-images",
                                        "--mirror", "--cond", "--channel-base", "--channel-max", "--metrics", "--metrics-num",
                                        "--metrics-real", "--metrics-features", "--comm-timeout", "--device", NULL};
    options o = {argc, argv, 0};
    if (!opt_check(&o, known)) return 2;
    const char *data = opt_get(&o, "--data"), *out = opt_get(&o, "--out"), *cfg_name = opt_get(&o, "--cfg");
    const char *timeout_s = opt_get(&o, "--comm-timeout"), *device_s = opt_get(&o, "--device");
    const char *res_s = opt_get(&o, "--res"), *kimg_s = opt_get(&o, "--kimg"), *batch_s = opt_get(&o, "--batch");
    const char *bgpu_s = opt_get(&o, "--batch-gpu"), *gamma_s = opt_get(&o, "--gamma"), *aug = opt_get(&o, "--aug");
    const char *resume = opt_get(&o, "--resume"), *seed_s = opt_get(&o, "--seed"), *snap_s = opt_get(&o, "--snap");
    const char *tick_s = opt_get(&o, "--tick"), *max_s = opt_get(&o, "--max-images"), *mirror_s = opt_get(&o, "--mirror");
    const char *cond_s = opt_get(&o, "--cond"), *cbase_s = opt_get(&o, "--channel-base"), *cmax_s = opt_get(&o, "--channel-max");
    const char *metrics_s = opt_get(&o, "--metrics"), *mnum_s = opt_get(&o, "--metrics-num");
    const char *mreal_s = opt_get(&o, "--metrics-real"), *mfeat_s = opt_get(&o, "--metrics-features");
    if (o.error) return 2;
    if (!data || !out) return fail("train", "--data and --out are required"), 2;
    long res = 0, batch = 0, bgpu = 0, seed = 0, snap = 10, max_images = 0, mirror = 0, cond = 0, cbase = 0, cmax = 0;
    long metrics_num = 5000;
    float kimg = -1, gamma = -1, tick_kimg = 1.0f, fixed_p = 0, comm_timeout = 600.0f;
    int aug_mode = 1; /* 0 none, 1 ada, 2 fixed p */
    int K = cli_comm.size, rank = cli_comm.rank, main_rank = rank == 0; /* main_rank writes the files */
    if ((res_s && !parse_long(res_s, 4, 1024, &res)) || (batch_s && !parse_long(batch_s, 1, 1 << 16, &batch)) ||
        (bgpu_s && !parse_long(bgpu_s, 1, 1 << 16, &bgpu)) || (seed_s && !parse_long(seed_s, 0, LONG_MAX, &seed)) ||
        (snap_s && !parse_long(snap_s, 1, 1 << 20, &snap)) || (max_s && !parse_long(max_s, 1, LONG_MAX, &max_images)) ||
        (mirror_s && !parse_long(mirror_s, 0, 1, &mirror)) || (cond_s && !parse_long(cond_s, 0, 1, &cond)) ||
        (cbase_s && !parse_long(cbase_s, 1, 1 << 20, &cbase)) || (cmax_s && !parse_long(cmax_s, 1, 1 << 16, &cmax)) ||
        (mnum_s && !parse_long(mnum_s, 2, 1 << 24, &metrics_num)) ||
        (kimg_s && (!parse_float(kimg_s, &kimg) || kimg <= 0)) || (gamma_s && (!parse_float(gamma_s, &gamma) || gamma < 0)) ||
        (tick_s && (!parse_float(tick_s, &tick_kimg) || tick_kimg <= 0)) ||
        (timeout_s && (!parse_float(timeout_s, &comm_timeout) || comm_timeout <= 0)))
        return fail("train", "a numeric option is out of range (see gantl train --help)"), 2;
    /* --kimg and --tick in double precision, compared with a margin far below an image: as a
       float, 0.064 kimg is 64.000003 images, and the run took one more iteration than asked */
    double total_kimg = kimg_s ? strtod(kimg_s, NULL) : -1.0, tick_nimg = (tick_s ? strtod(tick_s, NULL) : 1.0) * 1000.0;
    if (aug) {
        if (!strcmp(aug, "ada")) aug_mode = 1;
        else if (!strcmp(aug, "noaug")) aug_mode = 0;
        else if (!strncmp(aug, "fixed:", 6) && parse_float(aug + 6, &fixed_p) && fixed_p >= 0 && fixed_p <= 1) aug_mode = 2;
        else return fail("train", "--aug must be ada, noaug or fixed:P with P in [0, 1]"), 2;
    }
    if (main_rank && !make_dir(out)) {
        fprintf(stderr, "gantl train: cannot create the output folder '%s'\n", out);
        return 1;
    }
    if (!parallel_comm("train", comm_timeout)) return 1;
    /* the device (with mpirun, each rank its GPU), and with NCCL the trainer's communicator */
    gantl_device dev = GANTL_CPU;
    int dev_rc = parse_device("train", device_s, &dev);
    if (dev_rc) return dev_rc;
    const gantl_comm *train_comm = &cli_comm; /* the CLI's own collectives stay on MPI */
#ifdef GANTL_NCCL
    gantl_comm nccl_comm = gantl_comm_single();
    if (dev == GANTL_CUDA && K > 1) {
        if (gantl_comm_nccl_init(&nccl_comm, &cli_comm, comm_timeout) != GANTL_OK) return fail_status("train");
        train_comm = &nccl_comm;
    }
#endif
    gantl_st_file ckpt;
    int have_ckpt = 0, exact = 0;
    if (resume) {
        if (gantl_st_load(&ckpt, resume) != GANTL_OK) return fail_status("train");
        have_ckpt = 1;
    }
    gantl_g_config g;
    gantl_d_config d;
    if (have_ckpt) {
        const char *gj = gantl_st_meta(&ckpt, "gantl.G"), *dj = gantl_st_meta(&ckpt, "gantl.D");
        if (!gj || !dj || gantl_g_config_from_json(&g, gj) != GANTL_OK || gantl_d_config_from_json(&d, dj) != GANTL_OK) {
            fprintf(stderr, "gantl train: %s: %s\n", resume, gj && dj ? gantl_last_error() : "no gantl.G / gantl.D metadata");
            gantl_st_free(&ckpt);
            return 1;
        }
    }
    /* the dataset: with a checkpoint, at its resolution and channels */
    gantl_dataset ds;
    gantl_dataset_options dopt;
    gantl_dataset_options_default(&dopt);
    dopt.resolution = have_ckpt ? g.img_resolution : (int)res;
    dopt.channels = have_ckpt ? g.img_channels : 0;
    dopt.max_images = max_images;
    dopt.seed = (uint64_t)seed;
    printf("Loading %s...\n", data);
    fflush(stdout);
    if (gantl_dataset_load(&ds, data, &dopt) != GANTL_OK) {
        if (have_ckpt) gantl_st_free(&ckpt);
        return fail_status("train");
    }
    int use_labels = cond && ds.num_classes > 0;
    if (cond && !ds.num_classes) fprintf(stderr, "gantl train: --cond 1, but %s has no labels: training unconditionally\n", data);
    printf("%lld images, %d channel(s), %dx%d%s\n", (long long)ds.count, ds.channels, ds.resolution, ds.resolution,
           use_labels ? ", conditional" : "");
    gantl_trainer t;
    gantl_sampler sampler;
    train_metrics tm;
    int have_tm = 0;
    gantl_status st = GANTL_OK;
    int rc = 1;
    memset(&sampler, 0, sizeof sampler);
    const char *prev_data = have_ckpt ? gantl_st_meta(&ckpt, "gantl.data") : NULL;
    if (prev_data && gantl_st_meta(&ckpt, "gantl.train")) { /* our own snapshot: continue if it is the same data */
        gantl_json j;
        if (gantl_json_parse(&j, prev_data, strlen(prev_data)) == GANTL_OK) {
            const gantl_json *name = gantl_json_get(&j, "name");
            exact = name && name->type == GANTL_JSON_STRING && !strcmp(name->string, ds.name);
            if (exact) {
                const gantl_json *c = gantl_json_get(&j, "cond"), *m = gantl_json_get(&j, "mirror");
                const gantl_json *e = gantl_json_get(&j, "epoch"), *p = gantl_json_get(&j, "position"), *sd = gantl_json_get(&j, "sampler_seed");
                uint64_t sseed = 0;
                use_labels = c && c->number != 0 && ds.num_classes > 0;
                st = gantl_trainer_from_snapshot(&t, &ckpt);
                if (st == GANTL_OK && sd && sd->type == GANTL_JSON_STRING) sseed = strtoull(sd->string, NULL, 10);
                if (st == GANTL_OK) st = gantl_sampler_init(&sampler, ds.count, m && m->number != 0, sseed);
                if (st == GANTL_OK) sampler.epoch = e ? (int64_t)e->number : 0, sampler.position = p ? (int64_t)p->number : 0;
                if (st == GANTL_OK && total_kimg > 0) t.cfg.total_kimg = total_kimg; /* a continued run may be extended */
            }
            gantl_json_free(&j);
        }
    }
    if (!exact) {
        gantl_g_config pg;
        gantl_d_config pd;
        gantl_train_config tc;
        st = gantl_train_preset(cfg_name ? cfg_name : "small", ds.resolution, ds.channels, use_labels ? ds.num_classes : 0,
                                &pg, &pd, &tc);
        if (st == GANTL_OK && have_ckpt) { /* fine-tuning: the checkpoint's networks, the preset's training */
            if (g.img_resolution != ds.resolution || g.img_channels != ds.channels ||
                g.c_dim != (use_labels ? ds.num_classes : 0)) {
                fprintf(stderr, "gantl train: %s makes %dx%d images of %d channels with %d classes; the data is %dx%d, "
                        "%d channels, %d classes used\n", resume, g.img_resolution, g.img_resolution, g.img_channels,
                        g.c_dim, ds.resolution, ds.resolution, ds.channels, use_labels ? ds.num_classes : 0);
                goto done;
            }
            pg = g, pd = d;
            tc.ada_kimg = 100.0f;    /* make ADA react faster at the beginning */
            tc.ema_rampup = -1.0f;   /* no EMA ramp-up */
        } else if (st == GANTL_OK) {
            if (cbase) pg.channel_base = pd.channel_base = (int)cbase;
            if (cmax) pg.channel_max = pd.channel_max = (int)cmax;
        }
        if (total_kimg > 0) tc.total_kimg = total_kimg;
        /* as train.py's --batch: batch_size = batch, batch_gpu = batch // gpus (the ranks); the
           presets' own batch_gpu (cifar 32, paper256 8) holds only for their own batch */
        if (batch) tc.batch_size = (int)batch, tc.batch_gpu = (int)batch / K;
        if (bgpu) tc.batch_gpu = (int)bgpu;
        if (gamma >= 0) tc.r1_gamma = gamma;
        tc.augment = aug_mode != 0;
        tc.augment_p = aug_mode == 2 ? fixed_p : 0.0f;
        tc.ada_target = aug_mode == 1 ? 0.6f : -1.0f;
        /* the minibatch-std group within a rank's rounds */
        int64_t per_rank = tc.batch_size / K, round = tc.batch_gpu && tc.batch_gpu < per_rank ? tc.batch_gpu : per_rank;
        if (round > 0 && pd.mbstd_group_size > round) pd.mbstd_group_size = (int)round;
        if (st == GANTL_OK) st = gantl_trainer_init(&t, &pg, &pd, &tc, (uint64_t)seed);
        if (st == GANTL_OK && have_ckpt) st = gantl_trainer_load_networks(&t, &ckpt);
        if (st == GANTL_OK) st = gantl_sampler_init(&sampler, ds.count, (int)mirror, (uint64_t)seed);
    }
    /* every rank reads the data and the checkpoint; rank 0's state then goes to all */
    if (st == GANTL_OK && dev != GANTL_CPU) st = gantl_trainer_to_device(&t, dev);
    if (st == GANTL_OK) st = gantl_trainer_set_comm(&t, train_comm);
    if (have_ckpt) gantl_st_free(&ckpt), have_ckpt = 0;
    if (st != GANTL_OK) {
        fail_status("train");
        goto done;
    }
    printf("%s: G %lld parameters, D %lld; batch %d, gamma %g, %s, %.1f kimg\n",
           exact ? "continuing the run" : resume ? "fine-tuning" : "training from scratch", (long long)t.G.params.numel,
           (long long)t.D.params.numel, t.cfg.batch_size, (double)t.cfg.r1_gamma,
           !t.cfg.augment ? "no augmentation" : t.cfg.ada_target >= 0 ? "ADA" : "fixed augmentation", t.cfg.total_kimg);
    if (dev != GANTL_CPU) printf("device: %s%s\n", gantl_get_backend(dev)->name, K > 1 ? " (rank 0's)" : "");
    if (K > 1)
        printf("data parallel: %d ranks of %lld images (batch_gpu %lld), gradients averaged by %s every phase\n", K,
               (long long)gantl_trainer_local_batch(&t),
               (long long)(t.cfg.batch_gpu < gantl_trainer_local_batch(&t) ? t.cfg.batch_gpu : gantl_trainer_local_batch(&t)),
               train_comm != &cli_comm ? "NCCL" : "MPI");
    if (metrics_s) { /* the real side's features once, before training (with K ranks, shared out) */
        printf("metrics %s of %ld samples at each snapshot; features of the real images...\n", metrics_s, metrics_num);
        fflush(stdout);
        if (!train_metrics_open(&tm, metrics_s, mfeat_s, mreal_s, &ds, metrics_num, (uint64_t)seed, out)) goto trained;
        have_tm = 1;
    }
    {
        /* B images per iteration, b = B / K of them on this rank: rows i * K + rank */
        int64_t B = t.cfg.batch_size, b = gantl_trainer_local_batch(&t), C = ds.channels, R = ds.resolution;
        int64_t cdim = t.G.cfg.c_dim, zdim = t.G.cfg.z_dim;
        int np = gantl_trainer_num_phases(&t);
        int64_t grid = R <= 64 ? 64 : 16;
        float *reals = (float *)malloc((size_t)(b * C * R * R) * sizeof(float));
        float *real_c = cdim ? (float *)malloc((size_t)(b * cdim) * sizeof(float)) : NULL;
        float *gen_c = cdim ? (float *)calloc((size_t)(np * b * cdim), sizeof(float)) : NULL;
        float *grid_z = (float *)malloc((size_t)(grid * zdim) * sizeof(float));
        float *grid_c = cdim ? (float *)calloc((size_t)(grid * cdim), sizeof(float)) : NULL;
        float *u = (float *)malloc((size_t)(np * B + 1) * sizeof(float));
        int64_t *idx = (int64_t *)malloc((size_t)(B > grid ? B : grid) * sizeof(int64_t));
        unsigned char *flip = (unsigned char *)malloc((size_t)B);
        char path[4096];
        FILE *log = NULL;
        if (!reals || (cdim && (!real_c || !gen_c || !grid_c)) || !grid_z || !u || !idx || !flip) {
            fail("train", "out of memory");
            goto train_done;
        }
        /* the sample grid: fixed latents from the seed, and (for labels) classes in turn */
        gantl_rng grid_rng = gantl_rng_new((uint64_t)seed * 1000003u + 17u);
        gantl_rng_normal(&grid_rng, grid_z, grid * zdim, 0.0f, 1.0f);
        for (int64_t i = 0; cdim && i < grid; i++) grid_c[i * cdim + (i / 8) % cdim] = 1.0f;
        if (!exact && main_rank) {
            float *shown = (float *)malloc((size_t)(grid * C * R * R) * sizeof(float));
            for (int64_t i = 0; i < grid; i++) idx[i] = (i * 7919) % ds.count;
            if (shown) {
                gantl_dataset_batch(&ds, idx, NULL, grid, shown, NULL);
                snprintf(path, sizeof path, "%s/reals.png", out);
                write_png(path, shown, grid, C, R, R);
                free(shown);
            }
            snprintf(path, sizeof path, "%s/fakes_init.png", out);
            save_fakes(path, &t, grid_z, grid_c, grid);
        }
        snprintf(path, sizeof path, "%s/stats.jsonl", out);
        log = main_rank ? fopen(path, "a") : NULL;
        if (main_rank && !log) {
            fprintf(stderr, "gantl train: cannot open '%s'\n", path);
            goto train_done;
        }
        signal(SIGINT, on_stop_signal);
        signal(SIGTERM, on_stop_signal);
        double start = wall_seconds(), tick_start = start;
        int64_t tick_start_nimg = t.cur_nimg, tick = 0, done = 0;
        tick_sums sums;
        memset(&sums, 0, sizeof sums);
        printf("Training for %.1f kimg; Ctrl-C saves a snapshot and stops.\n", t.cfg.total_kimg);
        while (!done) {
            /* the whole batch's indices on every rank; each loads its rows */
            gantl_sampler_next(&sampler, B, idx, flip);
            for (int64_t i = 0; K > 1 && i < b; i++) idx[i] = idx[i * K + rank], flip[i] = flip[i * K + rank];
            gantl_dataset_batch(&ds, idx, flip, b, reals, cdim ? real_c : NULL);
            if (cdim) { /* generated labels: random labels of the data, as the official loop */
                t.random.uniform(t.random.state, u, np * B);
                memset(gen_c, 0, (size_t)(np * b * cdim) * sizeof(float));
                for (int64_t r = 0; r < np * b; r++) { /* row p * b + i: global row p * B + i * K + rank */
                    int64_t k = (int64_t)(u[(r / b) * B + (r % b) * K + rank] * (float)ds.count);
                    gen_c[r * cdim + ds.labels[k < ds.count ? k : ds.count - 1]] = 1.0f;
                }
            }
            gantl_train_stats s;
            if (gantl_trainer_step(&t, reals, cdim ? real_c : NULL, cdim ? gen_c : NULL, &s) != GANTL_OK) {
                fail_status("train");
                goto train_done;
            }
            tick_add(&sums, &s);
            if (K > 1) { /* a signal on any rank stops every rank after the same iteration */
                double stop = stop_requested;
                if (gantl_comm_allreduce_f64(&cli_comm, &stop, 1) != GANTL_OK) {
                    fail_status("train");
                    goto train_done;
                }
                stop_requested = stop > 0;
            }
            done = t.cur_nimg >= t.cfg.total_kimg * 1000.0 - 1e-6 || stop_requested;
            double now = wall_seconds();
            if (isatty(1)) { /* the live line: progress, speed in this tick, and the time left at that speed */
                double rate = (t.cur_nimg - tick_start_nimg) / (now - tick_start);
                char eta_text[32];
                format_time((t.cfg.total_kimg * 1000.0 - t.cur_nimg) / rate, eta_text, sizeof eta_text);
                printf("\rkimg %.3f / %g  %.1f img/s  ETA %s      ", t.cur_nimg / 1000.0, t.cfg.total_kimg, rate, eta_text);
                fflush(stdout);
            }
            if (!done && t.cur_nimg < tick_start_nimg + tick_nimg - 1e-6) continue;
            double sec = now - tick_start, per_kimg = sec / ((t.cur_nimg - tick_start_nimg) / 1000.0);
            double eta = per_kimg * (t.cfg.total_kimg - t.cur_nimg / 1000.0);
            printf("%stick %-4lld kimg %-8.3f time %-8.0fs sec/kimg %-7.1f img/s %-6.1f eta %-6.0fs G %.3f D %.3f augment %.3f\n",
                   isatty(1) ? "\r" : "", (long long)tick, t.cur_nimg / 1000.0, now - start, per_kimg,
                   (t.cur_nimg - tick_start_nimg) / sec, eta > 0 ? eta : 0, tick_mean(&sums, 0), tick_mean(&sums, 1),
                   (double)t.augment.p);
            fflush(stdout);
            char metrics_json[2048] = "";
            if (done || (tick + 1) % snap == 0) { /* a snapshot, its sample grid and (--metrics) its scores */
                char snap_path[4096] = "";
                if (gantl_trainer_check_replicas(&t) != GANTL_OK) { /* every rank, every snapshot: cheap */
                    fail_status("train");
                    goto train_done;
                }
                if (main_rank) {
                    if (!save_snapshot(out, &t, &ds, &sampler, use_labels, snap_path, sizeof snap_path)) goto train_done;
                    snprintf(path, sizeof path, "%s/fakes%06lld.png", out, (long long)(t.cur_nimg / 1000));
                    save_fakes(path, &t, grid_z, grid_c, grid);
                    printf("saved %s\n", snap_path);
                    fflush(stdout);
                }
                /* every rank: each samples and extracts its share (the replicas agree, checked above) */
                if (have_tm && !train_metrics_eval(&tm, &t.G_ema, t.cur_nimg / 1000.0, snap_path, metrics_json,
                                                   sizeof metrics_json))
                    goto train_done;
            }
            if (log) fprintf(log, "{\"tick\": %lld, \"kimg\": %.3f, \"total_sec\": %.3f, \"sec_per_kimg\": %.3f, \"img_per_sec\": %.3f, "
                    "\"augment_p\": %.6f, \"pl_mean\": %.6f", (long long)tick, t.cur_nimg / 1000.0, now - start, per_kimg,
                    (t.cur_nimg - tick_start_nimg) / sec, (double)t.augment.p, (double)t.pl_mean);
            for (int i = 0; log && i < 9; i++) {
                double m = tick_mean(&sums, i);
                if (m == m) fprintf(log, ", \"%s\": %.6g", tick_names[i], m);
            }
            if (log && metrics_json[0]) fprintf(log, ", \"metrics\": %s", metrics_json);
            if (log) fprintf(log, ", \"timestamp\": %.3f}\n", (double)time(NULL)), fflush(log);
            tick++;
            memset(&sums, 0, sizeof sums);
            tick_start = wall_seconds(), tick_start_nimg = t.cur_nimg;
        }
        rc = stop_requested ? 130 : 0;
        if (stop_requested) printf("stopped by a signal after %.3f kimg\n", t.cur_nimg / 1000.0);
    train_done:
        if (log) fclose(log);
        free(reals), free(real_c), free(gen_c), free(grid_z), free(grid_c), free(u), free(idx), free(flip);
    }
trained:
    if (have_tm) train_metrics_close(&tm);
    gantl_trainer_free(&t);
    gantl_sampler_free(&sampler);
done:
    if (have_ckpt) gantl_st_free(&ckpt);
    gantl_dataset_free(&ds);
#ifdef GANTL_NCCL
    if (rc == 0 || rc == 130) gantl_comm_nccl_free(&nccl_comm); /* else parallel_end aborts every rank */
#endif
    return rc;
}

#include "plot.h"
#include "toy2d.c"

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
     "  --batch B           images per forward pass (default 16)\n"
     "  --device D          cpu (default), cuda or cuda:N (build/gantl-cuda, from make cuda)\n"},
    {"discriminate", cmd_discriminate, "run a checkpoint's discriminator on images",
     "usage: gantl discriminate --ckpt F --images X.npy [--out logits.npy] [--class N] [--batch B]\n"
     "  --images X.npy   float images in [-1, 1] of shape (N, C, H, W)\n"
     "  --out FILE       write the (N, 1) logits as float32 .npy (default: print them)\n"
     "  --class N        class index for a conditional discriminator\n"
     "  --device D       cpu (default), cuda or cuda:N (build/gantl-cuda, from make cuda)\n"},
    {"export", cmd_export, "a checkpoint's networks without the training state, to share or fine-tune",
     "usage: gantl export --ckpt SNAPSHOT --out FILE [--with-d 0]\n"
     "  Keeps G, G_ema and (unless --with-d 0) D with their configurations; drops the Adam\n"
     "  moments, sampler and augmentation state. `gantl train --resume FILE` fine-tunes it.\n"},
    {"train", cmd_train, "train or fine-tune StyleGAN2-ADA",
     "usage: gantl train --data SPEC --out DIR [options]\n"
     "  --data SPEC         an image folder, an .npy of images, or fashion-mnist[:CLASSES][@train|@test]\n"
     "  --out DIR           snapshots (network-snapshot-KIMG.safetensors), sample grids (fakesKIMG.png),\n"
     "                      stats.jsonl\n"
     "  --cfg NAME          small (default: two CPU cores), cifar, paper256 or auto\n"
     "  --res R             resize or pad the images to R x R\n"
     "  --kimg N            length of the run in thousands of images\n"
     "  --batch B           images per iteration, in one forward pass per process (as train.py: batch_gpu\n"
     "                      = B / processes; the cifar and paper256 presets' own 64 run in rounds of 32 and 8);\n"
     "                      --batch-gpu B: images per forward pass\n"
     "  --gamma G           R1 weight\n"
     "  --aug MODE          ada (default: adaptive p, target 0.6), noaug, or fixed:P\n"
     "  --resume CKPT       a snapshot of this run: continue exactly where it stopped;\n"
     "                      any other checkpoint (or other data): fine-tune it (ADA kimg 100, no EMA ramp-up)\n"
     "  --seed S            random seed (default 0)\n"
     "  --snap N            a snapshot every N ticks (default 10);  --tick KIMG: kimg per tick (default 1)\n"
     "  --max-images N      a random subset of N images (limited-data targets)\n"
     "  --mirror            add x-flips;  --cond: use the data's labels\n"
     "  --channel-base N, --channel-max N   network width (new runs)\n"
     "  --metrics LIST      at each snapshot, score G_ema: fid, kid, pr, dc, modes (into metrics.jsonl)\n"
     "  --metrics-num N     generated images per evaluation (default 5000)\n"
     "  --metrics-real SPEC the real side (default: the training images)\n"
     "  --metrics-features F  fmnist (default), fmnist:PATH or inception:PATH\n"
     "  --comm-timeout SEC  with mpirun (an MPI build): how long a rank waits for the others in a\n"
     "                      collective before it gives up with an error (default 600)\n"
     "  --device D          cpu (default), cuda or cuda:N (build/gantl-cuda, from make cuda): G, D,\n"
     "                      G_ema, the optimizers and every step on the GPU; with mpirun, cuda gives\n"
     "                      each rank the GPU local rank % GPUs of its machine\n"
     "  Data parallel (make MPI=1): mpirun -np K gantl train ... splits each batch over K processes\n"
     "  (batch / K images each), averages the gradients every phase; rank 0 writes the files; the\n"
     "  ranks share the --metrics sampling and feature extraction. On GPUs (make cuda MPI=1 NCCL=1,\n"
     "  --device cuda) the gradients are averaged by NCCL.\n"},
    {"metrics", cmd_metrics, "FID, KID, precision / recall, density / coverage, covered modes",
     "usage: gantl metrics --real SPEC --fake SPEC [options]\n"
     "       gantl metrics --real-features A.npy --fake-features B.npy [options]\n"
     "  SPEC                 an image folder, an .npy of images, a dataset spec (fashion-mnist:bag),\n"
     "                       or a checkpoint (.safetensors: its G_ema is sampled)\n"
     "  --metrics LIST       fid, kid, pr, dc, modes (default fid,kid,pr)\n"
     "  --features F         fmnist (the shipped classifier, default), fmnist:PATH, or inception:PATH\n"
     "                       (weights converted by tools/convert_inception.py)\n"
     "  --num N              images per side: samples of a checkpoint, a seeded subset of data (default 10000)\n"
     "  --k K                neighbours for precision / recall / density / coverage (default 3)\n"
     "  --strict             '<' instead of '<=' for the k-NN balls (prdc's convention)\n"
     "  --mode-min M         modes: classes with at least M of the fake images (default 10)\n"
     "  --seed S             latents and subsets (default 0)\n"
     "  --cache DIR          feature cache (default $GANTL_CACHE, else ~/.cache/gantl)\n"
     "  --json               only the JSON line\n"
     "  --device D           where a checkpoint's G_ema samples: cpu (default), cuda or cuda:N\n"
     "                       (build/gantl-cuda); features are extracted on the CPU\n"
     "  With mpirun (an MPI build), the ranks share the image generation and feature extraction;\n"
     "  --comm-timeout SEC bounds their waits (default 600).\n"},
    {"select", cmd_select, "rank source checkpoints (or datasets) for a target by recall, precision, FID or KID",
     "usage: gantl select --target SPEC --sources SPEC... [options]\n"
     "  Scores each source against the target in one feature space: the source's samples (a\n"
     "  checkpoint's G_ema) or images (a dataset) are the 'fake' side, the target the 'real' side, so\n"
     "  recall is the share of the target the source covers, the paper's criterion for choosing a\n"
     "  checkpoint to fine-tune. Prints a ranked table and a JSON line.\n"
     "  --target SPEC       the target data (folder, .npy, dataset spec)\n"
     "  --sources A B ...   checkpoints (.safetensors) and/or dataset specs\n"
     "  --by METRIC         recall (default), precision, fid or kid\n"
     "  --num N             samples per source and at most N target images (default 10000)\n"
     "  --max-target N      the target's seeded subset of N images instead (the subset\n"
     "                      `gantl train --max-images N --seed S` trains on, for the same --seed)\n"
     "  --features F        fmnist (default), fmnist:PATH or inception:PATH\n"
     "  --k K               neighbours for precision / recall (default 3);  --strict: '<' balls\n"
     "  --seed S            latents and subsets (default 0);  --cache DIR: feature cache\n"
     "  --json              only the JSON line\n"},
    {"toy2d", cmd_toy2d, "the paper's 2-D experiment: recall and grad-D similarity predict fine-tuning W1",
     "usage: gantl toy2d [--out DIR] [--seeds 0-2] [options]\n"
     "  Pretrains the MLP GAN on a source, fine-tunes every checkpoint on the 10-Gaussian target and\n"
     "  correlates the fine-tuned W1 with the checkpoint's recall and grad-D similarity (the paper\n"
     "  reports -0.843 and -0.728); also fine-tunes G+D, G only, D only, neither, and the other source.\n"
     "  --out DIR              results.json, checkpoints_seedS.csv, plots (default out/toy2d)\n"
     "  --seeds LIST           one to four seeds (default 0)\n"
     "  --source I|II          the pretraining source (default I)\n"
     "  --pretrain-steps N     G steps of pretraining (default 5001)\n"
     "  --every N              a checkpoint every N G steps (default 50: 101 checkpoints)\n"
     "  --finetune-steps N     G steps of each fine-tuning (default 1001)\n"
     "  --test-every N         W1 every N G steps of fine-tuning (default 250)\n"
     "  --variants 0|1         also the G-only / D-only / scratch / other-source fine-tunings (default 1)\n"
     "  --replay IN --replay-out OUT   run the loop on the weights and batches recorded in IN\n"
     "                         (tools/toy2d_ref.py) and write the results to OUT (how the tests\n"
     "                         check it against PyTorch)\n"},
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
    cli_comm = gantl_comm_single(); /* one process; train and metrics may make it K ranks */
    for (int i = 0; i < command_count; i++) {
        if (strcmp(argv[1], commands[i].name) != 0) continue;
        if (wants_help(argc - 1, argv + 1)) {
            printf("%s", commands[i].usage);
            return 0;
        }
        if (commands[i].run == cmd_train || commands[i].run == cmd_metrics) {
            if (!parallel_begin(commands[i].name)) return parallel_end(1);
            return parallel_end(commands[i].run(argc - 1, argv + 1));
        }
        return commands[i].run(argc - 1, argv + 1);
    }
    fprintf(stderr, "gantl: unknown command '%s'\n\n", argv[1]);
    print_help(stderr);
    return 2;
}
