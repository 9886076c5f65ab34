/* gantl_cuda.cu - the CUDA backend of gantl.h.                          MIT licensed.

   One forward kernel per op of GANTL_OP_TABLE, with the semantics of the CPU kernels in
   gantl.h section 4a; every backward is written in ops, so gradients and gradients of
   gradients (R1, path length) run here too. Plus the device's memory and the flat-buffer
   kernels of parameter sets (gradient accumulation, zeroing, EMA, nan_to_num, Adam, SGD).
   GEMMs and convolutions use cuBLAS (im2col / col2im around SGEMM, in full FP32: no TF32);
   everything else is a kernel below. No cuDNN.

   BUILD
     nvcc -O2 -c gantl_cuda.cu -o gantl_cuda.o      (it includes gantl.h, declarations only)
     then link it with the translation unit that has GANTL_IMPLEMENTATION, and -lcublas
     -lcudart (nvcc links cudart itself). Do not define GANTL_STATIC there: this file calls
     the library's public functions. `make cuda` does all of it. With -DGANTL_NCCL (and
     -lnccl; `make cuda NCCL=1`) it also has the NCCL transport of gantl_comm
     (gantl_comm_nccl_init, at the end of this file).

   USE
     if (gantl_cuda_init(0) != GANTL_OK) fprintf(stderr, "%s\n", gantl_last_error());
     gantl_ctx *ctx = gantl_ctx_new_device(GANTL_CUDA, 0);  // tensors made in it are on the GPU
     gantl_params_to_device(&G.params, GANTL_CUDA);        // parameters too

   MEMORY MODEL (first version)
     Device memory is CUDA managed (unified) memory: the host can read and write it, so the
     library's host code that touches tensor data (batch norm's running statistics, the
     networks' and the CLI's reads of results, gantl_from_data's callers that fill t->data)
     keeps working unchanged. The cost: a host access migrates the pages it touches to the
     host and the next kernel migrates them back (page faults, PCIe), so host reads of big
     tensors in a loop are slow. Tensor headers stay in host memory (the context's host
     arena); only data lives in the device arena. Convolution workspace (im2col columns) is
     plain cudaMalloc memory owned by this file.

   SYNCHRONISATION
     Every op, copy and vector kernel runs on the legacy default stream and, by default,
     waits for the GPU before returning (gantl_cuda_set_sync(1)): then the host may read any
     tensor right after the op that made it, which the library's host code relies on, and a
     failing kernel is reported by the op that launched it. gantl_cuda_set_sync(0) queues
     the work instead (faster; errors then surface at the next synchronisation, and host
     access needs gantl_device_synchronize first). gantl_ctx_reset always synchronises.

   ERRORS
     Every CUDA and cuBLAS status is checked. A failing op marks its context
     (gantl_ctx_set_error: GANTL_ERR_DEVICE, or GANTL_ERR_NOMEM for workspace) so that the
     op returns NULL and gantl_ctx_status reports it; gantl_last_error() names the op, the
     call and CUDA's message. Nothing here prints or exits.

   DETERMINISM
     Every kernel except grid_sample_adj computes each output in a fixed order (sums in
     double where the CPU kernel does, and in the CPU's order where it is a plain float
     loop). grid_sample_adj scatters with atomicAdd (float sums in a varying order).
     cuBLAS SGEMM is deterministic for a given GPU and shape. */

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "gantl.h"

/* ---------------------------------------------------------------------------------------
   State, errors, launch helpers
   ------------------------------------------------------------------------------------- */

#define CU_THREADS 256 /* threads per block of the elementwise kernels */

static struct {
    int ready;         /* gantl_cuda_init succeeded */
    int device;        /* CUDA device index */
    int sync;          /* wait for the GPU after every op (default 1) */
    int sm_count;      /* multiprocessors, for sizing reductions */
    cublasHandle_t blas;
    void *scratch; /* convolution / reduction workspace (cudaMalloc) */
    size_t scratch_bytes;
    char name[320];
    gantl_backend backend;
} cu;

/* Workspace of at most this many bytes per convolution chunk (images are processed in
   chunks so that the im2col matrix fits). */
#define CU_CONV_BUDGET ((size_t)256 << 20)

/* A grid-stride loop over [0, n): each thread takes i, i + stride, ... */
#define CU_LOOP(i, n)                                                                          \
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n); i += (int64_t)blockDim.x * gridDim.x)

/* Blocks for n elements: enough to fill the GPU, capped (the loop strides over the rest). */
static unsigned cu_blocks(int64_t n) {
    int64_t b = (n + CU_THREADS - 1) / CU_THREADS;
    if (b > (int64_t)1 << 20) b = (int64_t)1 << 20;
    return (unsigned)(b < 1 ? 1 : b);
}

static const char *cu_blas_name(cublasStatus_t s) { return cublasGetStatusName(s); }

/* The op's CUDA failure on ctx (the first error of a step is the one reported). */
static void cu_fail(gantl_ctx *ctx, const char *op, const char *call, cudaError_t e) {
    gantl_ctx_set_error(ctx, GANTL_ERR_DEVICE, "cuda: %s: %s failed: %s (%s)", op, call, cudaGetErrorName(e),
                        cudaGetErrorString(e));
}

/* After an op's launches: a launch error, or with sync on, an error while it ran. */
static void cu_done(gantl_ctx *ctx, const gantl_tensor *out) {
    cudaError_t e = cudaGetLastError();
    if (e == cudaSuccess && cu.sync) e = cudaStreamSynchronize(0);
    if (e != cudaSuccess) cu_fail(ctx, gantl_op_name(out->op), cu.sync ? "kernel" : "kernel launch", e);
}

/* The same for the hooks (no context): the status, with gantl_last_error set. */
static gantl_status cu_hook_done(const char *what) {
    cudaError_t e = cudaGetLastError();
    if (e == cudaSuccess && cu.sync) e = cudaStreamSynchronize(0);
    if (e == cudaSuccess) return GANTL_OK;
    gantl_ctx_set_error(NULL, GANTL_ERR_DEVICE, "cuda: %s: %s (%s)", what, cudaGetErrorName(e), cudaGetErrorString(e));
    return GANTL_ERR_DEVICE;
}

/* Workspace of bytes (device memory, contents not kept between ops); NULL with ctx marked
   on failure. Growing it frees the old one, which cudaFree does only after queued work. */
static void *cu_scratch(gantl_ctx *ctx, const char *op, size_t bytes) {
    if (bytes <= cu.scratch_bytes) return cu.scratch;
    if (cu.scratch) cudaFree(cu.scratch);
    cu.scratch = NULL;
    cu.scratch_bytes = 0;
    cudaError_t e = cudaMalloc(&cu.scratch, bytes);
    if (e != cudaSuccess) {
        cudaGetLastError(); /* clear it: out of memory is not sticky */
        cu.scratch = NULL;
        gantl_ctx_set_error(ctx, GANTL_ERR_NOMEM, "cuda: %s: cannot allocate %zu bytes of workspace: %s", op, bytes,
                            cudaGetErrorString(e));
        return NULL;
    }
    cu.scratch_bytes = bytes;
    return cu.scratch;
}

/* Contiguous strides of a shape padded to 4-D with trailing 1s (as gantl__strides). */
static void cu_strides(int64_t stride[4], const int64_t shape[4]) {
    stride[3] = 1;
    for (int d = 2; d >= 0; d--) stride[d] = stride[d + 1] * shape[d + 1];
}

/* ---------------------------------------------------------------------------------------
   Elementwise ops
   ------------------------------------------------------------------------------------- */

/* Broadcast plan of a binary op: out's shape right-aligned into 4 axes, and a's and b's
   element strides along them (0 where that input is broadcast). */
struct cu_bcast {
    int64_t size[4], sa[4], sb[4];
};

/* y = a op b; op is GANTL_OP_ADD, SUB, MUL or DIV. Same float operations as the CPU. */
__global__ void k_binary(float *y, const float *a, const float *b, cu_bcast p, int op, int64_t n) {
    CU_LOOP(i, n) {
        int64_t r = i, ia = 0, ib = 0;
        for (int d = 3; d >= 0; d--) {
            int64_t c = r % p.size[d];
            r /= p.size[d];
            ia += c * p.sa[d];
            ib += c * p.sb[d];
        }
        float A = a[ia], B = b[ib];
        y[i] = op == GANTL_OP_ADD ? A + B : op == GANTL_OP_SUB ? A - B : op == GANTL_OP_MUL ? A * B : A / B;
    }
}

/* The common case without broadcasting: both inputs have out's shape. */
__global__ void k_binary_same(float *y, const float *a, const float *b, int op, int64_t n) {
    CU_LOOP(i, n) {
        float A = a[i], B = b[i];
        y[i] = op == GANTL_OP_ADD ? A + B : op == GANTL_OP_SUB ? A - B : op == GANTL_OP_MUL ? A * B : A / B;
    }
}

static void cu_binary(gantl_ctx *ctx, gantl_tensor *out) {
    const gantl_tensor *a = out->src[0], *b = out->src[1];
    int64_t n = out->numel;
    if (n == 0) return;
    if (a->numel == n && b->numel == n) { /* same element count as out: same shape */
        k_binary_same<<<cu_blocks(n), CU_THREADS>>>(out->data, a->data, b->data, out->op, n);
    } else {
        cu_bcast p;
        int nd = out->ndim;
        for (int d = 0; d < 4; d++) p.size[d] = 1, p.sa[d] = 0, p.sb[d] = 0;
        for (int d = 0; d < nd; d++) {
            int D = 4 - nd + d, da = d - (nd - a->ndim), db = d - (nd - b->ndim);
            p.size[D] = out->shape[d];
            if (da >= 0 && a->shape[da] != 1) {
                int64_t s = 1;
                for (int e = da + 1; e < a->ndim; e++) s *= a->shape[e];
                p.sa[D] = s;
            }
            if (db >= 0 && b->shape[db] != 1) {
                int64_t s = 1;
                for (int e = db + 1; e < b->ndim; e++) s *= b->shape[e];
                p.sb[D] = s;
            }
        }
        k_binary<<<cu_blocks(n), CU_THREADS>>>(out->data, a->data, b->data, p, out->op, n);
    }
    cu_done(ctx, out);
}
#define cu_op_add cu_binary
#define cu_op_sub cu_binary
#define cu_op_mul cu_binary
#define cu_op_div cu_binary

