#!/usr/bin/python3
"""Fixtures for gantl's file and seed handling, written by NumPy itself:

tests/fixtures/io.safetensors   numpy.random.RandomState(seed).randn(n) for a few seeds
                                ("randn.<seed>", float64), as official generate.py draws z
tests/fixtures/array_f32.npy    a float32 (2, 3, 4) array, np.save's own header
tests/fixtures/array_u8.npy     a uint8 (5, 7) array
tests/fixtures/array_f64_v2.npy a float64 (3,) array in .npy format version 2.0

Run from the repository root: /usr/bin/python3 tools/gen_io_fixtures.py
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_io  # noqa: E402


def main():
    out = {}
    for seed in [0, 1, 42, 85, 2**32 - 1]:
        out[f"randn.{seed}"] = np.random.RandomState(seed).randn(1, 513).reshape(-1)  # odd count: cached pair
    safetensors_io.save("tests/fixtures/io.safetensors", out, {"generator": "tools/gen_io_fixtures.py",
                                                               "numpy": np.__version__})
    np.save("tests/fixtures/array_f32.npy", np.arange(24, dtype=np.float32).reshape(2, 3, 4) / 8 - 1)
    np.save("tests/fixtures/array_u8.npy", (np.arange(35) * 7 % 256).astype(np.uint8).reshape(5, 7))
    with open("tests/fixtures/array_f64_v2.npy", "wb") as f:
        np.lib.format.write_array(f, np.array([1.5, -2.25, 1e300]), version=(2, 0))
    print("wrote tests/fixtures/io.safetensors and tests/fixtures/array_*.npy")


if __name__ == "__main__":
    main()
