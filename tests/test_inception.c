/* FID Inception-v3 (section 14) against tests/fixtures/inception_random.safetensors, written by
   tools/inception_ref.py from its own PyTorch network (checked there against torchvision's
   Inception3 with pytorch-fid's blocks).

   The weights are not in the fixture: both sides draw them from a counter-based hash of
   (tensor name, element index), see the docstring of tools/inception_ref.py; inc_random_value
   below is the C twin of its random_value(). The test writes them to a temporary safetensors
   file (about 95 MB under build/, removed after loading), loads it with gantl_inception_load
   and compares:
     - the layer table (names, shapes) with the fixture's list of PyTorch state_dict tensors;
     - the resize with F.interpolate (float32) on small planes, up and down, and 299 x 299;
     - the features of 32 x 32 RGB, 28 x 28 grey, 20 x 36 RGB and 320 x 310 RGB images with the
       float64 reference of pytorch-fid's pipeline: max |error| <= 1e-4 * max |reference| for
       each case (measured: 2e-7 to 3e-6, as close as PyTorch's own float32 run);
     - grey input against the same image replicated to RGB, a 299 x 299 input (no resize),
       and batch-size invariance: all bit-exact;
     - clear errors for missing files, foreign or misshapen tensors and bad BatchNorms. */

static const char *inc_weights_path = "build/test_inception_weights.safetensors";
static gantl_inception inc_net;
static int inc_net_ok;
static float inc_feat_rgb[2 * 2048], inc_feat_grey[2048]; /* from test_inception_features */

static uint64_t inc_fnv1a(const char *s) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
    return h;
}

/* r in [-1, 1) for elements 0..n-1 of tensor name. */
static void inc_hash_uniform(const char *name, float *out, int64_t n) {
    uint64_t key = inc_fnv1a(name);
    for (int64_t i = 0; i < n; i++) {
        uint64_t z = key + (uint64_t)(i + 1) * 0x9E3779B97F4A7C15ull;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        z ^= z >> 31;
        float u = (float)(z >> 40) * (1.0f / 16777216.0f);
        out[i] = u * 2.0f - 1.0f;
    }
}

/* The deterministic value of a network tensor (one statement per rounding, so that no
   compiler fuses a multiply-add where NumPy rounds twice). */
static void inc_random_value(const char *name, const int64_t *shape, int ndim, float *out) {
    int64_t n = 1, fan_in = 1;
    for (int d = 0; d < ndim; d++) n *= shape[d];
    for (int d = 1; d < ndim; d++) fan_in *= shape[d];
    inc_hash_uniform(name, out, n);
    size_t len = strlen(name);
#define INC_ENDS(s) (len >= strlen(s) && strcmp(name + len - strlen(s), s) == 0)
    float a = (float)sqrt(6.0 / (double)fan_in);
    for (int64_t i = 0; i < n; i++) {
        float r = out[i], v;
        if (INC_ENDS("conv.weight")) v = r * a;
        else if (INC_ENDS("bn.weight")) v = 0.25f * r, v = 1.0f + v;
        else if (INC_ENDS("bn.bias")) v = 0.1f * r, v = v - 0.05f;
        else if (INC_ENDS("bn.running_mean")) v = 0.1f * r;
        else v = 0.5f * r, v = 1.0f + v; /* bn.running_var */
        out[i] = v;
    }
#undef INC_ENDS
}

/* The five tensors of layer L in state_dict order: name and shape. */
static void inc_tensor(const gantl_inception_conv *L, int k, char *name, size_t size, int *ndim, int64_t *shape) {
    snprintf(name, size, "%s.%s", L->name, gantl__inc_suffixes[k]);
    if (k == 0) {
        *ndim = 4;
        shape[0] = L->out_channels, shape[1] = L->in_channels, shape[2] = L->kh, shape[3] = L->kw;
    } else {
        *ndim = 1;
        shape[0] = L->out_channels;
    }
}