/* softplus with torch's threshold (x > 20: x), sigmoid as 1 / (1 + e^-x): as the CPU. */
__device__ float cu_softplus1(float x) { return x > 20.0f ? x : log1pf(expf(x)); }
__device__ float cu_sigmoid1(float x) { return 1.0f / (1.0f + expf(-x)); }

/* y = f(x) for the one-input elementwise ops; p0, p1 are the op's fp[0], fp[1]. */
__global__ void k_unary(float *y, const float *x, int op, float p0, float p1, int64_t n) {
    CU_LOOP(i, n) {
        float v = x[i], r;
        switch (op) {
        case GANTL_OP_SCALE: r = v * p0 + p1; break;
        case GANTL_OP_EXP: r = expf(v); break;
        case GANTL_OP_LOG: r = logf(v); break;
        case GANTL_OP_SQRT: r = sqrtf(v); break;
        case GANTL_OP_RSQRT: r = 1.0f / sqrtf(v); break;
        case GANTL_OP_SQUARE: r = v * v; break;
        case GANTL_OP_POW: r = powf(v, p0); break;
        case GANTL_OP_ABS: r = fabsf(v); break;
        case GANTL_OP_SIGN: r = (float)((v > 0.0f) - (v < 0.0f)); break;
        case GANTL_OP_SOFTPLUS: r = cu_softplus1(v); break;
        case GANTL_OP_SIGMOID: r = cu_sigmoid1(v); break;
        default: r = v > 0.0f ? v : v * p0; break; /* GANTL_OP_LRELU */
        }
        y[i] = r;
    }
}

static void cu_unary(gantl_ctx *ctx, gantl_tensor *out) {
    if (out->numel == 0) return;
    k_unary<<<cu_blocks(out->numel), CU_THREADS>>>(out->data, out->src[0]->data, out->op, out->fp[0], out->fp[1],
                                                   out->numel);
    cu_done(ctx, out);
}
#define cu_op_scale cu_unary
#define cu_op_exp cu_unary
#define cu_op_log cu_unary
#define cu_op_sqrt cu_unary
#define cu_op_rsqrt cu_unary
#define cu_op_square cu_unary
#define cu_op_pow cu_unary
#define cu_op_abs cu_unary
#define cu_op_sign cu_unary
#define cu_op_softplus cu_unary
#define cu_op_sigmoid cu_unary
#define cu_op_lrelu cu_unary

/* (g, x) -> g * (x > 0 ? 1 : alpha): the backward of lrelu. */
__global__ void k_lrelu_grad(float *y, const float *g, const float *x, float alpha, int64_t n) {
    CU_LOOP(i, n) y[i] = x[i] > 0.0f ? g[i] : g[i] * alpha;
}

static void cu_op_lrelu_grad(gantl_ctx *ctx, gantl_tensor *out) {
    if (out->numel == 0) return;
    k_lrelu_grad<<<cu_blocks(out->numel), CU_THREADS>>>(out->data, out->src[0]->data, out->src[1]->data, out->fp[0],
                                                        out->numel);
    cu_done(ctx, out);
}

/* ---------------------------------------------------------------------------------------
   Reductions and copies
   ------------------------------------------------------------------------------------- */

/* sum over the axes where out has size 1 and x does not (keepdim): output o starts at x
   offset base(o) (its coordinates times x's strides), and the reduced block is red[4]
   (row-major) with x's strides. Sums in double, as the CPU kernel. */
struct cu_sum_plan {
    int64_t oshape[4], ostride[4], xs[4], red[4], rcount;
};

__device__ int64_t cu_sum_base(const cu_sum_plan &p, int64_t o) {
    int64_t base = 0;
    for (int d = 0; d < 4; d++) base += (o / p.ostride[d]) % p.oshape[d] * p.xs[d];
    return base;
}

__device__ int64_t cu_sum_offset(const cu_sum_plan &p, int64_t j) {
    int64_t off = 0;
    for (int d = 3; d >= 0; d--) {
        off += (j % p.red[d]) * p.xs[d];
        j /= p.red[d];
    }
    return off;
}

/* One thread per output: short reductions, or many outputs. */
__global__ void k_sum_thread(float *y, const float *x, cu_sum_plan p, int64_t nout) {
    CU_LOOP(o, nout) {
        int64_t base = cu_sum_base(p, o);
        double acc = 0.0;
        for (int64_t j = 0; j < p.rcount; j++) acc += x[base + cu_sum_offset(p, j)];
        y[o] = (float)acc;
    }
}

/* Long reductions: block (o, part) sums part `part` of output o's block into partial
   [o * parts + part], a tree over the block's threads (fixed order). */
__global__ void k_sum_parts(double *partial, const float *x, cu_sum_plan p, int64_t nout, int64_t parts) {
    __shared__ double buf[CU_THREADS];
    for (int64_t blk = blockIdx.x; blk < nout * parts; blk += gridDim.x) {
        int64_t o = blk / parts, part = blk % parts, per = (p.rcount + parts - 1) / parts;
        int64_t j0 = part * per, j1 = j0 + per < p.rcount ? j0 + per : p.rcount;
        int64_t base = cu_sum_base(p, o);
        double acc = 0.0;
        for (int64_t j = j0 + threadIdx.x; j < j1; j += blockDim.x) acc += x[base + cu_sum_offset(p, j)];
        buf[threadIdx.x] = acc;
        __syncthreads();
        for (int s = blockDim.x / 2; s > 0; s /= 2) {
            if ((int)threadIdx.x < s) buf[threadIdx.x] += buf[threadIdx.x + s];
            __syncthreads();
        }
        if (threadIdx.x == 0) partial[blk] = buf[0];
        __syncthreads();
    }
}

/* y[o] = the sum of output o's partials, in order. */
__global__ void k_sum_finish(float *y, const double *partial, int64_t nout, int64_t parts) {
    CU_LOOP(o, nout) {
        double acc = 0.0;
        for (int64_t k = 0; k < parts; k++) acc += partial[o * parts + k];
        y[o] = (float)acc;
    }
}

static void cu_op_sum(gantl_ctx *ctx, gantl_tensor *out) {
    const gantl_tensor *x = out->src[0];
    int64_t nout = out->numel;
    if (nout == 0) return;
    cu_sum_plan p;
    cu_strides(p.xs, x->shape);
    cu_strides(p.ostride, out->shape);
    p.rcount = 1;
    for (int d = 0; d < 4; d++) {
        p.oshape[d] = out->shape[d];
        p.red[d] = out->shape[d] == 1 ? x->shape[d] : 1;
        p.rcount *= p.red[d];
    }
    if (p.rcount <= 64 || (nout >= 4096 && p.rcount <= 2048)) {
        k_sum_thread<<<cu_blocks(nout), CU_THREADS>>>(out->data, x->data, p, nout);
    } else {
        /* enough blocks to fill the GPU: split each output's block into parts of >= 8192 */
        int64_t want = (int64_t)(cu.sm_count > 0 ? cu.sm_count : 80) * 8;
        int64_t parts = (p.rcount + 8191) / 8192, cap = (want + nout - 1) / nout;
        if (parts > cap) parts = cap;
        if (parts < 1) parts = 1;
        double *partial = (double *)cu_scratch(ctx, "sum", (size_t)(nout * parts) * sizeof(double));
        if (!partial) return;
        int64_t blocks = nout * parts < ((int64_t)1 << 20) ? nout * parts : ((int64_t)1 << 20);
        k_sum_parts<<<(unsigned)blocks, CU_THREADS>>>(partial, x->data, p, nout, parts);
        k_sum_finish<<<cu_blocks(nout), CU_THREADS>>>(out->data, partial, nout, parts);
    }
    cu_done(ctx, out);
}

/* dst[c . ds] = src[c . ss] for every coordinate c of a size[4] block: the strided 4-D copy
   behind expand, permute, slice, pad and concat. */
struct cu_copy_plan {
    int64_t size[4], ds[4], ss[4];
};

__global__ void k_copy4(float *dst, const float *src, cu_copy_plan p, int64_t n) {
    CU_LOOP(i, n) {
        int64_t r = i, di = 0, si = 0;
        for (int d = 3; d >= 0; d--) {
            int64_t c = r % p.size[d];
            r /= p.size[d];
            di += c * p.ds[d];
            si += c * p.ss[d];
        }
        dst[di] = src[si];
    }
}

static void cu_copy4(float *dst, const int64_t ds[4], const float *src, const int64_t ss[4], const int64_t size[4]) {
    cu_copy_plan p;
    int64_t n = 1;
    for (int d = 0; d < 4; d++) p.size[d] = size[d], p.ds[d] = ds[d], p.ss[d] = ss[d], n *= size[d];
    if (n > 0) k_copy4<<<cu_blocks(n), CU_THREADS>>>(dst, src, p, n);
}

__global__ void k_fill(float *x, float value, int64_t n) {
    CU_LOOP(i, n) x[i] = value;
}

static void cu_fill_async(float *x, float value, int64_t n) {
    if (n > 0) k_fill<<<cu_blocks(n), CU_THREADS>>>(x, value, n);
}

