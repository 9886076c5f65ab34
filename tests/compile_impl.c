/* Compile check: the implementation, compiled as C99 and as C++17 with -Werror. */
#define GANTL_IMPLEMENTATION
#include "../gantl.h"

/* Called from the declarations-only unit, which is built in the other language. */
#ifdef __cplusplus
extern "C" {
#endif
int gantl_compile_check_impl(void);
int gantl_compile_check_impl(void) {
    /* without stb_image, image folders and .gz files are unsupported, with a message saying
       what to include; .npy and uncompressed IDX files still load */
    gantl_dataset ds;
    int ok = gantl_dataset_load(&ds, "tests/fixtures/data/rgb", NULL) == GANTL_ERR_UNSUPPORTED &&
             strstr(gantl_last_error(), "#include <stb/stb_image.h>") != NULL;
    ok = ok && gantl_dataset_load(&ds, "tests/fixtures/data/idx/tiny-images-idx3-ubyte.gz", NULL) == GANTL_ERR_UNSUPPORTED &&
         strstr(gantl_last_error(), "stb_image") != NULL;
    ok = ok && gantl_dataset_load(&ds, "tests/fixtures/data/npy/nchw_u8.npy", NULL) == GANTL_OK && ds.count == 3;
    gantl_dataset_free(&ds);
    gantl_dataset_options o;
    gantl_dataset_options_default(&o);
    o.resolution = 4; /* 8x8 arrays would need resizing: unsupported without stb_image_resize */
    ok = ok && gantl_dataset_load(&ds, "tests/fixtures/data/npy/nchw_u8.npy", &o) == GANTL_ERR_UNSUPPORTED &&
         strstr(gantl_last_error(), "stb_image_resize.h") != NULL;
    if (!ok) fprintf(stderr, "compile check: dataset loading without stb: %s\n", gantl_last_error());
    return ok && gantl_num_threads() >= 1 ? 0 : 1;
}
#ifdef __cplusplus
}
#endif
