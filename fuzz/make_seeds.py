#!/usr/bin/env python3
"""Writes the committed seed corpora of the model-loader and image-file
fuzz targets (the pack targets' seeds are in corpus/pack_loader).

    python3 fuzz/make_seeds.py             # model seeds: the standard library only
    python3 fuzz/make_seeds.py --images    # image seeds too: needs Pillow

Seeds are small on purpose: each is a file that stops at a different check
of the loader (a header without tensors, an unknown convention, a layer of
the wrong shape, dtype or values, a missing layer, a truncated data
section) or a tiny image in each format and sample type the library reads.
"""
import io
import json
import math
import os
import random
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def safetensors(tensors, metadata, truncate=None):
    """A safetensors file: {name: (dtype, shape, bytes)}."""
    header, offset, data = {}, 0, b""
    for name, (dtype, shape, raw) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
        data += raw
    if metadata is not None:
        header["__metadata__"] = metadata
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    blob = struct.pack("<Q", len(text)) + text + data
    return blob if truncate is None else blob[:truncate]


def floats(count, value=None, seed=1):
    rng = random.Random(seed)
    values = [value if value is not None else rng.uniform(-0.1, 0.1) for _ in range(count)]
    return struct.pack(f"<{count}f", *values)


def model_seeds(out):
    caffe = {"input_convention": "caffe", "source": "seed"}
    conv1_1 = {
        "conv1_1.weight": ("F32", [64, 3, 3, 3], floats(64 * 27)),
        "conv1_1.bias": ("F32", [64], floats(64, seed=2)),
    }
    seeds = {
        "no-tensors": safetensors({}, caffe),
        "no-metadata": safetensors(conv1_1, None),
        "unknown-convention": safetensors(conv1_1, {"input_convention": "bgr-magic"}),
        "missing-conv1_2": safetensors(conv1_1, caffe),
        "torchvision-missing-conv1_2": safetensors(conv1_1, {"input_convention": "torchvision"}),
        "wrong-shape": safetensors(
            {"conv1_1.weight": ("F32", [64, 3, 3, 2], floats(64 * 18)), "conv1_1.bias": conv1_1["conv1_1.bias"]},
            caffe,
        ),
        "wrong-dtype": safetensors(
            {"conv1_1.weight": ("F16", [64, 3, 3, 3], b"\x00\x3c" * (64 * 27)), "conv1_1.bias": conv1_1["conv1_1.bias"]},
            caffe,
        ),
        "nan-weights": safetensors(
            {"conv1_1.weight": ("F32", [64, 3, 3, 3], floats(64 * 27, math.nan)), "conv1_1.bias": conv1_1["conv1_1.bias"]},
            caffe,
        ),
        "digest-recorded": safetensors(conv1_1, dict(caffe, weights_sha256="0" * 64)),
        "truncated-data": safetensors(conv1_1, caffe, truncate=600),
    }
    os.makedirs(out, exist_ok=True)
    for name, blob in seeds.items():
        with open(os.path.join(out, name + ".safetensors"), "wb") as f:
            f.write(blob)


def image_seeds(out):
    from PIL import Image

    os.makedirs(out, exist_ok=True)
    rgb = Image.new("RGB", (9, 7))
    rgb.putdata([(x * 28, y * 36, (x * y) % 256) for y in range(7) for x in range(9)])
    rgba = rgb.convert("RGBA")
    rgba.putalpha(Image.linear_gradient("L").resize((9, 7)))
    gray = rgb.convert("L")
    saves = [
        ("rgb.png", rgb, "PNG", {}),
        ("rgba.png", rgba, "PNG", {}),
        ("gray.png", gray, "PNG", {}),
        ("gray16.png", gray.convert("I;16"), "PNG", {}),
        ("palette.png", rgb.convert("P"), "PNG", {}),
        ("rgb.jpg", rgb, "JPEG", {"quality": 80}),
        ("progressive.jpg", rgb, "JPEG", {"quality": 60, "progressive": True}),
        ("gray.jpg", gray, "JPEG", {}),
        ("rgb.tif", rgb, "TIFF", {}),
        ("rgba-lzw.tif", rgba, "TIFF", {"compression": "tiff_lzw"}),
        ("float.tif", gray.convert("F"), "TIFF", {}),
        ("rgb.bmp", rgb, "BMP", {}),
        ("rgb.ppm", rgb, "PPM", {}),
        ("gray.pgm", gray, "PPM", {}),
        ("lossy.webp", rgb, "WEBP", {"quality": 50}),
        ("lossless.webp", rgba, "WEBP", {"lossless": True}),
    ]
    for name, image, fmt, options in saves:
        buffer = io.BytesIO()
        image.save(buffer, fmt, **options)
        with open(os.path.join(out, name), "wb") as f:
            f.write(buffer.getvalue())
    with open(os.path.join(out, "ascii.ppm"), "wb") as f:
        f.write(b"P3\n2 2\n255\n255 0 0 0 255 0 0 0 255 255 255 255\n")


if __name__ == "__main__":
    model_seeds(os.path.join(HERE, "corpus", "model_loader"))
    if "--images" in sys.argv:
        image_seeds(os.path.join(HERE, "corpus", "image_file"))