static void cu_op_none(gantl_ctx *ctx, gantl_tensor *out) { (void)ctx, (void)out; }
static void cu_op_reshape(gantl_ctx *ctx, gantl_tensor *out) { (void)ctx, (void)out; /* a view */ }

/* Broadcast size-1 axes (x and out have the same rank): x's stride 0 along them. */
static void cu_op_expand(gantl_ctx *ctx, gantl_tensor *out) {
    const gantl_tensor *x = out->src[0];
    int64_t xs[4], os[4];
    cu_strides(xs, x->shape);
    cu_strides(os, out->shape);
    for (int d = 0; d < 4; d++)
        if (x->shape[d] == 1) xs[d] = 0;
    cu_copy4(out->data, os, x->data, xs, out->shape);
    cu_done(ctx, out);
}

/* out axis d = x axis ip[d]: read x with its strides permuted. */
static void cu_op_permute(gantl_ctx *ctx, gantl_tensor *out) {
    const gantl_tensor *x = out->src[0];
    int64_t xs[4], ps[4], os[4];
    cu_strides(xs, x->shape);
    cu_strides(os, out->shape);
    for (int d = 0; d < 4; d++) ps[d] = d < out->ndim ? xs[out->ip[d]] : 0;
    cu_copy4(out->data, os, x->data, ps, out->shape);
    cu_done(ctx, out);
}

/* [ip1, ip2) along axis ip0. */
static void cu_op_slice(gantl_ctx *ctx, gantl_tensor *out) {
    const gantl_tensor *x = out->src[0];
    int64_t xs[4], os[4];
    cu_strides(xs, x->shape);
    cu_strides(os, out->shape);
    cu_copy4(out->data, os, x->data + (int64_t)out->ip[1] * xs[out->ip[0]], xs, out->shape);
    cu_done(ctx, out);
}

/* ip1 zeros before and ip2 after along axis ip0: zeros, then x at offset ip1. */
static void cu_op_pad(gantl_ctx *ctx, gantl_tensor *out) {
    const gantl_tensor *x = out->src[0];
    int64_t xs[4], os[4];
    cu_strides(xs, x->shape);
    cu_strides(os, out->shape);
    cu_fill_async(out->data, 0.0f, out->numel);
    cu_copy4(out->data + (int64_t)out->ip[1] * os[out->ip[0]], os, x->data, xs, x->shape);
    cu_done(ctx, out);
}

/* a then b along axis ip0. */
static void cu_op_concat(gantl_ctx *ctx, gantl_tensor *out) {
    const gantl_tensor *a = out->src[0], *b = out->src[1];
    int64_t as[4], bs[4], os[4];
    cu_strides(as, a->shape);
    cu_strides(bs, b->shape);
    cu_strides(os, out->shape);
    cu_copy4(out->data, os, a->data, as, a->shape);
    cu_copy4(out->data + a->shape[out->ip[0]] * os[out->ip[0]], os, b->data, bs, b->shape);
    cu_done(ctx, out);
}

struct cu_shape4 {
    int64_t s[4];
};

/* y (big) = x tiled: y[c] = x[c mod x's shape]. */
__global__ void k_repeat(float *y, const float *x, cu_shape4 yshape, cu_shape4 xshape, int64_t n) {
    CU_LOOP(i, n) {
        int64_t r = i, xi = 0, xstride = 1;
        for (int d = 3; d >= 0; d--) {
            int64_t c = r % yshape.s[d];
            r /= yshape.s[d];
            xi += (c % xshape.s[d]) * xstride;
            xstride *= xshape.s[d];
        }
        y[i] = x[xi];
    }
}

/* y (small) = the sum of the reps tiles of x (big), tiles in row-major order as the CPU. */
__global__ void k_repeat_sum(float *y, const float *x, cu_shape4 yshape, cu_shape4 reps, int64_t n) {
    int64_t bshape[4], bstride[4];
    for (int d = 0; d < 4; d++) bshape[d] = yshape.s[d] * reps.s[d];
    bstride[3] = 1;
    for (int d = 2; d >= 0; d--) bstride[d] = bstride[d + 1] * bshape[d + 1];
    CU_LOOP(i, n) {
        int64_t c[4], r = i;
        for (int d = 3; d >= 0; d--) {
            c[d] = r % yshape.s[d];
            r /= yshape.s[d];
        }
        float acc = 0.0f;
        for (int64_t t0 = 0; t0 < reps.s[0]; t0++)
            for (int64_t t1 = 0; t1 < reps.s[1]; t1++)
                for (int64_t t2 = 0; t2 < reps.s[2]; t2++)
                    for (int64_t t3 = 0; t3 < reps.s[3]; t3++)
                        acc += x[(c[0] + t0 * yshape.s[0]) * bstride[0] + (c[1] + t1 * yshape.s[1]) * bstride[1] +
                                 (c[2] + t2 * yshape.s[2]) * bstride[2] + (c[3] + t3 * yshape.s[3]) * bstride[3]];
        y[i] = acc;
    }
}

static void cu_op_repeat(gantl_ctx *ctx, gantl_tensor *out) {
    cu_shape4 ys, xs;
    for (int d = 0; d < 4; d++) ys.s[d] = out->shape[d], xs.s[d] = out->src[0]->shape[d];
    if (out->numel == 0) return;
    k_repeat<<<cu_blocks(out->numel), CU_THREADS>>>(out->data, out->src[0]->data, ys, xs, out->numel);
    cu_done(ctx, out);
}

static void cu_op_repeat_sum(gantl_ctx *ctx, gantl_tensor *out) {
    cu_shape4 ys, reps;
    for (int d = 0; d < 4; d++) ys.s[d] = out->shape[d], reps.s[d] = out->ip[d];
    if (out->numel == 0) return;
    k_repeat_sum<<<cu_blocks(out->numel), CU_THREADS>>>(out->data, out->src[0]->data, ys, reps, out->numel);
    cu_done(ctx, out);
}

/* ---------------------------------------------------------------------------------------
   GEMM (cuBLAS) and matmul
   ------------------------------------------------------------------------------------- */

/* Row-major C (m, n) = op(A) (m, k) @ op(B) (k, n) + beta C, batched: matrix i of A, B and
   C starts sA, sB, sC floats after matrix i - 1 (sA or sB 0: shared). A is stored (m, k)
   with rows of lda floats, or (k, m) if ta; B (k, n) with rows of ldb, or (n, k) if tb; C
   rows of ldc. cuBLAS is column-major, and a row-major matrix is its column-major
   transpose, so this computes C^T (n, m) = op(B)^T @ op(A)^T: cuBLAS's A is our B.
   1 on success; 0 with ctx marked. */
static int cu_gemm(gantl_ctx *ctx, const char *op, int ta, int tb, int64_t m, int64_t n, int64_t k, const float *A,
                   int64_t lda, int64_t sA, const float *B, int64_t ldb, int64_t sB, float beta, float *C, int64_t ldc,
                   int64_t sC, int64_t batch) {
    const int64_t big = INT32_MAX;
    if (m > big || n > big || k > big || lda > big || ldb > big || ldc > big) {
        gantl_ctx_set_error(ctx, GANTL_ERR_UNSUPPORTED, "cuda: %s: a GEMM of %lld x %lld x %lld is too large for cuBLAS",
                            op, (long long)m, (long long)n, (long long)k);
        return 0;
    }
    const float alpha = 1.0f;
    cublasOperation_t opA = ta ? CUBLAS_OP_T : CUBLAS_OP_N, opB = tb ? CUBLAS_OP_T : CUBLAS_OP_N;
    int im = (int)m, in = (int)n, ik = (int)k;
    int ilda = (int)(lda > 0 ? lda : 1), ildb = (int)(ldb > 0 ? ldb : 1), ildc = (int)(ldc > 0 ? ldc : 1);
    for (int64_t b0 = 0; b0 < batch; b0 += 65535) { /* batch counts above 65535 in pieces */
        int64_t count = batch - b0 < 65535 ? batch - b0 : 65535;
        cublasStatus_t s;
        if (count == 1)
            s = cublasSgemm(cu.blas, opB, opA, in, im, ik, &alpha, B + b0 * sB, ildb, A + b0 * sA, ilda, &beta,
                            C + b0 * sC, ildc);
        else
            s = cublasSgemmStridedBatched(cu.blas, opB, opA, in, im, ik, &alpha, B + b0 * sB, ildb, sB, A + b0 * sA,
                                          ilda, sA, &beta, C + b0 * sC, ildc, sC, (int)count);
        if (s != CUBLAS_STATUS_SUCCESS) {
            gantl_ctx_set_error(ctx, GANTL_ERR_DEVICE, "cuda: %s: cuBLAS SGEMM (%lld x %lld x %lld, batch %lld) failed: %s",
                                op, (long long)m, (long long)n, (long long)k, (long long)count, cu_blas_name(s));
            return 0;
        }
    }
    return 1;
}

/* op(a) @ op(b), batched; a batch of count 1 (a 2-D operand) is shared. */
static void cu_op_matmul(gantl_ctx *ctx, gantl_tensor *out) {
    const gantl_tensor *a = out->src[0], *b = out->src[1];
    int ta = out->ip[0], tb = out->ip[1];
    int64_t m = out->shape[out->ndim - 2], n = out->shape[out->ndim - 1];
    int64_t k = ta ? a->shape[a->ndim - 2] : a->shape[a->ndim - 1];
    if (out->numel == 0) return;
    if (k == 0) { /* an empty sum */
        cu_fill_async(out->data, 0.0f, out->numel);
        cu_done(ctx, out);
        return;
    }
    int64_t batch = out->numel / (m * n), batch_a = a->numel / (m * k), batch_b = b->numel / (k * n);
    int64_t lda = ta ? m : k, ldb = tb ? k : n;
    int ok;
    if (batch_b == 1 && !ta && batch > 1) /* one GEMM: (batch*m, k) @ (k, n) */
        ok = cu_gemm(ctx, "matmul", 0, tb, batch * m, n, k, a->data, lda, 0, b->data, ldb, 0, 0.0f, out->data, n, 0, 1);
    else
        ok = cu_gemm(ctx, "matmul", ta, tb, m, n, k, a->data, lda, batch_a > 1 ? m * k : 0, b->data, ldb,
                     batch_b > 1 ? k * n : 0, 0.0f, out->data, n, m * n, batch);
    if (ok) cu_done(ctx, out);
}

