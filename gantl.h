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
*/
#ifndef GANTL_H
#define GANTL_H

#include <stddef.h>
#include <stdint.h>

#ifdef GANTL_STATIC
#define GANTLDEF static
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
    GANTL_ERR_DEVICE       /* a device (CUDA) call failed */
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

/* ---------------------------------------------------------------------------------------
   3. Contexts and tensors
   ------------------------------------------------------------------------------------- */

typedef enum gantl_device { GANTL_CPU = 0, GANTL_CUDA = 1, GANTL_DEVICE_COUNT } gantl_device;

enum {
    GANTL_FLAG_REQUIRES_GRAD = 1u << 0, /* gradients flow to or through this tensor */
    GANTL_FLAG_PARAM = 1u << 1          /* persistent leaf of a gantl_params set */
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
    X(BIAS_ACT_GRAD, bias_act_grad, 2)       /* g * act'(y) * gain * [|y| < clamp] */

typedef enum gantl_op {
#define GANTL__OP_ENUM(e, n, k) GANTL_OP_##e,
    GANTL_OP_TABLE(GANTL__OP_ENUM)
#undef GANTL__OP_ENUM
    GANTL_OP_COUNT
} gantl_op;

GANTLDEF const char *gantl_op_name(int op);
GANTLDEF int gantl_op_num_inputs(int op);

/* A device backend: one forward kernel per op, in table order (NULL: not supported). */
typedef void (*gantl_kernel_fn)(gantl_ctx *ctx, gantl_tensor *out);
typedef struct gantl_backend {
    const char *name;
    gantl_kernel_fn forward[GANTL_OP_COUNT];
} gantl_backend;
GANTLDEF void gantl_register_backend(gantl_device device, const gantl_backend *backend);
GANTLDEF const gantl_backend *gantl_get_backend(gantl_device device);

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
   f is a constant: no gradient flows into it. A 1-D f (k) means the outer product f f^T. */
GANTLDEF gantl_tensor *gantl_upfirdn2d(gantl_ctx *ctx, gantl_tensor *x, gantl_tensor *f, int up, int down,
                                       const int pad[4], int flip_filter, float gain);

typedef enum gantl_act { GANTL_ACT_LINEAR = 0, GANTL_ACT_LRELU = 1 } gantl_act;
/* StyleGAN2's bias_act: y = clamp((act(x + b)) * gain, -clamp, clamp), b (C) added along
   axis 1 (b may be NULL), alpha the lrelu slope (0 gives relu), clamp < 0 for none.
   As in the official kernel, the gradient is zero where |y| reached the clamp. */
GANTLDEF gantl_tensor *gantl_bias_act(gantl_ctx *ctx, gantl_tensor *x, gantl_tensor *b, gantl_act act, float alpha,
                                      float gain, float clamp);

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
} gantl_params;

GANTLDEF void gantl_params_init(gantl_params *P, int requires_grad);
GANTLDEF void gantl_params_free(gantl_params *P);
/* Adds a zero-filled tensor; NULL on out-of-memory (see gantl_last_error). */
GANTLDEF gantl_tensor *gantl_params_add(gantl_params *P, const char *name, int ndim, const int64_t *shape);
GANTLDEF gantl_tensor *gantl_params_find(const gantl_params *P, const char *name);
GANTLDEF void gantl_params_zero_grad(gantl_params *P);
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
    int64_t step;
    int64_t numel;
    float *m; /* (numel,) first moments */
    float *v; /* (numel,) second moments */
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
    float *buf; /* (numel,) momentum buffer */
} gantl_sgd;
GANTLDEF gantl_status gantl_sgd_init(gantl_sgd *opt, const gantl_params *P, double lr, double momentum);
GANTLDEF void gantl_sgd_step(gantl_sgd *opt, gantl_params *P);
GANTLDEF void gantl_sgd_free(gantl_sgd *opt);

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

/* Writes a file atomically: path.tmp, then rename. */
GANTLDEF gantl_status gantl_write_file_atomic(const char *path, const void *data, size_t size);
/* Reads a whole file into a GANTL_MALLOC'd buffer. */
GANTLDEF gantl_status gantl_read_file(const char *path, unsigned char **data, size_t *size);

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

/* ---------------------------------------------------------------------------------------
   3. Contexts and tensors
   ------------------------------------------------------------------------------------- */

#define GANTL__ALIGN 64

typedef struct gantl__chunk {
    struct gantl__chunk *next;
    size_t size, used;
    unsigned char *base; /* GANTL__ALIGN-aligned start inside the allocation */
} gantl__chunk;

struct gantl_ctx {
    gantl__chunk *chunks;  /* newest first; allocation happens in the newest */
    size_t chunk_bytes;    /* size of a fresh chunk */
    size_t held, limit;    /* bytes in chunks; limit (0: none) */
    size_t used, peak;     /* bytes handed out this step; most in any step */
    gantl_status status;   /* sticky out-of-memory flag */
    int grad_enabled;
    void *scratch;         /* kernel workspace, reused by every op */
    size_t scratch_bytes;
};

static gantl__chunk *gantl__chunk_new(size_t size) {
    gantl__chunk *c = (gantl__chunk *)GANTL_MALLOC(sizeof(gantl__chunk) + size + GANTL__ALIGN);
    if (!c) return NULL;
    uintptr_t p = (uintptr_t)(c + 1);
    c->base = (unsigned char *)((p + GANTL__ALIGN - 1) & ~(uintptr_t)(GANTL__ALIGN - 1));
    c->next = NULL;
    c->size = size;
    c->used = 0;
    return c;
}

