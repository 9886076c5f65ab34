/* Compile check: declarations only (no GANTL_IMPLEMENTATION), compiled as C++17 and as C99
   and linked against the implementation built in the other language. */
#include "../gantl.h"

#ifdef __cplusplus
extern "C" int gantl_compile_check_impl(void);
#else
int gantl_compile_check_impl(void);
#endif

int main(void) {
    gantl_ctx *ctx = gantl_ctx_new(0);
    gantl_tensor *x = gantl_scalar(ctx, 2.0f);
    gantl_requires_grad(x);
    gantl_tensor *y = gantl_square(ctx, x), *g = NULL;
    gantl_grad(ctx, 1, &y, NULL, 1, &x, &g, 0);
    int ok = g && g->data[0] == 4.0f && gantl_compile_check_impl() == 0 && gantl_op_num_inputs(GANTL_OP_CONV2D) == 2;
    gantl_ctx_free(ctx);
    return ok ? 0 : 1;
}