/* ---------------------------------------------------------------------------------------
   Convolutions: im2col + SGEMM, and col2im
   ------------------------------------------------------------------------------------- */

/* The im2col matrix of nb images x (nb, C, H, W) for a kh x kw kernel: entry (n, r, q) with
   r = (c, ky, kx) of C*kh*kw and q = (oy, ox) of Ho*Wo is x[n, c, oy*stride - pad + ky,
   ox*stride - pad + kx], 0 outside the image; stored at col[n * sn + r * sr + q] (sn, sr
   choose the layout: (nb, R, P) for the forward, (R, nb, P) for the weight gradient). */
__global__ void k_im2col(float *col, const float *x, int64_t C, int64_t H, int64_t W, int kh, int kw, int stride,
                         int pad, int64_t Ho, int64_t Wo, int64_t sn, int64_t sr, int64_t total) {
    int64_t P = Ho * Wo, R = C * kh * kw;
    CU_LOOP(i, total) {
        int64_t q = i % P, r = i / P % R, n = i / (P * R);
        int64_t c = r / (kh * kw), ky = r / kw % kh, kx = r % kw, oy = q / Wo, ox = q % Wo;
        int64_t iy = oy * stride - pad + ky, ix = ox * stride - pad + kx;
        float v = 0.0f;
        if (iy >= 0 && iy < H && ix >= 0 && ix < W) v = x[((n * C + c) * H + iy) * W + ix];
        col[n * sn + r * sr + q] = v;
    }
}

/* col2im as a gather: x (planes, H, W) [pixel] = the sum of the col (planes*kh*kw, Ho*Wo)
   entries that im2col would read from that pixel, over (ky, kx) in order (the CPU's
   order), so no atomics. Entry (plane, ky, kx, oy, ox) reads pixel (oy*s - pad + ky,
   ox*s - pad + kx): a pixel iy gets ky with (iy + pad - ky) >= 0 divisible by s. */
__global__ void k_col2im(float *x, const float *col, int64_t H, int64_t W, int kh, int kw, int stride, int pad,
                         int64_t Ho, int64_t Wo, int64_t total) {
    CU_LOOP(i, total) {
        int64_t ix = i % W, iy = i / W % H, plane = i / (W * H);
        float acc = 0.0f;
        for (int ky = 0; ky < kh; ky++) {
            int64_t ty = iy + pad - ky;
            if (ty < 0 || ty % stride) continue;
            int64_t oy = ty / stride;
            if (oy >= Ho) continue;
            for (int kx = 0; kx < kw; kx++) {
                int64_t tx = ix + pad - kx;
                if (tx < 0 || tx % stride) continue;
                int64_t ox = tx / stride;
                if (ox >= Wo) continue;
                acc += col[((plane * kh + ky) * kw + kx) * Ho * Wo + oy * Wo + ox];
            }
        }
        x[i] = acc;
    }
}

/* dst (O, nb, P) = src (nb, O, P): the gradients of nb images side by side per channel. */
__global__ void k_transpose_nop(float *dst, const float *src, int64_t nb, int64_t O, int64_t P, int64_t total) {
    CU_LOOP(i, total) {
        int64_t q = i % P, n = i / P % nb, o = i / (P * nb);
        dst[i] = src[(n * O + o) * P + q];
    }
}

/* Images per chunk so that floats_per_image * nb fits the budget (at least 1). */
static int64_t cu_chunk(int64_t N, int64_t floats_per_image) {
    int64_t nb = (int64_t)(CU_CONV_BUDGET / sizeof(float)) / (floats_per_image > 0 ? floats_per_image : 1);
    return nb < 1 ? 1 : nb > N ? N : nb;
}

/* Batched row-major C_g = A_g @ B_g over nb images and `groups` groups, each product being
   (mg, kg) @ (kg, P): A_g at A + g*sAg (shared by the images), image i's B_g at
   B + i*sBi + g*sBg, C_g at C + i*sCi + g*sCg. One strided-batched call per group (over
   images) or per image (over groups), whichever makes fewer calls. */
static int cu_gemm_groups(gantl_ctx *ctx, const char *op, int ta, int64_t mg, int64_t P, int64_t kg, const float *A,
                          int64_t lda, int64_t sAg, const float *B, int64_t sBi, int64_t sBg, float *C, int64_t sCi,
                          int64_t sCg, int64_t nb, int64_t groups) {
    if (groups == 1 || nb >= groups) {
        for (int64_t g = 0; g < groups; g++)
            if (!cu_gemm(ctx, op, ta, 0, mg, P, kg, A + g * sAg, lda, 0, B + g * sBg, P, sBi, 0.0f, C + g * sCg, P, sCi, nb))
                return 0;
    } else {
        for (int64_t i = 0; i < nb; i++)
            if (!cu_gemm(ctx, op, ta, 0, mg, P, kg, A, lda, sAg, B + i * sBi, P, sBg, 0.0f, C + i * sCi, P, sCg, groups))
                return 0;
    }
    return 1;
}

/* y (N, O, Ho, Wo) = conv2d(x (N, C, H, W), w (O, C/g, kh, kw)): per image and group,
   y_g (O/g, Ho*Wo) = w_g (O/g, C/g*kh*kw) @ im2col(x_g). A 1x1 convolution with stride 1
   and no padding needs no im2col: x itself is the matrix. */
static void cu_op_conv2d(gantl_ctx *ctx, gantl_tensor *out) {
    const gantl_tensor *x = out->src[0], *w = out->src[1];
    int stride = out->ip[0], pad = out->ip[1], groups = out->ip[2];
    int64_t N = x->shape[0], C = x->shape[1], H = x->shape[2], W = x->shape[3];
    int64_t O = out->shape[1], Ho = out->shape[2], Wo = out->shape[3];
    int kh = (int)w->shape[2], kw = (int)w->shape[3];
    int64_t Cg = C / groups, Og = O / groups, K = Cg * kh * kw, R = C * kh * kw, P = Ho * Wo;
    if (out->numel == 0) return;
    if (K == 0) {
        cu_fill_async(out->data, 0.0f, out->numel);
        cu_done(ctx, out);
        return;
    }
    int direct = kh == 1 && kw == 1 && stride == 1 && pad == 0;
    int64_t nb = direct ? N : cu_chunk(N, R * P);
    float *col = direct ? NULL : (float *)cu_scratch(ctx, "conv2d", (size_t)(nb * R * P) * sizeof(float));
    if (!direct && !col) return;
    for (int64_t n0 = 0; n0 < N; n0 += nb) {
        int64_t cnt = N - n0 < nb ? N - n0 : nb;
        const float *B = x->data + n0 * C * H * W;
        if (!direct) {
            int64_t total = cnt * R * P;
            k_im2col<<<cu_blocks(total), CU_THREADS>>>(col, B, C, H, W, kh, kw, stride, pad, Ho, Wo, R * P, P, total);
            B = col;
        }
        if (!cu_gemm_groups(ctx, "conv2d", 0, Og, P, K, w->data, K, Og * K, B, R * P, K * P, out->data + n0 * O * P,
                            O * P, Og * P, cnt, groups))
            return;
    }
    cu_done(ctx, out);
}

/* y (N, O, Ho, Wo) = conv_transpose2d(x (N, C, H, W), w (C, O/g, kh, kw)), the adjoint of
   conv2d: per image and group, col (O/g*kh*kw, H*W) = w_g^T @ x_g, then col2im into the
   (Ho, Wo) planes (a 1x1 kernel with stride 1 and no padding writes y directly). */
static void cu_op_conv_transpose2d(gantl_ctx *ctx, gantl_tensor *out) {
    const gantl_tensor *x = out->src[0], *w = out->src[1];
    int stride = out->ip[0], pad = out->ip[1], groups = out->ip[2];
    int64_t N = x->shape[0], C = x->shape[1], H = x->shape[2], W = x->shape[3];
    int64_t O = out->shape[1], Ho = out->shape[2], Wo = out->shape[3];
    int kh = (int)w->shape[2], kw = (int)w->shape[3];
    int64_t Cg = C / groups, Og = O / groups, K = Og * kh * kw, P = H * W, Rc = O * kh * kw;
    if (out->numel == 0) return;
    if (Cg == 0) {
        cu_fill_async(out->data, 0.0f, out->numel);
        cu_done(ctx, out);
        return;
    }
    int direct = kh == 1 && kw == 1 && stride == 1 && pad == 0 && Ho == H && Wo == W;
    int64_t nb = direct ? N : cu_chunk(N, Rc * P);
    float *col = direct ? NULL : (float *)cu_scratch(ctx, "conv_transpose2d", (size_t)(nb * Rc * P) * sizeof(float));
    if (!direct && !col) return;
    for (int64_t n0 = 0; n0 < N; n0 += nb) {
        int64_t cnt = N - n0 < nb ? N - n0 : nb;
        float *dst = direct ? out->data + n0 * O * Ho * Wo : col;
        /* w_g stored (C/g, K): op(A) = w_g^T (K, C/g), ta = 1, rows of K floats */
        if (!cu_gemm_groups(ctx, "conv_transpose2d", 1, K, P, Cg, w->data, K, Cg * K, x->data + n0 * C * P, C * P,
                            Cg * P, dst, Rc * P, K * P, cnt, groups))
            return;
        if (!direct) {
            int64_t total = cnt * O * Ho * Wo;
            k_col2im<<<cu_blocks(total), CU_THREADS>>>(out->data + n0 * O * Ho * Wo, col, Ho, Wo, kh, kw, stride, pad, H,
                                                       W, total);
        }
    }
    cu_done(ctx, out);
}