/* Writes the random network to path (every layer, plus extras that the loader skips). */
static int inc_write_weights(const char *path) {
    gantl_inception layout;
    memset(&layout, 0, sizeof layout);
    gantl__inc_layers(&layout);
    gantl_st_writer w;
    gantl_st_writer_init(&w);
    float *buf = (float *)malloc((size_t)(2048 * 1280) * sizeof(float)); /* > the largest: fc, 1008 x 2048 */
    for (int i = 0; i < GANTL_INCEPTION_CONVS; i++)
        for (int k = 0; k < 5; k++) {
            char name[64];
            int ndim;
            int64_t shape[4];
            inc_tensor(&layout.conv[i], k, name, sizeof name, &ndim, shape);
            inc_random_value(name, shape, ndim, buf);
            gantl_st_writer_add(&w, name, GANTL_F32, ndim, shape, buf);
        }
    int64_t fc_shape[2] = {1008, 2048}, one = 1, steps = 7;
    memset(buf, 0, (size_t)(1008 * 2048) * sizeof(float));
    gantl_st_writer_add(&w, "fc.weight", GANTL_F32, 2, fc_shape, buf);
    gantl_st_writer_add(&w, "Mixed_5b.branch1x1.bn.num_batches_tracked", GANTL_I64, 1, &one, &steps);
    gantl_status s = gantl_st_writer_save(&w, path);
    CHECK_MSG(s == GANTL_OK, "writing %s: %s", path, gantl_last_error());
    gantl_st_writer_free(&w);
    free(buf);
    return s == GANTL_OK;
}

static void test_inception_layers_match_reference(void) {
    gantl_st_file f;
    gantl_status s = gantl_st_load(&f, "tests/fixtures/inception_random.safetensors");
    CHECK_MSG(s == GANTL_OK, "fixture: %s", gantl_last_error());
    if (s != GANTL_OK) return;
    const char *text = gantl_st_meta(&f, "gantl.tensors");
    gantl_json j;
    CHECK(text && gantl_json_parse(&j, text, strlen(text)) == GANTL_OK);
    if (text && j.type == GANTL_JSON_ARRAY) {
        gantl_inception layout;
        memset(&layout, 0, sizeof layout);
        gantl__inc_layers(&layout);
        CHECK_MSG(j.count == 5 * GANTL_INCEPTION_CONVS, "reference has %d tensors, gantl %d", j.count,
                  5 * GANTL_INCEPTION_CONVS);
        int64_t params = 0;
        for (int i = 0; i < j.count; i++) { /* each reference tensor is a gantl tensor of the same shape */
            const gantl_json *e = &j.items[i], *sh = &e->items[1];
            int found = 0;
            for (int k = 0; k < 5 * GANTL_INCEPTION_CONVS && !found; k++) {
                char name[64];
                int ndim;
                int64_t shape[4];
                inc_tensor(&layout.conv[k / 5], k % 5, name, sizeof name, &ndim, shape);
                if (strcmp(e->items[0].string, name) != 0) continue;
                found = sh->count == ndim;
                for (int d = 0; found && d < ndim; d++) found = (int64_t)sh->items[d].number == shape[d];
                int64_t numel = 1;
                for (int d = 0; d < ndim; d++) numel *= shape[d];
                if (found) params += numel;
            }
            CHECK_MSG(found, "reference tensor %s: no gantl tensor of that name and shape", e->items[0].string);
        }
        CHECK(params == 21820000); /* torchvision's Inception3 without fc and AuxLogits */
        gantl_json_free(&j);
    }
    gantl_st_free(&f);
}

