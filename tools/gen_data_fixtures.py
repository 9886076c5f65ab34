#!/usr/bin/python3
"""Fixtures for gantl's dataset loading (tests/test_data.c), written with PIL and NumPy.

Pixel values follow pattern(k, x, y, c) = (37 k + 13 x + 7 y + 85 c) % 256 so that the C
test can compute what to expect; JPEGs are flat colours (lossy, compared with a tolerance).

tests/fixtures/data/
  rgb/        a.png, b.png (16x16 RGB, patterns 0 and 1), sub/c.jpg (16x16 flat
              (200, 100, 50)), dataset.json (a 0, b 2, sub/c.jpg 1, plus a missing file),
              notes.txt (not an image) and .hidden.png (corrupt; hidden files are skipped)
  mixed/      0_grey.png (L, pattern 2), 1_rgb.png (RGB, pattern 3), 2_rgba.png (RGBA,
              pattern 4 with alpha pattern 5's channel 0), 3_grey.jpg (L flat 90), all 16x16
  pad/        a.png, b.png: 30x30 RGB (patterns 6, 7), padded to 32
  wide/       w.png: 20x12 grey (pattern 8), padded to 32x32
  sizes/      a.png 30x30 RGB (pattern 9), b.png 16x16 RGB (pattern 10)
  crop/       c.png 48x32 RGB (pattern 11): centre-cropped to 32x32 and resized
  corrupt/    ok.png (16x16 RGB) and bad.png (a PNG cut after 60 bytes)
  empty/      readme.txt only
  nolabel/    a.png, b.png (16x16 grey) and a dataset.json that labels only a.png
  tiff/       x.tif (not read by stb_image)
  rgba/       x.png: 16x16 RGBA (pattern 16)
  npy/        nchw_u8.npy (3, 3, 8, 8) uint8 (patterns 20-22) + nchw_u8.labels.npy [2, 0, 1]
              nhwc_u8.npy (2, 8, 8, 3): the first two of nchw_u8, channels last
              nhw_u8.npy (2, 6, 6) uint8 (patterns 23, 24, channel 0)
              f32.npy (1, 1, 4, 8) float32 and f32_expected.npy: the official rounding
              many_u8.npy (50, 1, 4, 4): image i is all i (for max_images subsets)
              bad_shape.npy (2, 5, 8, 8); badlab.npy (3, 1, 4, 4) + badlab.labels.npy (2,)
  idx/        tiny-images-idx3-ubyte.gz: 5 images 28x28 (patterns 30-34, channel 0), a
              gzip header with FEXTRA, FNAME, FCOMMENT and FHCRC; tiny-labels-idx1-ubyte
              (not gzipped) [3, 1, 4, 1, 5]

Run from the repository root: /usr/bin/python3 tools/gen_data_fixtures.py
"""
import gzip
import io
import json
import os
import struct
import zlib

import numpy as np
from PIL import Image

OUT = "tests/fixtures/data"


def pattern(k, w, h, c):
    y, x, ch = np.meshgrid(np.arange(h), np.arange(w), np.arange(c), indexing="ij")
    return ((37 * k + 13 * x + 7 * y + 85 * ch) % 256).astype(np.uint8)  # (h, w, c)


def save_png(path, array, mode):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if mode == "L":
        array = array[:, :, 0]
    Image.fromarray(array, mode).save(path, optimize=True)


def save_jpg(path, colour, mode):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.new(mode, (16, 16), colour).save(path, quality=95)