/* gw (O, C/g, kh, kw) = sum_n gy_g (O/g, Ho*Wo) @ im2col(x_g)^T. Per chunk of nb images one
   GEMM (batched over groups) with the images side by side along the summed axis:
   gy as (O, nb*P) and im2col as (C*kh*kw, nb*P); chunks after the first add (beta 1). */
static void cu_op_conv2d_wgrad(gantl_ctx *ctx, gantl_tensor *out) {
    const gantl_tensor *x = out->src[0], *gy = out->src[1];
    int stride = out->ip[0], pad = out->ip[1], groups = out->ip[2];
    int64_t N = x->shape[0], C = x->shape[1], H = x->shape[2], W = x->shape[3];
    int64_t O = out->shape[0], Ho = gy->shape[2], Wo = gy->shape[3];
    int kh = (int)out->shape[2], kw = (int)out->shape[3];
    int64_t Cg = C / groups, Og = O / groups, K = Cg * kh * kw, R = C * kh * kw, P = Ho * Wo;
    if (out->numel == 0) return;
    if (N == 0 || P == 0) {
        cu_fill_async(out->data, 0.0f, out->numel);
        cu_done(ctx, out);
        return;
    }
    int direct = kh == 1 && kw == 1 && stride == 1 && pad == 0;
    int64_t nb = cu_chunk(N, (R + O) * P);
    float *mem = (float *)cu_scratch(ctx, "conv2d_wgrad", (size_t)(nb * (R + O) * P) * sizeof(float));
    if (!mem) return;
    float *colT = mem, *gyT = mem + nb * R * P;
    for (int64_t n0 = 0; n0 < N; n0 += nb) {
        int64_t cnt = N - n0 < nb ? N - n0 : nb, L = cnt * P; /* L: the summed axis */
        const float *A = gy->data + n0 * O * P, *B = x->data + n0 * C * H * W;
        if (cnt > 1) { /* (cnt, O, P) -> (O, cnt, P) */
            int64_t total = O * L;
            k_transpose_nop<<<cu_blocks(total), CU_THREADS>>>(gyT, A, cnt, O, P, total);
            A = gyT;
        }
        if (!direct || cnt > 1) { /* im2col as (R, cnt, P); with one direct image x is that */
            int64_t total = cnt * R * P;
            k_im2col<<<cu_blocks(total), CU_THREADS>>>(colT, x->data + n0 * C * H * W, C, H, W, kh, kw, stride, pad, Ho,
                                                       Wo, P, L, total);
            B = colT;
        }
        /* gw_g (Og, K) (+)= A_g (Og, L) @ B_g^T, B_g stored (K, L) */
        if (!cu_gemm(ctx, "conv2d_wgrad", 0, 1, Og, K, L, A, L, Og * L, B, L, K * L, n0 == 0 ? 0.0f : 1.0f, out->data,
                     K, Og * K, groups))
            return;
    }
    cu_done(ctx, out);
}

/* ---------------------------------------------------------------------------------------
   StyleGAN2 ops and resampling
   ------------------------------------------------------------------------------------- */

/* upfirdn2d: y[oy, ox] = gain * sum_t f'[t] u[oy*down + ty - pad_y0, ox*down + tx - pad_x0],
   u = x upsampled by zero insertion, f' = f flipped unless flip (a true convolution). Only
   the taps that land on input samples are visited (polyphase): along y the first is
   ty0 = (-(oy*downy - py0)) mod upy, then every upy-th, reading input row iy0, iy0 + 1, ...
   One thread per output; taps in (ty, tx) order, as the CPU. */
__global__ void k_upfirdn2d(float *y, const float *x, const float *f, int64_t H, int64_t W, int64_t Ho, int64_t Wo,
                            int fh, int fw, int upx, int upy, int downx, int downy, int px0, int py0, int flip,
                            float gain, int64_t n) {
    CU_LOOP(i, n) {
        int64_t ox = i % Wo, oy = i / Wo % Ho, nc = i / (Wo * Ho);
        int64_t by = oy * downy - py0, ty0 = ((-by) % upy + upy) % upy, iy0 = (by + ty0) / upy;
        int64_t bx = ox * downx - px0, tx0 = ((-bx) % upx + upx) % upx, ix0 = (bx + tx0) / upx;
        const float *xp = x + nc * H * W;
        float acc = 0.0f;
        for (int64_t ty = ty0, iy = iy0; ty < fh && iy < H; ty += upy, iy++) {
            if (iy < 0) continue;
            const float *frow = f + (flip ? ty : fh - 1 - ty) * fw, *xrow = xp + iy * W;
            for (int64_t tx = tx0, ix = ix0; tx < fw && ix < W; tx += upx, ix++)
                if (ix >= 0) acc += frow[flip ? tx : fw - 1 - tx] * xrow[ix];
        }
        y[i] = acc * gain;
    }
}

/* ip: up x/y, down x/y, pad x0 x1 y0 y1, flip; fp0: gain. f is 2-D (the constructor splits
   a 1-D filter into two passes). */
static void cu_op_upfirdn2d(gantl_ctx *ctx, gantl_tensor *out) {
    const gantl_tensor *x = out->src[0], *f = out->src[1];
    if (out->numel == 0) return;
    k_upfirdn2d<<<cu_blocks(out->numel), CU_THREADS>>>(out->data, x->data, f->data, x->shape[2], x->shape[3],
                                                       out->shape[2], out->shape[3], (int)f->shape[0], (int)f->shape[1],
                                                       out->ip[0], out->ip[1], out->ip[2], out->ip[3], out->ip[4],
                                                       out->ip[6], out->ip[8], out->fp[0], out->numel);
    cu_done(ctx, out);
}

/* bias_act: y = clamp(act(x + b[c]) * gain), c the index along axis 1 (rows of `inner`
   values); clamp < 0: none. */
__global__ void k_bias_act(float *y, const float *x, const float *b, int64_t C, int64_t inner, int act, float alpha,
                           float gain, float clamp, int64_t n) {
    CU_LOOP(i, n) {
        float v = x[i] + (b ? b[i / inner % C] : 0.0f);
        if (act == GANTL_ACT_LRELU && v < 0.0f) v *= alpha;
        v *= gain;
        if (clamp >= 0.0f) v = v > clamp ? clamp : (v < -clamp ? -clamp : v);
        y[i] = v;
    }
}

static void cu_op_bias_act(gantl_ctx *ctx, gantl_tensor *out) {
    const gantl_tensor *x = out->src[0], *b = out->src[1];
    if (out->numel == 0) return;
    int64_t C = x->ndim >= 2 ? x->shape[1] : 1, inner = x->ndim >= 2 ? x->numel / (x->shape[0] * C) : x->numel;
    k_bias_act<<<cu_blocks(out->numel), CU_THREADS>>>(out->data, x->data, b ? b->data : NULL, C, inner ? inner : 1,
                                                      out->ip[0], out->fp[0], out->fp[1], out->fp[2], out->numel);
    cu_done(ctx, out);
}

/* (g, y) -> g * act'(y) * gain, zero where |y| reached the clamp (the official rule). */
__global__ void k_bias_act_grad(float *out, const float *g, const float *y, int act, float alpha, float gain,
                                float clamp, int64_t n) {
    CU_LOOP(i, n) {
        float v = g[i], yi = y[i];
        if (act == GANTL_ACT_LRELU && !(yi > 0.0f)) v *= alpha;
        v *= gain;
        if (clamp >= 0.0f && !(yi > -clamp && yi < clamp)) v = 0.0f;
        out[i] = v;
    }
}

static void cu_op_bias_act_grad(gantl_ctx *ctx, gantl_tensor *out) {
    if (out->numel == 0) return;
    k_bias_act_grad<<<cu_blocks(out->numel), CU_THREADS>>>(out->data, out->src[0]->data, out->src[1]->data,
                                                           out->ip[0], out->fp[0], out->fp[1], out->fp[2], out->numel);
    cu_done(ctx, out);
}

/* The sample position of grid entry g = (x, y) in [-1, 1] over an H x W image
   (align_corners=False: -1 and 1 are the outer edges of the corner pixels) and its four
   bilinear weights nw, ne, sw, se, with the CPU's float operations (the _rn intrinsics
   keep nvcc from fusing them into FMAs). */
__device__ void cu_grid_weights(const float *g, int64_t H, int64_t W, int64_t *x0, int64_t *y0, float w[4]) {
    float ix = __fsub_rn(__fmul_rn(__fadd_rn(g[0], 1.0f), (float)W * 0.5f), 0.5f);
    float iy = __fsub_rn(__fmul_rn(__fadd_rn(g[1], 1.0f), (float)H * 0.5f), 0.5f);
    float fx = floorf(ix), fy = floorf(iy);
    float tx = ix - fx, ty = iy - fy, ex = 1.0f - tx, ey = 1.0f - ty;
    *x0 = (int64_t)fx, *y0 = (int64_t)fy;
    w[0] = ey * ex, w[1] = ey * tx, w[2] = ty * ex, w[3] = ty * tx;
}

