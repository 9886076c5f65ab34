/* gantl.h - GAN transfer learning in one C header.                     MIT licensed.

   Tensors, reverse-mode autograd with gradients of gradients, StyleGAN2-ADA layers,
   training and GAN metrics, implementing "When, Why, and Which Pretrained GANs Are
   Useful?" (Grigoryev, Voynov, Babenko; ICLR 2022). CUDA kernels live in gantl_cuda.cu.

   USAGE
     In exactly one C or C++ file:
         #define GANTL_IMPLEMENTATION
         #include "gantl.h"
     Everywhere else just #include "gantl.h". Compile with -fopenmp to use all cores
     (optional) and link with -lm.

         gantl_ctx *ctx = gantl_ctx_new(0);                 // per-step arena
         gantl_params P;  gantl_params_init(&P, 1);          // persistent parameters
         gantl_tensor *w = gantl_params_add(&P, "w", 2, (int64_t[]){1, 3});  // C only
         ...
         for (step) {
             gantl_ctx_reset(ctx);
             gantl_tensor *x = gantl_from_data(ctx, 2, shape, batch);
             gantl_tensor *loss = gantl_mean_all(ctx, gantl_square(ctx, gantl_linear(ctx, x, w, NULL)));
             gantl_params_zero_grad(&P);
             gantl_backward(ctx, loss);                      // accumulates into P.grad
             gantl_adam_step(&opt, &P);
         }

   CONFIGURATION (define before including the implementation)
     GANTL_IMPLEMENTATION   emit the implementation in this translation unit
     GANTL_STATIC           make every function static to this translation unit
     GANTL_MALLOC(sz), GANTL_REALLOC(p, sz), GANTL_FREE(p)
                            allocator override: define all three or none
     GANTL_ABORT()          called after a programmer error has been printed to stderr
                            (wrong shapes, bad arguments); default abort()
     GANTL_NO_OPENMP        ignore OpenMP even when the compiler enables it
     GANTL_MPI              data-parallel training over MPI: includes <mpi.h> and adds
                            gantl_comm_mpi_init (section 6); build with mpicc. Define it
                            wherever gantl.h is included, or only in the implementation's
                            file if the others do not call gantl_comm_mpi_*. Without it
                            gantl needs no MPI.
     GANTL_NCCL             declares gantl_comm_nccl_init (section 6), the NCCL transport that
                            gantl_cuda.cu defines when compiled with it (make cuda NCCL=1)
     <stb/stb_image.h>      include before the implementation to load image folders and .gz
                            files (section 13); <stb/stb_image_resize.h> adds resizing

   CONVENTIONS
     - Tensors are float32, contiguous, at most 4-D, in PyTorch order (N, C, H, W): the
       first dimension is the outermost. A 0-D tensor is a scalar.
     - Every op computes its result immediately (eager) and records its inputs, so
       gantl_grad() can walk the graph backwards. The backward of every op is written in
       terms of ops, so with create_graph the gradient is itself differentiable (R1,
       path-length regularisation).
     - Activations and graph nodes live in a gantl_ctx arena; gantl_ctx_reset() frees them
       all at once. Parameters live in a gantl_params set: one flat buffer of values, one
       of gradients; optimizer state is flat too.
     - Programmer errors (shape mismatches, bad arguments) print a message naming the op
       and the shapes and call GANTL_ABORT(). Anything from outside (files, memory) returns
       a gantl_status; gantl_last_error() gives the message. An op whose arena ran out of
       memory returns NULL, ops given NULL return NULL, and gantl_ctx_status() reports it.
     - The library never calls exit() and never prints to stdout.

   SECTIONS (declarations and implementation follow the same order)
     1. Basics: status, errors, allocation
     2. Random numbers (Philox4x32-10, counter based: same stream on any thread count)
     3. Contexts and tensors
     4. Ops (one table: enum, names, CPU kernels, backward)
     5. Autograd
     6. Parameters and optimizers
     7. Files: safetensors
     8. Linear algebra kernels (SGEMM)
     9. Metrics
    10. StyleGAN2-ADA networks
    11. ADA augmentation
    12. Training
    13. Datasets
    14. Feature extractors
*/
#ifndef GANTL_H
#define GANTL_H

#include <stddef.h>
#include <stdint.h>

#ifdef GANTL_STATIC
/* a program uses only some of the functions: no "defined but not used" warnings for the rest */
#if defined(__GNUC__) || defined(__clang__)
#define GANTLDEF static __attribute__((unused))
#else
#define GANTLDEF static
#endif
#else
#define GANTLDEF extern
#endif

#ifdef __cplusplus
extern "C" {
#endif

#define GANTL_VERSION "0.1.0"
#define GANTL_MAX_DIMS 4     /* tensors are at most 4-D: (N, C, H, W) */
#define GANTL_MAX_SRC 3      /* inputs of one op */
#define GANTL_MAX_IPARAMS 12 /* integer op parameters */
#define GANTL_MAX_FPARAMS 4  /* float op parameters */

/* ---------------------------------------------------------------------------------------
   1. Basics
   ------------------------------------------------------------------------------------- */

typedef enum gantl_status {
    GANTL_OK = 0,
    GANTL_ERR_NOMEM,       /* out of memory (or over a context's memory limit) */
    GANTL_ERR_IO,          /* a file could not be opened, read or written */
    GANTL_ERR_FORMAT,      /* a file or string is malformed, truncated or inconsistent */
    GANTL_ERR_INVALID,     /* user input that does not fit: missing tensor, wrong shape */
    GANTL_ERR_UNSUPPORTED, /* valid, but not supported by this build */
    GANTL_ERR_DEVICE,      /* a device (CUDA) call failed */
    GANTL_ERR_COMM         /* a collective between processes failed or timed out (gantl_comm) */
} gantl_status;

GANTLDEF const char *gantl_status_name(gantl_status status);
/* The message of the most recent error on this thread ("" if none). */
GANTLDEF const char *gantl_last_error(void);
/* Number of threads the CPU kernels use (1 without OpenMP). */
GANTLDEF int gantl_num_threads(void);

/* ---------------------------------------------------------------------------------------
   2. Random numbers
   Philox4x32-10: value i of a draw depends only on (seed, offset + i), never on threads.
   ------------------------------------------------------------------------------------- */

typedef struct gantl_rng {
    uint64_t seed;   /* the key */
    uint64_t offset; /* blocks of four 32-bit values consumed so far */
} gantl_rng;

GANTLDEF gantl_rng gantl_rng_new(uint64_t seed);
GANTLDEF void gantl_rng_normal(gantl_rng *rng, float *out, int64_t n, float mean, float std);
GANTLDEF void gantl_rng_uniform(gantl_rng *rng, float *out, int64_t n, float lo, float hi);
GANTLDEF uint32_t gantl_rng_u32(gantl_rng *rng);
GANTLDEF double gantl_rng_double(gantl_rng *rng);          /* uniform in [0, 1) */
GANTLDEF int64_t gantl_rng_int(gantl_rng *rng, int64_t n); /* uniform in [0, n) */
GANTLDEF void gantl_rng_permutation(gantl_rng *rng, int64_t *out, int64_t n);
/* A source of random numbers. The trainer and the augmentation draw through one, so that a
   test can replay the draws of a reference implementation; gantl_random_philox wraps a
   gantl_rng. */
typedef struct gantl_random {
    void *state;
    void (*normal)(void *state, float *out, int64_t n);  /* N(0, 1) */
    void (*uniform)(void *state, float *out, int64_t n); /* U[0, 1) */
} gantl_random;
GANTLDEF gantl_random gantl_random_philox(gantl_rng *rng);

/* numpy.random.RandomState(seed).randn(n) exactly (MT19937, legacy polar Box-Muller), so
   that a seed gives the same latent z as the official generate.py. */
GANTLDEF void gantl_numpy_randn(uint32_t seed, double *out, int64_t n);

/* ---------------------------------------------------------------------------------------
   3. Contexts and tensors
   ------------------------------------------------------------------------------------- */

typedef enum gantl_device { GANTL_CPU = 0, GANTL_CUDA = 1, GANTL_DEVICE_COUNT } gantl_device;

enum {
    GANTL_FLAG_REQUIRES_GRAD = 1u << 0, /* gradients flow to or through this tensor */
    GANTL_FLAG_PARAM = 1u << 1,         /* persistent leaf of a gantl_params set */
    GANTL_FLAG_GRAD_SET = 1u << 2       /* parameter: a backward reached it since its set's zero_grad */
};

typedef struct gantl_tensor gantl_tensor;
struct gantl_tensor {
    float *data;                   /* numel floats, contiguous, outermost dimension first */
    float *grad;                   /* parameters: where gantl_backward accumulates; else NULL */
    int64_t shape[GANTL_MAX_DIMS]; /* sizes; entries at and beyond ndim are 1 */
    int64_t numel;
    int32_t ndim;
    int32_t op;     /* the gantl_op that produced it; GANTL_OP_NONE for leaves */
    int32_t device; /* gantl_device */
    uint32_t flags; /* GANTL_FLAG_* */
    gantl_tensor *src[GANTL_MAX_SRC];
    int32_t ip[GANTL_MAX_IPARAMS]; /* op parameters */
    float fp[GANTL_MAX_FPARAMS];
    const char *name;
};

typedef struct gantl_ctx gantl_ctx;

/* A context owns the tensors of one step. chunk_bytes: first arena chunk (0: 16 MiB). */
GANTLDEF gantl_ctx *gantl_ctx_new(size_t chunk_bytes);
/* A context on a device (GANTL_CUDA: call gantl_cuda_init first). Tensor headers stay in
   host memory; tensor data comes from the device backend's allocator (for CUDA, managed
   memory, which the host can also read and write). Leaves made in it (gantl_new,
   gantl_from_data, gantl_randn, ...) are on the device, and ops run on their inputs'
   device. NULL when the device has no backend (see gantl_last_error). gantl_ctx_new(n)
   is gantl_ctx_new_device(GANTL_CPU, n). */
GANTLDEF gantl_ctx *gantl_ctx_new_device(gantl_device device, size_t chunk_bytes);
GANTLDEF gantl_device gantl_ctx_device(const gantl_ctx *ctx);
/* For device backends: marks ctx failed with status (sticky until reset; later ops return
   NULL, as after an out-of-memory) and sets the message of gantl_last_error. ctx NULL:
   only the message. */
GANTLDEF void gantl_ctx_set_error(gantl_ctx *ctx, gantl_status status, const char *fmt, ...);
GANTLDEF void gantl_ctx_free(gantl_ctx *ctx);
/* Drops every tensor of the context; memory is kept for the next step. */
GANTLDEF void gantl_ctx_reset(gantl_ctx *ctx);
/* GANTL_OK, or GANTL_ERR_NOMEM once an allocation failed (sticky until reset). */
GANTLDEF gantl_status gantl_ctx_status(const gantl_ctx *ctx);
/* Refuse to hold more than limit bytes in the arena (0: no limit). */
GANTLDEF void gantl_ctx_set_limit(gantl_ctx *ctx, size_t limit_bytes);
GANTLDEF size_t gantl_ctx_used(const gantl_ctx *ctx); /* bytes used since the last reset */
GANTLDEF size_t gantl_ctx_peak(const gantl_ctx *ctx); /* most bytes used in any step */
/* Turns graph recording on or off (like torch.no_grad); returns the previous setting. */
GANTLDEF int gantl_set_grad_enabled(gantl_ctx *ctx, int enabled);
GANTLDEF int gantl_grad_enabled(const gantl_ctx *ctx);

/* Leaf tensors. Shapes are arrays of ndim sizes. */
GANTLDEF gantl_tensor *gantl_new(gantl_ctx *ctx, int ndim, const int64_t *shape); /* uninitialised */
GANTLDEF gantl_tensor *gantl_new_1d(gantl_ctx *ctx, int64_t n0);
GANTLDEF gantl_tensor *gantl_new_2d(gantl_ctx *ctx, int64_t n0, int64_t n1);
GANTLDEF gantl_tensor *gantl_new_3d(gantl_ctx *ctx, int64_t n0, int64_t n1, int64_t n2);
GANTLDEF gantl_tensor *gantl_new_4d(gantl_ctx *ctx, int64_t n0, int64_t n1, int64_t n2, int64_t n3);
GANTLDEF gantl_tensor *gantl_full(gantl_ctx *ctx, int ndim, const int64_t *shape, float value);
GANTLDEF gantl_tensor *gantl_zeros(gantl_ctx *ctx, int ndim, const int64_t *shape);
GANTLDEF gantl_tensor *gantl_scalar(gantl_ctx *ctx, float value);
GANTLDEF gantl_tensor *gantl_from_data(gantl_ctx *ctx, int ndim, const int64_t *shape, const float *data);
GANTLDEF gantl_tensor *gantl_randn(gantl_ctx *ctx, gantl_rng *rng, int ndim, const int64_t *shape);
GANTLDEF gantl_tensor *gantl_rand(gantl_ctx *ctx, gantl_rng *rng, int ndim, const int64_t *shape);
GANTLDEF gantl_tensor *gantl_full_like(gantl_ctx *ctx, const gantl_tensor *t, float value);
/* Marks a leaf as an input to differentiate with respect to; returns t. */
GANTLDEF gantl_tensor *gantl_requires_grad(gantl_tensor *t);
/* A leaf sharing x's data, cut from the graph. */
GANTLDEF gantl_tensor *gantl_detach(gantl_ctx *ctx, gantl_tensor *x);
/* A copy of x on device, as a new leaf of ctx: gradients do not flow back through it (x
   itself when it is already there). A copy to a device other than the CPU needs a context
   on that device. NULL on failure (gantl_ctx_status). */
GANTLDEF gantl_tensor *gantl_to_device(gantl_ctx *ctx, gantl_tensor *x, gantl_device device);
/* Waits until the device's work has finished (nothing to do on the CPU); GANTL_ERR_DEVICE
   with a message if the device reported an error. */
GANTLDEF gantl_status gantl_device_synchronize(gantl_device device);

GANTLDEF int gantl_same_shape(const gantl_tensor *a, const gantl_tensor *b);
/* Writes "(2, 3, 4)" into buf; returns buf. */
GANTLDEF char *gantl_shape_str(const gantl_tensor *t, char *buf, size_t size);
GANTLDEF gantl_tensor *gantl_set_name(gantl_tensor *t, const char *name);

/* ---------------------------------------------------------------------------------------
   4. Ops
   The table has one line per primitive op: X(ENUM, name, number of tensor inputs).
   It generates the gantl_op enum, the names, the CPU kernels' table and the backward
   table; a device backend fills its own kernel table in the same order.
   ------------------------------------------------------------------------------------- */

#define GANTL_OP_TABLE(X)                                                                  \
    X(NONE, none, 0)                         /* leaf: input, constant or parameter */      \
    X(ADD, add, 2)                           /* a + b, broadcasting */                     \
    X(SUB, sub, 2)                           /* a - b, broadcasting */                     \
    X(MUL, mul, 2)                           /* a * b, broadcasting */                     \
    X(DIV, div, 2)                           /* a / b, broadcasting */                     \
    X(SCALE, scale, 1)                       /* x * fp0 + fp1 */                           \
    X(EXP, exp, 1)                                                                         \
    X(LOG, log, 1)                                                                         \
    X(SQRT, sqrt, 1)                                                                       \
    X(RSQRT, rsqrt, 1)                       /* 1 / sqrt(x) */                              \
    X(SQUARE, square, 1)                                                                   \
    X(POW, pow, 1)                           /* x ^ fp0 */                                  \
    X(ABS, abs, 1)                                                                         \
    X(SIGN, sign, 1)                         /* -1, 0, 1; zero gradient */                 \
    X(SOFTPLUS, softplus, 1)                 /* log(1 + exp(x)) */                          \
    X(SIGMOID, sigmoid, 1)                                                                 \
    X(LRELU, lrelu, 1)                       /* x > 0 ? x : fp0 * x (relu: fp0 = 0) */      \
    X(LRELU_GRAD, lrelu_grad, 2)             /* g * (x > 0 ? 1 : fp0): backward of lrelu */ \
    X(SUM, sum, 1)                           /* sum over axes ip0 (bit mask), keepdim */    \
    X(EXPAND, expand, 1)                     /* broadcast size-1 axes: backward of sum */   \
    X(RESHAPE, reshape, 1)                   /* same data, new shape (a view) */            \
    X(PERMUTE, permute, 1)                   /* out axis d = in axis ip[d] */               \
    X(SLICE, slice, 1)                       /* [ip1, ip2) along axis ip0 */                \
    X(PAD, pad, 1)                           /* ip1 zeros before, ip2 after, axis ip0 */    \
    X(CONCAT, concat, 2)                     /* along axis ip0 */                           \
    X(REPEAT, repeat, 1)                     /* tile ip[d] times along axis d */            \
    X(REPEAT_SUM, repeat_sum, 1)             /* sum of the tiles: backward of repeat */     \
    X(MATMUL, matmul, 2)                     /* op(a) @ op(b), batched; ip0, ip1: transpose */ \
    X(CONV2D, conv2d, 2)                     /* x (N,C,H,W) * w (O,C/g,kh,kw) */            \
    X(CONV_TRANSPOSE2D, conv_transpose2d, 2) /* x (N,C,H,W), w (C,O/g,kh,kw) */             \
    X(CONV2D_WGRAD, conv2d_wgrad, 2)         /* weight gradient of conv2d from x and gy */  \
    X(UPFIRDN2D, upfirdn2d, 2)               /* upsample, pad, FIR filter, downsample */    \
    X(BIAS_ACT, bias_act, 2)                 /* clamp(act(x + b) * gain) */                 \
    X(BIAS_ACT_GRAD, bias_act_grad, 2)       /* g * act'(y) * gain * [|y| < clamp] */    \
    X(GRID_SAMPLE, grid_sample, 2)           /* bilinear x (N,C,H,W) at grid (N,Ho,Wo,2) */ \
    X(GRID_SAMPLE_ADJ, grid_sample_adj, 2)   /* its adjoint: scatter to (N,C,ip0,ip1) */   \
    X(PAD_REFLECT, pad_reflect, 1)           /* reflect pad x0 x1 y0 y1 = ip0..ip3 */      \
    X(PAD_REFLECT_ADJ, pad_reflect_adj, 1)   /* its adjoint: fold the border back */

typedef enum gantl_op {
#define GANTL__OP_ENUM(e, n, k) GANTL_OP_##e,
    GANTL_OP_TABLE(GANTL__OP_ENUM)
#undef GANTL__OP_ENUM
    GANTL_OP_COUNT
} gantl_op;

GANTLDEF const char *gantl_op_name(int op);
GANTLDEF int gantl_op_num_inputs(int op);

/* A device backend: one forward kernel per op, in table order (NULL: not supported), then
   the device's memory and the flat-buffer kernels of parameter sets and optimizers. The CPU
   backend leaves those NULL (host memory, host loops). A kernel that fails calls
   gantl_ctx_set_error; a hook that fails sets gantl_last_error and returns its status. */
typedef void (*gantl_kernel_fn)(gantl_ctx *ctx, gantl_tensor *out);
typedef struct gantl_backend {
    const char *name;
    gantl_kernel_fn forward[GANTL_OP_COUNT];
    void *(*alloc)(size_t bytes); /* memory the host can read and write too (CUDA: managed); NULL on failure */
    void (*free)(void *p);
    gantl_status (*synchronize)(void);                              /* wait until idle; report errors */
    gantl_status (*copy)(void *dst, const void *src, size_t bytes); /* any of host and device memory */
    gantl_status (*fill)(float *x, float value, int64_t n);         /* x = value */
    gantl_status (*add)(float *y, const float *x, int64_t n);       /* y += x (gradient accumulation) */
    gantl_status (*lerp)(float *d, const float *s, float t, int64_t n);  /* d = s + (d - s) * t (EMA) */
    gantl_status (*nan_to_num)(float *x, float limit, int64_t n);   /* NaN -> 0, clamp to +-limit */
    /* One tensor's Adam update, as gantl_adam_step: m = b1 m + one_b1 g; v = b2 v + one_b2 g^2;
       p -= step_size * m / (sqrt(v) / bc2_sqrt + eps). */
    gantl_status (*adam)(float *p, const float *g, float *m, float *v, int64_t n, float b1, float b2, float one_b1,
                         float one_b2, float step_size, float bc2_sqrt, float eps);
    /* One tensor's SGD update, as gantl_sgd_step (first: its first step). */
    gantl_status (*sgd)(float *p, const float *g, float *buf, int64_t n, float lr, float momentum, int first);
    /* x /= d (the mean of all-reduced gradients, as the host loop); may be NULL: the host
       then divides (device memory is host-addressable) */
    gantl_status (*divide)(float *x, float d, int64_t n);
} gantl_backend;
GANTLDEF void gantl_register_backend(gantl_device device, const gantl_backend *backend);
GANTLDEF const gantl_backend *gantl_get_backend(gantl_device device);

/* The CUDA backend, defined in gantl_cuda.cu (compile it with nvcc and link it, with
   -lcublas; see the Makefile's cuda targets). gantl_cuda_init selects GPU device_index,
   creates the cuBLAS handle and registers the backend for GANTL_CUDA; without a usable GPU
   or driver it returns GANTL_ERR_DEVICE with the reason in gantl_last_error. By default
   every kernel waits for the GPU before returning, which the library's host code that
   reads device data (batch norm's running statistics, the networks' bookkeeping) relies
   on. gantl_cuda_set_sync(0) queues kernels instead, for programs that call
   gantl_device_synchronize before any host access; it returns the previous setting. */
extern gantl_status gantl_cuda_init(int device_index);
extern int gantl_cuda_set_sync(int on);
/* The number of CUDA GPUs this process sees (0 without a driver or GPU); needs no
   gantl_cuda_init. For picking one GPU per rank: local rank % count. */
extern int gantl_cuda_device_count(void);

/* Elementwise, with NumPy broadcasting for two inputs. */
GANTLDEF gantl_tensor *gantl_add(gantl_ctx *ctx, gantl_tensor *a, gantl_tensor *b);
GANTLDEF gantl_tensor *gantl_sub(gantl_ctx *ctx, gantl_tensor *a, gantl_tensor *b);
GANTLDEF gantl_tensor *gantl_mul(gantl_ctx *ctx, gantl_tensor *a, gantl_tensor *b);
GANTLDEF gantl_tensor *gantl_div(gantl_ctx *ctx, gantl_tensor *a, gantl_tensor *b);
GANTLDEF gantl_tensor *gantl_affine(gantl_ctx *ctx, gantl_tensor *x, float scale, float shift); /* x*scale+shift */
GANTLDEF gantl_tensor *gantl_scale(gantl_ctx *ctx, gantl_tensor *x, float scale);
GANTLDEF gantl_tensor *gantl_add_scalar(gantl_ctx *ctx, gantl_tensor *x, float value);
GANTLDEF gantl_tensor *gantl_neg(gantl_ctx *ctx, gantl_tensor *x);
GANTLDEF gantl_tensor *gantl_exp(gantl_ctx *ctx, gantl_tensor *x);
GANTLDEF gantl_tensor *gantl_log(gantl_ctx *ctx, gantl_tensor *x);
GANTLDEF gantl_tensor *gantl_sqrt(gantl_ctx *ctx, gantl_tensor *x);
GANTLDEF gantl_tensor *gantl_rsqrt(gantl_ctx *ctx, gantl_tensor *x);
GANTLDEF gantl_tensor *gantl_square(gantl_ctx *ctx, gantl_tensor *x);
GANTLDEF gantl_tensor *gantl_pow(gantl_ctx *ctx, gantl_tensor *x, float exponent);
GANTLDEF gantl_tensor *gantl_abs(gantl_ctx *ctx, gantl_tensor *x);
GANTLDEF gantl_tensor *gantl_sign(gantl_ctx *ctx, gantl_tensor *x);
GANTLDEF gantl_tensor *gantl_softplus(gantl_ctx *ctx, gantl_tensor *x);
GANTLDEF gantl_tensor *gantl_sigmoid(gantl_ctx *ctx, gantl_tensor *x);
GANTLDEF gantl_tensor *gantl_relu(gantl_ctx *ctx, gantl_tensor *x);
GANTLDEF gantl_tensor *gantl_leaky_relu(gantl_ctx *ctx, gantl_tensor *x, float alpha);

/* Reductions over the listed axes (negative axes count from the end). */
GANTLDEF gantl_tensor *gantl_sum(gantl_ctx *ctx, gantl_tensor *x, int naxes, const int *axes, int keepdim);
GANTLDEF gantl_tensor *gantl_mean(gantl_ctx *ctx, gantl_tensor *x, int naxes, const int *axes, int keepdim);
GANTLDEF gantl_tensor *gantl_sum_all(gantl_ctx *ctx, gantl_tensor *x);  /* 0-D */
GANTLDEF gantl_tensor *gantl_mean_all(gantl_ctx *ctx, gantl_tensor *x); /* 0-D */
/* Broadcasts x to shape (x is right-aligned, NumPy rules). */
GANTLDEF gantl_tensor *gantl_expand(gantl_ctx *ctx, gantl_tensor *x, int ndim, const int64_t *shape);
/* Sums x down to a shape it was broadcast from (the backward of broadcasting). */
GANTLDEF gantl_tensor *gantl_sum_to(gantl_ctx *ctx, gantl_tensor *x, int ndim, const int64_t *shape);

/* Shape ops. reshape accepts one -1 size; it shares x's data. */
GANTLDEF gantl_tensor *gantl_reshape(gantl_ctx *ctx, gantl_tensor *x, int ndim, const int64_t *shape);
GANTLDEF gantl_tensor *gantl_permute(gantl_ctx *ctx, gantl_tensor *x, const int *perm);
GANTLDEF gantl_tensor *gantl_transpose(gantl_ctx *ctx, gantl_tensor *x, int axis0, int axis1);
GANTLDEF gantl_tensor *gantl_slice(gantl_ctx *ctx, gantl_tensor *x, int axis, int64_t start, int64_t end);
GANTLDEF gantl_tensor *gantl_pad(gantl_ctx *ctx, gantl_tensor *x, int axis, int64_t before, int64_t after);
GANTLDEF gantl_tensor *gantl_concat(gantl_ctx *ctx, gantl_tensor *a, gantl_tensor *b, int axis);
/* torch.Tensor.repeat: reps has ndim entries, ndim >= x->ndim (x gets leading 1s). */
GANTLDEF gantl_tensor *gantl_repeat(gantl_ctx *ctx, gantl_tensor *x, int ndim, const int64_t *reps);

/* Matrix products. matmul: a (..., M, K) @ b (..., K, N) after optional transposes of the
   last two axes; batch axes must match, or one side is 2-D and is shared. */
GANTLDEF gantl_tensor *gantl_matmul(gantl_ctx *ctx, gantl_tensor *a, gantl_tensor *b, int transpose_a, int transpose_b);
/* x (N, in) @ w^T with w (out, in), plus b (out) unless NULL. */
GANTLDEF gantl_tensor *gantl_linear(gantl_ctx *ctx, gantl_tensor *x, gantl_tensor *w, gantl_tensor *b);

/* Convolutions, PyTorch semantics (cross-correlation, square stride and padding). */
GANTLDEF gantl_tensor *gantl_conv2d(gantl_ctx *ctx, gantl_tensor *x, gantl_tensor *w, int stride, int padding, int groups);
GANTLDEF gantl_tensor *gantl_conv_transpose2d(gantl_ctx *ctx, gantl_tensor *x, gantl_tensor *w, int stride, int padding,
                                              int output_padding, int groups);
/* The gradient of conv2d with respect to its (O, C/groups, kh, kw) weight. */
GANTLDEF gantl_tensor *gantl_conv2d_weight_grad(gantl_ctx *ctx, gantl_tensor *x, gantl_tensor *gy, int kh, int kw,
                                                int stride, int padding, int groups);

/* upfirdn2d as in StyleGAN2-ADA: upsample by inserting zeros, pad (negative crops) with
   pad = {x0, x1, y0, y1}, convolve with the 2-D filter f (fh, fw) (flipped unless
   flip_filter, i.e. a true convolution) scaled by gain, keep every down-th sample.
   f is a constant: no gradient flows into it. A 1-D f (k) means the outer product f f^T,
   applied separably (as the official setup_filter does for >= 8 taps): a (1, k) pass with
   the gain, then a (k, 1) pass, so k instead of k^2 taps per output. */
GANTLDEF gantl_tensor *gantl_upfirdn2d(gantl_ctx *ctx, gantl_tensor *x, gantl_tensor *f, int up, int down,
                                       const int pad[4], int flip_filter, float gain);

typedef enum gantl_act { GANTL_ACT_LINEAR = 0, GANTL_ACT_LRELU = 1 } gantl_act;
/* StyleGAN2's bias_act: y = clamp((act(x + b)) * gain, -clamp, clamp), b (C) added along
   axis 1 (b may be NULL), alpha the lrelu slope (0 gives relu), clamp < 0 for none.
   As in the official kernel, the gradient is zero where |y| reached the clamp. */
GANTLDEF gantl_tensor *gantl_bias_act(gantl_ctx *ctx, gantl_tensor *x, gantl_tensor *b, gantl_act act, float alpha,
                                      float gain, float clamp);

/* torch.nn.functional.grid_sample(x, grid, mode='bilinear', padding_mode='zeros',
   align_corners=False): x (N, C, H, W), grid (N, Ho, Wo, 2) of (x, y) in [-1, 1] -> (N, C,
   Ho, Wo). The grid is a constant: no gradient flows into it. Differentiable in x to any
   order (its backward is its adjoint, whose backward is grid_sample again). */
GANTLDEF gantl_tensor *gantl_grid_sample(gantl_ctx *ctx, gantl_tensor *x, gantl_tensor *grid);
/* F.pad(x, pad, mode='reflect') for (N, C, H, W): pad = {x0, x1, y0, y1}, each >= 0 and
   smaller than its axis (as torch requires). Differentiable to any order. */
GANTLDEF gantl_tensor *gantl_pad_reflect(gantl_ctx *ctx, gantl_tensor *x, const int pad[4]);

/* BatchNorm over axis 1 of (N, C) or (N, C, H, W). In training, batch statistics are used
   and running_mean / running_var (C) are updated in place (unbiased variance), like
   torch.nn.BatchNorm; in eval, the running statistics are used. weight / bias may be NULL. */
GANTLDEF gantl_tensor *gantl_batch_norm(gantl_ctx *ctx, gantl_tensor *x, gantl_tensor *weight, gantl_tensor *bias,
                                        gantl_tensor *running_mean, gantl_tensor *running_var, int training,
                                        float momentum, float eps);

/* ---------------------------------------------------------------------------------------
   5. Autograd
   ------------------------------------------------------------------------------------- */

/* Like torch.autograd.grad: grads[i] = d(sum_j <outputs[j], grad_outputs[j]>) / d inputs[i].
   grad_outputs may be NULL (ones). An input that does not affect the outputs gets zeros.
   With create_graph the gradients are graph nodes that can be differentiated again. */
GANTLDEF void gantl_grad(gantl_ctx *ctx, int n_outputs, gantl_tensor *const *outputs, gantl_tensor *const *grad_outputs,
                         int n_inputs, gantl_tensor *const *inputs, gantl_tensor **grads, int create_graph);
/* Like loss.backward(): adds d(loss)/d(p) into p->grad for every parameter p that loss
   depends on. loss must be a single value. */
GANTLDEF void gantl_backward(gantl_ctx *ctx, gantl_tensor *loss);

/* ---------------------------------------------------------------------------------------
   6. Parameters and optimizers
   ------------------------------------------------------------------------------------- */

/* A set of persistent tensors whose values (and gradients, if requires_grad) are slices of
   one flat buffer, so an optimizer step, a checkpoint or an all-reduce is one loop. */
typedef struct gantl_params {
    int count, capacity;
    gantl_tensor **tensors; /* tensors[i]->data points into data */
    int64_t numel;          /* floats in data (slices are 16-float aligned) */
    float *data;            /* (numel,) values */
    float *grad;            /* (numel,) gradients; NULL for buffers */
    int requires_grad;
    int32_t device;         /* gantl_device of data and grad (gantl_params_to_device) */
} gantl_params;

GANTLDEF void gantl_params_init(gantl_params *P, int requires_grad);
GANTLDEF void gantl_params_free(gantl_params *P);
/* Moves the values and gradients of P (and its tensors) to device memory, or back with
   GANTL_CPU; tensor pointers stay valid. Make optimizers after the move: their state goes
   where the set is. Adding tensors to a set on a device works (each add reallocates). */
GANTLDEF gantl_status gantl_params_to_device(gantl_params *P, gantl_device device);
/* Adds a zero-filled tensor; NULL on out-of-memory (see gantl_last_error). */
GANTLDEF gantl_tensor *gantl_params_add(gantl_params *P, const char *name, int ndim, const int64_t *shape);
GANTLDEF gantl_tensor *gantl_params_find(const gantl_params *P, const char *name);
/* Zeroes the gradients and marks them unset, like PyTorch's zero_grad(set_to_none=True):
   optimizers skip a tensor that no backward has reached since (a tensor the loss does not
   depend on), as PyTorch skips a None gradient. New tensors start as set. */
GANTLDEF void gantl_params_zero_grad(gantl_params *P);
/* Marks every gradient of the set as set (after writing gradients by hand). */
GANTLDEF void gantl_params_mark_grad(gantl_params *P);
/* Turns gradient tracking of every tensor of a trainable set on or off (like
   module.requires_grad_()): a network that is not being trained in a phase then costs no
   weight gradients. */
GANTLDEF void gantl_params_requires_grad(gantl_params *P, int on);
/* NaN -> 0, +-inf -> +-limit in the gradients (the official nan_to_num before each step). */
GANTLDEF void gantl_params_nan_to_num_grad(gantl_params *P, float limit);
/* dst = src for two sets of the same layout (same names and shapes). */
GANTLDEF void gantl_params_copy(gantl_params *dst, const gantl_params *src);
/* dst = src + (dst - src) * t: the EMA update p_ema = lerp(p, p_ema, beta). */
GANTLDEF void gantl_params_lerp(gantl_params *dst, const gantl_params *src, float t);
/* A new set with the same names and shapes as src, zero-filled. */
GANTLDEF gantl_status gantl_params_clone_layout(gantl_params *dst, const gantl_params *src, int requires_grad);

/* Adam as torch.optim.Adam (bias-corrected, no weight decay). Fields may be changed
   between steps (lazy regularisation uses a scaled lr and beta2). */
typedef struct gantl_adam {
    double lr, beta1, beta2, eps; /* double, as PyTorch's Python floats */
    int64_t step;                 /* calls of gantl_adam_step */
    int64_t numel;
    int count;
    float *m;       /* (numel,) first moments */
    float *v;       /* (numel,) second moments */
    int64_t *steps; /* (count,) steps taken by each tensor (for its bias correction) */
    int32_t device; /* where m and v are: the set's device at gantl_adam_init */
} gantl_adam;
GANTLDEF gantl_status gantl_adam_init(gantl_adam *opt, const gantl_params *P, double lr, double beta1, double beta2,
                                      double eps);
GANTLDEF void gantl_adam_step(gantl_adam *opt, gantl_params *P);
GANTLDEF void gantl_adam_free(gantl_adam *opt);

/* SGD with optional momentum, as torch.optim.SGD (dampening 0, no Nesterov). */
typedef struct gantl_sgd {
    double lr, momentum;
    int64_t step;
    int64_t numel;
    int count;
    float *buf;     /* (numel,) momentum buffer */
    int64_t *steps; /* (count,) steps taken by each tensor */
    int32_t device; /* where buf is: the set's device at gantl_sgd_init */
} gantl_sgd;
GANTLDEF gantl_status gantl_sgd_init(gantl_sgd *opt, const gantl_params *P, double lr, double momentum);
GANTLDEF void gantl_sgd_step(gantl_sgd *opt, gantl_params *P);
GANTLDEF void gantl_sgd_free(gantl_sgd *opt);

/* ---- Collectives for data parallelism ----
   Data-parallel training runs one process (rank) per worker, each with a replica of the
   networks; every optimizer step averages the gradients over the ranks, one collective
   over the flat gradient buffer of the set being trained. A gantl_comm is a small table of
   functions, like gantl_random, so that transports plug in: MPI on the CPU
   (gantl_comm_mpi_init, with GANTL_MPI), an in-process one in the tests, and NCCL with the
   CUDA backend. gantl_comm_single() is one process: every collective returns GANTL_OK at
   once and changes nothing.
   Every rank must make the same collective calls, in the same order, with the same sizes.
   The result is the same, bit for bit, on every rank. A transport that gives up (a rank
   died, or did not take part within the transport's timeout) returns GANTL_ERR_COMM with a
   message; the communicator is then unusable and the program should end every process
   (MPI_Abort): the library never does. */
typedef struct gantl_comm {
    int rank, size; /* this process (0 .. size - 1) and how many there are */
    void *state;    /* the transport's */
    /* buf (n,) = the sum over the ranks of every rank's buf, in place */
    gantl_status (*allreduce_f32)(void *state, float *buf, int64_t n);
    gantl_status (*allreduce_f64)(void *state, double *buf, int64_t n);
    /* every rank's buf (bytes) = root's */
    gantl_status (*broadcast)(void *state, void *buf, int64_t bytes, int root);
} gantl_comm;

GANTLDEF gantl_comm gantl_comm_single(void);
/* The collectives through c; with one rank they return GANTL_OK and leave buf alone. */
GANTLDEF gantl_status gantl_comm_allreduce_f32(const gantl_comm *c, float *buf, int64_t n);
GANTLDEF gantl_status gantl_comm_allreduce_f64(const gantl_comm *c, double *buf, int64_t n);
GANTLDEF gantl_status gantl_comm_broadcast(const gantl_comm *c, void *buf, int64_t bytes, int root);
/* The gradients of P (its whole flat buffer, one collective) = their mean over the ranks:
   the sum, then / size, as the official data-parallel training. The sets must have the
   same layout on every rank, and a backward must have reached the same tensors (it does
   when every rank runs the same computation on its own images). */
GANTLDEF gantl_status gantl_params_allreduce_grad(const gantl_comm *c, gantl_params *P);
/* P's values = root's (its whole flat buffer). */
GANTLDEF gantl_status gantl_params_broadcast(const gantl_comm *c, gantl_params *P, int root);
#ifdef GANTL_MPI
/* MPI (compile with GANTL_MPI and mpicc): the ranks of MPI_COMM_WORLD, through a duplicate
   of it (gantl's messages never mix with the program's). The program calls MPI_Init
   before, and MPI_Finalize after gantl_comm_mpi_free. Each collective is non-blocking
   underneath (MPI_Iallreduce / MPI_Ibcast polled with MPI_Test), so that a rank that died
   or hangs cannot block the others forever: past timeout_seconds (<= 0: 600) a collective
   returns GANTL_ERR_COMM, naming itself and the timeout. MPI errors return
   GANTL_ERR_COMM with MPI's message rather than aborting. */
GANTLDEF gantl_status gantl_comm_mpi_init(gantl_comm *c, double timeout_seconds);
GANTLDEF void gantl_comm_mpi_free(gantl_comm *c);
#endif
#ifdef GANTL_NCCL
/* NCCL on the GPU of the CUDA backend: defined in gantl_cuda.cu when it is compiled with
   GANTL_NCCL and linked with -lnccl (make cuda NCCL=1). Call gantl_cuda_init first, on
   every rank (each rank its own GPU). bootstrap is any communicator of the same ranks (MPI:
   gantl_comm_mpi_init), used only here: rank 0 makes the ncclUniqueId and broadcasts it
   through bootstrap, then every rank joins (ncclCommInitRank). c then has bootstrap's rank
   and size. Its collectives run on the GPU with ncclAllReduce / ncclBroadcast on a stream
   of their own, ordered after the work queued on the default stream, and return when they
   are done. Buffers may be device memory (managed or not: a parameter set on GANTL_CUDA)
   or host memory, which goes through a device staging buffer. As the MPI transport, no
   call waits forever: the stream and ncclCommGetAsyncError are polled, and past
   timeout_seconds (<= 0: 600; init included) or on an NCCL error the communicator is
   aborted (ncclCommAbort) and the call returns GANTL_ERR_COMM naming the collective; the
   communicator is then unusable (end every rank). Without GANTL_NCCL in gantl_cuda.cu
   these functions do not exist. */
extern gantl_status gantl_comm_nccl_init(gantl_comm *c, const gantl_comm *bootstrap, double timeout_seconds);
/* Ends c (ncclCommFinalize / ncclCommDestroy, or nothing more after an abort); c becomes
   gantl_comm_single(). Every rank calls it. */
extern void gantl_comm_nccl_free(gantl_comm *c);
#endif

/* ---------------------------------------------------------------------------------------
   7. Files: safetensors
   An 8-byte little-endian header length, a JSON header {name: {dtype, shape,
   data_offsets}, "__metadata__": {string: string}}, then the raw little-endian data.
   ------------------------------------------------------------------------------------- */

typedef enum gantl_dtype {
    GANTL_F32 = 0, GANTL_F64, GANTL_F16, GANTL_BF16, GANTL_I64, GANTL_I32, GANTL_I16, GANTL_I8,
    GANTL_U8, GANTL_BOOL, GANTL_DTYPE_COUNT
} gantl_dtype;
GANTLDEF const char *gantl_dtype_name(gantl_dtype dtype); /* "F32", ... */
GANTLDEF size_t gantl_dtype_size(gantl_dtype dtype);

#define GANTL_ST_MAX_DIMS 8
typedef struct gantl_st_tensor {
    char *name;
    gantl_dtype dtype;
    int ndim;
    int64_t shape[GANTL_ST_MAX_DIMS];
    int64_t numel;
    const unsigned char *bytes; /* numel * dtype size bytes inside the file image */
} gantl_st_tensor;

typedef struct gantl_st_file {
    int count;
    gantl_st_tensor *tensors;
    int meta_count;
    char **meta_keys, **meta_values;
    unsigned char *image; /* the whole file */
    size_t size;
} gantl_st_file;

/* Reads and validates a whole file (bounds, sizes, overlaps, JSON). */
GANTLDEF gantl_status gantl_st_load(gantl_st_file *f, const char *path);
/* The same from memory; the bytes are copied. */
GANTLDEF gantl_status gantl_st_parse(gantl_st_file *f, const void *bytes, size_t size);
GANTLDEF void gantl_st_free(gantl_st_file *f);
GANTLDEF const gantl_st_tensor *gantl_st_find(const gantl_st_file *f, const char *name);
GANTLDEF const char *gantl_st_meta(const gantl_st_file *f, const char *key);
/* Converts tensor name (any float or integer dtype) to float32 into out, checking that
   its shape is exactly (ndim, shape); shape NULL accepts any shape with numel == n. */
GANTLDEF gantl_status gantl_st_read_f32(const gantl_st_file *f, const char *name, float *out, int64_t n, int ndim,
                                        const int64_t *shape);

/* Writer: add tensors (data is copied) and metadata, then save atomically
   (written to path.tmp, flushed, renamed over path). */
typedef struct gantl_st_writer {
    int count, capacity;
    gantl_st_tensor *tensors; /* bytes owned by the writer */
    int meta_count, meta_capacity;
    char **meta_keys, **meta_values;
    gantl_status status; /* first error while adding */
} gantl_st_writer;
GANTLDEF void gantl_st_writer_init(gantl_st_writer *w);
GANTLDEF gantl_status gantl_st_writer_add(gantl_st_writer *w, const char *name, gantl_dtype dtype, int ndim,
                                          const int64_t *shape, const void *data);
GANTLDEF gantl_status gantl_st_writer_meta(gantl_st_writer *w, const char *key, const char *value);
GANTLDEF gantl_status gantl_st_writer_save(gantl_st_writer *w, const char *path);
GANTLDEF void gantl_st_writer_free(gantl_st_writer *w);

/* A small JSON document tree, for configuration strings such as a checkpoint's
   network kwargs. Numbers are doubles; objects keep their key order. */
typedef enum gantl_json_type {
    GANTL_JSON_NULL, GANTL_JSON_BOOL, GANTL_JSON_NUMBER, GANTL_JSON_STRING, GANTL_JSON_ARRAY, GANTL_JSON_OBJECT
} gantl_json_type;
typedef struct gantl_json {
    gantl_json_type type;
    int boolean;
    double number;
    char *string;
    int count;                /* items of an array or object */
    struct gantl_json *items; /* (count,) */
    char **keys;              /* (count,) for objects */
} gantl_json;
GANTLDEF gantl_status gantl_json_parse(gantl_json *out, const char *text, size_t length);
GANTLDEF void gantl_json_free(gantl_json *j);
/* The value of key in an object, or NULL (also when j is not an object). */
GANTLDEF const gantl_json *gantl_json_get(const gantl_json *j, const char *key);

/* Writes a file atomically: path.tmp, then rename. */
GANTLDEF gantl_status gantl_write_file_atomic(const char *path, const void *data, size_t size);
/* Reads a whole file into a GANTL_MALLOC'd buffer. */
GANTLDEF gantl_status gantl_read_file(const char *path, unsigned char **data, size_t *size);

/* NumPy .npy arrays (format versions 1-3, C order, little-endian or single-byte dtypes). */
typedef struct gantl_npy {
    gantl_dtype dtype;
    int ndim;
    int64_t shape[GANTL_ST_MAX_DIMS];
    int64_t numel;
    unsigned char *data; /* numel * dtype size bytes, owned */
} gantl_npy;
GANTLDEF gantl_status gantl_npy_load(gantl_npy *a, const char *path);
GANTLDEF gantl_status gantl_npy_parse(gantl_npy *a, const void *bytes, size_t size);
GANTLDEF void gantl_npy_free(gantl_npy *a);
/* The array's values as float32 (any float or integer dtype). */
GANTLDEF void gantl_npy_to_f32(const gantl_npy *a, float *out);
/* Writes atomically. dtype F32, F64, U8, I64, I32 or ... as in safetensors. */
GANTLDEF gantl_status gantl_npy_save(const char *path, gantl_dtype dtype, int ndim, const int64_t *shape, const void *data);

/* ---------------------------------------------------------------------------------------
   8. Linear algebra kernels
   ------------------------------------------------------------------------------------- */

/* c (m, n) = alpha * op(a) @ op(b) + beta * c, row-major and contiguous: op(a) is (m, k),
   stored (k, m) if transpose_a; op(b) is (k, n), stored (n, k) if transpose_b.
   beta == 0 ignores c's previous contents (even NaN). */
GANTLDEF void gantl_sgemm(float *c, const float *a, const float *b, int transpose_a, int transpose_b, float alpha,
                          float beta, int64_t m, int64_t n, int64_t k);

/* ---------------------------------------------------------------------------------------
   9. Metrics
   FID, KID, precision / recall, density / coverage on feature vectors (float32, one row
   per sample, row-major), exact W1 between 2-D point clouds, dense linear assignment and
   Pearson correlation. Sums are in double; results do not depend on the thread count.
   Bad input (NaN or infinite values, too few samples, impossible sizes) returns
   GANTL_ERR_INVALID with a message in gantl_last_error(); NULL pointers and negative
   sizes are programmer errors.
   ------------------------------------------------------------------------------------- */

/* FID statistics: mean (dim,) and covariance (dim, dim) of the features, accumulated in
   double over centred rows. unbiased = 1 divides by count - 1 (pytorch-fid, numpy.cov;
   the default to use), 0 by count (NVIDIA's StyleGAN2-ADA code). */
typedef struct gantl_fid_stats {
    int64_t dim, count;
    double *mean; /* (dim,) */
    double *cov;  /* (dim, dim), symmetric */
} gantl_fid_stats;
/* s is overwritten (not freed first); on failure it is left empty. Needs n >= 2. */
GANTLDEF gantl_status gantl_fid_stats_compute(gantl_fid_stats *s, const float *features /* (n, d) */, int64_t n,
                                              int64_t d, int unbiased);
GANTLDEF void gantl_fid_stats_free(gantl_fid_stats *s);
/* FID = |mu_a - mu_b|^2 + Tr S_a + Tr S_b - 2 Tr sqrt(S_a S_b), never negative (a
   negative rounding result is clamped to 0), exactly 0 for bitwise identical statistics.
   Tr sqrt(S_a S_b) = sum sqrt(eig(L^T S_b L)) with S_a = L L^T (Cholesky; a pivoted,
   rank-revealing one when S_a is singular, e.g. count <= dim); O(dim^3). */
GANTLDEF gantl_status gantl_fid_from_stats(const gantl_fid_stats *a, const gantl_fid_stats *b, double *fid);
/* Statistics of x (nx, d) and y (ny, d), then gantl_fid_from_stats. */
GANTLDEF gantl_status gantl_fid(const float *x, int64_t nx, const float *y, int64_t ny, int64_t d, int unbiased,
                                double *fid);

/* KID: unbiased MMD^2 with the kernel k(u, v) = (u.v / d + 1)^3,
   [sum_{i!=j} k(x_i,x_j) + sum_{i!=j} k(y_i,y_j)] / (m(m-1)) - 2 sum_{i,j} k(x_i,y_j) / m^2,
   over num_subsets (100 is usual) pairs of random subsets of m rows each, drawn without
   replacement; subset_size <= 0 means m = min(nx, ny, 1000). mean and std over the subsets;
   std is the population std (divide by num_subsets, as numpy.std and torch-fidelity).
   Reproducible: the subsets depend only on (nx, ny, num_subsets, m, seed). */
GANTLDEF gantl_status gantl_kid(const float *x, int64_t nx, const float *y, int64_t ny, int64_t d, int num_subsets,
                                int64_t subset_size, uint64_t seed, double *mean, double *std);
/* The subsets gantl_kid uses: x_idx and y_idx (num_subsets, m), row indices into x and y.
   For each subset, x's m indices are drawn, then y's, by a partial Fisher-Yates shuffle
   (gantl_rng_int on a running permutation of 0..n-1). */
GANTLDEF gantl_status gantl_kid_subsets(int64_t nx, int64_t ny, int num_subsets, int64_t m, uint64_t seed,
                                        int64_t *x_idx, int64_t *y_idx);
/* KID on given subsets (x_idx, y_idx (num_subsets, m)); std may be NULL. */
GANTLDEF gantl_status gantl_kid_from_subsets(const float *x, int64_t nx, const float *y, int64_t ny, int64_t d,
                                             int num_subsets, int64_t m, const int64_t *x_idx, const int64_t *y_idx,
                                             double *mean, double *std);

/* Improved precision and recall (Kynkaanniemi et al. 2019), density and coverage (Naeem
   et al. 2020). r_i: distance from a point to its k-th nearest neighbour in its own set,
   itself excluded by index (duplicates count as neighbours at distance 0).
     precision = share of fake points inside some real ball B(x_i, r_i)
     recall    = share of real points inside some fake ball B(y_j, r_j)
     density   = (1 / (k n_fake)) sum_j #{i : y_j in B(x_i, r_i)}
     coverage  = share of real x_i whose nearest fake point is inside B(x_i, r_i)
   "inside" is d <= r when strict = 0 (NVIDIA, Kynkaanniemi; use k = 3) and d < r when
   strict = 1 (the prdc package; k = 5 in its examples). Needs k < n_real and k < n_fake.
   Distances come from |u|^2 - 2 u.v + |v|^2 (float GEMM, clamped at 0) in blocks of at
   most 1024 x 4096, so memory stays bounded for any n. */
typedef struct gantl_prdc {
    double precision, recall, density, coverage;
} gantl_prdc;
GANTLDEF gantl_status gantl_prdc_compute(const float *real /* (n_real, d) */, int64_t n_real,
                                         const float *fake /* (n_fake, d) */, int64_t n_fake, int64_t d, int k,
                                         int strict, gantl_prdc *out);
/* radii (n,): distance of each row of x (n, d) to its k-th nearest other row (k < n). */
GANTLDEF gantl_status gantl_knn_radii(const float *x, int64_t n, int64_t d, int k, float *radii);

/* Exact W1 between two equal-size uniform 2-D point clouds a, b (n, 2): the optimal plan
   is a permutation, so W1 = min over assignments of the mean matched Euclidean distance.
   Uses n * n doubles for the cost matrix. */
GANTLDEF gantl_status gantl_w1_2d(const float *a, const float *b, int64_t n, double *w1);
/* Minimum-cost perfect matching of a dense square cost (n, n), row-major and finite:
   assign[i] = column of row i (may be NULL), total = sum of the matched costs (may be
   NULL). Exact: shortest augmenting paths (Jonker-Volgenant), started from prices that
   an eps-scaling auction finds quickly. O(n^3) worst case; n = 2048 2-D clouds ~0.3 s. */
GANTLDEF gantl_status gantl_linear_assignment(const double *cost, int64_t n, int64_t *assign, double *total);

/* Pearson correlation r of x, y (n,) and its two-sided p-value under independence
   (t-test with n - 2 degrees of freedom, as scipy.stats.pearsonr); p_value may be NULL.
   n == 2 gives r = +-1 and p = 1, like scipy. A constant input is an error. */
GANTLDEF gantl_status gantl_pearson(const double *x, const double *y, int64_t n, double *r, double *p_value);

/* ---------------------------------------------------------------------------------------
   10. StyleGAN2-ADA networks
   The official networks (NVlabs/stylegan2-ada-pytorch, training/networks.py) in fp32:
   equalized learning rate, a mapping network with w_avg tracking and truncation, a
   'skip' synthesis network with modulated / demodulated convolutions, noise and ToRGB,
   and a 'resnet', 'orig' or 'skip' discriminator with minibatch standard deviation and
   label conditioning. Parameter and buffer names are the official state_dict names.
   ------------------------------------------------------------------------------------- */

#define GANTL_MAX_MAPPING_LAYERS 16
#define GANTL_MAX_BLOCKS 9 /* resolutions 4 .. 1024 */

typedef enum gantl_noise_mode { GANTL_NOISE_RANDOM = 0, GANTL_NOISE_CONST, GANTL_NOISE_NONE } gantl_noise_mode;
typedef enum gantl_d_arch { GANTL_D_RESNET = 0, GANTL_D_ORIG, GANTL_D_SKIP } gantl_d_arch;

typedef struct gantl_mapping_config {
    int num_layers;      /* 8 */
    int embed_features;  /* 0: w_dim */
    int layer_features;  /* 0: w_dim */
    float lr_multiplier; /* 0.01 */
    float w_avg_beta;    /* 0.995; < 0: no w_avg (None) */
} gantl_mapping_config;

/* The official Generator constructor kwargs. */
typedef struct gantl_g_config {
    int z_dim, c_dim, w_dim, img_resolution, img_channels;
    gantl_mapping_config mapping;
    int channel_base, channel_max; /* 32768, 512 */
    int num_fp16_res;              /* kept for checkpoints; gantl computes in fp32 */
    float conv_clamp;              /* < 0: None */
} gantl_g_config;

/* The official Discriminator constructor kwargs. */
typedef struct gantl_d_config {
    int c_dim, img_resolution, img_channels;
    gantl_d_arch architecture;
    int channel_base, channel_max, num_fp16_res;
    float conv_clamp;           /* < 0: None */
    int cmap_dim;               /* 0: default, the channels at 4x4 */
    int mbstd_group_size;       /* 4; 0: the whole minibatch (None) */
    int mbstd_num_channels;     /* 1; 0: no minibatch std */
    int freeze_layers;          /* Freeze-D (block_kwargs), used by training */
    gantl_mapping_config mapping; /* the label embedding when c_dim > 0 */
} gantl_d_config;

GANTLDEF void gantl_g_config_default(gantl_g_config *cfg);
GANTLDEF void gantl_d_config_default(gantl_d_config *cfg);
/* From / to the official kwargs as JSON (a checkpoint's "gantl.G" / "gantl.D" metadata). */
GANTLDEF gantl_status gantl_g_config_from_json(gantl_g_config *cfg, const char *json);
GANTLDEF gantl_status gantl_d_config_from_json(gantl_d_config *cfg, const char *json);
/* Writes the JSON into buf (like snprintf) and returns its length. */
GANTLDEF int gantl_g_config_to_json(const gantl_g_config *cfg, char *buf, size_t size);
GANTLDEF int gantl_d_config_to_json(const gantl_d_config *cfg, char *buf, size_t size);

typedef struct gantl_fc_layer { /* FullyConnectedLayer */
    gantl_tensor *weight, *bias; /* (out, in), (out) or NULL */
    float weight_gain, bias_gain;
    gantl_act act;
} gantl_fc_layer;

typedef struct gantl_conv_layer { /* Conv2dLayer */
    gantl_tensor *weight, *bias, *filter; /* (O, I, k, k), (O) or NULL, FIR buffer */
    int up, down;
    float weight_gain, act_gain, conv_clamp;
    gantl_act act;
} gantl_conv_layer;

typedef struct gantl_synthesis_layer {
    gantl_fc_layer affine;
    gantl_tensor *weight, *bias, *noise_strength, *noise_const, *filter;
    int resolution, up;
    float conv_clamp;
} gantl_synthesis_layer;

typedef struct gantl_torgb_layer {
    gantl_fc_layer affine;
    gantl_tensor *weight, *bias;
    float weight_gain, conv_clamp;
} gantl_torgb_layer;

typedef struct gantl_synthesis_block {
    int resolution, in_channels, out_channels, num_conv, num_torgb;
    gantl_tensor *const_input; /* (C, 4, 4), first block only */
    gantl_tensor *filter;
    gantl_synthesis_layer conv0, conv1;
    gantl_torgb_layer torgb;
} gantl_synthesis_block;

typedef struct gantl_mapping {
    int z_dim, c_dim, w_dim, num_ws, num_layers;
    gantl_fc_layer embed, fc[GANTL_MAX_MAPPING_LAYERS];
    gantl_tensor *w_avg; /* buffer (w_dim), or NULL */
    float w_avg_beta;
} gantl_mapping;

typedef struct gantl_generator {
    gantl_g_config cfg;
    gantl_params params;  /* trainable */
    gantl_params buffers; /* w_avg, noise_const, resample_filter */
    gantl_mapping mapping;
    int num_ws, num_blocks, num_noise;
    gantl_synthesis_block blocks[GANTL_MAX_BLOCKS];
} gantl_generator;

typedef struct gantl_d_block {
    int resolution, in_channels, tmp_channels, out_channels, has_fromrgb, has_skip;
    gantl_tensor *filter;
    gantl_conv_layer fromrgb, conv0, conv1, skip;
} gantl_d_block;

typedef struct gantl_discriminator {
    gantl_d_config cfg;
    gantl_params params, buffers;
    int num_blocks, cmap_dim;
    gantl_d_block blocks[GANTL_MAX_BLOCKS];
    gantl_mapping mapping;                  /* label embedding when c_dim > 0 */
    gantl_conv_layer epilogue_fromrgb, epilogue_conv;
    gantl_fc_layer epilogue_fc, epilogue_out;
} gantl_discriminator;

/* Builds the network with the official initialisation (weights N(0, 1) / lr_multiplier,
   biases 0, affine biases 1, noise strengths 0, w_avg 0), drawn from seed. */
GANTLDEF gantl_status gantl_generator_init(gantl_generator *G, const gantl_g_config *cfg, uint64_t seed);
GANTLDEF void gantl_generator_free(gantl_generator *G);
GANTLDEF gantl_status gantl_discriminator_init(gantl_discriminator *D, const gantl_d_config *cfg, uint64_t seed);
GANTLDEF void gantl_discriminator_free(gantl_discriminator *D);

/* z (N, z_dim), c (N, c_dim) or NULL -> ws (N, num_ws, w_dim). truncation_cutoff < 0
   truncates every w. update_w_avg: the training-mode moving average of w. */
GANTLDEF gantl_tensor *gantl_generator_mapping(gantl_ctx *ctx, gantl_generator *G, gantl_tensor *z, gantl_tensor *c,
                                               float truncation_psi, int truncation_cutoff, int update_w_avg);
/* ws (N, num_ws, w_dim) -> images (N, img_channels, R, R). Random noise is drawn from rng,
   unless noise[i] (N, 1, res, res) is given for noise layer i (b4.conv1, b8.conv0, ...). */
GANTLDEF gantl_tensor *gantl_generator_synthesis(gantl_ctx *ctx, gantl_generator *G, gantl_tensor *ws,
                                                 gantl_noise_mode noise_mode, gantl_rng *rng,
                                                 gantl_tensor *const *noise);
/* img (N, img_channels, R, R), c (N, c_dim) or NULL -> logits (N, 1). */
GANTLDEF gantl_tensor *gantl_discriminator_forward(gantl_ctx *ctx, gantl_discriminator *D, gantl_tensor *img,
                                                   gantl_tensor *c);

/* Checkpoints: tensors named prefix + official name ("G.", "G_ema.", "D."). Loading
   checks that every tensor exists with the right shape and a float dtype, and that the
   file has no other tensor under the prefix. */
GANTLDEF gantl_status gantl_generator_load(gantl_generator *G, const gantl_st_file *f, const char *prefix);
GANTLDEF gantl_status gantl_discriminator_load(gantl_discriminator *D, const gantl_st_file *f, const char *prefix);
GANTLDEF gantl_status gantl_generator_write(const gantl_generator *G, gantl_st_writer *w, const char *prefix);
GANTLDEF gantl_status gantl_discriminator_write(const gantl_discriminator *D, gantl_st_writer *w, const char *prefix);
/* Builds a network from a checkpoint: config from the "gantl.G" / "gantl.D" metadata,
   then the tensors under prefix. */
GANTLDEF gantl_status gantl_generator_from_file(gantl_generator *G, const gantl_st_file *f, const char *prefix);
GANTLDEF gantl_status gantl_discriminator_from_file(gantl_discriminator *D, const gantl_st_file *f, const char *prefix);

/* Building blocks, as the official ops. */
GANTLDEF gantl_tensor *gantl_normalize_2nd_moment(gantl_ctx *ctx, gantl_tensor *x);
/* The official conv2d_resample with groups 1: up or down by 2 with the FIR filter f. */
GANTLDEF gantl_tensor *gantl_conv2d_resample(gantl_ctx *ctx, gantl_tensor *x, gantl_tensor *w, gantl_tensor *f,
                                             int up, int down, int padding);
GANTLDEF gantl_tensor *gantl_upsample2d(gantl_ctx *ctx, gantl_tensor *x, gantl_tensor *f, int up);
GANTLDEF gantl_tensor *gantl_downsample2d(gantl_ctx *ctx, gantl_tensor *x, gantl_tensor *f, int down);
GANTLDEF gantl_tensor *gantl_minibatch_std(gantl_ctx *ctx, gantl_tensor *x, int group_size, int num_channels);

/* ---------------------------------------------------------------------------------------
   11. ADA augmentation
   The official AugmentPipe (training/augment.py) with the 'bgc' preset and the adaptive p
   heuristic (training/training_loop.py), in float32 like the official. Per sample and op,
   an op fires with probability op_mult * p (the rotation is split in two, each with
   p_rot = 1 - sqrt(1 - p)). The geometric ops compose into one inverse 3x3 matrix per
   sample, executed as one reflect padding for the batch, 2x upsampling with the sym6
   wavelet, bilinear grid_sample, 2x downsampling and a crop; the colour ops compose into
   one 4x4 matrix per sample (grey images: the official 1-channel rule, no hue or
   saturation). The result is differentiable in the images to any order (R1 through it).
   As officially, a stage runs whenever one of its ops has op_mult > 0, even at p = 0: the
   geometric stage is then a near-identity low-pass, not the identity. To train without
   augmentation (official --aug=noaug), do not call gantl_augment_apply at all.
   ------------------------------------------------------------------------------------- */

/* The 12 ops, in the official order (the order of op_mult). */
typedef enum gantl_aug_op {
    GANTL_AUG_XFLIP = 0, GANTL_AUG_ROTATE90, GANTL_AUG_XINT, GANTL_AUG_SCALE, GANTL_AUG_ROTATE, GANTL_AUG_ANISO,
    GANTL_AUG_XFRAC, GANTL_AUG_BRIGHTNESS, GANTL_AUG_CONTRAST, GANTL_AUG_LUMAFLIP, GANTL_AUG_HUE,
    GANTL_AUG_SATURATION, GANTL_AUG_NUM_OPS
} gantl_aug_op;

/* The 13 random steps, in the official draw order: rotate draws twice, before (pre) and
   after (post) the anisotropic scaling. */
typedef enum gantl_aug_step {
    GANTL_AUG_STEP_XFLIP = 0, GANTL_AUG_STEP_ROTATE90, GANTL_AUG_STEP_XINT, GANTL_AUG_STEP_SCALE,
    GANTL_AUG_STEP_ROTATE_PRE, GANTL_AUG_STEP_ANISO, GANTL_AUG_STEP_ROTATE_POST, GANTL_AUG_STEP_XFRAC,
    GANTL_AUG_STEP_BRIGHTNESS, GANTL_AUG_STEP_CONTRAST, GANTL_AUG_STEP_LUMAFLIP, GANTL_AUG_STEP_HUE,
    GANTL_AUG_STEP_SATURATION, GANTL_AUG_NUM_STEPS
} gantl_aug_step;

GANTLDEF const char *gantl_aug_op_name(int op);     /* "xflip", ..., "saturation" */
GANTLDEF const char *gantl_aug_step_name(int step); /* as the ops, with "rotate_pre", "rotate_post" */
GANTLDEF int gantl_aug_step_op(int step);           /* the gantl_aug_op a step belongs to */
GANTLDEF int gantl_aug_step_width(int step);        /* values per sample: 2 (x, y) for xint and xfrac, else 1 */

typedef struct gantl_augment {
    float p;                            /* current probability (the official float32 buffer) */
    float op_mult[GANTL_AUG_NUM_OPS];   /* probability multipliers; 'bgc' = all 1, 0 disables an op */
    /* distribution parameters (official defaults) */
    float xint_max;                     /* 0.125: integer translation, fraction of the size */
    float scale_std;                    /* 0.2: log2 std of isotropic scaling */
    float rotate_max;                   /* 1: rotation range, fraction of pi */
    float aniso_std;                    /* 0.2: log2 std of anisotropic scaling */
    float xfrac_std;                    /* 0.125: fractional translation std, fraction of the size */
    float brightness_std;               /* 0.2 */
    float contrast_std;                 /* 0.5: log2 std */
    float hue_max;                      /* 1: hue rotation range, fraction of pi */
    float saturation_std;               /* 1: log2 std */
    /* adaptive p */
    double ada_target;                  /* 0.6; < 0: fixed p (double: the official compares the
                                           float64 sign mean with the Python float 0.6) */
    int ada_interval;                   /* 4: iterations between updates */
    float ada_kimg;                     /* 500 (100 when resuming, set by the caller) */
    double sign_sum;                    /* sum of sign(D(aug(real))) since the last update */
    int64_t sign_count;                 /* number of logits in sign_sum */
} gantl_augment;

/* 'bgc' with the official constants, ada_interval 4 and empty statistics. */
GANTLDEF void gantl_augment_init(gantl_augment *a, float p, double ada_target, float ada_kimg);

/* Every random number of one batch, as tools/ada_ref.py's draw() returns them. For step k,
   raw[k] is the value sample (uniform [0, 1) for xflip, rotate90, xint, rotate_*, lumaflip,
   hue; standard normal for the others), gate[k] the gating uniform, mask[k] 1 where
   gate < threshold (op_mult * p; p_rot for the rotations) else 0, and value[k] the op's
   parameter after gating (neutral where mask is 0): flip / quarter-turn / lumaflip counts,
   translations as fractions of the size, scales, angles in radians, brightness offset.
   raw and value hold gantl_aug_step_width(k) floats per sample (x, y interleaved). Steps not
   drawn (op disabled, or hue / saturation of grey images) hold raw 0, gate 1, mask 0 and
   the neutral value. The arrays live in the ctx arena given to the allocating call. */
typedef struct gantl_augment_draws {
    int64_t batch;
    int channels;
    float *raw[GANTL_AUG_NUM_STEPS];   /* (batch, width) */
    float *gate[GANTL_AUG_NUM_STEPS];  /* (batch) */
    float *mask[GANTL_AUG_NUM_STEPS];  /* (batch) */
    float *value[GANTL_AUG_NUM_STEPS]; /* (batch, width) */
} gantl_augment_draws;

/* Allocates d's arrays in ctx, every step not drawn. */
GANTLDEF gantl_status gantl_augment_draws_alloc(gantl_ctx *ctx, int64_t batch, int channels, gantl_augment_draws *d);
/* Sets mask and value from raw and gate (with a's p, multipliers and constants), and resets
   the steps that a does not draw; used by gantl_augment_draw, and to replay given samples. */
GANTLDEF void gantl_augment_gate(const gantl_augment *a, gantl_augment_draws *d);
/* Draws one batch from a random source (gantl_random_philox(&rng) for a gantl_rng): for
   each drawn step its raw samples, then its gate samples, in the official order (so the
   numbers per step are those of the official pipeline given the same uniform / normal
   streams). */
GANTLDEF gantl_status gantl_augment_draw(gantl_ctx *ctx, const gantl_augment *a, gantl_random *random, int64_t batch,
                                         int channels, gantl_augment_draws *d);
/* Augments images (N, C, H, W) in [-1, 1] (C = 1 or 3 when the colour stage runs) with the
   given draws; a's op_mult decides which ops and stages run. Differentiable in images. */
GANTLDEF gantl_tensor *gantl_augment_apply_draws(gantl_ctx *ctx, const gantl_augment *a, gantl_tensor *images,
                                                 const gantl_augment_draws *d);
/* Draw + apply. Returns images itself (no copy, no draws) when no stage runs, i.e. every
   op_mult is 0 (or, for grey images, only hue / saturation are enabled). */
GANTLDEF gantl_tensor *gantl_augment_apply(gantl_ctx *ctx, const gantl_augment *a, gantl_tensor *images,
                                           gantl_rng *rng);
/* Adds sign(real_logits) to the statistics (every element; sign(0) = 0). Call for every
   batch of D logits on augmented reals (the Dmain and, on R1 iterations, the Dreg pass). */
GANTLDEF void gantl_augment_accumulate(gantl_augment *a, const gantl_tensor *real_logits);
/* Call after every ada_interval-th iteration: p = max(p + sign(mean - ada_target) *
   batch_size * ada_interval / (ada_kimg * 1000), 0) in the official float32 arithmetic
   (batch_size: the total batch), then resets the statistics. Nothing changes without
   statistics; fixed p (ada_target < 0) only resets them. */
GANTLDEF void gantl_augment_update(gantl_augment *a, int64_t batch_size);

/* ---------------------------------------------------------------------------------------
   12. Training
   ------------------------------------------------------------------------------------- */

/* The official training loop (training/training_loop.py, training/loss.py): phases Gmain,
   Greg, Dmain, Dreg with lazy regularisation, the non-saturating logistic loss, R1 on
   the reals before augmentation, path-length regularisation, style mixing, the G EMA,
   nan_to_num on gradients, gradient accumulation over rounds of batch_gpu images.

   Data parallelism (gantl_trainer_set_comm with a gantl_comm of K ranks): each rank holds a
   replica and takes batch_size / K images of every iteration: its rows i * K + rank of
   the global batch, in rounds of batch_gpu (capped at batch_size / K). Each phase
   all-reduces its gradients (one collective over the flat buffer; the mean over the ranks
   of per-rank means is the full batch's mean, as the official code), before nan_to_num and
   the Adam step; the ADA sign statistics, the path-length mean and the mapping's w_avg are
   reduced too, so that the replicas stay bit-identical. Every per-image random draw (z,
   noise, style mixing z, path-length noise, augmentation) is the full batch's draw, of
   which a rank keeps its rows, and the shared ones (the style mixing cutoff) are drawn by
   every rank alike: the random stream advances exactly as in one process. The rows are
   strided so that minibatch-std groups (when mbstd_group_size <= batch_gpu) and the path
   length's sub-batch (when pl_batch_shrink divides batch_gpu) are the same images as in
   one process with batch_gpu * K: K ranks then compute one process's iteration, up to the
   order of float sums. */

typedef struct gantl_train_config {
    int batch_size;          /* images per iteration */
    int batch_gpu;           /* images per forward pass (0: batch_size); rounds accumulate
                                gradients as the official code does: the sum of per-round means */
    double lr_g, lr_d;       /* Adam learning rates (0.0025) */
    double beta1, beta2;     /* 0, 0.99 */
    double eps;              /* 1e-8 */
    float r1_gamma;          /* R1 weight gamma (loss = gamma / 2 * penalty) */
    float pl_weight;         /* path-length weight (2; 0: off) */
    float pl_decay;          /* 0.01 */
    int pl_batch_shrink;     /* 2 */
    float style_mixing_prob; /* 0.9 */
    int g_reg_interval;      /* 4; 0: no lazy regularisation (one Gboth phase) */
    int d_reg_interval;      /* 16; 0: Dboth */
    float ema_kimg;          /* half-life of the generator EMA in thousands of images */
    float ema_rampup;        /* 0.05; < 0: none */
    double total_kimg;       /* length of a run */
    int augment;             /* 1: ADA 'bgc' augmentation of everything D sees; 0: none */
    float augment_p;         /* initial augmentation probability */
    float ada_target;        /* 0.6; < 0: fixed p */
    int ada_interval;        /* 4 */
    float ada_kimg;          /* 500; 100 when fine-tuning from a checkpoint */
} gantl_train_config;

GANTLDEF void gantl_train_config_default(gantl_train_config *cfg);
/* The official configurations 'cifar', 'paper256', 'auto' (for one GPU), and 'small', a
   configuration that trains usefully on two CPU cores (32x32, narrow networks). They set
   the network configs for the dataset's resolution, channels and labels. batch_gpu is
   train.py's mb // ref_gpus: 32 for cifar (2 reference GPUs), 8 for paper256 (8), 0 (the
   whole batch) for auto and small; whoever changes batch_size sets batch_gpu too (train.py's
   --batch: batch_gpu = batch // gpus). */
GANTLDEF gantl_status gantl_train_preset(const char *name, int resolution, int img_channels, int c_dim,
                                         gantl_g_config *g, gantl_d_config *d, gantl_train_config *cfg);
GANTLDEF int gantl_train_config_to_json(const gantl_train_config *cfg, char *buf, size_t size);
GANTLDEF gantl_status gantl_train_config_from_json(gantl_train_config *cfg, const char *json);

/* What one iteration measured (NaN for a phase that did not run). */
typedef struct gantl_train_stats {
    double loss_g, loss_d;         /* mean softplus losses of Gmain and Dmain */
    double loss_pl, pl_penalty;    /* Greg */
    double loss_r1, r1_penalty;    /* Dreg */
    double score_real, score_fake; /* mean D logits */
    double sign_real;              /* mean sign(D(real)) */
    double pl_mean;
    double augment_p;
} gantl_train_stats;

typedef struct gantl_trainer {
    gantl_train_config cfg;
    gantl_generator G, G_ema;
    gantl_discriminator D;
    gantl_adam opt_g, opt_d;
    gantl_rng rng;       /* the training randomness */
    gantl_random random; /* what the trainer draws from: Philox on rng unless replaced (tests) */
    float pl_mean;
    gantl_augment augment; /* p and the ADA statistics (used when cfg.augment) */
    int64_t cur_nimg, batch_idx;
    gantl_ctx *ctx;
    /* Called when a phase's gradients are final (after the all-reduce and nan_to_num),
       before its Adam step; phase is "Gmain", "Greg", "Gboth", "Dmain", "Dreg" or "Dboth".
       For tests and logs. */
    void (*phase_hook)(void *user, const char *phase, const gantl_params *params);
    void *phase_hook_user;
    gantl_comm comm; /* the ranks (gantl_trainer_set_comm); one process by default */
    int32_t device;  /* gantl_device of the networks, optimizer state and ctx (gantl_trainer_to_device) */
} gantl_trainer;

/* Builds G, D (initialised from seed), G_ema = G, the optimizers with the lazy
   regularisation adjustment (lr * r, beta ^ r, r = I / (I + 1)). */
GANTLDEF gantl_status gantl_trainer_init(gantl_trainer *t, const gantl_g_config *g, const gantl_d_config *d,
                                         const gantl_train_config *cfg, uint64_t seed);
GANTLDEF void gantl_trainer_free(gantl_trainer *t);
/* Fine-tuning from a pretrained checkpoint: copies G, D and G_ema by name (what the file
   lacks of G_ema comes from G). The networks must have the checkpoint's configs. */
GANTLDEF gantl_status gantl_trainer_load_networks(gantl_trainer *t, const gantl_st_file *f);
/* Training on a device (GANTL_CUDA: call gantl_cuda_init first): moves the parameters and
   buffers of G, D and G_ema and both optimizers' state there, and makes the per-step context
   a context on the device, so that every op, backward, Adam and EMA update of
   gantl_trainer_step runs there; GANTL_CPU moves it all back. Call it after
   gantl_trainer_init, gantl_trainer_load_networks or gantl_trainer_from_snapshot and
   before gantl_trainer_set_comm. gantl_trainer_step still takes host arrays (copied in each
   round); the values the trainer reads on the host (losses, logits' signs for ADA, the path
   length mean, w_avg) are read after gantl_device_synchronize. The random stream is drawn
   on the host, so a device run draws the same numbers as a CPU run; results differ by float
   rounding (cuBLAS against gantl's SGEMM, sums in other orders). gantl_trainer_write and
   the other host access to the state work unchanged (device memory is host-addressable).
   On failure (no backend, out of device memory) everything is moved back where it was. */
GANTLDEF gantl_status gantl_trainer_to_device(gantl_trainer *t, gantl_device device);
/* The number of phases whose z an iteration draws (4 with lazy regularisation, else 2). */
GANTLDEF int gantl_trainer_num_phases(const gantl_trainer *t);
/* Makes t rank comm->rank of comm->size replicas (on every rank, after gantl_trainer_init,
   gantl_trainer_load_networks or gantl_trainer_from_snapshot, before the first step):
   checks that the batch splits (batch_size a multiple of size * batch_gpu, the
   minibatch-std group and the path length fitting a rank's rounds), then copies rank 0's
   whole state to the others: networks, optimizers, pl_mean, augmentation, progress and the
   random state. The comm is not copied: it must outlive t. GANTL_ERR_INVALID, or
   GANTL_ERR_COMM from the transport. */
GANTLDEF gantl_status gantl_trainer_set_comm(gantl_trainer *t, const gantl_comm *comm);
/* Images of an iteration on this rank: batch_size / comm.size. */
GANTLDEF int64_t gantl_trainer_local_batch(const gantl_trainer *t);
/* Whether the replicas are identical: a checksum of this rank's training state (networks,
   optimizers, pl_mean, augmentation, progress, random state) against rank 0's. GANTL_OK,
   or GANTL_ERR_COMM naming how many ranks differ. Cheap next to an iteration (one pass
   over the state, three small collectives); for snapshots and tests. */
GANTLDEF gantl_status gantl_trainer_check_replicas(gantl_trainer *t);
/* One iteration. reals (n, C, R, R) in [-1, 1]; real_c (n, c_dim) and gen_c (num_phases * n,
   c_dim) one-hot labels, or NULL without labels; n = gantl_trainer_local_batch(t), the
   batch_size in one process. With K ranks these are this rank's rows: real row i is row
   i * K + rank of the global batch, gen_c row p * n + i is row p * batch_size + i * K + rank
   of the global labels. */
GANTLDEF gantl_status gantl_trainer_step(gantl_trainer *t, const float *reals, const float *real_c, const float *gen_c,
                                         gantl_train_stats *stats);
/* A snapshot: G., D., G_ema. networks, the optimizer moments, pl_mean, augmentation state,
   progress and random state, with "gantl.G", "gantl.D" and "gantl.train" metadata. */
GANTLDEF gantl_status gantl_trainer_write(const gantl_trainer *t, gantl_st_writer *w);
/* Continues a run exactly from a snapshot written by gantl_trainer_write. */
GANTLDEF gantl_status gantl_trainer_from_snapshot(gantl_trainer *t, const gantl_st_file *f);

/* ---------------------------------------------------------------------------------------
   13. Datasets
   Training images in memory as uint8 (count, C, R, R), CHW like the official
   dataset_tool.py output, R a power of two, plus optional integer class labels.

   Specs for gantl_dataset_load:
     "path/to/folder"   every image in it, recursively (names starting with '.' skipped),
                        sorted by relative path ('/'-separated, byte order: as Python's
                        sorted() in the official ImageFolderDataset). Images are the files
                        ending in .png .jpg .jpeg .bmp .gif .tga .psd .pic .ppm .pgm .pnm
                        .hdr (any case); .tif/.tiff/.webp are an error (stb cannot read
                        them); other files are ignored. Labels from <folder>/dataset.json in
                        the official format {"labels": [["sub/name.png", 3], ...]} (or
                        "labels": null); every image then needs one.
     "images.npy"       uint8 images (N, C, H, W) if axis 1 is 1 or 3, else (N, H, W, C) if
                        axis 3 is; (N, H, W) is one channel. Float images (float16/32/64)
                        in [-1, 1] become uint8 as the official generate.py rounds them:
                        clamp(x * 127.5 + 128, 0, 255) truncated (float32 arithmetic, NaN to
                        0). Labels from a sibling "images.labels.npy": integers (N,).
     "x-images-idx3-ubyte[.gz]"  an IDX file as MNIST's (magic 0x803, (N, H, W) uint8),
                        gzipped or not; labels from the sibling with "images-idx3" replaced
                        by "labels-idx1" (magic 0x801, (N,)) when it exists.
     "fashion-mnist[:CLASSES][@train|@test]"  Debian's dataset-fashion-mnist files under
                        GANTL_FASHION_MNIST_DIR (default /usr/share/datasets/fashion-mnist),
                        @train (60000, the default) or @test (10000). CLASSES is a comma list
                        of names (tshirt/t-shirt/top, trouser, pullover, dress, coat, sandal,
                        shirt, sneaker, bag, ankle-boot/boot; any case) or indices 0-9; only
                        those images are kept, in file order, and labels are re-indexed
                        0..k-1 in the order the classes are given (num_classes = k). Without
                        CLASSES, all 10 with their original labels. A folder named so must be
                        written "./fashion-mnist".
   num_classes is the largest label + 1 over all images of the source (before max_images).
   ds->name is "<source> res=R ch=C", plus " max=N seed=S" when a subset was taken; the
   source is the path as given (trailing '/' removed) or the canonical fashion-mnist spec
   ("fashion-mnist:bag,sandal@train"; all ten classes in order: "fashion-mnist@train").

   Geometry. resolution 0 keeps the native size: every image must have the size of the
   first (else an error naming the first that differs), and if that is not a square power
   of two, images are padded to the next power of two of their larger side, centred (the
   odd pixel to the right / bottom), with background 0 (so Fashion-MNIST's 28x28 become
   32x32 with 2 pixels each side). A resolution R > 0 is taken per image: one whose padded
   size would be R is padded the same way (so R 32 changes nothing for Fashion-MNIST), any
   other is centre-cropped to a square (as dataset_tool's center-crop) and resized to R with
   stb_image_resize's box filter (area averaging when shrinking).

   Channels. 0 keeps the native count, which must be 1 (grey) or 3 (RGB) and the same for
   all images; 1 or 3 converts: grey is replicated to RGB, RGB becomes grey by ITU-R 601
   luma exactly as PIL's convert('L') ((19595 R + 38470 G + 7471 B + 32768) >> 16), and an
   alpha channel (grey+alpha, RGBA) is dropped, as PIL's convert('RGB').

   max_images N > 0 keeps a random subset as the official dataset's max_size does:
   numpy.random.RandomState(seed).shuffle(arange(count)), the first N, sorted; so the
   subset is the official one for the same file order and seed (seed < 2^32).

   stb. gantl.h needs no other file, but decoding images and inflating .gz use stb_image,
   and resizing uses stb_image_resize. Include them before the implementation:
       #include <stb/stb_image.h>          (with STB_IMAGE_IMPLEMENTATION in one file)
       #include <stb/stb_image_resize.h>   (optional; STB_IMAGE_RESIZE_IMPLEMENTATION)
       #define GANTL_IMPLEMENTATION
       #include "gantl.h"
   Without stb_image, folders and .gz files fail with GANTL_ERR_UNSUPPORTED (.npy and
   uncompressed IDX still load); without stb_image_resize, a resolution that needs
   resizing does. A gzip file is checked against its CRC-32 and length (one member).
   ------------------------------------------------------------------------------------- */

typedef struct gantl_dataset {
    int64_t count;            /* images */
    int channels, resolution; /* every image is (channels, resolution, resolution) */
    unsigned char *images;    /* (count, channels, resolution, resolution) uint8, CHW */
    int num_classes;          /* 0: unlabelled */
    int32_t *labels;          /* (count,) class index per image, or NULL */
    char name[256];           /* canonical "<source> res=R ch=C[ max=N seed=S]", e.g. for
                                 caching feature statistics */
} gantl_dataset;

typedef struct gantl_dataset_options {
    int resolution;     /* 0: native (padded to a power of two); else a power of two */
    int64_t max_images; /* 0: all; else a seeded random subset of at most this many */
    uint64_t seed;      /* for the subset */
    int channels;       /* 0: native; 1 or 3 to convert */
} gantl_dataset_options;

GANTLDEF void gantl_dataset_options_default(gantl_dataset_options *o);
/* Loads spec into ds (o NULL: defaults). On error ds is empty and the message names the
   file (and image) at fault. */
GANTLDEF gantl_status gantl_dataset_load(gantl_dataset *ds, const char *spec, const gantl_dataset_options *o);
GANTLDEF void gantl_dataset_free(gantl_dataset *ds);
/* Real images for a training batch: out (n, C, R, R) = images[indices] / 127.5 - 1 (float32,
   as the official training loop), mirrored left-right where flip[i] != 0 (flip may be
   NULL); labels_onehot (n, num_classes) one-hot rows, or NULL (nothing is written when the
   dataset is unlabelled). */
GANTLDEF void gantl_dataset_batch(const gantl_dataset *ds, const int64_t *indices, const unsigned char *flip, int64_t n,
                                  float *out, float *labels_onehot);

/* An endless shuffled stream of image indices. Each epoch is a fresh permutation of the
   items, drawn from (seed, epoch) by Philox, so the stream is exactly resumable from three
   integers. With mirror, the items are the images and their x-flipped copies (2 * count per
   epoch), as the official --mirror, which doubles the dataset. (The official
   InfiniteSampler shuffles once and then swaps within a sliding window; the statistics are
   the same, the exact order is not.)
   Resuming: save seed, epoch and position; later call gantl_sampler_init with the same
   count, mirror and seed, then set s.epoch and s.position to the saved values. */
typedef struct gantl_sampler {
    int64_t count;    /* images in the dataset */
    int mirror;       /* 1: each epoch also yields every image flipped */
    uint64_t seed;
    int64_t epoch;    /* state: passes completed over the items */
    int64_t position; /* state: items of this epoch already returned */
    /* private */
    int64_t *order;      /* (count * (1 + mirror),) the permutation of order_epoch */
    int64_t order_epoch; /* -1: none yet */
} gantl_sampler;

GANTLDEF gantl_status gantl_sampler_init(gantl_sampler *s, int64_t count, int mirror, uint64_t seed);
/* The next n items: indices (n,) in [0, count); flip (n,) 0/1 x-flip decisions (all 0
   without mirror), or NULL. */
GANTLDEF void gantl_sampler_next(gantl_sampler *s, int64_t n, int64_t *indices, unsigned char *flip);
GANTLDEF void gantl_sampler_free(gantl_sampler *s);

/* ---------------------------------------------------------------------------------------
   14. Feature extractors
   Networks that map images to the features the metrics compare: a small Fashion-MNIST
   classifier shipped with gantl (also used to count covered modes), and pytorch-fid's
   Inception-v3 for FID comparable with published numbers.
   ------------------------------------------------------------------------------------- */

/* A small CNN classifier for 32x32 images (Fashion-MNIST padded to 32), trained by gantl
   (tools/train_fmnist_classifier.c) and shipped as models/fmnist_cnn.safetensors: its
   256-d penultimate features serve FID / KID / precision / recall on such data, its
   predictions count covered modes. Six 3x3 convolutions (32, 32/2, 64, 64/2, 128, 128/2
   channels, '/2' stride 2) with ReLU, a 2048 -> 256 layer with ReLU (the features) and a
   256 -> classes layer. */
#define GANTL_CLASSIFIER_FEATURES 256
typedef struct gantl_classifier {
    int channels, resolution, num_classes;
    gantl_params params;
    gantl_tensor *conv_w[6], *conv_b[6], *fc_w, *fc_b, *out_w, *out_b;
    double test_accuracy; /* as measured when it was trained (from the file's metadata) */
} gantl_classifier;
/* He-initialised from seed; resolution must be 32. */
GANTLDEF gantl_status gantl_classifier_init(gantl_classifier *c, int channels, int num_classes, uint64_t seed);
GANTLDEF void gantl_classifier_free(gantl_classifier *c);
GANTLDEF gantl_status gantl_classifier_load(gantl_classifier *c, const char *path);
GANTLDEF gantl_status gantl_classifier_save(const gantl_classifier *c, const char *path, double test_accuracy);
/* x (N, C, 32, 32) in [-1, 1] -> logits (N, classes); *features (N, 256) if features. */
GANTLDEF gantl_tensor *gantl_classifier_forward(gantl_ctx *ctx, gantl_classifier *c, gantl_tensor *x,
                                                gantl_tensor **features);
/* Mean cross-entropy of logits (N, K) against integer labels (N,). */
GANTLDEF gantl_tensor *gantl_cross_entropy(gantl_ctx *ctx, gantl_tensor *logits, const int32_t *labels);
/* Batched inference: images (n, C, H, W) in [-1, 1], H = W <= 32 (smaller ones are padded with
   -1, the background, like Fashion-MNIST's 28 -> 32) -> features (n, 256) and/or predicted
   classes (n,); either may be NULL. */
GANTLDEF gantl_status gantl_classifier_run(gantl_classifier *c, const float *images, int64_t n, int height, int width,
                                           float *features, int32_t *predictions);
/* How many classes get at least min_count of the n predictions (the paper's mode coverage:
   of 10k samples, the classes with at least 10). */
GANTLDEF int gantl_mode_coverage(const int32_t *predictions, int64_t n, int num_classes, int64_t min_count);

/* ---- FID Inception-v3 ----
   Inception-v3 in the form FID uses: pytorch-fid's InceptionV3 (torchvision's Inception3
   with the TensorFlow FID graph's block variants FIDInceptionA/C/E_1/E_2, weights
   pt_inception-2015-12-05-6726825d.pth), forward only, up to the 2048-d pool3 features.
   Each BasicConv2d (conv without bias, BatchNorm eps 1e-3 in eval mode, ReLU) is stored
   with the BatchNorm folded in: weight * gamma / sqrt(var + eps), bias beta - mean * that.

   Getting the weights: the file is not shipped (about 91 MB). Download it once from the
   pytorch-fid release, then convert it (needs python3-torch):
       python3 tools/convert_inception.py pt_inception-2015-12-05-6726825d.pth inception.safetensors
   The safetensors file keeps torchvision's names (Conv2d_1a_3x3.conv.weight,
   Mixed_5b.branch1x1.bn.running_mean, ...).

   Input convention: gantl images are float in [-1, 1]; an 8-bit image maps as x / 127.5 - 1
   (the dataset loader's mapping), which is 2u - 1 for pytorch-fid's u = x / 255 in [0, 1].
   pytorch-fid resizes u to 299 x 299 (bilinear, align_corners=False, no antialiasing) and
   then takes 2u - 1; gantl resizes the [-1, 1] image directly. Bilinear weights sum to one,
   so both give the same network input up to float rounding (about 1e-7), and the features
   match pytorch-fid's given the same underlying image. Images already 299 x 299 are used
   as they are (as torch's interpolate does). Grey images (C = 1) are replicated to RGB,
   as pytorch-fid's loader (PIL convert('RGB')) does. */
#define GANTL_INCEPTION_CONVS 94      /* BasicConv2d layers */
#define GANTL_INCEPTION_SIZE 299      /* network input resolution */
#define GANTL_INCEPTION_FEATURES 2048 /* pool3 */

typedef struct gantl_inception_conv {
    char name[32]; /* module path, e.g. "Mixed_5b.branch5x5_2" */
    int in_channels, out_channels, kh, kw, stride, pad_h, pad_w;
    float *weight; /* (out, in * kh * kw), BatchNorm scale folded in */
    float *bias;   /* (out,) the BatchNorm shift */
} gantl_inception_conv;

typedef struct gantl_inception {
    gantl_inception_conv conv[GANTL_INCEPTION_CONVS]; /* in the order the forward runs them */
    float *params;  /* one block with every weight and bias */
    int64_t numel;  /* floats in params */
    int batch;      /* images per pass of one thread (default 4); may be changed between
                       calls. Each thread keeps about 9.4 MB per image of its batch plus
                       about 30 MB of workspace */
    /* private: per-thread workspaces kept between calls */
    void *ws_;
    int ws_count_;
} gantl_inception;

/* Loads weights converted by tools/convert_inception.py. A missing tensor or one of the
   wrong shape fails with GANTL_ERR_INVALID and a message naming it. Tensors other than the
   94 layers' conv.weight and bn.{weight,bias,running_mean,running_var} are refused, except
   fc.* (the unused classifier) and *.num_batches_tracked; AuxLogits.* (torchvision's
   ImageNet weights, not the FID ones) gets its own message, and so does a BatchNorm whose
   statistics are not finite or whose variance + eps is not positive. */
GANTLDEF gantl_status gantl_inception_load(gantl_inception *net, const char *path);
/* The same from an open safetensors file. */
GANTLDEF gantl_status gantl_inception_from_file(gantl_inception *net, const gantl_st_file *f);
GANTLDEF void gantl_inception_free(gantl_inception *net);
/* images (n, channels, height, width) float32 in [-1, 1], channels 1 (grey, replicated to
   RGB) or 3, any height and width (resized to 299 x 299 as above) -> features (n, 2048),
   the pool3 activations pytorch-fid's InceptionV3 returns. With n > 1, every OpenMP
   thread takes passes of up to net->batch images of its own; a single image uses all the
   threads inside each layer. The features of an image do not depend on n, net->batch or
   the thread count (bit for bit). Workspaces are kept in net between calls, so one net
   serves one caller at a time. GANTL_ERR_INVALID for channels other than 1 or 3 (drop an
   alpha channel first) or an empty image size, GANTL_ERR_NOMEM if a workspace cannot be
   had. */
GANTLDEF gantl_status gantl_inception_features(gantl_inception *net, const float *images, int64_t n, int channels,
                                               int height, int width, float *features);

#ifdef __cplusplus
}
#endif
#endif /* GANTL_H */

/* =======================================================================================
   IMPLEMENTATION
   ===================================================================================== */
#ifdef GANTL_IMPLEMENTATION
#ifndef GANTL__IMPLEMENTED
#define GANTL__IMPLEMENTED

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef GANTL_MPI
/* the C API only: no MPI C++ bindings (their headers warn under -Wextra) */
#ifndef OMPI_SKIP_MPICXX
#define OMPI_SKIP_MPICXX 1
#endif
#ifndef MPICH_SKIP_MPICXX
#define MPICH_SKIP_MPICXX 1
#endif
#include <mpi.h>
#endif

#if defined(_OPENMP) && !defined(GANTL_NO_OPENMP)
#include <omp.h>
#define GANTL__PRAGMA(x) _Pragma(#x)
#define GANTL__OMP(directive) GANTL__PRAGMA(omp directive)
#else
#define GANTL__OMP(directive)
#endif

#if defined(GANTL_MALLOC) && defined(GANTL_REALLOC) && defined(GANTL_FREE)
/* all three given */
#elif !defined(GANTL_MALLOC) && !defined(GANTL_REALLOC) && !defined(GANTL_FREE)
#define GANTL_MALLOC(sz) malloc(sz)
#define GANTL_REALLOC(p, sz) realloc(p, sz)
#define GANTL_FREE(p) free(p)
#else
#error "gantl: define all of GANTL_MALLOC, GANTL_REALLOC and GANTL_FREE, or none"
#endif

#ifndef GANTL_ABORT
#define GANTL_ABORT() abort()
#endif

#if defined(__cplusplus) && __cplusplus >= 201103L
#define GANTL__TLS thread_local
#elif defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L
#define GANTL__TLS _Thread_local
#elif defined(__GNUC__)
#define GANTL__TLS __thread
#elif defined(_MSC_VER)
#define GANTL__TLS __declspec(thread)
#else
#define GANTL__TLS
#endif

/* Pointers that alias nothing else in their scope: lets -O2 vectorise the loop without
   runtime overlap checks (which its cheap cost model refuses). */
#if defined(__GNUC__) || defined(_MSC_VER)
#define GANTL__RESTRICT __restrict
#else
#define GANTL__RESTRICT
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------------------------------
   1. Basics
   ------------------------------------------------------------------------------------- */

static GANTL__TLS char gantl__error_message[1024];

GANTLDEF const char *gantl_status_name(gantl_status status) {
    switch (status) {
    case GANTL_OK: return "ok";
    case GANTL_ERR_NOMEM: return "out of memory";
    case GANTL_ERR_IO: return "i/o error";
    case GANTL_ERR_FORMAT: return "bad format";
    case GANTL_ERR_INVALID: return "invalid input";
    case GANTL_ERR_UNSUPPORTED: return "unsupported";
    case GANTL_ERR_DEVICE: return "device error";
    case GANTL_ERR_COMM: return "communication error";
    }
    return "unknown status";
}

GANTLDEF const char *gantl_last_error(void) { return gantl__error_message; }

/* Records a message for gantl_last_error() and returns status, so callers can write
   `return gantl__fail(GANTL_ERR_IO, "cannot open %s", path);`. */
static gantl_status gantl__fail(gantl_status status, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(gantl__error_message, sizeof gantl__error_message, fmt, ap);
    va_end(ap);
    return status;
}

/* Programmer errors: print what went wrong, then stop. */
static void gantl__die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("gantl: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    fflush(stderr);
    GANTL_ABORT();
}

#define GANTL__CHECK(cond, ...)                                                                \
    do {                                                                                       \
        if (!(cond)) gantl__die(__VA_ARGS__);                                                  \
    } while (0)

GANTLDEF int gantl_num_threads(void) {
#if defined(_OPENMP) && !defined(GANTL_NO_OPENMP)
    return omp_get_max_threads();
#else
    return 1;
#endif
}

/* Threads worth forking for `work` units: 1 inside a parallel region (nested regions are
   off) or when the work is too small to pay for a fork. */
static int gantl__threads_for(double work, double per_thread_min) {
#if defined(_OPENMP) && !defined(GANTL_NO_OPENMP)
    if (omp_in_parallel()) return 1;
    int t = omp_get_max_threads();
    while (t > 1 && work < per_thread_min * t) t--;
    return t;
#else
    (void)work, (void)per_thread_min;
    return 1;
#endif
}

static char *gantl__strdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = (char *)GANTL_MALLOC(n);
    if (d) memcpy(d, s, n);
    return d;
}

/* ---------------------------------------------------------------------------------------
   2. Random numbers
   ------------------------------------------------------------------------------------- */

/* One Philox4x32-10 block: 4 random words from a 128-bit counter and a 64-bit key. */
static void gantl__philox(uint32_t out[4], uint64_t counter, uint64_t key) {
    uint32_t c0 = (uint32_t)counter, c1 = (uint32_t)(counter >> 32), c2 = 0, c3 = 0;
    uint32_t k0 = (uint32_t)key, k1 = (uint32_t)(key >> 32);
    for (int round = 0; round < 10; round++) {
        uint64_t p0 = (uint64_t)0xD2511F53u * c0, p1 = (uint64_t)0xCD9E8D57u * c2;
        uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0, n2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1;
        c1 = (uint32_t)p1;
        c3 = (uint32_t)p0;
        c0 = n0;
        c2 = n2;
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
    out[0] = c0, out[1] = c1, out[2] = c2, out[3] = c3;
}

/* Uniform in (0, 1], never 0 so log() is safe. */
static double gantl__u01_open0(uint32_t u) { return ((double)u + 1.0) * (1.0 / 4294967296.0); }

GANTLDEF gantl_rng gantl_rng_new(uint64_t seed) {
    gantl_rng r;
    r.seed = seed;
    r.offset = 0;
    return r;
}

GANTLDEF void gantl_rng_normal(gantl_rng *rng, float *out, int64_t n, float mean, float std) {
    int64_t blocks = (n + 3) / 4;
    /* Block b gives out[4b .. 4b+3] by Box-Muller on its two pairs of words. */
    GANTL__OMP(parallel for schedule(static) if (blocks > 4096))
    for (int64_t b = 0; b < blocks; b++) {
        uint32_t u[4];
        gantl__philox(u, rng->offset + (uint64_t)b, rng->seed);
        for (int pair = 0; pair < 2; pair++) {
            double radius = sqrt(-2.0 * log(gantl__u01_open0(u[2 * pair])));
            double angle = 6.283185307179586 * (u[2 * pair + 1] * (1.0 / 4294967296.0));
            int64_t i = 4 * b + 2 * pair;
            if (i < n) out[i] = (float)(mean + std * radius * cos(angle));
            if (i + 1 < n) out[i + 1] = (float)(mean + std * radius * sin(angle));
        }
    }
    rng->offset += (uint64_t)blocks;
}

GANTLDEF void gantl_rng_uniform(gantl_rng *rng, float *out, int64_t n, float lo, float hi) {
    int64_t blocks = (n + 3) / 4;
    GANTL__OMP(parallel for schedule(static) if (blocks > 4096))
    for (int64_t b = 0; b < blocks; b++) {
        uint32_t u[4];
        gantl__philox(u, rng->offset + (uint64_t)b, rng->seed);
        for (int j = 0; j < 4 && 4 * b + j < n; j++) {
            /* 24 bits so that the float never rounds up to hi */
            float t = (float)(u[j] >> 8) * (1.0f / 16777216.0f);
            out[4 * b + j] = lo + (hi - lo) * t;
        }
    }
    rng->offset += (uint64_t)blocks;
}

GANTLDEF uint32_t gantl_rng_u32(gantl_rng *rng) {
    uint32_t u[4];
    gantl__philox(u, rng->offset++, rng->seed);
    return u[0];
}

GANTLDEF double gantl_rng_double(gantl_rng *rng) {
    uint32_t u[4];
    gantl__philox(u, rng->offset++, rng->seed);
    return (double)(((uint64_t)u[0] << 21) ^ (u[1] >> 11)) * (1.0 / 9007199254740992.0);
}

GANTLDEF int64_t gantl_rng_int(gantl_rng *rng, int64_t n) {
    GANTL__CHECK(n > 0, "gantl_rng_int: n = %lld must be positive", (long long)n);
    int64_t v = (int64_t)(gantl_rng_double(rng) * (double)n);
    return v < n ? v : n - 1;
}

GANTLDEF void gantl_rng_permutation(gantl_rng *rng, int64_t *out, int64_t n) {
    for (int64_t i = 0; i < n; i++) out[i] = i;
    for (int64_t i = n - 1; i > 0; i--) { /* Fisher-Yates */
        int64_t j = gantl_rng_int(rng, i + 1), t = out[i];
        out[i] = out[j];
        out[j] = t;
    }
}

static void gantl__philox_normal(void *state, float *out, int64_t n) {
    gantl_rng_normal((gantl_rng *)state, out, n, 0.0f, 1.0f);
}
static void gantl__philox_uniform(void *state, float *out, int64_t n) {
    gantl_rng_uniform((gantl_rng *)state, out, n, 0.0f, 1.0f);
}

GANTLDEF gantl_random gantl_random_philox(gantl_rng *rng) {
    gantl_random r;
    r.state = rng;
    r.normal = gantl__philox_normal;
    r.uniform = gantl__philox_uniform;
    return r;
}

/* MT19937 as NumPy's legacy RandomState seeds and uses it. */
typedef struct gantl__mt19937 {
    uint32_t state[624];
    int pos;
} gantl__mt19937;

static void gantl__mt_seed(gantl__mt19937 *mt, uint32_t seed) {
    mt->state[0] = seed;
    for (int i = 1; i < 624; i++)
        mt->state[i] = 1812433253u * (mt->state[i - 1] ^ (mt->state[i - 1] >> 30)) + (uint32_t)i;
    mt->pos = 624;
}

static uint32_t gantl__mt_next(gantl__mt19937 *mt) {
    if (mt->pos == 624) { /* regenerate the whole state */
        for (int i = 0; i < 624; i++) {
            uint32_t y = (mt->state[i] & 0x80000000u) | (mt->state[(i + 1) % 624] & 0x7fffffffu);
            mt->state[i] = mt->state[(i + 397) % 624] ^ (y >> 1) ^ ((y & 1u) ? 0x9908b0dfu : 0u);
        }
        mt->pos = 0;
    }
    uint32_t y = mt->state[mt->pos++];
    y ^= y >> 11;
    y ^= (y << 7) & 0x9d2c5680u;
    y ^= (y << 15) & 0xefc60000u;
    return y ^ (y >> 18);
}

/* 53-bit double in [0, 1) from two draws, as NumPy does. */
static double gantl__mt_double(gantl__mt19937 *mt) {
    uint32_t a = gantl__mt_next(mt) >> 5, b = gantl__mt_next(mt) >> 6;
    return ((double)a * 67108864.0 + (double)b) / 9007199254740992.0;
}

GANTLDEF void gantl_numpy_randn(uint32_t seed, double *out, int64_t n) {
    gantl__mt19937 mt;
    gantl__mt_seed(&mt, seed);
    for (int64_t i = 0; i < n; i += 2) {
        double x1, x2, r2;
        do { /* Marsaglia's polar method; the first value of a pair is cached by NumPy */
            x1 = 2.0 * gantl__mt_double(&mt) - 1.0;
            x2 = 2.0 * gantl__mt_double(&mt) - 1.0;
            r2 = x1 * x1 + x2 * x2;
        } while (r2 >= 1.0 || r2 == 0.0);
        double f = sqrt(-2.0 * log(r2) / r2);
        out[i] = f * x2;
        if (i + 1 < n) out[i + 1] = f * x1;
    }
}

/* ---------------------------------------------------------------------------------------
   3. Contexts and tensors
   ------------------------------------------------------------------------------------- */

#define GANTL__ALIGN 64

typedef struct gantl__chunk {
    struct gantl__chunk *next;
    size_t size, used;
    unsigned char *base; /* GANTL__ALIGN-aligned start inside the allocation */
    void *device_mem;    /* a device chunk: the backend's allocation (this header is host memory) */
} gantl__chunk;

/* A context has one or two arenas: host chunks hold tensor headers, host buffers and the data
   of CPU tensors; a context on a device also has device chunks (from the backend's
   allocator) for its device tensors' data. held, used, peak and the limit count both. */
struct gantl_ctx {
    gantl__chunk *chunks;  /* host memory; newest first; allocation happens in the newest */
    gantl__chunk *dchunks; /* device memory (a context on a device), likewise */
    const gantl_backend *backend; /* the device's backend; NULL on the CPU */
    int device;            /* gantl_device */
    size_t chunk_bytes;    /* size of a fresh chunk */
    size_t held, limit;    /* bytes in chunks; limit (0: none) */
    size_t used, peak;     /* bytes handed out this step; most in any step */
    gantl_status status;   /* sticky out-of-memory flag */
    int grad_enabled;
    void *scratch;         /* kernel workspace, reused by every op */
    size_t scratch_bytes;
};

/* Section 4b: the backend registered for a device (NULL if none). */
static const gantl_backend *gantl__device_backend(int device);

/* A chunk of size usable bytes: host memory (be NULL), or from the backend's allocator. */
static gantl__chunk *gantl__chunk_new(size_t size, const gantl_backend *be) {
    gantl__chunk *c = (gantl__chunk *)GANTL_MALLOC(sizeof(gantl__chunk) + (be ? 0 : size + GANTL__ALIGN));
    if (!c) return NULL;
    c->device_mem = NULL;
    uintptr_t p = (uintptr_t)(c + 1);
    if (be) {
        c->device_mem = be->alloc(size + GANTL__ALIGN);
        if (!c->device_mem) {
            GANTL_FREE(c);
            return NULL;
        }
        p = (uintptr_t)c->device_mem;
    }
    c->base = (unsigned char *)((p + GANTL__ALIGN - 1) & ~(uintptr_t)(GANTL__ALIGN - 1));
    c->next = NULL;
    c->size = size;
    c->used = 0;
    return c;
}

static void gantl__chunks_free(gantl__chunk *c, const gantl_backend *be) {
    for (gantl__chunk *next; c; c = next) {
        next = c->next;
        if (c->device_mem) be->free(c->device_mem);
        GANTL_FREE(c);
    }
}

GANTLDEF gantl_ctx *gantl_ctx_new_device(gantl_device device, size_t chunk_bytes) {
    const gantl_backend *be = NULL;
    if (device != GANTL_CPU) {
        be = gantl__device_backend(device);
        if (!be || !be->alloc || !be->free) {
            gantl__fail(GANTL_ERR_UNSUPPORTED, "gantl_ctx_new_device: no backend with memory for device %d%s",
                        (int)device, device == GANTL_CUDA ? " (link gantl_cuda.cu and call gantl_cuda_init)" : "");
            return NULL;
        }
    }
    gantl_ctx *ctx = (gantl_ctx *)GANTL_MALLOC(sizeof(gantl_ctx));
    if (!ctx) {
        gantl__fail(GANTL_ERR_NOMEM, "gantl_ctx_new: out of memory");
        return NULL;
    }
    memset(ctx, 0, sizeof *ctx);
    ctx->chunk_bytes = chunk_bytes ? chunk_bytes : ((size_t)16 << 20);
    ctx->grad_enabled = 1;
    ctx->device = (int)device;
    ctx->backend = be;
    return ctx;
}

GANTLDEF gantl_ctx *gantl_ctx_new(size_t chunk_bytes) { return gantl_ctx_new_device(GANTL_CPU, chunk_bytes); }
GANTLDEF gantl_device gantl_ctx_device(const gantl_ctx *ctx) { return (gantl_device)ctx->device; }

GANTLDEF void gantl_ctx_free(gantl_ctx *ctx) {
    if (!ctx) return;
    gantl__chunks_free(ctx->chunks, NULL);
    gantl__chunks_free(ctx->dchunks, ctx->backend);
    GANTL_FREE(ctx->scratch);
    GANTL_FREE(ctx);
}

/* Every chunk of an arena is emptied and kept, the list reversed so that the chunk filled
   first comes first again: gantl__arena_alloc takes the chunks up in about the same order,
   so the next step of the same shape allocates nothing. (Merging them into one fresh chunk
   would make the kernel fault in and zero all its pages again: a tenth of a training step.) */
static void gantl__arena_reset(gantl__chunk **list) {
    gantl__chunk *first = NULL;
    for (gantl__chunk *c = *list, *next; c; c = next) {
        next = c->next;
        c->used = 0, c->next = first, first = c;
    }
    *list = first;
}

GANTLDEF void gantl_ctx_reset(gantl_ctx *ctx) {
    /* queued device work may still read the memory about to be reused */
    gantl_status device_status = ctx->backend && ctx->backend->synchronize ? ctx->backend->synchronize() : GANTL_OK;
    gantl__arena_reset(&ctx->chunks);
    gantl__arena_reset(&ctx->dchunks);
    ctx->used = 0;
    ctx->status = device_status; /* a device error outlives the reset */
}

GANTLDEF gantl_status gantl_ctx_status(const gantl_ctx *ctx) { return ctx->status; }
GANTLDEF void gantl_ctx_set_limit(gantl_ctx *ctx, size_t limit_bytes) { ctx->limit = limit_bytes; }
GANTLDEF size_t gantl_ctx_used(const gantl_ctx *ctx) { return ctx->used; }
GANTLDEF size_t gantl_ctx_peak(const gantl_ctx *ctx) { return ctx->peak; }
GANTLDEF int gantl_grad_enabled(const gantl_ctx *ctx) { return ctx->grad_enabled; }
GANTLDEF int gantl_set_grad_enabled(gantl_ctx *ctx, int enabled) {
    int previous = ctx->grad_enabled;
    ctx->grad_enabled = enabled;
    return previous;
}

GANTLDEF void gantl_ctx_set_error(gantl_ctx *ctx, gantl_status status, const char *fmt, ...) {
    if (ctx && ctx->status != GANTL_OK) return; /* keep the first error's message */
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(gantl__error_message, sizeof gantl__error_message, fmt, ap);
    va_end(ap);
    if (ctx) ctx->status = status;
}

static void gantl__out_of_memory(gantl_ctx *ctx, size_t bytes) {
    if (ctx->status == GANTL_OK)
        gantl__fail(GANTL_ERR_NOMEM, "gantl: out of memory allocating %zu bytes (context holds %zu, limit %zu)",
                    bytes, ctx->held, ctx->limit);
    ctx->status = GANTL_ERR_NOMEM;
}

/* Bump allocation from an arena, GANTL__ALIGN-aligned; NULL (and a sticky status) when
   memory or the limit runs out. */
static void *gantl__arena_alloc(gantl_ctx *ctx, gantl__chunk **list, const gantl_backend *be, size_t bytes) {
    bytes = (bytes + GANTL__ALIGN - 1) & ~(size_t)(GANTL__ALIGN - 1);
    gantl__chunk *c = *list;
    if (c && c->size - c->used < bytes) { /* the smallest empty chunk that fits becomes the newest */
        gantl__chunk **best = NULL;
        for (gantl__chunk **pc = &c->next; *pc; pc = &(*pc)->next)
            if ((*pc)->used == 0 && (*pc)->size >= bytes && (!best || (*pc)->size < (*best)->size)) best = pc;
        if (best) {
            gantl__chunk *take = *best;
            *best = take->next;
            take->next = c;
            *list = c = take;
        }
    }
    if (!c || c->size - c->used < bytes) {
        size_t size = bytes > ctx->chunk_bytes ? bytes : ctx->chunk_bytes;
        if (ctx->limit && ctx->held + size > ctx->limit) size = bytes;
        if (ctx->limit && ctx->held + size > ctx->limit) {
            gantl__out_of_memory(ctx, bytes);
            return NULL;
        }
        gantl__chunk *fresh = gantl__chunk_new(size, be);
        if (!fresh) {
            gantl__out_of_memory(ctx, bytes);
            return NULL;
        }
        fresh->next = c;
        *list = c = fresh;
        ctx->held += size;
    }
    void *p = c->base + c->used;
    c->used += bytes;
    ctx->used += bytes;
    if (ctx->used > ctx->peak) ctx->peak = ctx->used;
    return p;
}

/* Host memory from the arena (tensor headers, host buffers, CPU tensors' data). */
static void *gantl__alloc(gantl_ctx *ctx, size_t bytes) { return gantl__arena_alloc(ctx, &ctx->chunks, NULL, bytes); }

/* Memory for the data of a tensor on device: host memory for the CPU, else the device arena
   of a context on that device. */
static void *gantl__alloc_on(gantl_ctx *ctx, int device, size_t bytes) {
    if (device == GANTL_CPU) return gantl__alloc(ctx, bytes);
    GANTL__CHECK(device == ctx->device, "a tensor on device %d in a context on device %d: make the context with "
                 "gantl_ctx_new_device(%d, ...)", device, ctx->device, device);
    return gantl__arena_alloc(ctx, &ctx->dchunks, ctx->backend, bytes);
}

/* Kernel workspace: contents are not kept between calls. NULL on out-of-memory. */
static void *gantl__scratch(gantl_ctx *ctx, size_t bytes) {
    if (bytes > ctx->scratch_bytes) {
        GANTL_FREE(ctx->scratch);
        ctx->scratch = GANTL_MALLOC(bytes);
        ctx->scratch_bytes = ctx->scratch ? bytes : 0;
        if (!ctx->scratch) {
            gantl__out_of_memory(ctx, bytes);
            return NULL;
        }
    }
    return ctx->scratch;
}

GANTLDEF char *gantl_shape_str(const gantl_tensor *t, char *buf, size_t size) {
    size_t n = 0;
    if (size == 0) return buf;
    buf[0] = 0;
    if (!t) {
        snprintf(buf, size, "(null)");
        return buf;
    }
    n += (size_t)snprintf(buf + n, size - n, "(");
    for (int d = 0; d < t->ndim && n < size; d++)
        n += (size_t)snprintf(buf + n, size - n, d ? ", %lld" : "%lld", (long long)t->shape[d]);
    if (n < size) snprintf(buf + n, size - n, t->ndim == 1 ? ",)" : ")");
    return buf;
}

/* Shape strings for error messages: a small ring of buffers, so one message can show
   several shapes. */
static const char *gantl__shp(const gantl_tensor *t) {
    static GANTL__TLS char ring[4][96];
    static GANTL__TLS int next;
    char *buf = ring[next++ & 3];
    return gantl_shape_str(t, buf, sizeof ring[0]);
}
#define GANTL__SHP(t) gantl__shp(t)

GANTLDEF int gantl_same_shape(const gantl_tensor *a, const gantl_tensor *b) {
    if (a->ndim != b->ndim) return 0;
    for (int d = 0; d < a->ndim; d++)
        if (a->shape[d] != b->shape[d]) return 0;
    return 1;
}

GANTLDEF gantl_tensor *gantl_set_name(gantl_tensor *t, const char *name) {
    if (t) t->name = name;
    return t;
}

static int64_t gantl__numel(int ndim, const int64_t *shape) {
    int64_t n = 1;
    for (int d = 0; d < ndim; d++) n *= shape[d];
    return n;
}

/* A tensor header on device with a fresh data buffer (data == NULL for views, set by the
   caller). */
static gantl_tensor *gantl__tensor_on(gantl_ctx *ctx, int ndim, const int64_t *shape, int with_data, int device) {
    GANTL__CHECK(ndim >= 0 && ndim <= GANTL_MAX_DIMS, "tensor: ndim %d is not in 0..%d", ndim, GANTL_MAX_DIMS);
    for (int d = 0; d < ndim; d++)
        GANTL__CHECK(shape[d] >= 0, "tensor: size %lld of axis %d is negative", (long long)shape[d], d);
    if (ctx->status != GANTL_OK) return NULL;
    gantl_tensor *t = (gantl_tensor *)gantl__alloc(ctx, sizeof(gantl_tensor));
    if (!t) return NULL;
    memset(t, 0, sizeof *t);
    t->ndim = ndim;
    for (int d = 0; d < GANTL_MAX_DIMS; d++) t->shape[d] = d < ndim ? shape[d] : 1;
    t->numel = gantl__numel(ndim, shape);
    t->op = GANTL_OP_NONE;
    t->device = device;
    if (with_data) {
        t->data = (float *)gantl__alloc_on(ctx, device, (size_t)(t->numel ? t->numel : 1) * sizeof(float));
        if (!t->data) return NULL;
    }
    return t;
}

/* A tensor header on the context's device. */
static gantl_tensor *gantl__tensor(gantl_ctx *ctx, int ndim, const int64_t *shape, int with_data) {
    return gantl__tensor_on(ctx, ndim, shape, with_data, ctx->device);
}

GANTLDEF gantl_tensor *gantl_new(gantl_ctx *ctx, int ndim, const int64_t *shape) {
    return gantl__tensor(ctx, ndim, shape, 1);
}
GANTLDEF gantl_tensor *gantl_new_1d(gantl_ctx *ctx, int64_t n0) { return gantl_new(ctx, 1, &n0); }
GANTLDEF gantl_tensor *gantl_new_2d(gantl_ctx *ctx, int64_t n0, int64_t n1) {
    int64_t s[2] = {n0, n1};
    return gantl_new(ctx, 2, s);
}
GANTLDEF gantl_tensor *gantl_new_3d(gantl_ctx *ctx, int64_t n0, int64_t n1, int64_t n2) {
    int64_t s[3] = {n0, n1, n2};
    return gantl_new(ctx, 3, s);
}
GANTLDEF gantl_tensor *gantl_new_4d(gantl_ctx *ctx, int64_t n0, int64_t n1, int64_t n2, int64_t n3) {
    int64_t s[4] = {n0, n1, n2, n3};
    return gantl_new(ctx, 4, s);
}

static void gantl__fill(float *out, float value, int64_t n) {
    GANTL__OMP(parallel for schedule(static) if (n > 65536))
    for (int64_t i = 0; i < n; i++) out[i] = value;
}

GANTLDEF gantl_tensor *gantl_full(gantl_ctx *ctx, int ndim, const int64_t *shape, float value) {
    gantl_tensor *t = gantl_new(ctx, ndim, shape);
    if (t && ctx->backend && t->device == ctx->device && ctx->backend->fill) { /* on the device */
        gantl_status s = ctx->backend->fill(t->data, value, t->numel);
        if (s != GANTL_OK) ctx->status = s;
        return s == GANTL_OK ? t : NULL;
    }
    if (t) gantl__fill(t->data, value, t->numel);
    return t;
}
GANTLDEF gantl_tensor *gantl_zeros(gantl_ctx *ctx, int ndim, const int64_t *shape) {
    return gantl_full(ctx, ndim, shape, 0.0f);
}
GANTLDEF gantl_tensor *gantl_scalar(gantl_ctx *ctx, float value) { return gantl_full(ctx, 0, NULL, value); }
GANTLDEF gantl_tensor *gantl_full_like(gantl_ctx *ctx, const gantl_tensor *t, float value) {
    return t ? gantl_full(ctx, t->ndim, t->shape, value) : NULL;
}
GANTLDEF gantl_tensor *gantl_from_data(gantl_ctx *ctx, int ndim, const int64_t *shape, const float *data) {
    gantl_tensor *t = gantl_new(ctx, ndim, shape);
    if (t && ctx->backend && ctx->backend->copy) { /* a device tensor: one host-to-device copy */
        gantl_status s = ctx->backend->copy(t->data, data, (size_t)t->numel * sizeof(float));
        if (s != GANTL_OK) ctx->status = s;
        return s == GANTL_OK ? t : NULL;
    }
    if (t) memcpy(t->data, data, (size_t)t->numel * sizeof(float));
    return t;
}
GANTLDEF gantl_tensor *gantl_randn(gantl_ctx *ctx, gantl_rng *rng, int ndim, const int64_t *shape) {
    gantl_tensor *t = gantl_new(ctx, ndim, shape);
    if (t) gantl_rng_normal(rng, t->data, t->numel, 0.0f, 1.0f);
    return t;
}
GANTLDEF gantl_tensor *gantl_rand(gantl_ctx *ctx, gantl_rng *rng, int ndim, const int64_t *shape) {
    gantl_tensor *t = gantl_new(ctx, ndim, shape);
    if (t) gantl_rng_uniform(rng, t->data, t->numel, 0.0f, 1.0f);
    return t;
}

GANTLDEF gantl_tensor *gantl_requires_grad(gantl_tensor *t) {
    if (t) {
        GANTL__CHECK(t->op == GANTL_OP_NONE, "gantl_requires_grad: '%s' is not a leaf (made by %s)",
                     t->name ? t->name : "tensor", gantl_op_name(t->op));
        t->flags |= GANTL_FLAG_REQUIRES_GRAD;
    }
    return t;
}

GANTLDEF gantl_tensor *gantl_detach(gantl_ctx *ctx, gantl_tensor *x) {
    if (!x) return NULL;
    gantl_tensor *t = gantl__tensor(ctx, x->ndim, x->shape, 0);
    if (t) {
        t->data = x->data;
        t->device = x->device;
    }
    return t;
}

GANTLDEF gantl_status gantl_device_synchronize(gantl_device device) {
    const gantl_backend *be = device == GANTL_CPU ? NULL : gantl__device_backend(device);
    return be && be->synchronize ? be->synchronize() : GANTL_OK;
}

/* Before the library's host code reads the data of x: on a device, its queued work done (a
   no-op on the CPU, and all but free with the CUDA backend's default wait after every op);
   a device failure marks ctx. */
static void gantl__host_sync(gantl_ctx *ctx, const gantl_tensor *x) {
    if (!x || x->device == GANTL_CPU) return;
    gantl_status s = gantl_device_synchronize((gantl_device)x->device);
    if (s != GANTL_OK && ctx && ctx->status == GANTL_OK) ctx->status = s;
}

GANTLDEF gantl_tensor *gantl_to_device(gantl_ctx *ctx, gantl_tensor *x, gantl_device device) {
    if (!x || x->device == (int)device) return x;
    if (ctx->status != GANTL_OK) return NULL;
    gantl_tensor *t = gantl__tensor_on(ctx, x->ndim, x->shape, 1, (int)device);
    if (!t) return NULL;
    /* both ends are host-addressable (device memory is managed); the backend's copy is
       faster than the host touching device pages, and waits for queued work */
    const gantl_backend *be = gantl__device_backend(device != GANTL_CPU ? (int)device : x->device);
    gantl_status s = GANTL_OK;
    if (be && be->copy)
        s = be->copy(t->data, x->data, (size_t)x->numel * sizeof(float));
    else
        memcpy(t->data, x->data, (size_t)x->numel * sizeof(float));
    if (s != GANTL_OK) {
        ctx->status = s;
        return NULL;
    }
    return t;
}

/* ---------------------------------------------------------------------------------------
   4. Ops
   4a. CPU kernels: each reads out->src[] and out->ip/fp and fills out->data.
   ------------------------------------------------------------------------------------- */

/* Contiguous strides of a shape padded to 4-D with trailing 1s. */
static void gantl__strides(int64_t stride[4], const int64_t shape[4]) {
    stride[3] = 1;
    for (int d = 2; d >= 0; d--) stride[d] = stride[d + 1] * shape[d + 1];
}

/* Strided 4-D copy, dst[i] (+)= src[i] over a size[4] block; strides in elements. */
static void gantl__copy4(float *dst, const int64_t dstride[4], const float *src, const int64_t sstride[4],
                         const int64_t size[4], int accumulate) {
    int64_t rows = size[0] * size[1] * size[2];
    GANTL__OMP(parallel for schedule(static) if (rows * size[3] > 32768))
    for (int64_t r = 0; r < rows; r++) {
        int64_t i2 = r % size[2], i1 = (r / size[2]) % size[1], i0 = r / (size[2] * size[1]);
        float *d = dst + i0 * dstride[0] + i1 * dstride[1] + i2 * dstride[2];
        const float *s = src + i0 * sstride[0] + i1 * sstride[1] + i2 * sstride[2];
        int64_t ds = dstride[3], ss = sstride[3];
        if (accumulate)
            for (int64_t j = 0; j < size[3]; j++) d[j * ds] += s[j * ss];
        else if (ds == 1 && ss == 1)
            memcpy(d, s, (size_t)size[3] * sizeof(float));
        else
            for (int64_t j = 0; j < size[3]; j++) d[j * ds] = s[j * ss];
    }
}

static void gantl__cpu_none(gantl_ctx *ctx, gantl_tensor *out) { (void)ctx, (void)out; }

/* Binary elementwise ops with broadcasting. The output's axes are merged where both
   inputs allow it, so the inner loop is as long as possible. */
typedef struct gantl__bcast {
    int64_t size[4], sa[4], sb[4];
} gantl__bcast;

static void gantl__bcast_plan(gantl__bcast *p, const gantl_tensor *out, const gantl_tensor *a, const gantl_tensor *b) {
    int64_t size[GANTL_MAX_DIMS] = {0}, sa[GANTL_MAX_DIMS] = {0}, sb[GANTL_MAX_DIMS] = {0};
    int n = 0;
    for (int d = 0; d < out->ndim; d++) {
        if (out->shape[d] == 1) continue;
        int64_t stride_a = 0, stride_b = 0;
        int da = d - (out->ndim - a->ndim), db = d - (out->ndim - b->ndim);
        if (da >= 0 && a->shape[da] != 1) stride_a = gantl__numel(a->ndim - da - 1, a->shape + da + 1);
        if (db >= 0 && b->shape[db] != 1) stride_b = gantl__numel(b->ndim - db - 1, b->shape + db + 1);
        if (n > 0 && sa[n - 1] == stride_a * out->shape[d] && sb[n - 1] == stride_b * out->shape[d]) {
            size[n - 1] *= out->shape[d]; /* merge into the previous (outer) axis */
            sa[n - 1] = stride_a;
            sb[n - 1] = stride_b;
            continue;
        }
        size[n] = out->shape[d], sa[n] = stride_a, sb[n] = stride_b;
        n++;
    }
    for (int d = 0; d < 4; d++) { /* right-align into 4 axes */
        int s = d - (4 - n);
        p->size[d] = s >= 0 ? size[s] : 1;
        p->sa[d] = s >= 0 ? sa[s] : 0;
        p->sb[d] = s >= 0 ? sb[s] : 0;
    }
}

#define GANTL__BINARY_ROW(EXPR)                                                                \
    do {                                                                                       \
        if (sa3 == 1 && sb3 == 1) {                                                            \
            GANTL__OMP(simd)                                                                   \
            for (int64_t j = 0; j < n3; j++) { float A = pa[j], B = pb[j]; po[j] = (EXPR); }   \
        } else if (sb3 == 0) {                                                                 \
            float B = pb[0];                                                                   \
            GANTL__OMP(simd)                                                                   \
            for (int64_t j = 0; j < n3; j++) { float A = pa[j * sa3]; po[j] = (EXPR); }        \
        } else if (sa3 == 0) {                                                                 \
            float A = pa[0];                                                                   \
            GANTL__OMP(simd)                                                                   \
            for (int64_t j = 0; j < n3; j++) { float B = pb[j * sb3]; po[j] = (EXPR); }        \
        } else                                                                                 \
            for (int64_t j = 0; j < n3; j++) { float A = pa[j * sa3], B = pb[j * sb3]; po[j] = (EXPR); } \
    } while (0)

static void gantl__cpu_binary(gantl_ctx *ctx, gantl_tensor *out) {
    (void)ctx;
    const gantl_tensor *a = out->src[0], *b = out->src[1];
    gantl__bcast p;
    gantl__bcast_plan(&p, out, a, b);
    int64_t rows = p.size[0] * p.size[1] * p.size[2], n3 = p.size[3], sa3 = p.sa[3], sb3 = p.sb[3];
    int op = out->op;
    GANTL__OMP(parallel for schedule(static) if (out->numel > 32768))
    for (int64_t r = 0; r < rows; r++) {
        int64_t i2 = r % p.size[2], i1 = (r / p.size[2]) % p.size[1], i0 = r / (p.size[2] * p.size[1]);
        const float *pa = a->data + i0 * p.sa[0] + i1 * p.sa[1] + i2 * p.sa[2];
        const float *pb = b->data + i0 * p.sb[0] + i1 * p.sb[1] + i2 * p.sb[2];
        float *po = out->data + r * n3;
        switch (op) {
        case GANTL_OP_ADD: GANTL__BINARY_ROW(A + B); break;
        case GANTL_OP_SUB: GANTL__BINARY_ROW(A - B); break;
        case GANTL_OP_MUL: GANTL__BINARY_ROW(A * B); break;
        default: GANTL__BINARY_ROW(A / B); break;
        }
    }
}
#define gantl__cpu_add gantl__cpu_binary
#define gantl__cpu_sub gantl__cpu_binary
#define gantl__cpu_mul gantl__cpu_binary
#define gantl__cpu_div gantl__cpu_binary

static float gantl__softplus1(float x) { return x > 20.0f ? x : log1pf(expf(x)); } /* torch's threshold */
static float gantl__sigmoid1(float x) { return 1.0f / (1.0f + expf(-x)); }

static void gantl__cpu_unary(gantl_ctx *ctx, gantl_tensor *out) {
    (void)ctx;
    const float *x = out->src[0]->data;
    float *y = out->data, p0 = out->fp[0], p1 = out->fp[1];
    int64_t n = out->numel;
    int op = out->op;
#define GANTL__UNARY_LOOP(EXPR)                                                                \
    GANTL__OMP(parallel for schedule(static) if (n > 32768))                                  \
    for (int64_t i = 0; i < n; i++) { float v = x[i]; y[i] = (EXPR); }
    switch (op) {
    case GANTL_OP_SCALE: GANTL__UNARY_LOOP(v * p0 + p1); break;
    case GANTL_OP_EXP: GANTL__UNARY_LOOP(expf(v)); break;
    case GANTL_OP_LOG: GANTL__UNARY_LOOP(logf(v)); break;
    case GANTL_OP_SQRT: GANTL__UNARY_LOOP(sqrtf(v)); break;
    case GANTL_OP_RSQRT: GANTL__UNARY_LOOP(1.0f / sqrtf(v)); break;
    case GANTL_OP_SQUARE: GANTL__UNARY_LOOP(v * v); break;
    case GANTL_OP_POW: GANTL__UNARY_LOOP(powf(v, p0)); break;
    case GANTL_OP_ABS: GANTL__UNARY_LOOP(fabsf(v)); break;
    case GANTL_OP_SIGN: GANTL__UNARY_LOOP((float)((v > 0.0f) - (v < 0.0f))); break;
    case GANTL_OP_SOFTPLUS: GANTL__UNARY_LOOP(gantl__softplus1(v)); break;
    case GANTL_OP_SIGMOID: GANTL__UNARY_LOOP(gantl__sigmoid1(v)); break;
    case GANTL_OP_LRELU: GANTL__UNARY_LOOP(v > 0.0f ? v : v * p0); break;
    default: gantl__die("unary kernel: unexpected op %s", gantl_op_name(op));
    }
#undef GANTL__UNARY_LOOP
}
#define gantl__cpu_scale gantl__cpu_unary
#define gantl__cpu_exp gantl__cpu_unary
#define gantl__cpu_log gantl__cpu_unary
#define gantl__cpu_sqrt gantl__cpu_unary
#define gantl__cpu_rsqrt gantl__cpu_unary
#define gantl__cpu_square gantl__cpu_unary
#define gantl__cpu_pow gantl__cpu_unary
#define gantl__cpu_abs gantl__cpu_unary
#define gantl__cpu_sign gantl__cpu_unary
#define gantl__cpu_softplus gantl__cpu_unary
#define gantl__cpu_sigmoid gantl__cpu_unary
#define gantl__cpu_lrelu gantl__cpu_unary

/* (g, x) -> g * (x > 0 ? 1 : alpha) */
static void gantl__cpu_lrelu_grad(gantl_ctx *ctx, gantl_tensor *out) {
    (void)ctx;
    const float *g = out->src[0]->data, *x = out->src[1]->data;
    float alpha = out->fp[0];
    int64_t n = out->numel;
    float *gx = out->data;
    GANTL__OMP(parallel for simd schedule(static) if (n > 32768))
    for (int64_t i = 0; i < n; i++) gx[i] = x[i] > 0.0f ? g[i] : g[i] * alpha;
}

/* Sum over the axes where out has size 1 and x does not (keepdim), in double. */
static void gantl__cpu_sum(gantl_ctx *ctx, gantl_tensor *out) {
    (void)ctx;
    const gantl_tensor *x = out->src[0];
    int64_t xs[4], os[4], red[4];
    gantl__strides(xs, x->shape);
    gantl__strides(os, out->shape);
    for (int d = 0; d < 4; d++) red[d] = out->shape[d] == 1 ? x->shape[d] : 1;
    if (red[3] == x->shape[3]) red[3] *= red[2], red[2] = 1; /* whole rows: one run of them */
    if (out->numel == 1) {
        double acc = 0.0;
        const float *xd = x->data;
        int64_t n = x->numel;
        GANTL__OMP(parallel for schedule(static) reduction(+ : acc) if (n > 32768))
        for (int64_t i = 0; i < n; i++) acc += xd[i];
        out->data[0] = (float)acc;
        return;
    }
    if (red[3] == 1 && out->shape[3] >= 8) { /* the last axis kept: runs of up to 64 outputs at once */
        int64_t W = out->shape[3], per = (W + 63) / 64;
        GANTL__OMP(parallel for schedule(static) if (x->numel > 32768))
        for (int64_t blk = 0; blk < out->numel / W * per; blk++) {
            int64_t o = blk / per * W + blk % per * 64, len = W - blk % per * 64 < 64 ? W - blk % per * 64 : 64;
            int64_t base = 0, rem = o;
            for (int d = 0; d < 4; d++) {
                base += (rem / os[d]) * xs[d];
                rem %= os[d];
            }
            double acc[64] = {0}; /* each output summed in the same order as below */
            for (int64_t j0 = 0; j0 < red[0]; j0++)
                for (int64_t j1 = 0; j1 < red[1]; j1++)
                    for (int64_t j2 = 0; j2 < red[2]; j2++) {
                        const float *p = x->data + base + j0 * xs[0] + j1 * xs[1] + j2 * xs[2];
                        GANTL__OMP(simd)
                        for (int64_t t = 0; t < len; t++) acc[t] += p[t];
                    }
            for (int64_t t = 0; t < len; t++) out->data[o + t] = (float)acc[t];
        }
        return;
    }
    GANTL__OMP(parallel for schedule(static) if (x->numel > 32768))
    for (int64_t o = 0; o < out->numel; o++) {
        int64_t base = 0, rem = o;
        for (int d = 0; d < 4; d++) {
            base += (rem / os[d]) * xs[d];
            rem %= os[d];
        }
        double acc = 0.0;
        for (int64_t j0 = 0; j0 < red[0]; j0++)
            for (int64_t j1 = 0; j1 < red[1]; j1++)
                for (int64_t j2 = 0; j2 < red[2]; j2++) {
                    const float *p = x->data + base + j0 * xs[0] + j1 * xs[1] + j2 * xs[2];
                    if (red[3] < 32) {
                        for (int64_t j3 = 0; j3 < red[3]; j3++) acc += p[j3 * xs[3]];
                        continue;
                    }
                    double part = 0.0; /* long runs: a vectorised partial sum */
                    GANTL__OMP(simd reduction(+ : part))
                    for (int64_t j3 = 0; j3 < red[3]; j3++) part += p[j3 * xs[3]];
                    acc += part;
                }
        out->data[o] = (float)acc;
    }
}

static void gantl__cpu_expand(gantl_ctx *ctx, gantl_tensor *out) {
    (void)ctx;
    const gantl_tensor *x = out->src[0];
    int64_t xs[4], os[4];
    gantl__strides(xs, x->shape);
    gantl__strides(os, out->shape);
    for (int d = 0; d < 4; d++)
        if (x->shape[d] == 1) xs[d] = 0;
    gantl__copy4(out->data, os, x->data, xs, out->shape, 0);
}

static void gantl__cpu_reshape(gantl_ctx *ctx, gantl_tensor *out) { (void)ctx, (void)out; /* a view */ }

static void gantl__cpu_permute(gantl_ctx *ctx, gantl_tensor *out) {
    (void)ctx;
    const gantl_tensor *x = out->src[0];
    int64_t xs[4], ps[4], os[4];
    gantl__strides(xs, x->shape);
    gantl__strides(os, out->shape);
    for (int d = 0; d < 4; d++) ps[d] = d < out->ndim ? xs[out->ip[d]] : 0;
    gantl__copy4(out->data, os, x->data, ps, out->shape, 0);
}

static void gantl__cpu_slice(gantl_ctx *ctx, gantl_tensor *out) {
    (void)ctx;
    const gantl_tensor *x = out->src[0];
    int64_t xs[4], os[4];
    gantl__strides(xs, x->shape);
    gantl__strides(os, out->shape);
    gantl__copy4(out->data, os, x->data + out->ip[1] * xs[out->ip[0]], xs, out->shape, 0);
}

static void gantl__cpu_pad(gantl_ctx *ctx, gantl_tensor *out) {
    (void)ctx;
    const gantl_tensor *x = out->src[0];
    int64_t xs[4], os[4];
    gantl__strides(xs, x->shape);
    gantl__strides(os, out->shape);
    gantl__fill(out->data, 0.0f, out->numel);
    gantl__copy4(out->data + out->ip[1] * os[out->ip[0]], os, x->data, xs, x->shape, 0);
}

static void gantl__cpu_concat(gantl_ctx *ctx, gantl_tensor *out) {
    (void)ctx;
    const gantl_tensor *a = out->src[0], *b = out->src[1];
    int64_t as[4], bs[4], os[4];
    gantl__strides(as, a->shape);
    gantl__strides(bs, b->shape);
    gantl__strides(os, out->shape);
    gantl__copy4(out->data, os, a->data, as, a->shape, 0);
    gantl__copy4(out->data + a->shape[out->ip[0]] * os[out->ip[0]], os, b->data, bs, b->shape, 0);
}

/* Copies (or, for repeat_sum, adds) one tile per call between the big and the small tensor. */
static void gantl__repeat_tiles(gantl_tensor *big, gantl_tensor *small, const int32_t reps[4], int to_big) {
    int64_t bs[4], ss[4];
    gantl__strides(bs, big->shape);
    gantl__strides(ss, small->shape);
    if (!to_big) gantl__fill(small->data, 0.0f, small->numel);
    for (int64_t t0 = 0; t0 < reps[0]; t0++)
        for (int64_t t1 = 0; t1 < reps[1]; t1++)
            for (int64_t t2 = 0; t2 < reps[2]; t2++)
                for (int64_t t3 = 0; t3 < reps[3]; t3++) {
                    float *tile = big->data + t0 * small->shape[0] * bs[0] + t1 * small->shape[1] * bs[1] +
                                  t2 * small->shape[2] * bs[2] + t3 * small->shape[3] * bs[3];
                    if (to_big)
                        gantl__copy4(tile, bs, small->data, ss, small->shape, 0);
                    else
                        gantl__copy4(small->data, ss, tile, bs, small->shape, 1);
                }
}

static void gantl__cpu_repeat(gantl_ctx *ctx, gantl_tensor *out) {
    (void)ctx;
    gantl__repeat_tiles(out, out->src[0], out->ip, 1);
}

static void gantl__cpu_repeat_sum(gantl_ctx *ctx, gantl_tensor *out) {
    (void)ctx;
    gantl__repeat_tiles(out->src[0], out, out->ip, 0);
}

/* Batched matmul: batches of a or b of count 1 are shared. */
static void gantl__cpu_matmul(gantl_ctx *ctx, gantl_tensor *out) {
    (void)ctx;
    const gantl_tensor *a = out->src[0], *b = out->src[1];
    int ta = out->ip[0], tb = out->ip[1];
    int64_t m = out->shape[out->ndim - 2], n = out->shape[out->ndim - 1];
    int64_t k = ta ? a->shape[a->ndim - 2] : a->shape[a->ndim - 1];
    int64_t batch = out->numel / (m * n > 0 ? m * n : 1);
    int64_t batch_a = a->numel / (m * k > 0 ? m * k : 1), batch_b = b->numel / (k * n > 0 ? k * n : 1);
    if (out->numel == 0) return;
    if (batch_b == 1 && !ta && batch > 1) { /* one GEMM: (batch*m, k) @ (k, n) */
        gantl_sgemm(out->data, a->data, b->data, 0, tb, 1.0f, 0.0f, batch * m, n, k);
        return;
    }
    if (batch == 1) { /* gantl_sgemm's own threads (not under an inactive parallel region,
                          whose nested team would be new threads competing with the pool's) */
        gantl_sgemm(out->data, a->data, b->data, ta, tb, 1.0f, 0.0f, m, n, k);
        return;
    }
    /* Small matrices: parallel over the batch (sgemm then runs on one thread); large ones
       one after another, each on sgemm's threads. */
    if (m * n * k < (1 << 18)) {
        GANTL__OMP(parallel for schedule(static))
        for (int64_t i = 0; i < batch; i++)
            gantl_sgemm(out->data + i * m * n, a->data + (batch_a > 1 ? i * m * k : 0),
                        b->data + (batch_b > 1 ? i * k * n : 0), ta, tb, 1.0f, 0.0f, m, n, k);
        return;
    }
    for (int64_t i = 0; i < batch; i++)
        gantl_sgemm(out->data + i * m * n, a->data + (batch_a > 1 ? i * m * k : 0),
                    b->data + (batch_b > 1 ? i * k * n : 0), ta, tb, 1.0f, 0.0f, m, n, k);
}

/* The im2col matrix of one image x (C, H, W) for a kh x kw kernel, never stored: row
   r = (c, ky, kx) of C*kh*kw, column q = (oy, ox) of Ho*Wo, value
   x[c, oy*stride - pad + ky, ox*stride - pad + kx], 0 outside the image. The GEMM's
   packing reads it a block at a time, so the 9x larger matrix never goes to memory. */
typedef struct gantl__im2col {
    const float *x;
    int64_t C, H, W, Ho, Wo;
    int kh, kw, stride, pad;
} gantl__im2col;

/* dst[i * step] = col[r, q0 + i] for i < len: runs along output rows, each a copy (stride
   1) or a gather (stride > 1) between zeroed edges. */
static void gantl__im2col_run(const gantl__im2col *v, int64_t r, int64_t q0, int64_t len, float *dst, int64_t step) {
    int64_t c = r / (v->kh * v->kw), ky = r / v->kw % v->kh, kx = r % v->kw, s = v->stride;
    const float *xc = v->x + c * v->H * v->W;
    int64_t oy = q0 / v->Wo, ox = q0 % v->Wo;
    for (int64_t i = 0; i < len; oy++, ox = 0) {
        int64_t n = v->Wo - ox < len - i ? v->Wo - ox : len - i; /* this output row's part */
        int64_t iy = oy * s - v->pad + ky, ix0 = ox * s - v->pad + kx; /* ix = ix0 + j * s */
        float *d = dst + i * step;
        /* j in [lo, hi) reads inside the row */
        int64_t lo, hi;
        if (s == 1)
            lo = ix0 >= 0 ? 0 : -ix0, hi = v->W - ix0;
        else
            lo = ix0 >= 0 ? 0 : (-ix0 + s - 1) / s, hi = ix0 < v->W ? (v->W - ix0 + s - 1) / s : 0;
        if (iy < 0 || iy >= v->H) lo = hi = n;
        if (hi > n) hi = n;
        if (lo > hi) lo = hi;
        int64_t at = iy * v->W + ix0; /* x index of j = 0 */
        for (int64_t j = 0; j < lo; j++) d[j * step] = 0.0f;
        if (step == 1 && s == 1) {
            GANTL__OMP(simd)
            for (int64_t j = lo; j < hi; j++) d[j] = xc[at + j];
        } else if (step == 1) {
            GANTL__OMP(simd)
            for (int64_t j = lo; j < hi; j++) d[j] = xc[at + j * s];
        } else
            for (int64_t j = lo; j < hi; j++) d[j * step] = xc[at + j * s];
        for (int64_t j = hi; j < n; j++) d[j * step] = 0.0f;
        i += n;
    }
}

/* An operand of the blocked GEMM (section 8): a stored matrix (rows of ld, used
   transposed if transposed), or the im2col matrix of an image (view; B only, possibly
   transposed), or a matrix packed in advance by gantl__pack_a_all (packed; A only). */
typedef struct gantl__operand {
    const float *data;
    int64_t ld;
    int transposed;
    const gantl__im2col *view;
    int64_t col0; /* for a view: B's first column (an im2col column, or row if transposed) */
    const float *packed;
} gantl__operand;

static gantl__operand gantl__matrix(const float *data, int64_t ld, int transposed) {
    gantl__operand o;
    memset(&o, 0, sizeof o);
    o.data = data, o.ld = ld, o.transposed = transposed;
    return o;
}

/* Defined in section 8: c (m, n; rows of ldc) = alpha * A @ B (+ c unless overwrite) on the
   calling thread; and A (m, k) packed for it whole (gantl__packed_a_floats(m, k) floats). */
static void gantl__gemm(float *c, int64_t ldc, const gantl__operand *A, const gantl__operand *B, float alpha,
                        int overwrite, int64_t m, int64_t n, int64_t k);
static int64_t gantl__packed_a_floats(int64_t m, int64_t k);
static void gantl__pack_a_all(float *dst, const gantl__operand *A, int64_t m, int64_t k);

/* col2im: x (C, H, W) = sum of the col (C*kh*kw, Ho*Wo) entries that im2col would read
   from each pixel. Serial: its caller runs one per thread (a team opened here, under the
   caller's region when that is inactive, would be new threads competing with the pool). */
static void gantl__col2im(float *x, const float *col, int64_t C, int64_t H, int64_t W, int kh, int kw, int stride,
                          int pad, int64_t Ho, int64_t Wo) {
    for (int64_t c = 0; c < C; c++) {
        float *dst = x + c * H * W;
        memset(dst, 0, (size_t)(H * W) * sizeof(float));
        for (int ky = 0; ky < kh; ky++)
            for (int kx = 0; kx < kw; kx++) {
                const float *src = col + ((c * kh + ky) * kw + kx) * Ho * Wo;
                for (int64_t oy = 0; oy < Ho; oy++) {
                    int64_t iy = oy * stride - pad + ky;
                    if (iy < 0 || iy >= H) continue;
                    for (int64_t ox = 0; ox < Wo; ox++) {
                        int64_t ix = ox * stride - pad + kx;
                        if (ix >= 0 && ix < W) dst[iy * W + ix] += src[oy * Wo + ox];
                    }
                }
            }
    }
}

/* The convolutions run as GEMMs of one image (and group) at a time: the weights are packed
   once per op for every image, and the image's im2col matrix is read by the GEMM's packing
   (gantl__im2col above), never stored. Tasks are images, or with fewer images than threads
   (a batch of one, say) column slices of an image's output: one fork per op, none per
   GEMM, and each output element summed in one order whatever the thread count. Tasks are
   handed out dynamically, so a thread the OS preempts (a busy machine) does not hold the
   others up at the end of the op. */

static int gantl__thread(void) {
#if defined(_OPENMP) && !defined(GANTL_NO_OPENMP)
    return omp_get_thread_num();
#else
    return 0;
#endif
}

#define GANTL__CONV_COLS 64 /* column slices of a convolution's GEMMs: whole register tiles */

/* Slices per image so that N images give every thread work (1 if N >= threads). */
static int64_t gantl__conv_slices(int64_t N, int threads) { return N >= threads ? 1 : (threads + N - 1) / N; }

/* y (N, O, Ho, Wo) = conv of x (N, C, H, W) with wp, the weights (O/g, C/g*kh*kw) of each
   group packed by gantl__pack_a_all (wfloats apart): per image and group,
   y_g (O/g, Ho*Wo) = w_g @ im2col(x_g). */
static void gantl__conv_forward(float *y, const float *x, const float *wp, int64_t wfloats, int64_t N, int64_t C,
                                int64_t H, int64_t W, int64_t O, int kh, int kw, int stride, int pad, int groups,
                                int64_t Ho, int64_t Wo) {
    int64_t Cg = C / groups, Og = O / groups, K = Cg * kh * kw, P = Ho * Wo;
    int threads = gantl__threads_for(2.0 * (double)(N * O * P * K), (double)(1 << 21));
    int64_t slices = gantl__conv_slices(N, threads), tasks = N * groups * slices;
    int64_t per = ((P + slices - 1) / slices + GANTL__CONV_COLS - 1) / GANTL__CONV_COLS * GANTL__CONV_COLS;
    GANTL__OMP(parallel for schedule(dynamic, 1) num_threads(threads) if (threads > 1))
    for (int64_t task = 0; task < tasks; task++) {
        int64_t n = task / (groups * slices), g = task / slices % groups, q0 = task % slices * per;
        if (q0 >= P) continue;
        gantl__im2col v = {x + (n * C + g * Cg) * H * W, Cg, H, W, Ho, Wo, kh, kw, stride, pad};
        gantl__operand A = gantl__matrix(NULL, 0, 0), B = gantl__matrix(NULL, 0, 0);
        A.packed = wp + g * wfloats;
        B.view = &v, B.col0 = q0;
        gantl__gemm(y + (n * O + g * Og) * P + q0, P, &A, &B, 1.0f, 1, Og, P - q0 < per ? P - q0 : per, K);
    }
}

/* ---- Winograd convolution (3x3 kernels, stride 1) ----
   Winograd's minimal filtering F(m x m, 3 x 3) (Lavin and Gray, "Fast algorithms for
   convolutional neural networks", 2016) makes an m x m output tile Y of one channel pair
   from the a x a input tile d (a = m + 2) under it as
       Y = AT [ (G g GT) .* (BT d B) ] A        (.* element-wise; AT is m x a, G is a x 3).
   Summed over input channels, the a*a positions xi of the transformed tiles are then a*a
   independent GEMMs, run by the blocked SGEMM of section 8:
       M_xi (O, tiles) = U_xi (O, C) @ V_xi (C, tiles),   U = G g GT,  V = BT d B,
   and Y = AT M A per tile. That is a^2 / (9 m^2) of the direct method's multiplications:
   36/144 = 0.25 for the F(4x4, 3x3) used here (F(2x2, 3x3) would take 0.44). The price is
   rounding: the transforms' entries (up to 8, and 1/24) put the results within about 1e-5
   of the largest output (a few 1e-6 at 128 channels), where im2col's are within about
   1e-7; training does not see it (cuDNN makes the same trade on GPUs). The transforms cost
   O(C + O) per tile against the GEMMs' O(C O), so they pay only with enough channels
   (gantl__use_winograd). The weight gradient is the transpose of the same algebra:
   dU_xi (O, C) = sum over tiles of dM_xi @ V_xi^T with dM = A dY AT, and dg = GT dU G.
   Tiles past the output's edge compute values that are dropped (forward) or see a zero
   gradient (weight gradient); the input outside the image reads as zero. */
#define GANTL__WM 4               /* output tile m x m */
#define GANTL__WA (GANTL__WM + 2) /* input tile a x a */
#define GANTL__WA2 (GANTL__WA * GANTL__WA)
#define GANTL__WINO_TILES 64      /* tiles per task (whole tile rows): 1.2 MB each for V and M at 128 channels */
#define GANTL__WINO_MIN_CHANNELS 32
#define GANTL__WINO_BUF(tw) (2 * GANTL__WA * GANTL__WM * ((tw) + 1)) /* row buffers of a task, in floats */
/* The 36 matrices of a block lie GANTL__WINO_SKEW floats further apart than their size: at
   a power-of-two distance (128 channels x 64 tiles), the transforms' 36 streams would fall
   in the same L1 cache sets. */
#define GANTL__WINO_SKEW 16
/* G (6 x 3): the filter transform, U = G g GT. */
static const float gantl__wino_g[GANTL__WA * 3] = {
    1.0f / 4,  0.0f,       0.0f,      -1.0f / 6, -1.0f / 6, -1.0f / 6, -1.0f / 6, 1.0f / 6, -1.0f / 6,
    1.0f / 24, 1.0f / 12,  1.0f / 6,  1.0f / 24, -1.0f / 12, 1.0f / 6, 0.0f,      0.0f,     1.0f};

/* o0..o5 = BT (d0..d5), BT = [4 0 -5 0 1 0; 0 -4 -4 1 1 0; 0 4 -4 -1 1 0; 0 -2 -1 2 1 0;
   0 2 -1 -2 1 0; 0 4 0 -5 0 1]: the data transform down one column or along one row. */
#define GANTL__WINO_BT(o0, o1, o2, o3, o4, o5, d0, d1, d2, d3, d4, d5)                                  \
    {                                                                                                   \
        float t0_ = (d4) - 4.0f * (d2), t1_ = (d3) - 4.0f * (d1), t2_ = (d4) - (d2), t3_ = 2.0f * ((d3) - (d1)); \
        o0 = 4.0f * (d0) - 5.0f * (d2) + (d4), o1 = t0_ + t1_, o2 = t0_ - t1_;                          \
        o3 = t2_ + t3_, o4 = t2_ - t3_, o5 = 4.0f * (d1) - 5.0f * (d3) + (d5);                          \
    }
/* o0..o3 = AT (m0..m5), AT = [1 1 1 1 1 0; 0 1 -1 2 -2 0; 0 1 1 4 4 0; 0 1 -1 8 -8 1]: the
   output transform of one column or row. */
#define GANTL__WINO_AT(o0, o1, o2, o3, m0, m1, m2, m3, m4, m5)                                        \
    {                                                                                                 \
        float p_ = (m1) + (m2), n_ = (m1) - (m2), P_ = (m3) + (m4), N_ = (m3) - (m4);                 \
        o0 = (m0) + p_ + P_, o1 = n_ + 2.0f * N_, o2 = p_ + 4.0f * P_, o3 = n_ + 8.0f * N_ + (m5);    \
    }
/* o0..o5 = A (y0..y3) with A = AT^T: the adjoint of the output transform, for gradients. */
#define GANTL__WINO_A(o0, o1, o2, o3, o4, o5, y0, y1, y2, y3)                                         \
    {                                                                                                 \
        float e_ = (y0) + (y2), f_ = (y1) + (y3), E_ = (y0) + 4.0f * (y2), F_ = 2.0f * (y1) + 8.0f * (y3); \
        o0 = (y0), o1 = e_ + f_, o2 = e_ - f_, o3 = E_ + F_, o4 = E_ - F_, o5 = (y3);                 \
    }

/* 0: the rule of gantl__use_winograd; 1: every 3x3 stride-1 convolution; -1: none (the
   tests compare the two paths with it). */
static int gantl__winograd_mode;

/* Winograd for a 3x3 kernel at stride 1 (gantl has no dilation) when each group has at
   least GANTL__WINO_MIN_CHANNELS input and output channels and the output is at least
   one tile across; the rest keeps im2col. */
static int gantl__use_winograd(int64_t kh, int64_t kw, int stride, int64_t Cg, int64_t Og, int64_t Ho, int64_t Wo) {
    if (kh != 3 || kw != 3 || stride != 1 || gantl__winograd_mode < 0) return 0;
    if (gantl__winograd_mode > 0) return 1;
    return Cg >= GANTL__WINO_MIN_CHANNELS && Og >= GANTL__WINO_MIN_CHANNELS && Ho >= GANTL__WM && Wo >= GANTL__WM;
}

/* out (r x r) = T in T^T for in (s x s), T(p, i) = T[p * tp + i * ti], where each entry is
   a vector of nt floats: in[(i * s + j) * is + t], out[(p * r + q) * os + t]. Vectorised
   over t; the zeros of T are skipped. tmp: r * s * nt floats. (The filter transforms, once
   per weight and not per tile, so plainly written.) */
static void gantl__wino_transform(float *out, int64_t os, const float *in, int64_t is, const float *T, int tp, int ti,
                                  int r, int s, int64_t nt, float *tmp) {
    for (int p = 0; p < r; p++) /* tmp[p, j] = sum_i T(p, i) in[i, j] */
        for (int j = 0; j < s; j++) {
            float *dst = tmp + (p * s + j) * nt;
            for (int64_t t = 0; t < nt; t++) dst[t] = 0.0f;
            for (int i = 0; i < s; i++) {
                float v = T[p * tp + i * ti];
                const float *src = in + (i * s + j) * is;
                if (v == 0.0f) continue;
                GANTL__OMP(simd)
                for (int64_t t = 0; t < nt; t++) dst[t] += v * src[t];
            }
        }
    for (int p = 0; p < r; p++) /* out[p, q] = sum_j T(q, j) tmp[p, j] */
        for (int q = 0; q < r; q++) {
            float *dst = out + (p * r + q) * os;
            for (int64_t t = 0; t < nt; t++) dst[t] = 0.0f;
            for (int j = 0; j < s; j++) {
                float v = T[q * tp + j * ti];
                const float *src = tmp + (p * s + j) * nt;
                if (v == 0.0f) continue;
                GANTL__OMP(simd)
                for (int64_t t = 0; t < nt; t++) dst[t] += v * src[t];
            }
        }
}

/* The tiles of a convolution: tile t = (n, ty, tx) of N * th * tw covers the outputs
   [ty*m, ty*m + m) x [tx*m, tx*m + m) of image n and reads the inputs from (ty*m - pad,
   tx*m - pad) on. Image n's channel c of x starts at x + n * xn + c * xc, of y at
   y + n * yn + c * yc: (N, C, H, W) tensors, or the Inception network's (C, N, H, W). */
typedef struct gantl__wino {
    int64_t N, C, H, W, O, Ho, Wo, Cg, Og, th, tw, tiles, xn, xc, yn, yc;
    int pad, groups;
} gantl__wino;

static gantl__wino gantl__wino_shape(int64_t N, int64_t C, int64_t H, int64_t W, int64_t O, int pad, int groups,
                                     int64_t Ho, int64_t Wo) {
    gantl__wino s;
    s.N = N, s.C = C, s.H = H, s.W = W, s.O = O, s.Ho = Ho, s.Wo = Wo, s.Cg = C / groups, s.Og = O / groups;
    s.th = (Ho + GANTL__WM - 1) / GANTL__WM, s.tw = (Wo + GANTL__WM - 1) / GANTL__WM, s.tiles = N * s.th * s.tw;
    s.pad = pad, s.groups = groups;
    s.xn = C * H * W, s.xc = H * W, s.yn = O * Ho * Wo, s.yc = Ho * Wo;
    return s;
}

/* V (36, C/g, nt; matrices C/g * nt + GANTL__WINO_SKEW apart) = BT d B for the tiles of
   tile rows row0 .. row0 + rows - 1 of group g (nt = rows * tw, tile (r, tx) at r * tw + tx),
   d their input tiles. First down the columns, q = BT P for the six input rows P under a
   tile row (zero-padded to 4 tw + 4 columns), a vector op over whole rows that stores each
   row of q as four phases, q_a[4 t + j] at qa[j * (tw + 1) + t]; then along the rows, where
   tile tx takes columns 4 tx .. 4 tx + 5 of q_a: the phases at tx and the first two at
   tx + 1, contiguous loads across tiles. buf: GANTL__WINO_BUF(tw) floats. */
static void gantl__wino_input(float *V, const float *x, const gantl__wino *s, int64_t g, int64_t row0, int64_t rows,
                              float *buf) {
    int64_t tw = s->tw, nt = rows * tw, T = tw + 1, Wp = GANTL__WM * T, Cg = s->Cg, xs = Cg * nt + GANTL__WINO_SKEW;
    int64_t lo = s->pad < Wp ? s->pad : Wp, hi = s->pad + s->W < Wp ? s->pad + s->W : Wp; /* image columns */
    float *P = buf, *q = buf + GANTL__WA * Wp; /* P (6, Wp); q (6, 4 phases, T) */
    for (int64_t c = 0; c < Cg; c++)
        for (int64_t r = 0; r < rows; r++) {
            int64_t n = (row0 + r) / s->th, y0 = (row0 + r) % s->th * GANTL__WM - s->pad;
            const float *xc = x + n * s->xn + (g * Cg + c) * s->xc;
            for (int i = 0; i < GANTL__WA; i++) { /* P_i[X] = x[y0 + i, X - pad], 0 outside */
                float *p = P + i * Wp;
                int64_t iy = y0 + i;
                if (iy < 0 || iy >= s->H || hi <= lo) {
                    memset(p, 0, (size_t)Wp * sizeof(float));
                    continue;
                }
                memset(p, 0, (size_t)lo * sizeof(float));
                memcpy(p + lo, xc + iy * s->W + lo - s->pad, (size_t)(hi - lo) * sizeof(float));
                memset(p + hi, 0, (size_t)(Wp - hi) * sizeof(float));
            }
#define GANTL__PHASE(j)                                                                              \
    GANTL__WINO_BT(q[(j) * T + t], q[(4 + (j)) * T + t], q[(8 + (j)) * T + t], q[(12 + (j)) * T + t],         \
                   q[(16 + (j)) * T + t], q[(20 + (j)) * T + t], P[4 * t + (j)], P[Wp + 4 * t + (j)],         \
                   P[2 * Wp + 4 * t + (j)], P[3 * Wp + 4 * t + (j)], P[4 * Wp + 4 * t + (j)], P[5 * Wp + 4 * t + (j)])
            GANTL__OMP(simd)
            for (int64_t t = 0; t < T; t++) {
                GANTL__PHASE(0) GANTL__PHASE(1) GANTL__PHASE(2) GANTL__PHASE(3)
            }
#undef GANTL__PHASE
            for (int a = 0; a < GANTL__WA; a++) {
                const float *q0 = q + 4 * a * T, *q1 = q0 + T, *q2 = q1 + T, *q3 = q2 + T;
                float *v = V + GANTL__WA * a * xs + c * nt + r * tw; /* V[6a + b] at v + b * xs */
                GANTL__OMP(simd)
                for (int64_t tx = 0; tx < tw; tx++)
                    GANTL__WINO_BT(v[tx], v[xs + tx], v[2 * xs + tx], v[3 * xs + tx], v[4 * xs + tx], v[5 * xs + tx],
                                   q0[tx], q1[tx], q2[tx], q3[tx], q0[tx + 1], q1[tx + 1])
            }
        }
}

/* y's tiles of tile rows row0 .. row0 + rows - 1, output channel o of group g, from
   M (36, O/g, nt; matrices O/g * nt + GANTL__WINO_SKEW apart): Y = AT M A, first
   s = AT M down the columns, then along the rows of s. Tile rows wholly inside the output
   are written in place; the others through buf (4 rows of 4 tw floats), whose parts inside
   the output are copied. */
static void gantl__wino_output(float *y, const float *M, const gantl__wino *s, int64_t g, int64_t o, int64_t row0,
                               int64_t rows, float *buf) {
    int64_t tw = s->tw, nt = rows * tw, xs = s->Og * nt + GANTL__WINO_SKEW, Wb = GANTL__WM * tw;
    for (int64_t r = 0; r < rows; r++) {
        int64_t n = (row0 + r) / s->th, oy = (row0 + r) % s->th * GANTL__WM;
        const float *m = M + o * nt + r * tw; /* M[6a + b] at m + (6a + b) * xs */
        float *yo = y + n * s->yn + (g * s->Og + o) * s->yc + oy * s->Wo;
        int inside = Wb == s->Wo && oy + GANTL__WM <= s->Ho;
        float *b0 = inside ? yo : buf, *b1 = b0 + (inside ? s->Wo : Wb), *b2 = b1 + (inside ? s->Wo : Wb);
        float *b3 = b2 + (inside ? s->Wo : Wb);
#define GANTL__COL(b)                                                                                          \
    float s0##b, s1##b, s2##b, s3##b;                                                                          \
    GANTL__WINO_AT(s0##b, s1##b, s2##b, s3##b, m[(b) * xs + tx], m[(6 + (b)) * xs + tx], m[(12 + (b)) * xs + tx], \
                   m[(18 + (b)) * xs + tx], m[(24 + (b)) * xs + tx], m[(30 + (b)) * xs + tx])
#define GANTL__ROW(p) \
    GANTL__WINO_AT(b##p[4 * tx], b##p[4 * tx + 1], b##p[4 * tx + 2], b##p[4 * tx + 3], s##p##0, s##p##1, s##p##2, \
                   s##p##3, s##p##4, s##p##5)
        GANTL__OMP(simd)
        for (int64_t tx = 0; tx < tw; tx++) {
            GANTL__COL(0) GANTL__COL(1) GANTL__COL(2) GANTL__COL(3) GANTL__COL(4) GANTL__COL(5)
            GANTL__ROW(0) GANTL__ROW(1) GANTL__ROW(2) GANTL__ROW(3)
        }
#undef GANTL__COL
#undef GANTL__ROW
        for (int p = 0; p < GANTL__WM && oy + p < s->Ho && !inside; p++)
            memcpy(yo + p * s->Wo, buf + p * Wb, (size_t)s->Wo * sizeof(float));
    }
}

/* dM (36, O/g, nt; laid out as M above) = A dY AT of output channel o's gradient tiles
   (tile rows as above), dY zero past the output's edge: down the columns u = A dY, then
   along the rows of u. buf: 4 rows of 4 tw floats. */
static void gantl__wino_grad_output(float *dM, const float *gy, const gantl__wino *s, int64_t g, int64_t o,
                                    int64_t row0, int64_t rows, float *buf) {
    int64_t tw = s->tw, nt = rows * tw, xs = s->Og * nt + GANTL__WINO_SKEW, Wb = GANTL__WM * tw;
    for (int64_t r = 0; r < rows; r++) {
        int64_t n = (row0 + r) / s->th, oy = (row0 + r) % s->th * GANTL__WM;
        const float *go = gy + n * s->yn + (g * s->Og + o) * s->yc + oy * s->Wo;
        for (int p = 0; p < GANTL__WM; p++) { /* row p of the tiles, zero past the edge */
            float *gp = buf + p * Wb;
            int64_t have = oy + p < s->Ho ? s->Wo : 0;
            if (have) memcpy(gp, go + p * s->Wo, (size_t)have * sizeof(float));
            for (int64_t X = have; X < Wb; X++) gp[X] = 0.0f;
        }
        const float *g0 = buf, *g1 = buf + Wb, *g2 = buf + 2 * Wb, *g3 = buf + 3 * Wb;
        float *d = dM + o * nt + r * tw; /* dM[6a + b] at d + (6a + b) * xs */
#define GANTL__COL(q)                                                                                             \
    float u0##q, u1##q, u2##q, u3##q, u4##q, u5##q;                                                               \
    GANTL__WINO_A(u0##q, u1##q, u2##q, u3##q, u4##q, u5##q, g0[4 * tx + (q)], g1[4 * tx + (q)], g2[4 * tx + (q)], \
                  g3[4 * tx + (q)])
#define GANTL__ROW(a)                                                                                           \
    GANTL__WINO_A(d[(6 * (a)) * xs + tx], d[(6 * (a) + 1) * xs + tx], d[(6 * (a) + 2) * xs + tx],               \
                  d[(6 * (a) + 3) * xs + tx], d[(6 * (a) + 4) * xs + tx], d[(6 * (a) + 5) * xs + tx], u##a##0, \
                  u##a##1, u##a##2, u##a##3)
        GANTL__OMP(simd)
        for (int64_t tx = 0; tx < tw; tx++) {
            GANTL__COL(0) GANTL__COL(1) GANTL__COL(2) GANTL__COL(3)
            GANTL__ROW(0) GANTL__ROW(1) GANTL__ROW(2) GANTL__ROW(3) GANTL__ROW(4) GANTL__ROW(5)
        }
#undef GANTL__COL
#undef GANTL__ROW
    }
}

/* U (a*a, O/g, C/g) = G g GT of group g's weights, w (O, C/g, 3, 3), or with transposed
   the flipped weights of a transposed convolution, w (C, O/g, 3, 3):
   g[o, c, k] = w[g*C/g + c, o, 8 - k]. tmp: (9 + 3a + a*a) * C/g floats. */
static void gantl__wino_weights(float *U, const float *w, int transposed, const gantl__wino *s, int64_t g,
                                int64_t o0, int64_t o1, float *tmp) {
    int64_t Cg = s->Cg, Og = s->Og;
    float *wt = tmp + 3 * GANTL__WA * Cg; /* g[o, c, k] at wt[k * C/g + c] */
    for (int64_t o = o0; o < o1; o++) {
        for (int64_t c = 0; c < Cg; c++)
            for (int k = 0; k < 9; k++)
                wt[k * Cg + c] = transposed ? w[((g * Cg + c) * Og + o) * 9 + 8 - k] : w[((g * Og + o) * Cg + c) * 9 + k];
        gantl__wino_transform(U + o * Cg, Og * Cg, wt, Cg, gantl__wino_g, 3, 1, GANTL__WA, 3, Cg, tmp);
    }
}

/* The threads, and the scratch floats, of gantl__wino_conv_run for the convolution s. */
static int gantl__wino_threads(const gantl__wino *s) {
    return gantl__threads_for(2.0 * (double)(s->N * s->O * s->Ho * s->Wo * s->Cg * 9), (double)(1 << 21));
}
static int64_t gantl__wino_per_thread(const gantl__wino *s) { /* V, M and row buffers; or the weights' */
    int64_t R = (GANTL__WINO_TILES + s->tw - 1) / s->tw, Tb = R * s->tw;
    int64_t per = GANTL__WA2 * ((s->Cg + s->Og) * Tb + 2 * GANTL__WINO_SKEW) + GANTL__WINO_BUF(s->tw);
    int64_t wtmp = GANTL__WA2 * s->Og * s->Cg + (9 + 3 * GANTL__WA + GANTL__WA2) * s->Cg;
    return per > wtmp ? per : wtmp;
}
static int64_t gantl__wino_conv_floats(const gantl__wino *s) {
    return s->groups * GANTL__WA2 * gantl__packed_a_floats(s->Og, s->Cg) +
           gantl__wino_threads(s) * gantl__wino_per_thread(s);
}

/* y = conv2d(x, w) for a 3x3 kernel, stride 1, the convolution s, by Winograd, in mem
   (gantl__wino_conv_floats(s) floats): w as gantl__wino_weights reads it. Tasks are runs
   of tile rows (about GANTL__WINO_TILES tiles, across images) of a group, each
   transformed, multiplied 36 times and transformed back on one thread: every output has
   the same sums for any thread count, and for any batch it is part of. */
static void gantl__wino_conv_run(float *mem, const gantl__wino *sp, float *y, const float *x, const float *w,
                                 int transposed) {
    gantl__wino s = *sp;
    int64_t N = s.N, Cg = s.Cg, Og = s.Og, R = (GANTL__WINO_TILES + s.tw - 1) / s.tw, Tb = R * s.tw;
    int64_t blocks = (N * s.th + R - 1) / R, groups = s.groups;
    int threads = gantl__wino_threads(&s); /* the size of mem's per-thread areas */
    int64_t wfloats = gantl__packed_a_floats(Og, Cg), per = gantl__wino_per_thread(&s);
    float *work = mem + groups * GANTL__WA2 * wfloats;
    (void)threads; /* read only by the OpenMP clauses */
    /* U_xi of each group, packed for the GEMMs: a thread per group (a modulated convolution
       has one per image), or with one group, threads over output channels and then over xi
       (a serial transform would leave the other threads idle on small images) */
    if (groups == 1) {
        GANTL__OMP(parallel for schedule(static) num_threads(threads) if (threads > 1))
        for (int64_t o = 0; o < Og; o++) /* U in thread 0's area; each thread's tmp after its own U */
            gantl__wino_weights(work, w, transposed, &s, 0, o, o + 1,
                                work + (int64_t)gantl__thread() * per + GANTL__WA2 * Og * Cg);
        GANTL__OMP(parallel for schedule(static) num_threads(threads) if (threads > 1))
        for (int xi = 0; xi < GANTL__WA2; xi++) {
            gantl__operand A = gantl__matrix(work + xi * Og * Cg, Cg, 0);
            gantl__pack_a_all(mem + xi * wfloats, &A, Og, Cg);
        }
    } else {
        GANTL__OMP(parallel for schedule(dynamic, 1) num_threads(threads) if (threads > 1))
        for (int64_t g = 0; g < groups; g++) {
            float *u = work + (int64_t)gantl__thread() * per;
            gantl__wino_weights(u, w, transposed, &s, g, 0, Og, u + GANTL__WA2 * Og * Cg);
            for (int xi = 0; xi < GANTL__WA2; xi++) {
                gantl__operand A = gantl__matrix(u + xi * Og * Cg, Cg, 0);
                gantl__pack_a_all(mem + (g * GANTL__WA2 + xi) * wfloats, &A, Og, Cg);
            }
        }
    }
    GANTL__OMP(parallel for schedule(dynamic, 1) num_threads(threads) if (threads > 1))
    for (int64_t task = 0; task < groups * blocks; task++) {
        int64_t g = task / blocks, row0 = task % blocks * R, rows = N * s.th - row0 < R ? N * s.th - row0 : R;
        int64_t nt = rows * s.tw;
        float *V = work + (int64_t)gantl__thread() * per, *M = V + GANTL__WA2 * (Cg * Tb + GANTL__WINO_SKEW);
        float *buf = M + GANTL__WA2 * (Og * Tb + GANTL__WINO_SKEW);
        gantl__wino_input(V, x, &s, g, row0, rows, buf);
        for (int xi = 0; xi < GANTL__WA2; xi++) { /* M_xi = U_xi @ V_xi */
            gantl__operand A = gantl__matrix(NULL, 0, 0), B = gantl__matrix(V + xi * (Cg * nt + GANTL__WINO_SKEW), nt, 0);
            A.packed = mem + (g * GANTL__WA2 + xi) * wfloats;
            gantl__gemm(M + xi * (Og * nt + GANTL__WINO_SKEW), nt, &A, &B, 1.0f, 1, Og, nt, Cg);
        }
        for (int64_t o = 0; o < Og; o++) gantl__wino_output(y, M, &s, g, o, row0, rows, buf);
    }
}

/* y (N, O, Ho, Wo) = conv2d(x (N, C, H, W), w) for a 3x3 kernel, stride 1, padding pad, by
   Winograd, in the step arena's scratch. */
static void gantl__wino_conv(gantl_ctx *ctx, float *y, const float *x, const float *w, int transposed, int64_t N,
                             int64_t C, int64_t H, int64_t W, int64_t O, int pad, int groups, int64_t Ho, int64_t Wo) {
    gantl__wino s = gantl__wino_shape(N, C, H, W, O, pad, groups, Ho, Wo);
    float *mem = (float *)gantl__scratch(ctx, (size_t)gantl__wino_conv_floats(&s) * sizeof(float));
    if (mem) gantl__wino_conv_run(mem, &s, y, x, w, transposed);
}

/* Thin 1x1 convolutions: stride 1, no padding, one group, and at most GANTL__THIN
   channels in or out (an RGB or grey image's fromrgb and torgb). A GEMM one to four deep
   or high spends its time on tile overhead; these are passes over memory instead, a plane
   at a time and the sums in channel order.
   y (N, O, P) = sum_c w(o, c) x (N, C, P), w(o, c) = w[o * wo + c * wc]. */
#define GANTL__THIN 4
static int gantl__thin(int64_t kh, int64_t kw, int stride, int pad, int groups, int64_t C, int64_t O) {
    return kh == 1 && kw == 1 && stride == 1 && pad == 0 && groups == 1 && (C <= GANTL__THIN || O <= GANTL__THIN);
}
static void gantl__thin_conv(float *y, const float *x, const float *w, int64_t wo, int64_t wc, int64_t N, int64_t C,
                             int64_t O, int64_t P) {
    GANTL__OMP(parallel for schedule(static) if (N * O * P > 32768))
    for (int64_t t = 0; t < N * O; t++) { /* plane (n, o) */
        int64_t n = t / O, o = t % O;
        float *yp = y + t * P, w0 = w[o * wo];
        const float *xn = x + n * C * P;
        GANTL__OMP(simd)
        for (int64_t p = 0; p < P; p++) yp[p] = w0 * xn[p];
        for (int64_t c = 1; c < C; c++) {
            float wv = w[o * wo + c * wc];
            const float *xp = xn + c * P;
            GANTL__OMP(simd)
            for (int64_t p = 0; p < P; p++) yp[p] += wv * xp[p];
        }
    }
}

/* gw (O, C, 1, 1) = sum over n and p of gy (N, O, P) x (N, C, P): the weight gradient of
   a thin 1x1 convolution, one (o, c) per task, each image's sum added in order in double. */
static void gantl__thin_wgrad(float *gw, const float *x, const float *gy, int64_t N, int64_t C, int64_t O, int64_t P) {
    GANTL__OMP(parallel for schedule(static) if (N * O * C * P > 65536))
    for (int64_t t = 0; t < O * C; t++) {
        int64_t o = t / C, c = t % C;
        double total = 0.0;
        for (int64_t n = 0; n < N; n++) {
            const float *g = gy + (n * O + o) * P, *xp = x + (n * C + c) * P;
            float s = 0.0f;
            GANTL__OMP(simd reduction(+ : s))
            for (int64_t p = 0; p < P; p++) s += g[p] * xp[p];
            total += s;
        }
        gw[t] = (float)total;
    }
}

/* y (N, O, Ho, Wo) = conv2d(x (N, C, H, W), w (O, C/g, kh, kw)). */
static void gantl__cpu_conv2d(gantl_ctx *ctx, gantl_tensor *out) {
    const gantl_tensor *x = out->src[0], *w = out->src[1];
    int stride = out->ip[0], pad = out->ip[1], groups = out->ip[2];
    int64_t O = w->shape[0], Og = O / groups, K = w->shape[1] * w->shape[2] * w->shape[3];
    if (gantl__thin(w->shape[2], w->shape[3], stride, pad, groups, x->shape[1], O)) {
        gantl__thin_conv(out->data, x->data, w->data, x->shape[1], 1, x->shape[0], x->shape[1], O,
                         x->shape[2] * x->shape[3]);
        return;
    }
    if (gantl__use_winograd(w->shape[2], w->shape[3], stride, w->shape[1], Og, out->shape[2], out->shape[3])) {
        gantl__wino_conv(ctx, out->data, x->data, w->data, 0, x->shape[0], x->shape[1], x->shape[2], x->shape[3], O,
                         pad, groups, out->shape[2], out->shape[3]);
        return;
    }
    int64_t wfloats = gantl__packed_a_floats(Og, K);
    float *wp = (float *)gantl__scratch(ctx, (size_t)(groups * wfloats) * sizeof(float));
    if (!wp) return;
    GANTL__OMP(parallel for schedule(static) if (groups > 1 && groups * Og * K > 32768))
    for (int g = 0; g < groups; g++) {
        gantl__operand A = gantl__matrix(w->data + g * Og * K, K, 0);
        gantl__pack_a_all(wp + g * wfloats, &A, Og, K);
    }
    gantl__conv_forward(out->data, x->data, wp, wfloats, x->shape[0], x->shape[1], x->shape[2], x->shape[3], O,
                        (int)w->shape[2], (int)w->shape[3], stride, pad, groups, out->shape[2], out->shape[3]);
}

/* y (N, O, Ho, Wo) = conv_transpose2d(x (N, C, H, W), w (C, O/g, kh, kw)), the adjoint of
   conv2d. With stride 1 it is conv2d(x, w') with padding kh - 1 - pad, where
   w'[o, c, ky, kx] = w[c, o, kh-1-ky, kw-1-kx] (per group): the forward path. Otherwise,
   per image and group, col (O/g*kh*kw, H*W) = w_g^T @ x_g, then col2im. A 3x3 kernel at
   stride 1 may take Winograd (gantl__use_winograd), which reads w' from w. */
static void gantl__cpu_conv_transpose2d(gantl_ctx *ctx, gantl_tensor *out) {
    const gantl_tensor *x = out->src[0], *w = out->src[1];
    int stride = out->ip[0], pad = out->ip[1], groups = out->ip[2];
    int64_t N = x->shape[0], C = x->shape[1], H = x->shape[2], W = x->shape[3];
    int64_t O = out->shape[1], kh = w->shape[2], kw = w->shape[3], Ho = out->shape[2], Wo = out->shape[3];
    int64_t Cg = C / groups, Og = O / groups, K = Og * kh * kw, P = H * W;
    if (gantl__thin(kh, kw, stride, pad, groups, C, O) && Ho == H && Wo == W) { /* w (C, O, 1, 1) */
        gantl__thin_conv(out->data, x->data, w->data, 1, O, N, C, O, P);
        return;
    }
    if (pad <= 2 && gantl__use_winograd(kh, kw, stride, Cg, Og, Ho, Wo)) {
        gantl__wino_conv(ctx, out->data, x->data, w->data, 1, N, C, H, W, O, 2 - pad, groups, Ho, Wo);
        return;
    }
    if (stride == 1 && pad <= kh - 1 && pad <= kw - 1 && kh - 1 - pad == kw - 1 - pad) {
        int64_t Kf = Cg * kh * kw, wfloats = gantl__packed_a_floats(Og, Kf);
        float *mem = (float *)gantl__scratch(ctx, (size_t)(groups * wfloats + Og * Kf) * sizeof(float));
        if (!mem) return;
        float *wf = mem + groups * wfloats; /* w' of one group, (O/g, C/g, kh, kw) */
        for (int g = 0; g < groups; g++) { /* (rare: Winograd takes the 3x3 ones) */
            for (int64_t o = 0; o < Og; o++)
                for (int64_t c = 0; c < Cg; c++)
                    for (int64_t t = 0; t < kh * kw; t++)
                        wf[(o * Cg + c) * kh * kw + t] = w->data[((g * Cg + c) * Og + o) * kh * kw + kh * kw - 1 - t];
            gantl__operand A = gantl__matrix(wf, Kf, 0);
            gantl__pack_a_all(mem + g * wfloats, &A, Og, Kf);
        }
        gantl__conv_forward(out->data, x->data, mem, wfloats, N, C, H, W, O, (int)kh, (int)kw, 1,
                            (int)(kh - 1 - pad), groups, Ho, Wo);
        return;
    }
    int threads = gantl__threads_for(2.0 * (double)(N * K * P * C), (double)(1 << 21));
    int64_t wfloats = gantl__packed_a_floats(K, Cg);
    float *mem = (float *)gantl__scratch(ctx, (size_t)(groups * wfloats + threads * K * P) * sizeof(float));
    if (!mem) return;
    GANTL__OMP(parallel for schedule(static) num_threads(threads) if (threads > 1 && groups > 1))
    for (int g = 0; g < groups; g++) { /* w_g^T (O/g*kh*kw, C/g), packed */
        gantl__operand A = gantl__matrix(w->data + g * Cg * K, K, 1);
        gantl__pack_a_all(mem + g * wfloats, &A, K, Cg);
    }
    GANTL__OMP(parallel for schedule(dynamic, 1) num_threads(threads) if (threads > 1))
    for (int64_t task = 0; task < N * groups; task++) {
        int64_t n = task / groups, g = task % groups;
        float *col = mem + groups * wfloats + (int64_t)gantl__thread() * K * P;
        gantl__operand A = gantl__matrix(NULL, 0, 0), B = gantl__matrix(x->data + (n * C + g * Cg) * P, P, 0);
        A.packed = mem + g * wfloats;
        gantl__gemm(col, P, &A, &B, 1.0f, 1, K, P, Cg);
        gantl__col2im(out->data + (n * O + g * Og) * Ho * Wo, col, Og, Ho, Wo, (int)kh, (int)kw, stride, pad, H, W);
    }
}

#define GANTL__WGRAD_CHUNKS 8 /* weight gradients: partial sums, whatever the thread count */

/* gw (O, C/g, 3, 3) = the weight gradient of a 3x3, stride-1 convolution by Winograd, from
   x (N, C, H, W) and gy (N, O, Ho, Wo). The tiles' runs are cut into at most
   GANTL__WGRAD_CHUNKS chunks, each summed in order into its own dU (a task per chunk and
   group), and the chunks are added in order: the same sums for any thread count. */
static void gantl__wino_wgrad(gantl_ctx *ctx, float *gw, const float *x, const float *gy, int64_t N, int64_t C,
                              int64_t H, int64_t W, int64_t O, int pad, int groups, int64_t Ho, int64_t Wo) {
    gantl__wino s = gantl__wino_shape(N, C, H, W, O, pad, groups, Ho, Wo);
    int64_t Cg = s.Cg, Og = s.Og, R = (GANTL__WINO_TILES + s.tw - 1) / s.tw, Tb = R * s.tw;
    int64_t blocks = (N * s.th + R - 1) / R;
    int64_t chunks = blocks < GANTL__WGRAD_CHUNKS ? blocks : GANTL__WGRAD_CHUNKS, du = GANTL__WA2 * Og * Cg;
    int threads = gantl__threads_for(2.0 * (double)(N * O * Ho * Wo * Cg * 9), (double)(1 << 21));
    int64_t per = GANTL__WA2 * ((Cg + Og) * Tb + 2 * GANTL__WINO_SKEW) + GANTL__WINO_BUF(s.tw);
    int64_t fin = (9 + 3 * GANTL__WA) * Cg;
    if (threads > groups * chunks) threads = (int)(groups * chunks);
    float *mem = (float *)gantl__scratch(ctx, (size_t)(groups * chunks * du + threads * (per > fin ? per : fin)) * sizeof(float));
    if (!mem) return;
    float *work = mem + groups * chunks * du;
    GANTL__OMP(parallel for schedule(dynamic, 1) num_threads(threads) if (threads > 1))
    for (int64_t task = 0; task < groups * chunks; task++) {
        int64_t g = task / chunks, chunk = task % chunks;
        float *dU = mem + task * du, *V = work + (int64_t)gantl__thread() * per, *dM = V + GANTL__WA2 * (Cg * Tb + GANTL__WINO_SKEW);
        float *buf = dM + GANTL__WA2 * (Og * Tb + GANTL__WINO_SKEW);
        for (int64_t b = blocks * chunk / chunks; b < blocks * (chunk + 1) / chunks; b++) {
            int64_t row0 = b * R, rows = N * s.th - row0 < R ? N * s.th - row0 : R, nt = rows * s.tw;
            gantl__wino_input(V, x, &s, g, row0, rows, buf);
            for (int64_t o = 0; o < Og; o++) gantl__wino_grad_output(dM, gy, &s, g, o, row0, rows, buf);
            for (int xi = 0; xi < GANTL__WA2; xi++) { /* dU_xi += dM_xi @ V_xi^T */
                gantl__operand A = gantl__matrix(dM + xi * (Og * nt + GANTL__WINO_SKEW), nt, 0);
                gantl__operand B = gantl__matrix(V + xi * (Cg * nt + GANTL__WINO_SKEW), nt, 1);
                gantl__gemm(dU + xi * Og * Cg, Cg, &A, &B, 1.0f, b == blocks * chunk / chunks, Og, Cg, nt);
            }
        }
    }
    int64_t n = groups * du; /* the chunks' sums, in order, into the first chunk's */
    GANTL__OMP(parallel for schedule(static) num_threads(threads) if (threads > 1 && n > 32768))
    for (int64_t i = 0; i < n; i++) {
        int64_t g = i / du, j = i % du;
        float acc = mem[g * chunks * du + j];
        for (int64_t c = 1; c < chunks; c++) acc += mem[(g * chunks + c) * du + j];
        mem[g * chunks * du + j] = acc;
    }
    GANTL__OMP(parallel for schedule(static) num_threads(threads) if (threads > 1))
    for (int64_t task = 0; task < groups * Og; task++) { /* dg = GT dU G, (3x3, C/g) -> (C/g, 3x3) */
        int64_t g = task / Og, o = task % Og;
        float *out = work + (int64_t)gantl__thread() * (per > fin ? per : fin), *tmp = out + 9 * Cg;
        gantl__wino_transform(out, Cg, mem + g * chunks * du + o * Cg, Og * Cg, gantl__wino_g, 1, 3, 3, GANTL__WA, Cg, tmp);
        for (int64_t c = 0; c < Cg; c++)
            for (int k = 0; k < 9; k++) gw[((g * Og + o) * Cg + c) * 9 + k] = out[k * Cg + c];
    }
}

/* gw (O, C/g, kh, kw) = sum_n gy_g (O/g, Ho*Wo) @ im2col(x_g)^T. The images are cut into
   at most GANTL__WGRAD_CHUNKS runs, each summed in order into its own partial gradient
   (a task per run and column slice of gw), and the partials are added in run order: the
   same sums for any thread count. */
static void gantl__cpu_conv2d_wgrad(gantl_ctx *ctx, gantl_tensor *out) {
    const gantl_tensor *x = out->src[0], *gy = out->src[1];
    int stride = out->ip[0], pad = out->ip[1], groups = out->ip[2];
    int64_t N = x->shape[0], C = x->shape[1], H = x->shape[2], W = x->shape[3];
    int64_t O = out->shape[0], kh = out->shape[2], kw = out->shape[3], Ho = gy->shape[2], Wo = gy->shape[3];
    int64_t Cg = C / groups, Og = O / groups, K = Cg * kh * kw, P = Ho * Wo;
    if (gantl__thin(kh, kw, stride, pad, groups, C, O) && Ho == H && Wo == W) {
        gantl__thin_wgrad(out->data, x->data, gy->data, N, C, O, P);
        return;
    }
    /* Winograd's weight gradient runs a task per run of GANTL__WINO_TILES tiles: on outputs
       of one tile (4x4) a batch rarely makes two runs and one thread would do it all, so
       those keep im2col. (The rule does not look at the batch: data-parallel ranks, each with
       a share of it, take the same path as one process.) */
    if (gantl__use_winograd(kh, kw, stride, Cg, Og, Ho, Wo) &&
        (gantl__winograd_mode > 0 || (Ho > GANTL__WM && Wo > GANTL__WM))) {
        gantl__wino_wgrad(ctx, out->data, x->data, gy->data, N, C, H, W, O, pad, groups, Ho, Wo);
        return;
    }
    int threads = gantl__threads_for(2.0 * (double)(N * O * K * P), (double)(1 << 21));
    int64_t chunks = N < GANTL__WGRAD_CHUNKS ? N : GANTL__WGRAD_CHUNKS, units = (K + GANTL__CONV_COLS - 1) / GANTL__CONV_COLS;
    int64_t slices = (2 * threads + chunks - 1) / chunks;
    if (slices > units) slices = units;
    float *parts = chunks > 1 ? (float *)gantl__scratch(ctx, (size_t)((chunks - 1) * out->numel) * sizeof(float)) : NULL;
    if (chunks > 1 && !parts) return;
    GANTL__OMP(parallel for schedule(dynamic, 1) num_threads(threads) if (threads > 1))
    for (int64_t task = 0; task < groups * chunks * slices; task++) {
        int64_t g = task / (chunks * slices), chunk = task / slices % chunks, t = task % slices;
        int64_t j0 = units * t / slices * GANTL__CONV_COLS, j1 = units * (t + 1) / slices * GANTL__CONV_COLS;
        float *gw = (chunk == 0 ? out->data : parts + (chunk - 1) * out->numel) + g * Og * K;
        if (j1 > K) j1 = K;
        for (int64_t n = N * chunk / chunks; n < N * (chunk + 1) / chunks; n++) {
            gantl__im2col v = {x->data + (n * C + g * Cg) * H * W, Cg, H, W, Ho, Wo, (int)kh, (int)kw, stride, pad};
            gantl__operand A = gantl__matrix(gy->data + (n * O + g * Og) * P, P, 0), B = gantl__matrix(NULL, 0, 1);
            B.view = &v, B.col0 = j0;
            gantl__gemm(gw + j0, K, &A, &B, 1.0f, n == N * chunk / chunks, Og, j1 - j0, P);
        }
    }
    if (chunks > 1) {
        int64_t n = out->numel;
        float *y = out->data;
        GANTL__OMP(parallel for schedule(static) num_threads(threads) if (threads > 1 && n > 32768))
        for (int64_t i = 0; i < n; i++) {
            float acc = y[i];
            for (int64_t c = 0; c < chunks - 1; c++) acc += parts[c * n + i];
            y[i] = acc;
        }
    }
}

/* One row of a polyphase FIR: yrow (Wo) += the taps of frow (fw, reversed unless flip)
   applied along xrow (W) with upsampling upx or downsampling downx (one of them 1). Output
   columns ox = ph + m * upx share their first tap (xtab[2 ph]) and its input column
   (xtab[2 ph + 1]); each tap then runs over a whole row, which vectorises. */
static void gantl__fir_row(float *yrow, const float *xrow, const float *frow, int64_t fw, int flip, int64_t W,
                           int64_t Wo, int upx, int downx, const int64_t *xtab) {
    int64_t step = upx, phases = upx < Wo ? upx : Wo, dix = upx > 1 ? 1 : downx; /* input step per m */
    for (int64_t ph = 0; ph < phases; ph++) {
        int64_t tx0 = xtab[2 * ph], ix0 = xtab[2 * ph + 1];
        for (int64_t tx = tx0, j = 0; tx < fw; tx += upx, j++) {
            float fv = frow[flip ? tx : fw - 1 - tx];
            /* ix = ix0 + j + m * dix must lie in [0, W) */
            int64_t base = ix0 + j, mlo = 0, mhi = (Wo - ph + step - 1) / step;
            if (base < 0) mlo = (-base + dix - 1) / dix;
            if (base + (mhi - 1) * dix >= W) mhi = base >= W ? 0 : (W - 1 - base) / dix + 1;
            if (step == 1 && dix == 1) {
                float *y = yrow + ph;
                const float *x = xrow + base;
                GANTL__OMP(simd)
                for (int64_t m = mlo; m < mhi; m++) y[m] += fv * x[m];
            } else
                for (int64_t m = mlo; m < mhi; m++) yrow[ph + m * step] += fv * xrow[base + m * dix];
        }
    }
}

/* upfirdn2d: y[oy, ox] = gain * sum_t f'[t] * u[oy*down + ty - pad_y0, ...] where u is x
   upsampled by zero insertion (u[q] = x[q/up] when up divides q) and f' is f flipped
   (a true convolution) unless flip_filter. Params: up x/y, down x/y, pad x0 x1 y0 y1, flip.
   Polyphase: only the taps that land on input samples are visited. Unless up and down are
   both above 1 along x, an output row is built a filter row and a tap at a time over whole
   rows (gantl__fir_row); every output gets the same sums in the same order either way.
   With up and down at most 2 and a small filter (all of StyleGAN's), a plane is instead
   upsampled with zeros and padded into a buffer (Hp, Wp) and filtered at full rate as one
   long 1-D signal, a tap at a time over all rows at once; the outputs are every down-th
   sample of that. The taps falling on inserted zeros or padding add zeros, so the sums
   are the same; the extra work (up to 4x) costs less than short loops would. */
static void gantl__cpu_upfirdn2d(gantl_ctx *ctx, gantl_tensor *out) {
    const gantl_tensor *x = out->src[0], *f = out->src[1];
    int upx = out->ip[0], upy = out->ip[1], downx = out->ip[2], downy = out->ip[3];
    int px0 = out->ip[4], py0 = out->ip[6], flip = out->ip[8];
    float gain = out->fp[0];
    int64_t NC = x->shape[0] * x->shape[1], H = x->shape[2], W = x->shape[3];
    int64_t Ho = out->shape[2], Wo = out->shape[3], fh = f->shape[0], fw = f->shape[1];
    /* Only the taps that land on an input sample (polyphase): q = o * down + t - pad must be
       a multiple of up inside the input. Per output column: the first such tap and its
       input column (exact divisions), computed once. */
    int64_t *xtab = (int64_t *)gantl__scratch(ctx, (size_t)(2 * Wo + 1) * sizeof(int64_t));
    if (!xtab) return;
    for (int64_t ox = 0; ox < Wo; ox++) {
        int64_t bx = ox * downx - px0, tx0 = ((-bx) % upx + upx) % upx;
        xtab[2 * ox] = tx0, xtab[2 * ox + 1] = (bx + tx0) / upx;
    }
    int by_rows = upx == 1 || downx == 1, plain = upx <= 2 && upy <= 2 && downx <= 2 && downy <= 2;
    int64_t Hp = (Ho - 1) * downy + fh, Wp = (Wo - 1) * downx + fw, nz = (Ho - 1) * downy * Wp + (Wo - 1) * downx + 1;
    int64_t plane = plain ? Hp * Wp + (nz + 31) / 32 * 32 : 0; /* the padded upsampled input, the full-rate output */
    int threads = gantl__threads_for((double)(out->numel * fh * fw), 65536.0);
    float *buf = plain ? (float *)gantl__scratch(ctx, (size_t)(threads * plane) * sizeof(float)) : NULL;
    if (plain && !buf) return;
    float fe[64]; /* the flipped 2-D filter, when it is small: fe[ty * fw + tx], at foff[ty * fw + tx] in xpad */
    int64_t foff[64];
    if (plain && fh * fw <= 64)
        for (int64_t ty = 0; ty < fh; ty++)
            for (int64_t tx = 0; tx < fw; tx++) {
                fe[ty * fw + tx] = f->data[(flip ? ty : fh - 1 - ty) * fw + (flip ? tx : fw - 1 - tx)];
                foff[ty * fw + tx] = ty * Wp + tx;
            }
    else
        plain = 0;
    GANTL__OMP(parallel for schedule(static) num_threads(threads) if (threads > 1))
    for (int64_t nc = 0; nc < NC; nc++) {
        const float *xp = x->data + nc * H * W;
        float *yp = out->data + nc * Ho * Wo;
        if (plain) {
            /* xpad[r, c] = u[r - py0, c - px0], u the input upsampled with zeros;
               z[q] = sum_t fe[t] xpad[q + off(t)], q = row * Wp + column of the full-rate output */
            float *xpad = buf + (int64_t)gantl__thread() * plane, *z = xpad + Hp * Wp;
            memset(xpad, 0, (size_t)(Hp * Wp) * sizeof(float));
            for (int64_t r = 0; r < Hp; r++) {
                int64_t uy = r - py0;
                if (uy < 0 || uy % upy || uy / upy >= H) continue;
                const float *xrow = xp + uy / upy * W;
                float *d = xpad + r * Wp;
                if (upx == 1) {
                    int64_t lo = px0 > 0 ? px0 : 0, hi = W + px0 < Wp ? W + px0 : Wp; /* c in [lo, hi) */
                    if (lo < hi) memcpy(d + lo, xrow + lo - px0, (size_t)(hi - lo) * sizeof(float));
                } else
                    for (int64_t ix = 0; ix < W; ix++) {
                        int64_t c = ix * upx + px0;
                        if (c >= 0 && c < Wp) d[c] = xrow[ix];
                    }
            }
            /* 32 outputs at a time, the taps summed in registers: one store per output (the
               last block reads up to 31 floats past xpad into z, and its extra sums are dropped) */
            for (int64_t q0 = 0; q0 < nz; q0 += 32) {
                float acc[32] = {0};
                for (int64_t t = 0; t < fh * fw; t++) {
                    const float *xs = xpad + q0 + foff[t];
                    float fv = fe[t];
                    GANTL__OMP(simd)
                    for (int i = 0; i < 32; i++) acc[i] += fv * xs[i];
                }
                memcpy(z + q0, acc, sizeof acc);
            }
            for (int64_t oy = 0; oy < Ho; oy++) {
                const float *zr = z + oy * downy * Wp;
                float *yr = yp + oy * Wo;
                if (downx == 1) {
                    GANTL__OMP(simd)
                    for (int64_t ox = 0; ox < Wo; ox++) yr[ox] = zr[ox] * gain;
                } else
                    for (int64_t ox = 0; ox < Wo; ox++) yr[ox] = zr[ox * downx] * gain;
            }
            continue;
        }
        for (int64_t oy = 0; oy < Ho; oy++) {
            int64_t by = oy * downy - py0, ty0 = ((-by) % upy + upy) % upy, iy0 = (by + ty0) / upy;
            float *yrow = yp + oy * Wo;
            if (by_rows) {
                memset(yrow, 0, (size_t)Wo * sizeof(float));
                for (int64_t ty = ty0, iy = iy0; ty < fh && iy < H; ty += upy, iy++)
                    if (iy >= 0)
                        gantl__fir_row(yrow, xp + iy * W, f->data + (flip ? ty : fh - 1 - ty) * fw, fw, flip, W, Wo,
                                       upx, downx, xtab);
                for (int64_t ox = 0; ox < Wo; ox++) yrow[ox] *= gain;
                continue;
            }
            for (int64_t ox = 0; ox < Wo; ox++) {
                float acc = 0.0f;
                int64_t tx0 = xtab[2 * ox], ix0 = xtab[2 * ox + 1], iy = iy0;
                for (int64_t ty = ty0; ty < fh && iy < H; ty += upy, iy++) {
                    if (iy < 0) continue;
                    const float *xrow = xp + iy * W;
                    const float *frow = f->data + (flip ? ty : fh - 1 - ty) * fw;
                    int64_t ix = ix0;
                    for (int64_t tx = tx0; tx < fw && ix < W; tx += upx, ix++)
                        if (ix >= 0) acc += frow[flip ? tx : fw - 1 - tx] * xrow[ix];
                }
                yrow[ox] = acc * gain;
            }
        }
    }
}

/* bias_act: y = clamp(act(x + b[c]) * gain); params act, alpha, gain, clamp (< 0: none). */
static void gantl__cpu_bias_act(gantl_ctx *ctx, gantl_tensor *out) {
    (void)ctx;
    const gantl_tensor *x = out->src[0], *b = out->src[1];
    int act = out->ip[0];
    float alpha = out->fp[0], gain = out->fp[1], clamp = out->fp[2];
    int64_t C = x->ndim >= 2 ? x->shape[1] : 1, inner = x->ndim >= 2 ? x->numel / (x->shape[0] * C) : x->numel;
    int64_t rows = x->numel / (inner ? inner : 1);
    /* a linear activation is lrelu with slope 1, no clamp an infinite one: one branch-free,
       vectorised loop for every case, with the same roundings as the case-by-case rule */
    float slope = act == GANTL_ACT_LRELU ? alpha : 1.0f, hi = clamp >= 0.0f ? clamp : INFINITY;
    GANTL__OMP(parallel for schedule(static) if (x->numel > 32768))
    for (int64_t r = 0; r < rows; r++) {
        float bias = b ? b->data[r % C] : 0.0f;
        const float *xp = x->data + r * inner;
        float *yp = out->data + r * inner;
        GANTL__OMP(simd)
        for (int64_t j = 0; j < inner; j++) {
            float v = xp[j] + bias;
            v = (v < 0.0f ? v * slope : v) * gain;
            yp[j] = v > hi ? hi : (v < -hi ? -hi : v);
        }
    }
}

/* (g, y) -> g * act'(y) * gain, zero where |y| reached the clamp (the official rule). */
static void gantl__cpu_bias_act_grad(gantl_ctx *ctx, gantl_tensor *out) {
    (void)ctx;
    const float *g = out->src[0]->data, *y = out->src[1]->data;
    int act = out->ip[0];
    float alpha = out->fp[0], gain = out->fp[1], clamp = out->fp[2];
    float *gx = out->data, slope = act == GANTL_ACT_LRELU ? alpha : 1.0f; /* branch-free, as in bias_act */
    int64_t n = out->numel, clamped = clamp >= 0.0f;
    GANTL__OMP(parallel for simd schedule(static) if (n > 32768))
    for (int64_t i = 0; i < n; i++) {
        float v = (y[i] > 0.0f ? g[i] : g[i] * slope) * gain;
        gx[i] = !clamped || (y[i] > -clamp && y[i] < clamp) ? v : 0.0f;
    }
}

/* grid_sample as torch.nn.functional.grid_sample(mode='bilinear', padding_mode='zeros',
   align_corners=False): grid (N, Ho, Wo, 2) holds (x, y) in [-1, 1], -1 and 1 being the outer
   edges of the corner pixels; samples outside the image read zeros. The sample position and
   its four weights, as torch's CPU kernel computes them. */
static void gantl__grid_weights(const float *g, int64_t H, int64_t W, int64_t *x0, int64_t *y0, float w[4]) {
    float ix = (g[0] + 1.0f) * ((float)W * 0.5f) - 0.5f, iy = (g[1] + 1.0f) * ((float)H * 0.5f) - 0.5f;
    float fx = floorf(ix), fy = floorf(iy);
    float tx = ix - fx, ty = iy - fy, ex = 1.0f - tx, ey = 1.0f - ty;
    *x0 = (int64_t)fx, *y0 = (int64_t)fy;
    w[0] = ey * ex, w[1] = ey * tx, w[2] = ty * ex, w[3] = ty * tx; /* nw, ne, sw, se */
}

static void gantl__cpu_grid_sample(gantl_ctx *ctx, gantl_tensor *out) {
    (void)ctx;
    const gantl_tensor *x = out->src[0], *grid = out->src[1];
    int64_t N = x->shape[0], C = x->shape[1], H = x->shape[2], W = x->shape[3];
    int64_t Ho = out->shape[2], Wo = out->shape[3];
    GANTL__OMP(parallel for schedule(static) if (out->numel > 32768))
    for (int64_t r = 0; r < N * Ho; r++) {
        int64_t n = r / Ho, oy = r % Ho;
        for (int64_t ox = 0; ox < Wo; ox++) {
            int64_t x0, y0;
            float w[4];
            gantl__grid_weights(grid->data + ((n * Ho + oy) * Wo + ox) * 2, H, W, &x0, &y0, w);
            int in_x0 = x0 >= 0 && x0 < W, in_x1 = x0 + 1 >= 0 && x0 + 1 < W;
            int in_y0 = y0 >= 0 && y0 < H, in_y1 = y0 + 1 >= 0 && y0 + 1 < H;
            for (int64_t c = 0; c < C; c++) {
                const float *xp = x->data + (n * C + c) * H * W;
                float v00 = in_y0 && in_x0 ? xp[y0 * W + x0] : 0.0f, v01 = in_y0 && in_x1 ? xp[y0 * W + x0 + 1] : 0.0f;
                float v10 = in_y1 && in_x0 ? xp[(y0 + 1) * W + x0] : 0.0f;
                float v11 = in_y1 && in_x1 ? xp[(y0 + 1) * W + x0 + 1] : 0.0f;
                out->data[((n * C + c) * Ho + oy) * Wo + ox] = v00 * w[0] + v01 * w[1] + v10 * w[2] + v11 * w[3];
            }
        }
    }
}

/* The adjoint of grid_sample: each gradient value gy (N, C, Ho, Wo) is added to the four
   input pixels it was interpolated from, with the same weights. One (n, c) plane per
   iteration, so no two threads write the same pixel. */
static void gantl__cpu_grid_sample_adj(gantl_ctx *ctx, gantl_tensor *out) {
    (void)ctx;
    const gantl_tensor *gy = out->src[0], *grid = out->src[1];
    int64_t N = out->shape[0], C = out->shape[1], H = out->shape[2], W = out->shape[3];
    int64_t Ho = gy->shape[2], Wo = gy->shape[3];
    GANTL__OMP(parallel for schedule(static) if (gy->numel > 32768))
    for (int64_t nc = 0; nc < N * C; nc++) {
        int64_t n = nc / C;
        float *xp = out->data + nc * H * W;
        const float *gp = gy->data + nc * Ho * Wo;
        memset(xp, 0, (size_t)(H * W) * sizeof(float));
        for (int64_t o = 0; o < Ho * Wo; o++) {
            int64_t x0, y0;
            float w[4], g = gp[o];
            gantl__grid_weights(grid->data + (n * Ho * Wo + o) * 2, H, W, &x0, &y0, w);
            for (int k = 0; k < 4; k++) {
                int64_t yy = y0 + (k >> 1), xx = x0 + (k & 1);
                if (yy >= 0 && yy < H && xx >= 0 && xx < W) xp[yy * W + xx] += g * w[k];
            }
        }
    }
}

/* Reflection without repeating the edge, as F.pad(mode='reflect'): index i of a padded
   axis reads input index |i - p0| folded back at n - 1 (padding < n). */
static int64_t gantl__reflect(int64_t i, int64_t n) {
    if (i < 0) i = -i;
    if (i >= n) i = 2 * (n - 1) - i;
    return i;
}

static void gantl__cpu_pad_reflect(gantl_ctx *ctx, gantl_tensor *out) {
    (void)ctx;
    const gantl_tensor *x = out->src[0];
    int64_t NC = x->shape[0] * x->shape[1], H = x->shape[2], W = x->shape[3], Ho = out->shape[2], Wo = out->shape[3];
    int px0 = out->ip[0], py0 = out->ip[2];
    GANTL__OMP(parallel for schedule(static) if (out->numel > 32768))
    for (int64_t r = 0; r < NC * Ho; r++) {
        int64_t nc = r / Ho, oy = r % Ho;
        const float *xrow = x->data + (nc * H + gantl__reflect(oy - py0, H)) * W;
        float *yrow = out->data + r * Wo;
        for (int64_t ox = 0; ox < px0; ox++) yrow[ox] = xrow[gantl__reflect(ox - px0, W)];
        memcpy(yrow + px0, xrow, (size_t)W * sizeof(float));
        for (int64_t ox = px0 + W; ox < Wo; ox++) yrow[ox] = xrow[gantl__reflect(ox - px0, W)];
    }
}

/* The adjoint of pad_reflect: every padded pixel's value is added to the pixel it copied. */
static void gantl__cpu_pad_reflect_adj(gantl_ctx *ctx, gantl_tensor *out) {
    (void)ctx;
    const gantl_tensor *gy = out->src[0];
    int64_t NC = out->shape[0] * out->shape[1], H = out->shape[2], W = out->shape[3];
    int64_t Hp = gy->shape[2], Wp = gy->shape[3];
    int px0 = out->ip[0], py0 = out->ip[2];
    GANTL__OMP(parallel for schedule(static) if (gy->numel > 32768))
    for (int64_t nc = 0; nc < NC; nc++) {
        float *xp = out->data + nc * H * W;
        const float *gp = gy->data + nc * Hp * Wp;
        for (int64_t iy = 0; iy < H; iy++) memcpy(xp + iy * W, gp + (iy + py0) * Wp + px0, (size_t)W * sizeof(float));
        for (int64_t oy = 0; oy < Hp; oy++) {
            int64_t iy = gantl__reflect(oy - py0, H);
            int inside_y = oy - py0 >= 0 && oy - py0 < H;
            for (int64_t ox = 0; ox < Wp; ox++) {
                if (inside_y && ox >= px0 && ox < px0 + W) continue; /* copied above */
                xp[iy * W + gantl__reflect(ox - px0, W)] += gp[oy * Wp + ox];
            }
        }
    }
}

/* ---------------------------------------------------------------------------------------
   4b. The op table: names, input counts, the CPU backend and the registered backends.
   ------------------------------------------------------------------------------------- */

static const char *const gantl__op_names[GANTL_OP_COUNT] = {
#define GANTL__OP_NAME(e, n, k) #n,
    GANTL_OP_TABLE(GANTL__OP_NAME)
#undef GANTL__OP_NAME
};

static const int gantl__op_inputs[GANTL_OP_COUNT] = {
#define GANTL__OP_INPUTS(e, n, k) k,
    GANTL_OP_TABLE(GANTL__OP_INPUTS)
#undef GANTL__OP_INPUTS
};

/* The CPU's memory is host memory and its flat-buffer loops are in section 6: no hooks. */
static const gantl_backend gantl__cpu_backend = {
    "cpu",
    {
#define GANTL__OP_CPU(e, n, k) gantl__cpu_##n,
        GANTL_OP_TABLE(GANTL__OP_CPU)
#undef GANTL__OP_CPU
    },
    NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
};

static const gantl_backend *gantl__backends[GANTL_DEVICE_COUNT] = {&gantl__cpu_backend, NULL};

static const gantl_backend *gantl__device_backend(int device) {
    return device >= 0 && device < GANTL_DEVICE_COUNT ? gantl__backends[device] : NULL;
}

/* The backend of a device other than the CPU whose hook the caller needs: a programmer
   error if there is none (a set or tensor cannot be on a device without its backend). */
static const gantl_backend *gantl__device_hooks(int device, const char *op) {
    const gantl_backend *be = gantl__device_backend(device);
    GANTL__CHECK(be && be->alloc && be->free && be->synchronize && be->copy && be->fill && be->add && be->lerp &&
                     be->nan_to_num && be->adam && be->sgd,
                 "%s: device %d has no backend with memory and vector kernels", op, device);
    return be;
}

GANTLDEF const char *gantl_op_name(int op) {
    return op >= 0 && op < GANTL_OP_COUNT ? gantl__op_names[op] : "invalid op";
}
GANTLDEF int gantl_op_num_inputs(int op) { return op >= 0 && op < GANTL_OP_COUNT ? gantl__op_inputs[op] : -1; }
GANTLDEF void gantl_register_backend(gantl_device device, const gantl_backend *backend) {
    GANTL__CHECK(device >= 0 && device < GANTL_DEVICE_COUNT, "gantl_register_backend: bad device %d", (int)device);
    gantl__backends[device] = backend;
}
GANTLDEF const gantl_backend *gantl_get_backend(gantl_device device) {
    return device >= 0 && device < GANTL_DEVICE_COUNT ? gantl__backends[device] : NULL;
}

/* ---------------------------------------------------------------------------------------
   4c. Op constructors: check shapes, make the node, run the kernel.
   ------------------------------------------------------------------------------------- */

/* A node for op with inputs a, b, c (NULL where unused) and a fresh output buffer. It
   requires grad when recording is on and any input requires grad. */
static gantl_tensor *gantl__node(gantl_ctx *ctx, gantl_op op, int ndim, const int64_t *shape, gantl_tensor *a,
                                 gantl_tensor *b, gantl_tensor *c, int with_data) {
    gantl_tensor *src[GANTL_MAX_SRC] = {a, b, c};
    gantl_tensor *t = gantl__tensor_on(ctx, ndim, shape, with_data, a->device); /* the output's data on a's device */
    if (!t) return NULL;
    t->op = op;
    for (int i = 0; i < GANTL_MAX_SRC; i++) {
        t->src[i] = src[i];
        if (!src[i]) continue;
        GANTL__CHECK(src[i]->device == a->device, "%s: input %d is on device %d, input 0 on device %d",
                     gantl_op_name(op), i, src[i]->device, a->device);
        if (ctx->grad_enabled && (src[i]->flags & GANTL_FLAG_REQUIRES_GRAD)) t->flags |= GANTL_FLAG_REQUIRES_GRAD;
    }
    return t;
}

/* Runs the node's kernel on its device. */
static gantl_tensor *gantl__run(gantl_ctx *ctx, gantl_tensor *t) {
    if (!t) return NULL;
    const gantl_backend *be = gantl__backends[t->device];
    GANTL__CHECK(be && be->forward[t->op], "%s: no kernel for device %d", gantl_op_name(t->op), t->device);
    be->forward[t->op](ctx, t);
    return ctx->status == GANTL_OK ? t : NULL;
}

static int gantl__axis(int axis, int ndim, const char *op) {
    int a = axis < 0 ? axis + ndim : axis;
    GANTL__CHECK(a >= 0 && a < ndim, "%s: axis %d out of range for a %d-D tensor", op, axis, ndim);
    return a;
}

/* ---- elementwise ---- */

static gantl_tensor *gantl__binary(gantl_ctx *ctx, gantl_op op, gantl_tensor *a, gantl_tensor *b) {
    if (!a || !b) return NULL;
    int nd = a->ndim > b->ndim ? a->ndim : b->ndim;
    int64_t shape[GANTL_MAX_DIMS];
    for (int d = 0; d < nd; d++) {
        int da = d - (nd - a->ndim), db = d - (nd - b->ndim);
        int64_t sa = da >= 0 ? a->shape[da] : 1, sb = db >= 0 ? b->shape[db] : 1;
        GANTL__CHECK(sa == sb || sa == 1 || sb == 1, "%s: shapes %s and %s do not broadcast", gantl_op_name(op),
                     GANTL__SHP(a), GANTL__SHP(b));
        shape[d] = sa == 1 ? sb : sa;
    }
    return gantl__run(ctx, gantl__node(ctx, op, nd, shape, a, b, NULL, 1));
}

GANTLDEF gantl_tensor *gantl_add(gantl_ctx *ctx, gantl_tensor *a, gantl_tensor *b) {
    return gantl__binary(ctx, GANTL_OP_ADD, a, b);
}
GANTLDEF gantl_tensor *gantl_sub(gantl_ctx *ctx, gantl_tensor *a, gantl_tensor *b) {
    return gantl__binary(ctx, GANTL_OP_SUB, a, b);
}
GANTLDEF gantl_tensor *gantl_mul(gantl_ctx *ctx, gantl_tensor *a, gantl_tensor *b) {
    return gantl__binary(ctx, GANTL_OP_MUL, a, b);
}
GANTLDEF gantl_tensor *gantl_div(gantl_ctx *ctx, gantl_tensor *a, gantl_tensor *b) {
    return gantl__binary(ctx, GANTL_OP_DIV, a, b);
}

static gantl_tensor *gantl__unary(gantl_ctx *ctx, gantl_op op, gantl_tensor *x, float p0, float p1) {
    if (!x) return NULL;
    gantl_tensor *t = gantl__node(ctx, op, x->ndim, x->shape, x, NULL, NULL, 1);
    if (t) t->fp[0] = p0, t->fp[1] = p1;
    return gantl__run(ctx, t);
}

GANTLDEF gantl_tensor *gantl_affine(gantl_ctx *ctx, gantl_tensor *x, float scale, float shift) {
    return gantl__unary(ctx, GANTL_OP_SCALE, x, scale, shift);
}
GANTLDEF gantl_tensor *gantl_scale(gantl_ctx *ctx, gantl_tensor *x, float scale) {
    return gantl__unary(ctx, GANTL_OP_SCALE, x, scale, 0.0f);
}
GANTLDEF gantl_tensor *gantl_add_scalar(gantl_ctx *ctx, gantl_tensor *x, float value) {
    return gantl__unary(ctx, GANTL_OP_SCALE, x, 1.0f, value);
}
GANTLDEF gantl_tensor *gantl_neg(gantl_ctx *ctx, gantl_tensor *x) { return gantl__unary(ctx, GANTL_OP_SCALE, x, -1.0f, 0.0f); }
GANTLDEF gantl_tensor *gantl_exp(gantl_ctx *ctx, gantl_tensor *x) { return gantl__unary(ctx, GANTL_OP_EXP, x, 0, 0); }
GANTLDEF gantl_tensor *gantl_log(gantl_ctx *ctx, gantl_tensor *x) { return gantl__unary(ctx, GANTL_OP_LOG, x, 0, 0); }
GANTLDEF gantl_tensor *gantl_sqrt(gantl_ctx *ctx, gantl_tensor *x) { return gantl__unary(ctx, GANTL_OP_SQRT, x, 0, 0); }
GANTLDEF gantl_tensor *gantl_rsqrt(gantl_ctx *ctx, gantl_tensor *x) { return gantl__unary(ctx, GANTL_OP_RSQRT, x, 0, 0); }
GANTLDEF gantl_tensor *gantl_square(gantl_ctx *ctx, gantl_tensor *x) { return gantl__unary(ctx, GANTL_OP_SQUARE, x, 0, 0); }
GANTLDEF gantl_tensor *gantl_pow(gantl_ctx *ctx, gantl_tensor *x, float exponent) {
    return gantl__unary(ctx, GANTL_OP_POW, x, exponent, 0);
}
GANTLDEF gantl_tensor *gantl_abs(gantl_ctx *ctx, gantl_tensor *x) { return gantl__unary(ctx, GANTL_OP_ABS, x, 0, 0); }
GANTLDEF gantl_tensor *gantl_sign(gantl_ctx *ctx, gantl_tensor *x) { return gantl__unary(ctx, GANTL_OP_SIGN, x, 0, 0); }
GANTLDEF gantl_tensor *gantl_softplus(gantl_ctx *ctx, gantl_tensor *x) {
    return gantl__unary(ctx, GANTL_OP_SOFTPLUS, x, 0, 0);
}
GANTLDEF gantl_tensor *gantl_sigmoid(gantl_ctx *ctx, gantl_tensor *x) {
    return gantl__unary(ctx, GANTL_OP_SIGMOID, x, 0, 0);
}
GANTLDEF gantl_tensor *gantl_relu(gantl_ctx *ctx, gantl_tensor *x) { return gantl__unary(ctx, GANTL_OP_LRELU, x, 0, 0); }
GANTLDEF gantl_tensor *gantl_leaky_relu(gantl_ctx *ctx, gantl_tensor *x, float alpha) {
    return gantl__unary(ctx, GANTL_OP_LRELU, x, alpha, 0);
}

static gantl_tensor *gantl__lrelu_grad(gantl_ctx *ctx, gantl_tensor *g, gantl_tensor *x, float alpha) {
    if (!g || !x) return NULL;
    GANTL__CHECK(gantl_same_shape(g, x), "lrelu_grad: gradient %s and input %s differ", GANTL__SHP(g), GANTL__SHP(x));
    gantl_tensor *t = gantl__node(ctx, GANTL_OP_LRELU_GRAD, x->ndim, x->shape, g, x, NULL, 1);
    if (t) t->fp[0] = alpha;
    return gantl__run(ctx, t);
}

/* ---- reductions and broadcasting ---- */

/* Sum over the axes in mask, keeping them as size 1. */
static gantl_tensor *gantl__sum_keep(gantl_ctx *ctx, gantl_tensor *x, unsigned mask) {
    if (!x) return NULL;
    int64_t shape[GANTL_MAX_DIMS];
    for (int d = 0; d < x->ndim; d++) shape[d] = (mask >> d) & 1 ? 1 : x->shape[d];
    gantl_tensor *t = gantl__node(ctx, GANTL_OP_SUM, x->ndim, shape, x, NULL, NULL, 1);
    if (t) t->ip[0] = (int32_t)mask;
    return gantl__run(ctx, t);
}

static unsigned gantl__axes_mask(const gantl_tensor *x, int naxes, const int *axes, const char *op) {
    unsigned mask = 0;
    if (naxes == 0) return (1u << x->ndim) - 1u;
    for (int i = 0; i < naxes; i++) mask |= 1u << gantl__axis(axes[i], x->ndim, op);
    return mask;
}

static gantl_tensor *gantl__drop_axes(gantl_ctx *ctx, gantl_tensor *t, unsigned mask) {
    if (!t) return NULL;
    int64_t shape[GANTL_MAX_DIMS];
    int nd = 0;
    for (int d = 0; d < t->ndim; d++)
        if (!((mask >> d) & 1)) shape[nd++] = t->shape[d];
    return gantl_reshape(ctx, t, nd, shape);
}

GANTLDEF gantl_tensor *gantl_sum(gantl_ctx *ctx, gantl_tensor *x, int naxes, const int *axes, int keepdim) {
    if (!x) return NULL;
    unsigned mask = gantl__axes_mask(x, naxes, axes, "sum");
    gantl_tensor *t = gantl__sum_keep(ctx, x, mask);
    return keepdim ? t : gantl__drop_axes(ctx, t, mask);
}

GANTLDEF gantl_tensor *gantl_mean(gantl_ctx *ctx, gantl_tensor *x, int naxes, const int *axes, int keepdim) {
    if (!x) return NULL;
    unsigned mask = gantl__axes_mask(x, naxes, axes, "mean");
    int64_t count = 1;
    for (int d = 0; d < x->ndim; d++)
        if ((mask >> d) & 1) count *= x->shape[d];
    return gantl_scale(ctx, gantl_sum(ctx, x, naxes, axes, keepdim), 1.0f / (float)(count ? count : 1));
}

GANTLDEF gantl_tensor *gantl_sum_all(gantl_ctx *ctx, gantl_tensor *x) { return gantl_sum(ctx, x, 0, NULL, 0); }
GANTLDEF gantl_tensor *gantl_mean_all(gantl_ctx *ctx, gantl_tensor *x) { return gantl_mean(ctx, x, 0, NULL, 0); }

GANTLDEF gantl_tensor *gantl_expand(gantl_ctx *ctx, gantl_tensor *x, int ndim, const int64_t *shape) {
    if (!x) return NULL;
    GANTL__CHECK(ndim >= x->ndim && ndim <= GANTL_MAX_DIMS, "expand: cannot expand %s to %d axes", GANTL__SHP(x), ndim);
    if (x->ndim < ndim) { /* prepend size-1 axes */
        int64_t s[GANTL_MAX_DIMS];
        for (int d = 0; d < ndim; d++) s[d] = d < ndim - x->ndim ? 1 : x->shape[d - (ndim - x->ndim)];
        x = gantl_reshape(ctx, x, ndim, s);
        if (!x) return NULL;
    }
    int same = 1;
    for (int d = 0; d < ndim; d++) {
        GANTL__CHECK(x->shape[d] == shape[d] || x->shape[d] == 1, "expand: %s cannot be expanded: axis %d to %lld",
                     GANTL__SHP(x), d, (long long)shape[d]);
        same &= x->shape[d] == shape[d];
    }
    if (same) return x;
    return gantl__run(ctx, gantl__node(ctx, GANTL_OP_EXPAND, ndim, shape, x, NULL, NULL, 1));
}

GANTLDEF gantl_tensor *gantl_sum_to(gantl_ctx *ctx, gantl_tensor *x, int ndim, const int64_t *shape) {
    if (!x) return NULL;
    GANTL__CHECK(ndim <= x->ndim, "sum_to: cannot sum %s to %d axes", GANTL__SHP(x), ndim);
    int lead = x->ndim - ndim;
    unsigned mask = 0;
    for (int d = 0; d < x->ndim; d++) {
        if (d < lead) {
            mask |= 1u << d;
            continue;
        }
        int64_t want = shape[d - lead];
        GANTL__CHECK(want == x->shape[d] || want == 1, "sum_to: %s cannot be summed to axis %d of size %lld",
                     GANTL__SHP(x), d - lead, (long long)want);
        if (want == 1 && x->shape[d] != 1) mask |= 1u << d;
    }
    if (!mask) return x->ndim == ndim ? x : gantl_reshape(ctx, x, ndim, shape);
    return gantl_reshape(ctx, gantl__sum_keep(ctx, x, mask), ndim, shape);
}

/* ---- shape ops ---- */

GANTLDEF gantl_tensor *gantl_reshape(gantl_ctx *ctx, gantl_tensor *x, int ndim, const int64_t *shape) {
    if (!x) return NULL;
    GANTL__CHECK(ndim >= 0 && ndim <= GANTL_MAX_DIMS, "reshape: %d axes", ndim);
    int64_t s[GANTL_MAX_DIMS], known = 1;
    int infer = -1;
    for (int d = 0; d < ndim; d++) {
        s[d] = shape[d];
        if (s[d] == -1) {
            GANTL__CHECK(infer < 0, "reshape: more than one -1 in the new shape of %s", GANTL__SHP(x));
            infer = d;
        } else
            known *= s[d];
    }
    if (infer >= 0) {
        GANTL__CHECK(known > 0 && x->numel % known == 0, "reshape: cannot infer the -1 axis for %s", GANTL__SHP(x));
        s[infer] = x->numel / known;
    }
    GANTL__CHECK(gantl__numel(ndim, s) == x->numel, "reshape: %s has %lld elements, the new shape %lld",
                 GANTL__SHP(x), (long long)x->numel, (long long)gantl__numel(ndim, s));
    gantl_tensor *t = gantl__node(ctx, GANTL_OP_RESHAPE, ndim, s, x, NULL, NULL, 0);
    if (t) t->data = x->data;
    return gantl__run(ctx, t);
}

GANTLDEF gantl_tensor *gantl_permute(gantl_ctx *ctx, gantl_tensor *x, const int *perm) {
    if (!x) return NULL;
    int64_t shape[GANTL_MAX_DIMS];
    unsigned seen = 0;
    for (int d = 0; d < x->ndim; d++) {
        GANTL__CHECK(perm[d] >= 0 && perm[d] < x->ndim && !((seen >> perm[d]) & 1),
                     "permute: not a permutation of the axes of %s", GANTL__SHP(x));
        seen |= 1u << perm[d];
        shape[d] = x->shape[perm[d]];
    }
    gantl_tensor *t = gantl__node(ctx, GANTL_OP_PERMUTE, x->ndim, shape, x, NULL, NULL, 1);
    if (t)
        for (int d = 0; d < x->ndim; d++) t->ip[d] = perm[d];
    return gantl__run(ctx, t);
}

GANTLDEF gantl_tensor *gantl_transpose(gantl_ctx *ctx, gantl_tensor *x, int axis0, int axis1) {
    if (!x) return NULL;
    int perm[GANTL_MAX_DIMS];
    int a0 = gantl__axis(axis0, x->ndim, "transpose"), a1 = gantl__axis(axis1, x->ndim, "transpose");
    for (int d = 0; d < x->ndim; d++) perm[d] = d;
    perm[a0] = a1;
    perm[a1] = a0;
    return gantl_permute(ctx, x, perm);
}

GANTLDEF gantl_tensor *gantl_slice(gantl_ctx *ctx, gantl_tensor *x, int axis, int64_t start, int64_t end) {
    if (!x) return NULL;
    int a = gantl__axis(axis, x->ndim, "slice");
    GANTL__CHECK(0 <= start && start <= end && end <= x->shape[a], "slice: [%lld, %lld) outside axis %d of %s",
                 (long long)start, (long long)end, a, GANTL__SHP(x));
    int64_t shape[GANTL_MAX_DIMS];
    memcpy(shape, x->shape, sizeof shape);
    shape[a] = end - start;
    gantl_tensor *t = gantl__node(ctx, GANTL_OP_SLICE, x->ndim, shape, x, NULL, NULL, 1);
    if (t) t->ip[0] = a, t->ip[1] = (int32_t)start, t->ip[2] = (int32_t)end;
    return gantl__run(ctx, t);
}

GANTLDEF gantl_tensor *gantl_pad(gantl_ctx *ctx, gantl_tensor *x, int axis, int64_t before, int64_t after) {
    if (!x) return NULL;
    int a = gantl__axis(axis, x->ndim, "pad");
    GANTL__CHECK(before >= 0 && after >= 0, "pad: negative padding %lld, %lld (use slice)", (long long)before,
                 (long long)after);
    int64_t shape[GANTL_MAX_DIMS];
    memcpy(shape, x->shape, sizeof shape);
    shape[a] += before + after;
    gantl_tensor *t = gantl__node(ctx, GANTL_OP_PAD, x->ndim, shape, x, NULL, NULL, 1);
    if (t) t->ip[0] = a, t->ip[1] = (int32_t)before, t->ip[2] = (int32_t)after;
    return gantl__run(ctx, t);
}

GANTLDEF gantl_tensor *gantl_concat(gantl_ctx *ctx, gantl_tensor *a, gantl_tensor *b, int axis) {
    if (!a || !b) return NULL;
    int ax = gantl__axis(axis, a->ndim, "concat");
    GANTL__CHECK(a->ndim == b->ndim, "concat: %s and %s differ in rank", GANTL__SHP(a), GANTL__SHP(b));
    for (int d = 0; d < a->ndim; d++)
        GANTL__CHECK(d == ax || a->shape[d] == b->shape[d], "concat: %s and %s differ outside axis %d", GANTL__SHP(a),
                     GANTL__SHP(b), ax);
    int64_t shape[GANTL_MAX_DIMS];
    memcpy(shape, a->shape, sizeof shape);
    shape[ax] += b->shape[ax];
    gantl_tensor *t = gantl__node(ctx, GANTL_OP_CONCAT, a->ndim, shape, a, b, NULL, 1);
    if (t) t->ip[0] = ax;
    return gantl__run(ctx, t);
}

GANTLDEF gantl_tensor *gantl_repeat(gantl_ctx *ctx, gantl_tensor *x, int ndim, const int64_t *reps) {
    if (!x) return NULL;
    GANTL__CHECK(ndim >= x->ndim && ndim <= GANTL_MAX_DIMS, "repeat: %d repeats for %s", ndim, GANTL__SHP(x));
    if (x->ndim < ndim) {
        int64_t s[GANTL_MAX_DIMS];
        for (int d = 0; d < ndim; d++) s[d] = d < ndim - x->ndim ? 1 : x->shape[d - (ndim - x->ndim)];
        x = gantl_reshape(ctx, x, ndim, s);
        if (!x) return NULL;
    }
    int64_t shape[GANTL_MAX_DIMS];
    for (int d = 0; d < ndim; d++) {
        GANTL__CHECK(reps[d] >= 1, "repeat: repeat count %lld for axis %d", (long long)reps[d], d);
        shape[d] = x->shape[d] * reps[d];
    }
    gantl_tensor *t = gantl__node(ctx, GANTL_OP_REPEAT, ndim, shape, x, NULL, NULL, 1);
    if (t)
        for (int d = 0; d < GANTL_MAX_DIMS; d++) t->ip[d] = d < ndim ? (int32_t)reps[d] : 1;
    return gantl__run(ctx, t);
}

/* The sum of the reps tiles of x: the backward of repeat. */
static gantl_tensor *gantl__repeat_sum(gantl_ctx *ctx, gantl_tensor *x, const int32_t *reps) {
    if (!x) return NULL;
    int64_t shape[GANTL_MAX_DIMS];
    for (int d = 0; d < x->ndim; d++) {
        GANTL__CHECK(x->shape[d] % reps[d] == 0, "repeat_sum: axis %d of %s is not %d tiles", d, GANTL__SHP(x),
                     reps[d]);
        shape[d] = x->shape[d] / reps[d];
    }
    gantl_tensor *t = gantl__node(ctx, GANTL_OP_REPEAT_SUM, x->ndim, shape, x, NULL, NULL, 1);
    if (t)
        for (int d = 0; d < GANTL_MAX_DIMS; d++) t->ip[d] = reps[d];
    return gantl__run(ctx, t);
}

/* ---- matrix products ---- */

GANTLDEF gantl_tensor *gantl_matmul(gantl_ctx *ctx, gantl_tensor *a, gantl_tensor *b, int transpose_a, int transpose_b) {
    if (!a || !b) return NULL;
    GANTL__CHECK(a->ndim >= 2 && b->ndim >= 2, "matmul: inputs %s and %s must be at least 2-D", GANTL__SHP(a),
                 GANTL__SHP(b));
    int64_t m = a->shape[a->ndim - (transpose_a ? 1 : 2)], k = a->shape[a->ndim - (transpose_a ? 2 : 1)];
    int64_t kb = b->shape[b->ndim - (transpose_b ? 1 : 2)], n = b->shape[b->ndim - (transpose_b ? 2 : 1)];
    GANTL__CHECK(k == kb, "matmul: inner sizes differ: %s%s @ %s%s", GANTL__SHP(a), transpose_a ? "^T" : "",
                 GANTL__SHP(b), transpose_b ? "^T" : "");
    const gantl_tensor *batched = a->ndim >= b->ndim ? a : b;
    if (a->ndim > 2 && b->ndim > 2) {
        int same = a->ndim == b->ndim;
        for (int d = 0; same && d < a->ndim - 2; d++) same = a->shape[d] == b->shape[d];
        GANTL__CHECK(same, "matmul: batch axes of %s and %s differ", GANTL__SHP(a), GANTL__SHP(b));
    }
    int64_t shape[GANTL_MAX_DIMS];
    int nd = batched->ndim;
    for (int d = 0; d < nd - 2; d++) shape[d] = batched->shape[d];
    shape[nd - 2] = m;
    shape[nd - 1] = n;
    gantl_tensor *t = gantl__node(ctx, GANTL_OP_MATMUL, nd, shape, a, b, NULL, 1);
    if (t) t->ip[0] = transpose_a != 0, t->ip[1] = transpose_b != 0;
    return gantl__run(ctx, t);
}

GANTLDEF gantl_tensor *gantl_linear(gantl_ctx *ctx, gantl_tensor *x, gantl_tensor *w, gantl_tensor *b) {
    if (!x || !w) return NULL;
    GANTL__CHECK(w->ndim == 2 && x->shape[x->ndim - 1] == w->shape[1], "linear: input %s does not fit weight %s",
                 GANTL__SHP(x), GANTL__SHP(w));
    GANTL__CHECK(!b || (b->ndim == 1 && b->shape[0] == w->shape[0]), "linear: bias %s does not fit weight %s",
                 GANTL__SHP(b), GANTL__SHP(w));
    gantl_tensor *y = gantl_matmul(ctx, x, w, 0, 1);
    return b ? gantl_add(ctx, y, b) : y;
}

/* ---- convolutions ---- */

static int64_t gantl__conv_out(int64_t in, int64_t k, int stride, int pad) { return (in + 2 * pad - k) / stride + 1; }

GANTLDEF gantl_tensor *gantl_conv2d(gantl_ctx *ctx, gantl_tensor *x, gantl_tensor *w, int stride, int padding, int groups) {
    if (!x || !w) return NULL;
    GANTL__CHECK(x->ndim == 4 && w->ndim == 4, "conv2d: input %s and weight %s must be 4-D", GANTL__SHP(x),
                 GANTL__SHP(w));
    GANTL__CHECK(stride >= 1 && padding >= 0 && groups >= 1, "conv2d: stride %d, padding %d, groups %d", stride,
                 padding, groups);
    GANTL__CHECK(x->shape[1] == w->shape[1] * groups && w->shape[0] % groups == 0,
                 "conv2d: input %s, weight %s and groups %d do not fit", GANTL__SHP(x), GANTL__SHP(w), groups);
    int64_t ho = gantl__conv_out(x->shape[2], w->shape[2], stride, padding);
    int64_t wo = gantl__conv_out(x->shape[3], w->shape[3], stride, padding);
    GANTL__CHECK(x->shape[2] + 2 * padding >= w->shape[2] && x->shape[3] + 2 * padding >= w->shape[3],
                 "conv2d: kernel %s larger than padded input %s", GANTL__SHP(w), GANTL__SHP(x));
    int64_t shape[4] = {x->shape[0], w->shape[0], ho, wo};
    gantl_tensor *t = gantl__node(ctx, GANTL_OP_CONV2D, 4, shape, x, w, NULL, 1);
    if (t) t->ip[0] = stride, t->ip[1] = padding, t->ip[2] = groups;
    return gantl__run(ctx, t);
}

/* conv_transpose2d with an explicit output size (ho, wo): conv2d of that size must give x's. */
static gantl_tensor *gantl__conv_transpose2d(gantl_ctx *ctx, gantl_tensor *x, gantl_tensor *w, int stride, int padding,
                                             int groups, int64_t ho, int64_t wo) {
    if (!x || !w) return NULL;
    GANTL__CHECK(x->ndim == 4 && w->ndim == 4, "conv_transpose2d: input %s and weight %s must be 4-D", GANTL__SHP(x),
                 GANTL__SHP(w));
    GANTL__CHECK(stride >= 1 && padding >= 0 && groups >= 1, "conv_transpose2d: stride %d, padding %d, groups %d",
                 stride, padding, groups);
    GANTL__CHECK(x->shape[1] == w->shape[0] && w->shape[0] % groups == 0,
                 "conv_transpose2d: input %s, weight %s and groups %d do not fit", GANTL__SHP(x), GANTL__SHP(w), groups);
    GANTL__CHECK(ho + 2 * padding >= w->shape[2] && wo + 2 * padding >= w->shape[3] &&
                     gantl__conv_out(ho, w->shape[2], stride, padding) == x->shape[2] &&
                     gantl__conv_out(wo, w->shape[3], stride, padding) == x->shape[3],
                 "conv_transpose2d: output %lldx%lld does not fit input %s, weight %s, stride %d, padding %d",
                 (long long)ho, (long long)wo, GANTL__SHP(x), GANTL__SHP(w), stride, padding);
    int64_t shape[4] = {x->shape[0], w->shape[1] * groups, ho, wo};
    gantl_tensor *t = gantl__node(ctx, GANTL_OP_CONV_TRANSPOSE2D, 4, shape, x, w, NULL, 1);
    if (t) t->ip[0] = stride, t->ip[1] = padding, t->ip[2] = groups;
    return gantl__run(ctx, t);
}

GANTLDEF gantl_tensor *gantl_conv_transpose2d(gantl_ctx *ctx, gantl_tensor *x, gantl_tensor *w, int stride, int padding,
                                              int output_padding, int groups) {
    if (!x || !w) return NULL;
    GANTL__CHECK(x->ndim == 4 && w->ndim == 4, "conv_transpose2d: input %s and weight %s must be 4-D", GANTL__SHP(x),
                 GANTL__SHP(w));
    GANTL__CHECK(output_padding >= 0 && output_padding < stride, "conv_transpose2d: output_padding %d, stride %d",
                 output_padding, stride);
    int64_t ho = (x->shape[2] - 1) * stride - 2 * padding + w->shape[2] + output_padding;
    int64_t wo = (x->shape[3] - 1) * stride - 2 * padding + w->shape[3] + output_padding;
    return gantl__conv_transpose2d(ctx, x, w, stride, padding, groups, ho, wo);
}

GANTLDEF gantl_tensor *gantl_conv2d_weight_grad(gantl_ctx *ctx, gantl_tensor *x, gantl_tensor *gy, int kh, int kw,
                                                int stride, int padding, int groups) {
    if (!x || !gy) return NULL;
    GANTL__CHECK(x->ndim == 4 && gy->ndim == 4 && x->shape[0] == gy->shape[0],
                 "conv2d_weight_grad: input %s and output gradient %s", GANTL__SHP(x), GANTL__SHP(gy));
    GANTL__CHECK(stride >= 1 && padding >= 0 && groups >= 1 && kh >= 1 && kw >= 1 && x->shape[1] % groups == 0 &&
                     gy->shape[1] % groups == 0,
                 "conv2d_weight_grad: kernel %dx%d, stride %d, padding %d, groups %d for input %s", kh, kw, stride,
                 padding, groups, GANTL__SHP(x));
    GANTL__CHECK(x->shape[2] + 2 * padding >= kh && x->shape[3] + 2 * padding >= kw &&
                     gantl__conv_out(x->shape[2], kh, stride, padding) == gy->shape[2] &&
                     gantl__conv_out(x->shape[3], kw, stride, padding) == gy->shape[3],
                 "conv2d_weight_grad: output gradient %s does not fit input %s with kernel %dx%d", GANTL__SHP(gy),
                 GANTL__SHP(x), kh, kw);
    int64_t shape[4] = {gy->shape[1], x->shape[1] / groups, kh, kw};
    gantl_tensor *t = gantl__node(ctx, GANTL_OP_CONV2D_WGRAD, 4, shape, x, gy, NULL, 1);
    if (t) t->ip[0] = stride, t->ip[1] = padding, t->ip[2] = groups;
    return gantl__run(ctx, t);
}

/* ---- StyleGAN2 ops ---- */

/* upfirdn2d with separate x/y factors; pad = {x0, x1, y0, y1}; f is 2-D. */
static gantl_tensor *gantl__upfirdn2d(gantl_ctx *ctx, gantl_tensor *x, gantl_tensor *f, int upx, int upy, int downx,
                                      int downy, const int pad[4], int flip, float gain) {
    if (!x || !f) return NULL;
    GANTL__CHECK(x->ndim == 4 && f->ndim == 2, "upfirdn2d: input %s must be 4-D and filter %s 2-D", GANTL__SHP(x),
                 GANTL__SHP(f));
    GANTL__CHECK(upx >= 1 && upy >= 1 && downx >= 1 && downy >= 1, "upfirdn2d: up %dx%d, down %dx%d", upx, upy, downx,
                 downy);
    int64_t hu = x->shape[2] * upy + pad[2] + pad[3] - f->shape[0], wu = x->shape[3] * upx + pad[0] + pad[1] - f->shape[1];
    GANTL__CHECK(hu >= 0 && wu >= 0, "upfirdn2d: input %s with filter %s, up %d and pad (%d, %d, %d, %d) leaves no output",
                 GANTL__SHP(x), GANTL__SHP(f), upx, pad[0], pad[1], pad[2], pad[3]);
    int64_t shape[4] = {x->shape[0], x->shape[1], hu / downy + 1, wu / downx + 1};
    gantl_tensor *t = gantl__node(ctx, GANTL_OP_UPFIRDN2D, 4, shape, x, f, NULL, 1);
    if (t) {
        int32_t ip[9] = {upx, upy, downx, downy, pad[0], pad[1], pad[2], pad[3], flip != 0};
        memcpy(t->ip, ip, sizeof ip);
        t->fp[0] = gain;
    }
    return gantl__run(ctx, t);
}

GANTLDEF gantl_tensor *gantl_upfirdn2d(gantl_ctx *ctx, gantl_tensor *x, gantl_tensor *f, int up, int down,
                                       const int pad[4], int flip_filter, float gain) {
    if (!x || !f) return NULL;
    GANTL__CHECK(f->ndim == 1 || f->ndim == 2, "upfirdn2d: filter %s must be 1-D or 2-D", GANTL__SHP(f));
    if (f->ndim == 1) { /* separable: a (1, k) pass along x (with the gain), then (k, 1) along y */
        int64_t sx[2] = {1, f->shape[0]}, sy[2] = {f->shape[0], 1};
        gantl_tensor *fx = gantl__tensor(ctx, 2, sx, 0), *fy = gantl__tensor(ctx, 2, sy, 0);
        if (!fx || !fy) return NULL;
        fx->data = fy->data = f->data;
        fx->device = fy->device = f->device;
        int padx[4] = {pad[0], pad[1], 0, 0}, pady[4] = {0, 0, pad[2], pad[3]};
        x = gantl__upfirdn2d(ctx, x, fx, up, 1, down, 1, padx, flip_filter, gain);
        return gantl__upfirdn2d(ctx, x, fy, 1, up, 1, down, pady, flip_filter, 1.0f);
    }
    return gantl__upfirdn2d(ctx, x, f, up, up, down, down, pad, flip_filter, gain);
}

static gantl_tensor *gantl__bias_act_node(gantl_ctx *ctx, gantl_op op, gantl_tensor *a, gantl_tensor *b, int act,
                                          float alpha, float gain, float clamp) {
    gantl_tensor *t = gantl__node(ctx, op, a->ndim, a->shape, a, b, NULL, 1);
    if (t) t->ip[0] = act, t->fp[0] = alpha, t->fp[1] = gain, t->fp[2] = clamp;
    return gantl__run(ctx, t);
}

GANTLDEF gantl_tensor *gantl_bias_act(gantl_ctx *ctx, gantl_tensor *x, gantl_tensor *b, gantl_act act, float alpha,
                                      float gain, float clamp) {
    if (!x) return NULL;
    GANTL__CHECK(!b || (x->ndim >= 2 && b->ndim == 1 && b->shape[0] == x->shape[1]),
                 "bias_act: bias %s does not fit axis 1 of input %s", GANTL__SHP(b), GANTL__SHP(x));
    GANTL__CHECK(act == GANTL_ACT_LINEAR || act == GANTL_ACT_LRELU, "bias_act: unknown activation %d", (int)act);
    return gantl__bias_act_node(ctx, GANTL_OP_BIAS_ACT, x, b, act, alpha, gain, clamp);
}

static gantl_tensor *gantl__bias_act_grad(gantl_ctx *ctx, gantl_tensor *g, gantl_tensor *y, const gantl_tensor *like) {
    if (!g || !y) return NULL;
    GANTL__CHECK(gantl_same_shape(g, y), "bias_act_grad: gradient %s and output %s differ", GANTL__SHP(g), GANTL__SHP(y));
    return gantl__bias_act_node(ctx, GANTL_OP_BIAS_ACT_GRAD, g, y, like->ip[0], like->fp[0], like->fp[1], like->fp[2]);
}

/* ---- composite layers ---- */

GANTLDEF gantl_tensor *gantl_batch_norm(gantl_ctx *ctx, gantl_tensor *x, gantl_tensor *weight, gantl_tensor *bias,
                                        gantl_tensor *running_mean, gantl_tensor *running_var, int training,
                                        float momentum, float eps) {
    if (!x) return NULL;
    GANTL__CHECK(x->ndim == 2 || x->ndim == 4, "batch_norm: input %s must be (N, C) or (N, C, H, W)", GANTL__SHP(x));
    int64_t C = x->shape[1], count = x->numel / (C ? C : 1);
    const gantl_tensor *per_channel[4] = {weight, bias, running_mean, running_var};
    for (int i = 0; i < 4; i++)
        GANTL__CHECK(!per_channel[i] || (per_channel[i]->ndim == 1 && per_channel[i]->shape[0] == C),
                     "batch_norm: per-channel tensor %s does not fit input %s", GANTL__SHP(per_channel[i]), GANTL__SHP(x));
    int64_t cshape[GANTL_MAX_DIMS] = {1, C, 1, 1}; /* broadcast shape of a per-channel tensor */
    int axes[3] = {0, 2, 3};
    gantl_tensor *mean, *var;
    if (training) {
        GANTL__CHECK(count > 1, "batch_norm: training needs more than one value per channel, input %s", GANTL__SHP(x));
        mean = gantl_mean(ctx, x, x->ndim - 1, axes, 1);
        var = gantl_mean(ctx, gantl_square(ctx, gantl_sub(ctx, x, mean)), x->ndim - 1, axes, 1);
        if (!var) return NULL;
        for (int64_t c = 0; c < C; c++) { /* running statistics: no gradient */
            if (running_mean) running_mean->data[c] += momentum * (mean->data[c] - running_mean->data[c]);
            if (running_var)
                running_var->data[c] += momentum * (var->data[c] * (float)count / (float)(count - 1) - running_var->data[c]);
        }
    } else {
        GANTL__CHECK(running_mean && running_var, "batch_norm: eval mode needs running statistics");
        mean = gantl_reshape(ctx, gantl_detach(ctx, running_mean), x->ndim, cshape);
        var = gantl_reshape(ctx, gantl_detach(ctx, running_var), x->ndim, cshape);
    }
    gantl_tensor *y = gantl_mul(ctx, gantl_sub(ctx, x, mean), gantl_rsqrt(ctx, gantl_add_scalar(ctx, var, eps)));
    if (weight) y = gantl_mul(ctx, y, gantl_reshape(ctx, weight, x->ndim, cshape));
    if (bias) y = gantl_add(ctx, y, gantl_reshape(ctx, bias, x->ndim, cshape));
    return y;
}

/* ---- resampling for ADA: grid_sample and reflect padding, each with its adjoint ---- */

GANTLDEF gantl_tensor *gantl_grid_sample(gantl_ctx *ctx, gantl_tensor *x, gantl_tensor *grid) {
    if (!x || !grid) return NULL;
    GANTL__CHECK(x->ndim == 4 && grid->ndim == 4 && grid->shape[3] == 2 && grid->shape[0] == x->shape[0],
                 "grid_sample: input %s must be (N, C, H, W) and grid %s (N, Ho, Wo, 2)", GANTL__SHP(x), GANTL__SHP(grid));
    int64_t shape[4] = {x->shape[0], x->shape[1], grid->shape[1], grid->shape[2]};
    return gantl__run(ctx, gantl__node(ctx, GANTL_OP_GRID_SAMPLE, 4, shape, x, grid, NULL, 1));
}

/* The adjoint of grid_sample (its input gradient): gy (N, C, Ho, Wo) -> (N, C, H, W). */
static gantl_tensor *gantl__grid_sample_adj(gantl_ctx *ctx, gantl_tensor *gy, gantl_tensor *grid, int64_t H, int64_t W) {
    if (!gy || !grid) return NULL;
    GANTL__CHECK(gy->ndim == 4 && grid->ndim == 4 && grid->shape[3] == 2 && grid->shape[0] == gy->shape[0] &&
                     grid->shape[1] == gy->shape[2] && grid->shape[2] == gy->shape[3] && H >= 0 && W >= 0,
                 "grid_sample_adj: gradient %s does not fit grid %s", GANTL__SHP(gy), GANTL__SHP(grid));
    int64_t shape[4] = {gy->shape[0], gy->shape[1], H, W};
    gantl_tensor *t = gantl__node(ctx, GANTL_OP_GRID_SAMPLE_ADJ, 4, shape, gy, grid, NULL, 1);
    if (t) t->ip[0] = (int32_t)H, t->ip[1] = (int32_t)W;
    return gantl__run(ctx, t);
}

GANTLDEF gantl_tensor *gantl_pad_reflect(gantl_ctx *ctx, gantl_tensor *x, const int pad[4]) {
    if (!x) return NULL;
    GANTL__CHECK(x->ndim == 4, "pad_reflect: input %s must be (N, C, H, W)", GANTL__SHP(x));
    GANTL__CHECK(pad[0] >= 0 && pad[1] >= 0 && pad[2] >= 0 && pad[3] >= 0 && pad[0] < x->shape[3] &&
                     pad[1] < x->shape[3] && pad[2] < x->shape[2] && pad[3] < x->shape[2],
                 "pad_reflect: padding (%d, %d, %d, %d) must be >= 0 and smaller than the input %s", pad[0], pad[1],
                 pad[2], pad[3], GANTL__SHP(x));
    int64_t shape[4] = {x->shape[0], x->shape[1], x->shape[2] + pad[2] + pad[3], x->shape[3] + pad[0] + pad[1]};
    gantl_tensor *t = gantl__node(ctx, GANTL_OP_PAD_REFLECT, 4, shape, x, NULL, NULL, 1);
    if (t) memcpy(t->ip, pad, 4 * sizeof(int32_t));
    return gantl__run(ctx, t);
}

/* The adjoint of pad_reflect: gy (N, C, H + y0 + y1, W + x0 + x1) -> (N, C, H, W). */
static gantl_tensor *gantl__pad_reflect_adj(gantl_ctx *ctx, gantl_tensor *gy, const int32_t pad[4]) {
    if (!gy) return NULL;
    GANTL__CHECK(gy->ndim == 4, "pad_reflect_adj: gradient %s must be 4-D", GANTL__SHP(gy));
    int64_t shape[4] = {gy->shape[0], gy->shape[1], gy->shape[2] - pad[2] - pad[3], gy->shape[3] - pad[0] - pad[1]};
    GANTL__CHECK(pad[0] >= 0 && pad[1] >= 0 && pad[2] >= 0 && pad[3] >= 0 && pad[0] < shape[3] && pad[1] < shape[3] &&
                     pad[2] < shape[2] && pad[3] < shape[2],
                 "pad_reflect_adj: padding (%d, %d, %d, %d) does not fit the gradient %s", pad[0], pad[1], pad[2],
                 pad[3], GANTL__SHP(gy));
    gantl_tensor *t = gantl__node(ctx, GANTL_OP_PAD_REFLECT_ADJ, 4, shape, gy, NULL, NULL, 1);
    if (t) memcpy(t->ip, pad, 4 * sizeof(int32_t));
    return gantl__run(ctx, t);
}

/* ---------------------------------------------------------------------------------------
   4d. Backward: given y = op(x...) and gy = dL/dy, emit ops for gx[i] = dL/dx_i where
   bit i of need is set. Because these are ordinary ops, the gradients are differentiable
   again. A gx left NULL means zero.
   ------------------------------------------------------------------------------------- */

typedef void (*gantl__backward_fn)(gantl_ctx *ctx, gantl_tensor *y, gantl_tensor *gy, gantl_tensor **gx, unsigned need);

/* "Connected, but zero": what a backward gives where PyTorch's autograd gives zeros_like
   (the mask of a leaky ReLU, sign) rather than no gradient. Nothing is computed for it,
   but a parameter it reaches counts as having a gradient, so optimizers step it as
   PyTorch does. A clamp's mask and a bias added before a linear output give nothing. */
static gantl_tensor gantl__connected_zero_marker;
#define GANTL__ZERO (&gantl__connected_zero_marker)

#define GANTL__NEED(i) ((need >> (i)) & 1u)

static gantl_tensor *gantl__sum_like(gantl_ctx *ctx, gantl_tensor *g, const gantl_tensor *like) {
    return gantl_sum_to(ctx, g, like->ndim, like->shape);
}

static void gantl__bwd_none(gantl_ctx *ctx, gantl_tensor *y, gantl_tensor *gy, gantl_tensor **gx, unsigned need) {
    (void)ctx, (void)y, (void)gy, (void)gx, (void)need;
}

static void gantl__bwd_add(gantl_ctx *ctx, gantl_tensor *y, gantl_tensor *gy, gantl_tensor **gx, unsigned need) {
    if (GANTL__NEED(0)) gx[0] = gantl__sum_like(ctx, gy, y->src[0]);
    if (GANTL__NEED(1)) gx[1] = gantl__sum_like(ctx, gy, y->src[1]);
}

static void gantl__bwd_sub(gantl_ctx *ctx, gantl_tensor *y, gantl_tensor *gy, gantl_tensor **gx, unsigned need) {
    if (GANTL__NEED(0)) gx[0] = gantl__sum_like(ctx, gy, y->src[0]);
    if (GANTL__NEED(1)) gx[1] = gantl_neg(ctx, gantl__sum_like(ctx, gy, y->src[1]));
}

static void gantl__bwd_mul(gantl_ctx *ctx, gantl_tensor *y, gantl_tensor *gy, gantl_tensor **gx, unsigned need) {
    if (GANTL__NEED(0)) gx[0] = gantl__sum_like(ctx, gantl_mul(ctx, gy, y->src[1]), y->src[0]);
    if (GANTL__NEED(1)) gx[1] = gantl__sum_like(ctx, gantl_mul(ctx, gy, y->src[0]), y->src[1]);
}

/* y = a / b: da = gy / b, db = -gy * y / b */
static void gantl__bwd_div(gantl_ctx *ctx, gantl_tensor *y, gantl_tensor *gy, gantl_tensor **gx, unsigned need) {
    gantl_tensor *ga = gantl_div(ctx, gy, y->src[1]);
    if (GANTL__NEED(0)) gx[0] = gantl__sum_like(ctx, ga, y->src[0]);
    if (GANTL__NEED(1)) gx[1] = gantl_neg(ctx, gantl__sum_like(ctx, gantl_mul(ctx, ga, y), y->src[1]));
}

static void gantl__bwd_scale(gantl_ctx *ctx, gantl_tensor *y, gantl_tensor *gy, gantl_tensor **gx, unsigned need) {
    (void)need;
    gx[0] = gantl_scale(ctx, gy, y->fp[0]);
}

static void gantl__bwd_exp(gantl_ctx *ctx, gantl_tensor *y, gantl_tensor *gy, gantl_tensor **gx, unsigned need) {
    (void)need;
    gx[0] = gantl_mul(ctx, gy, y);
}

static void gantl__bwd_log(gantl_ctx *ctx, gantl_tensor *y, gantl_tensor *gy, gantl_tensor **gx, unsigned need) {
    (void)need;
    gx[0] = gantl_div(ctx, gy, y->src[0]);
}

/* d sqrt(x) = 1 / (2 sqrt(x)) */
static void gantl__bwd_sqrt(gantl_ctx *ctx, gantl_tensor *y, gantl_tensor *gy, gantl_tensor **gx, unsigned need) {
    (void)need;
    gx[0] = gantl_scale(ctx, gantl_div(ctx, gy, y), 0.5f);
}

/* d x^(-1/2) = -1/2 x^(-3/2) = -1/2 y^3 */
static void gantl__bwd_rsqrt(gantl_ctx *ctx, gantl_tensor *y, gantl_tensor *gy, gantl_tensor **gx, unsigned need) {
    (void)need;
    gx[0] = gantl_mul(ctx, gy, gantl_scale(ctx, gantl_mul(ctx, gantl_square(ctx, y), y), -0.5f));
}

static void gantl__bwd_square(gantl_ctx *ctx, gantl_tensor *y, gantl_tensor *gy, gantl_tensor **gx, unsigned need) {
    (void)need;
    gx[0] = gantl_mul(ctx, gy, gantl_scale(ctx, y->src[0], 2.0f));
}

static void gantl__bwd_pow(gantl_ctx *ctx, gantl_tensor *y, gantl_tensor *gy, gantl_tensor **gx, unsigned need) {
    (void)need;
    float p = y->fp[0];
    if (p != 0.0f) gx[0] = gantl_mul(ctx, gy, gantl_scale(ctx, gantl_pow(ctx, y->src[0], p - 1.0f), p));
}

static void gantl__bwd_abs(gantl_ctx *ctx, gantl_tensor *y, gantl_tensor *gy, gantl_tensor **gx, unsigned need) {
    (void)need;
    gx[0] = gantl_mul(ctx, gy, gantl_sign(ctx, y->src[0]));
}

static void gantl__bwd_sign(gantl_ctx *ctx, gantl_tensor *y, gantl_tensor *gy, gantl_tensor **gx, unsigned need) {
    (void)ctx, (void)y, (void)gy, (void)need;
    gx[0] = GANTL__ZERO; /* zero almost everywhere */
}

static void gantl__bwd_softplus(gantl_ctx *ctx, gantl_tensor *y, gantl_tensor *gy, gantl_tensor **gx, unsigned need) {
    (void)need;
    gx[0] = gantl_mul(ctx, gy, gantl_sigmoid(ctx, y->src[0]));
}

/* d sigmoid = y (1 - y) */
static void gantl__bwd_sigmoid(gantl_ctx *ctx, gantl_tensor *y, gantl_tensor *gy, gantl_tensor **gx, unsigned need) {
    (void)need;
    gx[0] = gantl_mul(ctx, gy, gantl_mul(ctx, y, gantl_affine(ctx, y, -1.0f, 1.0f)));
}

static void gantl__bwd_lrelu(gantl_ctx *ctx, gantl_tensor *y, gantl_tensor *gy, gantl_tensor **gx, unsigned need) {
    (void)need;
    gx[0] = gantl__lrelu_grad(ctx, gy, y->src[0], y->fp[0]);
}

/* lrelu_grad(g, x) is linear in g; its derivative in x is zero almost everywhere. */
static void gantl__bwd_lrelu_grad(gantl_ctx *ctx, gantl_tensor *y, gantl_tensor *gy, gantl_tensor **gx, unsigned need) {
    if (GANTL__NEED(0)) gx[0] = gantl__lrelu_grad(ctx, gy, y->src[1], y->fp[0]);
    if (GANTL__NEED(1)) gx[1] = GANTL__ZERO;
}

static void gantl__bwd_sum(gantl_ctx *ctx, gantl_tensor *y, gantl_tensor *gy, gantl_tensor **gx, unsigned need) {
    (void)need;
    gx[0] = gantl_expand(ctx, gy, y->src[0]->ndim, y->src[0]->shape);
}

static void gantl__bwd_expand(gantl_ctx *ctx, gantl_tensor *y, gantl_tensor *gy, gantl_tensor **gx, unsigned need) {
    (void)need;
    gx[0] = gantl__sum_like(ctx, gy, y->src[0]);
}

static void gantl__bwd_reshape(gantl_ctx *ctx, gantl_tensor *y, gantl_tensor *gy, gantl_tensor **gx, unsigned need) {
    (void)need;
    gx[0] = gantl_reshape(ctx, gy, y->src[0]->ndim, y->src[0]->shape);
}

static void gantl__bwd_permute(gantl_ctx *ctx, gantl_tensor *y, gantl_tensor *gy, gantl_tensor **gx, unsigned need) {
    (void)need;
    int inverse[GANTL_MAX_DIMS];
    for (int d = 0; d < y->ndim; d++) inverse[y->ip[d]] = d;
    gx[0] = gantl_permute(ctx, gy, inverse);
}

static void gantl__bwd_slice(gantl_ctx *ctx, gantl_tensor *y, gantl_tensor *gy, gantl_tensor **gx, unsigned need) {
    (void)need;
    int axis = y->ip[0];
    gx[0] = gantl_pad(ctx, gy, axis, y->ip[1], y->src[0]->shape[axis] - y->ip[2]);
}

static void gantl__bwd_pad(gantl_ctx *ctx, gantl_tensor *y, gantl_tensor *gy, gantl_tensor **gx, unsigned need) {
    (void)need;
    int axis = y->ip[0];
    gx[0] = gantl_slice(ctx, gy, axis, y->ip[1], y->ip[1] + y->src[0]->shape[axis]);
}

static void gantl__bwd_concat(gantl_ctx *ctx, gantl_tensor *y, gantl_tensor *gy, gantl_tensor **gx, unsigned need) {
    int axis = y->ip[0];
    int64_t na = y->src[0]->shape[axis];
    if (GANTL__NEED(0)) gx[0] = gantl_slice(ctx, gy, axis, 0, na);
    if (GANTL__NEED(1)) gx[1] = gantl_slice(ctx, gy, axis, na, y->shape[axis]);
}

static void gantl__bwd_repeat(gantl_ctx *ctx, gantl_tensor *y, gantl_tensor *gy, gantl_tensor **gx, unsigned need) {
    (void)need;
    gx[0] = gantl__repeat_sum(ctx, gy, y->ip);
}

static void gantl__bwd_repeat_sum(gantl_ctx *ctx, gantl_tensor *y, gantl_tensor *gy, gantl_tensor **gx, unsigned need) {
    (void)need;
    int64_t reps[GANTL_MAX_DIMS];
    for (int d = 0; d < GANTL_MAX_DIMS; d++) reps[d] = y->ip[d];
    gx[0] = gantl_repeat(ctx, gy, y->ndim, reps);
}

/* y = op(a) @ op(b). Not transposed: da = gy @ op(b)^T, db = op(a)^T @ gy; a transposed
   input gets the transpose of that. A shared (2-D) input sums over the batch. */
static void gantl__bwd_matmul(gantl_ctx *ctx, gantl_tensor *y, gantl_tensor *gy, gantl_tensor **gx, unsigned need) {
    gantl_tensor *a = y->src[0], *b = y->src[1];
    int ta = y->ip[0], tb = y->ip[1];
    if (GANTL__NEED(0))
        gx[0] = gantl__sum_like(ctx, ta ? gantl_matmul(ctx, b, gy, tb, 1) : gantl_matmul(ctx, gy, b, 0, !tb), a);
    if (GANTL__NEED(1))
        gx[1] = gantl__sum_like(ctx, tb ? gantl_matmul(ctx, gy, a, 1, ta) : gantl_matmul(ctx, a, gy, !ta, 0), b);
}

static void gantl__bwd_conv2d(gantl_ctx *ctx, gantl_tensor *y, gantl_tensor *gy, gantl_tensor **gx, unsigned need) {
    gantl_tensor *x = y->src[0], *w = y->src[1];
    int stride = y->ip[0], pad = y->ip[1], groups = y->ip[2];
    if (GANTL__NEED(0)) gx[0] = gantl__conv_transpose2d(ctx, gy, w, stride, pad, groups, x->shape[2], x->shape[3]);
    if (GANTL__NEED(1))
        gx[1] = gantl_conv2d_weight_grad(ctx, x, gy, (int)w->shape[2], (int)w->shape[3], stride, pad, groups);
}

/* conv_transpose2d is the adjoint of conv2d: its input gradient is a conv2d, and its weight
   gradient is conv2d's weight gradient with the roles of input and output swapped. */
static void gantl__bwd_conv_transpose2d(gantl_ctx *ctx, gantl_tensor *y, gantl_tensor *gy, gantl_tensor **gx,
                                        unsigned need) {
    gantl_tensor *x = y->src[0], *w = y->src[1];
    int stride = y->ip[0], pad = y->ip[1], groups = y->ip[2];
    if (GANTL__NEED(0)) gx[0] = gantl_conv2d(ctx, gy, w, stride, pad, groups);
    if (GANTL__NEED(1))
        gx[1] = gantl_conv2d_weight_grad(ctx, gy, x, (int)w->shape[2], (int)w->shape[3], stride, pad, groups);
}

/* gw = wgrad(x, gy) is bilinear: <gw, G> = <conv2d(x, G), gy> = <x, conv_transpose2d(gy, G)>. */
static void gantl__bwd_conv2d_wgrad(gantl_ctx *ctx, gantl_tensor *y, gantl_tensor *gy, gantl_tensor **gx, unsigned need) {
    gantl_tensor *x = y->src[0];
    int stride = y->ip[0], pad = y->ip[1], groups = y->ip[2];
    if (GANTL__NEED(0)) gx[0] = gantl__conv_transpose2d(ctx, y->src[1], gy, stride, pad, groups, x->shape[2], x->shape[3]);
    if (GANTL__NEED(1)) gx[1] = gantl_conv2d(ctx, x, gy, stride, pad, groups);
}

/* The adjoint of upfirdn2d is upfirdn2d with up and down swapped, the filter flipped and
   the padding that maps the output grid back onto the input grid. */
static void gantl__bwd_upfirdn2d(gantl_ctx *ctx, gantl_tensor *y, gantl_tensor *gy, gantl_tensor **gx, unsigned need) {
    if (!GANTL__NEED(0)) return;
    gantl_tensor *x = y->src[0], *f = y->src[1];
    int upx = y->ip[0], upy = y->ip[1], downx = y->ip[2], downy = y->ip[3];
    int64_t fh = f->shape[0], fw = f->shape[1];
    int pad[4] = {(int)(fw - y->ip[4] - 1), (int)(x->shape[3] * upx - y->shape[3] * downx + y->ip[4] - upx + 1),
                  (int)(fh - y->ip[6] - 1), (int)(x->shape[2] * upy - y->shape[2] * downy + y->ip[6] - upy + 1)};
    gx[0] = gantl__upfirdn2d(ctx, gy, f, downx, downy, upx, upy, pad, !y->ip[8], y->fp[0]);
}

static void gantl__bwd_bias_act(gantl_ctx *ctx, gantl_tensor *y, gantl_tensor *gy, gantl_tensor **gx, unsigned need) {
    gantl_tensor *gz = gantl__bias_act_grad(ctx, gy, y, y);
    if (GANTL__NEED(0)) gx[0] = gz;
    if (GANTL__NEED(1)) {
        int axis = 1;
        gantl_tensor *b = y->src[1];
        unsigned mask = ((1u << y->ndim) - 1u) & ~(1u << axis);
        gx[1] = gantl_reshape(ctx, gantl__sum_keep(ctx, gz, mask), 1, b->shape);
    }
}

/* bias_act_grad(g, y) is linear in g; the mask it applies is constant almost everywhere
   (connected through the leaky ReLU's mask, as in PyTorch, not through the clamp's). */
static void gantl__bwd_bias_act_grad(gantl_ctx *ctx, gantl_tensor *y, gantl_tensor *gy, gantl_tensor **gx,
                                     unsigned need) {
    if (GANTL__NEED(0)) gx[0] = gantl__bias_act_grad(ctx, gy, y->src[1], y);
    if (GANTL__NEED(1) && y->ip[0] == GANTL_ACT_LRELU) gx[1] = GANTL__ZERO;
}

/* grid_sample is linear in x and its adjoint is linear in gy: each one's input gradient is
   the other, so gradients of any order close. The grid gets none (it is a constant). */
static void gantl__bwd_grid_sample(gantl_ctx *ctx, gantl_tensor *y, gantl_tensor *gy, gantl_tensor **gx, unsigned need) {
    if (GANTL__NEED(0)) gx[0] = gantl__grid_sample_adj(ctx, gy, y->src[1], y->src[0]->shape[2], y->src[0]->shape[3]);
}

static void gantl__bwd_grid_sample_adj(gantl_ctx *ctx, gantl_tensor *y, gantl_tensor *gy, gantl_tensor **gx,
                                       unsigned need) {
    if (GANTL__NEED(0)) gx[0] = gantl_grid_sample(ctx, gy, y->src[1]);
}

static void gantl__bwd_pad_reflect(gantl_ctx *ctx, gantl_tensor *y, gantl_tensor *gy, gantl_tensor **gx, unsigned need) {
    (void)need;
    gx[0] = gantl__pad_reflect_adj(ctx, gy, y->ip);
}

static void gantl__bwd_pad_reflect_adj(gantl_ctx *ctx, gantl_tensor *y, gantl_tensor *gy, gantl_tensor **gx,
                                       unsigned need) {
    (void)need;
    int pad[4] = {y->ip[0], y->ip[1], y->ip[2], y->ip[3]};
    gx[0] = gantl_pad_reflect(ctx, gy, pad);
}

static const gantl__backward_fn gantl__backward_table[GANTL_OP_COUNT] = {
#define GANTL__OP_BWD(e, n, k) gantl__bwd_##n,
    GANTL_OP_TABLE(GANTL__OP_BWD)
#undef GANTL__OP_BWD
};

/* ---------------------------------------------------------------------------------------
   5. Autograd
   The graph reachable from the outputs through tensors that require grad is sorted
   topologically (depth-first, inputs before users), then walked backwards, summing the
   gradients each node receives and emitting its backward ops. A pointer-keyed hash map
   holds the per-pass state, so shared leaves (parameters) are never written to.
   ------------------------------------------------------------------------------------- */

typedef struct gantl__gnode {
    gantl_tensor *t;
    gantl_tensor *grad; /* summed gradient so far (NULL: zero) */
    int needed;         /* leads to a tensor whose gradient is wanted */
} gantl__gnode;

typedef struct gantl__graph {
    gantl__gnode *nodes; /* topological order */
    int count, capacity;
    int *slots; /* hash map: pointer -> node index + 1 (0: empty) */
    int slot_count;
} gantl__graph;

static size_t gantl__hash_ptr(const void *p) {
    uint64_t h = (uint64_t)(uintptr_t)p;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return (size_t)h;
}

static int gantl__graph_find(const gantl__graph *g, const gantl_tensor *t) {
    if (g->slot_count == 0) return -1;
    size_t mask = (size_t)g->slot_count - 1;
    for (size_t i = gantl__hash_ptr(t) & mask;; i = (i + 1) & mask) {
        int s = g->slots[i];
        if (s == 0) return -1;
        if (g->nodes[s - 1].t == t) return s - 1;
    }
}

static void gantl__graph_insert_slot(gantl__graph *g, int index) {
    size_t mask = (size_t)g->slot_count - 1;
    size_t i = gantl__hash_ptr(g->nodes[index].t) & mask;
    while (g->slots[i]) i = (i + 1) & mask;
    g->slots[i] = index + 1;
}

/* Appends t; 0 on out-of-memory. */
static int gantl__graph_add(gantl__graph *g, gantl_tensor *t) {
    if (g->count == g->capacity) {
        int cap = g->capacity ? 2 * g->capacity : 256;
        gantl__gnode *nodes = (gantl__gnode *)GANTL_REALLOC(g->nodes, (size_t)cap * sizeof *nodes);
        if (!nodes) return 0;
        g->nodes = nodes;
        g->capacity = cap;
    }
    if (2 * (g->count + 1) > g->slot_count) { /* keep the map at most half full */
        int slot_count = g->slot_count ? 2 * g->slot_count : 512;
        int *slots = (int *)GANTL_MALLOC((size_t)slot_count * sizeof *slots);
        if (!slots) return 0;
        memset(slots, 0, (size_t)slot_count * sizeof *slots);
        GANTL_FREE(g->slots);
        g->slots = slots;
        g->slot_count = slot_count;
        for (int i = 0; i < g->count; i++) gantl__graph_insert_slot(g, i);
    }
    g->nodes[g->count].t = t;
    g->nodes[g->count].grad = NULL;
    g->nodes[g->count].needed = 0;
    gantl__graph_insert_slot(g, g->count++);
    return 1;
}

/* Adds gradient g into node n (GANTL__ZERO only marks it reached). */
static void gantl__accumulate(gantl_ctx *ctx, gantl__gnode *n, gantl_tensor *g) {
    if (g == GANTL__ZERO) {
        if (!n->grad) n->grad = GANTL__ZERO;
        return;
    }
    n->grad = n->grad && n->grad != GANTL__ZERO ? gantl_add(ctx, n->grad, g) : g;
}

static void gantl__graph_free(gantl__graph *g) {
    GANTL_FREE(g->nodes);
    GANTL_FREE(g->slots);
}

/* Depth-first post-order over tensors that require grad: every node after its inputs. */
static int gantl__graph_build(gantl__graph *g, int n_roots, gantl_tensor *const *roots) {
    typedef struct { gantl_tensor *t; int next_src; } frame;
    int depth = 0, cap = 64, ok = 1;
    frame *stack = (frame *)GANTL_MALLOC((size_t)cap * sizeof *stack);
    /* Entered and finished nodes are told apart by a second map of "entered" pointers:
       a node is added to g only when finished. */
    gantl__graph entered = {NULL, 0, 0, NULL, 0};
    if (!stack) return 0;
    for (int r = 0; r < n_roots && ok; r++) {
        gantl_tensor *root = roots[r];
        if (!root || !(root->flags & GANTL_FLAG_REQUIRES_GRAD) || gantl__graph_find(&entered, root) >= 0) continue;
        if (!gantl__graph_add(&entered, root)) { ok = 0; break; }
        stack[depth].t = root, stack[depth].next_src = 0, depth++;
        while (depth > 0 && ok) {
            frame *f = &stack[depth - 1];
            if (f->next_src < GANTL_MAX_SRC) {
                gantl_tensor *s = f->t->src[f->next_src++];
                if (!s || !(s->flags & GANTL_FLAG_REQUIRES_GRAD) || gantl__graph_find(&entered, s) >= 0) continue;
                if (!gantl__graph_add(&entered, s)) { ok = 0; break; }
                if (depth == cap) {
                    frame *bigger = (frame *)GANTL_REALLOC(stack, (size_t)(2 * cap) * sizeof *stack);
                    if (!bigger) { ok = 0; break; }
                    stack = bigger;
                    cap *= 2;
                }
                stack[depth].t = s, stack[depth].next_src = 0, depth++;
            } else {
                if (!gantl__graph_add(g, f->t)) ok = 0;
                depth--;
            }
        }
    }
    GANTL_FREE(stack);
    gantl__graph_free(&entered);
    return ok;
}

/* The shared engine of gantl_grad (targets: inputs) and gantl_backward (targets: parameters). */
static void gantl__backprop(gantl_ctx *ctx, int n_outputs, gantl_tensor *const *outputs,
                            gantl_tensor *const *grad_outputs, int n_inputs, gantl_tensor *const *inputs,
                            gantl_tensor **grads, int create_graph) {
    gantl__graph g = {NULL, 0, 0, NULL, 0};
    int saved_grad_mode = ctx->grad_enabled;
    for (int i = 0; i < n_inputs; i++) grads[i] = NULL;
    if (ctx->status != GANTL_OK) return;
    for (int j = 0; j < n_outputs; j++) {
        if (!outputs[j]) return; /* an earlier op failed; the context has the status */
        GANTL__CHECK(outputs[j]->flags & GANTL_FLAG_REQUIRES_GRAD,
                     "grad: output %d %s does not require grad (no input or parameter with requires_grad reaches it, "
                     "or it was made with grad recording off)",
                     j, GANTL__SHP(outputs[j]));
    }
    if (!gantl__graph_build(&g, n_outputs, outputs)) {
        gantl__out_of_memory(ctx, 0);
        gantl__graph_free(&g);
        return;
    }
    /* Which nodes lead to a wanted gradient: inputs, or parameters with a grad buffer. */
    for (int i = 0; i < n_inputs; i++) {
        int k = gantl__graph_find(&g, inputs[i]);
        if (k >= 0) g.nodes[k].needed = 1;
    }
    for (int k = 0; k < g.count; k++) {
        gantl_tensor *t = g.nodes[k].t;
        if (!inputs && (t->flags & GANTL_FLAG_PARAM) && t->grad) g.nodes[k].needed = 1;
        for (int i = 0; i < GANTL_MAX_SRC && !g.nodes[k].needed; i++) {
            int s = t->src[i] ? gantl__graph_find(&g, t->src[i]) : -1;
            if (s >= 0 && g.nodes[s].needed) g.nodes[k].needed = 1;
        }
    }
    ctx->grad_enabled = create_graph;
    for (int j = 0; j < n_outputs; j++) {
        gantl__gnode *node = &g.nodes[gantl__graph_find(&g, outputs[j])];
        gantl_tensor *seed = grad_outputs && grad_outputs[j] ? grad_outputs[j] : gantl_full_like(ctx, outputs[j], 1.0f);
        if (seed)
            GANTL__CHECK(gantl_same_shape(seed, outputs[j]), "grad: grad_outputs[%d] %s does not match output %s", j,
                         GANTL__SHP(seed), GANTL__SHP(outputs[j]));
        gantl__accumulate(ctx, node, seed);
    }
    for (int k = g.count - 1; k >= 0 && ctx->status == GANTL_OK; k--) {
        gantl_tensor *t = g.nodes[k].t, *gx[GANTL_MAX_SRC] = {NULL, NULL, NULL};
        if (!g.nodes[k].grad || !g.nodes[k].needed || t->op == GANTL_OP_NONE) continue;
        int src_node[GANTL_MAX_SRC];
        unsigned need = 0;
        for (int i = 0; i < GANTL_MAX_SRC; i++) {
            src_node[i] = t->src[i] ? gantl__graph_find(&g, t->src[i]) : -1;
            if (src_node[i] >= 0 && g.nodes[src_node[i]].needed) need |= 1u << i;
        }
        if (!need) continue;
        if (g.nodes[k].grad == GANTL__ZERO) /* nothing to compute: pass the mark on */
            for (int i = 0; i < GANTL_MAX_SRC; i++) gx[i] = (need >> i) & 1u ? GANTL__ZERO : NULL;
        else
            gantl__backward_table[t->op](ctx, t, g.nodes[k].grad, gx, need);
        for (int i = 0; i < GANTL_MAX_SRC; i++) {
            if (!gx[i] || !((need >> i) & 1u)) continue;
            GANTL__CHECK(gx[i] == GANTL__ZERO || gantl_same_shape(gx[i], t->src[i]),
                         "backward of %s gave %s for input %d of shape %s", gantl_op_name(t->op), GANTL__SHP(gx[i]), i,
                         GANTL__SHP(t->src[i]));
            gantl__accumulate(ctx, &g.nodes[src_node[i]], gx[i]);
        }
    }
    ctx->grad_enabled = saved_grad_mode;
    if (ctx->status == GANTL_OK) {
        if (inputs) {
            for (int i = 0; i < n_inputs; i++) {
                int k = gantl__graph_find(&g, inputs[i]);
                gantl_tensor *gi = k >= 0 ? g.nodes[k].grad : NULL;
                grads[i] = gi && gi != GANTL__ZERO ? gi : gantl_full_like(ctx, inputs[i], 0.0f);
            }
        } else {
            for (int k = 0; k < g.count; k++) { /* accumulate into parameter gradients */
                gantl_tensor *t = g.nodes[k].t;
                const gantl_tensor *gt = g.nodes[k].grad;
                if (!(t->flags & GANTL_FLAG_PARAM) || !t->grad || !gt) continue;
                t->flags |= GANTL_FLAG_GRAD_SET;
                if (gt == GANTL__ZERO) continue;
                if (t->device != GANTL_CPU) { /* a parameter set on a device: its kernel */
                    gantl_status s = gantl__device_hooks(t->device, "backward")->add(t->grad, gt->data, t->numel);
                    if (s != GANTL_OK) ctx->status = s;
                    continue;
                }
                GANTL__OMP(parallel for schedule(static) if (t->numel > 32768))
                for (int64_t i = 0; i < t->numel; i++) t->grad[i] += gt->data[i];
            }
        }
    }
    gantl__graph_free(&g);
}

GANTLDEF void gantl_grad(gantl_ctx *ctx, int n_outputs, gantl_tensor *const *outputs, gantl_tensor *const *grad_outputs,
                         int n_inputs, gantl_tensor *const *inputs, gantl_tensor **grads, int create_graph) {
    GANTL__CHECK(n_inputs >= 1 && inputs, "grad: no inputs to differentiate with respect to");
    for (int i = 0; i < n_inputs; i++) GANTL__CHECK(inputs[i], "grad: input %d is NULL", i);
    gantl__backprop(ctx, n_outputs, outputs, grad_outputs, n_inputs, inputs, grads, create_graph);
}

GANTLDEF void gantl_backward(gantl_ctx *ctx, gantl_tensor *loss) {
    if (!loss) return;
    GANTL__CHECK(loss->numel == 1, "backward: loss %s must be a single value", GANTL__SHP(loss));
    gantl__backprop(ctx, 1, &loss, NULL, 0, NULL, NULL, 0);
}

/* ---------------------------------------------------------------------------------------
   6. Parameters and optimizers
   ------------------------------------------------------------------------------------- */

#define GANTL__PARAM_ALIGN 16 /* floats: each slice starts on a 64-byte boundary */

/* Flat buffers of a set or optimizer on device: host memory for the CPU, else the backend's. */
static float *gantl__flat_alloc(int device, int64_t n) {
    size_t bytes = (size_t)(n ? n : 1) * sizeof(float);
    return device == GANTL_CPU ? (float *)GANTL_MALLOC(bytes) : (float *)gantl__device_hooks(device, "params")->alloc(bytes);
}
static void gantl__flat_free(int device, void *p) {
    if (device == GANTL_CPU) GANTL_FREE(p);
    else if (p) gantl__device_hooks(device, "params")->free(p);
}
/* x (n) = 0 on device; the status of the device's kernel. */
static gantl_status gantl__flat_zero(int device, float *x, int64_t n) {
    if (n <= 0) return GANTL_OK;
    if (device != GANTL_CPU) return gantl__device_hooks(device, "params")->fill(x, 0.0f, n);
    memset(x, 0, (size_t)n * sizeof(float));
    return GANTL_OK;
}
/* A set's buffer grown from P->numel to total floats: realloc on the CPU; on a device a new
   allocation and a copy (the old one is freed only on success, as realloc does). */
static float *gantl__flat_grow(const gantl_params *P, float *old, int64_t total) {
    if (P->device == GANTL_CPU) return (float *)GANTL_REALLOC(old, (size_t)total * sizeof(float));
    const gantl_backend *be = gantl__device_hooks(P->device, "params_add");
    float *fresh = (float *)be->alloc((size_t)total * sizeof(float));
    if (!fresh) return NULL;
    if (old && P->numel && be->copy(fresh, old, (size_t)P->numel * sizeof(float)) != GANTL_OK) {
        be->free(fresh);
        return NULL;
    }
    if (old) be->free(old);
    return fresh;
}

GANTLDEF void gantl_params_init(gantl_params *P, int requires_grad) {
    memset(P, 0, sizeof *P);
    P->requires_grad = requires_grad;
}

GANTLDEF void gantl_params_free(gantl_params *P) {
    for (int i = 0; i < P->count; i++) {
        GANTL_FREE((void *)P->tensors[i]->name);
        GANTL_FREE(P->tensors[i]);
    }
    GANTL_FREE(P->tensors);
    gantl__flat_free(P->device, P->data);
    gantl__flat_free(P->device, P->grad);
    memset(P, 0, sizeof *P);
}

/* After the flat buffers moved: point every tensor at its slice again. */
static void gantl__params_rebind(gantl_params *P) {
    int64_t offset = 0;
    for (int i = 0; i < P->count; i++) {
        gantl_tensor *t = P->tensors[i];
        t->data = P->data + offset;
        t->grad = P->grad ? P->grad + offset : NULL;
        offset += (t->numel + GANTL__PARAM_ALIGN - 1) / GANTL__PARAM_ALIGN * GANTL__PARAM_ALIGN;
    }
}

GANTLDEF gantl_tensor *gantl_params_add(gantl_params *P, const char *name, int ndim, const int64_t *shape) {
    GANTL__CHECK(name && ndim >= 0 && ndim <= GANTL_MAX_DIMS, "params_add: bad name or ndim %d", ndim);
    GANTL__CHECK(!gantl_params_find(P, name), "params_add: '%s' is already in the set", name);
    int64_t numel = gantl__numel(ndim, shape);
    int64_t slice = (numel + GANTL__PARAM_ALIGN - 1) / GANTL__PARAM_ALIGN * GANTL__PARAM_ALIGN;
    int64_t total = P->numel + slice;
    gantl_tensor *t = (gantl_tensor *)GANTL_MALLOC(sizeof *t);
    char *copy = gantl__strdup(name);
    float *data = NULL, *grad = NULL;
    if (P->count == P->capacity) {
        int cap = P->capacity ? 2 * P->capacity : 32;
        gantl_tensor **tensors = (gantl_tensor **)GANTL_REALLOC(P->tensors, (size_t)cap * sizeof *tensors);
        if (tensors) P->tensors = tensors, P->capacity = cap;
    }
    /* Grow both buffers before committing, so a failure leaves P as it was. */
    if (t && copy && P->count < P->capacity && total > 0) {
        data = gantl__flat_grow(P, P->data, total);
        if (data) P->data = data;
        if (data && P->requires_grad) {
            grad = gantl__flat_grow(P, P->grad, total);
            if (grad) P->grad = grad;
        }
    }
    if (!t || !copy || P->count >= P->capacity || (total > 0 && (!data || (P->requires_grad && !grad)))) {
        GANTL_FREE(t);
        GANTL_FREE(copy);
        gantl__params_rebind(P);
        gantl__fail(GANTL_ERR_NOMEM, "params_add: out of memory adding '%s' (%lld floats)", name, (long long)numel);
        return NULL;
    }
    gantl__flat_zero(P->device, P->data + P->numel, slice);
    if (P->grad) gantl__flat_zero(P->device, P->grad + P->numel, slice);
    memset(t, 0, sizeof *t);
    t->ndim = ndim;
    for (int d = 0; d < GANTL_MAX_DIMS; d++) t->shape[d] = d < ndim ? shape[d] : 1;
    t->numel = numel;
    t->op = GANTL_OP_NONE;
    t->device = P->device;
    t->flags = GANTL_FLAG_PARAM | (P->requires_grad ? (uint32_t)(GANTL_FLAG_REQUIRES_GRAD | GANTL_FLAG_GRAD_SET) : 0u);
    t->name = copy;
    P->tensors[P->count++] = t;
    P->numel = total;
    gantl__params_rebind(P);
    return t;
}

GANTLDEF gantl_status gantl_params_to_device(gantl_params *P, gantl_device device) {
    if ((int)device == P->device) return GANTL_OK;
    const gantl_backend *be = gantl__device_hooks(device != GANTL_CPU ? (int)device : P->device, "params_to_device");
    float *data = gantl__flat_alloc((int)device, P->numel), *grad = P->grad ? gantl__flat_alloc((int)device, P->numel) : NULL;
    gantl_status s = data && (grad || !P->grad) ? GANTL_OK : GANTL_ERR_NOMEM;
    if (s == GANTL_OK && P->numel) s = be->copy(data, P->data, (size_t)P->numel * sizeof(float));
    if (s == GANTL_OK && P->numel && grad) s = be->copy(grad, P->grad, (size_t)P->numel * sizeof(float));
    if (s != GANTL_OK) {
        gantl__flat_free((int)device, data);
        gantl__flat_free((int)device, grad);
        if (s == GANTL_ERR_NOMEM)
            gantl__fail(s, "params_to_device: out of memory for %lld parameters on device %d", (long long)P->numel,
                        (int)device);
        return s;
    }
    gantl__flat_free(P->device, P->data);
    gantl__flat_free(P->device, P->grad);
    P->data = data, P->grad = grad, P->device = (int32_t)device;
    for (int i = 0; i < P->count; i++) P->tensors[i]->device = (int32_t)device;
    gantl__params_rebind(P);
    return GANTL_OK;
}

GANTLDEF gantl_tensor *gantl_params_find(const gantl_params *P, const char *name) {
    for (int i = 0; i < P->count; i++)
        if (strcmp(P->tensors[i]->name, name) == 0) return P->tensors[i];
    return NULL;
}

GANTLDEF void gantl_params_zero_grad(gantl_params *P) {
    if (P->grad) gantl__flat_zero(P->device, P->grad, P->numel);
    for (int i = 0; i < P->count; i++) P->tensors[i]->flags &= ~(uint32_t)GANTL_FLAG_GRAD_SET;
}

GANTLDEF void gantl_params_mark_grad(gantl_params *P) {
    for (int i = 0; i < P->count; i++) P->tensors[i]->flags |= GANTL_FLAG_GRAD_SET;
}

GANTLDEF void gantl_params_requires_grad(gantl_params *P, int on) {
    GANTL__CHECK(P->grad || !on, "params_requires_grad: a set made without gradients cannot track them");
    for (int i = 0; i < P->count; i++) {
        if (on) P->tensors[i]->flags |= GANTL_FLAG_REQUIRES_GRAD;
        else P->tensors[i]->flags &= ~(uint32_t)GANTL_FLAG_REQUIRES_GRAD;
    }
}

GANTLDEF void gantl_params_nan_to_num_grad(gantl_params *P, float limit) {
    float *g = P->grad;
    if (!g) return;
    if (P->device != GANTL_CPU) {
        gantl__device_hooks(P->device, "params_nan_to_num_grad")->nan_to_num(g, limit, P->numel);
        return;
    }
    GANTL__OMP(parallel for schedule(static) if (P->numel > 65536))
    for (int64_t i = 0; i < P->numel; i++) {
        float v = g[i];
        g[i] = v != v ? 0.0f : (v > limit ? limit : (v < -limit ? -limit : v));
    }
}

static void gantl__params_check_layout(const gantl_params *a, const gantl_params *b, const char *op) {
    GANTL__CHECK(a->count == b->count && a->numel == b->numel, "%s: parameter sets differ (%d vs %d tensors)", op,
                 a->count, b->count);
    for (int i = 0; i < a->count; i++)
        GANTL__CHECK(gantl_same_shape(a->tensors[i], b->tensors[i]), "%s: '%s' is %s in one set and %s in the other", op,
                     a->tensors[i]->name, GANTL__SHP(a->tensors[i]), GANTL__SHP(b->tensors[i]));
}

GANTLDEF void gantl_params_copy(gantl_params *dst, const gantl_params *src) {
    gantl__params_check_layout(dst, src, "params_copy");
    if (!src->numel) return;
    if (dst->device != GANTL_CPU || src->device != GANTL_CPU) /* the copy of either device's backend */
        gantl__device_hooks(dst->device != GANTL_CPU ? dst->device : src->device, "params_copy")
            ->copy(dst->data, src->data, (size_t)src->numel * sizeof(float));
    else
        memcpy(dst->data, src->data, (size_t)src->numel * sizeof(float));
}

GANTLDEF void gantl_params_lerp(gantl_params *dst, const gantl_params *src, float t) {
    gantl__params_check_layout(dst, src, "params_lerp");
    if (dst->device != GANTL_CPU || src->device != GANTL_CPU) {
        GANTL__CHECK(dst->device == src->device, "params_lerp: sets on devices %d and %d", dst->device, src->device);
        gantl__device_hooks(dst->device, "params_lerp")->lerp(dst->data, src->data, t, src->numel);
        return;
    }
    float *d = dst->data;
    const float *s = src->data;
    GANTL__OMP(parallel for schedule(static) if (src->numel > 65536))
    for (int64_t i = 0; i < src->numel; i++) d[i] = s[i] + (d[i] - s[i]) * t;
}

GANTLDEF gantl_status gantl_params_clone_layout(gantl_params *dst, const gantl_params *src, int requires_grad) {
    gantl_params_init(dst, requires_grad);
    for (int i = 0; i < src->count; i++) {
        const gantl_tensor *t = src->tensors[i];
        if (!gantl_params_add(dst, t->name, t->ndim, t->shape)) {
            gantl_params_free(dst);
            return GANTL_ERR_NOMEM;
        }
    }
    gantl_status s = gantl_params_to_device(dst, (gantl_device)src->device); /* where src is */
    if (s != GANTL_OK) gantl_params_free(dst);
    return s;
}

GANTLDEF gantl_status gantl_adam_init(gantl_adam *opt, const gantl_params *P, double lr, double beta1, double beta2,
                                      double eps) {
    memset(opt, 0, sizeof *opt);
    opt->lr = lr, opt->beta1 = beta1, opt->beta2 = beta2, opt->eps = eps;
    opt->numel = P->numel;
    opt->count = P->count;
    opt->device = P->device;
    opt->m = gantl__flat_alloc(P->device, P->numel);
    opt->v = gantl__flat_alloc(P->device, P->numel);
    opt->steps = (int64_t *)GANTL_MALLOC((size_t)(P->count ? P->count : 1) * sizeof(int64_t));
    if (opt->m) gantl__flat_zero(P->device, opt->m, P->numel);
    if (opt->v) gantl__flat_zero(P->device, opt->v, P->numel);
    if (!opt->m || !opt->v || !opt->steps) {
        gantl_adam_free(opt);
        return gantl__fail(GANTL_ERR_NOMEM, "adam_init: out of memory for %lld parameters", (long long)P->numel);
    }
    memset(opt->steps, 0, (size_t)(P->count ? P->count : 1) * sizeof(int64_t));
    return GANTL_OK;
}

static void gantl__optimizer_check(const gantl_params *P, int64_t numel, int count, const char *op) {
    GANTL__CHECK(numel == P->numel && count == P->count && P->grad,
                 "%s: optimizer made for %d tensors of %lld values, parameters have %d of %lld%s", op, count,
                 (long long)numel, P->count, (long long)P->numel, P->grad ? "" : " and no gradients");
}

/* torch.optim.Adam, per tensor whose gradient is set: m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
   p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps), t the tensor's own step count. */
GANTLDEF void gantl_adam_step(gantl_adam *opt, gantl_params *P) {
    gantl__optimizer_check(P, opt->numel, opt->count, "adam_step");
    opt->step++;
    float b1 = (float)opt->beta1, b2 = (float)opt->beta2, one_b1 = (float)(1.0 - opt->beta1),
          one_b2 = (float)(1.0 - opt->beta2), eps = (float)opt->eps;
    for (int k = 0; k < P->count; k++) {
        gantl_tensor *t = P->tensors[k];
        if (!(t->flags & GANTL_FLAG_GRAD_SET)) continue;
        int64_t step = ++opt->steps[k], off = t->data - P->data, n = t->numel;
        double bc1 = 1.0 - pow(opt->beta1, (double)step), bc2 = 1.0 - pow(opt->beta2, (double)step);
        float step_size = (float)(opt->lr / bc1), bc2_sqrt = (float)sqrt(bc2);
        float *p = P->data + off, *g = P->grad + off, *m = opt->m + off, *v = opt->v + off;
        if (P->device != GANTL_CPU) {
            GANTL__CHECK(opt->device == P->device, "adam_step: parameters on device %d, optimizer state on %d",
                         P->device, opt->device);
            gantl__device_hooks(P->device, "adam_step")->adam(p, g, m, v, n, b1, b2, one_b1, one_b2, step_size, bc2_sqrt, eps);
            continue;
        }
        GANTL__OMP(parallel for schedule(static) if (n > 65536))
        for (int64_t i = 0; i < n; i++) {
            m[i] = m[i] * b1 + g[i] * one_b1;
            v[i] = v[i] * b2 + one_b2 * g[i] * g[i];
            p[i] -= step_size * (m[i] / (sqrtf(v[i]) / bc2_sqrt + eps));
        }
    }
}

GANTLDEF void gantl_adam_free(gantl_adam *opt) {
    gantl__flat_free(opt->device, opt->m);
    gantl__flat_free(opt->device, opt->v);
    GANTL_FREE(opt->steps);
    opt->m = opt->v = NULL;
    opt->steps = NULL;
}

GANTLDEF gantl_status gantl_sgd_init(gantl_sgd *opt, const gantl_params *P, double lr, double momentum) {
    memset(opt, 0, sizeof *opt);
    opt->lr = lr, opt->momentum = momentum;
    opt->numel = P->numel;
    opt->count = P->count;
    opt->device = P->device;
    opt->buf = gantl__flat_alloc(P->device, P->numel);
    if (opt->buf) gantl__flat_zero(P->device, opt->buf, P->numel);
    opt->steps = (int64_t *)GANTL_MALLOC((size_t)(P->count ? P->count : 1) * sizeof(int64_t));
    if (!opt->buf || !opt->steps) {
        gantl_sgd_free(opt);
        return gantl__fail(GANTL_ERR_NOMEM, "sgd_init: out of memory for %lld parameters", (long long)P->numel);
    }
    memset(opt->steps, 0, (size_t)(P->count ? P->count : 1) * sizeof(int64_t));
    return GANTL_OK;
}

/* torch.optim.SGD per tensor whose gradient is set: buf = g on its first step, then
   buf = momentum * buf + g; p -= lr * buf. */
GANTLDEF void gantl_sgd_step(gantl_sgd *opt, gantl_params *P) {
    gantl__optimizer_check(P, opt->numel, opt->count, "sgd_step");
    opt->step++;
    float lr = (float)opt->lr, mu = (float)opt->momentum;
    for (int k = 0; k < P->count; k++) {
        gantl_tensor *t = P->tensors[k];
        if (!(t->flags & GANTL_FLAG_GRAD_SET)) continue;
        int first = opt->steps[k]++ == 0;
        int64_t off = t->data - P->data, n = t->numel;
        float *p = P->data + off, *g = P->grad + off, *buf = opt->buf + off;
        if (P->device != GANTL_CPU) {
            GANTL__CHECK(opt->device == P->device, "sgd_step: parameters on device %d, optimizer state on %d",
                         P->device, opt->device);
            gantl__device_hooks(P->device, "sgd_step")->sgd(p, g, buf, n, lr, mu, first);
            continue;
        }
        GANTL__OMP(parallel for schedule(static) if (n > 65536))
        for (int64_t i = 0; i < n; i++) {
            float d = g[i];
            if (mu != 0.0f) d = buf[i] = first ? d : mu * buf[i] + d;
            p[i] -= lr * d;
        }
    }
}

GANTLDEF void gantl_sgd_free(gantl_sgd *opt) {
    gantl__flat_free(opt->device, opt->buf);
    GANTL_FREE(opt->steps);
    opt->buf = NULL;
    opt->steps = NULL;
}

/* ---- collectives ---- */

static gantl_status gantl__single_allreduce_f32(void *state, float *buf, int64_t n) {
    (void)state, (void)buf, (void)n;
    return GANTL_OK;
}
static gantl_status gantl__single_allreduce_f64(void *state, double *buf, int64_t n) {
    (void)state, (void)buf, (void)n;
    return GANTL_OK;
}
static gantl_status gantl__single_broadcast(void *state, void *buf, int64_t bytes, int root) {
    (void)state, (void)buf, (void)bytes, (void)root;
    return GANTL_OK;
}

GANTLDEF gantl_comm gantl_comm_single(void) {
    gantl_comm c;
    memset(&c, 0, sizeof c);
    c.rank = 0, c.size = 1;
    c.allreduce_f32 = gantl__single_allreduce_f32;
    c.allreduce_f64 = gantl__single_allreduce_f64;
    c.broadcast = gantl__single_broadcast;
    return c;
}

static void gantl__comm_check(const gantl_comm *c, const void *buf, int64_t n, const char *op) {
    GANTL__CHECK(c && c->size >= 1 && c->rank >= 0 && c->rank < c->size, "%s: not a communicator (rank %d of %d)", op,
                 c ? c->rank : -1, c ? c->size : -1);
    GANTL__CHECK(n >= 0 && (buf || n == 0), "%s: %lld values at %p", op, (long long)n, buf);
    GANTL__CHECK(c->size == 1 || (c->allreduce_f32 && c->allreduce_f64 && c->broadcast),
                 "%s: the communicator of %d ranks lacks a function", op, c->size);
}

GANTLDEF gantl_status gantl_comm_allreduce_f32(const gantl_comm *c, float *buf, int64_t n) {
    gantl__comm_check(c, buf, n, "comm_allreduce_f32");
    return c->size == 1 || n == 0 ? GANTL_OK : c->allreduce_f32(c->state, buf, n);
}

GANTLDEF gantl_status gantl_comm_allreduce_f64(const gantl_comm *c, double *buf, int64_t n) {
    gantl__comm_check(c, buf, n, "comm_allreduce_f64");
    return c->size == 1 || n == 0 ? GANTL_OK : c->allreduce_f64(c->state, buf, n);
}

GANTLDEF gantl_status gantl_comm_broadcast(const gantl_comm *c, void *buf, int64_t bytes, int root) {
    gantl__comm_check(c, buf, bytes, "comm_broadcast");
    GANTL__CHECK(root >= 0 && root < c->size, "comm_broadcast: root %d of %d ranks", root, c->size);
    return c->size == 1 || bytes == 0 ? GANTL_OK : c->broadcast(c->state, buf, bytes, root);
}

GANTLDEF gantl_status gantl_params_allreduce_grad(const gantl_comm *c, gantl_params *P) {
    GANTL__CHECK(P->grad || P->numel == 0, "params_allreduce_grad: the set has no gradients");
    /* device gradients: finished before a transport that reads them from the host (MPI) */
    gantl_status s = P->device != GANTL_CPU && c->size > 1 ? gantl_device_synchronize((gantl_device)P->device) : GANTL_OK;
    if (s != GANTL_OK) return s;
    s = gantl_comm_allreduce_f32(c, P->grad, P->numel);
    if (s != GANTL_OK || c->size == 1) return s;
    float *g = P->grad, k = (float)c->size;
    const gantl_backend *be = P->device != GANTL_CPU ? gantl__device_hooks(P->device, "params_allreduce_grad") : NULL;
    if (be && be->divide) return be->divide(g, k, P->numel); /* on the device, not through host page faults */
    GANTL__OMP(parallel for schedule(static) if (P->numel > 65536))
    for (int64_t i = 0; i < P->numel; i++) g[i] /= k;
    return GANTL_OK;
}

GANTLDEF gantl_status gantl_params_broadcast(const gantl_comm *c, gantl_params *P, int root) {
    gantl_status s = P->device != GANTL_CPU && c->size > 1 ? gantl_device_synchronize((gantl_device)P->device) : GANTL_OK;
    if (s != GANTL_OK) return s;
    return gantl_comm_broadcast(c, P->data, P->numel * (int64_t)sizeof(float), root);
}

#ifdef GANTL_MPI
typedef struct gantl__mpi {
    MPI_Comm comm;
    double timeout; /* seconds a collective may wait for the other ranks */
} gantl__mpi;

static gantl_status gantl__mpi_fail(const char *what, int err) {
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(err, msg, &len) != MPI_SUCCESS) snprintf(msg, sizeof msg, "MPI error %d", err);
    return gantl__fail(GANTL_ERR_COMM, "%s: %s", what, msg);
}

/* Polls a non-blocking collective until it completes or the timeout passes. MPI_Test
   drives MPI's progress, as a blocking call would (and yields the core when Open MPI runs
   oversubscribed). A collective cannot be cancelled: after a timeout the communicator is
   unusable, which the message says. */
static gantl_status gantl__mpi_wait(gantl__mpi *m, MPI_Request *req, const char *what, int64_t count) {
    double start = MPI_Wtime();
    for (;;) {
        int done = 0, err = MPI_Test(req, &done, MPI_STATUS_IGNORE);
        if (err != MPI_SUCCESS) return gantl__mpi_fail(what, err);
        if (done) return GANTL_OK;
        if (MPI_Wtime() - start > m->timeout) {
            int rank = -1, size = 0;
            MPI_Comm_rank(m->comm, &rank);
            MPI_Comm_size(m->comm, &size);
            return gantl__fail(GANTL_ERR_COMM,
                               "rank %d of %d: %s of %lld values did not complete within %g s: another rank died, "
                               "hangs or fell far behind; the communicator is unusable (end every rank)",
                               rank, size, what, (long long)count, m->timeout);
        }
    }
}

/* MPI counts are ints: large buffers go in pieces of at most 2^30. */
#define GANTL__MPI_PIECE ((int64_t)1 << 30)

static gantl_status gantl__mpi_allreduce(void *state, void *buf, int64_t n, MPI_Datatype type, size_t size,
                                         const char *what) {
    gantl__mpi *m = (gantl__mpi *)state;
    for (int64_t at = 0; at < n; at += GANTL__MPI_PIECE) {
        int count = (int)(n - at < GANTL__MPI_PIECE ? n - at : GANTL__MPI_PIECE);
        MPI_Request req;
        int err = MPI_Iallreduce(MPI_IN_PLACE, (char *)buf + (size_t)at * size, count, type, MPI_SUM, m->comm, &req);
        if (err != MPI_SUCCESS) return gantl__mpi_fail(what, err);
        gantl_status s = gantl__mpi_wait(m, &req, what, n);
        if (s != GANTL_OK) return s;
    }
    return GANTL_OK;
}

static gantl_status gantl__mpi_allreduce_f32(void *state, float *buf, int64_t n) {
    return gantl__mpi_allreduce(state, buf, n, MPI_FLOAT, sizeof(float), "MPI_Iallreduce (float)");
}

static gantl_status gantl__mpi_allreduce_f64(void *state, double *buf, int64_t n) {
    return gantl__mpi_allreduce(state, buf, n, MPI_DOUBLE, sizeof(double), "MPI_Iallreduce (double)");
}

static gantl_status gantl__mpi_broadcast(void *state, void *buf, int64_t bytes, int root) {
    gantl__mpi *m = (gantl__mpi *)state;
    for (int64_t at = 0; at < bytes; at += GANTL__MPI_PIECE) {
        int count = (int)(bytes - at < GANTL__MPI_PIECE ? bytes - at : GANTL__MPI_PIECE);
        MPI_Request req;
        int err = MPI_Ibcast((char *)buf + at, count, MPI_BYTE, root, m->comm, &req);
        if (err != MPI_SUCCESS) return gantl__mpi_fail("MPI_Ibcast", err);
        gantl_status s = gantl__mpi_wait(m, &req, "MPI_Ibcast", bytes);
        if (s != GANTL_OK) return s;
    }
    return GANTL_OK;
}

GANTLDEF gantl_status gantl_comm_mpi_init(gantl_comm *c, double timeout_seconds) {
    int initialized = 0, err;
    *c = gantl_comm_single();
    if (MPI_Initialized(&initialized) != MPI_SUCCESS || !initialized)
        return gantl__fail(GANTL_ERR_COMM, "comm_mpi_init: MPI is not initialised (call MPI_Init first)");
    gantl__mpi *m = (gantl__mpi *)GANTL_MALLOC(sizeof *m);
    if (!m) return gantl__fail(GANTL_ERR_NOMEM, "comm_mpi_init: out of memory");
    m->timeout = timeout_seconds > 0 ? timeout_seconds : 600.0;
    if ((err = MPI_Comm_dup(MPI_COMM_WORLD, &m->comm)) != MPI_SUCCESS) {
        GANTL_FREE(m);
        return gantl__mpi_fail("MPI_Comm_dup", err);
    }
    MPI_Comm_set_errhandler(m->comm, MPI_ERRORS_RETURN);
    MPI_Comm_rank(m->comm, &c->rank);
    MPI_Comm_size(m->comm, &c->size);
    c->state = m;
    c->allreduce_f32 = gantl__mpi_allreduce_f32;
    c->allreduce_f64 = gantl__mpi_allreduce_f64;
    c->broadcast = gantl__mpi_broadcast;
    return GANTL_OK;
}

GANTLDEF void gantl_comm_mpi_free(gantl_comm *c) {
    gantl__mpi *m = (gantl__mpi *)c->state;
    if (m && c->broadcast == gantl__mpi_broadcast) {
        MPI_Comm_free(&m->comm);
        GANTL_FREE(m);
    }
    *c = gantl_comm_single();
}
#endif

/* ---------------------------------------------------------------------------------------
   7. Files: safetensors
   ------------------------------------------------------------------------------------- */

static const char *const gantl__dtype_names[GANTL_DTYPE_COUNT] = {"F32", "F64", "F16", "BF16", "I64",
                                                                  "I32", "I16", "I8",  "U8",   "BOOL"};
static const size_t gantl__dtype_sizes[GANTL_DTYPE_COUNT] = {4, 8, 2, 2, 8, 4, 2, 1, 1, 1};

GANTLDEF const char *gantl_dtype_name(gantl_dtype dtype) {
    return dtype >= 0 && dtype < GANTL_DTYPE_COUNT ? gantl__dtype_names[dtype] : "?";
}
GANTLDEF size_t gantl_dtype_size(gantl_dtype dtype) {
    return dtype >= 0 && dtype < GANTL_DTYPE_COUNT ? gantl__dtype_sizes[dtype] : 0;
}

GANTLDEF gantl_status gantl_read_file(const char *path, unsigned char **data, size_t *size) {
    *data = NULL;
    *size = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return gantl__fail(GANTL_ERR_IO, "cannot open '%s' for reading", path);
    long length = -1;
    if (fseek(f, 0, SEEK_END) == 0) length = ftell(f);
    if (length < 0 || fseek(f, 0, SEEK_SET) != 0) {
        fclose(f);
        return gantl__fail(GANTL_ERR_IO, "cannot determine the size of '%s'", path);
    }
    unsigned char *buf = (unsigned char *)GANTL_MALLOC((size_t)length + 1);
    if (!buf) {
        fclose(f);
        return gantl__fail(GANTL_ERR_NOMEM, "out of memory reading '%s' (%ld bytes)", path, length);
    }
    size_t got = fread(buf, 1, (size_t)length, f);
    int err = ferror(f);
    fclose(f);
    if (err || got != (size_t)length) {
        GANTL_FREE(buf);
        return gantl__fail(GANTL_ERR_IO, "error reading '%s'", path);
    }
    buf[length] = 0;
    *data = buf;
    *size = (size_t)length;
    return GANTL_OK;
}

GANTLDEF gantl_status gantl_write_file_atomic(const char *path, const void *data, size_t size) {
    size_t n = strlen(path);
    char *tmp = (char *)GANTL_MALLOC(n + 5);
    if (!tmp) return gantl__fail(GANTL_ERR_NOMEM, "out of memory writing '%s'", path);
    memcpy(tmp, path, n);
    memcpy(tmp + n, ".tmp", 5);
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        gantl_status s = gantl__fail(GANTL_ERR_IO, "cannot open '%s' for writing", tmp);
        GANTL_FREE(tmp);
        return s;
    }
    int ok = fwrite(data, 1, size, f) == size;
    ok &= fflush(f) == 0;
    ok &= fclose(f) == 0;
    /* Only a complete file replaces the old one; rename is atomic on POSIX. */
    if (ok && rename(tmp, path) != 0) ok = remove(path) == 0 && rename(tmp, path) == 0;
    if (!ok) {
        remove(tmp);
        gantl_status s = gantl__fail(GANTL_ERR_IO, "error writing '%s' (disk full or no permission?)", path);
        GANTL_FREE(tmp);
        return s;
    }
    GANTL_FREE(tmp);
    return GANTL_OK;
}

/* A small strict JSON reader, enough for safetensors headers. */
typedef struct gantl__json {
    const char *p, *end;
    const char *error; /* first error, or NULL */
} gantl__json;

static void gantl__json_ws(gantl__json *j) {
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r')) j->p++;
}

static int gantl__json_fail(gantl__json *j, const char *what) {
    if (!j->error) j->error = what;
    return 0;
}

static int gantl__json_expect(gantl__json *j, char c) {
    gantl__json_ws(j);
    if (j->p < j->end && *j->p == c) {
        j->p++;
        return 1;
    }
    return 0;
}

static int gantl__json_hex4(const char *p, unsigned *out) {
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f') v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') v |= (unsigned)(c - 'A' + 10);
        else return 0;
    }
    *out = v;
    return 1;
}

static char *gantl__json_fail_str(gantl__json *j, const char *what) {
    gantl__json_fail(j, what);
    return NULL;
}

/* Parses a string into a fresh GANTL_MALLOC'd UTF-8 buffer (NULL on error). */
static char *gantl__json_string(gantl__json *j) {
    gantl__json_ws(j);
    if (j->p >= j->end || *j->p != '"') return gantl__json_fail_str(j, "expected a string");
    const char *s = ++j->p;
    size_t cap = 0;
    while (s < j->end && *s != '"') s += (*s == '\\' && s + 1 < j->end) ? 2 : 1;
    if (s >= j->end) return gantl__json_fail_str(j, "unterminated string");
    cap = (size_t)(s - j->p) + 1; /* escapes never expand */
    char *out = (char *)GANTL_MALLOC(cap);
    size_t n = 0;
    if (!out) return gantl__json_fail_str(j, "out of memory");
    while (*j->p != '"') {
        unsigned char c = (unsigned char)*j->p++;
        if (c < 0x20) {
            GANTL_FREE(out);
            return gantl__json_fail_str(j, "control character in string");
        }
        if (c != '\\') {
            out[n++] = (char)c;
            continue;
        }
        char e = *j->p++;
        unsigned cp;
        switch (e) {
        case '"': out[n++] = '"'; break;
        case '\\': out[n++] = '\\'; break;
        case '/': out[n++] = '/'; break;
        case 'b': out[n++] = '\b'; break;
        case 'f': out[n++] = '\f'; break;
        case 'n': out[n++] = '\n'; break;
        case 'r': out[n++] = '\r'; break;
        case 't': out[n++] = '\t'; break;
        case 'u':
            if (j->end - j->p < 4 || !gantl__json_hex4(j->p, &cp)) {
                GANTL_FREE(out);
                return gantl__json_fail_str(j, "bad \\u escape");
            }
            j->p += 4;
            if (cp >= 0xD800 && cp < 0xDC00) { /* surrogate pair */
                unsigned lo;
                if (j->end - j->p < 6 || j->p[0] != '\\' || j->p[1] != 'u' || !gantl__json_hex4(j->p + 2, &lo) ||
                    lo < 0xDC00 || lo > 0xDFFF) {
                    GANTL_FREE(out);
                    return gantl__json_fail_str(j, "bad surrogate pair");
                }
                j->p += 6;
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            } else if (cp >= 0xDC00 && cp < 0xE000) {
                GANTL_FREE(out);
                return gantl__json_fail_str(j, "lone low surrogate");
            }
            /* at most 4 UTF-8 bytes from a 6- or 12-byte escape */
            if (cp < 0x80) out[n++] = (char)cp;
            else if (cp < 0x800) out[n++] = (char)(0xC0 | (cp >> 6)), out[n++] = (char)(0x80 | (cp & 0x3F));
            else if (cp < 0x10000)
                out[n++] = (char)(0xE0 | (cp >> 12)), out[n++] = (char)(0x80 | ((cp >> 6) & 0x3F)),
                out[n++] = (char)(0x80 | (cp & 0x3F));
            else
                out[n++] = (char)(0xF0 | (cp >> 18)), out[n++] = (char)(0x80 | ((cp >> 12) & 0x3F)),
                out[n++] = (char)(0x80 | ((cp >> 6) & 0x3F)), out[n++] = (char)(0x80 | (cp & 0x3F));
            break;
        default: GANTL_FREE(out); return gantl__json_fail_str(j, "bad escape in string");
        }
    }
    j->p++;
    out[n] = 0;
    if (strlen(out) != n) { /* \u0000 would cut the name short */
        GANTL_FREE(out);
        return gantl__json_fail_str(j, "NUL character in string");
    }
    return out;
}

/* A non-negative integer below 2^53. */
static int gantl__json_uint(gantl__json *j, int64_t *out) {
    gantl__json_ws(j);
    int64_t v = 0;
    const char *start = j->p;
    while (j->p < j->end && *j->p >= '0' && *j->p <= '9') {
        if (v > ((int64_t)1 << 53) / 10) return gantl__json_fail(j, "integer too large");
        v = v * 10 + (*j->p++ - '0');
    }
    if (j->p == start) return gantl__json_fail(j, "expected a non-negative integer");
    if (j->p - start > 1 && *start == '0') return gantl__json_fail(j, "leading zero in integer");
    if (j->p < j->end && (*j->p == '.' || *j->p == 'e' || *j->p == 'E')) return gantl__json_fail(j, "expected an integer");
    *out = v;
    return 1;
}

/* Skips any value (for unknown keys), with a nesting limit. */
static int gantl__json_skip(gantl__json *j, int depth) {
    if (depth > 64) return gantl__json_fail(j, "nesting too deep");
    gantl__json_ws(j);
    if (j->p >= j->end) return gantl__json_fail(j, "unexpected end");
    char c = *j->p;
    if (c == '"') {
        char *s = gantl__json_string(j);
        GANTL_FREE(s);
        return s != NULL;
    }
    if (c == '{' || c == '[') {
        char close = c == '{' ? '}' : ']';
        j->p++;
        if (gantl__json_expect(j, close)) return 1;
        do {
            if (c == '{') {
                char *key = gantl__json_string(j);
                if (!key) return 0;
                GANTL_FREE(key);
                if (!gantl__json_expect(j, ':')) return gantl__json_fail(j, "expected ':'");
            }
            if (!gantl__json_skip(j, depth + 1)) return 0;
        } while (gantl__json_expect(j, ','));
        return gantl__json_expect(j, close) ? 1 : gantl__json_fail(j, "expected ',' or a closing bracket");
    }
    const char *start = j->p; /* number, true, false, null */
    while (j->p < j->end && (strchr("+-.eE", *j->p) || (*j->p >= '0' && *j->p <= '9') || (*j->p >= 'a' && *j->p <= 'z')))
        j->p++;
    size_t len = (size_t)(j->p - start);
    if (len == 0) return gantl__json_fail(j, "unexpected character");
    if ((*start >= 'a' && *start <= 'z') &&
        !((len == 4 && !memcmp(start, "true", 4)) || (len == 5 && !memcmp(start, "false", 5)) ||
          (len == 4 && !memcmp(start, "null", 4))))
        return gantl__json_fail(j, "bad literal");
    return 1;
}

/* A number: JSON grammar checked here, the value by strtod on a bounded copy. */
static int gantl__json_number(gantl__json *j, double *out) {
    gantl__json_ws(j);
    const char *p = j->p, *start = p;
    if (p < j->end && *p == '-') p++;
    if (p >= j->end || *p < '0' || *p > '9') return gantl__json_fail(j, "expected a number");
    if (*p == '0') p++;
    else while (p < j->end && *p >= '0' && *p <= '9') p++;
    if (p < j->end && *p == '.') {
        p++;
        if (p >= j->end || *p < '0' || *p > '9') return gantl__json_fail(j, "bad number");
        while (p < j->end && *p >= '0' && *p <= '9') p++;
    }
    if (p < j->end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < j->end && (*p == '+' || *p == '-')) p++;
        if (p >= j->end || *p < '0' || *p > '9') return gantl__json_fail(j, "bad number");
        while (p < j->end && *p >= '0' && *p <= '9') p++;
    }
    char buf[64];
    size_t n = (size_t)(p - start);
    if (n >= sizeof buf) return gantl__json_fail(j, "number too long");
    memcpy(buf, start, n);
    buf[n] = 0;
    *out = strtod(buf, NULL);
    j->p = p;
    return 1;
}

static int gantl__json_value(gantl__json *j, gantl_json *v, int depth) {
    memset(v, 0, sizeof *v);
    if (depth > 64) return gantl__json_fail(j, "nesting too deep");
    gantl__json_ws(j);
    if (j->p >= j->end) return gantl__json_fail(j, "unexpected end");
    char c = *j->p;
    if (c == '"') {
        v->type = GANTL_JSON_STRING;
        v->string = gantl__json_string(j);
        return v->string != NULL;
    }
    if (c == '{' || c == '[') {
        int is_object = c == '{', cap = 0;
        char close = is_object ? '}' : ']';
        v->type = is_object ? GANTL_JSON_OBJECT : GANTL_JSON_ARRAY;
        j->p++;
        if (gantl__json_expect(j, close)) return 1;
        do {
            if (v->count == cap) {
                cap = cap ? 2 * cap : 8;
                gantl_json *items = (gantl_json *)GANTL_REALLOC(v->items, (size_t)cap * sizeof *items);
                char **keys = items && is_object ? (char **)GANTL_REALLOC(v->keys, (size_t)cap * sizeof *keys) : NULL;
                if (items) v->items = items;
                if (keys) v->keys = keys;
                if (!items || (is_object && !keys)) return gantl__json_fail(j, "out of memory");
            }
            if (is_object) {
                char *key = gantl__json_string(j);
                if (!key) return 0;
                v->keys[v->count] = key;
                if (!gantl__json_expect(j, ':')) {
                    memset(&v->items[v->count++], 0, sizeof(gantl_json));
                    return gantl__json_fail(j, "expected ':'");
                }
            }
            int ok = gantl__json_value(j, &v->items[v->count], depth + 1);
            v->count++; /* counted either way, so gantl_json_free releases it */
            if (!ok) return 0;
        } while (gantl__json_expect(j, ','));
        return gantl__json_expect(j, close) ? 1 : gantl__json_fail(j, "expected ',' or a closing bracket");
    }
    size_t left = (size_t)(j->end - j->p);
    if (left >= 4 && !memcmp(j->p, "true", 4)) {
        v->type = GANTL_JSON_BOOL, v->boolean = 1, j->p += 4;
        return 1;
    }
    if (left >= 5 && !memcmp(j->p, "false", 5)) {
        v->type = GANTL_JSON_BOOL, j->p += 5;
        return 1;
    }
    if (left >= 4 && !memcmp(j->p, "null", 4)) {
        v->type = GANTL_JSON_NULL, j->p += 4;
        return 1;
    }
    v->type = GANTL_JSON_NUMBER;
    return gantl__json_number(j, &v->number);
}

GANTLDEF void gantl_json_free(gantl_json *v) {
    if (!v) return;
    for (int i = 0; i < v->count; i++) {
        gantl_json_free(&v->items[i]);
        if (v->keys) GANTL_FREE(v->keys[i]);
    }
    GANTL_FREE(v->items);
    GANTL_FREE(v->keys);
    GANTL_FREE(v->string);
    memset(v, 0, sizeof *v);
}

GANTLDEF gantl_status gantl_json_parse(gantl_json *out, const char *text, size_t length) {
    gantl__json j = {text, text + length, NULL};
    int ok = gantl__json_value(&j, out, 0);
    gantl__json_ws(&j);
    if (ok && j.p != j.end) ok = gantl__json_fail(&j, "trailing characters");
    if (!ok) {
        gantl_json_free(out);
        return gantl__fail(GANTL_ERR_FORMAT, "bad JSON at character %ld: %s", (long)(j.p - text), j.error);
    }
    return GANTL_OK;
}

GANTLDEF const gantl_json *gantl_json_get(const gantl_json *j, const char *key) {
    if (!j || j->type != GANTL_JSON_OBJECT) return NULL;
    for (int i = 0; i < j->count; i++)
        if (strcmp(j->keys[i], key) == 0) return &j->items[i];
    return NULL;
}

GANTLDEF void gantl_st_free(gantl_st_file *f) {
    for (int i = 0; i < f->count; i++) GANTL_FREE(f->tensors[i].name);
    for (int i = 0; i < f->meta_count; i++) {
        GANTL_FREE(f->meta_keys[i]);
        GANTL_FREE(f->meta_values[i]);
    }
    GANTL_FREE(f->tensors);
    GANTL_FREE(f->meta_keys);
    GANTL_FREE(f->meta_values);
    GANTL_FREE(f->image);
    memset(f, 0, sizeof *f);
}

/* Parses the header of f->image (already owned by f). */
static gantl_status gantl__st_parse_header(gantl_st_file *f) {
    if (f->size < 8) return gantl__fail(GANTL_ERR_FORMAT, "file of %zu bytes is too short for safetensors", f->size);
    uint64_t header_len = 0;
    for (int i = 7; i >= 0; i--) header_len = header_len << 8 | f->image[i];
    if (header_len > f->size - 8)
        return gantl__fail(GANTL_ERR_FORMAT, "header length %llu exceeds the file (%zu bytes): truncated?",
                           (unsigned long long)header_len, f->size);
    const unsigned char *data = f->image + 8 + header_len;
    size_t data_size = f->size - 8 - (size_t)header_len;
    gantl__json j = {(const char *)f->image + 8, (const char *)data, NULL};
    int cap = 0, meta_cap = 0, meta_seen = 0;
    if (!gantl__json_expect(&j, '{')) return gantl__fail(GANTL_ERR_FORMAT, "header is not a JSON object");
    if (!gantl__json_expect(&j, '}')) {
        do {
            char *key = gantl__json_string(&j);
            if (!key) break;
            if (!gantl__json_expect(&j, ':')) {
                GANTL_FREE(key);
                gantl__json_fail(&j, "expected ':'");
                break;
            }
            if (strcmp(key, "__metadata__") == 0) {
                GANTL_FREE(key);
                if (meta_seen++) { gantl__json_fail(&j, "two __metadata__ entries"); break; }
                if (!gantl__json_expect(&j, '{')) { gantl__json_fail(&j, "__metadata__ is not an object"); break; }
                if (gantl__json_expect(&j, '}')) continue;
                do {
                    char *k = gantl__json_string(&j), *v = NULL;
                    if (k && !gantl__json_expect(&j, ':')) gantl__json_fail(&j, "expected ':'");
                    if (!j.error) v = gantl__json_string(&j);
                    if (!j.error && gantl_st_meta(f, k)) gantl__json_fail(&j, "duplicate __metadata__ key");
                    if (!j.error && f->meta_count == meta_cap) {
                        int c2 = meta_cap ? 2 * meta_cap : 8;
                        char **nk = (char **)GANTL_REALLOC(f->meta_keys, (size_t)c2 * sizeof(char *));
                        if (nk) f->meta_keys = nk;
                        char **nv = nk ? (char **)GANTL_REALLOC(f->meta_values, (size_t)c2 * sizeof(char *)) : NULL;
                        if (nv) f->meta_values = nv, meta_cap = c2;
                        else gantl__json_fail(&j, "out of memory");
                    }
                    if (j.error) {
                        GANTL_FREE(k);
                        GANTL_FREE(v);
                        break;
                    }
                    f->meta_keys[f->meta_count] = k;
                    f->meta_values[f->meta_count++] = v;
                } while (gantl__json_expect(&j, ','));
                if (!j.error && !gantl__json_expect(&j, '}')) gantl__json_fail(&j, "expected ',' or '}' in __metadata__");
                if (j.error) break;
                continue;
            }
            if (gantl_st_find(f, key)) {
                GANTL_FREE(key);
                gantl__json_fail(&j, "duplicate tensor name");
                break;
            }
            if (f->count == cap) {
                int c2 = cap ? 2 * cap : 64;
                gantl_st_tensor *nt = (gantl_st_tensor *)GANTL_REALLOC(f->tensors, (size_t)c2 * sizeof *nt);
                if (!nt) {
                    GANTL_FREE(key);
                    gantl__json_fail(&j, "out of memory");
                    break;
                }
                f->tensors = nt;
                cap = c2;
            }
            gantl_st_tensor *t = &f->tensors[f->count++];
            memset(t, 0, sizeof *t);
            t->name = key;
            int have_dtype = 0, have_shape = 0, have_offsets = 0;
            int64_t begin = 0, end = 0;
            if (!gantl__json_expect(&j, '{')) { gantl__json_fail(&j, "tensor entry is not an object"); break; }
            if (!gantl__json_expect(&j, '}')) {
                do {
                    char *field = gantl__json_string(&j);
                    if (!field) break;
                    if (!gantl__json_expect(&j, ':')) {
                        GANTL_FREE(field);
                        gantl__json_fail(&j, "expected ':'");
                        break;
                    }
                    if (strcmp(field, "dtype") == 0) {
                        char *name = gantl__json_string(&j);
                        int found = -1;
                        for (int d = 0; name && d < GANTL_DTYPE_COUNT; d++)
                            if (strcmp(name, gantl__dtype_names[d]) == 0) found = d;
                        if (name && found < 0) gantl__json_fail(&j, "unknown dtype");
                        GANTL_FREE(name);
                        t->dtype = (gantl_dtype)(found < 0 ? 0 : found);
                        have_dtype = found >= 0;
                    } else if (strcmp(field, "shape") == 0) {
                        if (!gantl__json_expect(&j, '[')) gantl__json_fail(&j, "shape is not an array");
                        else if (!gantl__json_expect(&j, ']')) {
                            do {
                                int64_t v;
                                if (t->ndim == GANTL_ST_MAX_DIMS) { gantl__json_fail(&j, "too many dimensions"); break; }
                                if (!gantl__json_uint(&j, &v)) break;
                                t->shape[t->ndim++] = v;
                            } while (gantl__json_expect(&j, ','));
                            if (!j.error && !gantl__json_expect(&j, ']')) gantl__json_fail(&j, "expected ']' in shape");
                        }
                        have_shape = !j.error;
                    } else if (strcmp(field, "data_offsets") == 0) {
                        if (!gantl__json_expect(&j, '[') || !gantl__json_uint(&j, &begin) || !gantl__json_expect(&j, ',') ||
                            !gantl__json_uint(&j, &end) || !gantl__json_expect(&j, ']'))
                            gantl__json_fail(&j, "data_offsets is not [begin, end]");
                        have_offsets = !j.error;
                    } else {
                        gantl__json_skip(&j, 0);
                    }
                    GANTL_FREE(field);
                } while (!j.error && gantl__json_expect(&j, ','));
                if (!j.error && !gantl__json_expect(&j, '}')) gantl__json_fail(&j, "expected ',' or '}' in tensor entry");
            }
            if (j.error) break;
            if (!have_dtype || !have_shape || !have_offsets) {
                gantl__json_fail(&j, "tensor entry lacks dtype, shape or data_offsets");
                break;
            }
            /* numel * size must equal end - begin, without overflow */
            int64_t numel = 1;
            for (int d = 0; d < t->ndim; d++) {
                if (t->shape[d] != 0 && numel > (((int64_t)1 << 53) / t->shape[d])) {
                    gantl__json_fail(&j, "shape too large");
                    break;
                }
                numel *= t->shape[d];
            }
            if (j.error) break;
            t->numel = numel;
            if (end < begin || (uint64_t)end > data_size) {
                gantl__json_fail(&j, "data_offsets outside the data section (truncated file?)");
                break;
            }
            if ((uint64_t)(end - begin) != (uint64_t)numel * gantl__dtype_sizes[t->dtype]) {
                gantl__json_fail(&j, "data_offsets do not match dtype and shape");
                break;
            }
            t->bytes = data + begin;
        } while (gantl__json_expect(&j, ','));
        if (!j.error && !gantl__json_expect(&j, '}')) gantl__json_fail(&j, "expected ',' or '}' after a tensor");
    }
    gantl__json_ws(&j);
    if (!j.error && j.p != j.end) gantl__json_fail(&j, "trailing characters after the header object");
    if (j.error) {
        long at = (long)(j.p - (const char *)f->image);
        return gantl__fail(GANTL_ERR_FORMAT, "bad safetensors header near byte %ld: %s", at, j.error);
    }
    /* No two tensors may share bytes. */
    for (int a = 0; a < f->count; a++)
        for (int b = a + 1; b < f->count; b++) {
            const gantl_st_tensor *ta = &f->tensors[a], *tb = &f->tensors[b];
            size_t la = (size_t)ta->numel * gantl__dtype_sizes[ta->dtype], lb = (size_t)tb->numel * gantl__dtype_sizes[tb->dtype];
            if (la && lb && ta->bytes < tb->bytes + lb && tb->bytes < ta->bytes + la)
                return gantl__fail(GANTL_ERR_FORMAT, "tensors '%s' and '%s' overlap", ta->name, tb->name);
        }
    return GANTL_OK;
}

GANTLDEF gantl_status gantl_st_parse(gantl_st_file *f, const void *bytes, size_t size) {
    memset(f, 0, sizeof *f);
    f->image = (unsigned char *)GANTL_MALLOC(size ? size : 1);
    if (!f->image) return gantl__fail(GANTL_ERR_NOMEM, "out of memory (%zu bytes)", size);
    if (size) memcpy(f->image, bytes, size);
    f->size = size;
    gantl_status s = gantl__st_parse_header(f);
    if (s != GANTL_OK) gantl_st_free(f);
    return s;
}

GANTLDEF gantl_status gantl_st_load(gantl_st_file *f, const char *path) {
    memset(f, 0, sizeof *f);
    gantl_status s = gantl_read_file(path, &f->image, &f->size);
    if (s != GANTL_OK) return s;
    s = gantl__st_parse_header(f);
    if (s != GANTL_OK) {
        char message[sizeof gantl__error_message];
        snprintf(message, sizeof message, "%s", gantl__error_message);
        gantl__fail(s, "%s: %s", path, message);
        gantl_st_free(f);
    }
    return s;
}

GANTLDEF const gantl_st_tensor *gantl_st_find(const gantl_st_file *f, const char *name) {
    for (int i = 0; i < f->count; i++)
        if (strcmp(f->tensors[i].name, name) == 0) return &f->tensors[i];
    return NULL;
}

GANTLDEF const char *gantl_st_meta(const gantl_st_file *f, const char *key) {
    for (int i = 0; i < f->meta_count; i++)
        if (strcmp(f->meta_keys[i], key) == 0) return f->meta_values[i];
    return NULL;
}

static float gantl__half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h >> 15) << 31, exp = (h >> 10) & 0x1F, man = h & 0x3FF, bits;
    if (exp == 0x1F) bits = sign | 0x7F800000u | (man << 13); /* inf, nan */
    else if (exp != 0) bits = sign | ((exp + 112) << 23) | (man << 13);
    else if (man == 0) bits = sign;
    else { /* subnormal: normalise */
        int e = -1;
        do e++, man <<= 1; while (!(man & 0x400));
        bits = sign | ((uint32_t)(112 - e) << 23) | ((man & 0x3FF) << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

/* Little-endian load of n bytes. */
static uint64_t gantl__load_le(const unsigned char *p, int n) {
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

/* Converts n values of dtype from little-endian bytes to float32. */
static void gantl__to_f32(gantl_dtype dtype, const unsigned char *p, int64_t n, float *out) {
    size_t size = gantl__dtype_sizes[dtype];
    for (int64_t i = 0; i < n; i++, p += size) {
        uint64_t u = gantl__load_le(p, (int)size);
        float v;
        switch (dtype) {
        case GANTL_F32: { uint32_t b = (uint32_t)u; memcpy(&v, &b, 4); } break;
        case GANTL_F64: { double d; memcpy(&d, &u, 8); v = (float)d; } break;
        case GANTL_F16: v = gantl__half_to_float((uint16_t)u); break;
        case GANTL_BF16: { uint32_t b = (uint32_t)u << 16; memcpy(&v, &b, 4); } break;
        case GANTL_I64: v = (float)(int64_t)u; break;
        case GANTL_I32: v = (float)(int32_t)(uint32_t)u; break;
        case GANTL_I16: v = (float)(int16_t)(uint16_t)u; break;
        case GANTL_I8: v = (float)(int8_t)(uint8_t)u; break;
        default: v = (float)u; break; /* U8, BOOL */
        }
        out[i] = v;
    }
}

GANTLDEF gantl_status gantl_st_read_f32(const gantl_st_file *f, const char *name, float *out, int64_t n, int ndim,
                                        const int64_t *shape) {
    const gantl_st_tensor *t = gantl_st_find(f, name);
    if (!t) return gantl__fail(GANTL_ERR_INVALID, "tensor '%s' is missing", name);
    int shape_ok = shape ? t->ndim == ndim : t->numel == n;
    for (int d = 0; shape && shape_ok && d < ndim; d++) shape_ok = t->shape[d] == shape[d];
    if (!shape_ok || t->numel != n) {
        char have[160] = "(", want[160] = "(";
        for (int d = 0; d < t->ndim; d++)
            snprintf(have + strlen(have), sizeof have - strlen(have), d ? ", %lld" : "%lld", (long long)t->shape[d]);
        for (int d = 0; shape && d < ndim; d++)
            snprintf(want + strlen(want), sizeof want - strlen(want), d ? ", %lld" : "%lld", (long long)shape[d]);
        if (!shape) snprintf(want + 1, sizeof want - 1, "%lld values", (long long)n);
        return gantl__fail(GANTL_ERR_INVALID, "tensor '%s' has shape %s), expected %s)", name, have, want);
    }
    gantl__to_f32(t->dtype, t->bytes, n, out);
    return GANTL_OK;
}

/* ---- NumPy .npy ---- */

GANTLDEF void gantl_npy_free(gantl_npy *a) {
    GANTL_FREE(a->data);
    memset(a, 0, sizeof *a);
}

GANTLDEF void gantl_npy_to_f32(const gantl_npy *a, float *out) { gantl__to_f32(a->dtype, a->data, a->numel, out); }

GANTLDEF gantl_status gantl_npy_parse(gantl_npy *a, const void *bytes, size_t size) {
    static const struct { const char *descr; gantl_dtype dtype; } types[] = {
        {"<f4", GANTL_F32}, {"<f8", GANTL_F64}, {"<f2", GANTL_F16}, {"<i8", GANTL_I64}, {"<i4", GANTL_I32},
        {"<i2", GANTL_I16}, {"|i1", GANTL_I8},  {"|u1", GANTL_U8},  {"|b1", GANTL_BOOL},
    };
    const unsigned char *b = (const unsigned char *)bytes;
    memset(a, 0, sizeof *a);
    if (size < 10 || memcmp(b, "\x93NUMPY", 6) != 0) return gantl__fail(GANTL_ERR_FORMAT, "not a .npy file (bad magic)");
    size_t header_len, start;
    if (b[6] == 1) header_len = (size_t)gantl__load_le(b + 8, 2), start = 10;
    else if ((b[6] == 2 || b[6] == 3) && size >= 12) header_len = (size_t)gantl__load_le(b + 8, 4), start = 12;
    else return gantl__fail(GANTL_ERR_FORMAT, ".npy version %d.%d is not supported", b[6], b[7]);
    if (header_len > size - start) return gantl__fail(GANTL_ERR_FORMAT, ".npy header runs past the end (truncated?)");
    char header[4096];
    if (header_len >= sizeof header) return gantl__fail(GANTL_ERR_FORMAT, ".npy header too long");
    memcpy(header, b + start, header_len);
    header[header_len] = 0;
    const char *descr = strstr(header, "'descr':"), *fortran = strstr(header, "'fortran_order':"), *shape = strstr(header, "'shape':");
    if (!descr || !fortran || !shape) return gantl__fail(GANTL_ERR_FORMAT, ".npy header lacks descr, fortran_order or shape");
    if (!strncmp(fortran + 16 + strspn(fortran + 16, " "), "True", 4))
        return gantl__fail(GANTL_ERR_UNSUPPORTED, ".npy array in Fortran order is not supported");
    descr += 8 + strspn(descr + 8, " ");
    int found = -1;
    for (int i = 0; i < (int)(sizeof types / sizeof types[0]); i++)
        if (descr[0] == '\'' && !strncmp(descr + 1, types[i].descr, 3) && descr[4] == '\'') found = i;
    if (found < 0) return gantl__fail(GANTL_ERR_UNSUPPORTED, ".npy dtype %.8s is not supported (use float32, uint8, ...)", descr);
    a->dtype = types[found].dtype;
    const char *p = strchr(shape, '(');
    if (!p) return gantl__fail(GANTL_ERR_FORMAT, ".npy shape is not a tuple");
    p++;
    a->numel = 1;
    for (;;) {
        p += strspn(p, " ");
        if (*p == ')') break;
        if (*p < '0' || *p > '9' || a->ndim == GANTL_ST_MAX_DIMS) return gantl__fail(GANTL_ERR_FORMAT, ".npy bad shape");
        char *end;
        long long v = strtoll(p, &end, 10);
        if (v < 0 || v > ((int64_t)1 << 40) || (v && a->numel > (((int64_t)1 << 50) / v)))
            return gantl__fail(GANTL_ERR_FORMAT, ".npy shape too large");
        a->shape[a->ndim++] = v;
        a->numel *= v;
        p = end + strspn(end, " ");
        if (*p == ',') p++;
        else if (*p != ')') return gantl__fail(GANTL_ERR_FORMAT, ".npy bad shape");
    }
    size_t bytes_needed = (size_t)a->numel * gantl__dtype_sizes[a->dtype];
    if (size - start - header_len < bytes_needed)
        return gantl__fail(GANTL_ERR_FORMAT, ".npy data is %zu bytes, the shape needs %zu (truncated?)",
                           size - start - header_len, bytes_needed);
    a->data = (unsigned char *)GANTL_MALLOC(bytes_needed ? bytes_needed : 1);
    if (!a->data) return gantl__fail(GANTL_ERR_NOMEM, "out of memory for a .npy array of %zu bytes", bytes_needed);
    memcpy(a->data, b + start + header_len, bytes_needed);
    return GANTL_OK;
}

GANTLDEF gantl_status gantl_npy_load(gantl_npy *a, const char *path) {
    unsigned char *bytes;
    size_t size;
    memset(a, 0, sizeof *a);
    gantl_status s = gantl_read_file(path, &bytes, &size);
    if (s != GANTL_OK) return s;
    s = gantl_npy_parse(a, bytes, size);
    GANTL_FREE(bytes);
    if (s != GANTL_OK) {
        char message[sizeof gantl__error_message];
        snprintf(message, sizeof message, "%s", gantl__error_message);
        gantl__fail(s, "%s: %s", path, message);
    }
    return s;
}

GANTLDEF gantl_status gantl_npy_save(const char *path, gantl_dtype dtype, int ndim, const int64_t *shape, const void *data) {
    static const char *const descr[GANTL_DTYPE_COUNT] = {"<f4", "<f8", "<f2", NULL, "<i8", "<i4", "<i2", "|i1", "|u1", "|b1"};
    GANTL__CHECK(dtype >= 0 && dtype < GANTL_DTYPE_COUNT && descr[dtype] && ndim >= 0 && ndim <= GANTL_ST_MAX_DIMS,
                 "npy_save: dtype %d or ndim %d not supported", (int)dtype, ndim);
    char header[512];
    int n = snprintf(header, sizeof header, "{'descr': '%s', 'fortran_order': False, 'shape': (", descr[dtype]);
    int64_t numel = 1;
    for (int d = 0; d < ndim; d++) {
        n += snprintf(header + n, sizeof header - (size_t)n, "%lld,%s", (long long)shape[d], d + 1 < ndim ? " " : "");
        numel *= shape[d];
    }
    n += snprintf(header + n, sizeof header - (size_t)n, "), }");
    while ((10 + n + 1) % 64) header[n++] = ' '; /* pad so the data starts 64-byte aligned */
    header[n++] = '\n';
    size_t bytes = (size_t)numel * gantl__dtype_sizes[dtype], total = 10 + (size_t)n + bytes;
    unsigned char *image = (unsigned char *)GANTL_MALLOC(total);
    if (!image) return gantl__fail(GANTL_ERR_NOMEM, "out of memory writing '%s'", path);
    memcpy(image, "\x93NUMPY\x01\x00", 8);
    image[8] = (unsigned char)(n & 0xff), image[9] = (unsigned char)(n >> 8);
    memcpy(image + 10, header, (size_t)n);
    if (bytes) memcpy(image + 10 + n, data, bytes);
    gantl_status s = gantl_write_file_atomic(path, image, total);
    GANTL_FREE(image);
    return s;
}

GANTLDEF void gantl_st_writer_init(gantl_st_writer *w) { memset(w, 0, sizeof *w); }

GANTLDEF void gantl_st_writer_free(gantl_st_writer *w) {
    for (int i = 0; i < w->count; i++) {
        GANTL_FREE(w->tensors[i].name);
        GANTL_FREE((void *)w->tensors[i].bytes);
    }
    for (int i = 0; i < w->meta_count; i++) {
        GANTL_FREE(w->meta_keys[i]);
        GANTL_FREE(w->meta_values[i]);
    }
    GANTL_FREE(w->tensors);
    GANTL_FREE(w->meta_keys);
    GANTL_FREE(w->meta_values);
    memset(w, 0, sizeof *w);
}

GANTLDEF gantl_status gantl_st_writer_add(gantl_st_writer *w, const char *name, gantl_dtype dtype, int ndim,
                                          const int64_t *shape, const void *data) {
    GANTL__CHECK(dtype >= 0 && dtype < GANTL_DTYPE_COUNT && ndim >= 0 && ndim <= GANTL_ST_MAX_DIMS,
                 "st_writer_add: '%s': bad dtype %d or ndim %d", name, (int)dtype, ndim);
    if (w->status != GANTL_OK) return w->status;
    for (int i = 0; i < w->count; i++)
        if (strcmp(w->tensors[i].name, name) == 0)
            return w->status = gantl__fail(GANTL_ERR_INVALID, "st_writer_add: tensor '%s' added twice", name);
    if (w->count == w->capacity) {
        int cap = w->capacity ? 2 * w->capacity : 64;
        gantl_st_tensor *t = (gantl_st_tensor *)GANTL_REALLOC(w->tensors, (size_t)cap * sizeof *t);
        if (!t) return w->status = gantl__fail(GANTL_ERR_NOMEM, "st_writer_add: out of memory");
        w->tensors = t;
        w->capacity = cap;
    }
    gantl_st_tensor *t = &w->tensors[w->count];
    memset(t, 0, sizeof *t);
    t->dtype = dtype;
    t->ndim = ndim;
    t->numel = 1;
    for (int d = 0; d < ndim; d++) t->shape[d] = shape[d], t->numel *= shape[d];
    size_t bytes = (size_t)t->numel * gantl__dtype_sizes[dtype];
    unsigned char *copy = (unsigned char *)GANTL_MALLOC(bytes ? bytes : 1);
    t->name = gantl__strdup(name);
    if (!copy || !t->name) {
        GANTL_FREE(copy);
        GANTL_FREE(t->name);
        return w->status = gantl__fail(GANTL_ERR_NOMEM, "st_writer_add: out of memory for '%s'", name);
    }
    if (bytes) memcpy(copy, data, bytes); /* gantl assumes a little-endian host, as safetensors does */
    t->bytes = copy;
    w->count++;
    return GANTL_OK;
}

GANTLDEF gantl_status gantl_st_writer_meta(gantl_st_writer *w, const char *key, const char *value) {
    if (w->status != GANTL_OK) return w->status;
    if (w->meta_count == w->meta_capacity) {
        int cap = w->meta_capacity ? 2 * w->meta_capacity : 8;
        char **k = (char **)GANTL_REALLOC(w->meta_keys, (size_t)cap * sizeof *k);
        if (k) w->meta_keys = k;
        char **v = k ? (char **)GANTL_REALLOC(w->meta_values, (size_t)cap * sizeof *v) : NULL;
        if (!v) return w->status = gantl__fail(GANTL_ERR_NOMEM, "st_writer_meta: out of memory");
        w->meta_values = v;
        w->meta_capacity = cap;
    }
    char *k = gantl__strdup(key), *v = gantl__strdup(value);
    if (!k || !v) {
        GANTL_FREE(k);
        GANTL_FREE(v);
        return w->status = gantl__fail(GANTL_ERR_NOMEM, "st_writer_meta: out of memory");
    }
    w->meta_keys[w->meta_count] = k;
    w->meta_values[w->meta_count++] = v;
    return GANTL_OK;
}

/* A growable byte buffer for building the header. */
typedef struct gantl__buf {
    char *data;
    size_t len, cap;
    int failed;
} gantl__buf;

static void gantl__buf_put(gantl__buf *b, const char *s, size_t n) {
    if (b->failed) return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = (b->len + n + 1) * 2;
        char *d = (char *)GANTL_REALLOC(b->data, cap);
        if (!d) {
            b->failed = 1;
            return;
        }
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = 0;
}

static void gantl__buf_printf(gantl__buf *b, const char *fmt, ...) {
    char tmp[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n > 0) gantl__buf_put(b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

static void gantl__buf_json_string(gantl__buf *b, const char *s) {
    gantl__buf_put(b, "\"", 1);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            gantl__buf_put(b, e, 2);
        } else if (c < 0x20)
            gantl__buf_printf(b, "\\u%04x", c);
        else
            gantl__buf_put(b, (const char *)&c, 1);
    }
    gantl__buf_put(b, "\"", 1);
}

GANTLDEF gantl_status gantl_st_writer_save(gantl_st_writer *w, const char *path) {
    if (w->status != GANTL_OK) return w->status;
    gantl__buf h = {NULL, 0, 0, 0};
    gantl__buf_put(&h, "{", 1);
    if (w->meta_count) {
        gantl__buf_put(&h, "\"__metadata__\":{", 16);
        for (int i = 0; i < w->meta_count; i++) {
            if (i) gantl__buf_put(&h, ",", 1);
            gantl__buf_json_string(&h, w->meta_keys[i]);
            gantl__buf_put(&h, ":", 1);
            gantl__buf_json_string(&h, w->meta_values[i]);
        }
        gantl__buf_put(&h, "}", 1);
    }
    size_t offset = 0;
    for (int i = 0; i < w->count; i++) {
        const gantl_st_tensor *t = &w->tensors[i];
        size_t bytes = (size_t)t->numel * gantl__dtype_sizes[t->dtype];
        if (i || w->meta_count) gantl__buf_put(&h, ",", 1);
        gantl__buf_json_string(&h, t->name);
        gantl__buf_printf(&h, ":{\"dtype\":\"%s\",\"shape\":[", gantl__dtype_names[t->dtype]);
        for (int d = 0; d < t->ndim; d++) gantl__buf_printf(&h, d ? ",%lld" : "%lld", (long long)t->shape[d]);
        gantl__buf_printf(&h, "],\"data_offsets\":[%zu,%zu]}", offset, offset + bytes);
        offset += bytes;
    }
    gantl__buf_put(&h, "}", 1);
    while (!h.failed && h.len % 8) gantl__buf_put(&h, " ", 1); /* data starts 8-byte aligned */
    size_t total = 8 + h.len + offset;
    unsigned char *image = h.failed ? NULL : (unsigned char *)GANTL_MALLOC(total);
    if (!image) {
        GANTL_FREE(h.data);
        return gantl__fail(GANTL_ERR_NOMEM, "st_writer_save: out of memory for '%s'", path);
    }
    for (int i = 0; i < 8; i++) image[i] = (unsigned char)((uint64_t)h.len >> (8 * i));
    memcpy(image + 8, h.data, h.len);
    size_t at = 8 + h.len;
    for (int i = 0; i < w->count; i++) {
        size_t bytes = (size_t)w->tensors[i].numel * gantl__dtype_sizes[w->tensors[i].dtype];
        if (bytes) memcpy(image + at, w->tensors[i].bytes, bytes);
        at += bytes;
    }
    gantl_status s = gantl_write_file_atomic(path, image, total);
    GANTL_FREE(image);
    GANTL_FREE(h.data);
    return s;
}

/* ---------------------------------------------------------------------------------------
   8. Linear algebra kernels
   SGEMM in the BLIS way: B is packed in (KC x NC) panels of NR-wide slivers, A in
   (MC x KC) blocks of MR-high slivers, and an MR x NR register tile accumulates over KC
   while its B sliver stays in L1. The tile is the one place with intrinsics: AVX-512 or
   AVX2 with FMA when the compiler targets them, else GCC/Clang vector extensions (SSE,
   NEON) or plain loops. Threads take disjoint slices of C, each running the whole
   blocked loop nest with its own packing buffers: one fork per call and no barriers.
   Arithmetic (what gantl__sq_dist_block relies on): each element's k-panel of KC terms
   is summed in order into a float, with fused multiply-adds where GANTL__SGEMM_FMA, and
   c gets c + alpha * panel_sum (c starting from 0 when beta == 0), panel after panel.
   ------------------------------------------------------------------------------------- */

#if defined(__GNUC__) && !defined(GANTL_NO_VECTOR_EXT)
#if defined(__AVX512F__)
#define GANTL__VL 16
#elif defined(__AVX__)
#define GANTL__VL 8
#else
#define GANTL__VL 4
#endif
typedef float gantl__vf __attribute__((vector_size(GANTL__VL * 4)));
typedef float gantl__vf_unaligned __attribute__((vector_size(GANTL__VL * 4), aligned(4)));
#endif

#if defined(__AVX512F__) && !defined(GANTL_NO_INTRINSICS)
#include <immintrin.h>
#define GANTL__SGEMM_AVX512 1
#define GANTL__SGEMM_FMA 1
#define GANTL__MR 12 /* 24 accumulators of 16 floats, of 32 registers */
#define GANTL__NR 32
#elif defined(__AVX2__) && defined(__FMA__) && !defined(GANTL_NO_INTRINSICS)
#include <immintrin.h>
#define GANTL__SGEMM_AVX2 1
#define GANTL__SGEMM_FMA 1
#define GANTL__MR 6 /* 12 accumulators of 8 floats, of 16 registers */
#define GANTL__NR 16
#elif defined(GANTL__VL)
#define GANTL__SGEMM_FMA 0
#define GANTL__MR 6
#define GANTL__NR (2 * GANTL__VL)
#else
#define GANTL__SGEMM_FMA 0
#define GANTL__MR 4
#define GANTL__NR 16
#endif
#define GANTL__KC 256
#define GANTL__MC (16 * GANTL__MR)
#define GANTL__NC 2048

/* The register tile: t (MR x NR) = ap (kc x MR, k-major) @ bp (kc x NR, k-major), then
   c (h x w, rows of ldc) = alpha * t, or c + alpha * t unless first. */
static void gantl__sgemm_tile(const float *ap, const float *bp, int64_t kc, float *c, int64_t ldc, int64_t h,
                              int64_t w, float alpha, int first) {
    float acc[GANTL__MR * GANTL__NR]; /* partial tiles go through here */
#if defined(GANTL__SGEMM_AVX512)
#define GANTL__T_DECL(r) __m512 c##r##0 = _mm512_setzero_ps(), c##r##1 = _mm512_setzero_ps();
#define GANTL__T_FMA(r)                                                                        \
    {                                                                                          \
        __m512 a = _mm512_set1_ps(ap[r]);                                                      \
        c##r##0 = _mm512_fmadd_ps(a, b0, c##r##0), c##r##1 = _mm512_fmadd_ps(a, b1, c##r##1); \
    }
#define GANTL__T_STORE(r)                                                                      \
    if (full) {                                                                                \
        __m512 v0 = _mm512_mul_ps(va, c##r##0), v1 = _mm512_mul_ps(va, c##r##1);               \
        if (!first) v0 = _mm512_add_ps(_mm512_loadu_ps(c + r * ldc), v0);                      \
        if (!first) v1 = _mm512_add_ps(_mm512_loadu_ps(c + r * ldc + 16), v1);                 \
        _mm512_storeu_ps(c + r * ldc, v0), _mm512_storeu_ps(c + r * ldc + 16, v1);             \
    } else                                                                                     \
        _mm512_storeu_ps(acc + r * 32, c##r##0), _mm512_storeu_ps(acc + r * 32 + 16, c##r##1);
    GANTL__T_DECL(0) GANTL__T_DECL(1) GANTL__T_DECL(2) GANTL__T_DECL(3) GANTL__T_DECL(4) GANTL__T_DECL(5)
    GANTL__T_DECL(6) GANTL__T_DECL(7) GANTL__T_DECL(8) GANTL__T_DECL(9) GANTL__T_DECL(10) GANTL__T_DECL(11)
    for (int64_t p = 0; p < kc; p++, ap += GANTL__MR, bp += GANTL__NR) {
        __m512 b0 = _mm512_loadu_ps(bp), b1 = _mm512_loadu_ps(bp + 16);
        GANTL__T_FMA(0) GANTL__T_FMA(1) GANTL__T_FMA(2) GANTL__T_FMA(3) GANTL__T_FMA(4) GANTL__T_FMA(5)
        GANTL__T_FMA(6) GANTL__T_FMA(7) GANTL__T_FMA(8) GANTL__T_FMA(9) GANTL__T_FMA(10) GANTL__T_FMA(11)
    }
    int full = h == GANTL__MR && w == GANTL__NR;
    __m512 va = _mm512_set1_ps(alpha);
    GANTL__T_STORE(0) GANTL__T_STORE(1) GANTL__T_STORE(2) GANTL__T_STORE(3) GANTL__T_STORE(4) GANTL__T_STORE(5)
    GANTL__T_STORE(6) GANTL__T_STORE(7) GANTL__T_STORE(8) GANTL__T_STORE(9) GANTL__T_STORE(10) GANTL__T_STORE(11)
    if (full) return;
#elif defined(GANTL__SGEMM_AVX2)
#define GANTL__T_DECL(r) __m256 c##r##0 = _mm256_setzero_ps(), c##r##1 = _mm256_setzero_ps();
#define GANTL__T_FMA(r)                                                                        \
    {                                                                                          \
        __m256 a = _mm256_broadcast_ss(ap + r);                                                \
        c##r##0 = _mm256_fmadd_ps(a, b0, c##r##0), c##r##1 = _mm256_fmadd_ps(a, b1, c##r##1); \
    }
#define GANTL__T_STORE(r)                                                                      \
    if (full) {                                                                                \
        __m256 v0 = _mm256_mul_ps(va, c##r##0), v1 = _mm256_mul_ps(va, c##r##1);               \
        if (!first) v0 = _mm256_add_ps(_mm256_loadu_ps(c + r * ldc), v0);                      \
        if (!first) v1 = _mm256_add_ps(_mm256_loadu_ps(c + r * ldc + 8), v1);                  \
        _mm256_storeu_ps(c + r * ldc, v0), _mm256_storeu_ps(c + r * ldc + 8, v1);              \
    } else                                                                                     \
        _mm256_storeu_ps(acc + r * 16, c##r##0), _mm256_storeu_ps(acc + r * 16 + 8, c##r##1);
    GANTL__T_DECL(0) GANTL__T_DECL(1) GANTL__T_DECL(2) GANTL__T_DECL(3) GANTL__T_DECL(4) GANTL__T_DECL(5)
    for (int64_t p = 0; p < kc; p++, ap += GANTL__MR, bp += GANTL__NR) {
        __m256 b0 = _mm256_loadu_ps(bp), b1 = _mm256_loadu_ps(bp + 8);
        GANTL__T_FMA(0) GANTL__T_FMA(1) GANTL__T_FMA(2) GANTL__T_FMA(3) GANTL__T_FMA(4) GANTL__T_FMA(5)
    }
    int full = h == GANTL__MR && w == GANTL__NR;
    __m256 va = _mm256_set1_ps(alpha);
    GANTL__T_STORE(0) GANTL__T_STORE(1) GANTL__T_STORE(2) GANTL__T_STORE(3) GANTL__T_STORE(4) GANTL__T_STORE(5)
    if (full) return;
#elif defined(GANTL__VL)
    gantl__vf c00 = {0}, c01 = {0}, c10 = {0}, c11 = {0}, c20 = {0}, c21 = {0};
    gantl__vf c30 = {0}, c31 = {0}, c40 = {0}, c41 = {0}, c50 = {0}, c51 = {0};
    for (int64_t p = 0; p < kc; p++, ap += GANTL__MR, bp += GANTL__NR) {
        gantl__vf b0 = *(const gantl__vf_unaligned *)bp, b1 = *(const gantl__vf_unaligned *)(bp + GANTL__VL);
        c00 += ap[0] * b0, c01 += ap[0] * b1;
        c10 += ap[1] * b0, c11 += ap[1] * b1;
        c20 += ap[2] * b0, c21 += ap[2] * b1;
        c30 += ap[3] * b0, c31 += ap[3] * b1;
        c40 += ap[4] * b0, c41 += ap[4] * b1;
        c50 += ap[5] * b0, c51 += ap[5] * b1;
    }
    gantl__vf_unaligned *out = (gantl__vf_unaligned *)acc;
    out[0] = c00, out[1] = c01, out[2] = c10, out[3] = c11, out[4] = c20, out[5] = c21;
    out[6] = c30, out[7] = c31, out[8] = c40, out[9] = c41, out[10] = c50, out[11] = c51;
#else
    for (int i = 0; i < GANTL__MR * GANTL__NR; i++) acc[i] = 0.0f;
    for (int64_t p = 0; p < kc; p++, ap += GANTL__MR, bp += GANTL__NR)
        for (int r = 0; r < GANTL__MR; r++)
            for (int j = 0; j < GANTL__NR; j++) acc[r * GANTL__NR + j] += ap[r] * bp[j];
#endif
#undef GANTL__T_DECL
#undef GANTL__T_FMA
#undef GANTL__T_STORE
    for (int64_t r = 0; r < h; r++) {
        float *crow = c + r * ldc;
        const float *trow = acc + r * GANTL__NR;
        if (first)
            for (int64_t j = 0; j < w; j++) crow[j] = alpha * trow[j];
        else
            for (int64_t j = 0; j < w; j++) crow[j] += alpha * trow[j];
    }
}

/* Packs B[pc:pc+kc, jc:jc+nc] into NR-wide slivers (zero-padded): bp[(s*kc + p)*NR + j].
   A transposed operand is read along its stored rows (contiguous) and written down the
   sliver, which stays in L1; an im2col view is read in runs along its rows. */
static void gantl__pack_b(float *bp, const gantl__operand *B, int64_t pc, int64_t jc, int64_t kc, int64_t nc) {
    if (B->view && !B->transposed) { /* each im2col row once, through a row buffer */
        float row[GANTL__NC];
        for (int64_t p = 0; p < kc; p++) {
            gantl__im2col_run(B->view, pc + p, B->col0 + jc, nc, row, 1);
            for (int64_t s = 0; s * GANTL__NR < nc; s++) {
                float *dst = bp + (s * kc + p) * GANTL__NR;
                int64_t w = nc - s * GANTL__NR < GANTL__NR ? nc - s * GANTL__NR : GANTL__NR;
                GANTL__OMP(simd)
                for (int64_t j = 0; j < GANTL__NR; j++) dst[j] = j < w ? row[s * GANTL__NR + j] : 0.0f;
            }
        }
        return;
    }
    for (int64_t s = 0; s * GANTL__NR < nc; s++) {
        float *dst = bp + s * kc * GANTL__NR;
        int64_t j0 = jc + s * GANTL__NR, w = nc - s * GANTL__NR < GANTL__NR ? nc - s * GANTL__NR : GANTL__NR;
        if (B->view) { /* transposed im2col: sliver column j is the view's row col0 + j0 + j,
                            read as a run into tmp (kc <= GANTL__KC), then a row of the sliver at a time */
            float tmp[GANTL__NR * GANTL__KC];
            for (int64_t j = 0; j < GANTL__NR; j++) {
                if (j < w)
                    gantl__im2col_run(B->view, B->col0 + j0 + j, pc, kc, tmp + j * kc, 1);
                else
                    memset(tmp + j * kc, 0, (size_t)kc * sizeof(float));
            }
            for (int64_t p = 0; p < kc; p++) {
                float *row = dst + p * GANTL__NR;
                GANTL__OMP(simd)
                for (int64_t j = 0; j < GANTL__NR; j++) row[j] = tmp[j * kc + p];
            }
        } else if (!B->transposed) {
            for (int64_t p = 0; p < kc; p++) {
                float *row = dst + p * GANTL__NR;
                const float *src = B->data + (pc + p) * B->ld + j0;
                if (w == GANTL__NR) {
                    GANTL__OMP(simd)
                    for (int64_t j = 0; j < GANTL__NR; j++) row[j] = src[j];
                } else
                    for (int64_t j = 0; j < GANTL__NR; j++) row[j] = j < w ? src[j] : 0.0f;
            }
        } else if (w == GANTL__NR) { /* a whole sliver: a row of it at a time (vector gathers) */
            const float *src = B->data + j0 * B->ld + pc;
            int64_t ld = B->ld;
            for (int64_t p = 0; p < kc; p++) {
                float *row = dst + p * GANTL__NR;
                GANTL__OMP(simd)
                for (int64_t j = 0; j < GANTL__NR; j++) row[j] = src[j * ld + p];
            }
        } else {
            for (int64_t j = 0; j < GANTL__NR; j++) {
                const float *src = B->data + (j0 + j) * B->ld + pc;
                if (j < w)
                    for (int64_t p = 0; p < kc; p++) dst[p * GANTL__NR + j] = src[p];
                else
                    for (int64_t p = 0; p < kc; p++) dst[p * GANTL__NR + j] = 0.0f;
            }
        }
    }
}

/* Packs A[ic:ic+mc, pc:pc+kc] (a stored matrix) into MR-high slivers (zero-padded):
   ap[(s*kc + p)*MR + r]. */
static void gantl__pack_a(float *ap, const gantl__operand *A, int64_t ic, int64_t pc, int64_t mc, int64_t kc) {
    for (int64_t s = 0; s * GANTL__MR < mc; s++) {
        float *dst = ap + s * kc * GANTL__MR;
        int64_t i0 = ic + s * GANTL__MR, h = mc - s * GANTL__MR < GANTL__MR ? mc - s * GANTL__MR : GANTL__MR;
        if (!A->transposed)
            for (int64_t r = 0; r < GANTL__MR; r++) {
                const float *src = A->data + (i0 + r) * A->ld + pc;
                if (r < h)
                    for (int64_t p = 0; p < kc; p++) dst[p * GANTL__MR + r] = src[p];
                else
                    for (int64_t p = 0; p < kc; p++) dst[p * GANTL__MR + r] = 0.0f;
            }
        else
            for (int64_t p = 0; p < kc; p++) {
                const float *src = A->data + (pc + p) * A->ld + i0;
                for (int64_t r = 0; r < GANTL__MR; r++) dst[p * GANTL__MR + r] = r < h ? src[r] : 0.0f;
            }
    }
}

/* A packed whole, for operands shared by many GEMMs (a convolution's weights): the
   k-panel starting at pc holds all of A's slivers at dst + pc * m_padded, so its row
   block ic is at dst + pc * m_padded + ic * kc, as gantl__pack_a would lay it out. */
static int64_t gantl__packed_a_floats(int64_t m, int64_t k) {
    return (m + GANTL__MR - 1) / GANTL__MR * GANTL__MR * k;
}

static void gantl__pack_a_all(float *dst, const gantl__operand *A, int64_t m, int64_t k) {
    int64_t m_padded = (m + GANTL__MR - 1) / GANTL__MR * GANTL__MR;
    for (int64_t pc = 0; pc < k; pc += GANTL__KC)
        gantl__pack_a(dst + pc * m_padded, A, 0, pc, m, k - pc < GANTL__KC ? k - pc : GANTL__KC);
}

/* The packing buffers: a small global pool whose entries each serve one gemm at a time.
   Reused across calls (large allocations would otherwise be mapped and unmapped by the C
   library at every call), and always reachable from the pool, so that a thread that ends
   (an OpenMP pool at exit, a user's pthread) strands no memory. Past GANTL__SGEMM_POOL
   concurrent gemms a call allocates its own buffer and frees it afterwards. */
#define GANTL__SGEMM_POOL 64
typedef struct gantl__sgemm_slot {
    float *data;
    size_t floats;
    int busy;
} gantl__sgemm_slot;
static gantl__sgemm_slot gantl__sgemm_pool[GANTL__SGEMM_POOL];
/* GANTL__POOL_BEGIN { ... } GANTL__POOL_END: the block under the pool's lock */
#if defined(__GNUC__)
static char gantl__sgemm_pool_flag; /* a spin lock: held only to pick or return a slot */
#define GANTL__POOL_BEGIN while (__atomic_test_and_set(&gantl__sgemm_pool_flag, __ATOMIC_ACQUIRE)) {}
#define GANTL__POOL_END __atomic_clear(&gantl__sgemm_pool_flag, __ATOMIC_RELEASE);
#else /* OpenMP's lock where there is no atomic built-in (threads other than OpenMP's then race) */
#define GANTL__POOL_BEGIN GANTL__OMP(critical(gantl__sgemm_pool))
#define GANTL__POOL_END
#endif

/* A buffer of at least floats floats (NULL: out of memory); *slot says where it came from. */
static float *gantl__sgemm_buffer_take(size_t floats, int *slot) {
    int pick = -1;
    GANTL__POOL_BEGIN {
        for (int i = 0; i < GANTL__SGEMM_POOL; i++) /* a free slot, preferring one large enough */
            if (!gantl__sgemm_pool[i].busy &&
                (pick < 0 || (gantl__sgemm_pool[pick].floats < floats && gantl__sgemm_pool[i].floats > gantl__sgemm_pool[pick].floats)))
                pick = i;
        if (pick >= 0) gantl__sgemm_pool[pick].busy = 1;
    }
    GANTL__POOL_END
    *slot = pick;
    if (pick < 0) return (float *)GANTL_MALLOC(floats * sizeof(float));
    gantl__sgemm_slot *e = &gantl__sgemm_pool[pick];
    if (e->floats < floats) {
        GANTL_FREE(e->data);
        e->data = (float *)GANTL_MALLOC(floats * sizeof(float));
        e->floats = e->data ? floats : 0;
    }
    return e->data;
}

static void gantl__sgemm_buffer_give(float *buffer, int slot) {
    if (slot < 0) {
        GANTL_FREE(buffer);
        return;
    }
    GANTL__POOL_BEGIN { gantl__sgemm_pool[slot].busy = 0; }
    GANTL__POOL_END
}

/* Plain loops for small products of stored matrices (and when packing memory is
   missing), vectorised over j. */
static void gantl__sgemm_plain(float *c, int64_t ldc, const float *a, int64_t lda, const float *b, int64_t ldb,
                               int transpose_a, int transpose_b, float alpha, int overwrite, int64_t m, int64_t n,
                               int64_t k) {
    for (int64_t i = 0; i < m; i++) {
        float *crow = c + i * ldc;
        if (overwrite)
            for (int64_t j = 0; j < n; j++) crow[j] = 0.0f;
        for (int64_t p = 0; p < k; p++) {
            float av = alpha * (transpose_a ? a[p * lda + i] : a[i * lda + p]);
            if (!transpose_b) {
                GANTL__OMP(simd)
                for (int64_t j = 0; j < n; j++) crow[j] += av * b[p * ldb + j];
            } else
                for (int64_t j = 0; j < n; j++) crow[j] += av * b[j * ldb + p];
        }
    }
}

/* The blocked loops on the calling thread: c (m, n; rows of ldc) = alpha * A @ B, added
   to c unless overwrite (then c's old contents are ignored). Needs the packing buffers;
   without them (out of memory) only stored matrices can be multiplied, by plain loops. */
static void gantl__gemm(float *c, int64_t ldc, const gantl__operand *A, const gantl__operand *B, float alpha,
                        int overwrite, int64_t m, int64_t n, int64_t k) {
    int64_t kc_max = k < GANTL__KC ? k : GANTL__KC, nc_max = n < GANTL__NC ? n : GANTL__NC;
    int64_t m_padded = (m + GANTL__MR - 1) / GANTL__MR * GANTL__MR;
    size_t b_floats = (size_t)(kc_max * ((nc_max + GANTL__NR - 1) / GANTL__NR) * GANTL__NR);
    int slot;
    float *packed_b = gantl__sgemm_buffer_take(b_floats + (size_t)GANTL__MC * (size_t)kc_max, &slot);
    if (!packed_b) {
        gantl__sgemm_buffer_give(NULL, slot);
        GANTL__CHECK(!A->packed && !B->view, "gemm: out of memory for the packing buffers of a convolution");
        gantl__sgemm_plain(c, ldc, A->data, A->ld, B->data, B->ld, A->transposed, B->transposed, alpha, overwrite, m,
                           n, k);
        return;
    }
    float *packed_a = packed_b + b_floats;
    for (int64_t jc = 0; jc < n; jc += GANTL__NC) {
        int64_t nc = n - jc < GANTL__NC ? n - jc : GANTL__NC;
        for (int64_t pc = 0; pc < k; pc += GANTL__KC) {
            int64_t kc = k - pc < GANTL__KC ? k - pc : GANTL__KC;
            int first = overwrite && pc == 0; /* store rather than add */
            gantl__pack_b(packed_b, B, pc, jc, kc, nc);
            for (int64_t ic = 0; ic < m; ic += GANTL__MC) {
                int64_t mc = m - ic < GANTL__MC ? m - ic : GANTL__MC;
                const float *ap = A->packed ? A->packed + pc * m_padded + ic * kc : packed_a;
                if (!A->packed) gantl__pack_a(packed_a, A, ic, pc, mc, kc);
                for (int64_t s = 0; s * GANTL__NR < nc; s++) { /* the B sliver stays in L1 ... */
                    int64_t j0 = jc + s * GANTL__NR, w = n - j0 < GANTL__NR ? n - j0 : GANTL__NR;
                    for (int64_t ir = 0; ir < mc; ir += GANTL__MR) { /* ... while A's slivers stream from L2 */
                        int64_t h = mc - ir < GANTL__MR ? mc - ir : GANTL__MR;
                        gantl__sgemm_tile(ap + ir * kc, packed_b + s * kc * GANTL__NR, kc, c + (ic + ir) * ldc + j0,
                                          ldc, h, w, alpha, first);
                    }
                }
            }
        }
    }
    gantl__sgemm_buffer_give(packed_b, slot);
}

GANTLDEF void gantl_sgemm(float *c, const float *a, const float *b, int transpose_a, int transpose_b, float alpha,
                          float beta, int64_t m, int64_t n, int64_t k) {
    if (m <= 0 || n <= 0) return;
    int overwrite = beta == 0.0f;
    if (beta != 0.0f && beta != 1.0f) { /* C = beta * C first; every panel then adds its part */
        GANTL__OMP(parallel for schedule(static) if (m * n > 65536))
        for (int64_t i = 0; i < m * n; i++) c[i] *= beta;
    }
    if (k <= 0 || alpha == 0.0f) {
        if (overwrite) gantl__fill(c, 0.0f, m * n);
        return;
    }
    int64_t lda = transpose_a ? m : k, ldb = transpose_b ? k : n; /* rows as stored */
    if (m * n * k <= 32768) {
        gantl__sgemm_plain(c, n, a, lda, b, ldb, transpose_a, transpose_b, alpha, overwrite, m, n, k);
        return;
    }
    gantl__operand A = gantl__matrix(a, lda, transpose_a), B = gantl__matrix(b, ldb, transpose_b);
    /* Slices of C per thread, in whole register tiles: columns when C is wide (each thread
       packs its part of B and all of A), else rows. */
    int threads = gantl__threads_for(2.0 * (double)m * (double)n * (double)k, (double)(1 << 21));
    int by_cols = n >= m;
    int64_t units = by_cols ? (n + GANTL__NR - 1) / GANTL__NR : (m + GANTL__MR - 1) / GANTL__MR;
    if (threads > units) threads = (int)units;
    if (threads <= 1) {
        gantl__gemm(c, n, &A, &B, alpha, overwrite, m, n, k);
        return;
    }
    GANTL__OMP(parallel for schedule(static, 1) num_threads(threads))
    for (int t = 0; t < threads; t++) {
        int64_t u0 = units * t / threads, u1 = units * (t + 1) / threads;
        gantl__operand As = A, Bs = B;
        if (by_cols) {
            int64_t j0 = u0 * GANTL__NR, j1 = u1 * GANTL__NR < n ? u1 * GANTL__NR : n;
            Bs.data = transpose_b ? b + j0 * k : b + j0;
            gantl__gemm(c + j0, n, &As, &Bs, alpha, overwrite, m, j1 - j0, k);
        } else {
            int64_t i0 = u0 * GANTL__MR, i1 = u1 * GANTL__MR < m ? u1 * GANTL__MR : m;
            As.data = transpose_a ? a + i0 : a + i0 * k;
            gantl__gemm(c + i0 * n, n, &As, &Bs, alpha, overwrite, i1 - i0, n, k);
        }
    }
}

/* ---------------------------------------------------------------------------------------
   9. Metrics
   ------------------------------------------------------------------------------------- */

#define GANTL__DBL_EPS 2.220446049250313e-16

/* --- Double-precision GEMM ---
   FID and KID need double sums (a covariance; a kernel mean of nearly cancelling terms),
   and gantl_sgemm is float, so this is its double twin, blocked the same way. For each
   k-panel of DKC, A is packed into DMR-high slivers and B into DNR-wide slivers, each
   element once and shared by all threads; then tasks of DMC rows x DNB columns of c run
   a DMR x DNR register tile over them, each B sliver against the task's A block (in L2).
   The tile is the one place with intrinsics, chosen as the SGEMM's (section 8). Each
   element of c gets c + alpha * (its panel's kc products, summed in order), panel after
   panel, whichever thread runs its tile, so results do not depend on the thread count.
   DKC = 512 rather than 256: half the passes over c, with the slivers streaming from L2
   (measured ~8% faster on Zen 4, 1000 x 1000 x 2048). */

#if defined(GANTL__SGEMM_AVX512)
#define GANTL__DMR 12 /* 24 accumulators of 8 doubles, of 32 registers */
#define GANTL__DNR 16
#elif defined(GANTL__SGEMM_AVX2)
#define GANTL__DMR 6 /* 12 accumulators of 4 doubles, of 16 registers */
#define GANTL__DNR 8
#elif defined(GANTL__VL)
#define GANTL__DVL (GANTL__VL / 2) /* doubles per vector */
typedef double gantl__vd __attribute__((vector_size(GANTL__VL * 4)));
typedef double gantl__vd_unaligned __attribute__((vector_size(GANTL__VL * 4), aligned(8)));
#define GANTL__DMR 6
#define GANTL__DNR (2 * GANTL__DVL)
#else
#define GANTL__DMR 4
#define GANTL__DNR 8
#endif
#define GANTL__DKC 512              /* depth of a panel */
#define GANTL__DMC (8 * GANTL__DMR) /* rows of a task: its A block, 8 slivers, stays in L2 */
#define GANTL__DNB 128              /* columns of a task */
#define GANTL__DPM ((2048 + GANTL__DMC - 1) / GANTL__DMC * GANTL__DMC) /* rows of c per packing */
#define GANTL__DPN 2048                                                /* columns of c per packing */

/* c (mr, nr) += alpha * ap (kc, DMR) @ bp (kc, DNR), k-major slivers; mr, nr <= the tile
   (ragged edges go through acc). */
static void gantl__dgemm_tile(double *c, int64_t ldc, int64_t mr, int64_t nr, const double *ap, const double *bp,
                              int64_t kc, double alpha) {
    double acc[GANTL__DMR * GANTL__DNR]; /* (DMR, DNR): partial tiles go through here */
#if defined(GANTL__SGEMM_AVX512)
#define GANTL__T_DECL(r) __m512d c##r##0 = _mm512_setzero_pd(), c##r##1 = _mm512_setzero_pd();
#define GANTL__T_FMA(r)                                                                        \
    {                                                                                          \
        __m512d a = _mm512_set1_pd(ap[r]);                                                     \
        c##r##0 = _mm512_fmadd_pd(a, b0, c##r##0), c##r##1 = _mm512_fmadd_pd(a, b1, c##r##1); \
    }
#define GANTL__T_STORE(r)                                                                        \
    if (full) {                                                                                  \
        __m512d v0 = _mm512_add_pd(_mm512_loadu_pd(c + r * ldc), _mm512_mul_pd(va, c##r##0));    \
        __m512d v1 = _mm512_add_pd(_mm512_loadu_pd(c + r * ldc + 8), _mm512_mul_pd(va, c##r##1)); \
        _mm512_storeu_pd(c + r * ldc, v0), _mm512_storeu_pd(c + r * ldc + 8, v1);                \
    } else                                                                                       \
        _mm512_storeu_pd(acc + r * 16, c##r##0), _mm512_storeu_pd(acc + r * 16 + 8, c##r##1);
    GANTL__T_DECL(0) GANTL__T_DECL(1) GANTL__T_DECL(2) GANTL__T_DECL(3) GANTL__T_DECL(4) GANTL__T_DECL(5)
    GANTL__T_DECL(6) GANTL__T_DECL(7) GANTL__T_DECL(8) GANTL__T_DECL(9) GANTL__T_DECL(10) GANTL__T_DECL(11)
    for (int64_t p = 0; p < kc; p++, ap += GANTL__DMR, bp += GANTL__DNR) {
        __m512d b0 = _mm512_loadu_pd(bp), b1 = _mm512_loadu_pd(bp + 8);
        GANTL__T_FMA(0) GANTL__T_FMA(1) GANTL__T_FMA(2) GANTL__T_FMA(3) GANTL__T_FMA(4) GANTL__T_FMA(5)
        GANTL__T_FMA(6) GANTL__T_FMA(7) GANTL__T_FMA(8) GANTL__T_FMA(9) GANTL__T_FMA(10) GANTL__T_FMA(11)
    }
    int full = mr == GANTL__DMR && nr == GANTL__DNR;
    __m512d va = _mm512_set1_pd(alpha);
    GANTL__T_STORE(0) GANTL__T_STORE(1) GANTL__T_STORE(2) GANTL__T_STORE(3) GANTL__T_STORE(4) GANTL__T_STORE(5)
    GANTL__T_STORE(6) GANTL__T_STORE(7) GANTL__T_STORE(8) GANTL__T_STORE(9) GANTL__T_STORE(10) GANTL__T_STORE(11)
    if (full) return;
#elif defined(GANTL__SGEMM_AVX2)
#define GANTL__T_DECL(r) __m256d c##r##0 = _mm256_setzero_pd(), c##r##1 = _mm256_setzero_pd();
#define GANTL__T_FMA(r)                                                                        \
    {                                                                                          \
        __m256d a = _mm256_broadcast_sd(ap + r);                                               \
        c##r##0 = _mm256_fmadd_pd(a, b0, c##r##0), c##r##1 = _mm256_fmadd_pd(a, b1, c##r##1); \
    }
#define GANTL__T_STORE(r)                                                                        \
    if (full) {                                                                                  \
        __m256d v0 = _mm256_add_pd(_mm256_loadu_pd(c + r * ldc), _mm256_mul_pd(va, c##r##0));    \
        __m256d v1 = _mm256_add_pd(_mm256_loadu_pd(c + r * ldc + 4), _mm256_mul_pd(va, c##r##1)); \
        _mm256_storeu_pd(c + r * ldc, v0), _mm256_storeu_pd(c + r * ldc + 4, v1);                \
    } else                                                                                       \
        _mm256_storeu_pd(acc + r * 8, c##r##0), _mm256_storeu_pd(acc + r * 8 + 4, c##r##1);
    GANTL__T_DECL(0) GANTL__T_DECL(1) GANTL__T_DECL(2) GANTL__T_DECL(3) GANTL__T_DECL(4) GANTL__T_DECL(5)
    for (int64_t p = 0; p < kc; p++, ap += GANTL__DMR, bp += GANTL__DNR) {
        __m256d b0 = _mm256_loadu_pd(bp), b1 = _mm256_loadu_pd(bp + 4);
        GANTL__T_FMA(0) GANTL__T_FMA(1) GANTL__T_FMA(2) GANTL__T_FMA(3) GANTL__T_FMA(4) GANTL__T_FMA(5)
    }
    int full = mr == GANTL__DMR && nr == GANTL__DNR;
    __m256d va = _mm256_set1_pd(alpha);
    GANTL__T_STORE(0) GANTL__T_STORE(1) GANTL__T_STORE(2) GANTL__T_STORE(3) GANTL__T_STORE(4) GANTL__T_STORE(5)
    if (full) return;
#elif defined(GANTL__VL)
    gantl__vd c00 = {0}, c01 = {0}, c10 = {0}, c11 = {0}, c20 = {0}, c21 = {0};
    gantl__vd c30 = {0}, c31 = {0}, c40 = {0}, c41 = {0}, c50 = {0}, c51 = {0};
    for (int64_t p = 0; p < kc; p++, ap += GANTL__DMR, bp += GANTL__DNR) {
        gantl__vd b0 = *(const gantl__vd_unaligned *)bp, b1 = *(const gantl__vd_unaligned *)(bp + GANTL__DVL);
        c00 += ap[0] * b0, c01 += ap[0] * b1;
        c10 += ap[1] * b0, c11 += ap[1] * b1;
        c20 += ap[2] * b0, c21 += ap[2] * b1;
        c30 += ap[3] * b0, c31 += ap[3] * b1;
        c40 += ap[4] * b0, c41 += ap[4] * b1;
        c50 += ap[5] * b0, c51 += ap[5] * b1;
    }
    gantl__vd_unaligned *out = (gantl__vd_unaligned *)acc;
    out[0] = c00, out[1] = c01, out[2] = c10, out[3] = c11, out[4] = c20, out[5] = c21;
    out[6] = c30, out[7] = c31, out[8] = c40, out[9] = c41, out[10] = c50, out[11] = c51;
#else
    for (int i = 0; i < GANTL__DMR * GANTL__DNR; i++) acc[i] = 0.0;
    for (int64_t p = 0; p < kc; p++, ap += GANTL__DMR, bp += GANTL__DNR)
        for (int r = 0; r < GANTL__DMR; r++)
            for (int j = 0; j < GANTL__DNR; j++) acc[r * GANTL__DNR + j] += ap[r] * bp[j];
#endif
#undef GANTL__T_DECL
#undef GANTL__T_FMA
#undef GANTL__T_STORE
    for (int64_t r = 0; r < mr; r++)
        for (int64_t j = 0; j < nr; j++) c[r * ldc + j] += alpha * acc[r * GANTL__DNR + j];
}

/* Packs h rows of an operand into slivers of w rows, the last zero-padded: sliver s is
   dst + s * kc * w, (kc, w), [p][i] = x(s * w + i, p), where row r, depth p of the
   operand is at x[r * sr + p * sp]. The reads run along x's rows (pages in order). */
static void gantl__dpack(double *dst, int64_t w, const double *x, int64_t sr, int64_t sp, int64_t h, int64_t kc) {
    int64_t slivers = (h + w - 1) / w;
    if (sp == 1 && sr != 1) /* rows run down the depth: each sliver down, 8 rows at a time */
        for (int64_t s = 0; s < slivers; s++, dst += kc * w, x += w * sr) {
            int64_t hs = h - s * w < w ? h - s * w : w, r = 0;
            for (int64_t g; r < hs; r += g) { /* a cache line of the sliver per depth */
                g = hs - r < 8 ? hs - r : 8;
                for (int64_t p = 0; p < kc; p++)
                    for (int64_t q = 0; q < g; q++) dst[p * w + r + q] = x[(r + q) * sr + p];
            }
            for (; r < w; r++)
                for (int64_t p = 0; p < kc; p++) dst[p * w + r] = 0.0;
        }
    else /* rows run across the slivers: a depth at a time, all slivers */
        for (int64_t p = 0; p < kc; p++)
            for (int64_t s = 0; s < slivers; s++) {
                double *d = dst + (s * kc + p) * w;
                const double *src = x + s * w * sr + p * sp;
                int64_t hs = h - s * w < w ? h - s * w : w, r = 0;
                if (sr == 1)
                    for (; r < hs; r++) d[r] = src[r];
                else
                    for (; r < hs; r++) d[r] = src[r * sr];
                for (; r < w; r++) d[r] = 0.0;
            }
}

/* c (m, n) += alpha * op(a) @ op(b), row-major with leading dimensions ldc, lda, ldb:
   op(a) is (m, k), stored (k, m) if ta; op(b) is (k, n), stored (n, k) if tb.
   tri (for a square c): GANTL__FULL computes all of c; GANTL__LOWER only the register
   tiles reaching the lower triangle (row >= col), GANTL__UPPER those reaching the upper
   one. Tiles on the diagonal also update some elements of the other triangle, so callers
   use only the triangle they asked for. Returns GANTL_ERR_NOMEM (c untouched) when the
   packing buffers cannot be had. */
enum { GANTL__FULL = 0, GANTL__LOWER = 1, GANTL__UPPER = 2 };
static gantl_status gantl__dgemm(double *c, int64_t ldc, const double *a, int64_t lda, int ta, const double *b,
                                 int64_t ldb, int tb, int64_t m, int64_t n, int64_t k, double alpha, int tri) {
    if (m <= 0 || n <= 0 || k <= 0) return GANTL_OK;
    int64_t kc_max = k < GANTL__DKC ? k : GANTL__DKC;
    int64_t a_max = ((m < GANTL__DPM ? m : GANTL__DPM) + GANTL__DMR - 1) / GANTL__DMR; /* slivers */
    int64_t b_max = ((n < GANTL__DPN ? n : GANTL__DPN) + GANTL__DNR - 1) / GANTL__DNR;
    int64_t a_doubles = (a_max * GANTL__DMR * kc_max + 7) / 8 * 8; /* B's slivers start on a cache line */
    void *raw = GANTL_MALLOC((size_t)(a_doubles + b_max * GANTL__DNR * kc_max + 8) * sizeof(double));
    if (!raw)
        return gantl__fail(GANTL_ERR_NOMEM, "metrics: out of memory for %lld x %lld GEMM panels", (long long)kc_max,
                           (long long)(a_max * GANTL__DMR + b_max * GANTL__DNR));
    double *apack = (double *)(((uintptr_t)raw + 63) & ~(uintptr_t)63); /* (a slivers, kc, DMR) */
    double *bpack = apack + a_doubles;                                  /* (b slivers, kc, DNR) */
    /* op(a)(i, p) = a[i * a_sr + p * a_sp], op(b)(p, j) = b[j * b_sr + p * b_sp] */
    int64_t a_sr = ta ? 1 : lda, a_sp = ta ? lda : 1, b_sr = tb ? ldb : 1, b_sp = tb ? 1 : ldb;
    /* One parallel region; every thread walks the blocks and panels, sharing the loops
       over packing blocks and tasks. */
    GANTL__OMP(parallel num_threads(gantl__threads_for(2.0 * (double)m * (double)n * (double)k, (double)(1 << 21))))
    for (int64_t ic = 0; ic < m; ic += GANTL__DPM) /* c in blocks of (DPM, DPN), for bounded buffers */
        for (int64_t jc = 0; jc < n; jc += GANTL__DPN) {
            int64_t mp = m - ic < GANTL__DPM ? m - ic : GANTL__DPM, np = n - jc < GANTL__DPN ? n - jc : GANTL__DPN;
            if ((tri == GANTL__LOWER && jc > ic + mp - 1) || (tri == GANTL__UPPER && jc + np - 1 < ic)) continue;
            int64_t row_tasks = (mp + GANTL__DMC - 1) / GANTL__DMC, col_tasks = (np + GANTL__DNB - 1) / GANTL__DNB;
            for (int64_t pc = 0; pc < k; pc += GANTL__DKC) {
                int64_t kc = k - pc < GANTL__DKC ? k - pc : GANTL__DKC;
                /* A by the tasks' row blocks, B by their column blocks; dynamic, as all
                   loops here, so that a thread held up elsewhere delays no one */
                GANTL__OMP(for schedule(dynamic, 1) nowait)
                for (int64_t t = 0; t < row_tasks; t++) {
                    int64_t i0 = t * GANTL__DMC, h = mp - i0 < GANTL__DMC ? mp - i0 : GANTL__DMC;
                    gantl__dpack(apack + i0 * kc, GANTL__DMR, a + (ic + i0) * a_sr + pc * a_sp, a_sr, a_sp, h, kc);
                }
                GANTL__OMP(for schedule(dynamic, 1)) /* its barrier: both operands packed */
                for (int64_t t = 0; t < col_tasks; t++) {
                    int64_t j0 = t * GANTL__DNB, w = np - j0 < GANTL__DNB ? np - j0 : GANTL__DNB;
                    gantl__dpack(bpack + j0 * kc, GANTL__DNR, b + (jc + j0) * b_sr + pc * b_sp, b_sr, b_sp, w, kc);
                }
                GANTL__OMP(for schedule(dynamic, 1)) /* its barrier: the buffers are free again */
                for (int64_t t = 0; t < row_tasks * col_tasks; t++) {
                    int64_t i0 = t / col_tasks * GANTL__DMC, j0 = t % col_tasks * GANTL__DNB; /* in the block */
                    int64_t i1 = i0 + GANTL__DMC < mp ? i0 + GANTL__DMC : mp;
                    int64_t j1 = j0 + GANTL__DNB < np ? j0 + GANTL__DNB : np;
                    for (int64_t j = j0; j < j1; j += GANTL__DNR) { /* each B sliver ... */
                        int64_t nr = j1 - j < GANTL__DNR ? j1 - j : GANTL__DNR, col = jc + j;
                        for (int64_t i = i0; i < i1; i += GANTL__DMR) { /* ... against the A block */
                            int64_t mr = i1 - i < GANTL__DMR ? i1 - i : GANTL__DMR, row = ic + i;
                            if (tri == GANTL__LOWER && col > row + mr - 1) continue; /* wholly above the diagonal */
                            if (tri == GANTL__UPPER && col + nr - 1 < row) continue; /* wholly below */
                            gantl__dgemm_tile(c + row * ldc + col, ldc, mr, nr, apack + i * kc, bpack + j * kc, kc,
                                              alpha); /* slivers i / DMR and j / DNR */
                        }
                    }
                }
            }
        }
    GANTL_FREE(raw);
    return GANTL_OK;
}

/* Copies the lower triangle of a (n, n) onto the upper one. */
static void gantl__mirror_lower(double *a, int64_t n) {
    GANTL__OMP(parallel for schedule(static) if (n > 256))
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = i + 1; j < n; j++) a[i * n + j] = a[j * n + i];
}

/* --- FID statistics --- */

GANTLDEF void gantl_fid_stats_free(gantl_fid_stats *s) {
    if (!s) return;
    GANTL_FREE(s->mean);
    GANTL_FREE(s->cov);
    memset(s, 0, sizeof *s);
}

GANTLDEF gantl_status gantl_fid_stats_compute(gantl_fid_stats *s, const float *x, int64_t n, int64_t d, int unbiased) {
    GANTL__CHECK(s != NULL, "gantl_fid_stats_compute: stats is NULL");
    GANTL__CHECK(n >= 0 && d >= 0, "gantl_fid_stats_compute: negative size n = %lld, d = %lld", (long long)n,
                 (long long)d);
    GANTL__CHECK(x != NULL || n * d == 0, "gantl_fid_stats_compute: features is NULL");
    memset(s, 0, sizeof *s);
    if (d < 1) return gantl__fail(GANTL_ERR_INVALID, "fid_stats_compute: features have no dimensions (d = 0)");
    if (n < 2) return gantl__fail(GANTL_ERR_INVALID, "fid_stats_compute: need at least 2 samples, got %lld", (long long)n);
    const int64_t rows = GANTL__DKC; /* rows per centred chunk */
    double *mean = (double *)GANTL_MALLOC((size_t)d * sizeof(double));            /* (d,) */
    double *cov = (double *)GANTL_MALLOC((size_t)(d * d) * sizeof(double));       /* (d, d) */
    double *chunk = (double *)GANTL_MALLOC((size_t)(rows * d) * sizeof(double));  /* (rows, d) */
    gantl_status st = GANTL_OK;
    if (!mean || !cov || !chunk) {
        st = gantl__fail(GANTL_ERR_NOMEM, "fid_stats_compute: out of memory for %lld dimensions", (long long)d);
        goto done;
    }
    /* Mean: columns in fixed blocks of 64, each summed over the rows in order. A NaN or
       infinity anywhere makes its column sum non-finite (float values cannot overflow a
       double sum). */
    GANTL__OMP(parallel for schedule(static) if (n * d > 65536))
    for (int64_t j0 = 0; j0 < d; j0 += 64) {
        int64_t j1 = j0 + 64 < d ? j0 + 64 : d;
        for (int64_t j = j0; j < j1; j++) mean[j] = 0.0;
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = j0; j < j1; j++) mean[j] += (double)x[i * d + j];
    }
    for (int64_t j = 0; j < d; j++) {
        if (!(fabs(mean[j]) <= 1e300)) {
            st = gantl__fail(GANTL_ERR_INVALID, "fid_stats_compute: NaN or infinite feature in column %lld", (long long)j);
            goto done;
        }
        mean[j] /= (double)n;
    }
    /* Covariance: sum over chunks of centred rows C += X_c^T X_c (lower triangle). */
    memset(cov, 0, (size_t)(d * d) * sizeof(double));
    for (int64_t r0 = 0; r0 < n; r0 += rows) {
        int64_t nr = n - r0 < rows ? n - r0 : rows;
        GANTL__OMP(parallel for schedule(static) if (nr * d > 65536))
        for (int64_t i = 0; i < nr; i++)
            for (int64_t j = 0; j < d; j++) chunk[i * d + j] = (double)x[(r0 + i) * d + j] - mean[j];
        st = gantl__dgemm(cov, d, chunk, d, 1, chunk, d, 0, d, d, nr, 1.0, GANTL__LOWER);
        if (st) goto done;
    }
    {
        double scale = 1.0 / (double)(unbiased ? n - 1 : n);
        for (int64_t i = 0; i < d; i++)
            for (int64_t j = 0; j <= i; j++) cov[i * d + j] *= scale;
        gantl__mirror_lower(cov, d);
    }
    s->dim = d;
    s->count = n;
    s->mean = mean;
    s->cov = cov;
    mean = cov = NULL;
done:
    GANTL_FREE(mean);
    GANTL_FREE(cov);
    GANTL_FREE(chunk);
    return st;
}

/* --- Symmetric linear algebra for Tr sqrt(S1 S2) --- */

/* In-place blocked Cholesky of a (n, n): lower triangle := L with L L^T = a, strict upper
   triangle := 0. Returns 0, or 1 if a pivot is <= tol (numerically singular or not
   positive definite; a is then garbage). Right-looking by blocks of 128: factor the
   diagonal block, solve the rows below it, subtract their outer product from the rest. */
static int gantl__cholesky(double *a, int64_t n, double tol, gantl_status *st) {
    const int64_t nb = 128;
    *st = GANTL_OK;
    for (int64_t k0 = 0; k0 < n; k0 += nb) {
        int64_t k1 = k0 + nb < n ? k0 + nb : n;
        for (int64_t j = k0; j < k1; j++) { /* diagonal block, column by column */
            double s = a[j * n + j];
            for (int64_t p = k0; p < j; p++) s -= a[j * n + p] * a[j * n + p];
            if (!(s > tol)) return 1;
            double ljj = sqrt(s);
            a[j * n + j] = ljj;
            for (int64_t i = j + 1; i < k1; i++) {
                double t = a[i * n + j];
                for (int64_t p = k0; p < j; p++) t -= a[i * n + p] * a[j * n + p];
                a[i * n + j] = t / ljj;
            }
        }
        /* rows below: L21 = A21 L11^-T, one row at a time (contiguous) */
        GANTL__OMP(parallel for schedule(static) if ((n - k1) * nb > 16384))
        for (int64_t i = k1; i < n; i++)
            for (int64_t j = k0; j < k1; j++) {
                double t = a[i * n + j];
                for (int64_t p = k0; p < j; p++) t -= a[i * n + p] * a[j * n + p];
                a[i * n + j] = t / a[j * n + j];
            }
        /* A22 -= L21 L21^T, lower triangle */
        *st = gantl__dgemm(a + k1 * n + k1, n, a + k1 * n + k0, n, 0, a + k1 * n + k0, n, 1, n - k1, n - k1, k1 - k0,
                           -1.0, GANTL__LOWER);
        if (*st) return 1;
    }
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = i + 1; j < n; j++) a[i * n + j] = 0.0;
    return 0;
}

/* Rank-revealing Cholesky with diagonal pivoting of a symmetric PSD s (n, n):
   s[perm[i], perm[j]] ~= (L L^T)[i, j] with L (n, rank) lower trapezoidal, stored in l
   (n, n, row-major, zero beyond rank). Stops when the largest remaining pivot is <= tol
   (LAPACK dpstrf's rule). Left-looking: column k of L is one dot product per row. */
static int64_t gantl__pivoted_cholesky(const double *s, int64_t n, double tol, double *l, int64_t *perm, double *diag) {
    memset(l, 0, (size_t)(n * n) * sizeof(double));
    for (int64_t i = 0; i < n; i++) perm[i] = i, diag[i] = s[i * n + i];
    for (int64_t k = 0; k < n; k++) {
        int64_t q = k;
        for (int64_t i = k + 1; i < n; i++)
            if (diag[i] > diag[q]) q = i;
        if (!(diag[q] > tol)) return k;
        if (q != k) {
            int64_t tp = perm[k];
            perm[k] = perm[q], perm[q] = tp;
            double td = diag[k];
            diag[k] = diag[q], diag[q] = td;
            for (int64_t p = 0; p < k; p++) {
                double t = l[k * n + p];
                l[k * n + p] = l[q * n + p], l[q * n + p] = t;
            }
        }
        double lkk = sqrt(diag[k]);
        l[k * n + k] = lkk;
        const double *srow = s + perm[k] * n; /* s[perm[i], perm[k]] = s[perm[k], perm[i]] */
        GANTL__OMP(parallel for schedule(static) if ((n - k) * (k + 1) > 32768))
        for (int64_t i = k + 1; i < n; i++) {
            double t = srow[perm[i]];
            for (int64_t p = 0; p < k; p++) t -= l[i * n + p] * l[k * n + p];
            t /= lkk;
            l[i * n + k] = t;
            diag[i] -= t * t;
        }
    }
    return n;
}

/* Householder vector of x (m,): out (m,) with out[0] = 1 and tau such that
   (I - tau out out^T) x = beta e_1; returns beta. tau = 0 when x's tail is already 0. */
static double gantl__householder(const double *x, int64_t m, double *out, double *tau) {
    double x0 = x[0], tail = 0.0;
    for (int64_t t = 1; t < m; t++) tail += x[t] * x[t];
    out[0] = 1.0;
    if (tail == 0.0) {
        for (int64_t t = 1; t < m; t++) out[t] = 0.0;
        *tau = 0.0;
        return x0;
    }
    double beta = -copysign(sqrt(x0 * x0 + tail), x0);
    *tau = (beta - x0) / beta;
    for (int64_t t = 1; t < m; t++) out[t] = x[t] / (x0 - beta);
    return beta;
}

#define GANTL__SYMV_GROUPS 16 /* fixed row groups of gantl__symv_upper */
#define GANTL__TRD_NB 64        /* reflectors per panel in gantl__tridiagonalize */

/* y (m,) = S v for the symmetric S (m, m) whose upper triangle is s (row stride lds,
   S[i][c] = s[i * lds + c] for c >= i): each element is read once and used twice.
   Rows go in GANTL__SYMV_GROUPS fixed groups of equal work, each group summing into its
   own part (GROUPS, m), added in group order: the result does not depend on threads. */
static void gantl__symv_upper(const double *s, int64_t lds, int64_t m, const double *v, double *y, double *part) {
    const int groups = GANTL__SYMV_GROUPS;
    GANTL__OMP(parallel for schedule(dynamic, 1) if (m > 256))
    for (int g = 0; g < groups; g++) {
        /* rows [r0, r1): row i holds m - i elements, so the boundaries follow sqrt */
        int64_t r0 = g ? m - (int64_t)((double)m * sqrt(1.0 - (double)g / groups)) : 0;
        int64_t r1 = g + 1 < groups ? m - (int64_t)((double)m * sqrt(1.0 - (double)(g + 1) / groups)) : m;
        double *yg = part + g * m;
        memset(yg, 0, (size_t)m * sizeof(double));
        for (int64_t i = r0; i < r1; i++) {
            const double *row = s + i * lds;
            double vi = v[i], t0 = row[i] * vi, t1 = 0.0, t2 = 0.0, t3 = 0.0; /* 4 sums: no add-latency chain */
            int64_t c = i + 1;
            for (; c + 4 <= m; c += 4) {
                t0 += row[c] * v[c], t1 += row[c + 1] * v[c + 1], t2 += row[c + 2] * v[c + 2], t3 += row[c + 3] * v[c + 3];
                yg[c] += row[c] * vi, yg[c + 1] += row[c + 1] * vi, yg[c + 2] += row[c + 2] * vi, yg[c + 3] += row[c + 3] * vi;
            }
            for (; c < m; c++) t0 += row[c] * v[c], yg[c] += row[c] * vi;
            yg[i] += (t0 + t1) + (t2 + t3);
        }
    }
    for (int64_t i = 0; i < m; i++) {
        double t = 0.0;
        for (int g = 0; g < groups; g++) t += part[g * m + i];
        y[i] = t;
    }
}

/* Householder reduction of a symmetric a (n, n; the upper triangle is used and
   overwritten) to a tridiagonal matrix with the same eigenvalues: diagonal dg (n,),
   off-diagonal e (n - 1,). Reflector j: H = I - tau v v^T maps row j's tail onto
   beta e_1; for the trailing block B, with p = tau B v and w = p - (tau/2)(p.v) v,
   H B H = B - v w^T - w v^T. Blocked as LAPACK's dsytrd: a panel of NB reflectors keeps
   its updates in V, W (n, NB) and applies them to the rest at once (two GEMMs); inside
   the panel, B v = (stored B) v - V (W^T v) - W (V^T v). So the trailing matrix is read
   once per reflector (the symmetric product) and written once per panel. */
static gantl_status gantl__tridiagonalize(double *a, int64_t n, double *dg, double *e) {
    const int64_t nb = GANTL__TRD_NB;
    dg[0] = a[0];
    if (n == 1) return GANTL_OK;
    if (n == 2) {
        e[0] = a[1], dg[1] = a[3];
        return GANTL_OK;
    }
    double *vw = (double *)GANTL_MALLOC((size_t)(2 * n * nb + (3 + GANTL__SYMV_GROUPS) * n + 2 * nb) * sizeof(double));
    if (!vw) return gantl__fail(GANTL_ERR_NOMEM, "fid: out of memory for the tridiagonal reduction (n = %lld)", (long long)n);
    double *V = vw, *W = vw + n * nb;                          /* (n, nb) each: reflectors, updates */
    double *hv = W + n * nb, *y = hv + n, *part = y + n;       /* (n,), (n,), (GROUPS, n) */
    double *wtv = part + GANTL__SYMV_GROUPS * n, *vtv = wtv + nb; /* (nb,) each */
    for (int64_t k0 = 0; k0 < n - 2; k0 += nb) {
        int64_t kb = n - 2 - k0 < nb ? n - 2 - k0 : nb; /* reflectors j = k0 .. k0 + kb - 1 */
        memset(V, 0, (size_t)(2 * n * nb) * sizeof(double));
        for (int64_t jj = 0; jj < kb; jj++) {
            int64_t j = k0 + jj, m = n - j - 1;
            double *row = a + j * n, tau;
            /* row j as the panel's earlier reflectors left it */
            for (int64_t c = j; c < n; c++) {
                double t = 0.0;
                for (int64_t q = 0; q < jj; q++) t += V[j * nb + q] * W[c * nb + q] + W[j * nb + q] * V[c * nb + q];
                row[c] -= t;
            }
            dg[j] = row[j];
            e[j] = gantl__householder(row + j + 1, m, hv, &tau);
            /* y = B v with B the current trailing block (rows, columns j+1..) */
            gantl__symv_upper(a + (j + 1) * n + (j + 1), n, m, hv, y, part);
            for (int64_t q = 0; q < jj; q++) wtv[q] = vtv[q] = 0.0;
            for (int64_t t = 0; t < m; t++) /* W^T v, V^T v: rows in order, contiguous */
                for (int64_t q = 0; q < jj; q++)
                    wtv[q] += W[(j + 1 + t) * nb + q] * hv[t], vtv[q] += V[(j + 1 + t) * nb + q] * hv[t];
            for (int64_t t = 0; t < m; t++) {
                double c = 0.0;
                for (int64_t q = 0; q < jj; q++) c += V[(j + 1 + t) * nb + q] * wtv[q] + W[(j + 1 + t) * nb + q] * vtv[q];
                y[t] = tau * (y[t] - c); /* p */
            }
            double pv = 0.0;
            for (int64_t t = 0; t < m; t++) pv += y[t] * hv[t];
            for (int64_t t = 0; t < m; t++) {
                V[(j + 1 + t) * nb + jj] = hv[t];
                W[(j + 1 + t) * nb + jj] = y[t] - 0.5 * tau * pv * hv[t]; /* w */
            }
        }
        /* the rest: A[k1.., k1..] -= V W^T + W V^T (upper triangle) */
        int64_t k1 = k0 + kb, mt = n - k1;
        gantl_status st = gantl__dgemm(a + k1 * n + k1, n, V + k1 * nb, nb, 0, W + k1 * nb, nb, 1, mt, mt, kb, -1.0,
                                       GANTL__UPPER);
        if (!st)
            st = gantl__dgemm(a + k1 * n + k1, n, W + k1 * nb, nb, 0, V + k1 * nb, nb, 1, mt, mt, kb, -1.0, GANTL__UPPER);
        if (st) {
            GANTL_FREE(vw);
            return st;
        }
    }
    dg[n - 2] = a[(n - 2) * n + n - 2];
    e[n - 2] = a[(n - 2) * n + n - 1];
    dg[n - 1] = a[n * n - 1];
    GANTL_FREE(vw);
    return GANTL_OK;
}

/* Eigenvalues of a symmetric tridiagonal matrix (diagonal dg (n,), off-diagonal e (n,):
   e[i] couples i and i + 1, e[n-1] is scratch; both overwritten, the eigenvalues end in
   dg, unordered) by the implicit QL method with Wilkinson shifts. Returns 0, or 1 if an
   eigenvalue did not converge in 60 sweeps. */
static int gantl__tridiagonal_eigenvalues(double *dg, double *e, int64_t n) {
    if (n <= 1) return 0;
    e[n - 1] = 0.0;
    /* e[m] is negligible when tiny next to its diagonal neighbours, or next to the whole
       matrix: eig is only accurate to eps |T| anyway, and a purely relative test never
       splits off a cluster of (numerically) zero eigenvalues. */
    double norm = 0.0;
    for (int64_t i = 0; i < n; i++) {
        double t = fabs(dg[i]) + fabs(e[i]) + (i ? fabs(e[i - 1]) : 0.0);
        if (t > norm) norm = t;
    }
    double abs_tol = GANTL__DBL_EPS * norm;
    for (int64_t l = 0; l < n; l++) {
        int iter = 0;
        int64_t m;
        do {
            for (m = l; m < n - 1; m++) { /* split where e[m] is negligible */
                double dd = fabs(dg[m]) + fabs(dg[m + 1]);
                if (fabs(e[m]) <= GANTL__DBL_EPS * dd || fabs(e[m]) <= abs_tol) break;
            }
            if (m != l) {
                if (iter++ == 60) return 1;
                double g = (dg[l + 1] - dg[l]) / (2.0 * e[l]);
                double r = hypot(g, 1.0);
                g = dg[m] - dg[l] + e[l] / (g + copysign(r, g)); /* d_m - k_s */
                double s = 1.0, c = 1.0, pp = 0.0;
                int64_t i;
                for (i = m - 1; i >= l; i--) { /* plane rotations chase the bulge up */
                    double f = s * e[i], b = c * e[i];
                    r = hypot(f, g);
                    e[i + 1] = r;
                    if (r == 0.0) { /* underflow: deflate and restart */
                        dg[i + 1] -= pp;
                        e[m] = 0.0;
                        break;
                    }
                    s = f / r;
                    c = g / r;
                    g = dg[i + 1] - pp;
                    r = (dg[i] - g) * s + 2.0 * c * b;
                    pp = s * r;
                    dg[i + 1] = g + pp;
                    g = c * r - b;
                }
                if (r == 0.0 && i >= l) continue;
                dg[l] -= pp;
                e[l] = g;
                e[m] = 0.0;
            }
        } while (m != l);
    }
    return 0;
}

/* Tr sqrt(S1 S2) for symmetric PSD s1, s2 (d, d). S1 S2 is not symmetric, but for any
   factor S1 = G G^T its non-zero eigenvalues are those of the symmetric PSD M = G^T S2 G
   (G G^T S2 and G^T S2 G share them), so Tr sqrt(S1 S2) = sum sqrt(eig(M)).
   G: the Cholesky factor of S1, or, when S1 is numerically singular (a pivot <= d eps
   max diag, e.g. count <= dim), a pivoted Cholesky of S1 stopped at that tolerance
   (LAPACK dpstrf's rule), G (d, r) with P S1 P^T ~= G G^T, S2 permuted alike. This plays
   the role of sqrt(S1) S2 sqrt(S1) without eigenvectors, and M is only r x r.
   M = G^T S2 G by blocks that skip G's zero upper part; then Householder
   tridiagonalisation and QL for eig(M). Eigenvalues below r eps max eig are rounding
   noise of a PSD matrix (exactly 0 when S2 is singular) and count as 0: keeping them
   would add ~sqrt(eps) each. */
static gantl_status gantl__trace_sqrt_product(const double *s1, const double *s2, int64_t d, double *out) {
    size_t dd = (size_t)(d * d) * sizeof(double);
    double *l = (double *)GANTL_MALLOC(dd);            /* (d, d) the factor G, lower */
    double *s2p = (double *)GANTL_MALLOC(dd);          /* (d, d) S2 permuted, later M (r, r) */
    double *wk = (double *)GANTL_MALLOC(dd);           /* (d, r) S2 G */
    double *vec = (double *)GANTL_MALLOC((size_t)(2 * d) * sizeof(double)); /* pivots' diagonal, then dg, e */
    int64_t *perm = (int64_t *)GANTL_MALLOC((size_t)d * sizeof(int64_t));
    gantl_status st = GANTL_OK;
    *out = 0.0;
    if (!l || !s2p || !wk || !vec || !perm) {
        st = gantl__fail(GANTL_ERR_NOMEM, "fid: out of memory for %lld x %lld matrices", (long long)d, (long long)d);
        goto done;
    }
    {
        double max1 = 0.0;
        for (int64_t i = 0; i < d; i++)
            if (s1[i * d + i] > max1) max1 = s1[i * d + i];
        double tol = (double)d * GANTL__DBL_EPS * max1;
        int64_t r = d;
        int have_perm = 0;
        memcpy(l, s1, dd);
        if (gantl__cholesky(l, d, tol, &st)) {
            if (st) goto done;
            r = gantl__pivoted_cholesky(s1, d, tol, l, perm, vec);
            have_perm = 1;
        }
        if (r == 0) goto done; /* S1 = 0 */
        if (have_perm) {
            GANTL__OMP(parallel for schedule(static) if (d > 256))
            for (int64_t i = 0; i < d; i++)
                for (int64_t j = 0; j < d; j++) s2p[i * d + j] = s2[perm[i] * d + perm[j]];
        } else {
            memcpy(s2p, s2, dd);
        }
        /* W (d, r) = S2p L, L (d, r) zero above the diagonal: W[:, j0..] = S2p[:, j0..] L[j0.., j0..] */
        const int64_t nb = 256;
        memset(wk, 0, (size_t)(d * r) * sizeof(double));
        for (int64_t j0 = 0; j0 < r; j0 += nb) {
            int64_t jb = r - j0 < nb ? r - j0 : nb;
            st = gantl__dgemm(wk + j0, r, s2p + j0, d, 0, l + j0 * d + j0, d, 0, d, jb, d - j0, 1.0, GANTL__FULL);
            if (st) goto done;
        }
        /* M (r, r) = L^T W, lower triangle by row blocks: M[i0.., ..i1] = L[i0.., i0..i1]^T W[i0.., ..i1] */
        double *mm = s2p;
        memset(mm, 0, (size_t)(r * r) * sizeof(double));
        for (int64_t i0 = 0; i0 < r; i0 += nb) {
            int64_t ib = r - i0 < nb ? r - i0 : nb;
            st = gantl__dgemm(mm + i0 * r, r, l + i0 * d + i0, d, 1, wk + i0 * r, r, 0, ib, i0 + ib, d - i0, 1.0,
                              GANTL__FULL);
            if (st) goto done;
        }
        gantl__mirror_lower(mm, r);
        double *dg = vec, *e = vec + d;
        if ((st = gantl__tridiagonalize(mm, r, dg, e))) goto done;
        if (gantl__tridiagonal_eigenvalues(dg, e, r)) {
            st = gantl__fail(GANTL_ERR_INVALID, "fid: eigenvalues did not converge (NaN in the statistics?)");
            goto done;
        }
        double top = 0.0, sum = 0.0;
        for (int64_t i = 0; i < r; i++)
            if (dg[i] > top) top = dg[i];
        for (int64_t i = 0; i < r; i++) sum += dg[i] > (double)r * GANTL__DBL_EPS * top ? sqrt(dg[i]) : 0.0;
        *out = sum;
    }
done:
    GANTL_FREE(l);
    GANTL_FREE(s2p);
    GANTL_FREE(wk);
    GANTL_FREE(vec);
    GANTL_FREE(perm);
    return st;
}

GANTLDEF gantl_status gantl_fid_from_stats(const gantl_fid_stats *a, const gantl_fid_stats *b, double *fid) {
    GANTL__CHECK(a && b && fid, "gantl_fid_from_stats: NULL argument");
    *fid = 0.0;
    if (a->dim != b->dim || a->dim < 1)
        return gantl__fail(GANTL_ERR_INVALID, "fid_from_stats: dimensions %lld and %lld differ (or are 0)",
                           (long long)a->dim, (long long)b->dim);
    GANTL__CHECK(a->mean && a->cov && b->mean && b->cov, "gantl_fid_from_stats: statistics without mean or cov");
    int64_t d = a->dim;
    /* Bitwise identical statistics (the same features, computed deterministically): 0
       exactly, where the general path would leave rounding of order eps * Tr S. */
    if (a == b || (!memcmp(a->mean, b->mean, (size_t)d * sizeof(double)) &&
                   !memcmp(a->cov, b->cov, (size_t)(d * d) * sizeof(double))))
        return GANTL_OK;
    double diff = 0.0, tr = 0.0;
    for (int64_t i = 0; i < d; i++) {
        double t = a->mean[i] - b->mean[i];
        diff += t * t;
        tr += a->cov[i * d + i] + b->cov[i * d + i];
    }
    for (int64_t i = 0; i < d * d; i++)
        if (!(fabs(a->cov[i]) <= 1e300 && fabs(b->cov[i]) <= 1e300))
            return gantl__fail(GANTL_ERR_INVALID, "fid_from_stats: NaN or infinite covariance entry");
    if (!(fabs(diff) <= 1e300)) return gantl__fail(GANTL_ERR_INVALID, "fid_from_stats: NaN or infinite mean");
    double trsqrt;
    gantl_status st = gantl__trace_sqrt_product(a->cov, b->cov, d, &trsqrt);
    if (st) return st;
    double v = diff + tr - 2.0 * trsqrt;
    *fid = v > 0.0 ? v : 0.0; /* FID is a squared distance: a negative value is rounding */
    return GANTL_OK;
}

GANTLDEF gantl_status gantl_fid(const float *x, int64_t nx, const float *y, int64_t ny, int64_t d, int unbiased,
                                double *fid) {
    GANTL__CHECK(fid != NULL, "gantl_fid: fid is NULL");
    *fid = 0.0;
    gantl_fid_stats sx, sy;
    gantl_status st = gantl_fid_stats_compute(&sx, x, nx, d, unbiased);
    if (st) return st;
    st = gantl_fid_stats_compute(&sy, y, ny, d, unbiased);
    if (!st) st = gantl_fid_from_stats(&sx, &sy, fid);
    gantl_fid_stats_free(&sx);
    gantl_fid_stats_free(&sy);
    return st;
}

/* --- KID --- */

GANTLDEF gantl_status gantl_kid_subsets(int64_t nx, int64_t ny, int num_subsets, int64_t m, uint64_t seed,
                                        int64_t *x_idx, int64_t *y_idx) {
    GANTL__CHECK(nx >= 0 && ny >= 0 && m >= 0 && num_subsets >= 0, "gantl_kid_subsets: negative size");
    GANTL__CHECK((x_idx && y_idx) || m * num_subsets == 0, "gantl_kid_subsets: NULL index array");
    if (m > nx || m > ny)
        return gantl__fail(GANTL_ERR_INVALID, "kid: subsets of %lld rows cannot be drawn without replacement from %lld and %lld rows",
                           (long long)m, (long long)nx, (long long)ny);
    int64_t *px = (int64_t *)GANTL_MALLOC((size_t)(nx + ny + 1) * sizeof(int64_t)), *py = px ? px + nx : NULL;
    if (!px) return gantl__fail(GANTL_ERR_NOMEM, "kid: out of memory for %lld indices", (long long)(nx + ny));
    for (int64_t i = 0; i < nx; i++) px[i] = i;
    for (int64_t i = 0; i < ny; i++) py[i] = i;
    gantl_rng rng = gantl_rng_new(seed);
    for (int s = 0; s < num_subsets; s++)
        for (int side = 0; side < 2; side++) {
            int64_t *pool = side ? py : px, n = side ? ny : nx, *out = (side ? y_idx : x_idx) + (int64_t)s * m;
            for (int64_t i = 0; i < m; i++) { /* partial Fisher-Yates: pool[0..i] is the sample */
                int64_t j = i + gantl_rng_int(&rng, n - i), t = pool[i];
                pool[i] = pool[j], pool[j] = t;
                out[i] = pool[i];
            }
        }
    GANTL_FREE(px);
    return GANTL_OK;
}

/* 1 if every value of x (n, d) is finite. */
static int gantl__all_finite(const float *x, int64_t n, int64_t d) {
    int ok = 1;
    GANTL__OMP(parallel for schedule(static) reduction(&& : ok) if (n * d > 65536))
    for (int64_t i = 0; i < n; i++) {
        double s = 0.0; /* NaN and infinity propagate; float squares cannot overflow a double */
        for (int64_t j = 0; j < d; j++) s += (double)x[i * d + j] * (double)x[i * d + j];
        ok = ok && s <= 1e300;
    }
    return ok;
}

/* sum over rows i of sum_{j in row i's range} (g[i, j] / d + 1)^3, g (m, n); offdiag_lower:
   only j < i. Row sums first, then added in row order (thread-count independent). */
static double gantl__poly_kernel_sum(const double *g, int64_t m, int64_t n, double d, int offdiag_lower,
                                     double *rowsum) {
    GANTL__OMP(parallel for schedule(static) if (m * n > 65536))
    for (int64_t i = 0; i < m; i++) {
        int64_t end = offdiag_lower ? i : n;
        double s = 0.0;
        for (int64_t j = 0; j < end; j++) {
            double t = g[i * n + j] / d + 1.0;
            s += t * t * t;
        }
        rowsum[i] = s;
    }
    double s = 0.0;
    for (int64_t i = 0; i < m; i++) s += rowsum[i];
    return s;
}

GANTLDEF gantl_status gantl_kid_from_subsets(const float *x, int64_t nx, const float *y, int64_t ny, int64_t d,
                                             int num_subsets, int64_t m, const int64_t *x_idx, const int64_t *y_idx,
                                             double *mean, double *std) {
    GANTL__CHECK(mean != NULL, "gantl_kid_from_subsets: mean is NULL");
    GANTL__CHECK(nx >= 0 && ny >= 0 && d >= 0 && m >= 0 && num_subsets >= 0, "gantl_kid_from_subsets: negative size");
    GANTL__CHECK((x || nx * d == 0) && (y || ny * d == 0), "gantl_kid_from_subsets: features are NULL");
    GANTL__CHECK((x_idx && y_idx) || m * num_subsets == 0, "gantl_kid_from_subsets: NULL index array");
    *mean = 0.0;
    if (std) *std = 0.0;
    if (d < 1) return gantl__fail(GANTL_ERR_INVALID, "kid: features have no dimensions (d = 0)");
    if (num_subsets < 1) return gantl__fail(GANTL_ERR_INVALID, "kid: num_subsets = %d, need at least 1", num_subsets);
    if (m < 2) return gantl__fail(GANTL_ERR_INVALID, "kid: subset size %lld, need at least 2", (long long)m);
    for (int64_t i = 0; i < (int64_t)num_subsets * m; i++)
        if (x_idx[i] < 0 || x_idx[i] >= nx || y_idx[i] < 0 || y_idx[i] >= ny)
            return gantl__fail(GANTL_ERR_INVALID, "kid: subset index %lld out of range", (long long)i);
    if (!gantl__all_finite(x, nx, d) || !gantl__all_finite(y, ny, d))
        return gantl__fail(GANTL_ERR_INVALID, "kid: NaN or infinite feature");
    double *xs = (double *)GANTL_MALLOC((size_t)(2 * m * d) * sizeof(double)), *ys = xs ? xs + m * d : NULL; /* (m, d) each */
    double *g = (double *)GANTL_MALLOC((size_t)(m * m + m) * sizeof(double)), *rowsum = g ? g + m * m : NULL; /* (m, m), (m,) */
    double *mmd = (double *)GANTL_MALLOC((size_t)num_subsets * sizeof(double));
    gantl_status st = GANTL_OK;
    if (!xs || !g || !mmd) {
        st = gantl__fail(GANTL_ERR_NOMEM, "kid: out of memory for subsets of %lld x %lld", (long long)m, (long long)d);
        goto done;
    }
    for (int s = 0; s < num_subsets; s++) {
        const int64_t *ix = x_idx + (int64_t)s * m, *iy = y_idx + (int64_t)s * m;
        GANTL__OMP(parallel for schedule(static) if (m * d > 65536))
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < d; j++) {
                xs[i * d + j] = (double)x[ix[i] * d + j];
                ys[i * d + j] = (double)y[iy[i] * d + j];
            }
        double kxx, kyy, kxy, dd = (double)d;
        memset(g, 0, (size_t)(m * m) * sizeof(double));
        if ((st = gantl__dgemm(g, m, xs, d, 0, xs, d, 1, m, m, d, 1.0, GANTL__LOWER))) goto done;
        kxx = 2.0 * gantl__poly_kernel_sum(g, m, m, dd, 1, rowsum); /* i != j: twice the strict lower part */
        memset(g, 0, (size_t)(m * m) * sizeof(double));
        if ((st = gantl__dgemm(g, m, ys, d, 0, ys, d, 1, m, m, d, 1.0, GANTL__LOWER))) goto done;
        kyy = 2.0 * gantl__poly_kernel_sum(g, m, m, dd, 1, rowsum);
        memset(g, 0, (size_t)(m * m) * sizeof(double));
        if ((st = gantl__dgemm(g, m, xs, d, 0, ys, d, 1, m, m, d, 1.0, GANTL__FULL))) goto done;
        kxy = gantl__poly_kernel_sum(g, m, m, dd, 0, rowsum);
        double mm = (double)m;
        mmd[s] = (kxx + kyy) / (mm * (mm - 1.0)) - 2.0 * kxy / (mm * mm);
    }
    {
        double sum = 0.0, var = 0.0;
        for (int s = 0; s < num_subsets; s++) sum += mmd[s];
        *mean = sum / num_subsets;
        for (int s = 0; s < num_subsets; s++) var += (mmd[s] - *mean) * (mmd[s] - *mean);
        if (std) *std = sqrt(var / num_subsets); /* population std, like numpy.std */
    }
done:
    GANTL_FREE(xs);
    GANTL_FREE(g);
    GANTL_FREE(mmd);
    return st;
}

GANTLDEF gantl_status gantl_kid(const float *x, int64_t nx, const float *y, int64_t ny, int64_t d, int num_subsets,
                                int64_t subset_size, uint64_t seed, double *mean, double *std) {
    GANTL__CHECK(mean != NULL, "gantl_kid: mean is NULL");
    GANTL__CHECK(nx >= 0 && ny >= 0 && d >= 0, "gantl_kid: negative size");
    *mean = 0.0;
    if (std) *std = 0.0;
    int64_t m = subset_size;
    if (m <= 0) {
        m = nx < ny ? nx : ny;
        if (m > 1000) m = 1000;
    }
    if (num_subsets < 1) return gantl__fail(GANTL_ERR_INVALID, "kid: num_subsets = %d, need at least 1", num_subsets);
    if (m < 2) return gantl__fail(GANTL_ERR_INVALID, "kid: subset size %lld, need at least 2", (long long)m);
    int64_t *idx = (int64_t *)GANTL_MALLOC((size_t)(2 * m * num_subsets) * sizeof(int64_t));
    if (!idx) return gantl__fail(GANTL_ERR_NOMEM, "kid: out of memory for subset indices");
    gantl_status st = gantl_kid_subsets(nx, ny, num_subsets, m, seed, idx, idx + m * num_subsets);
    if (!st) st = gantl_kid_from_subsets(x, nx, y, ny, d, num_subsets, m, idx, idx + m * num_subsets, mean, std);
    GANTL_FREE(idx);
    return st;
}

/* --- Precision, recall, density, coverage --- */

#define GANTL__PR_ROWS 1024 /* default distance block: rows x columns */
#define GANTL__PR_COLS 4096

/* norms (n,) = |x_i|^2, summed in double, rounded to float */
static void gantl__sq_norms(const float *x, int64_t n, int64_t d, float *norms) {
    GANTL__OMP(parallel for schedule(static) if (n * d > 65536))
    for (int64_t i = 0; i < n; i++) {
        double s = 0.0;
        for (int64_t j = 0; j < d; j++) s += (double)x[i * d + j] * (double)x[i * d + j];
        norms[i] = (float)s;
    }
}

/* Scratch for distance blocks of up to rows x cols. */
typedef struct gantl__dist_ws {
    int64_t rows, cols, d;
    float *blk; /* (rows, cols) squared distances */
} gantl__dist_ws;

static gantl_status gantl__dist_ws_init(gantl__dist_ws *w, int64_t rows, int64_t cols, int64_t d) {
    w->rows = rows, w->cols = cols, w->d = d;
    w->blk = (float *)GANTL_MALLOC((size_t)(rows * cols) * sizeof(float));
    if (w->blk) return GANTL_OK;
    return gantl__fail(GANTL_ERR_NOMEM, "prdc: out of memory for a %lld x %lld distance block", (long long)rows,
                       (long long)cols);
}

static void gantl__dist_ws_free(gantl__dist_ws *w) {
    GANTL_FREE(w->blk);
    w->blk = NULL;
}

/* w->blk (rows, cols) = max(0, (-2 u_i.v_j + |u_i|^2) + |v_j|^2) for u (rows, d), v (cols, d).
   Every element must get the same arithmetic whatever block it falls in, or the block
   size could flip a comparison. gantl_sgemm's tiled path sums each k-panel of GANTL__KC
   in order into a float (fused multiply-adds where GANTL__SGEMM_FMA) and adds -2 times
   it to c (from 0); its path for tiny products sums differently, so small blocks (which
   only occur at the edges) use the tiled arithmetic written out here instead.
   (gantl_sgemm also falls back to its plain loops if it cannot allocate a 1 MB panel:
   then last bits may differ.) */
static void gantl__sq_dist_block(gantl__dist_ws *w, const float *u, const float *un, int64_t rows, const float *v,
                                 const float *vn, int64_t cols) {
    int64_t d = w->d;
    float *blk = w->blk;
    if (rows * cols * d > ((int64_t)1 << 20)) {
        gantl_sgemm(blk, u, v, 0, 1, -2.0f, 0.0f, rows, cols, d);
    } else {
        for (int64_t i = 0; i < rows; i++)
            for (int64_t j = 0; j < cols; j++) {
                const float *a = u + i * d, *b = v + j * d;
                float c = 0.0f;
                for (int64_t p0 = 0; p0 < d; p0 += GANTL__KC) {
                    int64_t p1 = p0 + GANTL__KC < d ? p0 + GANTL__KC : d;
                    float acc = 0.0f;
#if GANTL__SGEMM_FMA
                    for (int64_t p = p0; p < p1; p++) acc = fmaf(a[p], b[p], acc);
#else
                    for (int64_t p = p0; p < p1; p++) acc += a[p] * b[p];
#endif
                    c += -2.0f * acc;
                }
                blk[i * cols + j] = c;
            }
    }
    GANTL__OMP(parallel for schedule(static) if (rows * cols > 65536))
    for (int64_t i = 0; i < rows; i++)
        for (int64_t j = 0; j < cols; j++) {
            float t = blk[i * cols + j] + un[i] + vn[j];
            blk[i * cols + j] = t > 0.0f ? t : 0.0f;
        }
}

/* Inserts t into the ascending k smallest values b (k,) if it belongs there. */
static void gantl__insert_k(float *b, int k, float t) {
    if (!(t < b[k - 1])) return;
    int p = k - 1;
    while (p > 0 && b[p - 1] > t) b[p] = b[p - 1], p--;
    b[p] = t;
}

/* r2 (n,) = squared distance of each row of x (n, d) to its k-th nearest other row (self
   excluded by index). Each pair a < b is computed once, as row a against column b (so the
   same way for any block size), and offered to both a's and b's k smallest (best). */
static gantl_status gantl__knn_sq(gantl__dist_ws *w, const float *x, const float *xn, int64_t n, int k, float *r2) {
    int64_t d = w->d, block_rows = w->rows, block_cols = w->cols;
    float *best = (float *)GANTL_MALLOC((size_t)(n * k) * sizeof(float)); /* (n, k) ascending */
    if (!best) return gantl__fail(GANTL_ERR_NOMEM, "prdc: out of memory for k-NN of %lld points", (long long)n);
    for (int64_t i = 0; i < n * k; i++) best[i] = INFINITY;
    for (int64_t i0 = 0; i0 < n; i0 += block_rows) {
        int64_t rows = n - i0 < block_rows ? n - i0 : block_rows;
        for (int64_t j0 = i0; j0 < n; j0 += block_cols) { /* columns b >= the block's first row */
            int64_t cols = n - j0 < block_cols ? n - j0 : block_cols;
            gantl__sq_dist_block(w, x + i0 * d, xn + i0, rows, x + j0 * d, xn + j0, cols);
            const float *blk = w->blk;
            GANTL__OMP(parallel for schedule(static) if (rows * cols > 65536))
            for (int64_t i = 0; i < rows; i++) { /* row a = i0 + i takes columns b > a */
                int64_t j = i0 + i + 1 - j0;
                for (j = j < 0 ? 0 : j; j < cols; j++) gantl__insert_k(best + (i0 + i) * k, k, blk[i * cols + j]);
            }
            GANTL__OMP(parallel for schedule(static) if (rows * cols > 65536))
            for (int64_t c0 = 0; c0 < cols; c0 += 64) { /* column b = j0 + j takes rows a < b */
                int64_t c1 = c0 + 64 < cols ? c0 + 64 : cols;
                for (int64_t i = 0; i < rows; i++)
                    for (int64_t j = c0; j < c1; j++)
                        if (i0 + i < j0 + j) gantl__insert_k(best + (j0 + j) * k, k, blk[i * cols + j]);
            }
        }
    }
    for (int64_t i = 0; i < n; i++) r2[i] = best[i * k + k - 1];
    GANTL_FREE(best);
    return GANTL_OK;
}

GANTLDEF gantl_status gantl_knn_radii(const float *x, int64_t n, int64_t d, int k, float *radii) {
    GANTL__CHECK(n >= 0 && d >= 0, "gantl_knn_radii: negative size");
    GANTL__CHECK((x || n * d == 0) && (radii || n == 0), "gantl_knn_radii: NULL argument");
    if (d < 1) return gantl__fail(GANTL_ERR_INVALID, "knn_radii: features have no dimensions (d = 0)");
    if (k < 1 || k >= n)
        return gantl__fail(GANTL_ERR_INVALID, "knn_radii: k = %d needs 1 <= k < n = %lld", k, (long long)n);
    float *xn = (float *)GANTL_MALLOC((size_t)n * sizeof(float));
    if (!xn) return gantl__fail(GANTL_ERR_NOMEM, "knn_radii: out of memory");
    gantl_status st = GANTL_OK;
    gantl__sq_norms(x, n, d, xn);
    for (int64_t i = 0; i < n; i++)
        if (!(xn[i] <= 3e38f)) st = gantl__fail(GANTL_ERR_INVALID, "knn_radii: NaN or infinite feature in row %lld", (long long)i);
    gantl__dist_ws w;
    if (!st) st = gantl__dist_ws_init(&w, n < GANTL__PR_ROWS ? n : GANTL__PR_ROWS, n < GANTL__PR_COLS ? n : GANTL__PR_COLS, d);
    if (!st) {
        st = gantl__knn_sq(&w, x, xn, n, k, radii);
        gantl__dist_ws_free(&w);
    }
    if (!st)
        for (int64_t i = 0; i < n; i++) radii[i] = sqrtf(radii[i]);
    GANTL_FREE(xn);
    return st;
}

/* gantl_prdc_compute with an explicit distance block size (tests vary it). One sweep over
   fake rows x real columns gives all four numbers: per fake row, whether some real ball
   holds it and how many do; per real column, the nearest fake and whether some fake ball
   holds it. Squared distances are compared with squared radii (same order). */
static gantl_status gantl__prdc(const float *real, int64_t n_real, const float *fake, int64_t n_fake, int64_t d, int k,
                                int strict, gantl_prdc *out, int64_t block_rows, int64_t block_cols) {
    GANTL__CHECK(out != NULL, "gantl_prdc_compute: out is NULL");
    GANTL__CHECK(n_real >= 0 && n_fake >= 0 && d >= 0 && block_rows > 0 && block_cols > 0,
                 "gantl_prdc_compute: negative size");
    GANTL__CHECK((real || n_real * d == 0) && (fake || n_fake * d == 0), "gantl_prdc_compute: features are NULL");
    memset(out, 0, sizeof *out);
    if (d < 1) return gantl__fail(GANTL_ERR_INVALID, "prdc: features have no dimensions (d = 0)");
    if (k < 1 || k >= n_real || k >= n_fake)
        return gantl__fail(GANTL_ERR_INVALID, "prdc: k = %d needs 1 <= k < n_real = %lld and k < n_fake = %lld", k,
                           (long long)n_real, (long long)n_fake);
    int64_t n_max = n_real > n_fake ? n_real : n_fake;
    gantl__dist_ws w;
    gantl_status st = gantl__dist_ws_init(&w, block_rows < n_max ? block_rows : n_max, block_cols < n_max ? block_cols : n_max, d);
    if (st) return st;
    /* real: norms, radii^2, nearest fake^2; fake: norms, radii^2 */
    float *rf = (float *)GANTL_MALLOC((size_t)(3 * n_real + 2 * n_fake) * sizeof(float));
    unsigned char *flags = (unsigned char *)GANTL_MALLOC((size_t)(n_real + n_fake)); /* recalled (n_real,), precise (n_fake,) */
    int64_t *count = (int64_t *)GANTL_MALLOC((size_t)n_fake * sizeof(int64_t));      /* (n_fake,) real balls holding each */
    if (!rf || !flags || !count) {
        st = gantl__fail(GANTL_ERR_NOMEM, "prdc: out of memory for %lld + %lld points", (long long)n_real, (long long)n_fake);
        goto done;
    }
    {
        float *rn = rf, *rr2 = rf + n_real, *rnear = rf + 2 * n_real, *fn = rf + 3 * n_real, *fr2 = fn + n_fake;
        unsigned char *recalled = flags, *precise = flags + n_real;
        gantl__sq_norms(real, n_real, d, rn);
        gantl__sq_norms(fake, n_fake, d, fn);
        for (int64_t i = 0; i < n_real + n_fake; i++)
            if (!((i < n_real ? rn[i] : fn[i - n_real]) <= 3e38f)) {
                st = gantl__fail(GANTL_ERR_INVALID, "prdc: NaN or infinite feature in %s row %lld", i < n_real ? "real" : "fake",
                                 (long long)(i < n_real ? i : i - n_real));
                goto done;
            }
        if ((st = gantl__knn_sq(&w, real, rn, n_real, k, rr2))) goto done;
        if ((st = gantl__knn_sq(&w, fake, fn, n_fake, k, fr2))) goto done;
        block_rows = w.rows, block_cols = w.cols;
        for (int64_t i = 0; i < n_real; i++) rnear[i] = INFINITY, recalled[i] = 0;
        for (int64_t j = 0; j < n_fake; j++) precise[j] = 0, count[j] = 0;
        for (int64_t j0 = 0; j0 < n_fake; j0 += block_rows) {
            int64_t rows = n_fake - j0 < block_rows ? n_fake - j0 : block_rows;
            for (int64_t i0 = 0; i0 < n_real; i0 += block_cols) {
                int64_t cols = n_real - i0 < block_cols ? n_real - i0 : block_cols;
                gantl__sq_dist_block(&w, fake + j0 * d, fn + j0, rows, real + i0 * d, rn + i0, cols);
                const float *blk = w.blk;
                /* fake rows: inside how many real balls */
                GANTL__OMP(parallel for schedule(static) if (rows * cols > 65536))
                for (int64_t j = 0; j < rows; j++) {
                    const float *row = blk + j * cols, *r2 = rr2 + i0;
                    int64_t c = 0;
                    if (strict)
                        for (int64_t i = 0; i < cols; i++) c += row[i] < r2[i];
                    else
                        for (int64_t i = 0; i < cols; i++) c += row[i] <= r2[i];
                    count[j0 + j] += c;
                    if (c) precise[j0 + j] = 1;
                }
                /* real columns, in chunks of 64: nearest fake, inside some fake ball */
                GANTL__OMP(parallel for schedule(static) if (rows * cols > 65536))
                for (int64_t c0 = 0; c0 < cols; c0 += 64) {
                    int64_t c1 = c0 + 64 < cols ? c0 + 64 : cols;
                    for (int64_t j = 0; j < rows; j++) {
                        const float *row = blk + j * cols;
                        float fr = fr2[j0 + j];
                        for (int64_t i = c0; i < c1; i++) {
                            float t = row[i];
                            if (t < rnear[i0 + i]) rnear[i0 + i] = t;
                            if (strict ? t < fr : t <= fr) recalled[i0 + i] = 1;
                        }
                    }
                }
            }
        }
        int64_t n_prec = 0, n_rec = 0, n_cov = 0, n_dens = 0;
        for (int64_t j = 0; j < n_fake; j++) n_prec += precise[j], n_dens += count[j];
        for (int64_t i = 0; i < n_real; i++) {
            n_rec += recalled[i];
            n_cov += strict ? rnear[i] < rr2[i] : rnear[i] <= rr2[i];
        }
        out->precision = (double)n_prec / (double)n_fake;
        out->recall = (double)n_rec / (double)n_real;
        out->density = (double)n_dens / ((double)k * (double)n_fake);
        out->coverage = (double)n_cov / (double)n_real;
    }
done:
    GANTL_FREE(rf);
    gantl__dist_ws_free(&w);
    GANTL_FREE(flags);
    GANTL_FREE(count);
    return st;
}

GANTLDEF gantl_status gantl_prdc_compute(const float *real, int64_t n_real, const float *fake, int64_t n_fake, int64_t d,
                                         int k, int strict, gantl_prdc *out) {
    return gantl__prdc(real, n_real, fake, n_fake, d, k, strict, out, GANTL__PR_ROWS, GANTL__PR_COLS);
}

/* --- Linear assignment and W1 --- */

/* Minimum-cost assignment (Jonker and Volgenant 1987), on the dual v of the columns with
   u_i = cost[i, x[i]] - v[x[i]] implicit: every assigned row's column minimises its
   reduced cost cost[i, j] - v[j], which keeps all reduced costs cost - u - v >= 0.
   1. Column reduction: v_j = min_i cost[i, j]; column j goes to its minimising row if
      that row is still free (last columns first).
   2. An eps-scaling auction finds near-optimal prices v quickly; rows whose column is
      not exactly their cheapest are freed again (the auction is only a heuristic: it
      makes the searches of step 3 short, which matters for geometric costs, where
      shortest paths from poor prices cross the whole instance).
   3. Each remaining free row: Dijkstra on reduced costs to the nearest free column,
      flip the path, then lower the prices of the scanned columns to keep duals feasible.
   Column states in step 3 live in one array scanned linearly (no index lists), which
   streams through each cost row. Serial: OpenMP regions here slowed the auction. */
GANTLDEF gantl_status gantl_linear_assignment(const double *cost, int64_t n, int64_t *assign, double *total) {
    GANTL__CHECK(n >= 0, "gantl_linear_assignment: negative size n = %lld", (long long)n);
    GANTL__CHECK(cost || n == 0, "gantl_linear_assignment: cost is NULL");
    if (total) *total = 0.0;
    if (n == 0) return GANTL_OK;
    for (int64_t i = 0; i < n * n; i++)
        if (!(fabs(cost[i]) <= 1e300))
            return gantl__fail(GANTL_ERR_INVALID, "linear_assignment: cost[%lld] is NaN or infinite", (long long)i);
    double *v = (double *)GANTL_MALLOC((size_t)(2 * n) * sizeof(double)), *dist = v ? v + n : NULL; /* (n,) each */
    int64_t *ix = (int64_t *)GANTL_MALLOC((size_t)(5 * n) * sizeof(int64_t));
    unsigned char *state = (unsigned char *)GANTL_MALLOC((size_t)n);
    if (!v || !ix || !state) {
        GANTL_FREE(v), GANTL_FREE(ix), GANTL_FREE(state);
        return gantl__fail(GANTL_ERR_NOMEM, "linear_assignment: out of memory for n = %lld", (long long)n);
    }
    /* x[i]: column of row i, y[j]: row of column j (-1: free); pred[j]: previous row on
       the shortest path to column j; todo: columns at the current Dijkstra distance, then
       scanned ones; free rows. */
    int64_t *x = ix, *y = ix + n, *pred = ix + 2 * n, *todo = ix + 3 * n, *freerows = ix + 4 * n;
    for (int64_t i = 0; i < n; i++) x[i] = y[i] = -1;
    /* 1. column reduction (pred holds the minimising rows) */
    for (int64_t j = 0; j < n; j++) v[j] = cost[j], pred[j] = 0;
    for (int64_t i = 1; i < n; i++)
        for (int64_t j = 0; j < n; j++)
            if (cost[i * n + j] < v[j]) v[j] = cost[i * n + j], pred[j] = i;
    for (int64_t j = n - 1; j >= 0; j--)
        if (x[pred[j]] < 0) x[pred[j]] = j, y[j] = pred[j];
    int64_t nfree = 0;
    for (int64_t i = 0; i < n; i++)
        if (x[i] < 0) freerows[nfree++] = i;
    /* 2. Auction with eps-scaling (Bertsekas), on prices p = -v: a free row bids for
       its cheapest column j1 (cost + price w1; second cheapest w2), raising p[j1] by
       w2 - w1 + eps and evicting the owner; eps shrinks 8x per phase, and each phase
       frees the rows that break eps-complementary slackness. This only finds good prices
       fast: any v is a valid start for step 3, so a budget of 64 n bids ends it early. */
    if (n > 1) {
        double cmax = 0.0;
        for (int64_t t = 0; t < n * n; t++)
            if (fabs(cost[t]) > cmax) cmax = fabs(cost[t]);
        int64_t *queue = freerows, bids = 64 * n; /* queue: a ring of free rows */
        unsigned char *keep = state;
        for (double eps = cmax / 8.0; eps > cmax * 1e-9 && bids > 0; eps /= 8.0) {
            for (int64_t i = 0; i < n; i++) { /* keep[i]: own column within eps of the cheapest */
                const double *ci = cost + i * n;
                double best = INFINITY;
                for (int64_t j = 0; j < n; j++) best = ci[j] - v[j] < best ? ci[j] - v[j] : best;
                keep[i] = x[i] >= 0 && ci[x[i]] - v[x[i]] <= best + eps;
            }
            int64_t head = 0, count = 0;
            for (int64_t i = 0; i < n; i++)
                if (!keep[i]) {
                    if (x[i] >= 0) y[x[i]] = -1, x[i] = -1;
                    queue[count++] = i;
                }
            while (count > 0 && --bids > 0) {
                int64_t i = queue[head];
                head = head + 1 == n ? 0 : head + 1, count--;
                const double *ci = cost + i * n;
                double w1 = ci[0] - v[0], w2 = INFINITY;
                int64_t j1 = 0;
                for (int64_t j = 1; j < n; j++) { /* the two cheapest c - v */
                    double h = ci[j] - v[j];
                    if (h < w2) {
                        if (h < w1)
                            w2 = w1, w1 = h, j1 = j;
                        else
                            w2 = h;
                    }
                }
                v[j1] -= w2 - w1 + eps;
                int64_t i0 = y[j1];
                x[i] = j1, y[j1] = i;
                if (i0 >= 0) {
                    x[i0] = -1;
                    queue[(head + count) % n] = i0, count++;
                }
            }
        }
        /* keep only the rows whose column is exactly their cheapest: step 3's invariant */
        for (int64_t i = 0; i < n; i++) {
            const double *ci = cost + i * n;
            double own = x[i] >= 0 ? ci[x[i]] - v[x[i]] : -INFINITY;
            int64_t j = 0;
            while (j < n && !(ci[j] - v[j] < own)) j++;
            keep[i] = x[i] >= 0 && j == n;
        }
        nfree = 0;
        for (int64_t i = 0; i < n; i++)
            if (!keep[i]) {
                if (x[i] >= 0) y[x[i]] = -1, x[i] = -1;
                freerows[nfree++] = i;
            }
    }
    /* 3. shortest augmenting paths. state: 0 unreached, 1 at the current distance dmin
       (in todo[ntodo0..ntodo)), 2 scanned (in todo[0..ntodo0)). */
    for (int64_t q = 0; q < nfree; q++) {
        int64_t f = freerows[q], end = -1, nscan = 0, ntodo = 0;
        const double *cf = cost + f * n;
        for (int64_t j = 0; j < n; j++) dist[j] = cf[j] - v[j], pred[j] = f, state[j] = 0;
        double dmin = 0.0;
        for (;;) {
            if (nscan == ntodo) { /* next distance level: all unreached columns at the minimum */
                dmin = INFINITY;
                for (int64_t j = 0; j < n; j++)
                    if (!state[j] && dist[j] < dmin) dmin = dist[j];
                for (int64_t j = 0; j < n; j++)
                    if (!state[j] && dist[j] <= dmin) {
                        state[j] = 1, todo[ntodo++] = j;
                        if (y[j] < 0) end = j;
                    }
                if (end >= 0) break;
            }
            int64_t j1 = todo[nscan++], i = y[j1]; /* scan the row assigned to column j1 */
            state[j1] = 2;
            const double *ci = cost + i * n;
            double u1 = ci[j1] - v[j1] - dmin;
            for (int64_t j = 0; j < n; j++) {
                if (state[j]) continue;
                double h = ci[j] - v[j] - u1;
                if (h < dist[j]) {
                    dist[j] = h, pred[j] = i;
                    if (h <= dmin) { /* == in exact arithmetic */
                        state[j] = 1, todo[ntodo++] = j;
                        if (y[j] < 0) {
                            end = j;
                            break;
                        }
                    }
                }
            }
            if (end >= 0) break;
        }
        for (int64_t k = 0; k < nscan; k++) v[todo[k]] += dist[todo[k]] - dmin; /* keep the duals feasible */
        for (int64_t j = end;;) { /* flip the path back to row f */
            int64_t i = pred[j], t = x[i];
            y[j] = i;
            x[i] = j;
            if (i == f) break;
            j = t;
        }
    }
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++) sum += cost[i * n + x[i]];
    if (total) *total = sum;
    if (assign) memcpy(assign, x, (size_t)n * sizeof(int64_t));
    GANTL_FREE(v), GANTL_FREE(ix), GANTL_FREE(state);
    return GANTL_OK;
}

GANTLDEF gantl_status gantl_w1_2d(const float *a, const float *b, int64_t n, double *w1) {
    GANTL__CHECK(w1 != NULL && n >= 0 && ((a && b) || n == 0), "gantl_w1_2d: NULL argument or negative n");
    *w1 = 0.0;
    if (n < 1) return gantl__fail(GANTL_ERR_INVALID, "w1_2d: empty point clouds");
    if (!gantl__all_finite(a, n, 2) || !gantl__all_finite(b, n, 2))
        return gantl__fail(GANTL_ERR_INVALID, "w1_2d: NaN or infinite coordinate");
    double *cost = (double *)GANTL_MALLOC((size_t)(n * n) * sizeof(double)); /* (n, n) */
    if (!cost) return gantl__fail(GANTL_ERR_NOMEM, "w1_2d: out of memory for a %lld x %lld cost matrix", (long long)n, (long long)n);
    GANTL__OMP(parallel for schedule(static) if (n > 256))
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < n; j++) {
            double dx = (double)a[2 * i] - (double)b[2 * j], dy = (double)a[2 * i + 1] - (double)b[2 * j + 1];
            cost[i * n + j] = sqrt(dx * dx + dy * dy);
        }
    double total;
    gantl_status st = gantl_linear_assignment(cost, n, NULL, &total);
    if (!st) *w1 = total / (double)n;
    GANTL_FREE(cost);
    return st;
}

/* --- Pearson correlation --- */

/* Continued fraction of the regularised incomplete beta function (modified Lentz):
   I_x(a,b) = x^a (1-x)^b / (a B(a,b)) / (1 + d1 / (1 + d2 / (1 + ...))),
   d_{2m+1} = -(a+m)(a+b+m) x / ((a+2m)(a+2m+1)), d_{2m} = m(b-m) x / ((a+2m-1)(a+2m)).
   Converges quickly for x < (a+1)/(a+b+2). Returns the fraction's value. */
static double gantl__beta_cf(double a, double b, double x) {
    const double tiny = 1e-300;
    double num = -(a + b) * x / (a + 1.0); /* d1 */
    double den = 1.0 + num, c = 1.0;
    if (fabs(den) < tiny) den = tiny;
    den = 1.0 / den;
    double h = den;
    for (int m = 1; m <= 100000; m++) {
        for (int odd = 0; odd < 2; odd++) {
            num = odd ? -(a + m) * (a + b + m) * x / ((a + 2.0 * m) * (a + 2.0 * m + 1.0))
                      : m * (b - m) * x / ((a + 2.0 * m - 1.0) * (a + 2.0 * m));
            den = 1.0 + num * den;
            c = 1.0 + num / c;
            if (fabs(den) < tiny) den = tiny;
            if (fabs(c) < tiny) c = tiny;
            den = 1.0 / den;
            double step = den * c;
            h *= step;
            if (odd && fabs(step - 1.0) <= 4.0 * GANTL__DBL_EPS) return h;
        }
    }
    return h;
}

/* I_x(a, b), given x and xc = 1 - x separately (each accurate). */
static double gantl__beta_inc(double a, double b, double x, double xc) {
    if (x <= 0.0) return 0.0;
    if (xc <= 0.0) return 1.0;
    double front = exp(lgamma(a + b) - lgamma(a) - lgamma(b) + a * log(x) + b * log(xc));
    if (x < (a + 1.0) / (a + b + 2.0)) return front * gantl__beta_cf(a, b, x) / a;
    return 1.0 - front * gantl__beta_cf(b, a, xc) / b; /* symmetry: I_x(a,b) = 1 - I_{1-x}(b,a) */
}

GANTLDEF gantl_status gantl_pearson(const double *x, const double *y, int64_t n, double *r, double *p_value) {
    GANTL__CHECK(n >= 0 && r && ((x && y) || n == 0), "gantl_pearson: NULL argument or negative n");
    *r = 0.0;
    if (p_value) *p_value = 1.0;
    if (n < 2) return gantl__fail(GANTL_ERR_INVALID, "pearson: need at least 2 pairs, got %lld", (long long)n);
    double mx = 0.0, my = 0.0;
    for (int64_t i = 0; i < n; i++) mx += x[i], my += y[i];
    if (!(fabs(mx) <= 1e300 && fabs(my) <= 1e300)) return gantl__fail(GANTL_ERR_INVALID, "pearson: NaN or infinite value");
    mx /= (double)n, my /= (double)n;
    double sxx = 0.0, syy = 0.0, sxy = 0.0; /* two passes: centred sums */
    for (int64_t i = 0; i < n; i++) {
        double dx = x[i] - mx, dy = y[i] - my;
        sxx += dx * dx, syy += dy * dy, sxy += dx * dy;
    }
    if (!(sxx > 0.0 && syy > 0.0)) return gantl__fail(GANTL_ERR_INVALID, "pearson: an input is constant");
    double rr = sxy / (sqrt(sxx) * sqrt(syy));
    rr = rr > 1.0 ? 1.0 : rr < -1.0 ? -1.0 : rr;
    *r = rr;
    if (!p_value || n == 2) return GANTL_OK; /* n = 2: r = +-1, p = 1 (scipy's convention) */
    /* t = r sqrt(df / (1 - r^2)) with df = n - 2; the two-sided p = 2 (1 - t_cdf(|t|, df))
       = I_{df/(df+t^2)}(df/2, 1/2) and df/(df+t^2) = 1 - r^2 = (1-|r|)(1+|r|). */
    double ar = fabs(rr), df = (double)(n - 2);
    *p_value = gantl__beta_inc(0.5 * df, 0.5, (1.0 - ar) * (1.0 + ar), ar * ar);
    return GANTL_OK;
}

/* ---------------------------------------------------------------------------------------
   10. StyleGAN2-ADA networks
   ------------------------------------------------------------------------------------- */

#define GANTL__SQRT2 1.41421356237309504880f
#define GANTL__SQRT_HALF 0.70710678118654752440f
#define GANTL__LRELU_ALPHA 0.2f

GANTLDEF void gantl_g_config_default(gantl_g_config *cfg) {
    memset(cfg, 0, sizeof *cfg);
    cfg->z_dim = 512, cfg->w_dim = 512, cfg->img_resolution = 256, cfg->img_channels = 3;
    cfg->mapping.num_layers = 8;
    cfg->mapping.lr_multiplier = 0.01f;
    cfg->mapping.w_avg_beta = 0.995f;
    cfg->channel_base = 32768, cfg->channel_max = 512;
    cfg->conv_clamp = -1.0f;
}

GANTLDEF void gantl_d_config_default(gantl_d_config *cfg) {
    memset(cfg, 0, sizeof *cfg);
    cfg->img_resolution = 256, cfg->img_channels = 3;
    cfg->architecture = GANTL_D_RESNET;
    cfg->channel_base = 32768, cfg->channel_max = 512;
    cfg->conv_clamp = -1.0f;
    cfg->mbstd_group_size = 4, cfg->mbstd_num_channels = 1;
    cfg->mapping.num_layers = 8;
    cfg->mapping.lr_multiplier = 0.01f;
    cfg->mapping.w_avg_beta = -1.0f;
}

/* ---- kwargs JSON ---- */

/* Reads an integer (or, with allow_null, null -> null_value) into *out. */
static gantl_status gantl__json_int(const gantl_json *v, const char *key, int *out, int allow_null, int null_value) {
    if (v->type == GANTL_JSON_NULL && allow_null) {
        *out = null_value;
        return GANTL_OK;
    }
    if (v->type != GANTL_JSON_NUMBER || v->number != floor(v->number) || fabs(v->number) > 1e9)
        return gantl__fail(GANTL_ERR_INVALID, "network kwargs: '%s' must be an integer%s", key, allow_null ? " or null" : "");
    *out = (int)v->number;
    return GANTL_OK;
}

static gantl_status gantl__json_float(const gantl_json *v, const char *key, float *out, int allow_null, float null_value) {
    if (v->type == GANTL_JSON_NULL && allow_null) {
        *out = null_value;
        return GANTL_OK;
    }
    if (v->type != GANTL_JSON_NUMBER)
        return gantl__fail(GANTL_ERR_INVALID, "network kwargs: '%s' must be a number%s", key, allow_null ? " or null" : "");
    *out = (float)v->number;
    return GANTL_OK;
}

/* Keys that do not change the maths in fp32 and are accepted as they come. */
static int gantl__json_ignorable(const char *key) {
    return !strcmp(key, "fp16_channels_last") || !strcmp(key, "channels_last");
}

/* Checks a string-valued kwarg against the one value gantl implements. */
static gantl_status gantl__json_expect_str(const gantl_json *v, const char *key, const char *want) {
    if (v->type != GANTL_JSON_STRING || strcmp(v->string, want) != 0)
        return gantl__fail(GANTL_ERR_UNSUPPORTED, "network kwargs: %s = %s is not supported (only '%s')", key,
                           v->type == GANTL_JSON_STRING ? v->string : "(not a string)", want);
    return GANTL_OK;
}

static gantl_status gantl__mapping_from_json(gantl_mapping_config *m, const gantl_json *j) {
    if (!j || j->type == GANTL_JSON_NULL) return GANTL_OK;
    if (j->type != GANTL_JSON_OBJECT) return gantl__fail(GANTL_ERR_INVALID, "network kwargs: mapping_kwargs is not an object");
    for (int i = 0; i < j->count; i++) {
        const char *k = j->keys[i];
        const gantl_json *v = &j->items[i];
        gantl_status s = GANTL_OK;
        if (!strcmp(k, "num_layers")) s = gantl__json_int(v, k, &m->num_layers, 0, 0);
        else if (!strcmp(k, "embed_features")) s = gantl__json_int(v, k, &m->embed_features, 1, 0);
        else if (!strcmp(k, "layer_features")) s = gantl__json_int(v, k, &m->layer_features, 1, 0);
        else if (!strcmp(k, "lr_multiplier")) s = gantl__json_float(v, k, &m->lr_multiplier, 0, 0);
        else if (!strcmp(k, "w_avg_beta")) s = gantl__json_float(v, k, &m->w_avg_beta, 1, -1.0f);
        else if (!strcmp(k, "activation")) s = gantl__json_expect_str(v, k, "lrelu");
        else if (!gantl__json_ignorable(k))
            s = gantl__fail(GANTL_ERR_UNSUPPORTED, "network kwargs: mapping_kwargs.%s is not supported", k);
        if (s != GANTL_OK) return s;
    }
    return GANTL_OK;
}

static gantl_status gantl__check_resolution(int res, int channels, const char *what) {
    if (res < 4 || res > 1024 || (res & (res - 1)))
        return gantl__fail(GANTL_ERR_INVALID, "%s: img_resolution %d must be a power of two from 4 to 1024", what, res);
    if (channels < 1) return gantl__fail(GANTL_ERR_INVALID, "%s: img_channels %d must be positive", what, channels);
    return GANTL_OK;
}

static gantl_status gantl__g_config_check(const gantl_g_config *c) {
    gantl_status s = gantl__check_resolution(c->img_resolution, c->img_channels, "generator");
    if (s != GANTL_OK) return s;
    if (c->z_dim < 1 || c->c_dim < 0 || c->w_dim < 1 || c->channel_base < 1 || c->channel_max < 1 ||
        c->mapping.num_layers < 1 || c->mapping.num_layers > GANTL_MAX_MAPPING_LAYERS || c->mapping.embed_features < 0 ||
        c->mapping.layer_features < 0)
        return gantl__fail(GANTL_ERR_INVALID, "generator: z_dim %d, c_dim %d, w_dim %d, channel_base %d, channel_max %d "
                           "or mapping layers %d out of range", c->z_dim, c->c_dim, c->w_dim, c->channel_base,
                           c->channel_max, c->mapping.num_layers);
    if (c->channel_base / c->img_resolution < 1 && c->channel_max >= 1 && c->channel_base < c->img_resolution)
        return gantl__fail(GANTL_ERR_INVALID, "generator: channel_base %d gives no channels at %d", c->channel_base,
                           c->img_resolution);
    return GANTL_OK;
}

static gantl_status gantl__d_config_check(const gantl_d_config *c) {
    gantl_status s = gantl__check_resolution(c->img_resolution, c->img_channels, "discriminator");
    if (s != GANTL_OK) return s;
    if (c->img_resolution < 8) /* as the official one, D needs a block before the 4x4 epilogue */
        return gantl__fail(GANTL_ERR_INVALID, "discriminator: img_resolution %d must be at least 8", c->img_resolution);
    if (c->c_dim < 0 || c->channel_base < c->img_resolution || c->channel_max < 1 || c->cmap_dim < 0 ||
        c->mbstd_group_size < 0 || c->mbstd_num_channels < 0 || c->mapping.num_layers < 1 ||
        c->mapping.num_layers > GANTL_MAX_MAPPING_LAYERS)
        return gantl__fail(GANTL_ERR_INVALID, "discriminator: c_dim %d, channel_base %d, channel_max %d, cmap_dim %d, "
                           "mbstd %d/%d or mapping layers %d out of range", c->c_dim, c->channel_base, c->channel_max,
                           c->cmap_dim, c->mbstd_group_size, c->mbstd_num_channels, c->mapping.num_layers);
    return GANTL_OK;
}

GANTLDEF gantl_status gantl_g_config_from_json(gantl_g_config *cfg, const char *text) {
    gantl_json j;
    gantl_g_config_default(cfg);
    gantl_status s = gantl_json_parse(&j, text, strlen(text));
    if (s != GANTL_OK) return s;
    if (j.type != GANTL_JSON_OBJECT) s = gantl__fail(GANTL_ERR_INVALID, "generator kwargs: not a JSON object");
    for (int i = 0; i < j.count && s == GANTL_OK; i++) {
        const char *k = j.keys[i];
        const gantl_json *v = &j.items[i];
        if (!strcmp(k, "z_dim")) s = gantl__json_int(v, k, &cfg->z_dim, 0, 0);
        else if (!strcmp(k, "c_dim")) s = gantl__json_int(v, k, &cfg->c_dim, 0, 0);
        else if (!strcmp(k, "w_dim")) s = gantl__json_int(v, k, &cfg->w_dim, 0, 0);
        else if (!strcmp(k, "img_resolution")) s = gantl__json_int(v, k, &cfg->img_resolution, 0, 0);
        else if (!strcmp(k, "img_channels")) s = gantl__json_int(v, k, &cfg->img_channels, 0, 0);
        else if (!strcmp(k, "mapping_kwargs")) s = gantl__mapping_from_json(&cfg->mapping, v);
        else if (!strcmp(k, "synthesis_kwargs")) {
            if (v->type != GANTL_JSON_OBJECT) {
                s = gantl__fail(GANTL_ERR_INVALID, "generator kwargs: synthesis_kwargs is not an object");
                break;
            }
            for (int m = 0; m < v->count && s == GANTL_OK; m++) {
                const char *sk = v->keys[m];
                const gantl_json *sv = &v->items[m];
                if (!strcmp(sk, "channel_base")) s = gantl__json_int(sv, sk, &cfg->channel_base, 0, 0);
                else if (!strcmp(sk, "channel_max")) s = gantl__json_int(sv, sk, &cfg->channel_max, 0, 0);
                else if (!strcmp(sk, "num_fp16_res")) s = gantl__json_int(sv, sk, &cfg->num_fp16_res, 0, 0);
                else if (!strcmp(sk, "conv_clamp")) s = gantl__json_float(sv, sk, &cfg->conv_clamp, 1, -1.0f);
                else if (!strcmp(sk, "architecture")) s = gantl__json_expect_str(sv, sk, "skip");
                else if (!strcmp(sk, "activation")) s = gantl__json_expect_str(sv, sk, "lrelu");
                else if (!gantl__json_ignorable(sk))
                    s = gantl__fail(GANTL_ERR_UNSUPPORTED, "generator kwargs: synthesis_kwargs.%s is not supported", sk);
            }
        } else
            s = gantl__fail(GANTL_ERR_UNSUPPORTED, "generator kwargs: '%s' is not supported", k);
    }
    gantl_json_free(&j);
    return s != GANTL_OK ? s : gantl__g_config_check(cfg);
}

GANTLDEF gantl_status gantl_d_config_from_json(gantl_d_config *cfg, const char *text) {
    gantl_json j;
    gantl_d_config_default(cfg);
    gantl_status s = gantl_json_parse(&j, text, strlen(text));
    if (s != GANTL_OK) return s;
    if (j.type != GANTL_JSON_OBJECT) s = gantl__fail(GANTL_ERR_INVALID, "discriminator kwargs: not a JSON object");
    for (int i = 0; i < j.count && s == GANTL_OK; i++) {
        const char *k = j.keys[i];
        const gantl_json *v = &j.items[i];
        if (!strcmp(k, "c_dim")) s = gantl__json_int(v, k, &cfg->c_dim, 0, 0);
        else if (!strcmp(k, "img_resolution")) s = gantl__json_int(v, k, &cfg->img_resolution, 0, 0);
        else if (!strcmp(k, "img_channels")) s = gantl__json_int(v, k, &cfg->img_channels, 0, 0);
        else if (!strcmp(k, "channel_base")) s = gantl__json_int(v, k, &cfg->channel_base, 0, 0);
        else if (!strcmp(k, "channel_max")) s = gantl__json_int(v, k, &cfg->channel_max, 0, 0);
        else if (!strcmp(k, "num_fp16_res")) s = gantl__json_int(v, k, &cfg->num_fp16_res, 0, 0);
        else if (!strcmp(k, "conv_clamp")) s = gantl__json_float(v, k, &cfg->conv_clamp, 1, -1.0f);
        else if (!strcmp(k, "cmap_dim")) s = gantl__json_int(v, k, &cfg->cmap_dim, 1, 0);
        else if (!strcmp(k, "architecture")) {
            const char *a = v->type == GANTL_JSON_STRING ? v->string : "";
            if (!strcmp(a, "resnet")) cfg->architecture = GANTL_D_RESNET;
            else if (!strcmp(a, "orig")) cfg->architecture = GANTL_D_ORIG;
            else if (!strcmp(a, "skip")) cfg->architecture = GANTL_D_SKIP;
            else s = gantl__fail(GANTL_ERR_UNSUPPORTED, "discriminator kwargs: architecture '%s' is not supported", a);
        } else if (!strcmp(k, "mapping_kwargs")) s = gantl__mapping_from_json(&cfg->mapping, v);
        else if (!strcmp(k, "block_kwargs") || !strcmp(k, "epilogue_kwargs")) {
            if (v->type != GANTL_JSON_OBJECT) {
                s = gantl__fail(GANTL_ERR_INVALID, "discriminator kwargs: %s is not an object", k);
                break;
            }
            for (int m = 0; m < v->count && s == GANTL_OK; m++) {
                const char *sk = v->keys[m];
                const gantl_json *sv = &v->items[m];
                if (!strcmp(sk, "mbstd_group_size")) s = gantl__json_int(sv, sk, &cfg->mbstd_group_size, 1, 0);
                else if (!strcmp(sk, "mbstd_num_channels")) s = gantl__json_int(sv, sk, &cfg->mbstd_num_channels, 0, 0);
                else if (!strcmp(sk, "freeze_layers")) s = gantl__json_int(sv, sk, &cfg->freeze_layers, 0, 0);
                else if (!strcmp(sk, "activation")) s = gantl__json_expect_str(sv, sk, "lrelu");
                else if (!gantl__json_ignorable(sk))
                    s = gantl__fail(GANTL_ERR_UNSUPPORTED, "discriminator kwargs: %s.%s is not supported", k, sk);
            }
        } else
            s = gantl__fail(GANTL_ERR_UNSUPPORTED, "discriminator kwargs: '%s' is not supported", k);
    }
    gantl_json_free(&j);
    return s != GANTL_OK ? s : gantl__d_config_check(cfg);
}

/* "null" for a negative value, else the number. */
static const char *gantl__json_num_or_null(char *buf, size_t size, double v, int is_int) {
    if (v < 0) snprintf(buf, size, "null");
    else if (is_int) snprintf(buf, size, "%d", (int)v);
    else snprintf(buf, size, "%.9g", v);
    return buf;
}

static int gantl__mapping_to_json(const gantl_mapping_config *m, char *buf, size_t size) {
    char a[32], b[32], c[32];
    return snprintf(buf, size,
                    "{\"num_layers\": %d, \"embed_features\": %s, \"layer_features\": %s, \"lr_multiplier\": %.9g, "
                    "\"w_avg_beta\": %s}",
                    m->num_layers, gantl__json_num_or_null(a, sizeof a, m->embed_features ? m->embed_features : -1, 1),
                    gantl__json_num_or_null(b, sizeof b, m->layer_features ? m->layer_features : -1, 1),
                    (double)m->lr_multiplier, gantl__json_num_or_null(c, sizeof c, m->w_avg_beta, 0));
}

GANTLDEF int gantl_g_config_to_json(const gantl_g_config *cfg, char *buf, size_t size) {
    char mapping[256], clamp[32];
    gantl__mapping_to_json(&cfg->mapping, mapping, sizeof mapping);
    return snprintf(buf, size,
                    "{\"z_dim\": %d, \"c_dim\": %d, \"w_dim\": %d, \"img_resolution\": %d, \"img_channels\": %d, "
                    "\"mapping_kwargs\": %s, \"synthesis_kwargs\": {\"channel_base\": %d, \"channel_max\": %d, "
                    "\"num_fp16_res\": %d, \"conv_clamp\": %s, \"architecture\": \"skip\"}}",
                    cfg->z_dim, cfg->c_dim, cfg->w_dim, cfg->img_resolution, cfg->img_channels, mapping,
                    cfg->channel_base, cfg->channel_max, cfg->num_fp16_res,
                    gantl__json_num_or_null(clamp, sizeof clamp, cfg->conv_clamp, 0));
}

GANTLDEF int gantl_d_config_to_json(const gantl_d_config *cfg, char *buf, size_t size) {
    static const char *const arch[3] = {"resnet", "orig", "skip"};
    char mapping[256], clamp[32], cmap[32], group[32];
    gantl__mapping_to_json(&cfg->mapping, mapping, sizeof mapping);
    return snprintf(buf, size,
                    "{\"c_dim\": %d, \"img_resolution\": %d, \"img_channels\": %d, \"architecture\": \"%s\", "
                    "\"channel_base\": %d, \"channel_max\": %d, \"num_fp16_res\": %d, \"conv_clamp\": %s, "
                    "\"cmap_dim\": %s, \"block_kwargs\": {\"freeze_layers\": %d}, \"mapping_kwargs\": %s, "
                    "\"epilogue_kwargs\": {\"mbstd_group_size\": %s, \"mbstd_num_channels\": %d}}",
                    cfg->c_dim, cfg->img_resolution, cfg->img_channels, arch[cfg->architecture], cfg->channel_base,
                    cfg->channel_max, cfg->num_fp16_res, gantl__json_num_or_null(clamp, sizeof clamp, cfg->conv_clamp, 0),
                    gantl__json_num_or_null(cmap, sizeof cmap, cfg->cmap_dim ? cfg->cmap_dim : -1, 1),
                    cfg->freeze_layers, mapping,
                    gantl__json_num_or_null(group, sizeof group, cfg->mbstd_group_size ? cfg->mbstd_group_size : -1, 1),
                    cfg->mbstd_num_channels);
}

/* ---- building the networks ---- */

/* Parameter construction: names built with printf, initial values drawn from rng.
   The first failure is remembered and later calls do nothing. */
typedef struct gantl__builder {
    gantl_params *params, *buffers;
    gantl_rng rng;
    gantl_status status;
} gantl__builder;

typedef enum { GANTL__INIT_ZERO, GANTL__INIT_NORMAL, GANTL__INIT_CONST, GANTL__INIT_FIR } gantl__init_kind;

static gantl_tensor *gantl__make(gantl__builder *b, int buffer, gantl__init_kind init, float value, int ndim, int64_t s0,
                                 int64_t s1, int64_t s2, int64_t s3, const char *fmt, ...) {
    char name[160];
    va_list ap;
    if (b->status != GANTL_OK) return NULL;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    int64_t shape[4] = {s0, s1, s2, s3};
    gantl_tensor *t = gantl_params_add(buffer ? b->buffers : b->params, name, ndim, shape);
    if (!t) {
        b->status = GANTL_ERR_NOMEM;
        return NULL;
    }
    if (init == GANTL__INIT_NORMAL) gantl_rng_normal(&b->rng, t->data, t->numel, 0.0f, value);
    else if (init == GANTL__INIT_CONST) gantl__fill(t->data, value, t->numel);
    else if (init == GANTL__INIT_FIR) { /* setup_filter([1, 3, 3, 1]): outer product, sum 1 */
        static const float taps[4] = {1, 3, 3, 1};
        for (int i = 0; i < 4; i++)
            for (int j = 0; j < 4; j++) t->data[i * 4 + j] = taps[i] * taps[j] / 64.0f;
    }
    return t;
}

/* FullyConnectedLayer: weight N(0, 1) / lr_multiplier, used as weight * lr_multiplier / sqrt(in). */
static void gantl__make_fc(gantl__builder *b, gantl_fc_layer *L, int in, int out, gantl_act act, float lr_multiplier,
                           float bias_init, const char *prefix) {
    L->weight = gantl__make(b, 0, GANTL__INIT_NORMAL, 1.0f / lr_multiplier, 2, out, in, 1, 1, "%s.weight", prefix);
    L->bias = gantl__make(b, 0, GANTL__INIT_CONST, bias_init, 1, out, 1, 1, 1, "%s.bias", prefix);
    L->weight_gain = lr_multiplier / sqrtf((float)in);
    L->bias_gain = lr_multiplier;
    L->act = act;
}

/* Conv2dLayer. */
static void gantl__make_conv(gantl__builder *b, gantl_conv_layer *L, int in, int out, int kernel, int bias, gantl_act act,
                             int up, int down, float conv_clamp, const char *prefix) {
    L->filter = gantl__make(b, 1, GANTL__INIT_FIR, 0, 2, 4, 4, 1, 1, "%s.resample_filter", prefix);
    L->weight = gantl__make(b, 0, GANTL__INIT_NORMAL, 1.0f, 4, out, in, kernel, kernel, "%s.weight", prefix);
    L->bias = bias ? gantl__make(b, 0, GANTL__INIT_ZERO, 0, 1, out, 1, 1, 1, "%s.bias", prefix) : NULL;
    L->up = up, L->down = down;
    L->weight_gain = 1.0f / sqrtf((float)(in * kernel * kernel));
    L->act_gain = act == GANTL_ACT_LRELU ? GANTL__SQRT2 : 1.0f;
    L->conv_clamp = conv_clamp;
    L->act = act;
}

static void gantl__make_mapping(gantl__builder *b, gantl_mapping *M, int z_dim, int c_dim, int w_dim, int num_ws,
                                const gantl_mapping_config *cfg, const char *prefix) {
    int embed = c_dim == 0 ? 0 : (cfg->embed_features ? cfg->embed_features : w_dim);
    int layer = cfg->layer_features ? cfg->layer_features : w_dim;
    char name[96];
    M->z_dim = z_dim, M->c_dim = c_dim, M->w_dim = w_dim, M->num_ws = num_ws, M->num_layers = cfg->num_layers;
    M->w_avg_beta = cfg->w_avg_beta;
    if (c_dim > 0) {
        snprintf(name, sizeof name, "%s.embed", prefix);
        gantl__make_fc(b, &M->embed, c_dim, embed, GANTL_ACT_LINEAR, 1.0f, 0.0f, name);
    }
    for (int i = 0; i < cfg->num_layers; i++) {
        int in = i == 0 ? z_dim + embed : layer, out = i == cfg->num_layers - 1 ? w_dim : layer;
        snprintf(name, sizeof name, "%s.fc%d", prefix, i);
        gantl__make_fc(b, &M->fc[i], in, out, GANTL_ACT_LRELU, cfg->lr_multiplier, 0.0f, name);
    }
    M->w_avg = num_ws > 0 && cfg->w_avg_beta >= 0
                   ? gantl__make(b, 1, GANTL__INIT_ZERO, 0, 1, w_dim, 1, 1, 1, "%s.w_avg", prefix)
                   : NULL;
}

static int gantl__channels(int base, int max, int res) { return base / res < max ? base / res : max; }

static void gantl__make_synthesis_layer(gantl__builder *b, gantl_synthesis_layer *L, int in, int out, int w_dim, int res,
                                        int up, float conv_clamp, const char *prefix) {
    char name[96];
    L->filter = gantl__make(b, 1, GANTL__INIT_FIR, 0, 2, 4, 4, 1, 1, "%s.resample_filter", prefix);
    snprintf(name, sizeof name, "%s.affine", prefix);
    gantl__make_fc(b, &L->affine, w_dim, in, GANTL_ACT_LINEAR, 1.0f, 1.0f, name);
    L->weight = gantl__make(b, 0, GANTL__INIT_NORMAL, 1.0f, 4, out, in, 3, 3, "%s.weight", prefix);
    L->noise_const = gantl__make(b, 1, GANTL__INIT_NORMAL, 1.0f, 2, res, res, 1, 1, "%s.noise_const", prefix);
    L->noise_strength = gantl__make(b, 0, GANTL__INIT_ZERO, 0, 0, 1, 1, 1, 1, "%s.noise_strength", prefix);
    L->bias = gantl__make(b, 0, GANTL__INIT_ZERO, 0, 1, out, 1, 1, 1, "%s.bias", prefix);
    L->resolution = res, L->up = up, L->conv_clamp = conv_clamp;
}

GANTLDEF gantl_status gantl_generator_init(gantl_generator *G, const gantl_g_config *cfg, uint64_t seed) {
    memset(G, 0, sizeof *G);
    gantl_status s = gantl__g_config_check(cfg);
    if (s != GANTL_OK) return s;
    G->cfg = *cfg;
    gantl_params_init(&G->params, 1);
    gantl_params_init(&G->buffers, 0);
    gantl__builder b = {&G->params, &G->buffers, gantl_rng_new(seed), GANTL_OK};
    int log2 = 0;
    while ((1 << log2) < cfg->img_resolution) log2++;
    /* The official order: synthesis first, then mapping. */
    char name[96];
    for (int r = 2; r <= log2; r++) {
        gantl_synthesis_block *B = &G->blocks[G->num_blocks++];
        int res = 1 << r, is_last = res == cfg->img_resolution;
        B->resolution = res;
        B->in_channels = res > 4 ? gantl__channels(cfg->channel_base, cfg->channel_max, res / 2) : 0;
        B->out_channels = gantl__channels(cfg->channel_base, cfg->channel_max, res);
        B->filter = gantl__make(&b, 1, GANTL__INIT_FIR, 0, 2, 4, 4, 1, 1, "synthesis.b%d.resample_filter", res);
        if (B->in_channels == 0)
            B->const_input = gantl__make(&b, 0, GANTL__INIT_NORMAL, 1.0f, 3, B->out_channels, res, res, 1, "synthesis.b%d.const", res);
        else {
            snprintf(name, sizeof name, "synthesis.b%d.conv0", res);
            gantl__make_synthesis_layer(&b, &B->conv0, B->in_channels, B->out_channels, cfg->w_dim, res, 2, cfg->conv_clamp, name);
            B->num_conv++;
        }
        snprintf(name, sizeof name, "synthesis.b%d.conv1", res);
        gantl__make_synthesis_layer(&b, &B->conv1, B->out_channels, B->out_channels, cfg->w_dim, res, 1, cfg->conv_clamp, name);
        B->num_conv++;
        /* 'skip': every block has a ToRGB */
        snprintf(name, sizeof name, "synthesis.b%d.torgb.affine", res);
        gantl__make_fc(&b, &B->torgb.affine, cfg->w_dim, B->out_channels, GANTL_ACT_LINEAR, 1.0f, 1.0f, name);
        B->torgb.weight = gantl__make(&b, 0, GANTL__INIT_NORMAL, 1.0f, 4, cfg->img_channels, B->out_channels, 1, 1,
                                      "synthesis.b%d.torgb.weight", res);
        B->torgb.bias = gantl__make(&b, 0, GANTL__INIT_ZERO, 0, 1, cfg->img_channels, 1, 1, 1, "synthesis.b%d.torgb.bias", res);
        B->torgb.weight_gain = 1.0f / sqrtf((float)B->out_channels);
        B->torgb.conv_clamp = cfg->conv_clamp;
        B->num_torgb = 1;
        G->num_ws += B->num_conv + (is_last ? B->num_torgb : 0);
        G->num_noise += B->num_conv;
    }
    gantl__make_mapping(&b, &G->mapping, cfg->z_dim, cfg->c_dim, cfg->w_dim, G->num_ws, &cfg->mapping, "mapping");
    if (b.status != GANTL_OK) {
        gantl_generator_free(G);
        return gantl__fail(b.status, "generator_init: out of memory");
    }
    return GANTL_OK;
}

GANTLDEF void gantl_generator_free(gantl_generator *G) {
    gantl_params_free(&G->params);
    gantl_params_free(&G->buffers);
    memset(G, 0, sizeof *G);
}

GANTLDEF gantl_status gantl_discriminator_init(gantl_discriminator *D, const gantl_d_config *cfg, uint64_t seed) {
    memset(D, 0, sizeof *D);
    gantl_status s = gantl__d_config_check(cfg);
    if (s != GANTL_OK) return s;
    D->cfg = *cfg;
    gantl_params_init(&D->params, 1);
    gantl_params_init(&D->buffers, 0);
    gantl__builder b = {&D->params, &D->buffers, gantl_rng_new(seed), GANTL_OK};
    int base = cfg->channel_base, max = cfg->channel_max;
    float clamp = cfg->conv_clamp;
    char name[96];
    for (int res = cfg->img_resolution; res > 4; res /= 2) {
        gantl_d_block *B = &D->blocks[D->num_blocks++];
        B->resolution = res;
        B->in_channels = res < cfg->img_resolution ? gantl__channels(base, max, res) : 0;
        B->tmp_channels = gantl__channels(base, max, res);
        B->out_channels = gantl__channels(base, max, res / 2);
        B->filter = gantl__make(&b, 1, GANTL__INIT_FIR, 0, 2, 4, 4, 1, 1, "b%d.resample_filter", res);
        B->has_fromrgb = B->in_channels == 0 || cfg->architecture == GANTL_D_SKIP;
        B->has_skip = cfg->architecture == GANTL_D_RESNET;
        if (B->has_fromrgb) {
            snprintf(name, sizeof name, "b%d.fromrgb", res);
            gantl__make_conv(&b, &B->fromrgb, cfg->img_channels, B->tmp_channels, 1, 1, GANTL_ACT_LRELU, 1, 1, clamp, name);
        }
        snprintf(name, sizeof name, "b%d.conv0", res);
        gantl__make_conv(&b, &B->conv0, B->tmp_channels, B->tmp_channels, 3, 1, GANTL_ACT_LRELU, 1, 1, clamp, name);
        snprintf(name, sizeof name, "b%d.conv1", res);
        gantl__make_conv(&b, &B->conv1, B->tmp_channels, B->out_channels, 3, 1, GANTL_ACT_LRELU, 1, 2, clamp, name);
        if (B->has_skip) {
            snprintf(name, sizeof name, "b%d.skip", res);
            gantl__make_conv(&b, &B->skip, B->tmp_channels, B->out_channels, 1, 0, GANTL_ACT_LINEAR, 1, 2, -1.0f, name);
        }
    }
    int c4 = gantl__channels(base, max, 4);
    D->cmap_dim = cfg->c_dim == 0 ? 0 : (cfg->cmap_dim ? cfg->cmap_dim : c4);
    if (cfg->c_dim > 0) {
        gantl_mapping_config m = cfg->mapping;
        m.w_avg_beta = -1.0f; /* num_ws None, w_avg_beta None */
        gantl__make_mapping(&b, &D->mapping, 0, cfg->c_dim, D->cmap_dim, 0, &m, "mapping");
    }
    if (cfg->architecture == GANTL_D_SKIP)
        gantl__make_conv(&b, &D->epilogue_fromrgb, cfg->img_channels, c4, 1, 1, GANTL_ACT_LRELU, 1, 1, -1.0f, "b4.fromrgb");
    gantl__make_conv(&b, &D->epilogue_conv, c4 + cfg->mbstd_num_channels, c4, 3, 1, GANTL_ACT_LRELU, 1, 1, clamp, "b4.conv");
    gantl__make_fc(&b, &D->epilogue_fc, c4 * 16, c4, GANTL_ACT_LRELU, 1.0f, 0.0f, "b4.fc");
    gantl__make_fc(&b, &D->epilogue_out, c4, D->cmap_dim ? D->cmap_dim : 1, GANTL_ACT_LINEAR, 1.0f, 0.0f, "b4.out");
    if (b.status != GANTL_OK) {
        gantl_discriminator_free(D);
        return gantl__fail(b.status, "discriminator_init: out of memory");
    }
    return GANTL_OK;
}

GANTLDEF void gantl_discriminator_free(gantl_discriminator *D) {
    gantl_params_free(&D->params);
    gantl_params_free(&D->buffers);
    memset(D, 0, sizeof *D);
}

/* ---- layers ---- */

GANTLDEF gantl_tensor *gantl_normalize_2nd_moment(gantl_ctx *ctx, gantl_tensor *x) {
    int axis = 1;
    gantl_tensor *ms = gantl_mean(ctx, gantl_square(ctx, x), 1, &axis, 1);
    return gantl_mul(ctx, x, gantl_rsqrt(ctx, gantl_add_scalar(ctx, ms, 1e-8f)));
}

/* x (N, in) -> (N, out): x @ (w * weight_gain)^T, then bias * bias_gain and activation. */
static gantl_tensor *gantl__fc_forward(gantl_ctx *ctx, const gantl_fc_layer *L, gantl_tensor *x) {
    gantl_tensor *w = gantl_scale(ctx, L->weight, L->weight_gain);
    gantl_tensor *b = L->bias && L->bias_gain != 1.0f ? gantl_scale(ctx, L->bias, L->bias_gain) : L->bias;
    gantl_tensor *y = gantl_matmul(ctx, x, w, 0, 1);
    if (L->act == GANTL_ACT_LINEAR) return b ? gantl_add(ctx, y, b) : y;
    return gantl_bias_act(ctx, y, b, GANTL_ACT_LRELU, GANTL__LRELU_ALPHA, GANTL__SQRT2, -1.0f);
}

GANTLDEF gantl_tensor *gantl_upsample2d(gantl_ctx *ctx, gantl_tensor *x, gantl_tensor *f, int up) {
    if (!x || !f) return NULL;
    int fw = (int)f->shape[f->ndim - 1], fh = (int)f->shape[0];
    int pad[4] = {(fw + up - 1) / 2, (fw - up) / 2, (fh + up - 1) / 2, (fh - up) / 2};
    return gantl_upfirdn2d(ctx, x, f, up, 1, pad, 0, (float)(up * up));
}

GANTLDEF gantl_tensor *gantl_downsample2d(gantl_ctx *ctx, gantl_tensor *x, gantl_tensor *f, int down) {
    if (!x || !f) return NULL;
    int fw = (int)f->shape[f->ndim - 1], fh = (int)f->shape[0];
    int pad[4] = {(fw - down + 1) / 2, (fw - down) / 2, (fh - down + 1) / 2, (fh - down) / 2};
    return gantl_upfirdn2d(ctx, x, f, 1, down, pad, 0, 1.0f);
}

/* conv2d_resample (official torch_utils/ops/conv2d_resample.py) for groups = 1 and the
   flip_weight = (up == 1) that every official caller uses, i.e. never a flipped weight:
   down: FIR with padding, then a strided conv (1x1: FIR down first); up: transposed
   strided conv, then FIR with gain up^2; else a plain conv. */
GANTLDEF gantl_tensor *gantl_conv2d_resample(gantl_ctx *ctx, gantl_tensor *x, gantl_tensor *w, gantl_tensor *f, int up,
                                             int down, int padding) {
    if (!x || !w) return NULL;
    GANTL__CHECK(!(up > 1 && down > 1), "conv2d_resample: up %d and down %d together are not supported", up, down);
    int kh = (int)w->shape[2], kw = (int)w->shape[3];
    if (up == 1 && down == 1) return gantl_conv2d(ctx, x, w, 1, padding, 1);
    GANTL__CHECK(f != NULL, "conv2d_resample: resampling needs a filter");
    int fh = (int)f->shape[0], fw = (int)f->shape[f->ndim - 1];
    int px0 = padding, px1 = padding, py0 = padding, py1 = padding;
    if (down > 1) {
        px0 += (fw - down + 1) / 2, px1 += (fw - down) / 2, py0 += (fh - down + 1) / 2, py1 += (fh - down) / 2;
        int pad[4] = {px0, px1, py0, py1};
        if (kh == 1 && kw == 1) return gantl_conv2d(ctx, gantl_upfirdn2d(ctx, x, f, 1, down, pad, 0, 1.0f), w, 1, 0, 1);
        return gantl_conv2d(ctx, gantl_upfirdn2d(ctx, x, f, 1, 1, pad, 0, 1.0f), w, down, 0, 1);
    }
    GANTL__CHECK(!(kh == 1 && kw == 1), "conv2d_resample: 1x1 upsampling convolutions are not supported");
    px0 += (fw + up - 1) / 2 - (kw - 1), px1 += (fw - up) / 2 - (kw - up);
    py0 += (fh + up - 1) / 2 - (kh - 1), py1 += (fh - up) / 2 - (kh - up);
    int pxt = -px0 < -px1 ? -px0 : -px1, pyt = -py0 < -py1 ? -py0 : -py1;
    pxt = pxt > 0 ? pxt : 0, pyt = pyt > 0 ? pyt : 0;
    GANTL__CHECK(pxt == pyt, "conv2d_resample: non-square kernel padding");
    int perm[4] = {1, 0, 2, 3}; /* (O, I, k, k) -> (I, O, k, k): conv_transpose2d's layout */
    gantl_tensor *y = gantl_conv_transpose2d(ctx, x, gantl_permute(ctx, w, perm), up, pxt, 0, 1);
    int pad[4] = {px0 + pxt, px1 + pxt, py0 + pyt, py1 + pyt};
    return gantl_upfirdn2d(ctx, y, f, 1, 1, pad, 0, (float)(up * up));
}

static gantl_tensor *gantl__conv_layer_forward(gantl_ctx *ctx, const gantl_conv_layer *L, gantl_tensor *x, float gain) {
    gantl_tensor *w = gantl_scale(ctx, L->weight, L->weight_gain);
    gantl_tensor *y = gantl_conv2d_resample(ctx, x, w, L->filter, L->up, L->down, (int)L->weight->shape[2] / 2);
    return gantl_bias_act(ctx, y, L->bias, L->act, GANTL__LRELU_ALPHA, L->act_gain * gain,
                          L->conv_clamp >= 0 ? L->conv_clamp * gain : -1.0f);
}

/* (N, C) -> (N, C, 1, 1), for per-sample, per-channel scaling of activations */
static gantl_tensor *gantl__nc11(gantl_ctx *ctx, gantl_tensor *v) {
    if (!v) return NULL;
    int64_t s[4] = {v->shape[0], v->shape[1], 1, 1};
    return gantl_reshape(ctx, v, 4, s);
}

/* modulated_conv2d, the non-fused form: x * styles -> conv -> * dcoefs + noise. The
   demodulation coefficient of output o for sample n is
   rsqrt(sum_{i,kh,kw} (w[o,i,kh,kw] s[n,i])^2 + 1e-8) = rsqrt(s^2 @ (sum_k w^2)^T + 1e-8). */
static gantl_tensor *gantl__modulated_conv(gantl_ctx *ctx, gantl_tensor *x, gantl_tensor *weight, gantl_tensor *styles,
                                           gantl_tensor *noise, int up, gantl_tensor *filter, int demodulate) {
    gantl_tensor *y = gantl_mul(ctx, x, gantl__nc11(ctx, styles));
    y = gantl_conv2d_resample(ctx, y, weight, filter, up, 1, (int)weight->shape[2] / 2);
    if (demodulate) {
        int axes[2] = {2, 3};
        gantl_tensor *wsq = gantl_sum(ctx, gantl_square(ctx, weight), 2, axes, 0); /* (O, I) */
        gantl_tensor *d = gantl_rsqrt(ctx, gantl_add_scalar(ctx, gantl_matmul(ctx, gantl_square(ctx, styles), wsq, 0, 1), 1e-8f));
        y = gantl_mul(ctx, y, gantl__nc11(ctx, d)); /* (N, O, H, W) */
    }
    return noise ? gantl_add(ctx, y, noise) : y;
}

static gantl_tensor *gantl__synthesis_layer(gantl_ctx *ctx, const gantl_synthesis_layer *L, gantl_tensor *x,
                                            gantl_tensor *w, gantl_noise_mode mode, gantl_rng *rng,
                                            gantl_tensor *given_noise, float gain) {
    if (!x || !w) return NULL;
    gantl_tensor *styles = gantl__fc_forward(ctx, &L->affine, w), *noise = NULL;
    if (mode == GANTL_NOISE_RANDOM) {
        int64_t s[4] = {x->shape[0], 1, L->resolution, L->resolution};
        if (!given_noise) {
            GANTL__CHECK(rng != NULL, "synthesis: noise_mode random needs an rng or explicit noise");
            given_noise = gantl_randn(ctx, rng, 4, s);
        } else
            GANTL__CHECK(given_noise->numel == s[0] * s[2] * s[3], "synthesis: noise %s for layer of resolution %d",
                         GANTL__SHP(given_noise), L->resolution);
        noise = gantl_mul(ctx, gantl_reshape(ctx, given_noise, 4, s), L->noise_strength);
    } else if (mode == GANTL_NOISE_CONST)
        noise = gantl_mul(ctx, L->noise_const, L->noise_strength);
    gantl_tensor *y = gantl__modulated_conv(ctx, x, L->weight, styles, noise, L->up, L->filter, 1);
    return gantl_bias_act(ctx, y, L->bias, GANTL_ACT_LRELU, GANTL__LRELU_ALPHA, GANTL__SQRT2 * gain,
                          L->conv_clamp >= 0 ? L->conv_clamp * gain : -1.0f);
}

static gantl_tensor *gantl__torgb(gantl_ctx *ctx, const gantl_torgb_layer *L, gantl_tensor *x, gantl_tensor *w) {
    gantl_tensor *styles = gantl_scale(ctx, gantl__fc_forward(ctx, &L->affine, w), L->weight_gain);
    gantl_tensor *y = gantl__modulated_conv(ctx, x, L->weight, styles, NULL, 1, NULL, 0);
    return gantl_bias_act(ctx, y, L->bias, GANTL_ACT_LINEAR, 0.0f, 1.0f, L->conv_clamp);
}

GANTLDEF gantl_tensor *gantl_generator_mapping(gantl_ctx *ctx, gantl_generator *G, gantl_tensor *z, gantl_tensor *c,
                                               float truncation_psi, int truncation_cutoff, int update_w_avg) {
    gantl_mapping *M = &G->mapping;
    if (!z || (M->c_dim > 0 && !c)) return NULL;
    GANTL__CHECK(z->ndim == 2 && z->shape[1] == M->z_dim, "mapping: z %s, expected (N, %d)", GANTL__SHP(z), M->z_dim);
    GANTL__CHECK(M->c_dim == 0 || (c->ndim == 2 && c->shape[1] == M->c_dim && c->shape[0] == z->shape[0]),
                 "mapping: c %s, expected (%lld, %d)", GANTL__SHP(c), (long long)z->shape[0], M->c_dim);
    int64_t N = z->shape[0];
    gantl_tensor *x = gantl_normalize_2nd_moment(ctx, z); /* (N, z_dim) */
    if (M->c_dim > 0) x = gantl_concat(ctx, x, gantl_normalize_2nd_moment(ctx, gantl__fc_forward(ctx, &M->embed, c)), 1);
    for (int i = 0; i < M->num_layers; i++) x = gantl__fc_forward(ctx, &M->fc[i], x); /* (N, w_dim) */
    if (!x) return NULL;
    if (update_w_avg && M->w_avg) { /* w_avg = lerp(mean_n(w), w_avg, beta), outside the graph */
        gantl__host_sync(ctx, x);
        for (int d = 0; d < M->w_dim; d++) {
            double mean = 0.0;
            for (int64_t n = 0; n < N; n++) mean += x->data[n * M->w_dim + d];
            mean /= (double)N;
            M->w_avg->data[d] = (float)(mean + ((double)M->w_avg->data[d] - mean) * M->w_avg_beta);
        }
    }
    int64_t s3[3] = {N, 1, M->w_dim}, reps[3] = {1, M->num_ws, 1};
    gantl_tensor *ws = gantl_repeat(ctx, gantl_reshape(ctx, x, 3, s3), 3, reps); /* (N, num_ws, w_dim) */
    if (truncation_psi != 1.0f) { /* w = w_avg + (w - w_avg) * psi on the first cutoff ws */
        GANTL__CHECK(M->w_avg != NULL, "mapping: truncation needs w_avg");
        int cut = truncation_cutoff < 0 || truncation_cutoff > M->num_ws ? M->num_ws : truncation_cutoff;
        int64_t avg_shape[3] = {1, 1, M->w_dim};
        gantl_tensor *avg = gantl_reshape(ctx, gantl_detach(ctx, M->w_avg), 3, avg_shape);
        gantl_tensor *head = gantl_add(ctx, avg, gantl_scale(ctx, gantl_sub(ctx, gantl_slice(ctx, ws, 1, 0, cut), avg), truncation_psi));
        ws = cut == M->num_ws ? head : gantl_concat(ctx, head, gantl_slice(ctx, ws, 1, cut, M->num_ws), 1);
    }
    return ws;
}

/* ws[:, i] as (N, w_dim) */
static gantl_tensor *gantl__w_at(gantl_ctx *ctx, gantl_tensor *ws, int i) {
    int64_t s[2] = {ws->shape[0], ws->shape[2]};
    return gantl_reshape(ctx, gantl_slice(ctx, ws, 1, i, i + 1), 2, s);
}

GANTLDEF gantl_tensor *gantl_generator_synthesis(gantl_ctx *ctx, gantl_generator *G, gantl_tensor *ws,
                                                 gantl_noise_mode noise_mode, gantl_rng *rng,
                                                 gantl_tensor *const *noise) {
    if (!ws) return NULL;
    GANTL__CHECK(ws->ndim == 3 && ws->shape[1] == G->num_ws && ws->shape[2] == G->cfg.w_dim,
                 "synthesis: ws %s, expected (N, %d, %d)", GANTL__SHP(ws), G->num_ws, G->cfg.w_dim);
    gantl_tensor *x = NULL, *img = NULL;
    int w_idx = 0, noise_idx = 0;
    for (int b = 0; b < G->num_blocks; b++) {
        gantl_synthesis_block *B = &G->blocks[b];
        int k = w_idx;
        if (B->in_channels == 0) { /* const input, repeated over the batch */
            int64_t s[4] = {1, B->out_channels, B->resolution, B->resolution}, reps[4] = {ws->shape[0], 1, 1, 1};
            x = gantl_repeat(ctx, gantl_reshape(ctx, B->const_input, 4, s), 4, reps);
        } else {
            x = gantl__synthesis_layer(ctx, &B->conv0, x, gantl__w_at(ctx, ws, k++), noise_mode, rng,
                                       noise ? noise[noise_idx] : NULL, 1.0f);
            noise_idx++;
        }
        x = gantl__synthesis_layer(ctx, &B->conv1, x, gantl__w_at(ctx, ws, k++), noise_mode, rng,
                                   noise ? noise[noise_idx] : NULL, 1.0f);
        noise_idx++;
        gantl_tensor *y = gantl__torgb(ctx, &B->torgb, x, gantl__w_at(ctx, ws, k));
        img = img ? gantl_add(ctx, gantl_upsample2d(ctx, img, B->filter, 2), y) : y;
        w_idx += B->num_conv; /* a block's ToRGB shares its w with the next block's conv0 */
    }
    return img;
}

GANTLDEF gantl_tensor *gantl_minibatch_std(gantl_ctx *ctx, gantl_tensor *x, int group_size, int num_channels) {
    if (!x) return NULL;
    int64_t N = x->shape[0], C = x->shape[1], H = x->shape[2], W = x->shape[3];
    int64_t G = group_size > 0 && group_size < N ? group_size : N, F = num_channels, c = C / F;
    GANTL__CHECK(x->ndim == 4 && N % G == 0 && C % F == 0, "minibatch_std: input %s, group %lld, %d channels",
                 GANTL__SHP(x), (long long)G, num_channels);
    /* (G, n, F, c*H*W): sample i is member i / n of group i % n */
    int64_t s[4] = {G, N / G, F, c * H * W};
    int axis0 = 0, axis3 = 3;
    gantl_tensor *y = gantl_reshape(ctx, x, 4, s);
    y = gantl_sub(ctx, y, gantl_mean(ctx, y, 1, &axis0, 1));
    y = gantl_sqrt(ctx, gantl_add_scalar(ctx, gantl_mean(ctx, gantl_square(ctx, y), 1, &axis0, 1), 1e-8f)); /* (1, n, F, cHW) */
    y = gantl_mean(ctx, y, 1, &axis3, 1);                                                                     /* (1, n, F, 1) */
    int64_t s2[4] = {N / G, F, 1, 1}, reps[4] = {G, 1, H, W};
    y = gantl_repeat(ctx, gantl_reshape(ctx, y, 4, s2), 4, reps); /* (N, F, H, W) */
    return gantl_concat(ctx, x, y, 1);
}

/* The label embedding of a conditional D: the mapping network without z, w_avg or broadcast. */
static gantl_tensor *gantl__d_cmap(gantl_ctx *ctx, gantl_mapping *M, gantl_tensor *c) {
    gantl_tensor *x = gantl_normalize_2nd_moment(ctx, gantl__fc_forward(ctx, &M->embed, c));
    for (int i = 0; i < M->num_layers; i++) x = gantl__fc_forward(ctx, &M->fc[i], x);
    return x;
}

GANTLDEF gantl_tensor *gantl_discriminator_forward(gantl_ctx *ctx, gantl_discriminator *D, gantl_tensor *img,
                                                   gantl_tensor *c) {
    const gantl_d_config *cfg = &D->cfg;
    if (!img || (cfg->c_dim > 0 && !c)) return NULL;
    GANTL__CHECK(img->ndim == 4 && img->shape[1] == cfg->img_channels && img->shape[2] == cfg->img_resolution &&
                     img->shape[3] == cfg->img_resolution,
                 "discriminator: images %s, expected (N, %d, %d, %d)", GANTL__SHP(img), cfg->img_channels,
                 cfg->img_resolution, cfg->img_resolution);
    GANTL__CHECK(cfg->c_dim == 0 || (c->ndim == 2 && c->shape[0] == img->shape[0] && c->shape[1] == cfg->c_dim),
                 "discriminator: c %s, expected (%lld, %d)", GANTL__SHP(c), (long long)img->shape[0], cfg->c_dim);
    gantl_tensor *x = NULL;
    for (int b = 0; b < D->num_blocks; b++) {
        gantl_d_block *B = &D->blocks[b];
        if (B->has_fromrgb) {
            gantl_tensor *y = gantl__conv_layer_forward(ctx, &B->fromrgb, img, 1.0f);
            x = x ? gantl_add(ctx, x, y) : y;
            img = cfg->architecture == GANTL_D_SKIP ? gantl_downsample2d(ctx, img, B->filter, 2) : NULL;
        }
        if (B->has_skip) {
            gantl_tensor *y = gantl__conv_layer_forward(ctx, &B->skip, x, GANTL__SQRT_HALF);
            x = gantl__conv_layer_forward(ctx, &B->conv0, x, 1.0f);
            x = gantl_add(ctx, y, gantl__conv_layer_forward(ctx, &B->conv1, x, GANTL__SQRT_HALF));
        } else {
            x = gantl__conv_layer_forward(ctx, &B->conv0, x, 1.0f);
            x = gantl__conv_layer_forward(ctx, &B->conv1, x, 1.0f);
        }
    }
    if (cfg->architecture == GANTL_D_SKIP) x = gantl_add(ctx, x, gantl__conv_layer_forward(ctx, &D->epilogue_fromrgb, img, 1.0f));
    if (cfg->mbstd_num_channels > 0) x = gantl_minibatch_std(ctx, x, cfg->mbstd_group_size, cfg->mbstd_num_channels);
    x = gantl__conv_layer_forward(ctx, &D->epilogue_conv, x, 1.0f);
    if (!x) return NULL;
    int64_t flat[2] = {x->shape[0], -1};
    x = gantl__fc_forward(ctx, &D->epilogue_fc, gantl_reshape(ctx, x, 2, flat));
    x = gantl__fc_forward(ctx, &D->epilogue_out, x);
    if (D->cmap_dim > 0) { /* sum(x * cmap) / sqrt(cmap_dim) */
        int axis = 1;
        gantl_tensor *cmap = gantl__d_cmap(ctx, &D->mapping, c);
        x = gantl_scale(ctx, gantl_sum(ctx, gantl_mul(ctx, x, cmap), 1, &axis, 1), 1.0f / sqrtf((float)D->cmap_dim));
    }
    return x;
}

/* ---- checkpoints ---- */

/* Loads every tensor of P from prefix + name. */
static gantl_status gantl__params_load(gantl_params *P, const gantl_st_file *f, const char *prefix) {
    char name[256];
    for (int i = 0; i < P->count; i++) {
        gantl_tensor *t = P->tensors[i];
        snprintf(name, sizeof name, "%s%s", prefix, t->name);
        const gantl_st_tensor *st = gantl_st_find(f, name);
        if (!st) return gantl__fail(GANTL_ERR_INVALID, "checkpoint: tensor '%s' is missing", name);
        if (st->dtype != GANTL_F32 && st->dtype != GANTL_F64 && st->dtype != GANTL_F16 && st->dtype != GANTL_BF16)
            return gantl__fail(GANTL_ERR_INVALID, "checkpoint: tensor '%s' has dtype %s, expected a float type", name,
                               gantl_dtype_name(st->dtype));
        gantl_status s = gantl_st_read_f32(f, name, t->data, t->numel, t->ndim, t->shape);
        if (s != GANTL_OK) return s;
    }
    return GANTL_OK;
}

/* Fails if the file has a tensor under prefix that none of the sets has. */
static gantl_status gantl__check_no_extra(const gantl_st_file *f, const char *prefix, const gantl_params *a,
                                          const gantl_params *b) {
    size_t n = strlen(prefix);
    for (int i = 0; i < f->count; i++) {
        const char *name = f->tensors[i].name;
        if (strncmp(name, prefix, n) != 0) continue;
        if (!gantl_params_find(a, name + n) && !gantl_params_find(b, name + n))
            return gantl__fail(GANTL_ERR_INVALID, "checkpoint: unexpected tensor '%s' (network config mismatch?)", name);
    }
    return GANTL_OK;
}

static gantl_status gantl__net_load(gantl_params *params, gantl_params *buffers, const gantl_st_file *f,
                                    const char *prefix) {
    gantl_status s = gantl__params_load(params, f, prefix);
    if (s == GANTL_OK) s = gantl__params_load(buffers, f, prefix);
    if (s == GANTL_OK) s = gantl__check_no_extra(f, prefix, params, buffers);
    return s;
}

GANTLDEF gantl_status gantl_generator_load(gantl_generator *G, const gantl_st_file *f, const char *prefix) {
    return gantl__net_load(&G->params, &G->buffers, f, prefix);
}

GANTLDEF gantl_status gantl_discriminator_load(gantl_discriminator *D, const gantl_st_file *f, const char *prefix) {
    return gantl__net_load(&D->params, &D->buffers, f, prefix);
}

static gantl_status gantl__params_write(const gantl_params *P, gantl_st_writer *w, const char *prefix) {
    char name[256];
    for (int i = 0; i < P->count; i++) {
        const gantl_tensor *t = P->tensors[i];
        snprintf(name, sizeof name, "%s%s", prefix, t->name);
        gantl_status s = gantl_st_writer_add(w, name, GANTL_F32, t->ndim, t->shape, t->data);
        if (s != GANTL_OK) return s;
    }
    return GANTL_OK;
}

GANTLDEF gantl_status gantl_generator_write(const gantl_generator *G, gantl_st_writer *w, const char *prefix) {
    gantl_status s = gantl__params_write(&G->params, w, prefix);
    return s == GANTL_OK ? gantl__params_write(&G->buffers, w, prefix) : s;
}

GANTLDEF gantl_status gantl_discriminator_write(const gantl_discriminator *D, gantl_st_writer *w, const char *prefix) {
    gantl_status s = gantl__params_write(&D->params, w, prefix);
    return s == GANTL_OK ? gantl__params_write(&D->buffers, w, prefix) : s;
}

GANTLDEF gantl_status gantl_generator_from_file(gantl_generator *G, const gantl_st_file *f, const char *prefix) {
    gantl_g_config cfg;
    const char *json = gantl_st_meta(f, "gantl.G");
    memset(G, 0, sizeof *G);
    if (!json) return gantl__fail(GANTL_ERR_INVALID, "checkpoint: no \"gantl.G\" metadata (generator kwargs)");
    gantl_status s = gantl_g_config_from_json(&cfg, json);
    if (s == GANTL_OK) s = gantl_generator_init(G, &cfg, 0);
    if (s == GANTL_OK && (s = gantl_generator_load(G, f, prefix)) != GANTL_OK) gantl_generator_free(G);
    return s;
}

GANTLDEF gantl_status gantl_discriminator_from_file(gantl_discriminator *D, const gantl_st_file *f, const char *prefix) {
    gantl_d_config cfg;
    const char *json = gantl_st_meta(f, "gantl.D");
    memset(D, 0, sizeof *D);
    if (!json) return gantl__fail(GANTL_ERR_INVALID, "checkpoint: no \"gantl.D\" metadata (discriminator kwargs)");
    gantl_status s = gantl_d_config_from_json(&cfg, json);
    if (s == GANTL_OK) s = gantl_discriminator_init(D, &cfg, 0);
    if (s == GANTL_OK && (s = gantl_discriminator_load(D, f, prefix)) != GANTL_OK) gantl_discriminator_free(D);
    return s;
}

/* ---------------------------------------------------------------------------------------
   11. ADA augmentation
   Conventions (as tools/ada_ref.py, which matches the official AugmentPipe bit for bit):
   G is the INVERSE geometric transform in pixel units with the origin at the image centre,
   built by right-multiplying the inverse of each op onto I; C maps [r, g, b, 1] and is built
   by left-multiplying. All arithmetic is float32 in the official order, because the batch's
   padding is a ceil() of transformed corners that float32 rounding can move by one.
   ------------------------------------------------------------------------------------- */

#define GANTL__AUG_PI 3.14159265358979323846
#define GANTL__HZ_PAD 3 /* len(sym6) / 4: the official Hz_pad */

static const char *const gantl__aug_op_names[GANTL_AUG_NUM_OPS] = {
    "xflip", "rotate90", "xint", "scale", "rotate", "aniso", "xfrac", "brightness", "contrast", "lumaflip", "hue",
    "saturation"};
static const char *const gantl__aug_step_names[GANTL_AUG_NUM_STEPS] = {
    "xflip", "rotate90", "xint", "scale", "rotate_pre", "aniso", "rotate_post", "xfrac", "brightness", "contrast",
    "lumaflip", "hue", "saturation"};
static const int gantl__aug_step_ops[GANTL_AUG_NUM_STEPS] = {
    GANTL_AUG_XFLIP, GANTL_AUG_ROTATE90, GANTL_AUG_XINT, GANTL_AUG_SCALE, GANTL_AUG_ROTATE, GANTL_AUG_ANISO,
    GANTL_AUG_ROTATE, GANTL_AUG_XFRAC, GANTL_AUG_BRIGHTNESS, GANTL_AUG_CONTRAST, GANTL_AUG_LUMAFLIP, GANTL_AUG_HUE,
    GANTL_AUG_SATURATION};
/* The value of a step where it does not fire. */
static const float gantl__aug_neutral[GANTL_AUG_NUM_STEPS] = {0, 0, 0, 1, 0, 1, 0, 0, 0, 1, 0, 0, 1};
/* Whether a step's raw sample is normal (else uniform). */
static const int gantl__aug_normal[GANTL_AUG_NUM_STEPS] = {0, 0, 0, 1, 0, 1, 0, 1, 1, 1, 0, 0, 1};

/* Symlet-6 ("least asymmetric" Daubechies, 6 vanishing moments) low-pass decomposition
   filter: public wavelet constants (PyWavelets Wavelet('sym6').dec_lo; Daubechies, "Ten
   Lectures on Wavelets", 1992), as listed and re-derived in tools/ada_ref.py. The official
   geometric filter Hz_geom is these divided by their sum (sqrt 2), in float32. */
static const double gantl__sym6[12] = {
    0.015404109327027373, 0.0034907120842174702, -0.11799011114819057, -0.048311742585633,
    0.4910559419267466,   0.787641141030194,     0.3379294217276218,   -0.07263752278646252,
    -0.021060292512300564, 0.04472490177066578,  0.0017677118642428036, -0.007800708325034148};

GANTLDEF const char *gantl_aug_op_name(int op) {
    return op >= 0 && op < GANTL_AUG_NUM_OPS ? gantl__aug_op_names[op] : "invalid op";
}
GANTLDEF const char *gantl_aug_step_name(int step) {
    return step >= 0 && step < GANTL_AUG_NUM_STEPS ? gantl__aug_step_names[step] : "invalid step";
}
GANTLDEF int gantl_aug_step_op(int step) {
    return step >= 0 && step < GANTL_AUG_NUM_STEPS ? gantl__aug_step_ops[step] : -1;
}
GANTLDEF int gantl_aug_step_width(int step) {
    return step == GANTL_AUG_STEP_XINT || step == GANTL_AUG_STEP_XFRAC ? 2 : 1;
}

GANTLDEF void gantl_augment_init(gantl_augment *a, float p, double ada_target, float ada_kimg) {
    memset(a, 0, sizeof *a);
    a->p = p;
    for (int k = 0; k < GANTL_AUG_NUM_OPS; k++) a->op_mult[k] = 1.0f;
    a->xint_max = 0.125f, a->scale_std = 0.2f, a->rotate_max = 1.0f, a->aniso_std = 0.2f, a->xfrac_std = 0.125f;
    a->brightness_std = 0.2f, a->contrast_std = 0.5f, a->hue_max = 1.0f, a->saturation_std = 1.0f;
    a->ada_target = ada_target;
    a->ada_interval = 4;
    a->ada_kimg = ada_kimg;
}

/* Whether step k is drawn: its op is enabled (hue and saturation only for RGB). */
static int gantl__aug_drawn(const gantl_augment *a, int step, int channels) {
    int op = gantl__aug_step_ops[step];
    if ((op == GANTL_AUG_HUE || op == GANTL_AUG_SATURATION) && channels <= 1) return 0;
    return a->op_mult[op] > 0.0f;
}

/* Bit 0: the geometric stage runs; bit 1: the colour stage. */
static int gantl__aug_stages(const gantl_augment *a, int channels) {
    int stages = 0;
    for (int op = GANTL_AUG_XFLIP; op <= GANTL_AUG_XFRAC; op++)
        if (a->op_mult[op] > 0.0f) stages |= 1;
    for (int step = GANTL_AUG_STEP_BRIGHTNESS; step <= GANTL_AUG_STEP_SATURATION; step++)
        if (gantl__aug_drawn(a, step, channels)) stages |= 2;
    return stages;
}

GANTLDEF gantl_status gantl_augment_draws_alloc(gantl_ctx *ctx, int64_t batch, int channels, gantl_augment_draws *d) {
    GANTL__CHECK(batch >= 0 && channels >= 1, "augment_draws_alloc: batch %lld, channels %d", (long long)batch,
                 channels);
    memset(d, 0, sizeof *d);
    d->batch = batch;
    d->channels = channels;
    int64_t per_sample = 0;
    for (int k = 0; k < GANTL_AUG_NUM_STEPS; k++) per_sample += 2 * gantl_aug_step_width(k) + 2;
    float *buf = ctx->status == GANTL_OK ? (float *)gantl__alloc(ctx, (size_t)(per_sample * batch + 1) * sizeof(float))
                                         : NULL;
    if (!buf) return gantl__fail(GANTL_ERR_NOMEM, "augment_draws_alloc: out of memory");
    for (int k = 0; k < GANTL_AUG_NUM_STEPS; k++) {
        int64_t n = batch * gantl_aug_step_width(k);
        d->raw[k] = buf, buf += n;
        d->gate[k] = buf, buf += batch;
        d->mask[k] = buf, buf += batch;
        d->value[k] = buf, buf += n;
        for (int64_t i = 0; i < n; i++) d->raw[k][i] = 0.0f, d->value[k][i] = gantl__aug_neutral[k];
        for (int64_t i = 0; i < batch; i++) d->gate[k][i] = 1.0f, d->mask[k][i] = 0.0f;
    }
    return GANTL_OK;
}

/* An op's parameter from its raw sample r, in the official float32 expressions. */
static float gantl__aug_value(const gantl_augment *a, int step, float r) {
    const float pi = (float)GANTL__AUG_PI;
    switch (step) {
    case GANTL_AUG_STEP_XFLIP:
    case GANTL_AUG_STEP_LUMAFLIP: return floorf(r * 2.0f);
    case GANTL_AUG_STEP_ROTATE90: return floorf(r * 4.0f);
    case GANTL_AUG_STEP_XINT: return (r * 2.0f - 1.0f) * a->xint_max;
    case GANTL_AUG_STEP_SCALE: return exp2f(r * a->scale_std);
    case GANTL_AUG_STEP_ROTATE_PRE:
    case GANTL_AUG_STEP_ROTATE_POST: return (r * 2.0f - 1.0f) * pi * a->rotate_max;
    case GANTL_AUG_STEP_ANISO: return exp2f(r * a->aniso_std);
    case GANTL_AUG_STEP_XFRAC: return r * a->xfrac_std;
    case GANTL_AUG_STEP_BRIGHTNESS: return r * a->brightness_std;
    case GANTL_AUG_STEP_CONTRAST: return exp2f(r * a->contrast_std);
    case GANTL_AUG_STEP_HUE: return (r * 2.0f - 1.0f) * pi * a->hue_max;
    default: return exp2f(r * a->saturation_std); /* saturation */
    }
}

GANTLDEF void gantl_augment_gate(const gantl_augment *a, gantl_augment_draws *d) {
    float rot = 1.0f - a->op_mult[GANTL_AUG_ROTATE] * a->p;
    rot = rot < 0.0f ? 0.0f : (rot > 1.0f ? 1.0f : rot);
    float p_rot = 1.0f - sqrtf(rot); /* P(pre or post rotation) = p */
    for (int k = 0; k < GANTL_AUG_NUM_STEPS; k++) {
        int w = gantl_aug_step_width(k), op = gantl__aug_step_ops[k], drawn = gantl__aug_drawn(a, k, d->channels);
        float thresh = op == GANTL_AUG_ROTATE ? p_rot : a->op_mult[op] * a->p;
        for (int64_t i = 0; i < d->batch; i++) {
            if (!drawn) {
                d->gate[k][i] = 1.0f;
                d->mask[k][i] = 0.0f;
                for (int j = 0; j < w; j++) d->raw[k][i * w + j] = 0.0f, d->value[k][i * w + j] = gantl__aug_neutral[k];
                continue;
            }
            int fire = d->gate[k][i] < thresh;
            d->mask[k][i] = fire ? 1.0f : 0.0f;
            for (int j = 0; j < w; j++)
                d->value[k][i * w + j] = fire ? gantl__aug_value(a, k, d->raw[k][i * w + j]) : gantl__aug_neutral[k];
        }
    }
}

GANTLDEF gantl_status gantl_augment_draw(gantl_ctx *ctx, const gantl_augment *a, gantl_random *random, int64_t batch,
                                         int channels, gantl_augment_draws *d) {
    gantl_status s = gantl_augment_draws_alloc(ctx, batch, channels, d);
    if (s != GANTL_OK) return s;
    for (int k = 0; k < GANTL_AUG_NUM_STEPS; k++) {
        if (!gantl__aug_drawn(a, k, channels)) continue;
        int64_t n = batch * gantl_aug_step_width(k);
        if (gantl__aug_normal[k])
            random->normal(random->state, d->raw[k], n);
        else
            random->uniform(random->state, d->raw[k], n);
        random->uniform(random->state, d->gate[k], batch);
    }
    gantl_augment_gate(a, d);
    return GANTL_OK;
}

/* ---- matrices (float32, row-major) ---- */

/* out = a @ b for n x n matrices; the sum runs over k in order, like torch's small bmm. */
static void gantl__aug_matmul(float *out, const float *a, const float *b, int n) {
    float t[16];
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
            float acc = 0.0f;
            for (int k = 0; k < n; k++) acc += a[i * n + k] * b[k * n + j];
            t[i * n + j] = acc;
        }
    memcpy(out, t, (size_t)(n * n) * sizeof(float));
}

static void gantl__aug_eye(float *m, int n) {
    for (int i = 0; i < n * n; i++) m[i] = i % (n + 1) == 0 ? 1.0f : 0.0f;
}

/* translate2d / scale2d / rotate2d of the official pipeline: 3x3 homogeneous. */
static void gantl__aug_translate2(float *m, float tx, float ty) {
    gantl__aug_eye(m, 3);
    m[2] = tx, m[5] = ty;
}
static void gantl__aug_scale2(float *m, float sx, float sy) {
    gantl__aug_eye(m, 3);
    m[0] = sx, m[4] = sy;
}
static void gantl__aug_rotate2(float *m, float theta) {
    gantl__aug_eye(m, 3);
    m[0] = cosf(theta), m[1] = sinf(-theta), m[3] = sinf(theta), m[4] = cosf(theta);
}

/* G (batch, 3, 3): the inverse geometric transform of each sample, in pixel units. */
static void gantl__aug_geom_matrices(const gantl_augment *a, const gantl_augment_draws *d, int64_t H, int64_t W,
                                     float *G) {
    const float *mult = a->op_mult;
    for (int64_t i = 0; i < d->batch; i++) {
        float *g = G + 9 * i, m[9];
        gantl__aug_eye(g, 3);
#define GANTL__AUG_RIGHT(expr) (expr, gantl__aug_matmul(g, g, m, 3))
        if (mult[GANTL_AUG_XFLIP] > 0.0f)
            GANTL__AUG_RIGHT(gantl__aug_scale2(m, 1.0f / (1.0f - 2.0f * d->value[GANTL_AUG_STEP_XFLIP][i]), 1.0f));
        if (mult[GANTL_AUG_ROTATE90] > 0.0f)
            GANTL__AUG_RIGHT(gantl__aug_rotate2(m, -((float)(-GANTL__AUG_PI / 2) * d->value[GANTL_AUG_STEP_ROTATE90][i])));
        if (mult[GANTL_AUG_XINT] > 0.0f) {
            const float *t = d->value[GANTL_AUG_STEP_XINT] + 2 * i;
            GANTL__AUG_RIGHT(gantl__aug_translate2(m, -rintf(t[0] * (float)W), -rintf(t[1] * (float)H)));
        }
        if (mult[GANTL_AUG_SCALE] > 0.0f) {
            float s = d->value[GANTL_AUG_STEP_SCALE][i];
            GANTL__AUG_RIGHT(gantl__aug_scale2(m, 1.0f / s, 1.0f / s));
        }
        if (mult[GANTL_AUG_ROTATE] > 0.0f) GANTL__AUG_RIGHT(gantl__aug_rotate2(m, d->value[GANTL_AUG_STEP_ROTATE_PRE][i]));
        if (mult[GANTL_AUG_ANISO] > 0.0f) {
            float s = d->value[GANTL_AUG_STEP_ANISO][i];
            GANTL__AUG_RIGHT(gantl__aug_scale2(m, 1.0f / s, 1.0f / (1.0f / s)));
        }
        if (mult[GANTL_AUG_ROTATE] > 0.0f) GANTL__AUG_RIGHT(gantl__aug_rotate2(m, d->value[GANTL_AUG_STEP_ROTATE_POST][i]));
        if (mult[GANTL_AUG_XFRAC] > 0.0f) {
            const float *t = d->value[GANTL_AUG_STEP_XFRAC] + 2 * i;
            GANTL__AUG_RIGHT(gantl__aug_translate2(m, -(t[0] * (float)W), -(t[1] * (float)H)));
        }
#undef GANTL__AUG_RIGHT
    }
}

/* C (batch, 4, 4): the colour transform of each sample, acting on [r, g, b, 1]. */
static void gantl__aug_color_matrices(const gantl_augment *a, const gantl_augment_draws *d, float *C) {
    const float *mult = a->op_mult;
    int rgb = d->channels > 1;
    float l = (float)(1.0 / sqrt(3.0)), v[4] = {l, l, l, 0.0f}, vv[16], eye[16];
    gantl__aug_eye(eye, 4);
    for (int r = 0; r < 4; r++)
        for (int c = 0; c < 4; c++) vv[r * 4 + c] = v[r] * v[c]; /* the luma axis' outer product */
    for (int64_t i = 0; i < d->batch; i++) {
        float *c = C + 16 * i, m[16];
        gantl__aug_eye(c, 4);
        if (mult[GANTL_AUG_BRIGHTNESS] > 0.0f) {
            gantl__aug_eye(m, 4);
            m[3] = m[7] = m[11] = d->value[GANTL_AUG_STEP_BRIGHTNESS][i];
            gantl__aug_matmul(c, m, c, 4);
        }
        if (mult[GANTL_AUG_CONTRAST] > 0.0f) {
            gantl__aug_eye(m, 4);
            m[0] = m[5] = m[10] = d->value[GANTL_AUG_STEP_CONTRAST][i];
            gantl__aug_matmul(c, m, c, 4);
        }
        if (mult[GANTL_AUG_LUMAFLIP] > 0.0f) { /* Householder reflection about the plane normal to v */
            float f = d->value[GANTL_AUG_STEP_LUMAFLIP][i];
            for (int k = 0; k < 16; k++) m[k] = eye[k] - 2.0f * vv[k] * f;
            gantl__aug_matmul(c, m, c, 4);
        }
        if (rgb && mult[GANTL_AUG_HUE] > 0.0f) { /* rotation about v (Rodrigues), the official rotate3d */
            float theta = d->value[GANTL_AUG_STEP_HUE][i], s = sinf(theta), co = cosf(theta), cc = 1.0f - co;
            float x = v[0], y = v[1], z = v[2];
            float rot[16] = {x * x * cc + co,     x * y * cc - z * s, x * z * cc + y * s, 0.0f,
                             y * x * cc + z * s, y * y * cc + co,    y * z * cc - x * s, 0.0f,
                             z * x * cc - y * s, z * y * cc + x * s, z * z * cc + co,    0.0f,
                             0.0f,               0.0f,               0.0f,               1.0f};
            gantl__aug_matmul(c, rot, c, 4);
        }
        if (rgb && mult[GANTL_AUG_SATURATION] > 0.0f) {
            float s = d->value[GANTL_AUG_STEP_SATURATION][i];
            for (int k = 0; k < 16; k++) m[k] = vv[k] + (eye[k] - vv[k]) * s;
            gantl__aug_matmul(c, m, c, 4);
        }
    }
}

/* The execution plan of the geometric stage, as the official: the reflect padding of the
   batch (x0, x1, y0, y1) from every sample's transformed corner pixel centres, and theta
   (batch, 2, 3) for affine_grid on the padded, 2x upsampled image. */
static void gantl__aug_geom_plan(const float *G, int64_t B, int64_t H, int64_t W, int pad[4], float *theta) {
    float cx = (float)((double)(W - 1) / 2.0), cy = (float)((double)(H - 1) / 2.0);
    float corners[4][2] = {{-cx, -cy}, {cx, -cy}, {cx, cy}, {-cx, cy}};
    float m[4] = {-INFINITY, -INFINITY, -INFINITY, -INFINITY}; /* max of -x, -y, x, y */
    for (int64_t i = 0; i < B; i++)
        for (int k = 0; k < 4; k++) {
            const float *g = G + 9 * i;
            float px = g[0] * corners[k][0] + g[1] * corners[k][1] + g[2];
            float py = g[3] * corners[k][0] + g[4] * corners[k][1] + g[5];
            float e[4] = {-px, -py, px, py};
            for (int j = 0; j < 4; j++) m[j] = e[j] > m[j] ? e[j] : m[j];
        }
    float lim[4] = {(float)(W - 1), (float)(H - 1), (float)(W - 1), (float)(H - 1)};
    for (int j = 0; j < 4; j++) {
        m[j] += (float)(GANTL__HZ_PAD * 2 - (j % 2 ? (double)(H - 1) / 2.0 : (double)(W - 1) / 2.0));
        m[j] = m[j] > 0.0f ? m[j] : 0.0f;
        m[j] = m[j] < lim[j] ? m[j] : lim[j];
    }
    int mx0 = (int)ceilf(m[0]), my0 = (int)ceilf(m[1]), mx1 = (int)ceilf(m[2]), my1 = (int)ceilf(m[3]);
    pad[0] = mx0, pad[1] = mx1, pad[2] = my0, pad[3] = my1;
    int64_t hu = (H + my0 + my1) * 2, wu = (W + mx0 + mx1) * 2;                       /* upsampled padded size */
    int64_t ho = (H + GANTL__HZ_PAD * 2) * 2, wo = (W + GANTL__HZ_PAD * 2) * 2;      /* sampling grid size */
    float t_pad[9], s2[9], s_half[9], t_m[9], t_p[9], s_norm[9], s_grid[9];
    gantl__aug_translate2(t_pad, (float)((double)(mx0 - mx1) / 2.0), (float)((double)(my0 - my1) / 2.0));
    gantl__aug_scale2(s2, 2.0f, 2.0f);
    gantl__aug_scale2(s_half, 0.5f, 0.5f);
    gantl__aug_translate2(t_m, -0.5f, -0.5f);
    gantl__aug_translate2(t_p, 0.5f, 0.5f);
    gantl__aug_scale2(s_norm, (float)(2.0 / (double)wu), (float)(2.0 / (double)hu));
    gantl__aug_scale2(s_grid, (float)(1.0 / (2.0 / (double)wo)), (float)(1.0 / (2.0 / (double)ho)));
    for (int64_t i = 0; i < B; i++) {
        float g[9];
        memcpy(g, G + 9 * i, sizeof g);
        gantl__aug_matmul(g, t_pad, g, 3);
        gantl__aug_matmul(g, s2, g, 3);
        gantl__aug_matmul(g, g, s_half, 3);
        gantl__aug_matmul(g, t_m, g, 3);
        gantl__aug_matmul(g, g, t_p, 3);
        gantl__aug_matmul(g, s_norm, g, 3);
        gantl__aug_matmul(g, g, s_grid, 3);
        memcpy(theta + 6 * i, g, 6 * sizeof(float));
    }
}

/* Value i of torch.linspace(-1, 1, n) in float32, as the reference's CPU build computes it
   (the sampling positions sit at ulp distance from pixel centres, so the last bit shows in
   the output): step = 2 / (n - 1); the first half start + step * i and the second half
   end - step * (n - 1 - i), each one fused multiply-add; blocks of 8 inside the leading
   multiple of 16 run as base + k * step from the block's first value. */
static float gantl__aug_linspace(int64_t i, int64_t n) {
    float step = 2.0f / (float)(n - 1);
    int64_t i0 = i < n / 16 * 16 ? i / 8 * 8 : i;
    float base = i0 < n / 2 ? fmaf(step, (float)i0, -1.0f) : fmaf(-step, (float)(n - 1 - i0), 1.0f);
    return i0 == i ? base : base + (float)(i - i0) * step;
}

/* F.affine_grid(theta, (B, C, Ho, Wo), align_corners=False): grid (B, Ho, Wo, 2), the base
   grid linspace(-1, 1, n) * (n - 1) / n, then x * t0 + y * t1 + t2, in float32. */
static void gantl__aug_affine_grid(const float *theta, int64_t B, int64_t Ho, int64_t Wo, float *grid) {
    for (int64_t i = 0; i < B; i++) {
        const float *t = theta + 6 * i;
        for (int64_t y = 0; y < Ho; y++) {
            float gy = Ho > 1 ? gantl__aug_linspace(y, Ho) * (float)(Ho - 1) / (float)Ho : 0.0f;
            for (int64_t x = 0; x < Wo; x++) {
                float gx = Wo > 1 ? gantl__aug_linspace(x, Wo) * (float)(Wo - 1) / (float)Wo : 0.0f;
                float *o = grid + ((i * Ho + y) * Wo + x) * 2;
                o[0] = gx * t[0] + gy * t[1] + t[2];
                o[1] = gx * t[3] + gy * t[4] + t[5];
            }
        }
    }
}

GANTLDEF gantl_tensor *gantl_augment_apply_draws(gantl_ctx *ctx, const gantl_augment *a, gantl_tensor *images,
                                                 const gantl_augment_draws *d) {
    if (!images) return NULL;
    GANTL__CHECK(images->ndim == 4, "augment: images %s must be (N, C, H, W)", GANTL__SHP(images));
    int64_t B = images->shape[0], NC = images->shape[1], H = images->shape[2], W = images->shape[3];
    GANTL__CHECK(d->batch == B && d->channels == NC, "augment: draws for batch %lld with %d channels, images %s",
                 (long long)d->batch, d->channels, GANTL__SHP(images));
    int stages = gantl__aug_stages(a, (int)NC);
    gantl_tensor *x = images;
    if (stages & 1) {
        GANTL__CHECK(H >= 2 && W >= 2, "augment: images %s are too small for the geometric stage", GANTL__SHP(images));
        float *G = (float *)gantl__alloc(ctx, (size_t)(B * 15 + 1) * sizeof(float)), *theta = G ? G + 9 * B : NULL;
        gantl_tensor *f = gantl_new_1d(ctx, 12);
        gantl_tensor *grid = gantl_new_4d(ctx, B, (H + GANTL__HZ_PAD * 2) * 2, (W + GANTL__HZ_PAD * 2) * 2, 2);
        if (!G || !f || !grid) {
            gantl__out_of_memory(ctx, 0);
            return NULL;
        }
        float sum = 0.0f;
        for (int k = 0; k < 12; k++) sum += (float)gantl__sym6[k];
        for (int k = 0; k < 12; k++) f->data[k] = (float)gantl__sym6[k] / sum;
        int pad[4];
        gantl__aug_geom_matrices(a, d, H, W, G);
        gantl__aug_geom_plan(G, B, H, W, pad, theta);
        gantl__aug_affine_grid(theta, B, grid->shape[1], grid->shape[2], grid->data);
        /* the official upsample2d / downsample2d(padding=-2 Hz_pad, flip_filter) paddings */
        int down_pad[4] = {-GANTL__HZ_PAD * 2 + (12 - 2 + 1) / 2, -GANTL__HZ_PAD * 2 + (12 - 2) / 2,
                           -GANTL__HZ_PAD * 2 + (12 - 2 + 1) / 2, -GANTL__HZ_PAD * 2 + (12 - 2) / 2};
        x = gantl_pad_reflect(ctx, x, pad);
        x = gantl_upsample2d(ctx, x, f, 2);
        x = gantl_grid_sample(ctx, x, grid);
        x = gantl_upfirdn2d(ctx, x, f, 1, 2, down_pad, 1, 1.0f);
    }
    if ((stages & 2) && x) {
        GANTL__CHECK(NC == 1 || NC == 3, "augment: the colour stage needs 1 or 3 channels, images %s",
                     GANTL__SHP(images));
        float *C = (float *)gantl__alloc(ctx, (size_t)(B * 16) * sizeof(float) + 1);
        if (!C) {
            gantl__out_of_memory(ctx, 0);
            return NULL;
        }
        gantl__aug_color_matrices(a, d, C);
        if (NC == 3) { /* y = C[:3, :3] @ x + C[:3, 3] */
            gantl_tensor *m = gantl_new_3d(ctx, B, 3, 3), *t = gantl_new_3d(ctx, B, 3, 1);
            if (!m || !t) return NULL;
            for (int64_t i = 0; i < B; i++)
                for (int r = 0; r < 3; r++) {
                    for (int c = 0; c < 3; c++) m->data[(i * 3 + r) * 3 + c] = C[i * 16 + r * 4 + c];
                    t->data[i * 3 + r] = C[i * 16 + r * 4 + 3];
                }
            int64_t flat[3] = {B, 3, H * W};
            x = gantl_add(ctx, gantl_matmul(ctx, m, gantl_reshape(ctx, x, 3, flat), 0, 0), t);
            x = gantl_reshape(ctx, x, 4, images->shape);
        } else { /* grey: the mean of C's colour rows, c; y = x * (c0 + c1 + c2) + c3 */
            gantl_tensor *s = gantl_new_4d(ctx, B, 1, 1, 1), *t = gantl_new_4d(ctx, B, 1, 1, 1);
            if (!s || !t) return NULL;
            for (int64_t i = 0; i < B; i++) {
                float row[4];
                for (int c = 0; c < 4; c++)
                    row[c] = (C[i * 16 + c] + C[i * 16 + 4 + c] + C[i * 16 + 8 + c]) / 3.0f;
                s->data[i] = row[0] + row[1] + row[2];
                t->data[i] = row[3];
            }
            x = gantl_add(ctx, gantl_mul(ctx, x, s), t);
        }
    }
    return x;
}

GANTLDEF gantl_tensor *gantl_augment_apply(gantl_ctx *ctx, const gantl_augment *a, gantl_tensor *images,
                                           gantl_rng *rng) {
    if (!images) return NULL;
    GANTL__CHECK(images->ndim == 4, "augment: images %s must be (N, C, H, W)", GANTL__SHP(images));
    if (!gantl__aug_stages(a, (int)images->shape[1])) return images;
    gantl_augment_draws d;
    gantl_random random = gantl_random_philox(rng);
    if (gantl_augment_draw(ctx, a, &random, images->shape[0], (int)images->shape[1], &d) != GANTL_OK) return NULL;
    return gantl_augment_apply_draws(ctx, a, images, &d);
}

/* ---- adaptive p ---- */

GANTLDEF void gantl_augment_accumulate(gantl_augment *a, const gantl_tensor *real_logits) {
    if (!real_logits) return;
    gantl__host_sync(NULL, real_logits); /* logits on a device: read when finished */
    double sum = 0.0;
    for (int64_t i = 0; i < real_logits->numel; i++) {
        float v = real_logits->data[i];
        sum += (double)((v > 0.0f) - (v < 0.0f));
    }
    a->sign_sum += sum;
    a->sign_count += real_logits->numel;
}

GANTLDEF void gantl_augment_update(gantl_augment *a, int64_t batch_size) {
    if (a->ada_target >= 0.0 && a->sign_count > 0) {
        double diff = a->sign_sum / (double)a->sign_count - a->ada_target;
        double adjust = (double)((diff > 0.0) - (diff < 0.0)) * (double)(batch_size * a->ada_interval) /
                        ((double)a->ada_kimg * 1000.0);
        float p = a->p + (float)adjust; /* torch: float32 buffer + Python float, in float32 */
        a->p = p > 0.0f ? p : 0.0f;
    }
    a->sign_sum = 0.0;
    a->sign_count = 0;
}

/* ---------------------------------------------------------------------------------------
   12. Training
   ------------------------------------------------------------------------------------- */

GANTLDEF void gantl_train_config_default(gantl_train_config *c) {
    memset(c, 0, sizeof *c);
    c->batch_size = 32;
    c->lr_g = c->lr_d = 0.0025;
    c->beta1 = 0.0, c->beta2 = 0.99, c->eps = 1e-8;
    c->r1_gamma = 10.0f;
    c->pl_weight = 2.0f, c->pl_decay = 0.01f, c->pl_batch_shrink = 2;
    c->style_mixing_prob = 0.9f;
    c->g_reg_interval = 4, c->d_reg_interval = 16;
    c->ema_kimg = 10.0f, c->ema_rampup = -1.0f;
    c->total_kimg = 25000.0;
    c->augment = 1, c->augment_p = 0.0f, c->ada_target = 0.6f, c->ada_interval = 4, c->ada_kimg = 500.0f;
}

GANTLDEF gantl_status gantl_train_preset(const char *name, int resolution, int img_channels, int c_dim,
                                         gantl_g_config *g, gantl_d_config *d, gantl_train_config *t) {
    gantl_g_config_default(g);
    gantl_d_config_default(d);
    gantl_train_config_default(t);
    g->img_resolution = d->img_resolution = resolution;
    g->img_channels = d->img_channels = img_channels;
    g->c_dim = d->c_dim = c_dim;
    /* train.py: conv_clamp 256 everywhere; gantl computes in fp32 (num_fp16_res 0) */
    g->conv_clamp = d->conv_clamp = 256.0f;
    int map = 8, mb = 64, mbstd = 8, ref_gpus = 1;
    double fmaps = 1.0, lrate = 0.0025, gamma = 1.0, ema = 20.0, ramp = -1.0, kimg = 25000.0;
    if (!strcmp(name, "cifar")) {
        map = 2, mb = 64, mbstd = 32, fmaps = 1.0, gamma = 0.01, ema = 500.0, ramp = 0.05, kimg = 100000.0, ref_gpus = 2;
        t->pl_weight = 0.0f, t->style_mixing_prob = 0.0f;
        d->architecture = GANTL_D_ORIG;
    } else if (!strcmp(name, "paper256")) {
        map = 8, mb = 64, mbstd = 8, fmaps = 0.5, gamma = 1.0, ema = 20.0, ref_gpus = 8;
    } else if (!strcmp(name, "auto")) { /* train.py's heuristics for one GPU */
        int per = 4096 / resolution < 32 ? 4096 / resolution : 32;
        mb = per < 64 ? (per > 1 ? per : 1) : 64;
        mbstd = mb < 4 ? mb : 4;
        fmaps = resolution >= 512 ? 1.0 : 0.5;
        lrate = resolution >= 1024 ? 0.002 : 0.0025;
        gamma = 0.0002 * resolution * resolution / mb;
        ema = mb * 10.0 / 32.0, ramp = 0.05, map = 2;
    } else if (!strcmp(name, "small")) {
        /* narrow networks that train on two CPU cores: the benchmark configuration of the
           training issue (channel_base 4096, channel_max 128, 128-d latents, 2 mapping
           layers, batch 32, gamma 0.01), without path length and style mixing, as cifar */
        map = 2, mb = 32, mbstd = 4, gamma = 0.01, ema = 10.0, ramp = 0.05, kimg = 500.0;
        g->z_dim = g->w_dim = 128;
        g->channel_base = d->channel_base = 4096;
        g->channel_max = d->channel_max = 128;
        t->pl_weight = 0.0f, t->style_mixing_prob = 0.0f;
        fmaps = -1.0;
    } else
        return gantl__fail(GANTL_ERR_INVALID, "unknown configuration '%s' (small, cifar, paper256 or auto)", name);
    if (fmaps > 0) g->channel_base = d->channel_base = (int)(fmaps * 32768), g->channel_max = d->channel_max = 512;
    g->mapping.num_layers = map;
    d->mbstd_group_size = mbstd;
    t->batch_size = mb;
    /* train.py: batch_gpu = mb // ref_gpus, the rounds of the reference setup (cifar 2 GPUs,
       paper256 8); auto and small: one GPU, the whole batch (0) */
    t->batch_gpu = ref_gpus > 1 ? mb / ref_gpus : 0;
    t->lr_g = t->lr_d = lrate;
    t->r1_gamma = (float)gamma;
    t->ema_kimg = (float)ema;
    t->ema_rampup = (float)ramp;
    t->total_kimg = kimg;
    gantl_status s = gantl__g_config_check(g);
    return s == GANTL_OK ? gantl__d_config_check(d) : s;
}

GANTLDEF int gantl_train_config_to_json(const gantl_train_config *c, char *buf, size_t size) {
    return snprintf(buf, size,
                    "{\"batch_size\": %d, \"batch_gpu\": %d, \"lr_g\": %.17g, \"lr_d\": %.17g, \"beta1\": %.17g, "
                    "\"beta2\": %.17g, \"eps\": %.17g, \"r1_gamma\": %.9g, \"pl_weight\": %.9g, \"pl_decay\": %.9g, "
                    "\"pl_batch_shrink\": %d, \"style_mixing_prob\": %.9g, \"g_reg_interval\": %d, "
                    "\"d_reg_interval\": %d, \"ema_kimg\": %.9g, \"ema_rampup\": %.9g, \"total_kimg\": %.17g, "
                    "\"augment\": %d, \"augment_p\": %.9g, \"ada_target\": %.9g, \"ada_interval\": %d, "
                    "\"ada_kimg\": %.9g}",
                    c->batch_size, c->batch_gpu, c->lr_g, c->lr_d, c->beta1, c->beta2, c->eps, (double)c->r1_gamma,
                    (double)c->pl_weight, (double)c->pl_decay, c->pl_batch_shrink, (double)c->style_mixing_prob,
                    c->g_reg_interval, c->d_reg_interval, (double)c->ema_kimg, (double)c->ema_rampup, c->total_kimg,
                    c->augment, (double)c->augment_p, (double)c->ada_target, c->ada_interval, (double)c->ada_kimg);
}

GANTLDEF gantl_status gantl_train_config_from_json(gantl_train_config *c, const char *text) {
    gantl_json j;
    gantl_train_config_default(c);
    gantl_status s = gantl_json_parse(&j, text, strlen(text));
    if (s != GANTL_OK) return s;
    if (j.type != GANTL_JSON_OBJECT) s = gantl__fail(GANTL_ERR_INVALID, "training config: not a JSON object");
    for (int i = 0; i < j.count && s == GANTL_OK; i++) {
        const char *k = j.keys[i];
        const gantl_json *v = &j.items[i];
        float f;
        if (v->type != GANTL_JSON_NUMBER) {
            s = gantl__fail(GANTL_ERR_INVALID, "training config: '%s' must be a number", k);
            break;
        }
        f = (float)v->number;
        if (!strcmp(k, "batch_size")) c->batch_size = (int)v->number;
        else if (!strcmp(k, "batch_gpu")) c->batch_gpu = (int)v->number;
        else if (!strcmp(k, "lr_g")) c->lr_g = v->number;
        else if (!strcmp(k, "lr_d")) c->lr_d = v->number;
        else if (!strcmp(k, "beta1")) c->beta1 = v->number;
        else if (!strcmp(k, "beta2")) c->beta2 = v->number;
        else if (!strcmp(k, "eps")) c->eps = v->number;
        else if (!strcmp(k, "r1_gamma")) c->r1_gamma = f;
        else if (!strcmp(k, "pl_weight")) c->pl_weight = f;
        else if (!strcmp(k, "pl_decay")) c->pl_decay = f;
        else if (!strcmp(k, "pl_batch_shrink")) c->pl_batch_shrink = (int)v->number;
        else if (!strcmp(k, "style_mixing_prob")) c->style_mixing_prob = f;
        else if (!strcmp(k, "g_reg_interval")) c->g_reg_interval = (int)v->number;
        else if (!strcmp(k, "d_reg_interval")) c->d_reg_interval = (int)v->number;
        else if (!strcmp(k, "ema_kimg")) c->ema_kimg = f;
        else if (!strcmp(k, "ema_rampup")) c->ema_rampup = f;
        else if (!strcmp(k, "total_kimg")) c->total_kimg = v->number;
        else if (!strcmp(k, "augment")) c->augment = (int)v->number;
        else if (!strcmp(k, "augment_p")) c->augment_p = f;
        else if (!strcmp(k, "ada_target")) c->ada_target = f;
        else if (!strcmp(k, "ada_interval")) c->ada_interval = (int)v->number;
        else if (!strcmp(k, "ada_kimg")) c->ada_kimg = f;
        else s = gantl__fail(GANTL_ERR_UNSUPPORTED, "training config: unknown key '%s'", k);
    }
    gantl_json_free(&j);
    return s;
}

static gantl_status gantl__train_config_check(const gantl_train_config *c, const gantl_d_config *d) {
    int bg = c->batch_gpu ? c->batch_gpu : c->batch_size;
    if (c->batch_size < 1 || bg < 1 || c->batch_size % bg != 0)
        return gantl__fail(GANTL_ERR_INVALID, "training: batch %d must be a positive multiple of batch_gpu %d",
                           c->batch_size, bg);
    int group = d->mbstd_group_size > 0 && d->mbstd_group_size < bg ? d->mbstd_group_size : bg;
    if (d->mbstd_num_channels > 0 && bg % group != 0)
        return gantl__fail(GANTL_ERR_INVALID, "training: batch_gpu %d must be a multiple of the minibatch-std group %d",
                           bg, d->mbstd_group_size);
    if (c->pl_weight != 0.0f && (c->pl_batch_shrink < 1 || bg / c->pl_batch_shrink < 1))
        return gantl__fail(GANTL_ERR_INVALID, "training: path length needs batch_gpu >= pl_batch_shrink (%d)",
                           c->pl_batch_shrink);
    if (c->g_reg_interval < 0 || c->d_reg_interval < 0 || c->ada_interval < 1 || c->ema_kimg < 0 || c->r1_gamma < 0)
        return gantl__fail(GANTL_ERR_INVALID, "training: negative interval, EMA or gamma");
    if (c->augment && (c->augment_p < 0 || c->ada_kimg <= 0))
        return gantl__fail(GANTL_ERR_INVALID, "training: augmentation p %g or ada_kimg %g out of range",
                           (double)c->augment_p, (double)c->ada_kimg);
    return GANTL_OK;
}

/* Lazy regularisation (training_loop.py): a phase pair shares one Adam with lr * r and
   betas ^ r, r = I / (I + 1), so that its effective step matches unregularised training. */
static gantl_status gantl__train_adam(gantl_adam *opt, const gantl_params *P, double lr, const gantl_train_config *c,
                                      int interval) {
    double r = interval > 0 ? (double)interval / (interval + 1) : 1.0;
    return gantl_adam_init(opt, P, lr * r, pow(c->beta1, r), pow(c->beta2, r), c->eps);
}

GANTLDEF gantl_status gantl_trainer_init(gantl_trainer *t, const gantl_g_config *g, const gantl_d_config *d,
                                         const gantl_train_config *cfg, uint64_t seed) {
    memset(t, 0, sizeof *t);
    gantl_status s = gantl__train_config_check(cfg, d);
    if (s != GANTL_OK) return s;
    if (g->img_resolution != d->img_resolution || g->img_channels != d->img_channels || g->c_dim != d->c_dim)
        return gantl__fail(GANTL_ERR_INVALID, "training: G makes %dx%d images of %d channels with %d labels, D takes "
                           "%dx%d of %d with %d", g->img_resolution, g->img_resolution, g->img_channels, g->c_dim,
                           d->img_resolution, d->img_resolution, d->img_channels, d->c_dim);
    t->cfg = *cfg;
    if (!t->cfg.batch_gpu) t->cfg.batch_gpu = t->cfg.batch_size;
    /* seeds of G and D follow the run seed; the run's randomness is a separate stream */
    if ((s = gantl_generator_init(&t->G, g, seed * 3 + 1)) != GANTL_OK) goto fail;
    if ((s = gantl_discriminator_init(&t->D, d, seed * 3 + 2)) != GANTL_OK) goto fail;
    if ((s = gantl_generator_init(&t->G_ema, g, 0)) != GANTL_OK) goto fail;
    gantl_params_copy(&t->G_ema.params, &t->G.params);
    gantl_params_copy(&t->G_ema.buffers, &t->G.buffers);
    if ((s = gantl__train_adam(&t->opt_g, &t->G.params, cfg->lr_g, cfg, cfg->g_reg_interval)) != GANTL_OK) goto fail;
    if ((s = gantl__train_adam(&t->opt_d, &t->D.params, cfg->lr_d, cfg, cfg->d_reg_interval)) != GANTL_OK) goto fail;
    t->rng = gantl_rng_new(seed * 3 + 3);
    t->random = gantl_random_philox(&t->rng);
    gantl_augment_init(&t->augment, cfg->augment_p, cfg->ada_target, cfg->ada_kimg);
    t->augment.ada_interval = cfg->ada_interval;
    t->comm = gantl_comm_single();
    t->ctx = gantl_ctx_new(0);
    if (!t->ctx) {
        s = gantl__fail(GANTL_ERR_NOMEM, "training: out of memory");
        goto fail;
    }
    return GANTL_OK;
fail:
    gantl_trainer_free(t);
    return s;
}

GANTLDEF void gantl_trainer_free(gantl_trainer *t) {
    gantl_generator_free(&t->G);
    gantl_generator_free(&t->G_ema);
    gantl_discriminator_free(&t->D);
    gantl_adam_free(&t->opt_g);
    gantl_adam_free(&t->opt_d);
    gantl_ctx_free(t->ctx);
    memset(t, 0, sizeof *t);
}

/* Copies every tensor of P found under prefix (require_all = False, as the official resume). */
static gantl_status gantl__params_copy_from(gantl_params *P, const gantl_st_file *f, const char *prefix, int *copied) {
    char name[256];
    for (int i = 0; i < P->count; i++) {
        gantl_tensor *t = P->tensors[i];
        snprintf(name, sizeof name, "%s%s", prefix, t->name);
        if (!gantl_st_find(f, name)) continue;
        gantl_status s = gantl_st_read_f32(f, name, t->data, t->numel, t->ndim, t->shape);
        if (s != GANTL_OK) return s;
        (*copied)++;
    }
    return GANTL_OK;
}

GANTLDEF gantl_status gantl_trainer_load_networks(gantl_trainer *t, const gantl_st_file *f) {
    int g = 0, d = 0, e = 0;
    gantl_status s = GANTL_OK;
    if (s == GANTL_OK) s = gantl__params_copy_from(&t->G.params, f, "G.", &g);
    if (s == GANTL_OK) s = gantl__params_copy_from(&t->G.buffers, f, "G.", &g);
    if (s == GANTL_OK) s = gantl__params_copy_from(&t->D.params, f, "D.", &d);
    if (s == GANTL_OK) s = gantl__params_copy_from(&t->D.buffers, f, "D.", &d);
    if (s == GANTL_OK && g) { /* G_ema starts as G, then takes what the file has */
        gantl_params_copy(&t->G_ema.params, &t->G.params);
        gantl_params_copy(&t->G_ema.buffers, &t->G.buffers);
    }
    if (s == GANTL_OK) s = gantl__params_copy_from(&t->G_ema.params, f, "G_ema.", &e);
    if (s == GANTL_OK) s = gantl__params_copy_from(&t->G_ema.buffers, f, "G_ema.", &e);
    if (s == GANTL_OK && (g + e == 0 || d == 0))
        s = gantl__fail(GANTL_ERR_INVALID, "checkpoint has no %s tensors with the expected names",
                        g + e == 0 ? "generator (G. or G_ema.)" : "discriminator (D.)");
    if (s == GANTL_OK && !g) { /* only G_ema in the file: G starts from it */
        gantl_params_copy(&t->G.params, &t->G_ema.params);
        gantl_params_copy(&t->G.buffers, &t->G_ema.buffers);
    }
    return s;
}

/* An Adam's state moved where P now is: a fresh optimizer there, the moments copied. */
static gantl_status gantl__adam_move(gantl_adam *opt, const gantl_params *P) {
    if (opt->device == P->device) return GANTL_OK;
    gantl_adam fresh;
    gantl_status s = gantl_adam_init(&fresh, P, opt->lr, opt->beta1, opt->beta2, opt->eps);
    if (s != GANTL_OK) return s;
    const gantl_backend *be = gantl__device_hooks(P->device != GANTL_CPU ? P->device : opt->device, "trainer_to_device");
    size_t bytes = (size_t)opt->numel * sizeof(float);
    if (opt->numel && (s = be->copy(fresh.m, opt->m, bytes)) == GANTL_OK) s = be->copy(fresh.v, opt->v, bytes);
    if (s != GANTL_OK) {
        gantl_adam_free(&fresh);
        return s;
    }
    memcpy(fresh.steps, opt->steps, (size_t)(opt->count ? opt->count : 1) * sizeof(int64_t));
    fresh.step = opt->step;
    gantl_adam_free(opt);
    *opt = fresh;
    return GANTL_OK;
}

GANTLDEF gantl_status gantl_trainer_to_device(gantl_trainer *t, gantl_device device) {
    if ((int)device == t->device) return GANTL_OK;
    if (device != GANTL_CPU) {
        const gantl_backend *be = gantl_get_backend(device);
        if (!be || !be->alloc || !be->free || !be->synchronize || !be->copy || !be->fill || !be->add || !be->lerp ||
            !be->nan_to_num || !be->adam || !be->sgd)
            return gantl__fail(GANTL_ERR_UNSUPPORTED, "trainer_to_device: no backend for device %d%s", (int)device,
                               device == GANTL_CUDA ? " (link gantl_cuda.cu and call gantl_cuda_init)" : "");
    }
    gantl_device from = (gantl_device)t->device;
    gantl_ctx *ctx = gantl_ctx_new_device(device, 0);
    if (!ctx) return gantl__fail(GANTL_ERR_NOMEM, "trainer_to_device: out of memory");
    gantl_params *sets[6] = {&t->G.params, &t->G.buffers, &t->D.params, &t->D.buffers, &t->G_ema.params, &t->G_ema.buffers};
    gantl_status s = from != GANTL_CPU ? gantl_device_synchronize(from) : GANTL_OK;
    for (int i = 0; i < 6 && s == GANTL_OK; i++) s = gantl_params_to_device(sets[i], device);
    if (s == GANTL_OK) s = gantl__adam_move(&t->opt_g, &t->G.params);
    if (s == GANTL_OK) s = gantl__adam_move(&t->opt_d, &t->D.params);
    if (s != GANTL_OK) { /* everything back where it was (best effort), the first error kept */
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", gantl_last_error());
        for (int i = 0; i < 6; i++) gantl_params_to_device(sets[i], from);
        gantl__adam_move(&t->opt_g, &t->G.params);
        gantl__adam_move(&t->opt_d, &t->D.params);
        gantl_ctx_free(ctx);
        return gantl__fail(s, "trainer_to_device: %s", msg);
    }
    gantl_ctx_free(t->ctx);
    t->ctx = ctx;
    t->device = (int32_t)device;
    return GANTL_OK;
}

GANTLDEF int gantl_trainer_num_phases(const gantl_trainer *t) {
    return (t->cfg.g_reg_interval > 0 ? 2 : 1) + (t->cfg.d_reg_interval > 0 ? 2 : 1);
}

/* Per-image draws with data parallelism: the draw one process makes for the whole batch
   (K times this rank's rows), of which this rank keeps its rows i * K + rank, so that every
   image gets its numbers and the stream advances as in one process. Each request is rows
   per-image blocks of n / rows values (one or more per image). */
typedef struct gantl__rows_random {
    gantl_trainer *t;
    int64_t rows; /* images of the current draw on this rank */
} gantl__rows_random;

static void gantl__rows_draw(gantl__rows_random *r, float *out, int64_t n, int normal) {
    gantl_trainer *t = r->t;
    int64_t K = t->comm.size, rank = t->comm.rank, w = r->rows > 0 ? n / r->rows : 0;
    GANTL__CHECK(r->rows > 0 && w * r->rows == n, "training: a per-image draw of %lld values for %lld images",
                 (long long)n, (long long)r->rows);
    float *all = (float *)gantl__alloc(t->ctx, (size_t)(n * K) * sizeof(float));
    if (!all) { /* the context's out-of-memory status ends the step */
        memset(out, 0, (size_t)n * sizeof(float));
        return;
    }
    if (normal) t->random.normal(t->random.state, all, n * K);
    else t->random.uniform(t->random.state, all, n * K);
    for (int64_t i = 0; i < r->rows; i++) memcpy(out + i * w, all + (i * K + rank) * w, (size_t)w * sizeof(float));
}
static void gantl__rows_normal(void *state, float *out, int64_t n) { gantl__rows_draw((gantl__rows_random *)state, out, n, 1); }
static void gantl__rows_uniform(void *state, float *out, int64_t n) { gantl__rows_draw((gantl__rows_random *)state, out, n, 0); }

/* The source of per-image draws for rows images: the trainer's own in one process. */
static gantl_random gantl__train_image_random(gantl_trainer *t, gantl__rows_random *r, int64_t rows) {
    if (t->comm.size == 1) return t->random;
    gantl_random g;
    r->t = t, r->rows = rows;
    g.state = r, g.normal = gantl__rows_normal, g.uniform = gantl__rows_uniform;
    return g;
}

/* A tensor of per-image draws (shape[0] images) from the trainer's random source. */
static gantl_tensor *gantl__train_normal(gantl_trainer *t, int ndim, const int64_t *shape) {
    gantl_tensor *x = gantl_new(t->ctx, ndim, shape);
    gantl__rows_random r;
    gantl_random random = gantl__train_image_random(t, &r, shape[0]);
    if (x) random.normal(random.state, x->data, x->numel);
    return x;
}

/* A failed collective in the middle of a round: the context carries the status (ops then
   return NULL, and the round returns gantl_ctx_status). */
static gantl_tensor *gantl__train_comm_failed(gantl_trainer *t, gantl_status s) {
    if (t->ctx->status == GANTL_OK) t->ctx->status = s;
    return NULL;
}

/* The training-mode w_avg update of the mapping (gantl_generator_mapping's), over the
   images of every rank: ws (n, num_ws, w_dim) of this rank's n. */
static gantl_status gantl__train_w_avg(gantl_trainer *t, const gantl_tensor *ws) {
    gantl_mapping *M = &t->G.mapping;
    int64_t n = ws->shape[0], stride = ws->shape[1] * ws->shape[2];
    double *sum = (double *)gantl__alloc(t->ctx, (size_t)M->w_dim * sizeof(double));
    if (!sum) return gantl_ctx_status(t->ctx);
    gantl__host_sync(t->ctx, ws);
    for (int d = 0; d < M->w_dim; d++) {
        double acc = 0.0;
        for (int64_t i = 0; i < n; i++) acc += ws->data[i * stride + d];
        sum[d] = acc;
    }
    gantl_status s = gantl_comm_allreduce_f64(&t->comm, sum, M->w_dim);
    if (s != GANTL_OK) return s;
    for (int d = 0; d < M->w_dim; d++) {
        double mean = sum[d] / (double)(n * t->comm.size);
        M->w_avg->data[d] = (float)(mean + ((double)M->w_avg->data[d] - mean) * M->w_avg_beta);
    }
    return GANTL_OK;
}

/* run_G of training/loss.py: mapping (updating w_avg), style mixing with a fresh z from a
   random cutoff, synthesis with random noise. Draw order: the mixing cutoff and its
   probability (two uniforms), the mixing z, then the noise of each layer in order. */
static gantl_tensor *gantl__train_run_G(gantl_trainer *t, gantl_tensor *z, gantl_tensor *c, gantl_tensor **ws_out) {
    gantl_ctx *ctx = t->ctx;
    gantl_generator *G = &t->G;
    int parallel = t->comm.size > 1; /* then w_avg learns from every rank's images */
    gantl_tensor *ws = gantl_generator_mapping(ctx, G, z, c, 1.0f, -1, !parallel);
    if (!ws) return NULL;
    if (parallel && G->mapping.w_avg) {
        gantl_status s = gantl__train_w_avg(t, ws);
        if (s != GANTL_OK) return gantl__train_comm_failed(t, s);
    }
    if (t->cfg.style_mixing_prob > 0.0f) {
        float u[2];
        t->random.uniform(t->random.state, u, 2);
        int cutoff = 1 + (int)(u[0] * (float)(G->num_ws - 1));
        if (cutoff > G->num_ws - 1) cutoff = G->num_ws - 1;
        if (!(u[1] < t->cfg.style_mixing_prob)) cutoff = G->num_ws;
        gantl_tensor *z2 = gantl__train_normal(t, z->ndim, z->shape);
        gantl_tensor *ws2 = gantl_generator_mapping(ctx, G, z2, c, 1.0f, -1, 0);
        if (cutoff < G->num_ws)
            ws = gantl_concat(ctx, gantl_slice(ctx, ws, 1, 0, cutoff), gantl_slice(ctx, ws2, 1, cutoff, G->num_ws), 1);
    }
    gantl_tensor *noise[2 * GANTL_MAX_BLOCKS];
    int k = 0;
    for (int b = 0; b < G->num_blocks; b++)
        for (int l = 0; l < G->blocks[b].num_conv; l++) {
            int64_t s[4] = {z->shape[0], 1, G->blocks[b].resolution, G->blocks[b].resolution};
            noise[k++] = gantl__train_normal(t, 4, s);
        }
    if (ws_out) *ws_out = ws;
    return gantl_generator_synthesis(ctx, G, ws, GANTL_NOISE_RANDOM, NULL, noise);
}

/* run_D: the augmentation (its draws from the trainer's source), then D. */
static gantl_tensor *gantl__train_run_D(gantl_trainer *t, gantl_tensor *img, gantl_tensor *c) {
    if (img && t->cfg.augment) {
        gantl_augment_draws d;
        gantl__rows_random r;
        gantl_random random = gantl__train_image_random(t, &r, img->shape[0]);
        if (gantl_augment_draw(t->ctx, &t->augment, &random, img->shape[0], (int)img->shape[1], &d) != GANTL_OK)
            return NULL;
        img = gantl_augment_apply_draws(t->ctx, &t->augment, img, &d);
    }
    return gantl_discriminator_forward(t->ctx, &t->D, img, c);
}

/* rows [start, start + n) of a (?, width) array as a (n, width) leaf, or NULL if rows is NULL */
static gantl_tensor *gantl__train_rows(gantl_ctx *ctx, const float *rows, int64_t start, int64_t n, int64_t width) {
    if (!rows || width == 0) return NULL;
    int64_t s[2] = {n, width};
    return gantl_from_data(ctx, 2, s, rows + start * width);
}

enum { GANTL__PHASE_GMAIN = 1, GANTL__PHASE_GREG = 2, GANTL__PHASE_DMAIN = 4, GANTL__PHASE_DREG = 8 };

typedef struct gantl__train_sums {
    double loss_g, loss_d, loss_pl, pl_penalty, loss_r1, r1_penalty, score_real, score_fake, sign_real;
    int n_g, n_d, n_pl, n_r1, n_real, n_fake;
} gantl__train_sums;

static double gantl__mean_of(const gantl_tensor *x) {
    double s = 0.0;
    for (int64_t i = 0; i < x->numel; i++) s += x->data[i];
    return x->numel ? s / (double)x->numel : 0.0;
}

/* The path-length mean over every rank's lengths, for K ranks with h_r = n lengths each
   (h = K n in all). One process has pm = pm0 + decay (mean(L) - pm0) in the graph, so the
   loss mean_i w (L_i - pm)^2 has dloss/dL_k = 2w/h (L_k - pm) - 2w decay/h^2 S with
   S = sum over all i of (L_i - pm). This rank returns pm with the global value (the same
   bit for bit on every rank) and the gradient decay / h for each of its L_k; its own loss,
   the mean over its lengths, then brings -2w decay/h^2 S_r (S over its lengths) after the
   average over ranks, and *extra = c sum_k L_k with c = -2 K w decay (S - S_r) / h^2
   supplies the rest. */
static gantl_tensor *gantl__train_pl_mean_parallel(gantl_trainer *t, gantl_tensor *lengths, gantl_tensor **extra) {
    gantl_ctx *ctx = t->ctx;
    if (!lengths) return NULL;
    gantl__host_sync(ctx, lengths);
    double local = 0.0, total;
    for (int64_t i = 0; i < lengths->numel; i++) local += lengths->data[i];
    total = local;
    gantl_status s = gantl_comm_allreduce_f64(&t->comm, &total, 1);
    if (s != GANTL_OK) return gantl__train_comm_failed(t, s);
    double K = t->comm.size, hr = (double)lengths->numel, h = K * hr, w = t->cfg.pl_weight, decay = t->cfg.pl_decay;
    /* the value in one process's float arithmetic: (mean - pm0) * decay + pm0 */
    float pm = ((float)(total / h) - t->pl_mean) * t->cfg.pl_decay + t->pl_mean;
    gantl_tensor *sum = gantl_sum_all(ctx, lengths);
    /* sum - detach(sum) is exactly 0 but carries the gradient 1 to every L_k */
    gantl_tensor *pm_t = gantl_add_scalar(ctx, gantl_scale(ctx, gantl_sub(ctx, sum, gantl_detach(ctx, sum)),
                                                           (float)(decay / h)), pm);
    double s_all = total - h * pm, s_r = local - hr * pm;
    *extra = gantl_scale(ctx, sum, (float)(-2.0 * K * w * decay * (s_all - s_r) / (h * h)));
    return pm_t;
}

/* accumulate_gradients of training/loss.py for one round of batch_gpu images. */
static gantl_status gantl__train_round(gantl_trainer *t, unsigned what, const float *reals, const float *real_c,
                                       const float *gen_z, const float *gen_c, int64_t start, int64_t n, float gain,
                                       gantl__train_sums *sums) {
    gantl_ctx *ctx = t->ctx;
    const gantl_g_config *gc = &t->G.cfg;
    int64_t C = gc->img_channels, R = gc->img_resolution, zdim = gc->z_dim, cdim = gc->c_dim;
    if (what & GANTL__PHASE_GMAIN) { /* maximise D's logits for generated images */
        gantl_ctx_reset(ctx);
        gantl_tensor *img = gantl__train_run_G(t, gantl__train_rows(ctx, gen_z, start, n, zdim),
                                               gantl__train_rows(ctx, gen_c, start, n, cdim), NULL);
        gantl_tensor *logits = gantl__train_run_D(t, img, gantl__train_rows(ctx, gen_c, start, n, cdim));
        gantl_tensor *loss = gantl_mean_all(ctx, gantl_softplus(ctx, gantl_neg(ctx, logits)));
        gantl__host_sync(ctx, loss);
        if (!loss || ctx->status != GANTL_OK) return gantl_ctx_status(ctx);
        sums->loss_g += loss->data[0], sums->n_g++;
        sums->score_fake += gantl__mean_of(logits), sums->n_fake++;
        gantl_backward(ctx, gantl_scale(ctx, loss, gain));
    }
    if ((what & GANTL__PHASE_GREG) && t->cfg.pl_weight != 0.0f) { /* path-length regularisation */
        gantl_ctx_reset(ctx);
        int64_t half = n / t->cfg.pl_batch_shrink;
        gantl_tensor *ws;
        gantl_tensor *img = gantl__train_run_G(t, gantl__train_rows(ctx, gen_z, start, half, zdim),
                                               gantl__train_rows(ctx, gen_c, start, half, cdim), &ws);
        if (!img) return gantl_ctx_status(ctx);
        gantl_tensor *pl_noise = gantl_scale(ctx, gantl__train_normal(t, 4, img->shape), 1.0f / sqrtf((float)(R * R)));
        gantl_tensor *dot = gantl_sum_all(ctx, gantl_mul(ctx, img, pl_noise)), *grads;
        gantl_grad(ctx, 1, &dot, NULL, 1, &ws, &grads, 1);
        int axis1 = 1, axis2 = 2;
        gantl_tensor *lengths = gantl_sqrt(ctx, gantl_mean(ctx, gantl_sum(ctx, gantl_square(ctx, grads), 1, &axis2, 0), 1, &axis1, 0));
        /* pl_mean.lerp(mean(lengths), decay), kept in the graph as the official code does */
        gantl_tensor *pl_mean, *extra = NULL;
        if (t->comm.size == 1)
            pl_mean = gantl_add_scalar(ctx, gantl_scale(ctx, gantl_add_scalar(ctx, gantl_mean_all(ctx, lengths), -t->pl_mean),
                                                        t->cfg.pl_decay), t->pl_mean);
        else
            pl_mean = gantl__train_pl_mean_parallel(t, lengths, &extra);
        gantl__host_sync(ctx, pl_mean);
        if (!pl_mean || ctx->status != GANTL_OK) return gantl_ctx_status(ctx);
        t->pl_mean = pl_mean->data[0];
        gantl_tensor *penalty = gantl_square(ctx, gantl_sub(ctx, lengths, pl_mean));
        gantl_tensor *loss = gantl_mean_all(ctx, gantl_scale(ctx, penalty, t->cfg.pl_weight));
        gantl__host_sync(ctx, loss);
        if (!loss || ctx->status != GANTL_OK) return gantl_ctx_status(ctx);
        sums->loss_pl += loss->data[0], sums->pl_penalty += gantl__mean_of(penalty), sums->n_pl++;
        gantl_backward(ctx, gantl_scale(ctx, extra ? gantl_add(ctx, loss, extra) : loss, gain));
    }
    if (what & GANTL__PHASE_DMAIN) { /* minimise D's logits for generated images */
        gantl_ctx_reset(ctx);
        int was = gantl_set_grad_enabled(ctx, 0); /* G is not trained in this phase */
        gantl_tensor *img = gantl__train_run_G(t, gantl__train_rows(ctx, gen_z, start, n, zdim),
                                               gantl__train_rows(ctx, gen_c, start, n, cdim), NULL);
        gantl_set_grad_enabled(ctx, was);
        gantl_tensor *logits = gantl__train_run_D(t, img, gantl__train_rows(ctx, gen_c, start, n, cdim));
        gantl_tensor *loss = gantl_mean_all(ctx, gantl_softplus(ctx, logits));
        gantl__host_sync(ctx, loss);
        if (!loss || ctx->status != GANTL_OK) return gantl_ctx_status(ctx);
        sums->loss_d += loss->data[0];
        sums->score_fake += gantl__mean_of(logits), sums->n_fake++;
        gantl_backward(ctx, gantl_scale(ctx, loss, gain));
    }
    if (what & (GANTL__PHASE_DMAIN | GANTL__PHASE_DREG)) { /* reals: maximise D's logits, and R1 */
        int do_main = (what & GANTL__PHASE_DMAIN) != 0, do_r1 = (what & GANTL__PHASE_DREG) && t->cfg.r1_gamma != 0.0f;
        gantl_ctx_reset(ctx);
        int64_t s4[4] = {n, C, R, R};
        gantl_tensor *real = gantl_from_data(ctx, 4, s4, reals + start * C * R * R);
        if (do_r1) gantl_requires_grad(real);
        gantl_tensor *logits = gantl__train_run_D(t, real, gantl__train_rows(ctx, real_c, start, n, cdim));
        gantl__host_sync(ctx, logits);
        if (!logits || ctx->status != GANTL_OK) return gantl_ctx_status(ctx);
        double sign = 0.0;
        for (int64_t i = 0; i < logits->numel; i++) sign += (logits->data[i] > 0) - (logits->data[i] < 0);
        gantl_augment_accumulate(&t->augment, logits); /* the ADA statistic: sign(D(aug(real))) */
        sums->sign_real += sign / (double)logits->numel, sums->score_real += gantl__mean_of(logits), sums->n_real++;
        gantl_tensor *loss = NULL;
        if (do_main) {
            loss = gantl_mean_all(ctx, gantl_softplus(ctx, gantl_neg(ctx, logits)));
            gantl__host_sync(ctx, loss);
            if (!loss || ctx->status != GANTL_OK) return gantl_ctx_status(ctx);
            sums->loss_d += loss->data[0], sums->n_d++;
        }
        if (do_r1) {
            gantl_tensor *sum = gantl_sum_all(ctx, logits), *grads;
            gantl_grad(ctx, 1, &sum, NULL, 1, &real, &grads, 1);
            int axes[3] = {1, 2, 3};
            gantl_tensor *penalty = gantl_sum(ctx, gantl_square(ctx, grads), 3, axes, 0);
            gantl_tensor *loss_r1 = gantl_mean_all(ctx, gantl_scale(ctx, penalty, t->cfg.r1_gamma / 2.0f));
            gantl__host_sync(ctx, loss_r1);
            if (!loss_r1 || ctx->status != GANTL_OK) return gantl_ctx_status(ctx);
            sums->loss_r1 += loss_r1->data[0], sums->r1_penalty += gantl__mean_of(penalty), sums->n_r1++;
            loss = loss ? gantl_add(ctx, loss, loss_r1) : loss_r1;
        }
        if (loss) gantl_backward(ctx, gantl_scale(ctx, loss, gain));
    }
    return gantl_ctx_status(ctx);
}

/* The rounds of a rank: batch_gpu images, at most the rank's share of the batch. */
static int64_t gantl__train_round_size(const gantl_trainer *t) {
    int64_t n = t->cfg.batch_size / t->comm.size;
    return t->cfg.batch_gpu < n ? t->cfg.batch_gpu : n;
}

GANTLDEF int64_t gantl_trainer_local_batch(const gantl_trainer *t) { return t->cfg.batch_size / t->comm.size; }

/* With K ranks, after the phases: the ADA sign statistics of the iteration summed over the
   ranks (integers in doubles: exactly one process's), and the losses averaged for the
   stats; one small collective. */
static gantl_status gantl__train_reduce_stats(gantl_trainer *t, gantl__train_sums *sums, double sign_sum0,
                                              int64_t sign_count0) {
    double v[11] = {sums->loss_g, sums->loss_d, sums->loss_pl, sums->pl_penalty, sums->loss_r1, sums->r1_penalty,
                    sums->score_real, sums->score_fake, sums->sign_real, t->augment.sign_sum - sign_sum0,
                    (double)(t->augment.sign_count - sign_count0)};
    gantl_status s = gantl_comm_allreduce_f64(&t->comm, v, 11);
    if (s != GANTL_OK) return s;
    double K = t->comm.size;
    sums->loss_g = v[0] / K, sums->loss_d = v[1] / K, sums->loss_pl = v[2] / K, sums->pl_penalty = v[3] / K;
    sums->loss_r1 = v[4] / K, sums->r1_penalty = v[5] / K, sums->score_real = v[6] / K, sums->score_fake = v[7] / K;
    sums->sign_real = v[8] / K;
    t->augment.sign_sum = sign_sum0 + v[9];
    t->augment.sign_count = sign_count0 + (int64_t)v[10];
    return GANTL_OK;
}

GANTLDEF gantl_status gantl_trainer_step(gantl_trainer *t, const float *reals, const float *real_c, const float *gen_c,
                                         gantl_train_stats *stats) {
    const gantl_train_config *c = &t->cfg;
    int64_t K = t->comm.size, rank = t->comm.rank;
    int64_t B = c->batch_size, b = B / K, bg = gantl__train_round_size(t), zdim = t->G.cfg.z_dim;
    GANTL__CHECK(reals != NULL, "trainer_step: no real images");
    GANTL__CHECK((t->G.cfg.c_dim == 0) == (real_c == NULL) && (t->G.cfg.c_dim == 0) == (gen_c == NULL),
                 "trainer_step: labels must be given exactly when the networks are conditional (c_dim %d)", t->G.cfg.c_dim);
    /* the phases: what each accumulates, how often it runs, which network it trains */
    struct { unsigned what; int interval; int is_g; const char *name; } phases[4];
    int np = 0;
#define GANTL__ADD_PHASE(w, i, g, n) phases[np].what = (w), phases[np].interval = (i), phases[np].is_g = (g), phases[np++].name = (n)
    if (c->g_reg_interval > 0) {
        GANTL__ADD_PHASE(GANTL__PHASE_GMAIN, 1, 1, "Gmain");
        GANTL__ADD_PHASE(GANTL__PHASE_GREG, c->g_reg_interval, 1, "Greg");
    } else
        GANTL__ADD_PHASE(GANTL__PHASE_GMAIN | GANTL__PHASE_GREG, 1, 1, "Gboth");
    if (c->d_reg_interval > 0) {
        GANTL__ADD_PHASE(GANTL__PHASE_DMAIN, 1, 0, "Dmain");
        GANTL__ADD_PHASE(GANTL__PHASE_DREG, c->d_reg_interval, 0, "Dreg");
    } else
        GANTL__ADD_PHASE(GANTL__PHASE_DMAIN | GANTL__PHASE_DREG, 1, 0, "Dboth");
#undef GANTL__ADD_PHASE
    /* one z for every phase, drawn up front as training_loop.py does; a rank keeps its rows */
    float *gen_z = (float *)GANTL_MALLOC((size_t)(np * B * zdim) * sizeof(float));
    if (!gen_z) return gantl__fail(GANTL_ERR_NOMEM, "trainer_step: out of memory");
    t->random.normal(t->random.state, gen_z, np * B * zdim);
    for (int64_t r = 0; K > 1 && r < np * b; r++) /* row r = p * b + i <- p * B + i * K + rank, never ahead */
        memmove(gen_z + r * zdim, gen_z + ((r / b) * B + (r % b) * K + rank) * zdim, (size_t)zdim * sizeof(float));
    double sign_sum0 = t->augment.sign_sum;
    int64_t sign_count0 = t->augment.sign_count;
    gantl__train_sums sums;
    memset(&sums, 0, sizeof sums);
    gantl_status s = GANTL_OK;
    for (int p = 0; p < np && s == GANTL_OK; p++) {
        if (t->batch_idx % phases[p].interval != 0) continue;
        gantl_params *train = phases[p].is_g ? &t->G.params : &t->D.params;
        gantl_params_requires_grad(&t->G.params, phases[p].is_g);
        gantl_params_requires_grad(&t->D.params, !phases[p].is_g);
        gantl_params_zero_grad(train);
        for (int64_t start = 0; start < b && s == GANTL_OK; start += bg)
            s = gantl__train_round(t, phases[p].what, reals, real_c, gen_z + p * b * zdim,
                                   gen_c ? gen_c + p * b * t->G.cfg.c_dim : NULL, start, bg, (float)phases[p].interval, &sums);
        if (s == GANTL_OK) s = gantl_params_allreduce_grad(&t->comm, train); /* one collective per phase */
        if (s != GANTL_OK) break;
        gantl_params_nan_to_num_grad(train, 1e5f);
        if (t->phase_hook) t->phase_hook(t->phase_hook_user, phases[p].name, train);
        gantl_adam_step(phases[p].is_g ? &t->opt_g : &t->opt_d, train);
    }
    gantl_params_requires_grad(&t->G.params, 1);
    gantl_params_requires_grad(&t->D.params, 1);
    GANTL_FREE(gen_z);
    gantl_ctx_reset(t->ctx);
    if (s == GANTL_OK && K > 1) s = gantl__train_reduce_stats(t, &sums, sign_sum0, sign_count0);
    if (s != GANTL_OK) return s;
    /* G EMA: half-life ema_kimg, ramped up early in a run: p_ema = lerp(p, p_ema, beta) */
    double ema_nimg = c->ema_kimg * 1000.0;
    if (c->ema_rampup >= 0.0f && ema_nimg > (double)t->cur_nimg * c->ema_rampup) ema_nimg = (double)t->cur_nimg * c->ema_rampup;
    double beta = pow(0.5, (double)B / (ema_nimg > 1e-8 ? ema_nimg : 1e-8));
    gantl_params_lerp(&t->G_ema.params, &t->G.params, (float)beta);
    gantl_params_copy(&t->G_ema.buffers, &t->G.buffers);
    /* on a device: the Adam, EMA and copy kernels finished, and any failure of theirs reported */
    if (t->device != GANTL_CPU && (s = gantl_device_synchronize((gantl_device)t->device)) != GANTL_OK) return s;
    t->cur_nimg += B;
    t->batch_idx++;
    if (c->augment && t->batch_idx % c->ada_interval == 0) gantl_augment_update(&t->augment, B);
    if (stats) {
        double nan = NAN;
        stats->loss_g = sums.n_g ? sums.loss_g / sums.n_g : nan;
        stats->loss_d = sums.n_d ? sums.loss_d / sums.n_d : nan;
        stats->loss_pl = sums.n_pl ? sums.loss_pl / sums.n_pl : nan;
        stats->pl_penalty = sums.n_pl ? sums.pl_penalty / sums.n_pl : nan;
        stats->loss_r1 = sums.n_r1 ? sums.loss_r1 / sums.n_r1 : nan;
        stats->r1_penalty = sums.n_r1 ? sums.r1_penalty / sums.n_r1 : nan;
        stats->score_real = sums.n_real ? sums.score_real / sums.n_real : nan;
        stats->score_fake = sums.n_fake ? sums.score_fake / sums.n_fake : nan;
        stats->sign_real = sums.n_real ? sums.sign_real / sums.n_real : nan;
        stats->pl_mean = t->pl_mean;
        stats->augment_p = t->augment.p;
    }
    return GANTL_OK;
}

/* ---- data parallelism ---- */

/* The scalars of a trainer's state, packed (no padding bytes: it is hashed). */
typedef struct gantl__train_scalars {
    int64_t adam_g_step, adam_d_step, cur_nimg, batch_idx, sign_count;
    uint64_t rng_seed, rng_offset;
    double sign_sum;
    float pl_mean, augment_p;
} gantl__train_scalars;

static void gantl__train_scalars_get(const gantl_trainer *t, gantl__train_scalars *v) {
    memset(v, 0, sizeof *v);
    v->adam_g_step = t->opt_g.step, v->adam_d_step = t->opt_d.step, v->cur_nimg = t->cur_nimg;
    v->batch_idx = t->batch_idx, v->sign_count = t->augment.sign_count;
    v->rng_seed = t->rng.seed, v->rng_offset = t->rng.offset;
    v->sign_sum = t->augment.sign_sum, v->pl_mean = t->pl_mean, v->augment_p = t->augment.p;
}

/* The arrays of a trainer's state: data and bytes of each, NULL-terminated. */
static int gantl__train_arrays(gantl_trainer *t, void **data, int64_t *bytes) {
    gantl_params *sets[6] = {&t->G.params, &t->G.buffers, &t->D.params, &t->D.buffers, &t->G_ema.params, &t->G_ema.buffers};
    int n = 0;
    for (int i = 0; i < 6; i++) data[n] = sets[i]->data, bytes[n++] = sets[i]->numel * (int64_t)sizeof(float);
    gantl_adam *opts[2] = {&t->opt_g, &t->opt_d};
    for (int i = 0; i < 2; i++) {
        data[n] = opts[i]->m, bytes[n++] = opts[i]->numel * (int64_t)sizeof(float);
        data[n] = opts[i]->v, bytes[n++] = opts[i]->numel * (int64_t)sizeof(float);
        data[n] = opts[i]->steps, bytes[n++] = opts[i]->count * (int64_t)sizeof(int64_t);
    }
    return n;
}

GANTLDEF gantl_status gantl_trainer_set_comm(gantl_trainer *t, const gantl_comm *comm) {
    gantl__comm_check(comm, NULL, 0, "trainer_set_comm");
    const gantl_train_config *c = &t->cfg;
    int K = comm->size;
    if (c->batch_size % K != 0)
        return gantl__fail(GANTL_ERR_INVALID, "training: batch %d does not split over %d ranks", c->batch_size, K);
    int64_t n = c->batch_size / K, bg = c->batch_gpu < n ? c->batch_gpu : n;
    if (n % bg != 0)
        return gantl__fail(GANTL_ERR_INVALID, "training: the %lld images of a rank (batch %d over %d ranks) are not rounds "
                           "of batch_gpu %lld", (long long)n, c->batch_size, K, (long long)bg);
    int group = t->D.cfg.mbstd_group_size > 0 && t->D.cfg.mbstd_group_size < bg ? t->D.cfg.mbstd_group_size : (int)bg;
    if (t->D.cfg.mbstd_num_channels > 0 && bg % group != 0)
        return gantl__fail(GANTL_ERR_INVALID, "training: a rank's rounds of %lld images are not groups of the "
                           "minibatch-std group %d", (long long)bg, t->D.cfg.mbstd_group_size);
    if (c->pl_weight != 0.0f && bg / c->pl_batch_shrink < 1)
        return gantl__fail(GANTL_ERR_INVALID, "training: path length needs a rank's rounds of %lld images to be at least "
                           "pl_batch_shrink (%d)", (long long)bg, c->pl_batch_shrink);
    t->comm = *comm;
    if (K == 1) return GANTL_OK;
    /* rank 0's state everywhere */
    void *data[12];
    int64_t bytes[12];
    int count = gantl__train_arrays(t, data, bytes);
    gantl_status s = GANTL_OK;
    for (int i = 0; i < count && s == GANTL_OK; i++) s = gantl_comm_broadcast(comm, data[i], bytes[i], 0);
    gantl__train_scalars v;
    gantl__train_scalars_get(t, &v);
    if (s == GANTL_OK) s = gantl_comm_broadcast(comm, &v, (int64_t)sizeof v, 0);
    if (s != GANTL_OK) return s;
    t->opt_g.step = v.adam_g_step, t->opt_d.step = v.adam_d_step, t->cur_nimg = v.cur_nimg, t->batch_idx = v.batch_idx;
    t->augment.sign_count = v.sign_count, t->rng.seed = v.rng_seed, t->rng.offset = v.rng_offset;
    t->augment.sign_sum = v.sign_sum, t->pl_mean = v.pl_mean, t->augment.p = v.augment_p;
    return GANTL_OK;
}

/* FNV-1a, 64 bits */
static uint64_t gantl__fnv1a(uint64_t h, const void *data, int64_t bytes) {
    const unsigned char *p = (const unsigned char *)data;
    for (int64_t i = 0; i < bytes; i++) h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

GANTLDEF gantl_status gantl_trainer_check_replicas(gantl_trainer *t) {
    if (t->comm.size == 1) return GANTL_OK;
    void *data[12];
    int64_t bytes[12];
    int count = gantl__train_arrays(t, data, bytes);
    uint64_t h = 0xcbf29ce484222325ull, h0;
    for (int i = 0; i < count; i++) h = gantl__fnv1a(h, data[i], bytes[i]);
    gantl__train_scalars v;
    gantl__train_scalars_get(t, &v);
    h = h0 = gantl__fnv1a(h, &v, (int64_t)sizeof v);
    gantl_status s = gantl_comm_broadcast(&t->comm, &h0, (int64_t)sizeof h0, 0);
    double differ = h != h0;
    if (s == GANTL_OK) s = gantl_comm_allreduce_f64(&t->comm, &differ, 1);
    if (s != GANTL_OK) return s;
    if (differ > 0)
        return gantl__fail(GANTL_ERR_COMM, "replicas differ: the training state of %g of %d ranks is not rank 0's%s",
                           differ, t->comm.size, h != h0 ? " (this rank's among them)" : "");
    return GANTL_OK;
}

/* ---- snapshots ---- */

GANTLDEF gantl_status gantl_trainer_write(const gantl_trainer *t, gantl_st_writer *w) {
    char json[2048], train[1024];
    gantl_status s;
    gantl_g_config_to_json(&t->G.cfg, json, sizeof json);
    if ((s = gantl_st_writer_meta(w, "gantl.G", json)) != GANTL_OK) return s;
    gantl_d_config_to_json(&t->D.cfg, json, sizeof json);
    if ((s = gantl_st_writer_meta(w, "gantl.D", json)) != GANTL_OK) return s;
    gantl_train_config_to_json(&t->cfg, train, sizeof train);
    snprintf(json, sizeof json,
             "{\"config\": %s, \"cur_nimg\": %lld, \"batch_idx\": %lld, \"adam_g_step\": %lld, \"adam_d_step\": %lld, "
             "\"rng_seed\": \"%llu\", \"rng_offset\": \"%llu\", \"ada_sign_sum\": %.17g, \"ada_sign_count\": %lld}",
             train, (long long)t->cur_nimg, (long long)t->batch_idx, (long long)t->opt_g.step, (long long)t->opt_d.step,
             (unsigned long long)t->rng.seed, (unsigned long long)t->rng.offset, t->augment.sign_sum,
             (long long)t->augment.sign_count);
    if ((s = gantl_st_writer_meta(w, "gantl.train", json)) != GANTL_OK) return s;
    if ((s = gantl_generator_write(&t->G, w, "G.")) != GANTL_OK) return s;
    if ((s = gantl_discriminator_write(&t->D, w, "D.")) != GANTL_OK) return s;
    if ((s = gantl_generator_write(&t->G_ema, w, "G_ema.")) != GANTL_OK) return s;
    int64_t ng = t->opt_g.numel, nd = t->opt_d.numel;
    if ((s = gantl_st_writer_add(w, "train.adam_G.m", GANTL_F32, 1, &ng, t->opt_g.m)) != GANTL_OK) return s;
    if ((s = gantl_st_writer_add(w, "train.adam_G.v", GANTL_F32, 1, &ng, t->opt_g.v)) != GANTL_OK) return s;
    if ((s = gantl_st_writer_add(w, "train.adam_D.m", GANTL_F32, 1, &nd, t->opt_d.m)) != GANTL_OK) return s;
    if ((s = gantl_st_writer_add(w, "train.adam_D.v", GANTL_F32, 1, &nd, t->opt_d.v)) != GANTL_OK) return s;
    int64_t cg = t->opt_g.count, cd = t->opt_d.count;
    if ((s = gantl_st_writer_add(w, "train.adam_G.steps", GANTL_I64, 1, &cg, t->opt_g.steps)) != GANTL_OK) return s;
    if ((s = gantl_st_writer_add(w, "train.adam_D.steps", GANTL_I64, 1, &cd, t->opt_d.steps)) != GANTL_OK) return s;
    if ((s = gantl_st_writer_add(w, "train.pl_mean", GANTL_F32, 0, NULL, &t->pl_mean)) != GANTL_OK) return s;
    return gantl_st_writer_add(w, "train.augment_p", GANTL_F32, 0, NULL, &t->augment.p);
}

/* An I64 tensor of exactly n values. */
static gantl_status gantl__st_read_i64(const gantl_st_file *f, const char *name, int64_t *out, int64_t n) {
    const gantl_st_tensor *t = gantl_st_find(f, name);
    if (!t || t->dtype != GANTL_I64 || t->numel != n)
        return gantl__fail(GANTL_ERR_INVALID, "snapshot: '%s' is missing or not %lld int64 values", name, (long long)n);
    for (int64_t i = 0; i < n; i++) out[i] = (int64_t)gantl__load_le(t->bytes + 8 * i, 8);
    return GANTL_OK;
}

/* A non-negative integer from a JSON number or a decimal string (64-bit values). */
static int gantl__json_u64(const gantl_json *v, uint64_t *out) {
    if (v && v->type == GANTL_JSON_NUMBER && v->number >= 0 && v->number == floor(v->number)) {
        *out = (uint64_t)v->number;
        return 1;
    }
    if (!v || v->type != GANTL_JSON_STRING || !v->string[0]) return 0;
    uint64_t x = 0;
    for (const char *p = v->string; *p; p++) {
        if (*p < '0' || *p > '9' || x > (UINT64_MAX - 9) / 10) return 0;
        x = x * 10 + (uint64_t)(*p - '0');
    }
    *out = x;
    return 1;
}

GANTLDEF gantl_status gantl_trainer_from_snapshot(gantl_trainer *t, const gantl_st_file *f) {
    const char *gj = gantl_st_meta(f, "gantl.G"), *dj = gantl_st_meta(f, "gantl.D"), *tj = gantl_st_meta(f, "gantl.train");
    gantl_g_config g;
    gantl_d_config d;
    gantl_train_config cfg;
    gantl_json j;
    memset(t, 0, sizeof *t);
    if (!gj || !dj || !tj)
        return gantl__fail(GANTL_ERR_INVALID, "snapshot lacks %s metadata: not a training snapshot",
                           !gj ? "gantl.G" : !dj ? "gantl.D" : "gantl.train");
    gantl_status s = gantl_g_config_from_json(&g, gj);
    if (s == GANTL_OK) s = gantl_d_config_from_json(&d, dj);
    if (s != GANTL_OK) return s;
    if ((s = gantl_json_parse(&j, tj, strlen(tj))) != GANTL_OK) return s;
    const gantl_json *config = gantl_json_get(&j, "config");
    uint64_t nimg, batch_idx, gstep, dstep, seed, offset, count;
    const gantl_json *sum = gantl_json_get(&j, "ada_sign_sum");
    if (!config || config->type != GANTL_JSON_OBJECT || !gantl__json_u64(gantl_json_get(&j, "cur_nimg"), &nimg) ||
        !gantl__json_u64(gantl_json_get(&j, "batch_idx"), &batch_idx) ||
        !gantl__json_u64(gantl_json_get(&j, "adam_g_step"), &gstep) ||
        !gantl__json_u64(gantl_json_get(&j, "adam_d_step"), &dstep) ||
        !gantl__json_u64(gantl_json_get(&j, "rng_seed"), &seed) || !gantl__json_u64(gantl_json_get(&j, "rng_offset"), &offset) ||
        !gantl__json_u64(gantl_json_get(&j, "ada_sign_count"), &count) || !sum || sum->type != GANTL_JSON_NUMBER) {
        gantl_json_free(&j);
        return gantl__fail(GANTL_ERR_FORMAT, "snapshot: gantl.train metadata is incomplete");
    }
    /* the config object back to text for the parser */
    const char *start = strstr(tj, "\"config\"");
    const char *open = start ? strchr(start, '{') : NULL;
    const char *close = open ? strchr(open, '}') : NULL; /* the config holds no nested objects */
    char text[2048];
    if (!close || (size_t)(close - open + 1) >= sizeof text) s = gantl__fail(GANTL_ERR_FORMAT, "snapshot: bad training config");
    else {
        memcpy(text, open, (size_t)(close - open + 1));
        text[close - open + 1] = 0;
        s = gantl_train_config_from_json(&cfg, text);
    }
    double sign_sum = sum->number;
    gantl_json_free(&j);
    if (s == GANTL_OK) s = gantl_trainer_init(t, &g, &d, &cfg, 0);
    if (s != GANTL_OK) return s;
    s = gantl_generator_load(&t->G, f, "G.");
    if (s == GANTL_OK) s = gantl_discriminator_load(&t->D, f, "D.");
    if (s == GANTL_OK) s = gantl_generator_load(&t->G_ema, f, "G_ema.");
    if (s == GANTL_OK) s = gantl_st_read_f32(f, "train.adam_G.m", t->opt_g.m, t->opt_g.numel, 1, &t->opt_g.numel);
    if (s == GANTL_OK) s = gantl_st_read_f32(f, "train.adam_G.v", t->opt_g.v, t->opt_g.numel, 1, &t->opt_g.numel);
    if (s == GANTL_OK) s = gantl_st_read_f32(f, "train.adam_D.m", t->opt_d.m, t->opt_d.numel, 1, &t->opt_d.numel);
    if (s == GANTL_OK) s = gantl_st_read_f32(f, "train.adam_D.v", t->opt_d.v, t->opt_d.numel, 1, &t->opt_d.numel);
    if (s == GANTL_OK) s = gantl__st_read_i64(f, "train.adam_G.steps", t->opt_g.steps, t->opt_g.count);
    if (s == GANTL_OK) s = gantl__st_read_i64(f, "train.adam_D.steps", t->opt_d.steps, t->opt_d.count);
    if (s == GANTL_OK) s = gantl_st_read_f32(f, "train.pl_mean", &t->pl_mean, 1, 0, NULL);
    if (s == GANTL_OK) s = gantl_st_read_f32(f, "train.augment_p", &t->augment.p, 1, 0, NULL);
    if (s != GANTL_OK) {
        gantl_trainer_free(t);
        return s;
    }
    t->cur_nimg = (int64_t)nimg, t->batch_idx = (int64_t)batch_idx;
    t->opt_g.step = (int64_t)gstep, t->opt_d.step = (int64_t)dstep;
    t->rng.seed = seed, t->rng.offset = offset;
    t->augment.sign_sum = sign_sum, t->augment.sign_count = (int64_t)count;
    return GANTL_OK;
}

/* ---------------------------------------------------------------------------------------
   13. Datasets
   ------------------------------------------------------------------------------------- */

#ifdef __cplusplus
}
#endif
#if defined(_WIN32)
#include <io.h>
#endif
#include <sys/stat.h>
#if !defined(_WIN32)
#include <dirent.h>
#endif
#ifdef __cplusplus
extern "C" {
#endif

#ifndef GANTL_FASHION_MNIST_DIR
#define GANTL_FASHION_MNIST_DIR "/usr/share/datasets/fashion-mnist"
#endif
#define GANTL__NEED_STBI "#include <stb/stb_image.h> before the gantl implementation (Debian: libstb-dev)"

GANTLDEF void gantl_dataset_options_default(gantl_dataset_options *o) { memset(o, 0, sizeof *o); }

GANTLDEF void gantl_dataset_free(gantl_dataset *ds) {
    if (!ds) return;
    GANTL_FREE(ds->images);
    GANTL_FREE(ds->labels);
    memset(ds, 0, sizeof *ds);
}

static uint32_t gantl__be32(const unsigned char *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static int gantl__is_pow2(int64_t v) { return v > 0 && (v & (v - 1)) == 0; }

static int gantl__next_pow2(int v) {
    int p = 1;
    while (p < v) p *= 2;
    return p;
}

static int gantl__path_kind(const char *path) { /* 0 missing, 1 file, 2 folder */
    struct stat st;
    if (stat(path, &st) != 0) return 0;
#ifdef S_ISDIR
    return S_ISDIR(st.st_mode) ? 2 : 1;
#else
    return (st.st_mode & _S_IFMT) == _S_IFDIR ? 2 : 1;
#endif
}

static char *gantl__path_join(const char *a, const char *b) {
    size_t na = strlen(a), nb = strlen(b);
    char *p = (char *)GANTL_MALLOC(na + nb + 2);
    if (!p) return NULL;
    memcpy(p, a, na);
    p[na] = '/';
    memcpy(p + na + 1, b, nb + 1);
    if (!na) memmove(p, p + 1, nb + 1);
    else if (!nb) p[na] = 0;
    return p;
}

/* Prefixes the current error message with "what: ". */
static gantl_status gantl__fail_prefix(gantl_status s, const char *what) {
    char message[sizeof gantl__error_message];
    snprintf(message, sizeof message, "%s", gantl__error_message);
    if (strstr(message, what) == message) return s; /* already names it */
    return gantl__fail(s, "%s: %s", what, message);
}

/* ---- gzip (RFC 1952) through stb_image's inflate ---- */

#if defined(STBI_INCLUDE_STB_IMAGE_H) && !defined(STBI_NO_ZLIB)
#define GANTL__HAVE_GUNZIP 1
/* CRC-32 (the gzip / zlib / PNG one), slicing by 8 bytes. */
static uint32_t gantl__crc32(uint32_t crc, const unsigned char *p, size_t n) {
    uint32_t t[8][256];
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = (c & 1u) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        t[0][i] = c;
    }
    for (int k = 1; k < 8; k++)
        for (int i = 0; i < 256; i++) t[k][i] = (t[k - 1][i] >> 8) ^ t[0][t[k - 1][i] & 0xffu];
    crc = ~crc;
    for (; n >= 8; p += 8, n -= 8) {
        uint32_t a = crc ^ (uint32_t)gantl__load_le(p, 4), b = (uint32_t)gantl__load_le(p + 4, 4);
        crc = t[7][a & 0xffu] ^ t[6][(a >> 8) & 0xffu] ^ t[5][(a >> 16) & 0xffu] ^ t[4][a >> 24] ^ t[3][b & 0xffu] ^
              t[2][(b >> 8) & 0xffu] ^ t[1][(b >> 16) & 0xffu] ^ t[0][b >> 24];
    }
    for (; n; p++, n--) crc = t[0][(crc ^ *p) & 0xffu] ^ (crc >> 8);
    return ~crc;
}
#endif

/* Inflates the single-member gzip file image in (named path in messages) into a
   GANTL_MALLOC'd buffer, checking the header, the CRC-32 and the length. */
static gantl_status gantl__gunzip(const unsigned char *in, size_t size, unsigned char **out, size_t *out_size,
                                  const char *path) {
    *out = NULL;
    *out_size = 0;
#ifndef GANTL__HAVE_GUNZIP
    (void)in, (void)size;
    return gantl__fail(GANTL_ERR_UNSUPPORTED, "'%s' is gzipped: inflating it needs stb_image: " GANTL__NEED_STBI, path);
#else
    size_t p = 10;
    if (size < 2 || in[0] != 0x1f || in[1] != 0x8b) return gantl__fail(GANTL_ERR_FORMAT, "'%s' is not a gzip file", path);
    if (size < 18) return gantl__fail(GANTL_ERR_FORMAT, "'%s': gzip file of %zu bytes is truncated", path, size);
    if (in[2] != 8) return gantl__fail(GANTL_ERR_FORMAT, "'%s': gzip compression method %d is not deflate", path, in[2]);
    int flags = in[3];
    if (flags & 0xe0) return gantl__fail(GANTL_ERR_FORMAT, "'%s': reserved gzip flags 0x%02x are set", path, flags);
    if (flags & 4) { /* FEXTRA */
        size_t xlen = (size_t)in[p] | (size_t)in[p + 1] << 8;
        p += 2;
        if (xlen > size - p) return gantl__fail(GANTL_ERR_FORMAT, "'%s': gzip extra field runs past the end (truncated?)", path);
        p += xlen;
    }
    for (int field = 8; field <= 16; field *= 2) { /* FNAME, FCOMMENT: zero-terminated */
        if (!(flags & field)) continue;
        while (p < size && in[p]) p++;
        if (p >= size) return gantl__fail(GANTL_ERR_FORMAT, "'%s': gzip %s runs past the end (truncated?)", path,
                                          field == 8 ? "file name" : "comment");
        p++;
    }
    if (flags & 2) { /* FHCRC: the low 16 bits of the header's CRC-32 */
        if (size - p < 2) return gantl__fail(GANTL_ERR_FORMAT, "'%s': gzip header truncated", path);
        unsigned want = (unsigned)in[p] | (unsigned)in[p + 1] << 8, have = gantl__crc32(0, in, p) & 0xffffu;
        if (want != have)
            return gantl__fail(GANTL_ERR_FORMAT, "'%s': gzip header CRC mismatch (0x%04x, the header says 0x%04x)", path, have,
                               want);
        p += 2;
    }
    if (size - p < 8) return gantl__fail(GANTL_ERR_FORMAT, "'%s': gzip file truncated (no room for the trailer)", path);
    size_t deflated = size - p - 8;
    uint32_t crc = (uint32_t)gantl__load_le(in + size - 8, 4), isize = (uint32_t)gantl__load_le(in + size - 4, 4);
    if ((double)isize > 1040.0 * (double)deflated + 1024.0) /* deflate cannot compress more than 1032:1 */
        return gantl__fail(GANTL_ERR_FORMAT, "'%s': the gzip trailer claims %u bytes from %zu compressed: truncated or corrupt",
                           path, isize, deflated);
    if (deflated > 0x7ffffff0 || isize > 0x7fffffff)
        return gantl__fail(GANTL_ERR_UNSUPPORTED, "'%s': gzip data over 2 GiB is not supported", path);
    unsigned char *buf = (unsigned char *)GANTL_MALLOC(isize ? isize : 1);
    if (!buf) return gantl__fail(GANTL_ERR_NOMEM, "out of memory inflating '%s' (%u bytes)", path, isize);
    /* The trailer is passed along: the decoder stops after the last block and ignores it,
       and stb_image 2.27 (Debian 12) fails on a stream that ends with less than 16 bits
       left to read, which a bare deflate stream often does. */
    int got = stbi_zlib_decode_noheader_buffer((char *)buf, (int)isize, (const char *)in + p, (int)(deflated + 8));
    if (got < 0 || (uint32_t)got != isize) {
        GANTL_FREE(buf);
        if (got < 0)
            return gantl__fail(GANTL_ERR_FORMAT, "'%s': corrupt or truncated gzip data (or more than the %u bytes the trailer says)",
                               path, isize);
        return gantl__fail(GANTL_ERR_FORMAT, "'%s': gzip data inflates to %d bytes, the trailer says %u: truncated or corrupt",
                           path, got, isize);
    }
    uint32_t have = gantl__crc32(0, buf, isize);
    if (have != crc) {
        GANTL_FREE(buf);
        return gantl__fail(GANTL_ERR_FORMAT, "'%s': CRC-32 mismatch (0x%08x, the gzip trailer says 0x%08x): the file is corrupt",
                           path, (unsigned)have, (unsigned)crc);
    }
    *out = buf;
    *out_size = isize;
    return GANTL_OK;
#endif
}

/* ---- IDX files (MNIST's format): magic 0x800 | ndim, big-endian uint32 sizes, uint8 data ---- */

static gantl_status gantl__idx_parse(const unsigned char *b, size_t size, int ndim, int64_t *dims, const char *path) {
    size_t header = 4 + 4 * (size_t)ndim;
    if (size < header) return gantl__fail(GANTL_ERR_FORMAT, "'%s': %zu bytes is too short for an IDX file (truncated?)", path, size);
    uint32_t magic = gantl__be32(b), want = 0x800u | (uint32_t)ndim;
    if (magic != want)
        return gantl__fail(GANTL_ERR_FORMAT, "'%s': IDX magic number 0x%x, expected 0x%x (unsigned bytes, %d dimension%s)", path,
                           (unsigned)magic, (unsigned)want, ndim, ndim > 1 ? "s" : "");
    uint64_t total = 1, have = size - header;
    for (int d = 0; d < ndim; d++) {
        dims[d] = gantl__be32(b + 4 + 4 * d);
        if (dims[d] && total > have / (uint64_t)dims[d]) total = have + 1; /* more than the file holds */
        else total *= (uint64_t)dims[d];
    }
    if (total > have)
        return gantl__fail(GANTL_ERR_FORMAT, "'%s': truncated: the IDX header needs more data than the %llu bytes there", path,
                           (unsigned long long)have);
    if (total < have)
        return gantl__fail(GANTL_ERR_FORMAT, "'%s': %llu bytes after the IDX data (wrong sizes in the header?)", path,
                           (unsigned long long)(have - total));
    return GANTL_OK;
}

/* Reads an IDX file, gzipped (by its magic bytes) or not; *data points into *file. */
static gantl_status gantl__idx_load(const char *path, int ndim, int64_t *dims, unsigned char **file, const unsigned char **data) {
    size_t size;
    *data = NULL;
    gantl_status s = gantl_read_file(path, file, &size);
    if (s != GANTL_OK) return s;
    if (size >= 2 && (*file)[0] == 0x1f && (*file)[1] == 0x8b) {
        unsigned char *raw;
        s = gantl__gunzip(*file, size, &raw, &size, path);
        GANTL_FREE(*file);
        *file = raw;
        if (s != GANTL_OK) return s;
    }
    s = gantl__idx_parse(*file, size, ndim, dims, path);
    if (s != GANTL_OK) {
        GANTL_FREE(*file);
        *file = NULL;
        return s;
    }
    *data = *file + 4 + 4 * ndim;
    return GANTL_OK;
}

/* ---- building a dataset: geometry, channels, subset ---- */

typedef struct gantl__ds_build {
    const gantl_dataset_options *o;
    int R, C;             /* output resolution and channels */
    int w0, h0;           /* the first image's size */
    const char *first;    /* the first image, for messages */
    int64_t image_bytes;  /* C * R * R */
    unsigned char *images;
} gantl__ds_build;

/* Output size and channels from the first image. */
static gantl_status gantl__ds_setup(gantl__ds_build *b, int w, int h, int comps, const char *what) {
    const char *kind = comps == 2 ? "grey + alpha" : comps == 4 ? "RGBA" : "";
    if (b->o->channels) b->C = b->o->channels;
    else if (comps == 1 || comps == 3) b->C = comps;
    else
        return gantl__fail(GANTL_ERR_INVALID, "%s has %d channels (%s): images must be grey or RGB, or ask for channels 1 or 3 "
                           "to convert them (the alpha channel is dropped)", what, comps, kind);
    if (w < 1 || h < 1 || w > (1 << 24) || h > (1 << 24))
        return gantl__fail(GANTL_ERR_INVALID, "%s: image size %dx%d", what, w, h);
    b->R = b->o->resolution ? b->o->resolution : gantl__next_pow2(w > h ? w : h);
    b->w0 = w, b->h0 = h, b->first = what;
    b->image_bytes = (int64_t)b->C * b->R * b->R;
    return GANTL_OK;
}

/* ITU-R 601 luma exactly as PIL's convert('L'). */
static unsigned char gantl__luma(unsigned r, unsigned g, unsigned b) {
    return (unsigned char)((r * 19595u + g * 38470u + b * 7471u + 0x8000u) >> 16);
}

/* Copies the region (x0, y0, cw, ch) of an image with comps channels at byte strides
   sx, sy, sc into C planes at dst (row stride dst_row, plane stride dst_plane). */
static void gantl__ds_gather(const unsigned char *px, int comps, int64_t sx, int64_t sy, int64_t sc, int x0, int y0, int cw,
                             int ch, int C, unsigned char *dst, int64_t dst_row, int64_t dst_plane) {
    for (int y = 0; y < ch; y++) {
        const unsigned char *row = px + (int64_t)(y0 + y) * sy + (int64_t)x0 * sx;
        unsigned char *d = dst + (int64_t)y * dst_row;
        for (int x = 0; x < cw; x++) {
            const unsigned char *p = row + (int64_t)x * sx;
            if (C == 1) d[x] = comps >= 3 ? gantl__luma(p[0], p[sc], p[2 * sc]) : p[0];
            else if (comps >= 3) d[x] = p[0], d[x + dst_plane] = p[sc], d[x + 2 * dst_plane] = p[2 * sc];
            else d[x] = d[x + dst_plane] = d[x + 2 * dst_plane] = p[0];
        }
    }
}

/* Converts one image into out (C, R, R); what names it in messages. */
static gantl_status gantl__ds_place(const gantl__ds_build *b, const unsigned char *px, int w, int h, int comps, int64_t sx,
                                    int64_t sy, int64_t sc, unsigned char *out, const char *what) {
    int R = b->R, C = b->C;
    if (!b->o->channels && comps != C)
        return gantl__fail(GANTL_ERR_INVALID, "%s has %d channel%s, the first image %s has %d: ask for channels 1 or 3 to "
                           "convert them", what, comps, comps > 1 ? "s" : "", b->first, C);
    if (!b->o->resolution && (w != b->w0 || h != b->h0))
        return gantl__fail(GANTL_ERR_INVALID, "%s is %dx%d, the first image %s is %dx%d: ask for a resolution to resize "
                           "them all", what, w, h, b->first, b->w0, b->h0);
    int pad = !b->o->resolution || gantl__next_pow2(w > h ? w : h) == R;
    int s = w < h ? w : h, x0 = pad ? 0 : (w - s) / 2, y0 = pad ? 0 : (h - s) / 2, cw = pad ? w : s, ch = pad ? h : s;
    int64_t plane = (int64_t)R * R;
    if (pad || s == R) {
        int ox = (R - cw) / 2, oy = (R - ch) / 2;
        if (cw != R || ch != R) memset(out, 0, (size_t)b->image_bytes);
        gantl__ds_gather(px, comps, sx, sy, sc, x0, y0, cw, ch, C, out + (int64_t)oy * R + ox, R, plane);
        return GANTL_OK;
    }
#ifdef STBIR_INCLUDE_STB_IMAGE_RESIZE_H
    unsigned char *tmp = (unsigned char *)GANTL_MALLOC((size_t)C * (size_t)s * (size_t)s);
    if (!tmp) return gantl__fail(GANTL_ERR_NOMEM, "out of memory resizing %s", what);
    gantl__ds_gather(px, comps, sx, sy, sc, x0, y0, s, s, C, tmp, s, (int64_t)s * s);
    int ok = 1;
    for (int c = 0; c < C && ok; c++)
        ok = stbir_resize_uint8_generic(tmp + (size_t)c * s * s, s, s, s, out + c * plane, R, R, R, 1, STBIR_ALPHA_CHANNEL_NONE,
                                        0, STBIR_EDGE_CLAMP, STBIR_FILTER_BOX, STBIR_COLORSPACE_LINEAR, NULL);
    GANTL_FREE(tmp);
    return ok ? GANTL_OK : gantl__fail(GANTL_ERR_NOMEM, "out of memory resizing %s", what);
#else
    return gantl__fail(GANTL_ERR_UNSUPPORTED, "%s (%dx%d) would need resizing to %dx%d: #include <stb/stb_image_resize.h> "
                       "before the gantl implementation, or use resolution 0 (padding)", what, w, h, R, R);
#endif
}

static int gantl__cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* The items kept out of total: all, or o->max_images of them as the official dataset's
   max_size: numpy.random.RandomState(seed).shuffle(arange(total))[:max], sorted. */
static gantl_status gantl__ds_select(const gantl_dataset_options *o, int64_t total, int64_t **sel, int64_t *n) {
    int subset = o->max_images > 0 && o->max_images < total;
    if (subset && (o->seed > 0xffffffffu || total > (int64_t)0xffffffff))
        return gantl__fail(GANTL_ERR_INVALID, "dataset: max_images needs a seed below 2^32 (as numpy's RandomState) and fewer "
                           "than 2^32 images (seed %llu)", (unsigned long long)o->seed);
    *sel = (int64_t *)GANTL_MALLOC((size_t)total * sizeof(int64_t));
    if (!*sel) return gantl__fail(GANTL_ERR_NOMEM, "dataset: out of memory for %lld indices", (long long)total);
    for (int64_t i = 0; i < total; i++) (*sel)[i] = i;
    *n = total;
    if (!subset) return GANTL_OK;
    gantl__mt19937 mt;
    gantl__mt_seed(&mt, (uint32_t)o->seed);
    for (int64_t i = total - 1; i > 0; i--) { /* numpy's _shuffle_raw with random_interval(i) */
        uint32_t mask = (uint32_t)i, j;
        mask |= mask >> 1, mask |= mask >> 2, mask |= mask >> 4, mask |= mask >> 8, mask |= mask >> 16;
        do j = gantl__mt_next(&mt) & mask;
        while (j > (uint32_t)i);
        int64_t t = (*sel)[i];
        (*sel)[i] = (*sel)[j];
        (*sel)[j] = t;
    }
    qsort(*sel, (size_t)o->max_images, sizeof(int64_t), gantl__cmp_i64);
    *n = o->max_images;
    return GANTL_OK;
}

/* Converts item i of n into its slot of b->images. */
typedef gantl_status (*gantl__ds_item_fn)(const gantl__ds_build *b, void *user, int64_t i, unsigned char *out);

/* Runs fn over n items on all threads; the error reported is the one of the first
   failing item, as a serial loop would. */
static gantl_status gantl__ds_run(const gantl__ds_build *b, int64_t n, gantl__ds_item_fn fn, void *user) {
    int64_t first_bad = n;
    gantl_status bad_status = GANTL_OK;
    char bad_message[sizeof gantl__error_message];
    bad_message[0] = 0;
    GANTL__OMP(parallel for schedule(dynamic, 16) if (n > 16))
    for (int64_t i = 0; i < n; i++) {
        int64_t seen;
        GANTL__OMP(atomic read)
        seen = first_bad;
        if (i > seen) continue;
        gantl_status s = fn(b, user, i, b->images + i * b->image_bytes);
        if (s != GANTL_OK) {
            GANTL__OMP(critical(gantl__ds_run))
            {
                if (i < first_bad) {
                    GANTL__OMP(atomic write)
                    first_bad = i;
                    bad_status = s;
                    snprintf(bad_message, sizeof bad_message, "%s", gantl__error_message);
                }
            }
        }
    }
    return bad_status == GANTL_OK ? GANTL_OK : gantl__fail(bad_status, "%s", bad_message);
}

static gantl_status gantl__ds_alloc(gantl_dataset *ds, gantl__ds_build *b, int64_t n, int labelled, const char *source) {
    double bytes = (double)n * (double)b->image_bytes;
    if (bytes > 4.0e18 || bytes > (double)(size_t)-1 / 2)
        return gantl__fail(GANTL_ERR_NOMEM, "%s: %lld images of %dx%dx%d is too much memory", source, (long long)n, b->C, b->R, b->R);
    b->images = ds->images = (unsigned char *)GANTL_MALLOC((size_t)bytes ? (size_t)bytes : 1);
    if (labelled) ds->labels = (int32_t *)GANTL_MALLOC((size_t)n * sizeof(int32_t));
    if (!ds->images || (labelled && !ds->labels))
        return gantl__fail(GANTL_ERR_NOMEM, "%s: out of memory for %lld images of %dx%dx%d (%.0f MB)", source, (long long)n, b->C,
                           b->R, b->R, bytes / 1e6);
    ds->count = n, ds->channels = b->C, ds->resolution = b->R;
    return GANTL_OK;
}

/* ds->name: "<source> res=R ch=C[ max=N seed=S]", the source shortened from the left if long. */
static void gantl__ds_name(gantl_dataset *ds, const char *source, int64_t total, const gantl_dataset_options *o) {
    char suffix[96];
    int k = snprintf(suffix, sizeof suffix, " res=%d ch=%d", ds->resolution, ds->channels);
    if (ds->count < total)
        snprintf(suffix + k, sizeof suffix - (size_t)k, " max=%lld seed=%llu", (long long)o->max_images, (unsigned long long)o->seed);
    size_t tail = strlen(suffix), room = sizeof ds->name - 1 - tail, len = strlen(source);
    size_t skip = len > room ? len - (room - 3) : 0;
    char *p = ds->name;
    if (skip) memcpy(p, "...", 3), p += 3;
    memcpy(p, source + skip, len - skip);
    memcpy(p + len - skip, suffix, tail + 1);
}

/* ---- in-memory sources: .npy, IDX, Fashion-MNIST ---- */

typedef struct gantl__ds_mem {
    const unsigned char *data;
    int64_t stride;           /* bytes from one image to the next */
    int w, h, comps;
    int64_t sx, sy, sc;       /* byte strides of x, y and channel */
    const int64_t *sel;       /* output image -> source image */
    const char *path;
} gantl__ds_mem;

static gantl_status gantl__ds_mem_item(const gantl__ds_build *b, void *user, int64_t i, unsigned char *out) {
    const gantl__ds_mem *m = (const gantl__ds_mem *)user;
    char what[64 + 512];
    snprintf(what, sizeof what, "image %lld of '%.500s'", (long long)m->sel[i], m->path);
    return gantl__ds_place(b, m->data + m->sel[i] * m->stride, m->w, m->h, m->comps, m->sx, m->sy, m->sc, out, what);
}

/* Builds ds from total in-memory images; item_labels (total,) or NULL; map (total,) maps
   items to source images (NULL: the same). */
static gantl_status gantl__ds_from_mem(gantl_dataset *ds, const gantl_dataset_options *o, gantl__ds_mem *m, int64_t total,
                                       const int64_t *map, const int32_t *item_labels, int num_classes, const char *source) {
    gantl__ds_build b;
    int64_t *sel = NULL, n = 0;
    char first[64 + 512];
    memset(&b, 0, sizeof b);
    b.o = o;
    if (total == 0) return gantl__fail(GANTL_ERR_INVALID, "%s: no images (empty dataset)", source);
    gantl_status s = gantl__ds_select(o, total, &sel, &n);
    if (s == GANTL_OK) {
        snprintf(first, sizeof first, "image %lld of '%.500s'", (long long)(map ? map[sel[0]] : sel[0]), m->path);
        s = gantl__ds_setup(&b, m->w, m->h, m->comps, first);
    }
    if (s == GANTL_OK) s = gantl__ds_alloc(ds, &b, n, item_labels != NULL, source);
    if (s == GANTL_OK) {
        for (int64_t i = 0; i < n; i++) {
            if (item_labels) ds->labels[i] = item_labels[sel[i]];
            if (map) sel[i] = map[sel[i]];
        }
        ds->num_classes = item_labels ? num_classes : 0;
        m->sel = sel;
        s = gantl__ds_run(&b, n, gantl__ds_mem_item, m);
    }
    if (s == GANTL_OK) gantl__ds_name(ds, source, total, o);
    GANTL_FREE(sel);
    return s;
}

/* Integer class labels (N,) from a .npy array. */
static gantl_status gantl__ds_npy_labels(const gantl_npy *a, int64_t count, int32_t **labels, int *num_classes, const char *path) {
    gantl_dtype t = a->dtype;
    if (a->ndim != 1 || a->shape[0] != count || !(t == GANTL_I64 || t == GANTL_I32 || t == GANTL_I16 || t == GANTL_I8 || t == GANTL_U8))
        return gantl__fail(GANTL_ERR_FORMAT, "'%s': labels must be integers of shape (%lld,), one class per image (dtype %s, %d-D)",
                           path, (long long)count, gantl_dtype_name(t), a->ndim);
    size_t size = gantl_dtype_size(t);
    *labels = (int32_t *)GANTL_MALLOC((size_t)(count ? count : 1) * sizeof(int32_t));
    if (!*labels) return gantl__fail(GANTL_ERR_NOMEM, "'%s': out of memory", path);
    int64_t most = -1;
    for (int64_t i = 0; i < count; i++) {
        uint64_t u = gantl__load_le(a->data + (size_t)i * size, (int)size);
        int64_t v = t == GANTL_U8 ? (int64_t)u : size == 8 ? (int64_t)u : size == 4 ? (int64_t)(int32_t)(uint32_t)u
                  : size == 2 ? (int64_t)(int16_t)(uint16_t)u : (int64_t)(int8_t)(uint8_t)u;
        if (v < 0 || v > 0x7fffffff) {
            GANTL_FREE(*labels);
            *labels = NULL;
            return gantl__fail(GANTL_ERR_FORMAT, "'%s': label %lld of image %lld is not a class index", path, (long long)v, (long long)i);
        }
        (*labels)[i] = (int32_t)v;
        if (v > most) most = v;
    }
    *num_classes = (int)(most + 1);
    return GANTL_OK;
}

static gantl_status gantl__ds_load_npy(gantl_dataset *ds, const char *path, const gantl_dataset_options *o) {
    gantl_npy a, la;
    int32_t *labels = NULL;
    int num_classes = 0;
    gantl__ds_mem m;
    memset(&m, 0, sizeof m);
    memset(&la, 0, sizeof la);
    gantl_status s = gantl_npy_load(&a, path);
    if (s != GANTL_OK) return s;
    int64_t N = a.ndim >= 3 ? a.shape[0] : 0, H = 0, W = 0, C = 0;
    if (a.ndim == 3) H = a.shape[1], W = a.shape[2], C = 1, m.sx = 1, m.sy = W, m.sc = 0;
    else if (a.ndim == 4 && (a.shape[1] == 1 || a.shape[1] == 3))
        C = a.shape[1], H = a.shape[2], W = a.shape[3], m.sx = 1, m.sy = W, m.sc = H * W;
    else if (a.ndim == 4 && (a.shape[3] == 1 || a.shape[3] == 3))
        H = a.shape[1], W = a.shape[2], C = a.shape[3], m.sx = C, m.sy = W * C, m.sc = 1;
    if (!C) {
        char shape[160] = "(";
        for (int d = 0; d < a.ndim; d++)
            snprintf(shape + strlen(shape), sizeof shape - strlen(shape), d ? ", %lld" : "%lld", (long long)a.shape[d]);
        gantl_npy_free(&a);
        return gantl__fail(GANTL_ERR_FORMAT, "'%s' has shape %s): images must be (N, C, H, W) or (N, H, W, C) with C 1 or 3, "
                           "or (N, H, W)", path, shape);
    }
    if (H < 1 || W < 1 || H > (1 << 24) || W > (1 << 24)) {
        gantl_npy_free(&a);
        return gantl__fail(GANTL_ERR_FORMAT, "'%s': images of %lldx%lld", path, (long long)W, (long long)H);
    }
    if (a.dtype == GANTL_F32 || a.dtype == GANTL_F64 || a.dtype == GANTL_F16) {
        /* as the official generate.py: (x * 127.5 + 128).clamp(0, 255).to(uint8), in float32 */
        unsigned char *u8 = (unsigned char *)GANTL_MALLOC((size_t)(a.numel ? a.numel : 1));
        if (!u8) {
            gantl_npy_free(&a);
            return gantl__fail(GANTL_ERR_NOMEM, "'%s': out of memory", path);
        }
        size_t esize = gantl_dtype_size(a.dtype);
        float chunk[1024];
        for (int64_t i = 0; i < a.numel; i += 1024) {
            int64_t k = a.numel - i < 1024 ? a.numel - i : 1024;
            gantl__to_f32(a.dtype, a.data + (size_t)i * esize, k, chunk);
            for (int64_t j = 0; j < k; j++) {
                float x = (float)((double)chunk[j] * 127.5); /* exact product, rounded to float */
                float v = (float)((double)x + 128.0);
                u8[i + j] = !(v >= 0.0f) ? 0 : v >= 255.0f ? 255 : (unsigned char)v;
            }
        }
        GANTL_FREE(a.data);
        a.data = u8;
        a.dtype = GANTL_U8;
    }
    if (a.dtype != GANTL_U8) {
        s = gantl__fail(GANTL_ERR_UNSUPPORTED, "'%s': images must be uint8, or float in [-1, 1] (dtype %s)", path,
                        gantl_dtype_name(a.dtype));
        gantl_npy_free(&a);
        return s;
    }
    /* labels from the sibling "<name>.labels.npy" */
    size_t len = strlen(path);
    char *lpath = (char *)GANTL_MALLOC(len + 16);
    if (!lpath) {
        gantl_npy_free(&a);
        return gantl__fail(GANTL_ERR_NOMEM, "out of memory");
    }
    memcpy(lpath, path, len - 4);
    memcpy(lpath + len - 4, ".labels.npy", 12);
    if (gantl__path_kind(lpath) == 1) {
        s = gantl_npy_load(&la, lpath);
        if (s == GANTL_OK) s = gantl__ds_npy_labels(&la, N, &labels, &num_classes, lpath);
        gantl_npy_free(&la);
    }
    GANTL_FREE(lpath);
    if (s == GANTL_OK) {
        m.data = a.data, m.stride = C * H * W, m.w = (int)W, m.h = (int)H, m.comps = (int)C, m.path = path;
        s = gantl__ds_from_mem(ds, o, &m, N, NULL, labels, num_classes, path);
    }
    GANTL_FREE(labels);
    gantl_npy_free(&a);
    return s;
}

/* IDX images (N, H, W) and, when labels_path exists or required, labels (N,); classes
   keep[10] (or NULL: all) selects and re-indexes Fashion-MNIST's classes. */
static gantl_status gantl__ds_load_idx(gantl_dataset *ds, const char *images_path, const char *labels_path, int labels_required,
                                       const int *keep, int k, const char *source, const gantl_dataset_options *o) {
    unsigned char *ifile = NULL, *lfile = NULL;
    const unsigned char *idata = NULL, *ldata = NULL;
    int64_t idims[3] = {0, 0, 0}, ldims[1] = {0}, *map = NULL, total = 0;
    int32_t *labels = NULL;
    int num_classes = 0;
    gantl_status s = gantl__idx_load(images_path, 3, idims, &ifile, &idata);
    if (s == GANTL_OK && (labels_required || gantl__path_kind(labels_path) == 1)) {
        s = gantl__idx_load(labels_path, 1, ldims, &lfile, &ldata);
        if (s == GANTL_OK && ldims[0] != idims[0])
            s = gantl__fail(GANTL_ERR_FORMAT, "'%s' has %lld labels, '%s' %lld images", labels_path, (long long)ldims[0], images_path,
                            (long long)idims[0]);
    }
    if (s == GANTL_OK && (idims[1] < 1 || idims[2] < 1 || idims[1] > (1 << 24) || idims[2] > (1 << 24)))
        s = gantl__fail(GANTL_ERR_FORMAT, "'%s': images of %lldx%lld", images_path, (long long)idims[2], (long long)idims[1]);
    if (s == GANTL_OK && ldata) {
        map = (int64_t *)GANTL_MALLOC((size_t)(idims[0] ? idims[0] : 1) * sizeof(int64_t));
        labels = (int32_t *)GANTL_MALLOC((size_t)(idims[0] ? idims[0] : 1) * sizeof(int32_t));
        if (!map || !labels) s = gantl__fail(GANTL_ERR_NOMEM, "%s: out of memory", source);
    }
    if (s == GANTL_OK && ldata) {
        int classes[256];
        for (int c = 0; c < 256; c++) classes[c] = keep ? -1 : c;
        for (int j = 0; keep && j < k; j++) classes[keep[j]] = j;
        for (int64_t i = 0; i < idims[0]; i++) {
            if (keep && ldata[i] >= 10) {
                s = gantl__fail(GANTL_ERR_FORMAT, "'%s': label %d of image %lld is not a Fashion-MNIST class", labels_path, ldata[i],
                                (long long)i);
                break;
            }
            int c = classes[ldata[i]];
            if (c < 0) continue;
            map[total] = i;
            labels[total++] = c;
            if (c + 1 > num_classes) num_classes = c + 1;
        }
        if (keep) num_classes = k;
    } else total = idims[0];
    if (s == GANTL_OK) {
        gantl__ds_mem m;
        memset(&m, 0, sizeof m);
        m.data = idata, m.stride = idims[1] * idims[2], m.w = (int)idims[2], m.h = (int)idims[1], m.comps = 1;
        m.sx = 1, m.sy = idims[2], m.path = images_path;
        s = gantl__ds_from_mem(ds, o, &m, total, map, labels, num_classes, source);
    }
    GANTL_FREE(map);
    GANTL_FREE(labels);
    GANTL_FREE(ifile);
    GANTL_FREE(lfile);
    return s;
}

static const char *const gantl__fmnist_names[10] = {"tshirt", "trouser", "pullover", "dress", "coat",
                                                    "sandal", "shirt",   "sneaker",  "bag",   "ankle-boot"};

/* "fashion-mnist[:CLASSES][@train|@test]" */
static gantl_status gantl__ds_load_fmnist(gantl_dataset *ds, const char *spec, const gantl_dataset_options *o) {
    static const struct { const char *name; int index; } aliases[] = {
        {"tshirt", 0}, {"t-shirt", 0}, {"top", 0}, {"trouser", 1}, {"pullover", 2}, {"dress", 3}, {"coat", 4},
        {"sandal", 5}, {"shirt", 6}, {"sneaker", 7}, {"bag", 8}, {"ankle-boot", 9}, {"boot", 9}};
    const char *p = spec + 13, *at = strchr(p, '@');
    int keep[10], k = 0, test = 0;
    if (at) {
        if (!strcmp(at, "@test")) test = 1;
        else if (strcmp(at, "@train"))
            return gantl__fail(GANTL_ERR_INVALID, "bad dataset spec '%s': the split must be @train or @test", spec);
    }
    const char *end = at ? at : p + strlen(p);
    if (*p == ':') {
        p++;
        for (;;) {
            const char *comma = (const char *)memchr(p, ',', (size_t)(end - p)), *stop = comma ? comma : end;
            char word[32];
            while (p < stop && *p == ' ') p++;
            size_t n = (size_t)(stop - p);
            while (n && p[n - 1] == ' ') n--;
            if (!n) return gantl__fail(GANTL_ERR_INVALID, "bad dataset spec '%s': an empty class name", spec);
            int found = -1;
            if (n < sizeof word) {
                for (size_t i = 0; i < n; i++) word[i] = (char)(p[i] >= 'A' && p[i] <= 'Z' ? p[i] - 'A' + 'a' : p[i]);
                word[n] = 0;
                if (n == 1 && word[0] >= '0' && word[0] <= '9') found = word[0] - '0';
                for (size_t a = 0; a < sizeof aliases / sizeof aliases[0]; a++)
                    if (!strcmp(word, aliases[a].name)) found = aliases[a].index;
            }
            if (found < 0)
                return gantl__fail(GANTL_ERR_INVALID, "fashion-mnist: unknown class '%.*s' (classes: tshirt, trouser, pullover, dress, "
                                   "coat, sandal, shirt, sneaker, bag, ankle-boot, or 0-9)", (int)(n < 64 ? n : 64), p);
            for (int j = 0; j < k; j++)
                if (keep[j] == found)
                    return gantl__fail(GANTL_ERR_INVALID, "fashion-mnist: class '%s' is given twice", gantl__fmnist_names[found]);
            keep[k++] = found;
            if (!comma) break;
            p = comma + 1;
        }
    } else if (p != end) {
        return gantl__fail(GANTL_ERR_INVALID, "bad dataset spec '%s': expected fashion-mnist[:CLASSES][@train|@test]", spec);
    }
    int all = k == 0 || k == 10;
    for (int j = 0; j < k; j++) all &= keep[j] == j;
    char source[160] = "fashion-mnist";
    for (int j = 0; !all && j < k; j++)
        snprintf(source + strlen(source), sizeof source - strlen(source), "%s%s", j ? "," : ":", gantl__fmnist_names[keep[j]]);
    snprintf(source + strlen(source), sizeof source - strlen(source), test ? "@test" : "@train");
    const char *prefix = test ? "t10k" : "train";
    char ipath[512], lpath[512];
    snprintf(ipath, sizeof ipath, "%s/%s-images-idx3-ubyte.gz", GANTL_FASHION_MNIST_DIR, prefix);
    snprintf(lpath, sizeof lpath, "%s/%s-labels-idx1-ubyte.gz", GANTL_FASHION_MNIST_DIR, prefix);
    if (gantl__path_kind(ipath) != 1)
        return gantl__fail(GANTL_ERR_IO, "fashion-mnist: cannot find '%s' (Debian: apt-get install dataset-fashion-mnist)", ipath);
    return gantl__ds_load_idx(ds, ipath, lpath, 1, all ? NULL : keep, k, source, o);
}

/* ---- image folders (stb_image) ---- */

typedef struct gantl__strlist {
    char **items;
    int64_t count, capacity;
} gantl__strlist;

static void gantl__strlist_free(gantl__strlist *l) {
    for (int64_t i = 0; i < l->count; i++) GANTL_FREE(l->items[i]);
    GANTL_FREE(l->items);
    memset(l, 0, sizeof *l);
}

/* Appends s (taking it); 0 when out of memory (s is freed). */
static int gantl__strlist_push(gantl__strlist *l, char *s) {
    if (s && l->count == l->capacity) {
        int64_t cap = l->capacity ? 2 * l->capacity : 256;
        char **items = (char **)GANTL_REALLOC(l->items, (size_t)cap * sizeof(char *));
        if (!items) {
            GANTL_FREE(s);
            return 0;
        }
        l->items = items, l->capacity = cap;
    }
    if (s) l->items[l->count++] = s;
    return s != NULL;
}

/* 1: an image stb_image reads; 2: an image format it cannot read; 0: not an image. */
static int gantl__ds_image_kind(const char *name) {
    static const char *const ok[] = {"png", "jpg", "jpeg", "bmp", "gif", "tga", "psd", "pic", "ppm", "pgm", "pnm", "hdr"};
    static const char *const no[] = {"tif", "tiff", "webp"};
    const char *dot = strrchr(name, '.');
    char ext[8];
    size_t n = dot ? strlen(dot + 1) : 0;
    if (!dot || n == 0 || n >= sizeof ext) return 0;
    for (size_t i = 0; i <= n; i++) ext[i] = (char)(dot[1 + i] >= 'A' && dot[1 + i] <= 'Z' ? dot[1 + i] - 'A' + 'a' : dot[1 + i]);
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        if (!strcmp(ext, ok[i])) return 1;
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
        if (!strcmp(ext, no[i])) return 2;
    return 0;
}

/* Handles one entry of the folder root/rel: recurses into folders, collects images. */
static gantl_status gantl__ds_walk(const char *root, const char *rel, int depth, gantl__strlist *out);

static gantl_status gantl__ds_walk_entry(const char *root, const char *rel, const char *name, int is_dir, int depth,
                                         gantl__strlist *out) {
    if (name[0] == '.') return GANTL_OK; /* ".", "..", hidden files and folders */
    if (!is_dir && !gantl__ds_image_kind(name)) return GANTL_OK;
    char *child = gantl__path_join(rel, name);
    if (!child) return gantl__fail(GANTL_ERR_NOMEM, "out of memory listing '%s'", root);
    gantl_status s = GANTL_OK;
    if (is_dir) {
        s = depth >= 32 ? gantl__fail(GANTL_ERR_INVALID, "'%s/%s': folders nested too deep (a symbolic link loop?)", root, child)
                        : gantl__ds_walk(root, child, depth + 1, out);
        GANTL_FREE(child);
    } else if (gantl__ds_image_kind(name) == 2) {
        s = gantl__fail(GANTL_ERR_UNSUPPORTED, "'%s/%s': stb_image cannot read TIFF or WebP images (convert them to PNG)", root, child);
        GANTL_FREE(child);
    } else if (!gantl__strlist_push(out, child)) {
        s = gantl__fail(GANTL_ERR_NOMEM, "out of memory listing '%s'", root);
    }
    return s;
}

static gantl_status gantl__ds_walk(const char *root, const char *rel, int depth, gantl__strlist *out) {
    char *dir = gantl__path_join(root, rel);
    if (!dir) return gantl__fail(GANTL_ERR_NOMEM, "out of memory listing '%s'", root);
    gantl_status s = GANTL_OK;
#if defined(_WIN32)
    char *pattern = gantl__path_join(dir, "*");
    struct _finddata_t fd;
    intptr_t h = pattern ? _findfirst(pattern, &fd) : -1;
    GANTL_FREE(pattern);
    if (h == -1) s = gantl__fail(GANTL_ERR_IO, "cannot open folder '%s'", dir);
    else {
        do s = gantl__ds_walk_entry(root, rel, fd.name, (fd.attrib & _A_SUBDIR) != 0, depth, out);
        while (s == GANTL_OK && _findnext(h, &fd) == 0);
        _findclose(h);
    }
#else
    DIR *d = opendir(dir);
    if (!d) s = gantl__fail(GANTL_ERR_IO, "cannot open folder '%s'", dir);
    for (struct dirent *e; d && s == GANTL_OK && (e = readdir(d)) != NULL;) {
        if (e->d_name[0] == '.') continue;
        char *full = gantl__path_join(dir, e->d_name);
        if (!full) {
            s = gantl__fail(GANTL_ERR_NOMEM, "out of memory listing '%s'", root);
            break;
        }
        int kind = gantl__path_kind(full); /* follows symbolic links; dangling ones are skipped */
        GANTL_FREE(full);
        if (kind) s = gantl__ds_walk_entry(root, rel, e->d_name, kind == 2, depth, out);
    }
    if (d) closedir(d);
#endif
    GANTL_FREE(dir);
    return s;
}

static int gantl__cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

typedef struct gantl__ds_label {
    const char *name;
    int32_t label;
} gantl__ds_label;

static int gantl__cmp_label(const void *a, const void *b) {
    return strcmp(((const gantl__ds_label *)a)->name, ((const gantl__ds_label *)b)->name);
}

/* Labels of files (sorted relative paths) from root/dataset.json, if there; *labels stays
   NULL when there is no file or its "labels" is null. */
static gantl_status gantl__ds_folder_labels(const char *root, const gantl__strlist *files, int32_t **labels, int *num_classes) {
    char *path = gantl__path_join(root, "dataset.json");
    unsigned char *text = NULL;
    size_t size = 0;
    gantl_json j;
    gantl__ds_label *table = NULL;
    gantl_status s = GANTL_OK;
    memset(&j, 0, sizeof j);
    *labels = NULL;
    *num_classes = 0;
    if (!path) return gantl__fail(GANTL_ERR_NOMEM, "out of memory");
    if (gantl__path_kind(path) != 1) {
        GANTL_FREE(path);
        return GANTL_OK;
    }
    s = gantl_read_file(path, &text, &size);
    if (s == GANTL_OK && (s = gantl_json_parse(&j, (const char *)text, size)) != GANTL_OK) s = gantl__fail_prefix(s, path);
    const gantl_json *list = s == GANTL_OK ? gantl_json_get(&j, "labels") : NULL;
    if (s == GANTL_OK && list && list->type != GANTL_JSON_NULL) {
        if (list->type != GANTL_JSON_ARRAY)
            s = gantl__fail(GANTL_ERR_FORMAT, "'%s': \"labels\" must be a list of [\"file name\", class] pairs", path);
        if (s == GANTL_OK && !(table = (gantl__ds_label *)GANTL_MALLOC((size_t)(list->count + 1) * sizeof *table)))
            s = gantl__fail(GANTL_ERR_NOMEM, "out of memory reading '%s'", path);
        for (int i = 0; s == GANTL_OK && i < list->count; i++) {
            const gantl_json *e = &list->items[i];
            if (e->type != GANTL_JSON_ARRAY || e->count != 2 || e->items[0].type != GANTL_JSON_STRING) {
                s = gantl__fail(GANTL_ERR_FORMAT, "'%s': label %d is not a [\"file name\", class] pair", path, i);
            } else if (e->items[1].type != GANTL_JSON_NUMBER || e->items[1].number < 0 || e->items[1].number > 2147483647.0 ||
                       e->items[1].number != floor(e->items[1].number)) {
                s = gantl__fail(GANTL_ERR_UNSUPPORTED, "'%s': the label of '%s' is not a class index (only integer labels are "
                                "supported)", path, e->items[0].string);
            } else {
                table[i].name = e->items[0].string;
                table[i].label = (int32_t)e->items[1].number;
            }
        }
        if (s == GANTL_OK) {
            qsort(table, (size_t)list->count, sizeof *table, gantl__cmp_label);
            if (!(*labels = (int32_t *)GANTL_MALLOC((size_t)(files->count + 1) * sizeof(int32_t))))
                s = gantl__fail(GANTL_ERR_NOMEM, "out of memory reading '%s'", path);
        }
        for (int64_t i = 0; s == GANTL_OK && i < files->count; i++) {
            gantl__ds_label key;
            key.name = files->items[i];
            key.label = 0;
            const gantl__ds_label *hit =
                (const gantl__ds_label *)bsearch(&key, table, (size_t)list->count, sizeof *table, gantl__cmp_label);
            if (!hit) s = gantl__fail(GANTL_ERR_FORMAT, "'%s' has no label for '%s'", path, files->items[i]);
            else {
                (*labels)[i] = hit->label;
                if (hit->label + 1 > *num_classes) *num_classes = hit->label + 1;
            }
        }
        if (s != GANTL_OK) {
            GANTL_FREE(*labels);
            *labels = NULL;
        }
    }
    GANTL_FREE(table);
    gantl_json_free(&j);
    GANTL_FREE(text);
    GANTL_FREE(path);
    return s;
}

typedef struct gantl__ds_folder {
    const char *root;
    char **files;       /* relative paths */
    const int64_t *sel; /* output image -> file */
} gantl__ds_folder;

/* Reads and decodes one file: *px (stbi_image_free it) with its size and channels. */
static gantl_status gantl__ds_decode(const char *root, const char *rel, unsigned char **px, int *w, int *h, int *comps) {
    char *path = gantl__path_join(root, rel);
    unsigned char *bytes = NULL;
    size_t size = 0;
    *px = NULL;
    if (!path) return gantl__fail(GANTL_ERR_NOMEM, "out of memory");
    gantl_status s = gantl_read_file(path, &bytes, &size);
#ifdef STBI_INCLUDE_STB_IMAGE_H
    if (s == GANTL_OK && size > 0x7fffffff) s = gantl__fail(GANTL_ERR_UNSUPPORTED, "'%s': image files over 2 GiB are not supported", path);
    if (s == GANTL_OK && !(*px = stbi_load_from_memory(bytes, (int)size, w, h, comps, 0)))
        s = gantl__fail(GANTL_ERR_FORMAT, "'%s': cannot decode the image (stb_image: %s)", path, stbi_failure_reason());
#else
    (void)w, (void)h, (void)comps;
    if (s == GANTL_OK) s = gantl__fail(GANTL_ERR_UNSUPPORTED, "'%s': decoding images needs stb_image: " GANTL__NEED_STBI, path);
#endif
    GANTL_FREE(bytes);
    GANTL_FREE(path);
    return s;
}

static gantl_status gantl__ds_folder_item(const gantl__ds_build *b, void *user, int64_t i, unsigned char *out) {
    const gantl__ds_folder *f = (const gantl__ds_folder *)user;
    const char *rel = f->files[f->sel[i]];
    unsigned char *px;
    int w = 0, h = 0, comps = 0;
    gantl_status s = gantl__ds_decode(f->root, rel, &px, &w, &h, &comps);
    if (s != GANTL_OK) return s;
    char what[1024];
    snprintf(what, sizeof what, "'%s/%s'", f->root, rel);
    s = gantl__ds_place(b, px, w, h, comps, comps, (int64_t)w * comps, 1, out, what);
#ifdef STBI_INCLUDE_STB_IMAGE_H
    stbi_image_free(px);
#endif
    return s;
}

static gantl_status gantl__ds_load_folder(gantl_dataset *ds, const char *spec, const gantl_dataset_options *o) {
    gantl__strlist files;
    gantl__ds_build b;
    gantl__ds_folder f;
    int32_t *labels = NULL;
    int64_t *sel = NULL, n = 0;
    int num_classes = 0;
    char first[1024];
    memset(&files, 0, sizeof files);
    memset(&b, 0, sizeof b);
    b.o = o;
    size_t len = strlen(spec);
    char *root = (char *)GANTL_MALLOC(len + 1);
    if (!root) return gantl__fail(GANTL_ERR_NOMEM, "out of memory");
    memcpy(root, spec, len + 1);
    while (len > 1 && root[len - 1] == '/') root[--len] = 0;
    gantl_status s = gantl__ds_walk(root, "", 0, &files);
    if (s == GANTL_OK && files.count == 0)
        s = gantl__fail(GANTL_ERR_INVALID, "folder '%s' has no images (.png, .jpg, ...): empty dataset", root);
    if (s == GANTL_OK) {
        qsort(files.items, (size_t)files.count, sizeof(char *), gantl__cmp_str);
        s = gantl__ds_folder_labels(root, &files, &labels, &num_classes);
    }
    if (s == GANTL_OK) s = gantl__ds_select(o, files.count, &sel, &n);
    if (s == GANTL_OK) { /* the first image sets the channels and, without a resolution, the size */
        unsigned char *px = NULL;
        int w = 0, h = 0, comps = 0;
        s = gantl__ds_decode(root, files.items[sel[0]], &px, &w, &h, &comps);
#ifdef STBI_INCLUDE_STB_IMAGE_H
        if (px) stbi_image_free(px);
#endif
        snprintf(first, sizeof first, "'%s/%s'", root, files.items[sel[0]]);
        if (s == GANTL_OK) s = gantl__ds_setup(&b, w, h, comps, first);
    }
    if (s == GANTL_OK) s = gantl__ds_alloc(ds, &b, n, labels != NULL, root);
    if (s == GANTL_OK) {
        for (int64_t i = 0; labels && i < n; i++) ds->labels[i] = labels[sel[i]];
        ds->num_classes = labels ? num_classes : 0;
        f.root = root, f.files = files.items, f.sel = sel;
        s = gantl__ds_run(&b, n, gantl__ds_folder_item, &f);
    }
    if (s == GANTL_OK) gantl__ds_name(ds, root, files.count, o);
    GANTL_FREE(sel);
    GANTL_FREE(labels);
    gantl__strlist_free(&files);
    GANTL_FREE(root);
    return s;
}

/* ---- the public entry points ---- */

static int gantl__ends_with(const char *s, const char *tail) {
    size_t n = strlen(s), k = strlen(tail);
    if (n < k) return 0;
    for (size_t i = 0; i < k; i++) {
        char c = s[n - k + i];
        if ((c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c) != tail[i]) return 0;
    }
    return 1;
}

GANTLDEF gantl_status gantl_dataset_load(gantl_dataset *ds, const char *spec, const gantl_dataset_options *o) {
    gantl_dataset_options defaults;
    gantl_status s;
    memset(ds, 0, sizeof *ds);
    if (!o) gantl_dataset_options_default(&defaults), o = &defaults;
    if (!spec || !*spec) return gantl__fail(GANTL_ERR_INVALID, "dataset: empty spec");
    if (o->channels != 0 && o->channels != 1 && o->channels != 3)
        return gantl__fail(GANTL_ERR_INVALID, "dataset '%s': channels %d (0 native, 1 grey or 3 RGB)", spec, o->channels);
    if (o->resolution != 0 && (!gantl__is_pow2(o->resolution) || o->resolution > 65536))
        return gantl__fail(GANTL_ERR_INVALID, "dataset '%s': resolution %d is not a power of two (0: native)", spec, o->resolution);
    if (o->max_images < 0)
        return gantl__fail(GANTL_ERR_INVALID, "dataset '%s': max_images %lld is negative", spec, (long long)o->max_images);
    if (!strncmp(spec, "fashion-mnist", 13) && (spec[13] == 0 || spec[13] == ':' || spec[13] == '@')) {
        s = gantl__ds_load_fmnist(ds, spec, o);
    } else if (gantl__ends_with(spec, ".npy")) {
        s = gantl__ds_load_npy(ds, spec, o);
    } else if (gantl__ends_with(spec, "idx3-ubyte") || gantl__ends_with(spec, "idx3-ubyte.gz")) {
        size_t n = strlen(spec);
        char *lpath = (char *)GANTL_MALLOC(n + 4);
        const char *at = NULL; /* the last "images-idx3" */
        for (const char *q = strstr(spec, "images-idx3"); q; q = strstr(q + 1, "images-idx3")) at = q;
        if (!lpath) return gantl__fail(GANTL_ERR_NOMEM, "out of memory");
        memcpy(lpath, spec, n + 1);
        if (at) memcpy(lpath + (at - spec), "labels-idx1", 11);
        if (!at) lpath[0] = 0; /* no sibling labels */
        else if (gantl__path_kind(lpath) != 1 && gantl__ends_with(lpath, ".gz")) lpath[n - 3] = 0;
        else if (gantl__path_kind(lpath) != 1) memcpy(lpath + n, ".gz", 4);
        s = gantl__ds_load_idx(ds, spec, lpath, 0, NULL, 0, spec, o);
        GANTL_FREE(lpath);
    } else {
        int kind = gantl__path_kind(spec);
        if (kind == 2) s = gantl__ds_load_folder(ds, spec, o);
        else if (kind == 1)
            s = gantl__fail(GANTL_ERR_INVALID, "bad dataset spec '%s': not a folder, a .npy file, an IDX file (*-images-idx3-ubyte"
                            "[.gz]) or fashion-mnist[:CLASSES][@train|@test]", spec);
        else s = gantl__fail(GANTL_ERR_IO, "dataset: cannot find the folder '%s'", spec);
    }
    if (s != GANTL_OK) gantl_dataset_free(ds);
    return s;
}

GANTLDEF void gantl_dataset_batch(const gantl_dataset *ds, const int64_t *indices, const unsigned char *flip, int64_t n,
                                  float *out, float *labels_onehot) {
    GANTL__CHECK(ds && ds->images && n >= 0 && (out || n == 0), "dataset_batch: no dataset or output");
    for (int64_t i = 0; i < n; i++)
        GANTL__CHECK(indices[i] >= 0 && indices[i] < ds->count, "dataset_batch: index %lld of item %lld is outside the %lld images",
                     (long long)indices[i], (long long)i, (long long)ds->count);
    float lut[256];
    for (int v = 0; v < 256; v++) lut[v] = (float)v / 127.5f - 1.0f; /* as the official loop: x / 127.5 - 1 */
    int R = ds->resolution;
    int64_t rows = (int64_t)ds->channels * R, image = rows * R;
    GANTL__OMP(parallel for schedule(static) if (n * image > (1 << 16)))
    for (int64_t i = 0; i < n; i++) {
        const unsigned char *src = ds->images + indices[i] * image;
        float *dst = out + i * image;
        int mirror = flip && flip[i];
        for (int64_t r = 0; r < rows; r++, src += R, dst += R)
            if (mirror) for (int x = 0; x < R; x++) dst[x] = lut[src[R - 1 - x]];
            else for (int x = 0; x < R; x++) dst[x] = lut[src[x]];
    }
    if (labels_onehot && ds->labels && ds->num_classes > 0) {
        memset(labels_onehot, 0, (size_t)n * (size_t)ds->num_classes * sizeof(float));
        for (int64_t i = 0; i < n; i++) labels_onehot[i * ds->num_classes + ds->labels[indices[i]]] = 1.0f;
    }
}

/* ---- sampler ---- */

GANTLDEF gantl_status gantl_sampler_init(gantl_sampler *s, int64_t count, int mirror, uint64_t seed) {
    memset(s, 0, sizeof *s);
    if (count <= 0) return gantl__fail(GANTL_ERR_INVALID, "sampler: %lld images (empty dataset)", (long long)count);
    int64_t items = count * (mirror ? 2 : 1);
    s->order = (int64_t *)GANTL_MALLOC((size_t)items * sizeof(int64_t));
    if (!s->order) return gantl__fail(GANTL_ERR_NOMEM, "sampler: out of memory for %lld items", (long long)items);
    s->count = count, s->mirror = mirror ? 1 : 0, s->seed = seed, s->order_epoch = -1;
    return GANTL_OK;
}

GANTLDEF void gantl_sampler_next(gantl_sampler *s, int64_t n, int64_t *indices, unsigned char *flip) {
    int64_t items = s->count * (1 + s->mirror);
    GANTL__CHECK(s->order && n >= 0 && s->epoch >= 0 && s->position >= 0 && s->position <= items,
                 "sampler_next: not initialised, or epoch %lld / position %lld out of range", (long long)s->epoch,
                 (long long)s->position);
    for (int64_t i = 0; i < n; i++) {
        if (s->position == items) s->epoch++, s->position = 0;
        if (s->order_epoch != s->epoch) { /* epoch e: a permutation from Philox counters e * items onwards */
            gantl_rng rng = gantl_rng_new(s->seed);
            rng.offset = (uint64_t)s->epoch * (uint64_t)items;
            gantl_rng_permutation(&rng, s->order, items);
            s->order_epoch = s->epoch;
        }
        int64_t item = s->order[s->position++];
        indices[i] = item < s->count ? item : item - s->count;
        if (flip) flip[i] = (unsigned char)(item >= s->count);
    }
}

GANTLDEF void gantl_sampler_free(gantl_sampler *s) {
    GANTL_FREE(s->order);
    memset(s, 0, sizeof *s);
}

/* ---------------------------------------------------------------------------------------
   14. Feature extractors
   ------------------------------------------------------------------------------------- */

/* ---- the Fashion-MNIST classifier ---- */

static const int gantl__cls_width[6] = {32, 32, 64, 64, 128, 128}, gantl__cls_stride[6] = {1, 2, 1, 2, 1, 2};

GANTLDEF gantl_status gantl_classifier_init(gantl_classifier *c, int channels, int num_classes, uint64_t seed) {
    memset(c, 0, sizeof *c);
    if (channels < 1 || num_classes < 2)
        return gantl__fail(GANTL_ERR_INVALID, "classifier: %d channels, %d classes", channels, num_classes);
    c->channels = channels, c->resolution = 32, c->num_classes = num_classes;
    gantl_params_init(&c->params, 1);
    gantl__builder b = {&c->params, NULL, gantl_rng_new(seed), GANTL_OK};
    int in = channels;
    for (int i = 0; i < 6; i++) { /* He initialisation for ReLU: std sqrt(2 / fan_in) */
        c->conv_w[i] = gantl__make(&b, 0, GANTL__INIT_NORMAL, sqrtf(2.0f / (float)(in * 9)), 4, gantl__cls_width[i], in, 3, 3,
                                   "conv%d.weight", i);
        c->conv_b[i] = gantl__make(&b, 0, GANTL__INIT_ZERO, 0, 1, gantl__cls_width[i], 1, 1, 1, "conv%d.bias", i);
        in = gantl__cls_width[i];
    }
    c->fc_w = gantl__make(&b, 0, GANTL__INIT_NORMAL, sqrtf(2.0f / 2048.0f), 2, GANTL_CLASSIFIER_FEATURES, 2048, 1, 1, "fc.weight");
    c->fc_b = gantl__make(&b, 0, GANTL__INIT_ZERO, 0, 1, GANTL_CLASSIFIER_FEATURES, 1, 1, 1, "fc.bias");
    c->out_w = gantl__make(&b, 0, GANTL__INIT_NORMAL, sqrtf(1.0f / GANTL_CLASSIFIER_FEATURES), 2, num_classes,
                           GANTL_CLASSIFIER_FEATURES, 1, 1, "out.weight");
    c->out_b = gantl__make(&b, 0, GANTL__INIT_ZERO, 0, 1, num_classes, 1, 1, 1, "out.bias");
    if (b.status != GANTL_OK) {
        gantl_classifier_free(c);
        return gantl__fail(b.status, "classifier: out of memory");
    }
    return GANTL_OK;
}

GANTLDEF void gantl_classifier_free(gantl_classifier *c) {
    gantl_params_free(&c->params);
    memset(c, 0, sizeof *c);
}

GANTLDEF gantl_tensor *gantl_classifier_forward(gantl_ctx *ctx, gantl_classifier *c, gantl_tensor *x,
                                                gantl_tensor **features) {
    if (!x) return NULL;
    GANTL__CHECK(x->ndim == 4 && x->shape[1] == c->channels && x->shape[2] == 32 && x->shape[3] == 32,
                 "classifier: input %s, expected (N, %d, 32, 32)", GANTL__SHP(x), c->channels);
    gantl_tensor *h = x;
    for (int i = 0; i < 6; i++) /* (N, 32, 32, 32) ... (N, 128, 4, 4) */
        h = gantl_bias_act(ctx, gantl_conv2d(ctx, h, c->conv_w[i], gantl__cls_stride[i], 1, 1), c->conv_b[i],
                           GANTL_ACT_LRELU, 0.0f, 1.0f, -1.0f);
    int64_t flat[2] = {x->shape[0], 2048};
    gantl_tensor *f = gantl_relu(ctx, gantl_linear(ctx, gantl_reshape(ctx, h, 2, flat), c->fc_w, c->fc_b)); /* (N, 256) */
    if (features) *features = f;
    return gantl_linear(ctx, f, c->out_w, c->out_b);
}

GANTLDEF gantl_tensor *gantl_cross_entropy(gantl_ctx *ctx, gantl_tensor *logits, const int32_t *labels) {
    if (!logits) return NULL;
    GANTL__CHECK(logits->ndim == 2, "cross_entropy: logits %s must be (N, classes)", GANTL__SHP(logits));
    int64_t n = logits->shape[0], k = logits->shape[1];
    gantl_tensor *max = gantl_new_2d(ctx, n, 1), *onehot = gantl_zeros(ctx, 2, logits->shape);
    if (!max || !onehot) return NULL;
    for (int64_t i = 0; i < n; i++) { /* log-sum-exp shifted by each row's maximum, a constant */
        float m = logits->data[i * k];
        for (int64_t j = 1; j < k; j++) m = logits->data[i * k + j] > m ? logits->data[i * k + j] : m;
        max->data[i] = m;
        GANTL__CHECK(labels[i] >= 0 && labels[i] < k, "cross_entropy: label %d of sample %lld not in 0..%lld",
                     labels[i], (long long)i, (long long)(k - 1));
        onehot->data[i * k + labels[i]] = 1.0f;
    }
    int axis = 1;
    gantl_tensor *shifted = gantl_sub(ctx, logits, max);
    gantl_tensor *lse = gantl_log(ctx, gantl_sum(ctx, gantl_exp(ctx, shifted), 1, &axis, 1)); /* (N, 1) */
    gantl_tensor *picked = gantl_sum(ctx, gantl_mul(ctx, shifted, onehot), 1, &axis, 1);
    return gantl_mean_all(ctx, gantl_sub(ctx, lse, picked));
}

GANTLDEF gantl_status gantl_classifier_save(const gantl_classifier *c, const char *path, double test_accuracy) {
    gantl_st_writer w;
    char meta[256];
    gantl_st_writer_init(&w);
    snprintf(meta, sizeof meta, "{\"channels\": %d, \"resolution\": %d, \"num_classes\": %d, \"features\": %d, "
             "\"test_accuracy\": %.6f}", c->channels, c->resolution, c->num_classes, GANTL_CLASSIFIER_FEATURES, test_accuracy);
    gantl_status s = gantl_st_writer_meta(&w, "gantl.classifier", meta);
    for (int i = 0; s == GANTL_OK && i < c->params.count; i++) {
        const gantl_tensor *t = c->params.tensors[i];
        s = gantl_st_writer_add(&w, t->name, GANTL_F32, t->ndim, t->shape, t->data);
    }
    if (s == GANTL_OK) s = gantl_st_writer_save(&w, path);
    gantl_st_writer_free(&w);
    return s;
}

GANTLDEF gantl_status gantl_classifier_load(gantl_classifier *c, const char *path) {
    gantl_st_file f;
    gantl_json j;
    memset(c, 0, sizeof *c);
    gantl_status s = gantl_st_load(&f, path);
    if (s != GANTL_OK) return s;
    const char *meta = gantl_st_meta(&f, "gantl.classifier");
    if (!meta || gantl_json_parse(&j, meta, strlen(meta)) != GANTL_OK) {
        gantl_st_free(&f);
        return gantl__fail(GANTL_ERR_FORMAT, "%s: not a gantl classifier (no gantl.classifier metadata)", path);
    }
    const gantl_json *ch = gantl_json_get(&j, "channels"), *k = gantl_json_get(&j, "num_classes"), *acc = gantl_json_get(&j, "test_accuracy");
    int channels = ch && ch->type == GANTL_JSON_NUMBER ? (int)ch->number : 0, classes = k && k->type == GANTL_JSON_NUMBER ? (int)k->number : 0;
    double accuracy = acc && acc->type == GANTL_JSON_NUMBER ? acc->number : 0.0;
    gantl_json_free(&j);
    s = gantl_classifier_init(c, channels, classes, 0);
    if (s == GANTL_OK) s = gantl__params_load(&c->params, &f, "");
    if (s == GANTL_OK) s = gantl__check_no_extra(&f, "", &c->params, &c->params);
    gantl_st_free(&f);
    if (s != GANTL_OK) {
        gantl_classifier_free(c);
        char message[sizeof gantl__error_message];
        snprintf(message, sizeof message, "%s", gantl__error_message);
        return gantl__fail(s, "%s: %s", path, message);
    }
    c->test_accuracy = accuracy;
    return GANTL_OK;
}

GANTLDEF gantl_status gantl_classifier_run(gantl_classifier *c, const float *images, int64_t n, int height, int width,
                                           float *features, int32_t *predictions) {
    if (height != width || height > 32 || height < 1)
        return gantl__fail(GANTL_ERR_INVALID, "classifier: %dx%d images; it takes square images of at most 32x32",
                           height, width);
    gantl_ctx *ctx = gantl_ctx_new(0);
    if (!ctx) return gantl__fail(GANTL_ERR_NOMEM, "classifier: out of memory");
    int64_t C = c->channels, off = (32 - height) / 2, batch = 256;
    gantl_status s = GANTL_OK;
    for (int64_t start = 0; start < n && s == GANTL_OK; start += batch) {
        int64_t b = n - start < batch ? n - start : batch;
        gantl_ctx_reset(ctx);
        gantl_set_grad_enabled(ctx, 0);
        gantl_tensor *x = gantl_new_4d(ctx, b, C, 32, 32), *feat;
        if (!x) break;
        gantl__fill(x->data, -1.0f, x->numel); /* pad with the background */
        for (int64_t i = 0; i < b * C; i++)
            for (int y = 0; y < height; y++)
                memcpy(x->data + (i * 32 + off + y) * 32 + off, images + ((start * C + i) * height + y) * width,
                       (size_t)width * sizeof(float));
        gantl_tensor *logits = gantl_classifier_forward(ctx, c, x, &feat);
        if (!logits) break;
        if (features) memcpy(features + start * GANTL_CLASSIFIER_FEATURES, feat->data, (size_t)feat->numel * sizeof(float));
        for (int64_t i = 0; predictions && i < b; i++) {
            int best = 0;
            for (int j = 1; j < c->num_classes; j++)
                if (logits->data[i * c->num_classes + j] > logits->data[i * c->num_classes + best]) best = j;
            predictions[start + i] = best;
        }
    }
    if (gantl_ctx_status(ctx) != GANTL_OK) s = gantl_ctx_status(ctx);
    gantl_ctx_free(ctx);
    return s;
}

GANTLDEF int gantl_mode_coverage(const int32_t *predictions, int64_t n, int num_classes, int64_t min_count) {
    int covered = 0;
    int64_t *count = (int64_t *)GANTL_MALLOC((size_t)(num_classes > 0 ? num_classes : 1) * sizeof(int64_t));
    if (!count) return -1;
    memset(count, 0, (size_t)(num_classes > 0 ? num_classes : 1) * sizeof(int64_t));
    for (int64_t i = 0; i < n; i++)
        if (predictions[i] >= 0 && predictions[i] < num_classes) count[predictions[i]]++;
    for (int k = 0; k < num_classes; k++) covered += count[k] >= min_count;
    GANTL_FREE(count);
    return covered;
}

/* ---- FID Inception-v3 ----
   A pass runs nb images through the network with every activation laid out (C, nb, H, W):
   a 1x1 convolution is then one GEMM over all the images, W (O, C) @ X (C, nb H W), other
   kernels one GEMM over an im2col matrix (C kh kw, nb Ho Wo), and each branch of a block
   writes its output channels as one contiguous slab of the block's output, so the channel
   concatenation costs nothing. */

#define GANTL__INC_BN_EPS 1e-3
/* Per image of a pass, in floats: the stem's two buffers (the largest activation is
   Conv2d_2b_3x3's 64 x 147 x 147, the next Conv2d_4a_3x3's 192 x 71 x 71), which the
   blocks then reuse as four slots of 288 x 35 x 35 (their largest tensor). */
#define GANTL__INC_STEM0 ((int64_t)64 * 147 * 147)
#define GANTL__INC_STEM1 ((int64_t)192 * 71 * 71)
#define GANTL__INC_SLOT ((int64_t)288 * 35 * 35)
/* im2col matrices are built for as many images at a time as fit in this many floats (at
   least one image). */
#define GANTL__INC_COL_BUDGET ((int64_t)1 << 22)

static void gantl__inc_add(gantl_inception *net, int *count, const char *block, const char *layer, int cin, int cout,
                           int kh, int kw, int stride, int pad_h, int pad_w) {
    gantl_inception_conv *L = &net->conv[(*count)++];
    if (block) snprintf(L->name, sizeof L->name, "%s.%s", block, layer);
    else snprintf(L->name, sizeof L->name, "%s", layer);
    L->in_channels = cin, L->out_channels = cout, L->kh = kh, L->kw = kw;
    L->stride = stride, L->pad_h = pad_h, L->pad_w = pad_w;
}

/* The 94 layers in the order the forward runs them (it refers to them by position): in
   each block, the 1x1 convolutions that read the block's input come first, so that their
   weights and biases are adjacent in params and one GEMM runs them all. */
static void gantl__inc_layers(gantl_inception *net) {
    static const char *const a_names[] = {"Mixed_5b", "Mixed_5c", "Mixed_5d"};
    static const int a_in[] = {192, 256, 288}, a_pool[] = {32, 64, 64};
    static const char *const c_names[] = {"Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e"};
    static const int c7s[] = {128, 160, 160, 192};
    int n = 0;
    gantl__inc_add(net, &n, NULL, "Conv2d_1a_3x3", 3, 32, 3, 3, 2, 0, 0);
    gantl__inc_add(net, &n, NULL, "Conv2d_2a_3x3", 32, 32, 3, 3, 1, 0, 0);
    gantl__inc_add(net, &n, NULL, "Conv2d_2b_3x3", 32, 64, 3, 3, 1, 1, 1);
    gantl__inc_add(net, &n, NULL, "Conv2d_3b_1x1", 64, 80, 1, 1, 1, 0, 0);
    gantl__inc_add(net, &n, NULL, "Conv2d_4a_3x3", 80, 192, 3, 3, 1, 0, 0);
    for (int b = 0; b < 3; b++) { /* FIDInceptionA */
        const char *m = a_names[b];
        int cin = a_in[b];
        gantl__inc_add(net, &n, m, "branch1x1", cin, 64, 1, 1, 1, 0, 0);
        gantl__inc_add(net, &n, m, "branch5x5_1", cin, 48, 1, 1, 1, 0, 0);
        gantl__inc_add(net, &n, m, "branch3x3dbl_1", cin, 64, 1, 1, 1, 0, 0);
        gantl__inc_add(net, &n, m, "branch5x5_2", 48, 64, 5, 5, 1, 2, 2);
        gantl__inc_add(net, &n, m, "branch3x3dbl_2", 64, 96, 3, 3, 1, 1, 1);
        gantl__inc_add(net, &n, m, "branch3x3dbl_3", 96, 96, 3, 3, 1, 1, 1);
        gantl__inc_add(net, &n, m, "branch_pool", cin, a_pool[b], 1, 1, 1, 0, 0);
    }
    /* InceptionB */
    gantl__inc_add(net, &n, "Mixed_6a", "branch3x3", 288, 384, 3, 3, 2, 0, 0);
    gantl__inc_add(net, &n, "Mixed_6a", "branch3x3dbl_1", 288, 64, 1, 1, 1, 0, 0);
    gantl__inc_add(net, &n, "Mixed_6a", "branch3x3dbl_2", 64, 96, 3, 3, 1, 1, 1);
    gantl__inc_add(net, &n, "Mixed_6a", "branch3x3dbl_3", 96, 96, 3, 3, 2, 0, 0);
    for (int b = 0; b < 4; b++) { /* FIDInceptionC */
        const char *m = c_names[b];
        int c7 = c7s[b];
        gantl__inc_add(net, &n, m, "branch1x1", 768, 192, 1, 1, 1, 0, 0);
        gantl__inc_add(net, &n, m, "branch7x7_1", 768, c7, 1, 1, 1, 0, 0);
        gantl__inc_add(net, &n, m, "branch7x7dbl_1", 768, c7, 1, 1, 1, 0, 0);
        gantl__inc_add(net, &n, m, "branch7x7_2", c7, c7, 1, 7, 1, 0, 3);
        gantl__inc_add(net, &n, m, "branch7x7_3", c7, 192, 7, 1, 1, 3, 0);
        gantl__inc_add(net, &n, m, "branch7x7dbl_2", c7, c7, 7, 1, 1, 3, 0);
        gantl__inc_add(net, &n, m, "branch7x7dbl_3", c7, c7, 1, 7, 1, 0, 3);
        gantl__inc_add(net, &n, m, "branch7x7dbl_4", c7, c7, 7, 1, 1, 3, 0);
        gantl__inc_add(net, &n, m, "branch7x7dbl_5", c7, 192, 1, 7, 1, 0, 3);
        gantl__inc_add(net, &n, m, "branch_pool", 768, 192, 1, 1, 1, 0, 0);
    }
    /* InceptionD */
    gantl__inc_add(net, &n, "Mixed_7a", "branch3x3_1", 768, 192, 1, 1, 1, 0, 0);
    gantl__inc_add(net, &n, "Mixed_7a", "branch7x7x3_1", 768, 192, 1, 1, 1, 0, 0);
    gantl__inc_add(net, &n, "Mixed_7a", "branch3x3_2", 192, 320, 3, 3, 2, 0, 0);
    gantl__inc_add(net, &n, "Mixed_7a", "branch7x7x3_2", 192, 192, 1, 7, 1, 0, 3);
    gantl__inc_add(net, &n, "Mixed_7a", "branch7x7x3_3", 192, 192, 7, 1, 1, 3, 0);
    gantl__inc_add(net, &n, "Mixed_7a", "branch7x7x3_4", 192, 192, 3, 3, 2, 0, 0);
    for (int b = 0; b < 2; b++) { /* FIDInceptionE_1, FIDInceptionE_2 */
        const char *m = b ? "Mixed_7c" : "Mixed_7b";
        int cin = b ? 2048 : 1280;
        gantl__inc_add(net, &n, m, "branch1x1", cin, 320, 1, 1, 1, 0, 0);
        gantl__inc_add(net, &n, m, "branch3x3_1", cin, 384, 1, 1, 1, 0, 0);
        gantl__inc_add(net, &n, m, "branch3x3dbl_1", cin, 448, 1, 1, 1, 0, 0);
        gantl__inc_add(net, &n, m, "branch3x3_2a", 384, 384, 1, 3, 1, 0, 1);
        gantl__inc_add(net, &n, m, "branch3x3_2b", 384, 384, 3, 1, 1, 1, 0);
        gantl__inc_add(net, &n, m, "branch3x3dbl_2", 448, 384, 3, 3, 1, 1, 1);
        gantl__inc_add(net, &n, m, "branch3x3dbl_3a", 384, 384, 1, 3, 1, 0, 1);
        gantl__inc_add(net, &n, m, "branch3x3dbl_3b", 384, 384, 3, 1, 1, 1, 0);
        gantl__inc_add(net, &n, m, "branch_pool", cin, 192, 1, 1, 1, 0, 0);
    }
    GANTL__CHECK(n == GANTL_INCEPTION_CONVS, "inception: %d layers, expected %d", n, GANTL_INCEPTION_CONVS);
}

static const char *const gantl__inc_suffixes[5] = {"conv.weight", "bn.weight", "bn.bias", "bn.running_mean",
                                                    "bn.running_var"};

static int gantl__inc_known(const gantl_inception *net, const char *name) {
    size_t n = strlen(name);
    if (strncmp(name, "fc.", 3) == 0) return 1;
    if (n >= 20 && strcmp(name + n - 20, ".num_batches_tracked") == 0) return 1;
    for (int i = 0; i < GANTL_INCEPTION_CONVS; i++) {
        size_t m = strlen(net->conv[i].name);
        if (n <= m || strncmp(name, net->conv[i].name, m) != 0 || name[m] != '.') continue;
        for (int k = 0; k < 5; k++)
            if (strcmp(name + m + 1, gantl__inc_suffixes[k]) == 0) return 1;
    }
    return 0;
}

/* Reads prefix.suffix of the given shape, with a message naming the tensor on failure. */
static gantl_status gantl__inc_read(const gantl_st_file *f, const char *prefix, const char *suffix, float *out, int ndim,
                                    const int64_t *shape) {
    char name[64];
    int64_t n = 1;
    snprintf(name, sizeof name, "%s.%s", prefix, suffix);
    const gantl_st_tensor *t = gantl_st_find(f, name);
    if (!t)
        return gantl__fail(GANTL_ERR_INVALID,
                           "inception: tensor '%s' is missing (weights converted by tools/convert_inception.py?)", name);
    if (t->dtype != GANTL_F32 && t->dtype != GANTL_F64 && t->dtype != GANTL_F16 && t->dtype != GANTL_BF16)
        return gantl__fail(GANTL_ERR_INVALID, "inception: tensor '%s' has dtype %s, expected a float type", name,
                           gantl_dtype_name(t->dtype));
    for (int d = 0; d < ndim; d++) n *= shape[d];
    if (gantl_st_read_f32(f, name, out, n, ndim, shape) != GANTL_OK) {
        char message[sizeof gantl__error_message];
        snprintf(message, sizeof message, "%s", gantl__error_message);
        return gantl__fail(GANTL_ERR_INVALID, "inception: %s", message);
    }
    return GANTL_OK;
}

/* Workspace of one worker thread. */
typedef struct gantl__inc_ws {
    float *work, *col, *gout;
    int64_t work_floats, col_floats, gout_floats;
} gantl__inc_ws;

static void gantl__inc_ws_free(gantl__inc_ws *ws) {
    GANTL_FREE(ws->work);
    GANTL_FREE(ws->col);
    GANTL_FREE(ws->gout);
}

GANTLDEF void gantl_inception_free(gantl_inception *net) {
    for (int i = 0; i < net->ws_count_; i++) gantl__inc_ws_free((gantl__inc_ws *)net->ws_ + i);
    GANTL_FREE(net->ws_);
    GANTL_FREE(net->params);
    memset(net, 0, sizeof *net);
}

GANTLDEF gantl_status gantl_inception_from_file(gantl_inception *net, const gantl_st_file *f) {
    memset(net, 0, sizeof *net);
    gantl__inc_layers(net);
    for (int i = 0; i < f->count; i++) { /* a file of some other network: say so before anything else */
        const char *name = f->tensors[i].name;
        if (strncmp(name, "AuxLogits.", 10) == 0)
            return gantl__fail(GANTL_ERR_INVALID,
                               "inception: tensor '%s': these look like torchvision's ImageNet Inception-v3 weights; FID "
                               "needs pytorch-fid's pt_inception-2015-12-05-6726825d.pth (tools/convert_inception.py)",
                               name);
        if (!gantl__inc_known(net, name))
            return gantl__fail(GANTL_ERR_INVALID, "inception: unexpected tensor '%s' (not an FID Inception-v3 file?)",
                               name);
    }
    int64_t numel = 0, max_out = 0;
    for (int i = 0; i < GANTL_INCEPTION_CONVS; i++) {
        const gantl_inception_conv *L = &net->conv[i];
        numel += (int64_t)L->out_channels * (L->in_channels * L->kh * L->kw + 1);
        if (L->out_channels > max_out) max_out = L->out_channels;
    }
    net->params = (float *)GANTL_MALLOC((size_t)numel * sizeof(float));
    float *bn = (float *)GANTL_MALLOC((size_t)(4 * max_out) * sizeof(float));
    if (!net->params || !bn) {
        GANTL_FREE(bn);
        gantl_inception_free(net);
        return gantl__fail(GANTL_ERR_NOMEM, "inception: out of memory for %lld parameters", (long long)numel);
    }
    net->numel = numel;
    net->batch = 4;
    gantl_status s = GANTL_OK;
    /* every weight matrix, then every bias, in table order: adjacent layers are adjacent
       in both, so a group of them works as one layer with more outputs */
    float *pw = net->params, *pb = net->params + numel;
    for (int i = 0; i < GANTL_INCEPTION_CONVS; i++) pb -= net->conv[i].out_channels;
    for (int i = 0; i < GANTL_INCEPTION_CONVS && s == GANTL_OK; i++) {
        gantl_inception_conv *L = &net->conv[i];
        int64_t O = L->out_channels, K = (int64_t)L->in_channels * L->kh * L->kw;
        int64_t wshape[4] = {O, L->in_channels, L->kh, L->kw};
        L->weight = pw;
        L->bias = pb;
        pw += O * K;
        pb += O;
        s = gantl__inc_read(f, L->name, gantl__inc_suffixes[0], L->weight, 4, wshape);
        for (int k = 0; k < 4 && s == GANTL_OK; k++) s = gantl__inc_read(f, L->name, gantl__inc_suffixes[k + 1], bn + k * O, 1, &O);
        for (int64_t o = 0; o < O && s == GANTL_OK; o++) {
            /* y = (conv(x) - mean) * gamma / sqrt(var + eps) + beta */
            double gamma = bn[o], beta = bn[O + o], mean = bn[2 * O + o], var = bn[3 * O + o];
            double scale = gamma / sqrt(var + GANTL__INC_BN_EPS);
            if (!(var + GANTL__INC_BN_EPS > 0) || !(scale - scale == 0) || !(beta - beta == 0) || !(mean - mean == 0)) {
                s = gantl__fail(GANTL_ERR_INVALID, "inception: %s.bn channel %lld has running_var %g, weight %g, "
                                "running_mean %g, bias %g: not a usable BatchNorm", L->name, (long long)o, var, gamma,
                                mean, beta);
                break;
            }
            for (int64_t k = 0; k < K; k++) L->weight[o * K + k] = (float)(L->weight[o * K + k] * scale);
            L->bias[o] = (float)(beta - mean * scale);
        }
    }
    GANTL_FREE(bn);
    if (s != GANTL_OK) gantl_inception_free(net);
    return s;
}

GANTLDEF gantl_status gantl_inception_load(gantl_inception *net, const char *path) {
    gantl_st_file f;
    memset(net, 0, sizeof *net);
    gantl_status s = gantl_st_load(&f, path);
    if (s != GANTL_OK) return s;
    s = gantl_inception_from_file(net, &f);
    gantl_st_free(&f);
    return s;
}


/* Grows a workspace buffer to at least floats (its contents are not kept). */
static float *gantl__inc_reserve(float **buffer, int64_t *capacity, int64_t floats) {
    if (floats > *capacity) {
        GANTL_FREE(*buffer);
        *buffer = (float *)GANTL_MALLOC((size_t)floats * sizeof(float));
        *capacity = *buffer ? floats : 0;
    }
    return *buffer;
}

/* Bilinear resampling as torch's F.interpolate(mode='bilinear', align_corners=False,
   antialias=False) on CPU: for output index o, the source coordinate is
   ratio * (o + 0.5) - 0.5 with ratio = in / out in float and the rest in double (this
   matches torch's rounding; a float source coordinate would be up to 1e-4 off for large
   images), clamped below at 0; its floor and the next index (clamped to the last) get the
   weights 1 - lambda and lambda. Checked against torch within 1.2e-7 for [-1, 1] images. */
typedef struct gantl__lerp {
    int i0, i1;
    float w0, w1;
} gantl__lerp;

static void gantl__lerp_table(int in, int out, gantl__lerp *t) {
    double ratio = (double)((float)in / (float)out);
    for (int o = 0; o < out; o++) {
        double src = ratio * (o + 0.5) - 0.5;
        if (src < 0) src = 0;
        int i0 = (int)floor(src);
        if (i0 > in - 1) i0 = in - 1;
        double lambda = src - (double)i0;
        lambda = lambda < 0 ? 0 : lambda > 1 ? 1 : lambda;
        t[o].i0 = i0;
        t[o].i1 = i0 < in - 1 ? i0 + 1 : i0;
        t[o].w1 = (float)lambda;
        t[o].w0 = 1.0f - t[o].w1;
    }
}

/* One (h, w) plane to (ho, wo), with tables from gantl__lerp_table. */
static void gantl__resize_plane(const float *x, int w, float *y, int ho, int wo, const gantl__lerp *ty,
                                const gantl__lerp *tx) {
    for (int oy = 0; oy < ho; oy++) {
        const float *r0 = x + (int64_t)ty[oy].i0 * w, *r1 = x + (int64_t)ty[oy].i1 * w;
        float h0 = ty[oy].w0, h1 = ty[oy].w1, *out = y + (int64_t)oy * wo;
        for (int ox = 0; ox < wo; ox++) {
            const gantl__lerp *c = &tx[ox];
            float t0 = r0[c->i0] * c->w0 + r0[c->i1] * c->w1;
            float t1 = r1[c->i0] * c->w0 + r1[c->i1] * c->w1;
            out[ox] = t0 * h0 + t1 * h1;
        }
    }
}

/* y = max(y + bias[row], 0) for rows of n values (NaN stays NaN, as torch's relu). */
static void gantl__inc_bias_relu(float *y, const float *bias, int64_t rows, int64_t n) {
    GANTL__OMP(parallel for schedule(static) if (rows * n > 65536))
    for (int64_t r = 0; r < rows; r++) {
        float b = bias[r], *row = y + r * n;
        for (int64_t i = 0; i < n; i++) {
            float v = row[i] + b;
            row[i] = v < 0.0f ? 0.0f : v;
        }
    }
}

/* col (C kh kw, m ho wo) from the m images x (C, nb, h, w) starting at image b0: row
   (c, i, j) holds input (c, b, oy s - pad_h + i, ox s - pad_w + j), zero outside. */
static void gantl__inc_im2col(const gantl_inception_conv *L, const float *x, int64_t nb, int64_t b0, int64_t m, int h,
                              int w, int ho, int wo, float *col) {
    const int kh = L->kh, kw = L->kw, s = L->stride, ph = L->pad_h, pw = L->pad_w;
    const int64_t rows = (int64_t)L->in_channels * kh * kw, hwo = (int64_t)ho * wo;
    GANTL__OMP(parallel for schedule(static) if (rows * m * hwo > 65536))
    for (int64_t task = 0; task < rows * m; task++) {
        int64_t r = task / m, b = task % m;
        int c = (int)(r / (kh * kw)), i = (int)(r / kw % kh), j = (int)(r % kw);
        const float *plane = x + ((int64_t)c * nb + b0 + b) * h * w;
        float *dst = col + r * m * hwo + b * hwo;
        /* output columns whose input column ox s - pw + j lies in [0, w) */
        int ox0 = pw - j > 0 ? (pw - j + s - 1) / s : 0;
        int ox1 = w - 1 + pw - j >= 0 ? (w - 1 + pw - j) / s + 1 : 0;
        if (ox1 > wo) ox1 = wo;
        if (ox0 > ox1) ox0 = ox1;
        for (int oy = 0; oy < ho; oy++, dst += wo) {
            int iy = oy * s - ph + i;
            if (iy < 0 || iy >= h) {
                memset(dst, 0, (size_t)wo * sizeof(float));
                continue;
            }
            const float *src = plane + (int64_t)iy * w - pw + j;
            for (int ox = 0; ox < ox0; ox++) dst[ox] = 0.0f;
            if (s == 1) memcpy(dst + ox0, src + ox0, (size_t)(ox1 - ox0) * sizeof(float));
            else
                for (int ox = ox0; ox < ox1; ox++) dst[ox] = src[(int64_t)ox * s];
            for (int ox = ox1; ox < wo; ox++) dst[ox] = 0.0f;
        }
    }
}

static int gantl__inc_out_size(int in, int k, int stride, int pad) { return (in + 2 * pad - k) / stride + 1; }

/* y (O, nb, ho, wo) = relu(conv(x (C, nb, h, w)) folded with its BatchNorm), for the group
   layers L[0 .. group) that read the same x; O is the sum of their outputs (group > 1 only
   for 1x1 layers, whose weights and biases are adjacent). */
static gantl_status gantl__inc_conv(gantl__inc_ws *ws, const gantl_inception_conv *L, int group, int64_t nb,
                                    const float *x, int h, int w, float *y) {
    const int ho = gantl__inc_out_size(h, L->kh, L->stride, L->pad_h);
    const int wo = gantl__inc_out_size(w, L->kw, L->stride, L->pad_w);
    const int64_t K = (int64_t)L->in_channels * L->kh * L->kw, hwo = (int64_t)ho * wo;
    int64_t O = 0;
    for (int g = 0; g < group; g++) O += L[g].out_channels;
    if (L->kh == 1 && L->kw == 1 && L->stride == 1 && L->pad_h == 0 && L->pad_w == 0) {
        gantl_sgemm(y, L->weight, x, 0, 0, 1.0f, 0.0f, O, nb * hwo, K);
    } else if (group == 1 && L->pad_h == L->pad_w && ho >= 16 && wo >= 16 &&
               gantl__use_winograd(L->kh, L->kw, L->stride, L->in_channels, O, ho, wo)) {
        /* the 3x3 stride-1 convolutions of 35 x 35 and up (about 40% of the network's time
           by im2col) by Winograd, on the (C, N, H, W) layout. The 8 x 8 ones keep im2col:
           with a few images a pass, transforming 384 x 448 filters would cost more than the
           16 tiles save. (The rule looks at the layer, not at the pass, so an image's
           features do not depend on the images it is batched with.) */
        gantl__wino s = gantl__wino_shape(nb, L->in_channels, h, w, O, L->pad_h, 1, ho, wo);
        s.xn = (int64_t)h * w, s.xc = nb * h * w, s.yn = hwo, s.yc = nb * hwo;
        if (!gantl__inc_reserve(&ws->col, &ws->col_floats, gantl__wino_conv_floats(&s))) return GANTL_ERR_NOMEM;
        gantl__wino_conv_run(ws->col, &s, y, x, L->weight, 0);
    } else {
        int64_t per_image = K * hwo, chunk = GANTL__INC_COL_BUDGET / per_image;
        if (chunk < 1) chunk = 1;
        if (chunk > nb) chunk = nb;
        if (!gantl__inc_reserve(&ws->col, &ws->col_floats, chunk * per_image) ||
            (chunk < nb && !gantl__inc_reserve(&ws->gout, &ws->gout_floats, O * chunk * hwo)))
            return GANTL_ERR_NOMEM;
        for (int64_t b0 = 0; b0 < nb; b0 += chunk) {
            int64_t m = nb - b0 < chunk ? nb - b0 : chunk;
            gantl__inc_im2col(L, x, nb, b0, m, h, w, ho, wo, ws->col);
            if (m == nb) {
                gantl_sgemm(y, L->weight, ws->col, 0, 0, 1.0f, 0.0f, O, m * hwo, K);
                continue;
            }
            gantl_sgemm(ws->gout, L->weight, ws->col, 0, 0, 1.0f, 0.0f, O, m * hwo, K);
            GANTL__OMP(parallel for schedule(static) if (O * m * hwo > 65536))
            for (int64_t o = 0; o < O; o++)
                memcpy(y + (o * nb + b0) * hwo, ws->gout + o * m * hwo, (size_t)(m * hwo) * sizeof(float));
        }
    }
    gantl__inc_bias_relu(y, L->bias, O, nb * hwo);
    return GANTL_OK;
}

/* max(a, b), NaN if either is (as torch's max pooling), without branches: the data are
   too irregular for branch prediction. */
static float gantl__inc_max(float a, float b) {
    uint32_t ua, ub, take = (uint32_t)0 - (uint32_t)((b > a) | (b != b));
    memcpy(&ua, &a, 4);
    memcpy(&ub, &b, 4);
    ua = (ub & take) | (ua & ~take);
    memcpy(&a, &ua, 4);
    return a;
}

#ifdef GANTL__VL
typedef int32_t gantl__vi __attribute__((vector_size(GANTL__VL * 4)));
static gantl__vf gantl__inc_vmax(gantl__vf a, gantl__vf b) {
    gantl__vi take = (b > a) | (b != b);
    return (gantl__vf)((take & (gantl__vi)b) | (~take & (gantl__vi)a));
}
#endif

/* o[i] = max(o[i], r[i]) or o[i] + r[i], for i < n (vectorised by hand: -O2 would not) */
static void gantl__inc_rows(float *o, const float *r, int n, int use_max) {
    int i = 0;
#ifdef GANTL__VL
    for (; i + GANTL__VL <= n; i += GANTL__VL) {
        gantl__vf a = *(gantl__vf_unaligned *)(o + i), b = *(const gantl__vf_unaligned *)(r + i);
        *(gantl__vf_unaligned *)(o + i) = use_max ? gantl__inc_vmax(a, b) : a + b;
    }
#endif
    for (; i < n; i++) o[i] = use_max ? gantl__inc_max(o[i], r[i]) : o[i] + r[i];
}

/* max_pool2d(kernel 3, stride 2) without padding, per plane: the maximum of three rows,
   then of three columns of that. */
static void gantl__inc_maxpool_s2(const float *x, int64_t planes, int h, int w, float *y) {
    const int ho = (h - 3) / 2 + 1, wo = (w - 3) / 2 + 1;
    GANTL__CHECK(w <= 512, "inception: max pooling of rows of %d > 512", w);
    GANTL__OMP(parallel for schedule(static) if (planes * ho * wo > 16384))
    for (int64_t p = 0; p < planes; p++) {
        const float *in = x + p * h * w;
        float *out = y + p * ho * wo, v[512];
        for (int oy = 0; oy < ho; oy++) {
            const float *r0 = in + (int64_t)(2 * oy) * w;
            memcpy(v, r0, (size_t)w * sizeof(float));
            gantl__inc_rows(v, r0 + w, w, 1);
            gantl__inc_rows(v, r0 + 2 * w, w, 1);
            for (int ox = 0; ox < wo; ox++)
                out[(int64_t)oy * wo + ox] = gantl__inc_max(gantl__inc_max(v[2 * ox], v[2 * ox + 1]), v[2 * ox + 2]);
        }
    }
}

/* Kernel 3, stride 1, padding 1, per plane: the average over the window's in-bounds
   elements (avg_pool2d with count_include_pad=False), or their maximum (padding never
   wins, as max_pool2d's -inf padding). Rows first, in place in y, then columns. */
static void gantl__inc_pool_same(const float *x, int64_t planes, int h, int w, float *y, int use_max) {
    GANTL__OMP(parallel for schedule(static) if (planes * h * w > 16384))
    for (int64_t p = 0; p < planes; p++) {
        const float *in = x + p * h * w;
        for (int oy = 0; oy < h; oy++) {
            int y0 = oy > 0 ? oy - 1 : 0, y1 = oy + 2 < h ? oy + 2 : h;
            float *o = y + p * h * w + (int64_t)oy * w;
            memcpy(o, in + (int64_t)y0 * w, (size_t)w * sizeof(float));
            for (int iy = y0 + 1; iy < y1; iy++) gantl__inc_rows(o, in + (int64_t)iy * w, w, use_max);
            float prev = use_max ? -INFINITY : 0.0f, cur = o[0], rows = (float)(y1 - y0);
            for (int i = 0; i < w; i++) {
                float next = i + 1 < w ? o[i + 1] : use_max ? -INFINITY : 0.0f;
                if (use_max) o[i] = gantl__inc_max(gantl__inc_max(prev, cur), next);
                else o[i] = (prev + cur + next) / (rows * (float)(1 + (i > 0) + (i + 1 < w)));
                prev = cur, cur = next;
            }
        }
    }
}

#define GANTL__INC_TRY(expr)                                                                   \
    do {                                                                                       \
        gantl_status gantl__inc_s = (expr);                                                    \
        if (gantl__inc_s != GANTL_OK) return gantl__inc_s;                                     \
    } while (0)

/* The mixed blocks: x (cin, nb, h, w) -> y, with temporaries t, u (one slot each). L: the
   block's first layer (see gantl__inc_layers for the order). Channel c of y starts at
   y + c n, n = nb h w (or the output size for the stride-2 blocks). */
static gantl_status gantl__inc_block_a(gantl__inc_ws *ws, const gantl_inception_conv *L, int64_t nb, const float *x,
                                       int h, int w, float *y, float *t, float *u) {
    const int64_t n = nb * h * w;
    GANTL__INC_TRY(gantl__inc_conv(ws, &L[0], 3, nb, x, h, w, t)); /* branch1x1, 5x5_1, 3x3dbl_1: 64 + 48 + 64 */
    memcpy(y, t, (size_t)(64 * n) * sizeof(float));
    GANTL__INC_TRY(gantl__inc_conv(ws, &L[3], 1, nb, t + 64 * n, h, w, y + 64 * n));
    GANTL__INC_TRY(gantl__inc_conv(ws, &L[4], 1, nb, t + 112 * n, h, w, u));
    GANTL__INC_TRY(gantl__inc_conv(ws, &L[5], 1, nb, u, h, w, y + 128 * n));
    gantl__inc_pool_same(x, L[0].in_channels * nb, h, w, t, 0);
    return gantl__inc_conv(ws, &L[6], 1, nb, t, h, w, y + 224 * n);
}

static gantl_status gantl__inc_block_b(gantl__inc_ws *ws, const gantl_inception_conv *L, int64_t nb, const float *x,
                                       int h, int w, float *y, float *t, float *u) {
    const int64_t no = nb * ((h - 3) / 2 + 1) * ((w - 3) / 2 + 1);
    GANTL__INC_TRY(gantl__inc_conv(ws, &L[0], 1, nb, x, h, w, y));
    GANTL__INC_TRY(gantl__inc_conv(ws, &L[1], 1, nb, x, h, w, t));
    GANTL__INC_TRY(gantl__inc_conv(ws, &L[2], 1, nb, t, h, w, u));
    GANTL__INC_TRY(gantl__inc_conv(ws, &L[3], 1, nb, u, h, w, y + 384 * no));
    gantl__inc_maxpool_s2(x, L[0].in_channels * nb, h, w, y + 480 * no);
    return GANTL_OK;
}

static gantl_status gantl__inc_block_c(gantl__inc_ws *ws, const gantl_inception_conv *L, int64_t nb, const float *x,
                                       int h, int w, float *y, float *t, float *u) {
    const int64_t n = nb * h * w, c7 = L[1].out_channels;
    GANTL__INC_TRY(gantl__inc_conv(ws, &L[0], 3, nb, x, h, w, t)); /* branch1x1, 7x7_1, 7x7dbl_1: 192 + c7 + c7 */
    memcpy(y, t, (size_t)(192 * n) * sizeof(float));
    GANTL__INC_TRY(gantl__inc_conv(ws, &L[3], 1, nb, t + 192 * n, h, w, u));
    GANTL__INC_TRY(gantl__inc_conv(ws, &L[4], 1, nb, u, h, w, y + 192 * n));
    GANTL__INC_TRY(gantl__inc_conv(ws, &L[5], 1, nb, t + (192 + c7) * n, h, w, u));
    GANTL__INC_TRY(gantl__inc_conv(ws, &L[6], 1, nb, u, h, w, t));
    GANTL__INC_TRY(gantl__inc_conv(ws, &L[7], 1, nb, t, h, w, u));
    GANTL__INC_TRY(gantl__inc_conv(ws, &L[8], 1, nb, u, h, w, y + 384 * n));
    gantl__inc_pool_same(x, L[0].in_channels * nb, h, w, t, 0);
    return gantl__inc_conv(ws, &L[9], 1, nb, t, h, w, y + 576 * n);
}

static gantl_status gantl__inc_block_d(gantl__inc_ws *ws, const gantl_inception_conv *L, int64_t nb, const float *x,
                                       int h, int w, float *y, float *t, float *u) {
    const int64_t n = nb * h * w, no = nb * ((h - 3) / 2 + 1) * ((w - 3) / 2 + 1);
    GANTL__INC_TRY(gantl__inc_conv(ws, &L[0], 2, nb, x, h, w, t)); /* branch3x3_1, 7x7x3_1: 192 + 192 */
    GANTL__INC_TRY(gantl__inc_conv(ws, &L[2], 1, nb, t, h, w, y));
    GANTL__INC_TRY(gantl__inc_conv(ws, &L[3], 1, nb, t + 192 * n, h, w, u));
    GANTL__INC_TRY(gantl__inc_conv(ws, &L[4], 1, nb, u, h, w, t));
    GANTL__INC_TRY(gantl__inc_conv(ws, &L[5], 1, nb, t, h, w, y + 320 * no));
    gantl__inc_maxpool_s2(x, L[0].in_channels * nb, h, w, y + 512 * no);
    return GANTL_OK;
}

static gantl_status gantl__inc_block_e(gantl__inc_ws *ws, const gantl_inception_conv *L, int64_t nb, const float *x,
                                       int h, int w, float *y, float *t, float *u, int max_pool) {
    const int64_t n = nb * h * w;
    GANTL__INC_TRY(gantl__inc_conv(ws, &L[0], 3, nb, x, h, w, t)); /* branch1x1, 3x3_1, 3x3dbl_1: 320 + 384 + 448 */
    memcpy(y, t, (size_t)(320 * n) * sizeof(float));
    GANTL__INC_TRY(gantl__inc_conv(ws, &L[3], 1, nb, t + 320 * n, h, w, y + 320 * n));
    GANTL__INC_TRY(gantl__inc_conv(ws, &L[4], 1, nb, t + 320 * n, h, w, y + 704 * n));
    GANTL__INC_TRY(gantl__inc_conv(ws, &L[5], 1, nb, t + 704 * n, h, w, u));
    GANTL__INC_TRY(gantl__inc_conv(ws, &L[6], 1, nb, u, h, w, y + 1088 * n));
    GANTL__INC_TRY(gantl__inc_conv(ws, &L[7], 1, nb, u, h, w, y + 1472 * n));
    gantl__inc_pool_same(x, L[0].in_channels * nb, h, w, t, max_pool);
    return gantl__inc_conv(ws, &L[8], 1, nb, t, h, w, y + 1856 * n);
}

/* The network on nb images already in ws->work as (3, nb, 299, 299) at work + nb * STEM0;
   writes their pool3 features to out (nb, 2048). */
static gantl_status gantl__inc_forward(const gantl_inception *net, gantl__inc_ws *ws, int64_t nb, float *out) {
    const gantl_inception_conv *L = net->conv;
    float *s0 = ws->work, *s1 = ws->work + nb * GANTL__INC_STEM0;
    int h = GANTL_INCEPTION_SIZE, w = GANTL_INCEPTION_SIZE;
    GANTL__INC_TRY(gantl__inc_conv(ws, &L[0], 1, nb, s1, h, w, s0));
    h = (h - 3) / 2 + 1, w = (w - 3) / 2 + 1;
    GANTL__INC_TRY(gantl__inc_conv(ws, &L[1], 1, nb, s0, h, w, s1));
    h -= 2, w -= 2;
    GANTL__INC_TRY(gantl__inc_conv(ws, &L[2], 1, nb, s1, h, w, s0));
    gantl__inc_maxpool_s2(s0, 64 * nb, h, w, s1);
    h = (h - 3) / 2 + 1, w = (w - 3) / 2 + 1;
    GANTL__INC_TRY(gantl__inc_conv(ws, &L[3], 1, nb, s1, h, w, s0));
    GANTL__INC_TRY(gantl__inc_conv(ws, &L[4], 1, nb, s0, h, w, s1));
    h -= 2, w -= 2;
    gantl__inc_maxpool_s2(s1, 192 * nb, h, w, s0);
    h = (h - 3) / 2 + 1, w = (w - 3) / 2 + 1;
    /* the blocks: input and output alternate between slots 0 and 1; 2 and 3 are temporaries */
    float *slot[4];
    for (int k = 0; k < 4; k++) slot[k] = ws->work + k * nb * GANTL__INC_SLOT;
    float *x = slot[0], *y = slot[1], *t = slot[2], *u = slot[3], *swap;
    L += 5;
    for (int b = 0; b < 3; b++, L += 7) {
        GANTL__INC_TRY(gantl__inc_block_a(ws, L, nb, x, h, w, y, t, u));
        swap = x, x = y, y = swap;
    }
    GANTL__INC_TRY(gantl__inc_block_b(ws, L, nb, x, h, w, y, t, u));
    swap = x, x = y, y = swap;
    L += 4;
    h = (h - 3) / 2 + 1, w = (w - 3) / 2 + 1;
    for (int b = 0; b < 4; b++, L += 10) {
        GANTL__INC_TRY(gantl__inc_block_c(ws, L, nb, x, h, w, y, t, u));
        swap = x, x = y, y = swap;
    }
    GANTL__INC_TRY(gantl__inc_block_d(ws, L, nb, x, h, w, y, t, u));
    swap = x, x = y, y = swap;
    L += 6;
    h = (h - 3) / 2 + 1, w = (w - 3) / 2 + 1;
    for (int b = 0; b < 2; b++, L += 9) {
        GANTL__INC_TRY(gantl__inc_block_e(ws, L, nb, x, h, w, y, t, u, b == 1));
        swap = x, x = y, y = swap;
    }
    /* pool3: the mean of each (channel, image) plane of x */
    const int64_t hw = (int64_t)h * w;
    GANTL__OMP(parallel for schedule(static))
    for (int64_t c = 0; c < GANTL_INCEPTION_FEATURES; c++)
        for (int64_t b = 0; b < nb; b++) {
            const float *plane = x + (c * nb + b) * hw;
            double sum = 0;
            for (int64_t i = 0; i < hw; i++) sum += plane[i];
            out[b * GANTL_INCEPTION_FEATURES + c] = (float)(sum / (double)hw);
        }
    return GANTL_OK;
}

/* Images start .. start + nb - 1: resize into the worker's input slot, then the network. */
static gantl_status gantl__inc_run(const gantl_inception *net, gantl__inc_ws *ws, const float *images, int64_t start,
                                   int64_t nb, int channels, int height, int width, const gantl__lerp *table,
                                   float *features) {
    const int S = GANTL_INCEPTION_SIZE;
    const int64_t plane_in = (int64_t)height * width, plane = (int64_t)S * S;
    if (!gantl__inc_reserve(&ws->work, &ws->work_floats, nb * (GANTL__INC_STEM0 + GANTL__INC_STEM1)))
        return GANTL_ERR_NOMEM;
    float *input = ws->work + nb * GANTL__INC_STEM0; /* (3, nb, 299, 299) */
    GANTL__OMP(parallel for schedule(static))
    for (int64_t task = 0; task < channels * nb; task++) {
        int64_t c = task / nb, b = task % nb;
        const float *src = images + ((start + b) * channels + c) * plane_in;
        float *dst = input + (c * nb + b) * plane;
        if (height == S && width == S) memcpy(dst, src, (size_t)plane * sizeof(float));
        else gantl__resize_plane(src, width, dst, S, S, table, table + S);
    }
    if (channels == 1)
        for (int c = 1; c < 3; c++) memcpy(input + c * nb * plane, input, (size_t)(nb * plane) * sizeof(float));
    return gantl__inc_forward(net, ws, nb, features + start * GANTL_INCEPTION_FEATURES);
}

/* Threads: with several images, each OpenMP thread runs whole passes of its own images with
   single-threaded kernels (far fewer synchronisations than splitting every layer, and
   robust to a busy machine); a single image uses every thread inside the kernels. The
   features do not depend on the split: each image's arithmetic is the same in any batch. */
GANTLDEF gantl_status gantl_inception_features(gantl_inception *net, const float *images, int64_t n, int channels,
                                               int height, int width, float *features) {
    GANTL__CHECK(net && net->params, "inception_features: the network is not loaded");
    GANTL__CHECK(n >= 0 && (n == 0 || (images && features)), "inception_features: n = %lld with images %p, features %p",
                 (long long)n, (const void *)images, (void *)features);
    if (channels != 1 && channels != 3)
        return gantl__fail(GANTL_ERR_INVALID, "inception: images have %d channels, expected 1 (grey) or 3 (RGB)",
                           channels);
    if (height < 1 || width < 1)
        return gantl__fail(GANTL_ERR_INVALID, "inception: images of %d x %d pixels", height, width);
    if (n == 0) return GANTL_OK;
    int64_t workers = n > 1 ? gantl_num_threads() : 1, batch = net->batch > 0 ? net->batch : 4;
    if (workers > n) workers = n;
    if (batch > (n + workers - 1) / workers) batch = (n + workers - 1) / workers;
    if (net->ws_count_ < workers) {
        gantl__inc_ws *ws = (gantl__inc_ws *)GANTL_REALLOC(net->ws_, (size_t)workers * sizeof(gantl__inc_ws));
        if (!ws) return gantl__fail(GANTL_ERR_NOMEM, "inception: out of memory");
        memset(ws + net->ws_count_, 0, (size_t)(workers - net->ws_count_) * sizeof(gantl__inc_ws));
        net->ws_ = ws;
        net->ws_count_ = (int)workers;
    }
    gantl__lerp *table = (gantl__lerp *)GANTL_MALLOC((size_t)(2 * GANTL_INCEPTION_SIZE) * sizeof(gantl__lerp));
    if (!table) return gantl__fail(GANTL_ERR_NOMEM, "inception: out of memory");
    gantl__lerp_table(height, GANTL_INCEPTION_SIZE, table);
    gantl__lerp_table(width, GANTL_INCEPTION_SIZE, table + GANTL_INCEPTION_SIZE);
    gantl__inc_ws *ws = (gantl__inc_ws *)net->ws_;
    int failed = 0;
    if (workers == 1) {
        for (int64_t start = 0; start < n && !failed; start += batch) {
            int64_t nb = n - start < batch ? n - start : batch;
            failed = gantl__inc_run(net, ws, images, start, nb, channels, height, width, table, features) != GANTL_OK;
        }
    } else {
        int64_t next = 0;
        GANTL__OMP(parallel num_threads((int)workers))
        {
#if defined(_OPENMP) && !defined(GANTL_NO_OPENMP)
            gantl__inc_ws *mine = ws + omp_get_thread_num();
#else
            gantl__inc_ws *mine = ws;
#endif
            for (;;) {
                int64_t start;
                GANTL__OMP(critical(gantl__inception))
                {
                    start = failed ? n : next;
                    next += batch;
                }
                if (start >= n) break;
                int64_t nb = n - start < batch ? n - start : batch;
                if (gantl__inc_run(net, mine, images, start, nb, channels, height, width, table, features) != GANTL_OK) {
                    GANTL__OMP(critical(gantl__inception))
                    failed = 1;
                }
            }
        }
    }
    GANTL_FREE(table);
    /* the only failure: a workspace allocation (on whichever thread) */
    return failed ? gantl__fail(GANTL_ERR_NOMEM, "inception: out of memory for the workspace (%lld images a pass)",
                                (long long)batch)
                  : GANTL_OK;
}

#ifdef __cplusplus
}
#endif
#endif /* GANTL__IMPLEMENTED */
#endif /* GANTL_IMPLEMENTATION */
