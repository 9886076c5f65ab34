/* File tests: safetensors round trip, clear errors on bad files, a mutation fuzz of the
   parser, atomic writes. */

static const char *io_tmp_path = "build/test_io.safetensors";

static void test_safetensors_round_trip(void) {
    gantl_st_writer w;
    gantl_st_writer_init(&w);
    float a[6] = {1, -2, 3.5f, 4, 5, 6e-8f};
    unsigned char u[3] = {0, 127, 255};
    double d[2] = {0.125, -1e10};
    int64_t sa[2] = {2, 3}, su[1] = {3}, sd[1] = {2};
    CHECK(gantl_st_writer_add(&w, "G.mapping.fc0.weight", GANTL_F32, 2, sa, a) == GANTL_OK);
    CHECK(gantl_st_writer_add(&w, "images", GANTL_U8, 1, su, u) == GANTL_OK);
    CHECK(gantl_st_writer_add(&w, "d", GANTL_F64, 1, sd, d) == GANTL_OK);
    CHECK(gantl_st_writer_add(&w, "scalar", GANTL_F32, 0, NULL, a) == GANTL_OK);
    CHECK(gantl_st_writer_add(&w, "d", GANTL_F32, 1, sd, a) == GANTL_ERR_INVALID); /* duplicate */
    gantl_st_writer_free(&w);

    gantl_st_writer_init(&w);
    gantl_st_writer_add(&w, "G.mapping.fc0.weight", GANTL_F32, 2, sa, a);
    gantl_st_writer_add(&w, "images", GANTL_U8, 1, su, u);
    gantl_st_writer_add(&w, "d", GANTL_F64, 1, sd, d);
    gantl_st_writer_add(&w, "scalar", GANTL_F32, 0, NULL, a);
    gantl_st_writer_meta(&w, "gantl.G", "{\"z_dim\": 512, \"name\": \"quote\\\" and \\\\ and \\n\"}");
    CHECK(gantl_st_writer_save(&w, io_tmp_path) == GANTL_OK);
    gantl_st_writer_free(&w);

    gantl_st_file f;
    CHECK(gantl_st_load(&f, io_tmp_path) == GANTL_OK);
    CHECK(f.count == 4);
    CHECK(!strcmp(gantl_st_meta(&f, "gantl.G"), "{\"z_dim\": 512, \"name\": \"quote\\\" and \\\\ and \\n\"}"));
    float back[6];
    CHECK(gantl_st_read_f32(&f, "G.mapping.fc0.weight", back, 6, 2, sa) == GANTL_OK);
    CHECK(memcmp(back, a, sizeof a) == 0);
    CHECK(gantl_st_read_f32(&f, "images", back, 3, 1, su) == GANTL_OK);
    CHECK(back[0] == 0 && back[1] == 127 && back[2] == 255);
    CHECK(gantl_st_read_f32(&f, "d", back, 2, 0, NULL) == GANTL_OK);
    CHECK(back[0] == 0.125f && back[1] == -1e10f);
    const gantl_st_tensor *s = gantl_st_find(&f, "scalar");
    CHECK(s && s->ndim == 0 && s->numel == 1);
    /* a wrong shape or a missing tensor is a clear error */
    int64_t wrong[2] = {3, 2};
    CHECK(gantl_st_read_f32(&f, "G.mapping.fc0.weight", back, 6, 2, wrong) == GANTL_ERR_INVALID);
    CHECK_MSG(strstr(gantl_last_error(), "has shape (2, 3), expected (3, 2)") != NULL, "%s", gantl_last_error());
    CHECK(gantl_st_read_f32(&f, "nope", back, 1, 0, NULL) == GANTL_ERR_INVALID);
    CHECK(strstr(gantl_last_error(), "'nope' is missing") != NULL);
    gantl_st_free(&f);
}