/* grid_sample, bilinear, zeros outside: y (N, C, Ho, Wo) from x (N, C, H, W). */
__global__ void k_grid_sample(float *y, const float *x, const float *grid, int64_t C, int64_t H, int64_t W, int64_t Ho,
                              int64_t Wo, int64_t n) {
    CU_LOOP(i, n) {
        int64_t o = i % (Ho * Wo), c = i / (Ho * Wo) % C, nn = i / (Ho * Wo * C);
        int64_t x0, y0;
        float w[4];
        cu_grid_weights(grid + (nn * Ho * Wo + o) * 2, H, W, &x0, &y0, w);
        const float *xp = x + (nn * C + c) * H * W;
        int in_x0 = x0 >= 0 && x0 < W, in_x1 = x0 + 1 >= 0 && x0 + 1 < W;
        int in_y0 = y0 >= 0 && y0 < H, in_y1 = y0 + 1 >= 0 && y0 + 1 < H;
        float v00 = in_y0 && in_x0 ? xp[y0 * W + x0] : 0.0f, v01 = in_y0 && in_x1 ? xp[y0 * W + x0 + 1] : 0.0f;
        float v10 = in_y1 && in_x0 ? xp[(y0 + 1) * W + x0] : 0.0f, v11 = in_y1 && in_x1 ? xp[(y0 + 1) * W + x0 + 1] : 0.0f;
        y[i] = v00 * w[0] + v01 * w[1] + v10 * w[2] + v11 * w[3];
    }
}

static void cu_op_grid_sample(gantl_ctx *ctx, gantl_tensor *out) {
    const gantl_tensor *x = out->src[0], *grid = out->src[1];
    if (out->numel == 0) return;
    k_grid_sample<<<cu_blocks(out->numel), CU_THREADS>>>(out->data, x->data, grid->data, x->shape[1], x->shape[2],
                                                         x->shape[3], out->shape[2], out->shape[3], out->numel);
    cu_done(ctx, out);
}

/* The adjoint: each gy (N, C, Ho, Wo) value is added to the four pixels of x (N, C, H, W)
   it was interpolated from, with the same weights (atomicAdd: the order of the float sums
   varies between runs). x must be zero first. */
__global__ void k_grid_sample_adj(float *x, const float *gy, const float *grid, int64_t C, int64_t H, int64_t W,
                                  int64_t Ho, int64_t Wo, int64_t n) {
    CU_LOOP(i, n) {
        int64_t o = i % (Ho * Wo), nc = i / (Ho * Wo), nn = nc / C;
        int64_t x0, y0;
        float w[4], g = gy[i];
        cu_grid_weights(grid + (nn * Ho * Wo + o) * 2, H, W, &x0, &y0, w);
        float *xp = x + nc * H * W;
        for (int k = 0; k < 4; k++) {
            int64_t yy = y0 + (k >> 1), xx = x0 + (k & 1);
            if (yy >= 0 && yy < H && xx >= 0 && xx < W) atomicAdd(xp + yy * W + xx, g * w[k]);
        }
    }
}

static void cu_op_grid_sample_adj(gantl_ctx *ctx, gantl_tensor *out) {
    const gantl_tensor *gy = out->src[0], *grid = out->src[1];
    if (out->numel == 0) return;
    cu_fill_async(out->data, 0.0f, out->numel);
    if (gy->numel > 0)
        k_grid_sample_adj<<<cu_blocks(gy->numel), CU_THREADS>>>(out->data, gy->data, grid->data, out->shape[1],
                                                                out->shape[2], out->shape[3], gy->shape[2], gy->shape[3],
                                                                gy->numel);
    cu_done(ctx, out);
}

/* Reflection without repeating the edge (padding < n): index i of the padded axis reads
   input |i - p0| folded back at n - 1. */
__device__ int64_t cu_reflect(int64_t i, int64_t n) {
    if (i < 0) i = -i;
    if (i >= n) i = 2 * (n - 1) - i;
    return i;
}

/* y (NC, Ho, Wo) = x (NC, H, W) reflect-padded by px0 on the left and py0 on top. */
__global__ void k_pad_reflect(float *y, const float *x, int64_t H, int64_t W, int64_t Ho, int64_t Wo, int px0,
                              int py0, int64_t n) {
    CU_LOOP(i, n) {
        int64_t ox = i % Wo, oy = i / Wo % Ho, nc = i / (Wo * Ho);
        y[i] = x[(nc * H + cu_reflect(oy - py0, H)) * W + cu_reflect(ox - px0, W)];
    }
}

static void cu_op_pad_reflect(gantl_ctx *ctx, gantl_tensor *out) {
    const gantl_tensor *x = out->src[0];
    if (out->numel == 0) return;
    k_pad_reflect<<<cu_blocks(out->numel), CU_THREADS>>>(out->data, x->data, x->shape[2], x->shape[3], out->shape[2],
                                                         out->shape[3], out->ip[0], out->ip[2], out->numel);
    cu_done(ctx, out);
}

/* The padded positions o of an axis (p0 before, p1 after, n inputs) that read input i: i
   itself at o = p0 + i, its mirror on the left (o = p0 - i, for 1 <= i <= p0) and on the
   right (o = p0 + 2(n-1) - i, for n-1-p1 <= i <= n-2). Returns how many (1 to 3). */
__device__ int cu_reflect_sources(int64_t i, int64_t n, int p0, int p1, int64_t o[3]) {
    int k = 0;
    o[k++] = p0 + i;
    if (i >= 1 && i <= p0) o[k++] = p0 - i;
    if (i <= n - 2 && i >= n - 1 - p1) o[k++] = p0 + 2 * (n - 1) - i;
    return k;
}

/* The adjoint of pad_reflect as a gather: x (NC, H, W) [iy, ix] = the sum of gy (NC, Hp, Wp)
   over the padded pixels that copied it (deterministic, no atomics). */
__global__ void k_pad_reflect_adj(float *x, const float *gy, int64_t H, int64_t W, int64_t Hp, int64_t Wp, int px0,
                                  int px1, int py0, int py1, int64_t n) {
    CU_LOOP(i, n) {
        int64_t ix = i % W, iy = i / W % H, nc = i / (W * H);
        int64_t oy[3], ox[3];
        int ny = cu_reflect_sources(iy, H, py0, py1, oy), nx = cu_reflect_sources(ix, W, px0, px1, ox);
        const float *gp = gy + nc * Hp * Wp;
        float acc = 0.0f;
        for (int a = 0; a < ny; a++)
            for (int b = 0; b < nx; b++) acc += gp[oy[a] * Wp + ox[b]];
        x[i] = acc;
    }
}

static void cu_op_pad_reflect_adj(gantl_ctx *ctx, gantl_tensor *out) {
    const gantl_tensor *gy = out->src[0];
    if (out->numel == 0) return;
    k_pad_reflect_adj<<<cu_blocks(out->numel), CU_THREADS>>>(out->data, gy->data, out->shape[2], out->shape[3],
                                                             gy->shape[2], gy->shape[3], out->ip[0], out->ip[1],
                                                             out->ip[2], out->ip[3], out->numel);
    cu_done(ctx, out);
}

/* ---------------------------------------------------------------------------------------
   Memory and the flat-buffer kernels of parameter sets and optimizers (backend hooks)
   ------------------------------------------------------------------------------------- */

/* Managed memory: the host can read and write it too (see MEMORY MODEL above). */
static void *cu_alloc(size_t bytes) {
    void *p = NULL;
    cudaError_t e = cudaMallocManaged(&p, bytes ? bytes : 1, cudaMemAttachGlobal);
    if (e != cudaSuccess) {
        cudaGetLastError();
        gantl_ctx_set_error(NULL, GANTL_ERR_NOMEM, "cuda: cannot allocate %zu bytes of managed memory: %s", bytes,
                            cudaGetErrorString(e));
        return NULL;
    }
    return p;
}

static void cu_free(void *p) {
    if (p) cudaFree(p); /* waits for queued work that may still use it */
}

static gantl_status cu_synchronize(void) {
    cudaError_t e = cudaDeviceSynchronize();
    if (e == cudaSuccess) e = cudaGetLastError();
    if (e == cudaSuccess) return GANTL_OK;
    gantl_ctx_set_error(NULL, GANTL_ERR_DEVICE, "cuda: synchronize: %s (%s)", cudaGetErrorName(e), cudaGetErrorString(e));
    return GANTL_ERR_DEVICE;
}

/* Any direction: unified addressing tells cudaMemcpy where each pointer is. Ordered after
   the queued kernels on the default stream; returns when the copy is done. */
static gantl_status cu_copy(void *dst, const void *src, size_t bytes) {
    if (bytes == 0 || dst == src) return GANTL_OK;
    cudaError_t e = cudaMemcpy(dst, src, bytes, cudaMemcpyDefault);
    if (e == cudaSuccess) return GANTL_OK;
    gantl_ctx_set_error(NULL, GANTL_ERR_DEVICE, "cuda: copy of %zu bytes: %s (%s)", bytes, cudaGetErrorName(e),
                        cudaGetErrorString(e));
    return GANTL_ERR_DEVICE;
}

static gantl_status cu_fill(float *x, float value, int64_t n) {
    cu_fill_async(x, value, n);
    return cu_hook_done("fill");
}

__global__ void k_add(float *y, const float *x, int64_t n) {
    CU_LOOP(i, n) y[i] += x[i];
}
static gantl_status cu_add(float *y, const float *x, int64_t n) {
    if (n > 0) k_add<<<cu_blocks(n), CU_THREADS>>>(y, x, n);
    return cu_hook_done("gradient accumulation");
}

/* The EMA update d = lerp(s, d, t) = s + (d - s) * t, as the CPU. */
__global__ void k_lerp(float *d, const float *s, float t, int64_t n) {
    CU_LOOP(i, n) d[i] = s[i] + (d[i] - s[i]) * t;
}
static gantl_status cu_lerp(float *d, const float *s, float t, int64_t n) {
    if (n > 0) k_lerp<<<cu_blocks(n), CU_THREADS>>>(d, s, t, n);
    return cu_hook_done("params_lerp");
}

