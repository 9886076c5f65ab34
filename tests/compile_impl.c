/* Compile check: the implementation, compiled as C99 and as C++17 with -Werror. */
#define GANTL_IMPLEMENTATION
#include "../gantl.h"

/* Called from the declarations-only unit, which is built in the other language. */
#ifdef __cplusplus
extern "C" {
#endif
int gantl_compile_check_impl(void);
int gantl_compile_check_impl(void) { return gantl_num_threads() >= 1 ? 0 : 1; }
#ifdef __cplusplus
}
#endif
