/* The test binary: one translation unit with the implementation and every test file.
   Usage: build/test [name-filter]. Prints one line per test and "N passed, N failed". */
#if defined(__unix__) || defined(__APPLE__)
#define _POSIX_C_SOURCE 200809L
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
#endif
/* stb_image and stb_image_resize (Debian: libstb-dev) before gantl.h: datasets decode
   PNG / JPEG, inflate .gz and resize with them. */
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
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif
#define GANTL_IMPLEMENTATION
#include "../gantl.h"
#include "test.h"

#include "test_core.c"
#include "test_golden.c"
#include "test_io.c"
#include "test_networks.c"
#include "test_cli.c"
#include "test_train.c"
#include "test_data.c"
#include "test_augment.c"
#include "test_metrics.c"
#include "test_extractors.c"
#include "test_inception.c"
#include "test_parallel.c"
#include "test_mpi.c"

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0); /* each line as it comes, also into a pipe or a file */
    if (argc > 1) test__filter = argv[1];
    run_core_tests();
    run_golden_tests();
    run_io_tests();
    run_network_tests();
    run_cli_tests();
    run_train_tests();
    run_data_tests();
    run_augment_tests();
    run_metrics_tests();
    run_extractor_tests();
    run_inception_tests();
    run_parallel_tests();
    run_mpi_tests();
    printf("%d passed, %d failed\n", test__passed, test__failed);
    fflush(stdout); /* before a leak checker's report at exit (make asan) */
    return test__failed ? 1 : 0;
}