static void test_safetensors_reads_python_files_and_halves(void) {
    /* The fixture was written by tools/safetensors_io.py (Python's json spacing). */
    gantl_st_file f;
    CHECK(gantl_st_load(&f, "tests/fixtures/core.safetensors") == GANTL_OK);
    CHECK(f.count > 100 && gantl_st_meta(&f, "generator") != NULL);
    gantl_st_free(&f);
    /* F16 and BF16 conversion, hand-made header */
    const char *header = "{\"h\":{\"dtype\":\"F16\",\"shape\":[4],\"data_offsets\":[0,8]},"
                         "\"b\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[8,12]}}";
    size_t hl = strlen(header);
    unsigned char buf[256];
    memset(buf, 0, sizeof buf);
    for (int i = 0; i < 8; i++) buf[i] = (unsigned char)(hl >> (8 * i));
    memcpy(buf + 8, header, hl);
    uint16_t halves[6] = {0x3C00, 0xC000, 0x0001, 0x7C00, 0x3F80, 0xC0A0}; /* 1, -2, 2^-24, inf | 1, -5 */
    for (int i = 0; i < 6; i++) buf[8 + hl + 2 * i] = (unsigned char)halves[i], buf[8 + hl + 2 * i + 1] = (unsigned char)(halves[i] >> 8);
    CHECK(gantl_st_parse(&f, buf, 8 + hl + 12) == GANTL_OK);
    float v[4];
    CHECK(gantl_st_read_f32(&f, "h", v, 4, 0, NULL) == GANTL_OK);
    CHECK(v[0] == 1.0f && v[1] == -2.0f && v[2] == ldexpf(1.0f, -24) && isinf(v[3]));
    CHECK(gantl_st_read_f32(&f, "b", v, 2, 0, NULL) == GANTL_OK);
    CHECK(v[0] == 1.0f && v[1] == -5.0f);
    gantl_st_free(&f);
}

/* Builds a file image from a header string and n data bytes. */
static size_t io_image(unsigned char *buf, const char *header, size_t data_bytes) {
    size_t hl = strlen(header);
    for (int i = 0; i < 8; i++) buf[i] = (unsigned char)(hl >> (8 * i));
    memcpy(buf + 8, header, hl);
    memset(buf + 8 + hl, 0x3f, data_bytes);
    return 8 + hl + data_bytes;
}

static void test_safetensors_bad_files_are_errors(void) {
    struct {
        const char *header;
        size_t data;
        const char *message;
    } cases[] = {
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 4, "outside the data section"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, "do not match dtype and shape"},
        {"{\"a\":{\"dtype\":\"F99\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "unknown dtype"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", 8, "lacks dtype, shape or data_offsets"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}", 16, "duplicate tensor name"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, "overlap"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8, "non-negative integer"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}", 8, "expected ',' or '}'"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}} x", 8, "trailing characters"},
        {"[1,2]", 0, "not a JSON object"},
        {"{\"__metadata__\":{\"k\":1}}", 0, "expected a string"},
        {"{\"a\\u0000b\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]}}", 4, "NUL character"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[99999999999,99999999999],\"data_offsets\":[0,8]}}", 8, "shape too large"},
    };
    unsigned char buf[512];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t n = io_image(buf, cases[i].header, cases[i].data);
        gantl_st_file f;
        gantl_status s = gantl_st_parse(&f, buf, n);
        CHECK_MSG(s == GANTL_ERR_FORMAT, "case %zu: status %d", i, (int)s);
        CHECK_MSG(strstr(gantl_last_error(), cases[i].message) != NULL, "case %zu: message '%s'", i, gantl_last_error());
        if (s == GANTL_OK) gantl_st_free(&f);
    }
    /* truncated: header length beyond the file, and a file shorter than 8 bytes */
    gantl_st_file f;
    size_t n = io_image(buf, "{}", 0);
    CHECK(gantl_st_parse(&f, buf, n - 1) == GANTL_ERR_FORMAT && strstr(gantl_last_error(), "truncated"));
    CHECK(gantl_st_parse(&f, buf, 5) == GANTL_ERR_FORMAT);
    CHECK(gantl_st_parse(&f, buf, n) == GANTL_OK && f.count == 0);
    gantl_st_free(&f);
    CHECK(gantl_st_load(&f, "build/does/not/exist.safetensors") == GANTL_ERR_IO);
    CHECK(strstr(gantl_last_error(), "cannot open 'build/does/not/exist.safetensors'") != NULL);
}

/* Mutation fuzz: flip, insert, delete and truncate bytes of a valid image; the parser must
   return OK or a format error, never crash or read out of bounds (run under ASan). */