GANTLDEF gantl_ctx *gantl_ctx_new(size_t chunk_bytes) {
    gantl_ctx *ctx = (gantl_ctx *)GANTL_MALLOC(sizeof(gantl_ctx));
    if (!ctx) {
        gantl__fail(GANTL_ERR_NOMEM, "gantl_ctx_new: out of memory");
        return NULL;
    }
    memset(ctx, 0, sizeof *ctx);
    ctx->chunk_bytes = chunk_bytes ? chunk_bytes : ((size_t)16 << 20);
    ctx->grad_enabled = 1;
    return ctx;
}

GANTLDEF void gantl_ctx_free(gantl_ctx *ctx) {
    if (!ctx) return;
    for (gantl__chunk *c = ctx->chunks, *next; c; c = next) {
        next = c->next;
        GANTL_FREE(c);
    }
    GANTL_FREE(ctx->scratch);
    GANTL_FREE(ctx);
}

GANTLDEF void gantl_ctx_reset(gantl_ctx *ctx) {
    /* Several chunks this step: replace them by one that holds them all, so the next
       step of the same shape allocates nothing. */
    if (ctx->chunks && ctx->chunks->next) {
        size_t total = 0;
        for (gantl__chunk *c = ctx->chunks, *next; c; c = next) {
            next = c->next;
            total += c->size;
            GANTL_FREE(c);
        }
        ctx->chunks = gantl__chunk_new(total);
        ctx->held = ctx->chunks ? total : 0;
    }
    if (ctx->chunks) ctx->chunks->used = 0;
    ctx->used = 0;
    ctx->status = GANTL_OK;
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

static void gantl__out_of_memory(gantl_ctx *ctx, size_t bytes) {
    if (ctx->status == GANTL_OK)
        gantl__fail(GANTL_ERR_NOMEM, "gantl: out of memory allocating %zu bytes (context holds %zu, limit %zu)",
                    bytes, ctx->held, ctx->limit);
    ctx->status = GANTL_ERR_NOMEM;
}

/* Bump allocation from the arena, GANTL__ALIGN-aligned; NULL (and a sticky status) when
   memory or the limit runs out. */
static void *gantl__alloc(gantl_ctx *ctx, size_t bytes) {
    bytes = (bytes + GANTL__ALIGN - 1) & ~(size_t)(GANTL__ALIGN - 1);
    gantl__chunk *c = ctx->chunks;
    if (!c || c->size - c->used < bytes) {
        size_t size = bytes > ctx->chunk_bytes ? bytes : ctx->chunk_bytes;
        if (ctx->limit && ctx->held + size > ctx->limit) size = bytes;
        if (ctx->limit && ctx->held + size > ctx->limit) {
            gantl__out_of_memory(ctx, bytes);
            return NULL;
        }
        gantl__chunk *fresh = gantl__chunk_new(size);
        if (!fresh) {
            gantl__out_of_memory(ctx, bytes);
            return NULL;
        }
        fresh->next = c;
        ctx->chunks = c = fresh;
        ctx->held += size;
    }
    void *p = c->base + c->used;
    c->used += bytes;
    ctx->used += bytes;
    if (ctx->used > ctx->peak) ctx->peak = ctx->used;
    return p;
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

/* A tensor header with a fresh data buffer (data == NULL for views, set by the caller). */
static gantl_tensor *gantl__tensor(gantl_ctx *ctx, int ndim, const int64_t *shape, int with_data) {
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
    t->device = GANTL_CPU;
    if (with_data) {
        t->data = (float *)gantl__alloc(ctx, (size_t)(t->numel ? t->numel : 1) * sizeof(float));
        if (!t->data) return NULL;
    }
    return t;
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
    int64_t size[GANTL_MAX_DIMS], sa[GANTL_MAX_DIMS], sb[GANTL_MAX_DIMS];
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
        if (sa3 == 1 && sb3 == 1)                                                              \
            for (int64_t j = 0; j < n3; j++) { float A = pa[j], B = pb[j]; po[j] = (EXPR); }   \
        else if (sb3 == 0) {                                                                   \
            float B = pb[0];                                                                   \
            for (int64_t j = 0; j < n3; j++) { float A = pa[j * sa3]; po[j] = (EXPR); }        \
        } else if (sa3 == 0) {                                                                 \
            float A = pa[0];                                                                   \
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
    GANTL__OMP(parallel for schedule(static) if (n > 32768))
    for (int64_t i = 0; i < n; i++) out->data[i] = x[i] > 0.0f ? g[i] : g[i] * alpha;
}

/* Sum over the axes where out has size 1 and x does not (keepdim), in double. */
static void gantl__cpu_sum(gantl_ctx *ctx, gantl_tensor *out) {
    (void)ctx;
    const gantl_tensor *x = out->src[0];
    int64_t xs[4], os[4], red[4];
    gantl__strides(xs, x->shape);
    gantl__strides(os, out->shape);
    for (int d = 0; d < 4; d++) red[d] = out->shape[d] == 1 ? x->shape[d] : 1;
    if (out->numel == 1) {
        double acc = 0.0;
        const float *xd = x->data;
        int64_t n = x->numel;
        GANTL__OMP(parallel for schedule(static) reduction(+ : acc) if (n > 32768))
        for (int64_t i = 0; i < n; i++) acc += xd[i];
        out->data[0] = (float)acc;
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
                    for (int64_t j3 = 0; j3 < red[3]; j3++) acc += p[j3 * xs[3]];
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
    /* Small matrices: parallel over the batch (sgemm then runs on one thread). */
    GANTL__OMP(parallel for schedule(static) if (batch > 1 && m * n * k < (1 << 18)))
    for (int64_t i = 0; i < batch; i++)
        gantl_sgemm(out->data + i * m * n, a->data + (batch_a > 1 ? i * m * k : 0),
                    b->data + (batch_b > 1 ? i * k * n : 0), ta, tb, 1.0f, 0.0f, m, n, k);
}

/* im2col for one image and one group: col (C*kh*kw, Ho*Wo) from x (C, H, W). */
static void gantl__im2col(float *col, const float *x, int64_t C, int64_t H, int64_t W, int kh, int kw, int stride,
                          int pad, int64_t Ho, int64_t Wo) {
    int64_t rows = C * kh * kw;
    GANTL__OMP(parallel for schedule(static) if (rows * Ho * Wo > 32768))
    for (int64_t r = 0; r < rows; r++) {
        int64_t c = r / (kh * kw);
        int ky = (int)(r / kw % kh), kx = (int)(r % kw);
        float *dst = col + r * Ho * Wo;
        const float *src = x + c * H * W;
        for (int64_t oy = 0; oy < Ho; oy++) {
            int64_t iy = oy * stride - pad + ky;
            float *d = dst + oy * Wo;
            if (iy < 0 || iy >= H) {
                memset(d, 0, (size_t)Wo * sizeof(float));
                continue;
            }
            for (int64_t ox = 0; ox < Wo; ox++) {
                int64_t ix = ox * stride - pad + kx;
                d[ox] = (ix >= 0 && ix < W) ? src[iy * W + ix] : 0.0f;
            }
        }
    }
}

/* col2im: x (C, H, W) = sum of the col (C*kh*kw, Ho*Wo) entries that im2col would read
   from each pixel. Parallel over channels, so no two threads write the same pixel. */
static void gantl__col2im(float *x, const float *col, int64_t C, int64_t H, int64_t W, int kh, int kw, int stride,
                          int pad, int64_t Ho, int64_t Wo) {
    GANTL__OMP(parallel for schedule(static) if (C * H * W * kh * kw > 32768))
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

/* y (N, O, Ho, Wo) = conv2d(x (N, C, H, W), w (O, C/g, kh, kw)): per image and group,
   y_g (O/g, Ho*Wo) = w_g (O/g, C/g*kh*kw) @ im2col(x_g). */
static void gantl__cpu_conv2d(gantl_ctx *ctx, gantl_tensor *out) {
    const gantl_tensor *x = out->src[0], *w = out->src[1];
    int stride = out->ip[0], pad = out->ip[1], groups = out->ip[2];
    int64_t N = x->shape[0], C = x->shape[1], H = x->shape[2], W = x->shape[3];
    int64_t O = w->shape[0], kh = w->shape[2], kw = w->shape[3], Ho = out->shape[2], Wo = out->shape[3];
    int64_t Cg = C / groups, Og = O / groups, K = Cg * kh * kw, P = Ho * Wo;
    int direct = kh == 1 && kw == 1 && stride == 1 && pad == 0;
    float *col = direct ? NULL : (float *)gantl__scratch(ctx, (size_t)(K * P) * sizeof(float));
    if (!direct && !col) return;
    for (int64_t n = 0; n < N; n++)
        for (int g = 0; g < groups; g++) {
            const float *xg = x->data + (n * C + g * Cg) * H * W;
            if (!direct) gantl__im2col(col, xg, Cg, H, W, (int)kh, (int)kw, stride, pad, Ho, Wo);
            gantl_sgemm(out->data + (n * O + g * Og) * P, w->data + g * Og * K, direct ? xg : col, 0, 0, 1.0f, 0.0f,
                        Og, P, K);
        }
}

/* y (N, O, Ho, Wo) = conv_transpose2d(x (N, C, H, W), w (C, O/g, kh, kw)), the adjoint of
   conv2d: per image and group, col (O/g*kh*kw, H*W) = w_g^T @ x_g, then col2im. */
static void gantl__cpu_conv_transpose2d(gantl_ctx *ctx, gantl_tensor *out) {
    const gantl_tensor *x = out->src[0], *w = out->src[1];
    int stride = out->ip[0], pad = out->ip[1], groups = out->ip[2];
    int64_t N = x->shape[0], C = x->shape[1], H = x->shape[2], W = x->shape[3];
    int64_t O = out->shape[1], kh = w->shape[2], kw = w->shape[3], Ho = out->shape[2], Wo = out->shape[3];
    int64_t Cg = C / groups, Og = O / groups, K = Og * kh * kw, P = H * W;
    int direct = kh == 1 && kw == 1 && stride == 1 && pad == 0;
    float *col = direct ? NULL : (float *)gantl__scratch(ctx, (size_t)(K * P) * sizeof(float));
    if (!direct && !col) return;
    for (int64_t n = 0; n < N; n++)
        for (int g = 0; g < groups; g++) {
            const float *xg = x->data + (n * C + g * Cg) * P;
            float *yg = out->data + (n * O + g * Og) * Ho * Wo;
            gantl_sgemm(direct ? yg : col, w->data + g * Cg * K, xg, 1, 0, 1.0f, 0.0f, K, P, Cg);
            if (!direct) gantl__col2im(yg, col, Og, Ho, Wo, (int)kh, (int)kw, stride, pad, H, W);
        }
}

/* gw (O, C/g, kh, kw) = sum_n gy_g (O/g, Ho*Wo) @ im2col(x_g)^T. */
static void gantl__cpu_conv2d_wgrad(gantl_ctx *ctx, gantl_tensor *out) {
    const gantl_tensor *x = out->src[0], *gy = out->src[1];
    int stride = out->ip[0], pad = out->ip[1], groups = out->ip[2];
    int64_t N = x->shape[0], C = x->shape[1], H = x->shape[2], W = x->shape[3];
    int64_t O = out->shape[0], kh = out->shape[2], kw = out->shape[3], Ho = gy->shape[2], Wo = gy->shape[3];
    int64_t Cg = C / groups, Og = O / groups, K = Cg * kh * kw, P = Ho * Wo;
    int direct = kh == 1 && kw == 1 && stride == 1 && pad == 0;
    float *col = direct ? NULL : (float *)gantl__scratch(ctx, (size_t)(K * P) * sizeof(float));
    if (!direct && !col) return;
    if (N == 0) gantl__fill(out->data, 0.0f, out->numel);
    for (int64_t n = 0; n < N; n++)
        for (int g = 0; g < groups; g++) {
            const float *xg = x->data + (n * C + g * Cg) * H * W;
            if (!direct) gantl__im2col(col, xg, Cg, H, W, (int)kh, (int)kw, stride, pad, Ho, Wo);
            gantl_sgemm(out->data + g * Og * K, gy->data + (n * O + g * Og) * P, direct ? xg : col, 0, 1, 1.0f,
                        n == 0 ? 0.0f : 1.0f, Og, K, P);
        }
}

/* upfirdn2d: y[oy, ox] = gain * sum_t f'[t] * u[oy*down + ty - pad_y0, ...] where u is x
   upsampled by zero insertion (u[q] = x[q/up] when up divides q) and f' is f flipped
   (a true convolution) unless flip_filter. Params: up x/y, down x/y, pad x0 x1 y0 y1, flip. */
static void gantl__cpu_upfirdn2d(gantl_ctx *ctx, gantl_tensor *out) {
    (void)ctx;
    const gantl_tensor *x = out->src[0], *f = out->src[1];
    int upx = out->ip[0], upy = out->ip[1], downx = out->ip[2], downy = out->ip[3];
    int px0 = out->ip[4], py0 = out->ip[6], flip = out->ip[8];
    float gain = out->fp[0];
    int64_t NC = x->shape[0] * x->shape[1], H = x->shape[2], W = x->shape[3];
    int64_t Ho = out->shape[2], Wo = out->shape[3], fh = f->shape[0], fw = f->shape[1];
    GANTL__OMP(parallel for schedule(static) if (out->numel * fh * fw > 32768))
    for (int64_t nc = 0; nc < NC; nc++) {
        const float *xp = x->data + nc * H * W;
        float *yp = out->data + nc * Ho * Wo;
        for (int64_t oy = 0; oy < Ho; oy++)
            for (int64_t ox = 0; ox < Wo; ox++) {
                float acc = 0.0f;
                for (int64_t ty = 0; ty < fh; ty++) {
                    int64_t qy = oy * downy + ty - py0;
                    if (qy < 0 || qy % upy != 0 || qy / upy >= H) continue;
                    const float *xrow = xp + (qy / upy) * W;
                    const float *frow = f->data + (flip ? ty : fh - 1 - ty) * fw;
                    for (int64_t tx = 0; tx < fw; tx++) {
                        int64_t qx = ox * downx + tx - px0;
                        if (qx < 0 || qx % upx != 0 || qx / upx >= W) continue;
                        acc += frow[flip ? tx : fw - 1 - tx] * xrow[qx / upx];
                    }
                }
                yp[oy * Wo + ox] = acc * gain;
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
    GANTL__OMP(parallel for schedule(static) if (x->numel > 32768))
    for (int64_t r = 0; r < rows; r++) {
        float bias = b ? b->data[r % C] : 0.0f;
        const float *xp = x->data + r * inner;
        float *yp = out->data + r * inner;
        for (int64_t j = 0; j < inner; j++) {
            float v = xp[j] + bias;
            if (act == GANTL_ACT_LRELU && v < 0.0f) v *= alpha;
            v *= gain;
            if (clamp >= 0.0f) v = v > clamp ? clamp : (v < -clamp ? -clamp : v);
            yp[j] = v;
        }
    }
}

/* (g, y) -> g * act'(y) * gain, zero where |y| reached the clamp (the official rule). */
static void gantl__cpu_bias_act_grad(gantl_ctx *ctx, gantl_tensor *out) {
    (void)ctx;
    const float *g = out->src[0]->data, *y = out->src[1]->data;
    int act = out->ip[0];
    float alpha = out->fp[0], gain = out->fp[1], clamp = out->fp[2];
    int64_t n = out->numel;
    GANTL__OMP(parallel for schedule(static) if (n > 32768))
    for (int64_t i = 0; i < n; i++) {
        float v = g[i];
        if (act == GANTL_ACT_LRELU && !(y[i] > 0.0f)) v *= alpha;
        v *= gain;
        if (clamp >= 0.0f && !(y[i] > -clamp && y[i] < clamp)) v = 0.0f;
        out->data[i] = v;
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

static const gantl_backend gantl__cpu_backend = {
    "cpu",
    {
#define GANTL__OP_CPU(e, n, k) gantl__cpu_##n,
        GANTL_OP_TABLE(GANTL__OP_CPU)
#undef GANTL__OP_CPU
    },
};

static const gantl_backend *gantl__backends[GANTL_DEVICE_COUNT] = {&gantl__cpu_backend, NULL};

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
    gantl_tensor *t = gantl__tensor(ctx, ndim, shape, with_data);
    if (!t) return NULL;
    t->op = op;
    t->device = a->device;
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
    if (f->ndim == 1) { /* separable: the outer product, a constant */
        int64_t k = f->shape[0];
        gantl_tensor *f2 = gantl_new_2d(ctx, k, k);
        if (!f2) return NULL;
        for (int64_t i = 0; i < k; i++)
            for (int64_t j = 0; j < k; j++) f2->data[i * k + j] = f->data[i] * f->data[j];
        f = f2;
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

/* ---------------------------------------------------------------------------------------
   4d. Backward: given y = op(x...) and gy = dL/dy, emit ops for gx[i] = dL/dx_i where
   bit i of need is set. Because these are ordinary ops, the gradients are differentiable
   again. A gx left NULL means zero.
   ------------------------------------------------------------------------------------- */

typedef void (*gantl__backward_fn)(gantl_ctx *ctx, gantl_tensor *y, gantl_tensor *gy, gantl_tensor **gx, unsigned need);

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
    (void)ctx, (void)y, (void)gy, (void)gx, (void)need; /* zero almost everywhere */
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

/* bias_act_grad(g, y) is linear in g; the mask it applies is constant almost everywhere. */
static void gantl__bwd_bias_act_grad(gantl_ctx *ctx, gantl_tensor *y, gantl_tensor *gy, gantl_tensor **gx,
                                     unsigned need) {
    if (GANTL__NEED(0)) gx[0] = gantl__bias_act_grad(ctx, gy, y->src[1], y);
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
        node->grad = node->grad ? gantl_add(ctx, node->grad, seed) : seed;
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
        gantl__backward_table[t->op](ctx, t, g.nodes[k].grad, gx, need);
        for (int i = 0; i < GANTL_MAX_SRC; i++) {
            if (!gx[i] || !((need >> i) & 1u)) continue;
            GANTL__CHECK(gantl_same_shape(gx[i], t->src[i]), "backward of %s gave %s for input %d of shape %s",
                         gantl_op_name(t->op), GANTL__SHP(gx[i]), i, GANTL__SHP(t->src[i]));
            gantl__gnode *s = &g.nodes[src_node[i]];
            s->grad = s->grad ? gantl_add(ctx, s->grad, gx[i]) : gx[i];
        }
    }
    ctx->grad_enabled = saved_grad_mode;
    if (ctx->status == GANTL_OK) {
        if (inputs) {
            for (int i = 0; i < n_inputs; i++) {
                int k = gantl__graph_find(&g, inputs[i]);
                grads[i] = k >= 0 && g.nodes[k].grad ? g.nodes[k].grad : gantl_full_like(ctx, inputs[i], 0.0f);
            }
        } else {
            for (int k = 0; k < g.count; k++) { /* accumulate into parameter gradients */
                gantl_tensor *t = g.nodes[k].t;
                const gantl_tensor *gt = g.nodes[k].grad;
                if (!(t->flags & GANTL_FLAG_PARAM) || !t->grad || !gt) continue;
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
    GANTL_FREE(P->data);
    GANTL_FREE(P->grad);
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
        data = (float *)GANTL_REALLOC(P->data, (size_t)total * sizeof(float));
        if (data) P->data = data;
        if (data && P->requires_grad) {
            grad = (float *)GANTL_REALLOC(P->grad, (size_t)total * sizeof(float));
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
    memset(P->data + P->numel, 0, (size_t)slice * sizeof(float));
    if (P->grad) memset(P->grad + P->numel, 0, (size_t)slice * sizeof(float));
    memset(t, 0, sizeof *t);
    t->ndim = ndim;
    for (int d = 0; d < GANTL_MAX_DIMS; d++) t->shape[d] = d < ndim ? shape[d] : 1;
    t->numel = numel;
    t->op = GANTL_OP_NONE;
    t->device = GANTL_CPU;
    t->flags = GANTL_FLAG_PARAM | (P->requires_grad ? (uint32_t)GANTL_FLAG_REQUIRES_GRAD : 0u);
    t->name = copy;
    P->tensors[P->count++] = t;
    P->numel = total;
    gantl__params_rebind(P);
    return t;
}

GANTLDEF gantl_tensor *gantl_params_find(const gantl_params *P, const char *name) {
    for (int i = 0; i < P->count; i++)
        if (strcmp(P->tensors[i]->name, name) == 0) return P->tensors[i];
    return NULL;
}

GANTLDEF void gantl_params_zero_grad(gantl_params *P) {
    if (P->grad) memset(P->grad, 0, (size_t)P->numel * sizeof(float));
}

GANTLDEF void gantl_params_nan_to_num_grad(gantl_params *P, float limit) {
    float *g = P->grad;
    if (!g) return;
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
    if (src->numel) memcpy(dst->data, src->data, (size_t)src->numel * sizeof(float));
}

GANTLDEF void gantl_params_lerp(gantl_params *dst, const gantl_params *src, float t) {
    gantl__params_check_layout(dst, src, "params_lerp");
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
    return GANTL_OK;
}

static float *gantl__zalloc_floats(int64_t n) {
    float *p = (float *)GANTL_MALLOC((size_t)(n ? n : 1) * sizeof(float));
    if (p) memset(p, 0, (size_t)(n ? n : 1) * sizeof(float));
    return p;
}

GANTLDEF gantl_status gantl_adam_init(gantl_adam *opt, const gantl_params *P, double lr, double beta1, double beta2,
                                      double eps) {
    memset(opt, 0, sizeof *opt);
    opt->lr = lr, opt->beta1 = beta1, opt->beta2 = beta2, opt->eps = eps;
    opt->numel = P->numel;
    opt->m = gantl__zalloc_floats(P->numel);
    opt->v = gantl__zalloc_floats(P->numel);
    if (!opt->m || !opt->v) {
        gantl_adam_free(opt);
        return gantl__fail(GANTL_ERR_NOMEM, "adam_init: out of memory for %lld parameters", (long long)P->numel);
    }
    return GANTL_OK;
}

/* torch.optim.Adam: m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
   p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps). */
GANTLDEF void gantl_adam_step(gantl_adam *opt, gantl_params *P) {
    GANTL__CHECK(opt->numel == P->numel && P->grad, "adam_step: optimizer made for %lld values, parameters have %lld%s",
                 (long long)opt->numel, (long long)P->numel, P->grad ? "" : " and no gradients");
    opt->step++;
    double bc1 = 1.0 - pow(opt->beta1, (double)opt->step), bc2 = 1.0 - pow(opt->beta2, (double)opt->step);
    float step_size = (float)(opt->lr / bc1), bc2_sqrt = (float)sqrt(bc2), eps = (float)opt->eps;
    float b1 = (float)opt->beta1, b2 = (float)opt->beta2, one_b1 = (float)(1.0 - opt->beta1),
          one_b2 = (float)(1.0 - opt->beta2);
    float *p = P->data, *g = P->grad, *m = opt->m, *v = opt->v;
    GANTL__OMP(parallel for schedule(static) if (P->numel > 65536))
    for (int64_t i = 0; i < P->numel; i++) {
        m[i] = m[i] * b1 + g[i] * one_b1;
        v[i] = v[i] * b2 + one_b2 * g[i] * g[i];
        p[i] -= step_size * (m[i] / (sqrtf(v[i]) / bc2_sqrt + eps));
    }
}

GANTLDEF void gantl_adam_free(gantl_adam *opt) {
    GANTL_FREE(opt->m);
    GANTL_FREE(opt->v);
    opt->m = opt->v = NULL;
}

GANTLDEF gantl_status gantl_sgd_init(gantl_sgd *opt, const gantl_params *P, double lr, double momentum) {
    memset(opt, 0, sizeof *opt);
    opt->lr = lr, opt->momentum = momentum;
    opt->numel = P->numel;
    opt->buf = gantl__zalloc_floats(P->numel);
    if (!opt->buf) return gantl__fail(GANTL_ERR_NOMEM, "sgd_init: out of memory for %lld parameters", (long long)P->numel);
    return GANTL_OK;
}

/* torch.optim.SGD: buf = g on the first step, then buf = momentum * buf + g; p -= lr * buf. */
GANTLDEF void gantl_sgd_step(gantl_sgd *opt, gantl_params *P) {
    GANTL__CHECK(opt->numel == P->numel && P->grad, "sgd_step: optimizer made for %lld values, parameters have %lld%s",
                 (long long)opt->numel, (long long)P->numel, P->grad ? "" : " and no gradients");
    float lr = (float)opt->lr, mu = (float)opt->momentum, *p = P->data, *g = P->grad, *buf = opt->buf;
    int first = opt->step++ == 0;
    GANTL__OMP(parallel for schedule(static) if (P->numel > 65536))
    for (int64_t i = 0; i < P->numel; i++) {
        float d = g[i];
        if (mu != 0.0f) d = buf[i] = first ? d : mu * buf[i] + d;
        p[i] -= lr * d;
    }
}

GANTLDEF void gantl_sgd_free(gantl_sgd *opt) {
    GANTL_FREE(opt->buf);
    opt->buf = NULL;
}

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
    const unsigned char *p = t->bytes;
    size_t size = gantl__dtype_sizes[t->dtype];
    for (int64_t i = 0; i < n; i++, p += size) {
        uint64_t u = gantl__load_le(p, (int)size);
        float v;
        switch (t->dtype) {
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
    return GANTL_OK;
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
   SGEMM blocked for the cache: B is used in (KC x NC) panels (packed when transposed),
   A in 4-row strips packed per task, and a 4 x 16 register tile accumulates over KC.
   The tile's fixed-size loops are written so compilers vectorise them.
   ------------------------------------------------------------------------------------- */

#define GANTL__MR 4     /* rows of the register tile */
#define GANTL__NR 16    /* columns of the register tile */
#define GANTL__KC 256   /* depth of a panel */
#define GANTL__NC 4096  /* columns of a panel */
#define GANTL__NB 128   /* columns handled by one task */

/* acc (MR x NR) = ap (KC x MR, k-major) @ bp (kc rows of ldb) */
static void gantl__sgemm_tile(float acc[GANTL__MR][GANTL__NR], const float *ap, const float *bp, int64_t ldb, int64_t kc) {
    for (int r = 0; r < GANTL__MR; r++)
        for (int j = 0; j < GANTL__NR; j++) acc[r][j] = 0.0f;
    for (int64_t p = 0; p < kc; p++) {
        const float *b = bp + p * ldb, *a = ap + p * GANTL__MR;
        for (int r = 0; r < GANTL__MR; r++)
            for (int j = 0; j < GANTL__NR; j++) acc[r][j] += a[r] * b[j];
    }
}

GANTLDEF void gantl_sgemm(float *c, const float *a, const float *b, int transpose_a, int transpose_b, float alpha,
                          float beta, int64_t m, int64_t n, int64_t k) {
    if (m <= 0 || n <= 0) return;
    /* C = beta * C first, so every panel can simply add its part. */
    if (beta == 0.0f)
        gantl__fill(c, 0.0f, m * n);
    else if (beta != 1.0f) {
        GANTL__OMP(parallel for schedule(static) if (m * n > 65536))
        for (int64_t i = 0; i < m * n; i++) c[i] *= beta;
    }
    if (k <= 0 || alpha == 0.0f) return;
    float *packed_b = NULL;
    if (transpose_b && m * n * k > 4096) {
        int64_t cols = n < GANTL__NC ? n : GANTL__NC, depth = k < GANTL__KC ? k : GANTL__KC;
        packed_b = (float *)GANTL_MALLOC((size_t)(cols * depth) * sizeof(float));
    }
    if (m * n * k <= 4096 || (transpose_b && !packed_b)) { /* tiny (or no memory to pack): plain loops */
        for (int64_t i = 0; i < m; i++)
            for (int64_t p = 0; p < k; p++) {
                float av = alpha * (transpose_a ? a[p * m + i] : a[i * k + p]);
                for (int64_t j = 0; j < n; j++) c[i * n + j] += av * (transpose_b ? b[j * k + p] : b[p * n + j]);
            }
        return;
    }
    for (int64_t jc = 0; jc < n; jc += GANTL__NC) {
        int64_t nc = n - jc < GANTL__NC ? n - jc : GANTL__NC;
        for (int64_t pc = 0; pc < k; pc += GANTL__KC) {
            int64_t kc = k - pc < GANTL__KC ? k - pc : GANTL__KC;
            /* B panel (kc, nc) with row stride ldb */
            const float *bp;
            int64_t ldb;
            if (transpose_b) {
                GANTL__OMP(parallel for schedule(static) if (kc * nc > 65536))
                for (int64_t p = 0; p < kc; p++)
                    for (int64_t j = 0; j < nc; j++) packed_b[p * nc + j] = b[(jc + j) * k + pc + p];
                bp = packed_b;
                ldb = nc;
            } else {
                bp = b + pc * n + jc;
                ldb = n;
            }
            int64_t row_tasks = (m + GANTL__MR - 1) / GANTL__MR, col_tasks = (nc + GANTL__NB - 1) / GANTL__NB;
            GANTL__OMP(parallel for schedule(static) if (m * nc * kc > 131072))
            for (int64_t task = 0; task < row_tasks * col_tasks; task++) {
                int64_t i0 = (task / col_tasks) * GANTL__MR, j0 = (task % col_tasks) * GANTL__NB;
                int64_t mr = m - i0 < GANTL__MR ? m - i0 : GANTL__MR;
                int64_t jend = j0 + GANTL__NB < nc ? j0 + GANTL__NB : nc;
                float ap[GANTL__KC * GANTL__MR]; /* A strip (kc x MR), k-major, zero-padded rows */
                for (int64_t p = 0; p < kc; p++)
                    for (int r = 0; r < GANTL__MR; r++)
                        ap[p * GANTL__MR + r] = r < mr ? (transpose_a ? a[(pc + p) * m + i0 + r] : a[(i0 + r) * k + pc + p]) : 0.0f;
                int64_t j = j0;
                for (; j + GANTL__NR <= jend; j += GANTL__NR) {
                    float acc[GANTL__MR][GANTL__NR];
                    gantl__sgemm_tile(acc, ap, bp + j, ldb, kc);
                    for (int64_t r = 0; r < mr; r++) {
                        float *crow = c + (i0 + r) * n + jc + j;
                        for (int jj = 0; jj < GANTL__NR; jj++) crow[jj] += alpha * acc[r][jj];
                    }
                }
                for (; j < jend; j++) /* ragged right edge */
                    for (int64_t r = 0; r < mr; r++) {
                        float sum = 0.0f;
                        for (int64_t p = 0; p < kc; p++) sum += ap[p * GANTL__MR + r] * bp[p * ldb + j];
                        c[(i0 + r) * n + jc + j] += alpha * sum;
                    }
            }
        }
    }
    GANTL_FREE(packed_b);
}

/* ---------------------------------------------------------------------------------------
   9. Metrics
   ------------------------------------------------------------------------------------- */

#define GANTL__DBL_EPS 2.220446049250313e-16

/* --- Double-precision GEMM ---
   FID and KID need double sums (a covariance; a kernel mean of nearly cancelling terms),
   and gantl_sgemm is float, so this is its double twin: k-panels of DKC, B packed per
   panel into k-major strips of DNR columns, A packed per task into a strip of DMR rows,
   a DMR x DNR register tile. Each element of c is summed in one fixed order, so results
   do not depend on the thread count. */

#define GANTL__DMR 4    /* rows of the register tile */
#define GANTL__DNR 8    /* columns of the register tile */
#define GANTL__DKC 256  /* depth of a panel */
#define GANTL__DNC 2048 /* columns of a packed B panel */
#define GANTL__DNB 128  /* columns handled by one task */

/* c (mr, nr) += alpha * ap (kc, DMR) @ bp (kc, DNR); mr, nr <= the tile (ragged edges). */
static void gantl__dgemm_tile(double *c, int64_t ldc, int64_t mr, int64_t nr, const double *ap, const double *bp,
                              int64_t kc, double alpha) {
    double acc[GANTL__DMR][GANTL__DNR];
    for (int r = 0; r < GANTL__DMR; r++)
        for (int j = 0; j < GANTL__DNR; j++) acc[r][j] = 0.0;
    for (int64_t p = 0; p < kc; p++) {
        const double *a = ap + p * GANTL__DMR, *b = bp + p * GANTL__DNR;
        for (int r = 0; r < GANTL__DMR; r++)
            for (int j = 0; j < GANTL__DNR; j++) acc[r][j] += a[r] * b[j];
    }
    for (int64_t r = 0; r < mr; r++)
        for (int64_t j = 0; j < nr; j++) c[r * ldc + j] += alpha * acc[r][j];
}

/* c (m, n) += alpha * op(a) @ op(b), row-major with leading dimensions ldc, lda, ldb:
   op(a) is (m, k), stored (k, m) if ta; op(b) is (k, n), stored (n, k) if tb.
   tri (for a square c): GANTL__FULL computes all of c; GANTL__LOWER only the register
   tiles reaching the lower triangle (row >= col), GANTL__UPPER those reaching the upper
   one. Tiles on the diagonal also update some elements of the other triangle, so callers
   use only the triangle they asked for. */
enum { GANTL__FULL = 0, GANTL__LOWER = 1, GANTL__UPPER = 2 };
static gantl_status gantl__dgemm(double *c, int64_t ldc, const double *a, int64_t lda, int ta, const double *b,
                                 int64_t ldb, int tb, int64_t m, int64_t n, int64_t k, double alpha, int tri) {
    if (m <= 0 || n <= 0 || k <= 0) return GANTL_OK;
    int64_t nc_max = n < GANTL__DNC ? n : GANTL__DNC, kc_max = k < GANTL__DKC ? k : GANTL__DKC;
    int64_t strips_max = (nc_max + GANTL__DNR - 1) / GANTL__DNR;
    double *bpack = (double *)GANTL_MALLOC((size_t)(strips_max * GANTL__DNR * kc_max) * sizeof(double)); /* (strips, kc, DNR) */
    if (!bpack) return gantl__fail(GANTL_ERR_NOMEM, "metrics: out of memory for a %lld x %lld panel", (long long)kc_max,
                                   (long long)nc_max);
    for (int64_t jc = 0; jc < n; jc += GANTL__DNC) {
        int64_t nc = n - jc < GANTL__DNC ? n - jc : GANTL__DNC;
        if (tri == GANTL__LOWER && jc > m - 1) break; /* every remaining column is right of the last row */
        int64_t strips = (nc + GANTL__DNR - 1) / GANTL__DNR;
        for (int64_t pc = 0; pc < k; pc += GANTL__DKC) {
            int64_t kc = k - pc < GANTL__DKC ? k - pc : GANTL__DKC;
            /* B panel (kc, nc) -> strips of (kc, DNR), zero-padded on the right */
            GANTL__OMP(parallel for schedule(static) if (kc * nc > 32768))
            for (int64_t s = 0; s < strips; s++) {
                double *dst = bpack + s * kc * GANTL__DNR;
                for (int64_t p = 0; p < kc; p++)
                    for (int64_t j = 0; j < GANTL__DNR; j++) {
                        int64_t col = jc + s * GANTL__DNR + j, row = pc + p;
                        dst[p * GANTL__DNR + j] = col < jc + nc ? (tb ? b[col * ldb + row] : b[row * ldb + col]) : 0.0;
                    }
            }
            int64_t row_tasks = (m + GANTL__DMR - 1) / GANTL__DMR, col_tasks = (nc + GANTL__DNB - 1) / GANTL__DNB;
            GANTL__OMP(parallel for schedule(dynamic, 1) if (m * nc * kc > 65536))
            for (int64_t task = 0; task < row_tasks * col_tasks; task++) {
                int64_t i0 = (task / col_tasks) * GANTL__DMR, j0 = (task % col_tasks) * GANTL__DNB;
                int64_t mr = m - i0 < GANTL__DMR ? m - i0 : GANTL__DMR;
                int64_t jend = j0 + GANTL__DNB < nc ? j0 + GANTL__DNB : nc;
                int64_t jbeg = j0;
                if (tri == GANTL__LOWER && jend > i0 + mr - jc) jend = i0 + mr - jc; /* columns up to the strip's last row */
                if (tri == GANTL__UPPER && i0 - jc > jbeg) /* from the tile holding column i0 (tiles stay aligned) */
                    jbeg = (i0 - jc) / GANTL__DNR * GANTL__DNR;
                if (jend <= jbeg) continue;
                double ap[GANTL__DKC * GANTL__DMR]; /* A strip (kc, DMR), zero-padded */
                for (int64_t p = 0; p < kc; p++)
                    for (int64_t r = 0; r < GANTL__DMR; r++) {
                        int64_t row = i0 + r, col = pc + p;
                        ap[p * GANTL__DMR + r] = r < mr ? (ta ? a[col * lda + row] : a[row * lda + col]) : 0.0;
                    }
                for (int64_t j = jbeg; j < jend; j += GANTL__DNR) {
                    int64_t nr = jend - j < GANTL__DNR ? jend - j : GANTL__DNR;
                    gantl__dgemm_tile(c + i0 * ldc + jc + j, ldc, mr, nr, ap, bpack + (j / GANTL__DNR) * kc * GANTL__DNR,
                                      kc, alpha);
                }
            }
        }
    }
    GANTL_FREE(bpack);
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
   in order into a float and adds -2 times it to c (from 0); its path for tiny products
   sums differently, so small blocks (which only occur at the edges) use the tiled
   arithmetic written out here instead. (gantl_sgemm also falls back to its plain loops
   if it cannot allocate a 1 MB panel: then last bits may differ.) */
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
                    for (int64_t p = p0; p < p1; p++) acc += a[p] * b[p];
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

#ifdef __cplusplus
}
#endif
#endif /* GANTL__IMPLEMENTED */
#endif /* GANTL_IMPLEMENTATION */
