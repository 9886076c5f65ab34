/* A tiny test runner. Each test is a void function; CHECK records a failure and goes on.
   The test binary is one translation unit (tests/test_main.c) that defines
   GANTL_IMPLEMENTATION and includes every test file, so tests may call gantl__ helpers.
   Fixtures are safetensors files under tests/fixtures/, written by the scripts in tools/. */
#ifndef GANTL_TEST_H
#define GANTL_TEST_H

#include <math.h>
#include <stdio.h>
#include <string.h>

static int test__passed, test__failed, test__checks_failed;
static const char *test__filter;

#define CHECK(cond)                                                                            \
    do {                                                                                       \
        if (!(cond)) {                                                                         \
            test__checks_failed++;                                                             \
            fprintf(stderr, "    %s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond);       \
        }                                                                                      \
    } while (0)

#define CHECK_MSG(cond, ...)                                                                   \
    do {                                                                                       \
        if (!(cond)) {                                                                         \
            test__checks_failed++;                                                             \
            fprintf(stderr, "    %s:%d: ", __FILE__, __LINE__);                                \
            fprintf(stderr, __VA_ARGS__);                                                      \
            fputc('\n', stderr);                                                               \
        }                                                                                      \
    } while (0)

/* |a - b| <= tol */
#define CHECK_NEAR(a, b, tol)                                                                  \
    do {                                                                                       \
        double test__a = (double)(a), test__b = (double)(b);                                   \
        if (!(fabs(test__a - test__b) <= (tol))) {                                             \
            test__checks_failed++;                                                             \
            fprintf(stderr, "    %s:%d: %s = %.9g, %s = %.9g, differ by %.3g > %.3g\n", __FILE__, __LINE__, #a, \
                    test__a, #b, test__b, fabs(test__a - test__b), (double)(tol));             \
        }                                                                                      \
    } while (0)

#define RUN(fn)                                                                                \
    do {                                                                                       \
        if (test__filter && !strstr(#fn, test__filter)) break;                                 \
        test__checks_failed = 0;                                                               \
        fn();                                                                                  \
        if (test__checks_failed) {                                                             \
            test__failed++;                                                                    \
            printf("FAIL %s\n", #fn);                                                          \
        } else {                                                                               \
            test__passed++;                                                                    \
            printf("ok   %s\n", #fn);                                                          \
        }                                                                                      \
        fflush(stdout);                                                                        \
    } while (0)

/* Largest |a[i] - b[i]| / (atol + rtol * |b[i]|); <= 1 means every element is within tolerance. */
static double test__worst(const float *a, const float *b, long long n, double atol, double rtol, long long *where) {
    double worst = 0.0;
    for (long long i = 0; i < n; i++) {
        double diff = fabs((double)a[i] - (double)b[i]);
        double e = diff == 0.0 ? 0.0 : diff / (atol + rtol * fabs((double)b[i]));
        if (!(e <= worst)) { /* also catches NaN */
            worst = e != e ? INFINITY : e;
            if (where) *where = i;
        }
    }
    return worst;
}

#define CHECK_ALLCLOSE(a, b, n, atol, rtol)                                                    \
    do {                                                                                       \
        long long test__at = 0;                                                                \
        double test__w = test__worst((a), (b), (long long)(n), (atol), (rtol), &test__at);     \
        if (!(test__w <= 1.0)) {                                                               \
            test__checks_failed++;                                                             \
            fprintf(stderr, "    %s:%d: %s vs %s: element %lld is %.9g, expected %.9g (atol %.2g, rtol %.2g)\n", \
                    __FILE__, __LINE__, #a, #b, test__at, (double)(a)[test__at], (double)(b)[test__at], \
                    (double)(atol), (double)(rtol));                                           \
        }                                                                                      \
    } while (0)

#endif