static void test_safetensors_fuzz(void) {
    gantl_st_writer w;
    gantl_st_writer_init(&w);
    float a[12] = {0};
    int64_t s1[2] = {3, 4}, s2[1] = {5};
    gantl_st_writer_add(&w, "G.synthesis.b4.conv1.weight", GANTL_F32, 2, s1, a);
    gantl_st_writer_add(&w, "D.b4.out.bias", GANTL_U8, 1, s2, a);
    gantl_st_writer_meta(&w, "gantl.D", "{\"c\\u00e9\": [1, 2.5e3, true, null, {\"x\": \"\\ud83d\\ude00\"}]}");
    CHECK(gantl_st_writer_save(&w, io_tmp_path) == GANTL_OK);
    gantl_st_writer_free(&w);
    unsigned char *image;
    size_t size;
    CHECK(gantl_read_file(io_tmp_path, &image, &size) == GANTL_OK);
    gantl_rng rng = gantl_rng_new(99);
    unsigned char *m = (unsigned char *)malloc(size + 64);
    int ok = 0, bad = 0;
    for (int iter = 0; iter < 20000; iter++) {
        size_t n = size;
        memcpy(m, image, size);
        int edits = 1 + (int)gantl_rng_int(&rng, 4);
        for (int e = 0; e < edits; e++) {
            size_t at = (size_t)gantl_rng_int(&rng, (int64_t)(n > 8 ? n : 1));
            switch (gantl_rng_int(&rng, 5)) {
            case 0: m[at] ^= (unsigned char)(1u << gantl_rng_int(&rng, 8)); break;
            case 1: m[at] = (unsigned char)"{}[]\",:\\u0123456789-eE \x01\xff"[gantl_rng_int(&rng, 25)]; break;
            case 2: if (n < size + 60) { memmove(m + at + 1, m + at, n - at); m[at] = (unsigned char)gantl_rng_u32(&rng); n++; } break;
            case 3: if (n > 1) { memmove(m + at, m + at + 1, n - at - 1); n--; } break;
            default: n = at; break;
            }
        }
        gantl_st_file f;
        gantl_status s = gantl_st_parse(&f, m, n);
        if (s == GANTL_OK) {
            ok++;
            for (int i = 0; i < f.count; i++) { /* every tensor lies inside the image */
                size_t bytes = (size_t)f.tensors[i].numel * gantl_dtype_size(f.tensors[i].dtype);
                CHECK(f.tensors[i].bytes >= f.image && f.tensors[i].bytes + bytes <= f.image + f.size);
            }
            gantl_st_free(&f);
        } else {
            bad++;
            CHECK(s == GANTL_ERR_FORMAT);
        }
    }
    CHECK(ok > 0 && bad > 0);
    free(m);
    free(image);
}

static void test_atomic_write_keeps_the_old_file_on_failure(void) {
    const char *path = "build/test_atomic.bin";
    CHECK(gantl_write_file_atomic(path, "old", 3) == GANTL_OK);
    /* a directory in the way of the temporary file makes the write fail */
    CHECK(gantl_write_file_atomic("build/no-such-dir/x.bin", "new", 3) == GANTL_ERR_IO);
    unsigned char *data;
    size_t size;
    CHECK(gantl_read_file(path, &data, &size) == GANTL_OK && size == 3 && !memcmp(data, "old", 3));
    free(data);
    CHECK(gantl_write_file_atomic(path, "newer", 5) == GANTL_OK);
    CHECK(gantl_read_file(path, &data, &size) == GANTL_OK && size == 5 && !memcmp(data, "newer", 5));
    free(data);
    FILE *tmp = fopen("build/test_atomic.bin.tmp", "rb");
    CHECK(tmp == NULL); /* no temporary left behind */
    if (tmp) fclose(tmp);
    remove(path);
}


