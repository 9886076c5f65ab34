/* Dataset tests: every spec form (image folders, .npy, IDX .gz, fashion-mnist), labels,
   channel conversion, padding, resizing, max_images subsets (the official numpy subset),
   batches and flips, the sampler, error messages, and a mutation fuzz of the gzip / IDX
   reader. Fixtures: tests/fixtures/data, written by tools/gen_data_fixtures.py. */

#define DATA_DIR "tests/fixtures/data/"

/* The fixtures' pixel pattern (tools/gen_data_fixtures.py). */
static int data_pattern(int k, int x, int y, int c) { return (37 * k + 13 * x + 7 * y + 85 * c) % 256; }

static unsigned char data_px(const gantl_dataset *ds, int64_t i, int c, int x, int y) {
    int R = ds->resolution;
    return ds->images[((i * ds->channels + c) * R + y) * R + x];
}

/* Loads spec expecting failure with status and a message containing each of the words. */
static void data_expect_error(const char *spec, const gantl_dataset_options *o, gantl_status status, const char *word1,
                              const char *word2) {
    gantl_dataset ds;
    gantl_status s = gantl_dataset_load(&ds, spec, o);
    CHECK_MSG(s == status, "%s: status %s, expected %s (%s)", spec, gantl_status_name(s), gantl_status_name(status),
              gantl_last_error());
    CHECK_MSG(strstr(gantl_last_error(), word1) != NULL, "%s: message '%s' lacks '%s'", spec, gantl_last_error(), word1);
    CHECK_MSG(!word2 || strstr(gantl_last_error(), word2) != NULL, "%s: message '%s' lacks '%s'", spec, gantl_last_error(),
              word2);
    CHECK(ds.images == NULL && ds.labels == NULL && ds.count == 0);
    gantl_dataset_free(&ds);
}

static gantl_dataset_options data_opts(int resolution, int channels, int64_t max_images, uint64_t seed) {
    gantl_dataset_options o;
    gantl_dataset_options_default(&o);
    o.resolution = resolution, o.channels = channels, o.max_images = max_images, o.seed = seed;
    return o;
}

static void test_data_folder_sorted_with_labels(void) {
    gantl_dataset ds;
    CHECK(gantl_dataset_load(&ds, DATA_DIR "rgb", NULL) == GANTL_OK);
    /* a.png, b.png, sub/c.jpg; notes.txt and .hidden.png are skipped */
    CHECK(ds.count == 3 && ds.channels == 3 && ds.resolution == 16);
    CHECK_MSG(!strcmp(ds.name, DATA_DIR "rgb res=16 ch=3"), "name '%s'", ds.name);
    int exact = 1;
    for (int k = 0; k < 2; k++)
        for (int c = 0; c < 3; c++)
            for (int y = 0; y < 16; y++)
                for (int x = 0; x < 16; x++) exact &= data_px(&ds, k, c, x, y) == data_pattern(k, x, y, c);
    CHECK(exact);
    int near = 1, colour[3] = {200, 100, 50};
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < 16; y++)
            for (int x = 0; x < 16; x++) near &= abs(data_px(&ds, 2, c, x, y) - colour[c]) <= 3;
    CHECK(near); /* the JPEG, lossy */
    /* dataset.json: a 0, b 2, sub/c.jpg 1; the entry for a missing file is ignored */
    CHECK(ds.labels && ds.num_classes == 3);
    if (ds.labels) CHECK(ds.labels[0] == 0 && ds.labels[1] == 2 && ds.labels[2] == 1);
    gantl_dataset_free(&ds);
    CHECK(ds.images == NULL && ds.count == 0);
    /* a trailing slash names the same dataset */
    CHECK(gantl_dataset_load(&ds, DATA_DIR "rgb//", NULL) == GANTL_OK);
    CHECK_MSG(!strcmp(ds.name, DATA_DIR "rgb res=16 ch=3"), "name '%s'", ds.name);
    gantl_dataset_free(&ds);
    /* no dataset.json: unlabelled */
    CHECK(gantl_dataset_load(&ds, DATA_DIR "pad", NULL) == GANTL_OK);
    CHECK(ds.labels == NULL && ds.num_classes == 0 && ds.count == 2);
    gantl_dataset_free(&ds);
}