static void test_inception_resize(void) {
    net_fixture nf;
    if (!net_open(&nf, "inception_random")) return;
    float src[2 * 9 * 7];
    gantl_st_read_f32(&nf.f, "in.resize", src, 2 * 9 * 7, 0, NULL);
    static const int sizes[5][2] = {{11, 13}, {3, 4}, {9, 7}, {5, 20}, {299, 299}};
    for (int k = 0; k < 5; k++) {
        int ho = sizes[k][0], wo = sizes[k][1], planes = k == 4 ? 1 : 2;
        float *y = (float *)malloc((size_t)(planes * ho * wo) * sizeof(float));
        gantl__lerp *t = (gantl__lerp *)malloc((size_t)(ho + wo) * sizeof(gantl__lerp));
        gantl__lerp_table(9, ho, t);
        gantl__lerp_table(7, wo, t + ho);
        for (int p = 0; p < planes; p++) gantl__resize_plane(src + p * 63, 7, y + p * ho * wo, ho, wo, t, t + ho);
        char name[64];
        snprintf(name, sizeof name, "out.resize_%dx%d", ho, wo);
        net_expect(&nf, y, planes * ho * wo, name, 1e-6, 1.0);
        if (k == 2) CHECK(memcmp(y, src, sizeof src) == 0); /* same size: the identity, exactly */
        free(y);
        free(t);
    }
    /* 320 x 310 -> 299 x 299 (downsampling), first channel of the hash image "input.big" */
    float *big = (float *)malloc((size_t)(3 * 320 * 310) * sizeof(float));
    float *y = (float *)malloc((size_t)(299 * 299) * sizeof(float));
    gantl__lerp t[2 * 299];
    inc_hash_uniform("input.big", big, 3 * 320 * 310);
    gantl__lerp_table(320, 299, t);
    gantl__lerp_table(310, 299, t + 299);
    gantl__resize_plane(big, 310, y, 299, 299, t, t + 299);
    memmove(y + 16 * 299, y + 295 * 299, (size_t)(4 * 299) * sizeof(float)); /* rows 0-15, 295-298 */
    net_expect(&nf, y, 20 * 299, "out.resize_big_rows", 1e-6, 1.0);
    free(big);
    free(y);
    net_close(&nf);
}

/* Features of the fixture images in[case] against out.features.<case>; returns them
   (malloc'd) or NULL. */
static float *inc_case(net_fixture *nf, const char *cas, int64_t *n_out) {
    char name[64];
    snprintf(name, sizeof name, "in.%s", cas);
    const gantl_st_tensor *t = gantl_st_find(&nf->f, name);
    int64_t shape[4] = {1, 3, 320, 310};
    float *x;
    if (strcmp(cas, "big") == 0) { /* not stored: the hash image */
        x = (float *)malloc((size_t)(3 * 320 * 310) * sizeof(float));
        inc_hash_uniform("input.big", x, 3 * 320 * 310);
    } else {
        CHECK_MSG(t && t->ndim == 4, "fixture tensor %s missing", name);
        if (!t || t->ndim != 4) return NULL;
        memcpy(shape, t->shape, sizeof shape);
        x = (float *)malloc((size_t)t->numel * sizeof(float));
        gantl_st_read_f32(&nf->f, name, x, t->numel, 0, NULL);
    }
    float *feat = (float *)malloc((size_t)(shape[0] * 2048) * sizeof(float));
    gantl_status s = gantl_inception_features(&inc_net, x, shape[0], (int)shape[1], (int)shape[2], (int)shape[3], feat);
    CHECK_MSG(s == GANTL_OK, "%s: %s", cas, gantl_last_error());
    snprintf(name, sizeof name, "out.features.%s", cas);
    net_expect(nf, feat, shape[0] * 2048, name, 1e-4, 0);
    free(x);
    *n_out = shape[0];
    return feat;
}

static void test_inception_features(void) {
    net_fixture nf;
    if (!net_open(&nf, "inception_random")) return;
    if (!inc_write_weights(inc_weights_path)) {
        net_close(&nf);
        return;
    }
    gantl_status s = gantl_inception_load(&inc_net, inc_weights_path);
    remove(inc_weights_path);
    CHECK_MSG(s == GANTL_OK, "loading the random weights: %s", gantl_last_error());
    inc_net_ok = s == GANTL_OK;
    if (!inc_net_ok) {
        net_close(&nf);
        return;
    }
    CHECK(inc_net.numel == 21820000 - 3 * 17216); /* conv weights and one bias for each of the 17216 channels */
    static const char *const cases[] = {"rgb", "grey", "rect", "big"};
    for (int k = 0; k < 4; k++) {
        int64_t n;
        float *feat = inc_case(&nf, cases[k], &n);
        if (feat && k < 2) memcpy(k ? inc_feat_grey : inc_feat_rgb, feat, (size_t)(n * 2048) * sizeof(float));
        free(feat);
    }
    net_close(&nf);
}