static void test_npy_reads_numpy_files(void) {
    gantl_npy a;
    CHECK(gantl_npy_load(&a, "tests/fixtures/array_f32.npy") == GANTL_OK);
    CHECK(a.dtype == GANTL_F32 && a.ndim == 3 && a.shape[0] == 2 && a.shape[1] == 3 && a.shape[2] == 4 && a.numel == 24);
    float v[24];
    gantl_npy_to_f32(&a, v);
    for (int i = 0; i < 24; i++) CHECK(v[i] == (float)i / 8 - 1);
    gantl_npy_free(&a);
    CHECK(gantl_npy_load(&a, "tests/fixtures/array_u8.npy") == GANTL_OK);
    CHECK(a.dtype == GANTL_U8 && a.ndim == 2 && a.shape[0] == 5 && a.shape[1] == 7);
    for (int i = 0; i < 35; i++) CHECK(a.data[i] == (unsigned char)(i * 7 % 256));
    gantl_npy_free(&a);
    CHECK(gantl_npy_load(&a, "tests/fixtures/array_f64_v2.npy") == GANTL_OK);
    CHECK(a.dtype == GANTL_F64 && a.ndim == 1 && a.shape[0] == 3);
    double d[3];
    memcpy(d, a.data, sizeof d);
    CHECK(d[0] == 1.5 && d[1] == -2.25 && d[2] == 1e300);
    gantl_npy_free(&a);
}

static void test_npy_round_trip_and_errors(void) {
    const char *path = "build/test_io.npy";
    float x[6] = {1, 2, 3, 4, 5, 6};
    int64_t shape[2] = {2, 3};
    CHECK(gantl_npy_save(path, GANTL_F32, 2, shape, x) == GANTL_OK);
    gantl_npy a;
    CHECK(gantl_npy_load(&a, path) == GANTL_OK);
    CHECK(a.dtype == GANTL_F32 && a.ndim == 2 && a.shape[1] == 3 && !memcmp(a.data, x, sizeof x));
    gantl_npy_free(&a);
    CHECK(gantl_npy_save(path, GANTL_U8, 0, NULL, "\x07") == GANTL_OK); /* a 0-d array */
    CHECK(gantl_npy_load(&a, path) == GANTL_OK && a.ndim == 0 && a.numel == 1 && a.data[0] == 7);
    gantl_npy_free(&a);
    unsigned char *bytes;
    size_t size;
    CHECK(gantl_read_file("tests/fixtures/array_f32.npy", &bytes, &size) == GANTL_OK);
    CHECK(gantl_npy_parse(&a, bytes, size - 1) == GANTL_ERR_FORMAT && strstr(gantl_last_error(), "truncated"));
    CHECK(gantl_npy_parse(&a, bytes, 20) == GANTL_ERR_FORMAT);
    bytes[1] = 'X';
    CHECK(gantl_npy_parse(&a, bytes, size) == GANTL_ERR_FORMAT && strstr(gantl_last_error(), "magic"));
    bytes[1] = 'N';
    char *descr = strstr((char *)bytes + 10, "<f4"); /* the header text starts at byte 10 */
    CHECK(descr != NULL);
    if (descr) descr[1] = 'c'; /* complex: unsupported */
    CHECK(gantl_npy_parse(&a, bytes, size) == GANTL_ERR_UNSUPPORTED);
    free(bytes);
    /* mutation fuzz: never a crash */
    CHECK(gantl_read_file("tests/fixtures/array_u8.npy", &bytes, &size) == GANTL_OK);
    gantl_rng rng = gantl_rng_new(5);
    unsigned char *m = (unsigned char *)malloc(size);
    for (int iter = 0; iter < 5000; iter++) {
        memcpy(m, bytes, size);
        for (int e = 0; e < 3; e++) m[gantl_rng_int(&rng, (int64_t)size)] = (unsigned char)"0123456789(), '\x00\xff"[gantl_rng_int(&rng, 16)];
        size_t n = (size_t)gantl_rng_int(&rng, (int64_t)size + 1);
        gantl_status s = gantl_npy_parse(&a, m, n);
        if (s == GANTL_OK) {
            CHECK((size_t)a.numel * gantl_dtype_size(a.dtype) <= n);
            gantl_npy_free(&a);
        }
    }
    free(m);
    free(bytes);
    remove(path);
}