static void test_data_channel_conversion(void) {
    gantl_dataset ds;
    /* native: the first image is grey, the second RGB */
    data_expect_error(DATA_DIR "mixed", NULL, GANTL_ERR_INVALID, "1_rgb.png' has 3 channels", "0_grey.png' has 1");
    data_expect_error(DATA_DIR "rgba", NULL, GANTL_ERR_INVALID, "x.png' has 4 channels (RGBA)", "channels 1 or 3");
    gantl_dataset_options o = data_opts(0, 3, 0, 0);
    CHECK(gantl_dataset_load(&ds, DATA_DIR "mixed", &o) == GANTL_OK);
    CHECK(ds.count == 4 && ds.channels == 3 && ds.resolution == 16);
    CHECK_MSG(!strcmp(ds.name, DATA_DIR "mixed res=16 ch=3"), "name '%s'", ds.name);
    int ok = 1;
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < 16; y++)
            for (int x = 0; x < 16; x++) {
                ok &= data_px(&ds, 0, c, x, y) == data_pattern(2, x, y, 0); /* grey replicated */
                ok &= data_px(&ds, 1, c, x, y) == data_pattern(3, x, y, c);
                ok &= data_px(&ds, 2, c, x, y) == data_pattern(4, x, y, c); /* alpha dropped */
                ok &= abs(data_px(&ds, 3, c, x, y) - 90) <= 2;              /* grey JPEG */
            }
    CHECK(ok);
    gantl_dataset_free(&ds);
    o.channels = 1;
    CHECK(gantl_dataset_load(&ds, DATA_DIR "mixed", &o) == GANTL_OK);
    CHECK(ds.count == 4 && ds.channels == 1);
    ok = 1;
    for (int y = 0; y < 16; y++)
        for (int x = 0; x < 16; x++) {
            /* PIL's convert('L'): (19595 R + 38470 G + 7471 B + 32768) >> 16 */
            int l3 = (19595 * data_pattern(3, x, y, 0) + 38470 * data_pattern(3, x, y, 1) + 7471 * data_pattern(3, x, y, 2) + 32768) >> 16;
            int l4 = (19595 * data_pattern(4, x, y, 0) + 38470 * data_pattern(4, x, y, 1) + 7471 * data_pattern(4, x, y, 2) + 32768) >> 16;
            ok &= data_px(&ds, 0, 0, x, y) == data_pattern(2, x, y, 0);
            ok &= data_px(&ds, 1, 0, x, y) == l3 && data_px(&ds, 2, 0, x, y) == l4;
        }
    CHECK(ok);
    CHECK(gantl__luma(255, 255, 255) == 255 && gantl__luma(255, 0, 0) == 76 && gantl__luma(0, 255, 0) == 150 &&
          gantl__luma(0, 0, 255) == 29); /* PIL's values */
    gantl_dataset_free(&ds);
}

static void test_data_padding(void) {
    gantl_dataset ds;
    CHECK(gantl_dataset_load(&ds, DATA_DIR "pad", NULL) == GANTL_OK); /* 30x30 -> 32x32, one pixel each side */
    CHECK(ds.count == 2 && ds.resolution == 32 && ds.channels == 3);
    int ok = 1;
    for (int k = 0; k < 2; k++)
        for (int c = 0; c < 3; c++)
            for (int y = 0; y < 32; y++)
                for (int x = 0; x < 32; x++) {
                    int inside = x >= 1 && x < 31 && y >= 1 && y < 31;
                    ok &= data_px(&ds, k, c, x, y) == (inside ? data_pattern(6 + k, x - 1, y - 1, c) : 0);
                }
    CHECK(ok);
    gantl_dataset_free(&ds);
    /* a resolution equal to the padded size pads too */
    gantl_dataset_options o = data_opts(32, 0, 0, 0);
    CHECK(gantl_dataset_load(&ds, DATA_DIR "pad", &o) == GANTL_OK);
    CHECK(ds.resolution == 32 && data_px(&ds, 1, 2, 0, 5) == 0 && data_px(&ds, 1, 2, 5, 7) == data_pattern(7, 4, 6, 2));
    CHECK_MSG(!strcmp(ds.name, DATA_DIR "pad res=32 ch=3"), "name '%s'", ds.name);
    gantl_dataset_free(&ds);
    /* 20x12 -> 32x32, centred: 6 columns left, 10 rows above */
    CHECK(gantl_dataset_load(&ds, DATA_DIR "wide", NULL) == GANTL_OK);
    CHECK(ds.count == 1 && ds.resolution == 32 && ds.channels == 1);
    ok = 1;
    for (int y = 0; y < 32; y++)
        for (int x = 0; x < 32; x++) {
            int inside = x >= 6 && x < 26 && y >= 10 && y < 22;
            ok &= data_px(&ds, 0, 0, x, y) == (inside ? data_pattern(8, x - 6, y - 10, 0) : 0);
        }
    CHECK(ok);
    gantl_dataset_free(&ds);
}

static void test_data_sizes_and_resizing(void) {
    gantl_dataset ds;
    data_expect_error(DATA_DIR "sizes", NULL, GANTL_ERR_INVALID, "sizes/b.png' is 16x16, the first image", "a.png' is 30x30");
    /* resolution 16: a (30x30) is resized, b (16x16) kept */
    gantl_dataset_options o = data_opts(16, 0, 0, 0);
    CHECK(gantl_dataset_load(&ds, DATA_DIR "sizes", &o) == GANTL_OK);
    CHECK(ds.count == 2 && ds.resolution == 16 && ds.channels == 3);
    int ok = 1;
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < 16; y++)
            for (int x = 0; x < 16; x++) ok &= data_px(&ds, 1, c, x, y) == data_pattern(10, x, y, c);
    CHECK(ok);
    CHECK_MSG(!strcmp(ds.name, DATA_DIR "sizes res=16 ch=3"), "name '%s'", ds.name);
    gantl_dataset_free(&ds);
    /* resolution 32: a is padded (its padded size is 32), b is upsampled 2x by the box filter */
    o.resolution = 32;
    CHECK(gantl_dataset_load(&ds, DATA_DIR "sizes", &o) == GANTL_OK);
    CHECK(ds.count == 2 && ds.resolution == 32);
    CHECK(data_px(&ds, 0, 0, 0, 0) == 0 && data_px(&ds, 0, 1, 3, 4) == data_pattern(9, 2, 3, 1));
    ok = 1;
    for (int y = 0; y < 32; y++)
        for (int x = 0; x < 32; x++) ok &= abs(data_px(&ds, 1, 0, x, y) - data_pattern(10, x / 2, y / 2, 0)) <= 1 || (x % 2 != y % 2);
    CHECK(ok);
    gantl_dataset_free(&ds);
    /* 48x32: the centre 32x32 (columns 8..39), halved: box averages of 2x2 blocks */
    o.resolution = 16;
    CHECK(gantl_dataset_load(&ds, DATA_DIR "crop", &o) == GANTL_OK);
    CHECK(ds.count == 1 && ds.resolution == 16 && ds.channels == 3);
    double worst = 0;
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < 16; y++)
            for (int x = 0; x < 16; x++) {
                double mean = 0;
                for (int dy = 0; dy < 2; dy++)
                    for (int dx = 0; dx < 2; dx++) mean += data_pattern(11, 8 + 2 * x + dx, 2 * y + dy, c) / 4.0;
                /* the pattern wraps at 256, where an average is meaningless */
                int wraps = 0;
                for (int d = 0; d < 4; d++) wraps |= data_pattern(11, 8 + 2 * x + d % 2, 2 * y + d / 2, c) < data_pattern(11, 8 + 2 * x, 2 * y, c);
                if (!wraps && fabs(data_px(&ds, 0, c, x, y) - mean) > worst) worst = fabs(data_px(&ds, 0, c, x, y) - mean);
            }
    CHECK_MSG(worst <= 1.0, "box filter differs from the 2x2 mean by %g", worst);
    gantl_dataset_free(&ds);
    /* bad options */
    o.resolution = 24;
    data_expect_error(DATA_DIR "crop", &o, GANTL_ERR_INVALID, "resolution 24 is not a power of two", NULL);
    o = data_opts(0, 2, 0, 0);
    data_expect_error(DATA_DIR "crop", &o, GANTL_ERR_INVALID, "channels 2", NULL);
    o = data_opts(0, 0, -1, 0);
    data_expect_error(DATA_DIR "crop", &o, GANTL_ERR_INVALID, "max_images -1", NULL);
}

