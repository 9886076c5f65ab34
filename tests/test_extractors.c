/* Feature extractors: the Fashion-MNIST classifier (cross-entropy, training, save / load,
   padding of 28x28 inputs), mode coverage. */

static void test_cross_entropy_values_and_gradient(void) {
    gantl_ctx *ctx = gantl_ctx_new(0);
    float lv[6] = {2.0f, -1.0f, 0.5f, 100.0f, 101.0f, 99.0f}; /* a large row tests the shift */
    int32_t labels[2] = {0, 2};
    gantl_tensor *l = gantl_requires_grad(gantl_from_data(ctx, 2, (int64_t[]){2, 3}, lv)), *g;
    gantl_tensor *loss = gantl_cross_entropy(ctx, l, labels);
    double want = 0, grad[6];
    for (int i = 0; i < 2; i++) {
        double m = fmax(fmax(lv[3 * i], lv[3 * i + 1]), lv[3 * i + 2]), z = 0;
        for (int j = 0; j < 3; j++) z += exp(lv[3 * i + j] - m);
        want += (log(z) + m - lv[3 * i + labels[i]]) / 2;
        for (int j = 0; j < 3; j++) grad[3 * i + j] = (exp(lv[3 * i + j] - m) / z - (j == labels[i])) / 2;
    }
    CHECK_NEAR(loss->data[0], want, 1e-6);
    gantl_grad(ctx, 1, &loss, NULL, 1, &l, &g, 0);
    for (int i = 0; i < 6; i++) CHECK_NEAR(g->data[i], grad[i], 1e-6);
    gantl_ctx_free(ctx);
}

static void test_classifier_learns_and_round_trips(void) {
    /* 256 training images of two classes: a few Adam steps separate them */
    gantl_dataset ds;
    gantl_dataset_options o;
    gantl_dataset_options_default(&o);
    o.max_images = 256;
    if (gantl_dataset_load(&ds, "fashion-mnist:trouser,bag", &o) != GANTL_OK) {
        CHECK_MSG(0, "%s", gantl_last_error());
        return;
    }
    gantl_classifier c;
    gantl_adam opt;
    CHECK(gantl_classifier_init(&c, 1, 2, 1) == GANTL_OK && gantl_adam_init(&opt, &c.params, 1e-3, 0.9, 0.999, 1e-8) == GANTL_OK);
    float *x = (float *)malloc(256 * 1024 * sizeof(float));
    int64_t idx[256];
    for (int i = 0; i < 256; i++) idx[i] = i;
    gantl_dataset_batch(&ds, idx, NULL, 256, x, NULL);
    gantl_ctx *ctx = gantl_ctx_new(0);
    float first = 0, last = 0;
    for (int step = 0; step < 8; step++) {
        gantl_ctx_reset(ctx);
        gantl_tensor *loss = gantl_cross_entropy(ctx, gantl_classifier_forward(ctx, &c, gantl_from_data(ctx, 4, (int64_t[]){256, 1, 32, 32}, x), NULL), ds.labels);
        if (step == 0) first = loss->data[0];
        last = loss->data[0];
        gantl_params_zero_grad(&c.params);
        gantl_backward(ctx, loss);
        gantl_adam_step(&opt, &c.params);
    }
    CHECK_MSG(last < 0.5f * first, "loss %g -> %g", first, last);
    /* save, load: the same features; 28x28 inputs are padded to 32 with the background */
    CHECK(gantl_classifier_save(&c, "build/test_cls.safetensors", 0.5) == GANTL_OK);
    gantl_classifier d;
    CHECK(gantl_classifier_load(&d, "build/test_cls.safetensors") == GANTL_OK && d.test_accuracy == 0.5);
    float f1[4 * 256], f2[4 * 256], small[4 * 28 * 28];
    int32_t p1[4], p2[4];
    CHECK(gantl_classifier_run(&c, x, 4, 32, 32, f1, p1) == GANTL_OK);
    CHECK(gantl_classifier_run(&d, x, 4, 32, 32, f2, p2) == GANTL_OK);
    CHECK(!memcmp(f1, f2, sizeof f1) && !memcmp(p1, p2, sizeof p1));
    for (int i = 0; i < 4; i++)
        for (int y = 0; y < 28; y++) memcpy(small + (i * 28 + y) * 28, x + (i * 32 + y + 2) * 32 + 2, 28 * sizeof(float));
    CHECK(gantl_classifier_run(&d, small, 4, 28, 28, f2, p2) == GANTL_OK);
    /* the fixture's borders are background (-1), so padding reproduces the 32x32 images */
    CHECK_ALLCLOSE(f2, f1, 4 * 256, 1e-5, 1e-5);
    CHECK(gantl_classifier_run(&d, x, 4, 48, 48, f2, p2) == GANTL_ERR_INVALID);
    gantl_classifier_free(&d);
    CHECK(gantl_classifier_load(&d, "tests/fixtures/core.safetensors") != GANTL_OK);
    CHECK(strstr(gantl_last_error(), "not a gantl classifier") != NULL);
    free(x);
    gantl_ctx_free(ctx);
    gantl_adam_free(&opt);
    gantl_classifier_free(&c);
    gantl_classifier_free(&d);
    gantl_dataset_free(&ds);
    remove("build/test_cls.safetensors");
}

static void test_mode_coverage(void) {
    int32_t p[12] = {0, 0, 0, 1, 1, 2, 2, 2, 2, 5, 5, 5};
    CHECK(gantl_mode_coverage(p, 12, 6, 3) == 3); /* classes 0, 2, 5 */
    CHECK(gantl_mode_coverage(p, 12, 6, 1) == 4);
    CHECK(gantl_mode_coverage(p, 12, 6, 5) == 0);
    CHECK(gantl_mode_coverage(p, 12, 3, 2) == 3); /* out-of-range predictions are ignored */
}

static void run_extractor_tests(void) {
    RUN(test_cross_entropy_values_and_gradient);
    RUN(test_classifier_learns_and_round_trips);
    RUN(test_mode_coverage);
}