static void test_numpy_randn_matches_numpy(void) {
    gantl_st_file f;
    CHECK(gantl_st_load(&f, "tests/fixtures/io.safetensors") == GANTL_OK);
    uint32_t seeds[5] = {0, 1, 42, 85, 4294967295u};
    for (int k = 0; k < 5; k++) {
        char name[32];
        snprintf(name, sizeof name, "randn.%u", seeds[k]);
        const gantl_st_tensor *t = gantl_st_find(&f, name);
        CHECK(t && t->dtype == GANTL_F64 && t->numel == 513);
        if (!t) continue;
        double got[513], want[513];
        memcpy(want, t->bytes, sizeof want);
        gantl_numpy_randn(seeds[k], got, 513);
        int same = 1;
        for (int i = 0; i < 513; i++) same &= got[i] == want[i];
        CHECK_MSG(same, "seed %u: first value %.17g, NumPy %.17g", seeds[k], got[0], want[0]);
    }
    gantl_st_free(&f);
}

static void test_json_parse(void) {
    const char *text = " {\"a\": [1, -2.5e3, true, false, null], \"b\": {\"c\": \"x\\u00e9\\n\"}, \"d\": 0.125} ";
    gantl_json j;
    CHECK(gantl_json_parse(&j, text, strlen(text)) == GANTL_OK);
    const gantl_json *a = gantl_json_get(&j, "a"), *c = gantl_json_get(gantl_json_get(&j, "b"), "c");
    CHECK(a && a->type == GANTL_JSON_ARRAY && a->count == 5);
    if (a && a->count == 5) {
        CHECK(a->items[0].number == 1 && a->items[1].number == -2500);
        CHECK(a->items[2].type == GANTL_JSON_BOOL && a->items[2].boolean && !a->items[3].boolean);
        CHECK(a->items[4].type == GANTL_JSON_NULL);
    }
    CHECK(c && c->type == GANTL_JSON_STRING && !strcmp(c->string, "x\xc3\xa9\n"));
    CHECK(gantl_json_get(&j, "d")->number == 0.125 && gantl_json_get(&j, "e") == NULL);
    gantl_json_free(&j);
    const char *bad[] = {"{", "[1,]", "{\"a\" 1}", "01", "1.", "-", "tru", "[1] x", "\"\\x\"", "{\"a\":1,}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK_MSG(gantl_json_parse(&j, bad[i], strlen(bad[i])) == GANTL_ERR_FORMAT, "accepted: %s", bad[i]);
        CHECK(strstr(gantl_last_error(), "bad JSON") != NULL);
    }
    /* deep nesting is refused, not a stack overflow */
    char deep[400];
    memset(deep, '[', sizeof deep);
    CHECK(gantl_json_parse(&j, deep, sizeof deep) == GANTL_ERR_FORMAT);
    /* mutation fuzz of a kwargs string */
    const char *kw = "{\"z_dim\": 512, \"mapping_kwargs\": {\"num_layers\": 8}, \"synthesis_kwargs\": "
                     "{\"channel_base\": 16384, \"conv_clamp\": null, \"x\": [1.5e-3, \"a\\\"b\"]}}";
    size_t n = strlen(kw);
    char m[256];
    gantl_rng rng = gantl_rng_new(8);
    int ok = 0;
    for (int iter = 0; iter < 20000; iter++) {
        memcpy(m, kw, n);
        for (int e = 0; e < 2; e++) m[gantl_rng_int(&rng, (int64_t)n)] = "{}[]\",:\\u0-e. tfn"[gantl_rng_int(&rng, 18)];
        size_t len = (size_t)gantl_rng_int(&rng, (int64_t)n + 1);
        if (gantl_json_parse(&j, m, len) == GANTL_OK) {
            ok++;
            gantl_json_free(&j);
        }
    }
    CHECK(ok > 0);
}

static void run_io_tests(void) {
    RUN(test_safetensors_round_trip);
    RUN(test_safetensors_reads_python_files_and_halves);
    RUN(test_safetensors_bad_files_are_errors);
    RUN(test_safetensors_fuzz);
    RUN(test_atomic_write_keeps_the_old_file_on_failure);
    RUN(test_npy_reads_numpy_files);
    RUN(test_npy_round_trip_and_errors);
    RUN(test_numpy_randn_matches_numpy);
    RUN(test_json_parse);
    remove(io_tmp_path);
}