static void test_data_npy(void) {
    gantl_dataset ds, ds2;
    CHECK(gantl_dataset_load(&ds, DATA_DIR "npy/nchw_u8.npy", NULL) == GANTL_OK);
    CHECK(ds.count == 3 && ds.channels == 3 && ds.resolution == 8 && ds.num_classes == 3);
    CHECK_MSG(!strcmp(ds.name, DATA_DIR "npy/nchw_u8.npy res=8 ch=3"), "name '%s'", ds.name);
    int ok = 1;
    for (int k = 0; k < 3; k++)
        for (int c = 0; c < 3; c++)
            for (int y = 0; y < 8; y++)
                for (int x = 0; x < 8; x++) ok &= data_px(&ds, k, c, x, y) == data_pattern(20 + k, x, y, c);
    CHECK(ok);
    CHECK(ds.labels && ds.labels[0] == 2 && ds.labels[1] == 0 && ds.labels[2] == 1);
    /* channels last: the same first two images, unlabelled */
    CHECK(gantl_dataset_load(&ds2, DATA_DIR "npy/nhwc_u8.npy", NULL) == GANTL_OK);
    CHECK(ds2.count == 2 && ds2.channels == 3 && ds2.resolution == 8 && !ds2.labels && ds2.num_classes == 0);
    CHECK(ds2.images && memcmp(ds2.images, ds.images, 2 * 3 * 8 * 8) == 0);
    gantl_dataset_free(&ds2);
    gantl_dataset_free(&ds);
    /* (N, H, W): one channel, 6x6 padded to 8x8 */
    CHECK(gantl_dataset_load(&ds, DATA_DIR "npy/nhw_u8.npy", NULL) == GANTL_OK);
    CHECK(ds.count == 2 && ds.channels == 1 && ds.resolution == 8);
    ok = 1;
    for (int k = 0; k < 2; k++)
        for (int y = 0; y < 8; y++)
            for (int x = 0; x < 8; x++)
                ok &= data_px(&ds, k, 0, x, y) == (x >= 1 && x < 7 && y >= 1 && y < 7 ? data_pattern(23 + k, x - 1, y - 1, 0) : 0);
    CHECK(ok);
    gantl_dataset_free(&ds);
    /* float in [-1, 1]: the official rounding, against NumPy's float32 result */
    gantl_npy want;
    CHECK(gantl_dataset_load(&ds, DATA_DIR "npy/f32.npy", NULL) == GANTL_OK);
    CHECK(gantl_npy_load(&want, DATA_DIR "npy/f32_expected.npy") == GANTL_OK);
    CHECK(ds.count == 1 && ds.channels == 1 && ds.resolution == 8 && want.numel == 32);
    ok = 1;
    for (int i = 0; i < 32; i++) ok &= data_px(&ds, 0, 0, i % 8, 2 + i / 8) == want.data[i]; /* 4x8 padded: rows 2..5 */
    CHECK(ok);
    CHECK(data_px(&ds, 0, 0, 0, 2) == 0 && data_px(&ds, 0, 0, 1, 2) == 255 && data_px(&ds, 0, 0, 2, 2) == 128);
    gantl_npy_free(&want);
    gantl_dataset_free(&ds);
    /* conversion to grey works on arrays too */
    gantl_dataset_options o = data_opts(0, 1, 0, 0);
    CHECK(gantl_dataset_load(&ds, DATA_DIR "npy/nchw_u8.npy", &o) == GANTL_OK);
    CHECK(ds.channels == 1 && data_px(&ds, 1, 0, 3, 4) == gantl__luma(data_pattern(21, 3, 4, 0), data_pattern(21, 3, 4, 1),
                                                                      data_pattern(21, 3, 4, 2)));
    gantl_dataset_free(&ds);
    data_expect_error(DATA_DIR "npy/bad_shape.npy", NULL, GANTL_ERR_FORMAT, "bad_shape.npy' has shape (2, 5, 8, 8)",
                      "(N, C, H, W) or (N, H, W, C)");
    data_expect_error(DATA_DIR "npy/badlab.npy", NULL, GANTL_ERR_FORMAT, "badlab.labels.npy': labels must be integers of shape (3,)",
                      NULL);
    data_expect_error(DATA_DIR "npy/nothere.npy", NULL, GANTL_ERR_IO, "nothere.npy", NULL);
    int64_t empty_shape[4] = {0, 3, 8, 8};
    CHECK(gantl_npy_save("build/test_data_empty.npy", GANTL_U8, 4, empty_shape, NULL) == GANTL_OK);
    data_expect_error("build/test_data_empty.npy", NULL, GANTL_ERR_INVALID, "test_data_empty.npy: no images (empty dataset)", NULL);
    int64_t i32_shape[3] = {1, 2, 2};
    int32_t i32[4] = {0, 1, 2, 3};
    CHECK(gantl_npy_save("build/test_data_i32.npy", GANTL_I32, 3, i32_shape, i32) == GANTL_OK);
    data_expect_error("build/test_data_i32.npy", NULL, GANTL_ERR_UNSUPPORTED, "images must be uint8, or float in [-1, 1] (dtype I32)", NULL);
}