__global__ void k_nan_to_num(float *x, float limit, int64_t n) {
    CU_LOOP(i, n) {
        float v = x[i];
        x[i] = v != v ? 0.0f : (v > limit ? limit : (v < -limit ? -limit : v));
    }
}
static gantl_status cu_nan_to_num(float *x, float limit, int64_t n) {
    if (n > 0) k_nan_to_num<<<cu_blocks(n), CU_THREADS>>>(x, limit, n);
    return cu_hook_done("nan_to_num");
}

/* torch.optim.Adam's update of one tensor (the bias corrections are folded into step_size
   and bc2_sqrt by gantl_adam_step): the CPU loop's formulas. */
__global__ void k_adam(float *p, const float *g, float *m, float *v, int64_t n, float b1, float b2, float one_b1,
                       float one_b2, float step_size, float bc2_sqrt, float eps) {
    CU_LOOP(i, n) {
        float gi = g[i];
        float mi = m[i] * b1 + gi * one_b1, vi = v[i] * b2 + one_b2 * gi * gi;
        m[i] = mi, v[i] = vi;
        p[i] -= step_size * (mi / (sqrtf(vi) / bc2_sqrt + eps));
    }
}
static gantl_status cu_adam(float *p, const float *g, float *m, float *v, int64_t n, float b1, float b2, float one_b1,
                            float one_b2, float step_size, float bc2_sqrt, float eps) {
    if (n > 0) k_adam<<<cu_blocks(n), CU_THREADS>>>(p, g, m, v, n, b1, b2, one_b1, one_b2, step_size, bc2_sqrt, eps);
    return cu_hook_done("adam_step");
}

/* torch.optim.SGD's update of one tensor: buf = g on its first step, then momentum * buf + g;
   p -= lr * buf (without momentum, p -= lr * g). */
__global__ void k_sgd(float *p, const float *g, float *buf, int64_t n, float lr, float mu, int first) {
    CU_LOOP(i, n) {
        float d = g[i];
        if (mu != 0.0f) d = buf[i] = first ? d : mu * buf[i] + d;
        p[i] -= lr * d;
    }
}
static gantl_status cu_sgd(float *p, const float *g, float *buf, int64_t n, float lr, float momentum, int first) {
    if (n > 0) k_sgd<<<cu_blocks(n), CU_THREADS>>>(p, g, buf, n, lr, momentum, first);
    return cu_hook_done("sgd_step");
}

/* x /= d: the mean of all-reduced gradients, the host loop's division (not a product by
   1 / d), so that every transport's replicas compute the same floats. */
__global__ void k_divide(float *x, float d, int64_t n) {
    CU_LOOP(i, n) x[i] /= d;
}
static gantl_status cu_divide(float *x, float d, int64_t n) {
    if (n > 0) k_divide<<<cu_blocks(n), CU_THREADS>>>(x, d, n);
    return cu_hook_done("params_allreduce_grad (divide)");
}

/* ---------------------------------------------------------------------------------------
   Registration
   ------------------------------------------------------------------------------------- */

extern "C" int gantl_cuda_device_count(void) {
    int count = 0;
    if (cudaGetDeviceCount(&count) != cudaSuccess) {
        cudaGetLastError();
        return 0;
    }
    return count;
}

extern "C" int gantl_cuda_set_sync(int on) {
    int previous = cu.sync;
    cu.sync = on != 0;
    return previous;
}

extern "C" gantl_status gantl_cuda_init(int device_index) {
    if (cu.ready) {
        if (device_index == cu.device) return GANTL_OK;
        gantl_ctx_set_error(NULL, GANTL_ERR_UNSUPPORTED, "gantl_cuda_init: already using GPU %d (one GPU per process)",
                            cu.device);
        return GANTL_ERR_UNSUPPORTED;
    }
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess || count == 0) {
        cudaGetLastError();
        gantl_ctx_set_error(NULL, GANTL_ERR_DEVICE, "gantl_cuda_init: no usable CUDA GPU: %s",
                            e != cudaSuccess ? cudaGetErrorString(e) : "the driver reports 0 devices");
        return GANTL_ERR_DEVICE;
    }
    if (device_index < 0 || device_index >= count) {
        gantl_ctx_set_error(NULL, GANTL_ERR_INVALID, "gantl_cuda_init: GPU %d requested, %d found", device_index, count);
        return GANTL_ERR_INVALID;
    }
    cudaDeviceProp prop;
    e = cudaSetDevice(device_index);
    if (e == cudaSuccess) e = cudaGetDeviceProperties(&prop, device_index);
    if (e == cudaSuccess) e = cudaFree(0); /* creates the context now, so its failure shows here */
    if (e != cudaSuccess) {
        gantl_ctx_set_error(NULL, GANTL_ERR_DEVICE, "gantl_cuda_init: GPU %d: %s (%s)", device_index,
                            cudaGetErrorName(e), cudaGetErrorString(e));
        return GANTL_ERR_DEVICE;
    }
    if (!prop.managedMemory) {
        gantl_ctx_set_error(NULL, GANTL_ERR_UNSUPPORTED, "gantl_cuda_init: GPU %d (%s) has no managed memory", device_index,
                            prop.name);
        return GANTL_ERR_UNSUPPORTED;
    }
    cublasStatus_t bs = cublasCreate(&cu.blas);
    if (bs == CUBLAS_STATUS_SUCCESS) bs = cublasSetStream(cu.blas, 0);
    /* full FP32 (no TF32 tensor cores), so results match the CPU within float rounding */
    if (bs == CUBLAS_STATUS_SUCCESS) bs = cublasSetMathMode(cu.blas, CUBLAS_DEFAULT_MATH);
    if (bs != CUBLAS_STATUS_SUCCESS) {
        gantl_ctx_set_error(NULL, GANTL_ERR_DEVICE, "gantl_cuda_init: cuBLAS: %s", cu_blas_name(bs));
        return GANTL_ERR_DEVICE;
    }
    cu.device = device_index;
    cu.sync = 1;
    cu.sm_count = prop.multiProcessorCount;
    snprintf(cu.name, sizeof cu.name, "cuda:%d (%.200s, sm_%d%d, %.0f GiB)", device_index, prop.name, prop.major, prop.minor,
             (double)prop.totalGlobalMem / (double)(1u << 30));
    memset(&cu.backend, 0, sizeof cu.backend);
    cu.backend.name = cu.name;
    /* one kernel per op of the table: a missing cu_op_<name> does not compile */
#define CU_REGISTER(e, n, k) cu.backend.forward[GANTL_OP_##e] = cu_op_##n;
    GANTL_OP_TABLE(CU_REGISTER)
#undef CU_REGISTER
    cu.backend.alloc = cu_alloc;
    cu.backend.free = cu_free;
    cu.backend.synchronize = cu_synchronize;
    cu.backend.copy = cu_copy;
    cu.backend.fill = cu_fill;
    cu.backend.add = cu_add;
    cu.backend.lerp = cu_lerp;
    cu.backend.nan_to_num = cu_nan_to_num;
    cu.backend.adam = cu_adam;
    cu.backend.sgd = cu_sgd;
    cu.backend.divide = cu_divide;
    gantl_register_backend(GANTL_CUDA, &cu.backend);
    cu.ready = 1;
    return GANTL_OK;
}

/* ---------------------------------------------------------------------------------------
   NCCL transport of gantl_comm (compiled with GANTL_NCCL; link -lnccl)

   A collective runs on a stream of its own. That stream is a blocking stream (made with
   cudaStreamCreate), so its work starts only after the work queued before it on the legacy
   default stream, where every op and hook of this file runs: gradients are complete before
   they are reduced, with or without gantl_cuda_set_sync(1). Each call then waits for the
   stream by polling cudaStreamQuery and ncclCommGetAsyncError (the communicator is
   non-blocking, so init can time out too); past the timeout or on an error it calls
   ncclCommAbort and returns GANTL_ERR_COMM, and the communicator refuses every later call.
   Host buffers (the trainer's small statistics, the ADA sums, the replica checksum) are
   staged through a device buffer; device and managed buffers are used in place.
   ------------------------------------------------------------------------------------- */
#ifdef GANTL_NCCL
#include <nccl.h>

#if !defined(NCCL_VERSION_CODE) || NCCL_VERSION_CODE < NCCL_VERSION(2, 14, 0)
#error "GANTL_NCCL needs NCCL 2.14 or later (non-blocking communicators, ncclCommFinalize)"
#endif

#include <chrono>
#include <stdlib.h>
#include <thread>

typedef struct cu_nccl {
    ncclComm_t comm;
    cudaStream_t stream;
    double timeout; /* seconds a call may wait for the other ranks */
    int rank, size;
    int aborted;        /* after a timeout or an error: the communicator is gone */
    void *stage;        /* device staging buffer for host buffers (cudaMalloc) */
    size_t stage_bytes;
} cu_nccl;

static double cu_now(void) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

static void cu_nccl_abort(cu_nccl *s) {
    if (s->aborted) return;
    ncclCommAbort(s->comm); /* frees the communicator; never destroyed after this */
    s->aborted = 1;
}

/* An NCCL failure of what: the communicator aborted, GANTL_ERR_COMM with NCCL's messages. */
static gantl_status cu_nccl_error(cu_nccl *s, const char *what, ncclResult_t r) {
    const char *detail = ncclGetLastError(s->comm);
    char last[256];
    snprintf(last, sizeof last, "%s", detail ? detail : "");
    cu_nccl_abort(s);
    gantl_ctx_set_error(NULL, GANTL_ERR_COMM, "rank %d of %d: %s failed: %s%s%s; the NCCL communicator is aborted (end every rank)",
                        s->rank, s->size, what, ncclGetErrorString(r), last[0] ? ": " : "", last);
    return GANTL_ERR_COMM;
}

/* Waits until the communicator is ready (after init / finalize: stream NULL) or the
   stream's work is done, with the deadline; what and count name the call in messages. */