/* The same images through other paths give bit-identical features. */
static void test_inception_invariances(void) {
    if (!inc_net_ok) return;
    net_fixture nf;
    if (!net_open(&nf, "inception_random")) return;
    float rgb[2 * 3 * 32 * 32], grey[28 * 28], grey3[3 * 28 * 28];
    gantl_st_read_f32(&nf.f, "in.rgb", rgb, 2 * 3 * 32 * 32, 0, NULL);
    gantl_st_read_f32(&nf.f, "in.grey", grey, 28 * 28, 0, NULL);
    for (int c = 0; c < 3; c++) memcpy(grey3 + c * 28 * 28, grey, sizeof grey);
    float *f = (float *)malloc((size_t)(3 * 2048) * sizeof(float));
    size_t one = 2048 * sizeof(float);
    /* rgb[1], rgb[0], rgb[1] in passes of two and one (two threads) or three (one thread);
       test_inception_features had them one (two threads) or two at a time */
    float *three = (float *)malloc(3 * sizeof rgb / 2);
    memcpy(three, rgb + 3 * 32 * 32, sizeof rgb / 2);
    memcpy(three + 3 * 32 * 32, rgb, sizeof rgb);
    inc_net.batch = 4;
    CHECK(gantl_inception_features(&inc_net, three, 3, 3, 32, 32, f) == GANTL_OK);
    CHECK_MSG(memcmp(f, inc_feat_rgb + 2048, one) == 0 && memcmp(f + 2048, inc_feat_rgb, one) == 0 &&
                  memcmp(f + 4096, inc_feat_rgb + 2048, one) == 0,
              "features depend on the batch");
    free(three);
    /* grey vs the same image as RGB */
    CHECK(gantl_inception_features(&inc_net, grey3, 1, 3, 28, 28, f) == GANTL_OK);
    CHECK_MSG(memcmp(f, inc_feat_grey, one) == 0, "grey and replicated RGB differ");
    /* an image resized beforehand is taken as it is */
    float *big = (float *)malloc((size_t)(299 * 299) * sizeof(float));
    gantl__lerp t[2 * 299];
    gantl__lerp_table(28, 299, t);
    gantl__lerp_table(28, 299, t + 299);
    gantl__resize_plane(grey, 28, big, 299, 299, t, t + 299);
    CHECK(gantl_inception_features(&inc_net, big, 1, 1, 299, 299, f) == GANTL_OK);
    CHECK_MSG(memcmp(f, inc_feat_grey, one) == 0, "a 299 x 299 input differs from the resized one");
    /* n = 0 and bad channel counts */
    CHECK(gantl_inception_features(&inc_net, NULL, 0, 3, 32, 32, NULL) == GANTL_OK);
    CHECK(gantl_inception_features(&inc_net, rgb, 1, 4, 32, 32, f) == GANTL_ERR_INVALID);
    CHECK(strstr(gantl_last_error(), "4 channels") != NULL);
    CHECK(gantl_inception_features(&inc_net, rgb, 1, 3, 0, 32, f) == GANTL_ERR_INVALID);
    free(big);
    free(f);
    net_close(&nf);
}

/* Loading a file with the given tensors (NULL-terminated names; shapes of Conv2d_1a_3x3's
   layers unless the name says otherwise) must fail with status and a message containing
   expect. */