static unsigned char *data_read(const char *path, size_t *size) {
    unsigned char *bytes = NULL;
    if (gantl_read_file(path, &bytes, size) != GANTL_OK) return NULL;
    return bytes;
}

static void data_write(const char *path, const unsigned char *bytes, size_t size) {
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (!f) return;
    CHECK(fwrite(bytes, 1, size, f) == size);
    fclose(f);
}

static void test_data_idx_and_gzip(void) {
    gantl_dataset ds;
    unsigned char check[9] = {'1', '2', '3', '4', '5', '6', '7', '8', '9'};
    CHECK(gantl__crc32(0, check, 9) == 0xCBF43926u); /* the CRC-32 check value */
    CHECK(gantl__crc32(gantl__crc32(0, check, 4), check + 4, 5) == 0xCBF43926u);
    /* gzip with FEXTRA, FNAME, FCOMMENT and FHCRC; labels next to it, not gzipped */
    CHECK(gantl_dataset_load(&ds, DATA_DIR "idx/tiny-images-idx3-ubyte.gz", NULL) == GANTL_OK);
    CHECK(ds.count == 5 && ds.channels == 1 && ds.resolution == 32 && ds.num_classes == 6);
    if (ds.labels) CHECK(ds.labels[0] == 3 && ds.labels[1] == 1 && ds.labels[2] == 4 && ds.labels[3] == 1 && ds.labels[4] == 5);
    else CHECK(ds.labels != NULL);
    int ok = 1;
    for (int k = 0; k < 5 && ds.images; k++)
        for (int y = 0; y < 32; y++)
            for (int x = 0; x < 32; x++)
                ok &= data_px(&ds, k, 0, x, y) == (x >= 2 && x < 30 && y >= 2 && y < 30 ? data_pattern(30 + k, x - 2, y - 2, 0) : 0);
    CHECK(ok);
    gantl_dataset_free(&ds);

    /* broken copies, written to build/ */
    size_t size = 0;
    unsigned char *gz = data_read(DATA_DIR "idx/tiny-images-idx3-ubyte.gz", &size);
    CHECK(gz != NULL && size > 100);
    if (!gz) return;
    gz[size - 6] ^= 0x10; /* the CRC-32 in the trailer */
    data_write("build/crc-images-idx3-ubyte.gz", gz, size);
    data_expect_error("build/crc-images-idx3-ubyte.gz", NULL, GANTL_ERR_FORMAT, "crc-images-idx3-ubyte.gz': CRC-32 mismatch", NULL);
    gz[size - 6] ^= 0x10;
    gz[size - 20] ^= 0x01; /* the deflate data: a CRC or stream error */
    data_write("build/flip-images-idx3-ubyte.gz", gz, size);
    data_expect_error("build/flip-images-idx3-ubyte.gz", NULL, GANTL_ERR_FORMAT, "flip-images-idx3-ubyte.gz'", NULL);
    gz[size - 20] ^= 0x01;
    gz[20] ^= 0x01; /* inside the FEXTRA field: the header CRC catches it */
    data_write("build/hcrc-images-idx3-ubyte.gz", gz, size);
    data_expect_error("build/hcrc-images-idx3-ubyte.gz", NULL, GANTL_ERR_FORMAT, "gzip header CRC mismatch", NULL);
    gz[20] ^= 0x01;
    data_write("build/trunc-images-idx3-ubyte.gz", gz, size / 2);
    data_expect_error("build/trunc-images-idx3-ubyte.gz", NULL, GANTL_ERR_FORMAT, "trunc-images-idx3-ubyte.gz'", NULL);
    gz[2] = 7;
    data_write("build/method-images-idx3-ubyte.gz", gz, size);
    data_expect_error("build/method-images-idx3-ubyte.gz", NULL, GANTL_ERR_FORMAT, "compression method 7", NULL);
    /* uncompressed IDX: magic numbers and sizes */
    unsigned char *raw = NULL;
    size_t raw_size = 0;
    gz[2] = 8;
    CHECK(gantl__gunzip(gz, size, &raw, &raw_size, "mem") == GANTL_OK && raw_size == 16 + 5 * 28 * 28);
    GANTL_FREE(gz);
    if (!raw) return;
    raw[3] = 4; /* 0x804 */
    data_write("build/magic-images-idx3-ubyte", raw, raw_size);
    data_expect_error("build/magic-images-idx3-ubyte", NULL, GANTL_ERR_FORMAT, "IDX magic number 0x804, expected 0x803", NULL);
    raw[3] = 3;
    data_write("build/short-images-idx3-ubyte", raw, raw_size - 1);
    data_expect_error("build/short-images-idx3-ubyte", NULL, GANTL_ERR_FORMAT, "short-images-idx3-ubyte': truncated", NULL);
    data_write("build/short-images-idx3-ubyte", raw, 10);
    data_expect_error("build/short-images-idx3-ubyte", NULL, GANTL_ERR_FORMAT, "too short for an IDX file", NULL);
    data_write("build/long-images-idx3-ubyte", raw, raw_size);
    CHECK(gantl_dataset_load(&ds, "build/long-images-idx3-ubyte", NULL) == GANTL_OK && ds.count == 5 && !ds.labels);
    gantl_dataset_free(&ds);
    /* labels that do not match the images */
    unsigned char labels[8 + 4] = {0, 0, 8, 1, 0, 0, 0, 4, 1, 2, 3, 4};
    data_write("build/long-labels-idx1-ubyte", labels, sizeof labels);
    data_expect_error("build/long-images-idx3-ubyte", NULL, GANTL_ERR_FORMAT, "long-labels-idx1-ubyte' has 4 labels", "5 images");
    labels[3] = 3;
    data_write("build/long-labels-idx1-ubyte", labels, sizeof labels);
    data_expect_error("build/long-images-idx3-ubyte", NULL, GANTL_ERR_FORMAT, "long-labels-idx1-ubyte': IDX magic number 0x803, expected 0x801", NULL);
    remove("build/long-labels-idx1-ubyte");
    GANTL_FREE(raw);
}