static gantl_status cu_nccl_wait(cu_nccl *s, const char *what, int64_t count, cudaStream_t stream) {
    double start = cu_now();
    for (long spin = 0;; spin++) {
        ncclResult_t async = ncclSuccess, r = ncclCommGetAsyncError(s->comm, &async);
        if (r != ncclSuccess) async = r;
        if (async != ncclSuccess && async != ncclInProgress) return cu_nccl_error(s, what, async);
        if (async == ncclSuccess) {
            if (!stream) return GANTL_OK;
            cudaError_t e = cudaStreamQuery(stream);
            if (e == cudaSuccess) return GANTL_OK;
            if (e != cudaErrorNotReady) {
                cudaGetLastError();
                cu_nccl_abort(s);
                gantl_ctx_set_error(NULL, GANTL_ERR_COMM, "rank %d of %d: %s of %lld values: CUDA error %s (%s); the NCCL "
                                    "communicator is aborted (end every rank)", s->rank, s->size, what, (long long)count,
                                    cudaGetErrorName(e), cudaGetErrorString(e));
                return GANTL_ERR_COMM;
            }
        }
        if (cu_now() - start > s->timeout) {
            cu_nccl_abort(s);
            gantl_ctx_set_error(NULL, GANTL_ERR_COMM, "rank %d of %d: %s of %lld values did not complete within %g s: another "
                                "rank died, hangs or fell far behind; the NCCL communicator is aborted (end every rank)",
                                s->rank, s->size, what, (long long)count, s->timeout);
            return GANTL_ERR_COMM;
        }
        if (spin > 1000) std::this_thread::yield();
    }
}

/* Whether the GPU can use buf in place: device or managed memory. */
static int cu_device_pointer(const void *buf) {
    cudaPointerAttributes a;
    if (cudaPointerGetAttributes(&a, buf) != cudaSuccess) {
        cudaGetLastError(); /* an unknown host pointer on old runtimes */
        return 0;
    }
    return a.type == cudaMemoryTypeDevice || a.type == cudaMemoryTypeManaged;
}

/* One collective of count elements of elem bytes: an all-reduce (root < 0) or a broadcast. */
static gantl_status cu_nccl_run(void *state, void *buf, int64_t count, ncclDataType_t type, size_t elem, int root,
                                const char *what) {
    cu_nccl *s = (cu_nccl *)state;
    if (s->aborted) {
        gantl_ctx_set_error(NULL, GANTL_ERR_COMM, "rank %d of %d: %s: the NCCL communicator was aborted by an earlier "
                            "failure", s->rank, s->size, what);
        return GANTL_ERR_COMM;
    }
    size_t bytes = (size_t)count * elem;
    void *dev = buf;
    int staged = !cu_device_pointer(buf);
    cudaError_t e = cudaSuccess;
    if (staged) {
        if (bytes > s->stage_bytes) {
            if (s->stage) cudaFree(s->stage);
            s->stage = NULL, s->stage_bytes = 0;
            e = cudaMalloc(&s->stage, bytes);
            if (e != cudaSuccess) {
                cudaGetLastError();
                s->stage = NULL;
                gantl_ctx_set_error(NULL, GANTL_ERR_NOMEM, "rank %d: %s: cannot allocate %zu bytes of staging memory: %s",
                                    s->rank, what, bytes, cudaGetErrorString(e));
                return GANTL_ERR_NOMEM;
            }
            s->stage_bytes = bytes;
        }
        dev = s->stage;
        e = cudaMemcpyAsync(dev, buf, bytes, cudaMemcpyHostToDevice, s->stream);
    }
    if (e != cudaSuccess) {
        cudaGetLastError();
        gantl_ctx_set_error(NULL, GANTL_ERR_DEVICE, "rank %d: %s: copy to the device: %s", s->rank, what,
                            cudaGetErrorString(e));
        return GANTL_ERR_DEVICE;
    }
    ncclResult_t r = root < 0 ? ncclAllReduce(dev, dev, (size_t)count, type, ncclSum, s->comm, s->stream)
                              : ncclBroadcast(dev, dev, (size_t)count, type, root, s->comm, s->stream);
    if (r != ncclSuccess && r != ncclInProgress) return cu_nccl_error(s, what, r);
    gantl_status st = cu_nccl_wait(s, what, count, s->stream);
    if (st == GANTL_OK && staged && (e = cudaMemcpy(buf, dev, bytes, cudaMemcpyDeviceToHost)) != cudaSuccess) {
        cudaGetLastError();
        gantl_ctx_set_error(NULL, GANTL_ERR_DEVICE, "rank %d: %s: copy to the host: %s", s->rank, what, cudaGetErrorString(e));
        return GANTL_ERR_DEVICE;
    }
    return st;
}

static gantl_status cu_nccl_allreduce_f32(void *state, float *buf, int64_t n) {
    return cu_nccl_run(state, buf, n, ncclFloat32, sizeof(float), -1, "ncclAllReduce (float)");
}
static gantl_status cu_nccl_allreduce_f64(void *state, double *buf, int64_t n) {
    return cu_nccl_run(state, buf, n, ncclFloat64, sizeof(double), -1, "ncclAllReduce (double)");
}
static gantl_status cu_nccl_broadcast(void *state, void *buf, int64_t bytes, int root) {
    return cu_nccl_run(state, buf, bytes, ncclUint8, 1, root, "ncclBroadcast");
}

extern "C" gantl_status gantl_comm_nccl_init(gantl_comm *c, const gantl_comm *bootstrap, double timeout_seconds) {
    *c = gantl_comm_single();
    if (!cu.ready) {
        gantl_ctx_set_error(NULL, GANTL_ERR_INVALID, "comm_nccl_init: call gantl_cuda_init first (this rank's GPU)");
        return GANTL_ERR_INVALID;
    }
    if (!bootstrap || bootstrap->size < 1 || bootstrap->rank < 0 || bootstrap->rank >= bootstrap->size) {
        gantl_ctx_set_error(NULL, GANTL_ERR_INVALID, "comm_nccl_init: not a bootstrap communicator");
        return GANTL_ERR_INVALID;
    }
    /* rank 0's id to every rank; a failure there reaches the others as ok = 0 */
    struct {
        int32_t ok;
        ncclUniqueId id;
    } msg;
    memset(&msg, 0, sizeof msg);
    ncclResult_t r = ncclSuccess;
    if (bootstrap->rank == 0) {
        r = ncclGetUniqueId(&msg.id);
        msg.ok = r == ncclSuccess;
    }
    gantl_status st = gantl_comm_broadcast(bootstrap, &msg, (int64_t)sizeof msg, 0);
    if (st != GANTL_OK) return st;
    if (!msg.ok) {
        gantl_ctx_set_error(NULL, GANTL_ERR_COMM, "comm_nccl_init: rank 0 could not make the NCCL id%s%s",
                            bootstrap->rank == 0 ? ": " : "", bootstrap->rank == 0 ? ncclGetErrorString(r) : "");
        return GANTL_ERR_COMM;
    }
    cu_nccl *s = (cu_nccl *)calloc(1, sizeof *s);
    if (!s) {
        gantl_ctx_set_error(NULL, GANTL_ERR_NOMEM, "comm_nccl_init: out of memory");
        return GANTL_ERR_NOMEM;
    }
    s->timeout = timeout_seconds > 0 ? timeout_seconds : 600.0;
    s->rank = bootstrap->rank, s->size = bootstrap->size;
    cudaError_t e = cudaSetDevice(cu.device); /* this thread on the backend's GPU */
    if (e == cudaSuccess) e = cudaStreamCreate(&s->stream);
    if (e != cudaSuccess) {
        cudaGetLastError();
        free(s);
        gantl_ctx_set_error(NULL, GANTL_ERR_DEVICE, "comm_nccl_init: stream: %s", cudaGetErrorString(e));
        return GANTL_ERR_DEVICE;
    }
    ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
    config.blocking = 0; /* init and calls return at once; cu_nccl_wait bounds the waits */
    r = ncclCommInitRankConfig(&s->comm, s->size, msg.id, s->rank, &config);
    if (r == ncclSuccess || r == ncclInProgress) st = cu_nccl_wait(s, "ncclCommInitRank", s->size, NULL);
    else {
        gantl_ctx_set_error(NULL, GANTL_ERR_COMM, "rank %d of %d: ncclCommInitRank failed: %s", s->rank, s->size,
                            ncclGetErrorString(r));
        st = GANTL_ERR_COMM;
        if (s->comm) ncclCommAbort(s->comm); /* whatever init left */
        s->aborted = 1;
    }
    if (st != GANTL_OK) {
        cudaStreamDestroy(s->stream);
        free(s);
        return st;
    }
    c->rank = s->rank, c->size = s->size;
    c->state = s;
    c->allreduce_f32 = cu_nccl_allreduce_f32;
    c->allreduce_f64 = cu_nccl_allreduce_f64;
    c->broadcast = cu_nccl_broadcast;
    return GANTL_OK;
}

extern "C" void gantl_comm_nccl_free(gantl_comm *c) {
    cu_nccl *s = c->broadcast == cu_nccl_broadcast ? (cu_nccl *)c->state : NULL;
    if (s) {
        if (!s->aborted) { /* flush, then free; bounded by the timeout like every call */
            ncclResult_t r = ncclCommFinalize(s->comm);
            gantl_status st = r == ncclSuccess || r == ncclInProgress ? cu_nccl_wait(s, "ncclCommFinalize", 0, NULL)
                                                                     : cu_nccl_error(s, "ncclCommFinalize", r);
            if (st == GANTL_OK) ncclCommDestroy(s->comm);
        }
        cudaStreamDestroy(s->stream);
        if (s->stage) cudaFree(s->stage);
        free(s);
    }
    *c = gantl_comm_single();
}
#endif /* GANTL_NCCL */