def idx_bytes(array):
    header = struct.pack(">I", 0x800 | array.ndim) + b"".join(struct.pack(">I", d) for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def gzip_all_fields(data):
    """A gzip member with FEXTRA, FNAME, FCOMMENT and FHCRC set (Python's gzip writes none of
    FEXTRA, FCOMMENT or FHCRC)."""
    header = bytearray(b"\x1f\x8b\x08" + bytes([4 | 8 | 16 | 2]) + struct.pack("<I", 0) + b"\x02\x03")
    extra = b"AB\x03\x00xyz"
    header += struct.pack("<H", len(extra)) + extra
    header += b"tiny-images-idx3-ubyte\x00" + b"gantl test fixture\x00"
    header += struct.pack("<H", zlib.crc32(bytes(header)) & 0xFFFF)
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    body = compressor.compress(data) + compressor.flush()
    return bytes(header) + body + struct.pack("<II", zlib.crc32(data), len(data) & 0xFFFFFFFF)


def main():
    # rgb/
    save_png(f"{OUT}/rgb/a.png", pattern(0, 16, 16, 3), "RGB")
    save_png(f"{OUT}/rgb/b.png", pattern(1, 16, 16, 3), "RGB")
    save_jpg(f"{OUT}/rgb/sub/c.jpg", (200, 100, 50), "RGB")
    with open(f"{OUT}/rgb/dataset.json", "w") as f:
        json.dump({"labels": [["a.png", 0], ["sub/c.jpg", 1], ["b.png", 2], ["gone.png", 7]]}, f)
    with open(f"{OUT}/rgb/notes.txt", "w") as f:
        f.write("not an image\n")
    with open(f"{OUT}/rgb/.hidden.png", "wb") as f:
        f.write(b"not a png")
    # mixed/
    save_png(f"{OUT}/mixed/0_grey.png", pattern(2, 16, 16, 1), "L")
    save_png(f"{OUT}/mixed/1_rgb.png", pattern(3, 16, 16, 3), "RGB")
    rgba = np.concatenate([pattern(4, 16, 16, 3), pattern(5, 16, 16, 1)], axis=2)
    save_png(f"{OUT}/mixed/2_rgba.png", rgba, "RGBA")
    save_jpg(f"{OUT}/mixed/3_grey.jpg", 90, "L")
    # pad/, wide/, sizes/, crop/
    save_png(f"{OUT}/pad/a.png", pattern(6, 30, 30, 3), "RGB")
    save_png(f"{OUT}/pad/b.png", pattern(7, 30, 30, 3), "RGB")
    save_png(f"{OUT}/wide/w.png", pattern(8, 20, 12, 1), "L")
    save_png(f"{OUT}/sizes/a.png", pattern(9, 30, 30, 3), "RGB")
    save_png(f"{OUT}/sizes/b.png", pattern(10, 16, 16, 3), "RGB")
    save_png(f"{OUT}/crop/c.png", pattern(11, 48, 32, 3), "RGB")
    # corrupt/, empty/, nolabel/, tiff/
    save_png(f"{OUT}/corrupt/ok.png", pattern(12, 16, 16, 3), "RGB")
    buf = io.BytesIO()
    Image.fromarray(pattern(13, 16, 16, 3), "RGB").save(buf, "PNG")
    with open(f"{OUT}/corrupt/bad.png", "wb") as f:
        f.write(buf.getvalue()[:60])
    os.makedirs(f"{OUT}/empty", exist_ok=True)
    with open(f"{OUT}/empty/readme.txt", "w") as f:
        f.write("no images here\n")
    save_png(f"{OUT}/nolabel/a.png", pattern(14, 16, 16, 1), "L")
    save_png(f"{OUT}/nolabel/b.png", pattern(15, 16, 16, 1), "L")
    with open(f"{OUT}/nolabel/dataset.json", "w") as f:
        json.dump({"labels": [["a.png", 0]]}, f)
    save_png(f"{OUT}/rgba/x.png", pattern(16, 16, 16, 4), "RGBA")
    os.makedirs(f"{OUT}/tiff", exist_ok=True)
    with open(f"{OUT}/tiff/x.tif", "wb") as f:
        f.write(b"II*\x00")
    # npy/
    os.makedirs(f"{OUT}/npy", exist_ok=True)
    nchw = np.stack([pattern(20 + k, 8, 8, 3).transpose(2, 0, 1) for k in range(3)])
    np.save(f"{OUT}/npy/nchw_u8.npy", nchw)
    np.save(f"{OUT}/npy/nchw_u8.labels.npy", np.array([2, 0, 1], dtype=np.int64))
    np.save(f"{OUT}/npy/nhwc_u8.npy", np.ascontiguousarray(nchw[:2].transpose(0, 2, 3, 1)))
    np.save(f"{OUT}/npy/nhw_u8.npy", np.stack([pattern(23 + k, 6, 6, 1)[:, :, 0] for k in range(2)]))
    x = np.array([-1, 1, 0, -0.5, 0.5, 2, -2, 1 / 127.5, -1 / 127.5, 0.99, -0.99, 0.0039215689, -0.0039215689,
                  0.996, -0.996, 1e-8, -1e-8, 0.25, -0.25, 0.123456, -0.123456, 0.75, -0.75, 0.9999999,
                  -0.9999999, 3e-3, -3e-3, 0.2, 0.3, 0.4, 0.6, 0.7], dtype=np.float32).reshape(1, 1, 4, 8)
    np.save(f"{OUT}/npy/f32.npy", x)
    expected = np.clip(x * np.float32(127.5) + np.float32(128), 0, 255).astype(np.uint8)  # float32 as torch
    np.save(f"{OUT}/npy/f32_expected.npy", expected)
    np.save(f"{OUT}/npy/many_u8.npy", np.repeat(np.arange(50, dtype=np.uint8), 16).reshape(50, 1, 4, 4))
    np.save(f"{OUT}/npy/bad_shape.npy", np.zeros((2, 5, 8, 8), dtype=np.uint8))
    np.save(f"{OUT}/npy/badlab.npy", np.zeros((3, 1, 4, 4), dtype=np.uint8))
    np.save(f"{OUT}/npy/badlab.labels.npy", np.array([0, 1], dtype=np.int32))
    # idx/
    os.makedirs(f"{OUT}/idx", exist_ok=True)
    images = np.stack([pattern(30 + k, 28, 28, 1)[:, :, 0] for k in range(5)])
    with open(f"{OUT}/idx/tiny-images-idx3-ubyte.gz", "wb") as f:
        f.write(gzip_all_fields(idx_bytes(images)))
    assert np.array_equal(np.frombuffer(gzip.decompress(open(f"{OUT}/idx/tiny-images-idx3-ubyte.gz", "rb").read())[16:],
                                        np.uint8).reshape(5, 28, 28), images)
    with open(f"{OUT}/idx/tiny-labels-idx1-ubyte", "wb") as f:
        f.write(idx_bytes(np.array([3, 1, 4, 1, 5])))

    # The official max_size subset (training/dataset.py), for the test's expectations.
    for total, keep, seed in [(50, 7, 123), (50, 10, 0), (5, 3, 7)]:
        idx = np.arange(total)
        np.random.RandomState(seed).shuffle(idx)
        print(f"subset of {total}, max {keep}, seed {seed}: {sorted(idx[:keep].tolist())}")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