/* Random byte flips, truncations and insertions of a valid .gz never crash the reader
   (run under make asan). */
static void test_data_gzip_fuzz(void) {
    size_t size = 0;
    unsigned char *gz = data_read(DATA_DIR "idx/tiny-images-idx3-ubyte.gz", &size);
    CHECK(gz != NULL);
    if (!gz) return;
    unsigned char *m = (unsigned char *)malloc(size + 16);
    gantl_rng rng = gantl_rng_new(1952);
    int accepted = 0, rejected = 0;
    for (int trial = 0; trial < 3000; trial++) {
        size_t n = size;
        memcpy(m, gz, size);
        int kind = (int)gantl_rng_int(&rng, 4);
        if (kind == 0) n = (size_t)gantl_rng_int(&rng, (int64_t)size); /* truncate */
        int flips = kind == 1 ? 1 : (int)gantl_rng_int(&rng, 6);
        for (int f = 0; f < flips && n; f++) {
            /* mostly in the header and the trailer, where the parsing is */
            size_t at = gantl_rng_int(&rng, 2) ? (size_t)gantl_rng_int(&rng, (int64_t)(n < 64 ? n : 64))
                                               : (size_t)gantl_rng_int(&rng, (int64_t)n);
            m[at] ^= (unsigned char)(1u << gantl_rng_int(&rng, 8));
        }
        if (kind == 3 && n < size + 16) { /* insert a byte */
            size_t at = (size_t)gantl_rng_int(&rng, (int64_t)n + 1);
            memmove(m + at + 1, m + at, n - at);
            m[at] = (unsigned char)gantl_rng_u32(&rng);
            n++;
        }
        unsigned char *raw = NULL;
        size_t raw_size = 0;
        if (gantl__gunzip(m, n, &raw, &raw_size, "fuzz") == GANTL_OK) {
            int64_t dims[3];
            gantl__idx_parse(raw, raw_size, 3, dims, "fuzz");
            accepted++;
        } else {
            CHECK(raw == NULL && strstr(gantl_last_error(), "'fuzz'") != NULL);
            rejected++;
        }
        GANTL_FREE(raw);
    }
    CHECK(rejected > 2000 && accepted > 0); /* accepted: mostly trials that changed nothing (the header has FHCRC) */
    free(m);
    GANTL_FREE(gz);
}