static void inc_expect_load_error(const char *const *names, const int64_t *weight_shape, float var,
                                  gantl_status status, const char *expect) {
    const char *path = "build/test_inception_bad.safetensors";
    gantl_st_writer w;
    gantl_st_writer_init(&w);
    float buf[32 * 3 * 3 * 3];
    for (int i = 0; i < 32 * 27; i++) buf[i] = 0.5f;
    for (int i = 0; names[i]; i++) {
        int64_t n32 = 32;
        int is_weight = strstr(names[i], "conv.weight") != NULL;
        if (strstr(names[i], "running_var")) {
            float v[32];
            for (int c = 0; c < 32; c++) v[c] = c == 5 ? var : 1.0f;
            gantl_st_writer_add(&w, names[i], GANTL_F32, 1, &n32, v);
        } else
            gantl_st_writer_add(&w, names[i], GANTL_F32, is_weight ? 4 : 1, is_weight ? weight_shape : &n32, buf);
    }
    CHECK(gantl_st_writer_save(&w, path) == GANTL_OK);
    gantl_st_writer_free(&w);
    gantl_inception net;
    gantl_status s = gantl_inception_load(&net, path);
    CHECK_MSG(s == status && strstr(gantl_last_error(), expect) != NULL, "got %s: %s; expected %s: ...%s...",
              gantl_status_name(s), gantl_last_error(), gantl_status_name(status), expect);
    CHECK(net.params == NULL && net.ws_ == NULL);
    if (s == GANTL_OK) gantl_inception_free(&net);
    remove(path);
}

static void test_inception_errors(void) {
    gantl_inception net;
    CHECK(gantl_inception_load(&net, "build/no/such/inception.safetensors") == GANTL_ERR_IO);
    CHECK(strstr(gantl_last_error(), "build/no/such/inception.safetensors") != NULL);
    CHECK(net.params == NULL);
    int64_t good[4] = {32, 3, 3, 3}, bad[4] = {32, 3, 3, 2};
    const char *w_only[] = {"Conv2d_1a_3x3.conv.weight", NULL};
    const char *layer[] = {"Conv2d_1a_3x3.conv.weight", "Conv2d_1a_3x3.bn.weight", "Conv2d_1a_3x3.bn.bias",
                           "Conv2d_1a_3x3.bn.running_mean", "Conv2d_1a_3x3.bn.running_var", NULL};
    const char *foreign[] = {"Conv2d_1a_3x3.conv.weight", "Mixed_5b.branch1x1.conv.bias", NULL};
    const char *aux[] = {"Conv2d_1a_3x3.conv.weight", "AuxLogits.conv0.conv.weight", NULL};
    const char *none[] = {NULL};
    inc_expect_load_error(none, good, 1, GANTL_ERR_INVALID, "tensor 'Conv2d_1a_3x3.conv.weight' is missing");
    inc_expect_load_error(w_only, bad, 1, GANTL_ERR_INVALID,
                          "tensor 'Conv2d_1a_3x3.conv.weight' has shape (32, 3, 3, 2), expected (32, 3, 3, 3)");
    inc_expect_load_error(w_only, good, 1, GANTL_ERR_INVALID, "tensor 'Conv2d_1a_3x3.bn.weight' is missing");
    inc_expect_load_error(foreign, good, 1, GANTL_ERR_INVALID, "unexpected tensor 'Mixed_5b.branch1x1.conv.bias'");
    inc_expect_load_error(aux, good, 1, GANTL_ERR_INVALID, "torchvision's ImageNet Inception-v3");
    inc_expect_load_error(layer, good, -1.0f, GANTL_ERR_INVALID, "Conv2d_1a_3x3.bn channel 5 has running_var -1");
    /* a complete first layer: the next one is reported missing */
    inc_expect_load_error(layer, good, 1, GANTL_ERR_INVALID, "tensor 'Conv2d_2a_3x3.conv.weight' is missing");
}

static void run_inception_tests(void) {
    RUN(test_inception_layers_match_reference);
    RUN(test_inception_resize);
    RUN(test_inception_errors);
    RUN(test_inception_features);
    RUN(test_inception_invariances);
    if (inc_net_ok) gantl_inception_free(&inc_net);
    inc_net_ok = 0;
}
