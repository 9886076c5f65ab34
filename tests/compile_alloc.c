/* Compile check: the implementation with all three allocator overrides (GANTL_MALLOC,
   GANTL_REALLOC, GANTL_FREE) as static functions of this file and GANTL_STATIC, built with
   -Werror and run: every allocation of a context's step goes through the counting functions
   and is freed again. (Defining only some of the three is an #error: the Makefile checks that
   too.) */
#include <stdio.h>
#include <stdlib.h>

static long alloc_live, alloc_calls;

static void *count_malloc(size_t n) {
    void *p = malloc(n);
    if (p) alloc_live++, alloc_calls++;
    return p;
}
static void *count_realloc(void *p, size_t n) {
    void *q = realloc(p, n);
    if (q && !p) alloc_live++;
    if (q) alloc_calls++;
    return q;
}
static void count_free(void *p) {
    if (p) alloc_live--;
    free(p);
}

#define GANTL_MALLOC(sz) count_malloc(sz)
#define GANTL_REALLOC(p, sz) count_realloc(p, sz)
#define GANTL_FREE(p) count_free(p)
#define GANTL_STATIC
#define GANTL_IMPLEMENTATION
#include "../gantl.h"

int main(void) {
    gantl_ctx *ctx = gantl_ctx_new(1 << 16);
    gantl_rng rng = gantl_rng_new(1);
    const int64_t shape[2] = {3, 4};
    gantl_tensor *x = ctx ? gantl_requires_grad(gantl_randn(ctx, &rng, 2, shape)) : NULL;
    gantl_tensor *y = x ? gantl_sum_all(ctx, gantl_mul(ctx, x, x)) : NULL;
    gantl_tensor *g = NULL;
    if (y) gantl_grad(ctx, 1, &y, NULL, 1, &x, &g, 0);
    int ok = g != NULL && g->numel == 12 && g->data[5] == 2.0f * x->data[5];
    long calls = alloc_calls;
    gantl_ctx_free(ctx);
    if (!ok || calls == 0 || alloc_live != 0) {
        fprintf(stderr, "compile check: allocator overrides: ok %d, %ld calls, %ld blocks not freed\n", ok, calls,
                alloc_live);
        return 1;
    }
    return 0;
}