static void test_data_subset(void) {
    gantl_dataset ds, ds2;
    /* many_u8.npy: image i is all i. The official subset (np.random.RandomState(seed).shuffle,
       first N, sorted), from tools/gen_data_fixtures.py's output. */
    static const int want7[7] = {0, 10, 13, 18, 30, 40, 46}, want10[10] = {2, 4, 10, 11, 22, 27, 28, 31, 38, 41};
    gantl_dataset_options o = data_opts(0, 0, 7, 123);
    CHECK(gantl_dataset_load(&ds, DATA_DIR "npy/many_u8.npy", &o) == GANTL_OK);
    CHECK(ds.count == 7 && ds.resolution == 4);
    for (int i = 0; i < 7 && ds.images; i++) CHECK_MSG(ds.images[i * 16 + 5] == want7[i], "subset %d: %d", i, ds.images[i * 16 + 5]);
    CHECK_MSG(!strcmp(ds.name, DATA_DIR "npy/many_u8.npy res=4 ch=1 max=7 seed=123"), "name '%s'", ds.name);
    /* the same seed gives the same subset */
    CHECK(gantl_dataset_load(&ds2, DATA_DIR "npy/many_u8.npy", &o) == GANTL_OK);
    CHECK(ds2.count == 7 && ds2.images && ds.images && memcmp(ds.images, ds2.images, 7 * 16) == 0);
    gantl_dataset_free(&ds2);
    gantl_dataset_free(&ds);
    o.max_images = 10, o.seed = 0;
    CHECK(gantl_dataset_load(&ds, DATA_DIR "npy/many_u8.npy", &o) == GANTL_OK);
    CHECK(ds.count == 10);
    for (int i = 0; i < 10 && ds.images; i++) CHECK(ds.images[i * 16] == want10[i]);
    gantl_dataset_free(&ds);
    /* a subset of distinct images, for several seeds */
    for (uint64_t seed = 1; seed < 6; seed++) {
        o.max_images = 20, o.seed = seed;
        CHECK(gantl_dataset_load(&ds, DATA_DIR "npy/many_u8.npy", &o) == GANTL_OK);
        int increasing = ds.count == 20;
        for (int i = 1; i < 20 && increasing; i++) increasing = ds.images[i * 16] > ds.images[(i - 1) * 16];
        CHECK(increasing);
        gantl_dataset_free(&ds);
    }
    /* max_images >= count keeps all, and the name says nothing of it */
    o.max_images = 50;
    CHECK(gantl_dataset_load(&ds, DATA_DIR "npy/many_u8.npy", &o) == GANTL_OK);
    CHECK(ds.count == 50 && !strcmp(ds.name, DATA_DIR "npy/many_u8.npy res=4 ch=1"));
    gantl_dataset_free(&ds);
    /* labels follow their images */
    o = data_opts(0, 0, 3, 7);
    CHECK(gantl_dataset_load(&ds, DATA_DIR "idx/tiny-images-idx3-ubyte.gz", &o) == GANTL_OK);
    CHECK(ds.count == 3 && ds.labels && ds.num_classes == 6); /* images 0, 2, 3; classes from all images */
    if (ds.labels && ds.count == 3) CHECK(ds.labels[0] == 3 && ds.labels[1] == 4 && ds.labels[2] == 1);
    if (ds.images) CHECK(data_px(&ds, 1, 0, 2, 2) == data_pattern(32, 0, 0, 0));
    gantl_dataset_free(&ds);
    /* a folder: only the chosen files are decoded */
    o = data_opts(0, 0, 2, 5);
    CHECK(gantl_dataset_load(&ds, DATA_DIR "rgb", &o) == GANTL_OK);
    CHECK(ds.count == 2 && ds.num_classes == 3);
    gantl_dataset_free(&ds);
    o = data_opts(0, 0, 2, (uint64_t)1 << 32);
    data_expect_error(DATA_DIR "rgb", &o, GANTL_ERR_INVALID, "seed below 2^32", NULL);
}

static void test_data_fashion_mnist(void) {
    gantl_dataset all, ds;
    if (gantl_dataset_load(&all, "fashion-mnist", NULL) != GANTL_OK) {
        CHECK_MSG(0, "fashion-mnist: %s", gantl_last_error());
        return;
    }
    CHECK(all.count == 60000 && all.channels == 1 && all.resolution == 32 && all.num_classes == 10);
    CHECK_MSG(!strcmp(all.name, "fashion-mnist@train res=32 ch=1"), "name '%s'", all.name);
    int64_t per_class[10] = {0};
    for (int64_t i = 0; i < all.count; i++) per_class[all.labels[i]]++;
    for (int c = 0; c < 10; c++) CHECK(per_class[c] == 6000);
    int64_t border = 0, inside = 0;
    for (int64_t i = 0; i < all.count; i++)
        for (int y = 0; y < 32; y++)
            for (int x = 0; x < 32; x++) {
                int v = data_px(&all, i, 0, x, y);
                if (x < 2 || x >= 30 || y < 2 || y >= 30) border += v;
                else inside += v;
            }
    CHECK(border == 0 && inside > 0); /* 28x28 padded by 2 pixels of background */
    /* against Python's gzip + NumPy: the first labels, pixel sums of the first and last
       images, and a few pixels of row 14 of the first */
    static const int first_labels[10] = {9, 0, 0, 3, 0, 2, 7, 2, 5, 5}, row14[6] = {0, 0, 237, 226, 217, 223};
    int64_t sum0 = 0, sum_last = 0;
    for (int i = 0; i < 1024; i++) sum0 += all.images[i], sum_last += all.images[59999 * 1024 + i];
    for (int i = 0; i < 10; i++) CHECK(all.labels[i] == first_labels[i]);
    for (int x = 0; x < 6; x++) CHECK(data_px(&all, 0, 0, 2 + 10 + x, 2 + 14) == row14[x]);
    CHECK(sum0 == 76247 && sum_last == 16684);

    /* bag, sandal: 12000 images, labels 0 (bag) and 1 (sandal) in the order given */
    CHECK(gantl_dataset_load(&ds, "fashion-mnist:bag,sandal", NULL) == GANTL_OK);
    CHECK(ds.count == 12000 && ds.num_classes == 2 && ds.resolution == 32);
    CHECK_MSG(!strcmp(ds.name, "fashion-mnist:bag,sandal@train res=32 ch=1"), "name '%s'", ds.name);
    int64_t j = 0, same = 1;
    for (int64_t i = 0; i < all.count && ds.images; i++) {
        int c = all.labels[i];
        if (c != 8 && c != 5) continue;
        same &= j < ds.count && ds.labels[j] == (c == 8 ? 0 : 1) && !memcmp(ds.images + j * 1024, all.images + i * 1024, 1024);
        j++;
    }
    CHECK(same && j == 12000);
    gantl_dataset_free(&ds);
    gantl_dataset_free(&all);

    /* the test split, names in any case and indices, a subset, resizing */
    gantl_dataset_options o = data_opts(0, 0, 100, 1);
    CHECK(gantl_dataset_load(&ds, "fashion-mnist:Bag,5@test", &o) == GANTL_OK);
    CHECK(ds.count == 100 && ds.num_classes == 2);
    CHECK_MSG(!strcmp(ds.name, "fashion-mnist:bag,sandal@test res=32 ch=1 max=100 seed=1"), "name '%s'", ds.name);
    gantl_dataset_free(&ds);
    o = data_opts(16, 3, 10, 0);
    CHECK(gantl_dataset_load(&ds, "fashion-mnist:0,1,2,3,4,5,6,7,8,9@test", &o) == GANTL_OK);
    CHECK(ds.count == 10 && ds.resolution == 16 && ds.channels == 3 && ds.num_classes == 10);
    CHECK_MSG(!strcmp(ds.name, "fashion-mnist@test res=16 ch=3 max=10 seed=0"), "name '%s'", ds.name);
    if (ds.images) CHECK(!memcmp(ds.images, ds.images + 256, 256)); /* grey replicated to RGB */
    gantl_dataset_free(&ds);

    data_expect_error("fashion-mnist:bag,hat", NULL, GANTL_ERR_INVALID, "unknown class 'hat'", "ankle-boot");
    data_expect_error("fashion-mnist:bag,8", NULL, GANTL_ERR_INVALID, "class 'bag' is given twice", NULL);
    data_expect_error("fashion-mnist:", NULL, GANTL_ERR_INVALID, "empty class name", NULL);
    data_expect_error("fashion-mnist@val", NULL, GANTL_ERR_INVALID, "@train or @test", NULL);
    data_expect_error("fashion-mnist:T-Shirt,TOP", NULL, GANTL_ERR_INVALID, "'tshirt' is given twice", NULL);
}

static void test_data_errors(void) {
    data_expect_error(DATA_DIR "no-such-folder", NULL, GANTL_ERR_IO, "cannot find the folder", "no-such-folder");
    data_expect_error(DATA_DIR "empty", NULL, GANTL_ERR_INVALID, "empty' has no images", "empty dataset");
    data_expect_error(DATA_DIR "corrupt", NULL, GANTL_ERR_FORMAT, "corrupt/bad.png': cannot decode the image", "stb_image");
    data_expect_error(DATA_DIR "nolabel", NULL, GANTL_ERR_FORMAT, "nolabel/dataset.json' has no label for 'b.png'", NULL);
    data_expect_error(DATA_DIR "tiff", NULL, GANTL_ERR_UNSUPPORTED, "tiff/x.tif'", "TIFF");
    data_expect_error(DATA_DIR "rgb/notes.txt", NULL, GANTL_ERR_INVALID, "bad dataset spec", "fashion-mnist");
    data_expect_error("", NULL, GANTL_ERR_INVALID, "empty spec", NULL);
    /* bad dataset.json files beside a good image */
    size_t size = 0;
    unsigned char *png = data_read(DATA_DIR "rgb/a.png", &size);
    CHECK(png != NULL);
    if (!png) return;
    mkdir("build/test_data_json", 0755);
    data_write("build/test_data_json/a.png", png, size);
    static const struct { const char *json, *word1, *word2; gantl_status status; } cases[] = {
        {"{\"labels\": [[\"a.png\", 0.5]]}", "the label of 'a.png' is not a class index", NULL, GANTL_ERR_UNSUPPORTED},
        {"{\"labels\": [[\"a.png\", [0, 1]]]}", "only integer labels", NULL, GANTL_ERR_UNSUPPORTED},
        {"{\"labels\": [\"a.png\"]}", "label 0 is not a [\"file name\", class] pair", NULL, GANTL_ERR_FORMAT},
        {"{\"labels\": {\"a.png\": 1}}", "must be a list", NULL, GANTL_ERR_FORMAT},
        {"{\"labels\": [[\"a.png\", 1]", "test_data_json/dataset.json: bad JSON", NULL, GANTL_ERR_FORMAT},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        data_write("build/test_data_json/dataset.json", (const unsigned char *)cases[i].json, strlen(cases[i].json));
        data_expect_error("build/test_data_json", NULL, cases[i].status, cases[i].word1, cases[i].word2);
    }
    /* among many images (decoded on all threads) the first bad one is reported */
    mkdir("build/test_data_many", 0755);
    for (int i = 0; i < 40; i++) {
        char path[64];
        snprintf(path, sizeof path, "build/test_data_many/img%02d.png", i);
        data_write(path, png, i == 25 || i == 33 ? size / 2 : size);
    }
    data_expect_error("build/test_data_many", NULL, GANTL_ERR_FORMAT, "img25.png': cannot decode", NULL);
    data_write("build/test_data_many/img25.png", png, size);
    data_write("build/test_data_many/img33.png", png, size);
    gantl_dataset many;
    CHECK(gantl_dataset_load(&many, "build/test_data_many", NULL) == GANTL_OK && many.count == 40);
    CHECK(many.images && !memcmp(many.images, many.images + 39 * 768, 768));
    gantl_dataset_free(&many);
    GANTL_FREE(png);
    /* "labels": null is unlabelled */
    const char *null_labels = "{\"labels\": null}";
    data_write("build/test_data_json/dataset.json", (const unsigned char *)null_labels, strlen(null_labels));
    gantl_dataset ds;
    CHECK(gantl_dataset_load(&ds, "build/test_data_json", NULL) == GANTL_OK && ds.count == 1 && !ds.labels && !ds.num_classes);
    gantl_dataset_free(&ds);
}

static void test_data_batch(void) {
    gantl_dataset ds;
    CHECK(gantl_dataset_load(&ds, DATA_DIR "npy/nchw_u8.npy", NULL) == GANTL_OK);
    if (!ds.images) return;
    int64_t idx[3] = {2, 0, 2};
    unsigned char flip[3] = {1, 0, 0};
    float out[3 * 3 * 64], onehot[3 * 3];
    gantl_dataset_batch(&ds, idx, flip, 3, out, onehot);
    int ok = 1;
    for (int b = 0; b < 3; b++)
        for (int c = 0; c < 3; c++)
            for (int y = 0; y < 8; y++)
                for (int x = 0; x < 8; x++) {
                    int sx = flip[b] ? 7 - x : x;
                    float want = (float)data_pattern(20 + (int)idx[b], sx, y, c) / 127.5f - 1.0f;
                    ok &= out[((b * 3 + c) * 8 + y) * 8 + x] == want;
                }
    CHECK(ok);
    /* labels [2, 0, 1] */
    static const float want_onehot[9] = {0, 1, 0, 0, 0, 1, 0, 1, 0};
    CHECK(memcmp(onehot, want_onehot, sizeof onehot) == 0);
    float out2[3 * 3 * 64];
    gantl_dataset_batch(&ds, idx + 1, NULL, 2, out2, NULL); /* no flips, no labels */
    CHECK(memcmp(out2, out + 192, 2 * 192 * sizeof(float)) == 0);
    gantl_dataset_free(&ds);
    CHECK(gantl_dataset_load(&ds, DATA_DIR "npy/many_u8.npy", NULL) == GANTL_OK);
    int64_t one = 49;
    gantl_dataset_batch(&ds, &one, NULL, 1, out, onehot); /* unlabelled: onehot untouched */
    CHECK(out[0] == 49.0f / 127.5f - 1.0f && out[15] == out[0] && onehot[0] == 0.0f);
    gantl_dataset_free(&ds);
}

static void test_data_sampler(void) {
    gantl_sampler s, t;
    int64_t idx[64], idx2[64];
    unsigned char flip[64];
    CHECK(gantl_sampler_init(&s, 7, 0, 42) == GANTL_OK);
    /* each epoch is a permutation, and epochs differ */
    gantl_sampler_next(&s, 21, idx, flip);
    int perms = 1, differ = 0;
    for (int e = 0; e < 3; e++) {
        int seen[7] = {0};
        for (int i = 0; i < 7; i++) seen[idx[7 * e + i]]++;
        for (int i = 0; i < 7; i++) perms &= seen[i] == 1;
        for (int i = 0; i < 7 && e; i++) differ |= idx[7 * e + i] != idx[i];
    }
    CHECK(perms && differ);
    for (int i = 0; i < 21; i++) CHECK(flip[i] == 0);
    CHECK(s.epoch == 2 && s.position == 7);
    /* the same seed gives the same stream, drawn in any chunks; another seed another stream */
    CHECK(gantl_sampler_init(&t, 7, 0, 42) == GANTL_OK);
    gantl_sampler_next(&t, 5, idx2, NULL);
    gantl_sampler_next(&t, 1, idx2 + 5, NULL);
    gantl_sampler_next(&t, 15, idx2 + 6, NULL);
    CHECK(memcmp(idx, idx2, 21 * sizeof(int64_t)) == 0);
    gantl_sampler_free(&t);
    CHECK(gantl_sampler_init(&t, 7, 0, 43) == GANTL_OK);
    gantl_sampler_next(&t, 21, idx2, NULL);
    CHECK(memcmp(idx, idx2, 21 * sizeof(int64_t)) != 0);
    gantl_sampler_free(&t);
    /* resuming from (seed, epoch, position) continues the same stream */
    int64_t epoch = s.epoch, position = s.position;
    gantl_sampler_next(&s, 30, idx, NULL);
    CHECK(gantl_sampler_init(&t, 7, 0, 42) == GANTL_OK);
    t.epoch = epoch, t.position = position;
    gantl_sampler_next(&t, 30, idx2, NULL);
    CHECK(memcmp(idx, idx2, 30 * sizeof(int64_t)) == 0);
    gantl_sampler_free(&t);
    gantl_sampler_free(&s);
    /* mirror: every (image, flip) pair once per epoch of 2 * count */
    CHECK(gantl_sampler_init(&s, 5, 1, 3) == GANTL_OK);
    gantl_sampler_next(&s, 40, idx, flip);
    int pairs = 1, flipped = 0;
    for (int e = 0; e < 4; e++) {
        int seen[10] = {0};
        for (int i = 0; i < 10; i++) {
            CHECK(idx[10 * e + i] >= 0 && idx[10 * e + i] < 5 && flip[10 * e + i] <= 1);
            seen[idx[10 * e + i] + 5 * flip[10 * e + i]]++;
            flipped += flip[10 * e + i];
        }
        for (int i = 0; i < 10; i++) pairs &= seen[i] == 1;
    }
    CHECK(pairs && flipped == 20);
    gantl_sampler_free(&s);
    CHECK(gantl_sampler_init(&s, 0, 0, 0) == GANTL_ERR_INVALID && strstr(gantl_last_error(), "empty dataset"));
    gantl_sampler_free(&s);
}

static void run_data_tests(void) {
    RUN(test_data_folder_sorted_with_labels);
    RUN(test_data_channel_conversion);
    RUN(test_data_padding);
    RUN(test_data_sizes_and_resizing);
    RUN(test_data_npy);
    RUN(test_data_idx_and_gzip);
    RUN(test_data_gzip_fuzz);
    RUN(test_data_subset);
    RUN(test_data_fashion_mnist);
    RUN(test_data_errors);
    RUN(test_data_batch);
    RUN(test_data_sampler);
}
