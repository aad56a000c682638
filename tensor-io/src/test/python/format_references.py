"""Independent references for sparkprune's quantized formats, computed with numpy and ml_dtypes.

Usage: format_references.py OUT_DIR SHARED_DIR

Writes safetensors files (a minimal writer below, no safetensors package needed) that
TestFormatReferences compares with tensor-io's own decoding and quantization:
  tables.safetensors     every code of F8_E4M3 (float8_e4m3fn), F8_E5M2, E2M1 (float4_e2m1fn)
                         and E8M0 (float8_e8m0fnu) decoded by ml_dtypes, as F32;
  casts.safetensors      seeded floats and every midpoint between neighbouring codes, rounded by
                         ml_dtypes' casts (round to nearest even) after clipping to the format's
                         largest value, as the quantizers saturate;
  fp8_blocks.safetensors FP8 128x128 block quantization of seeded matrices with DeepSeek's rule
                         (scale = amax / 448 in float32, code = e4m3(w / scale)), and with ue8m0
                         scales (2^ceil(log2(amax * (1/448)))), computed here in numpy;
  mxfp4.safetensors      OCP MX quantization of seeded experts (shared exponent
                         floor(log2(amax)) - 2, codes e2m1(w / 2^X), low nibble first);
  deepseek_v3_fp8_dequantized.safetensors  a few fixture weights dequantized as code x scale
                         in float32, the product transformers and DeepSeek's weight_dequant take.
"""
import json
import struct
import sys
from pathlib import Path

import ml_dtypes
import numpy as np

E4M3_MAX = np.float32(448.0)
E2M1_MAX = np.float32(6.0)


def write_safetensors(path, tensors):
    header = {}
    offset = 0
    blobs = []
    for name, array in tensors.items():
        array = np.ascontiguousarray(array)
        dtype = {np.dtype(np.float32): "F32", np.dtype(np.uint8): "U8"}[array.dtype]
        data = array.tobytes()
        header[name] = {"dtype": dtype, "shape": list(array.shape), "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    text = json.dumps(header).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as out:
        out.write(struct.pack("<Q", len(text)))
        out.write(text)
        for blob in blobs:
            out.write(blob)


def read_safetensors(path):
    with open(path, "rb") as f:
        length = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(length))
        data = f.read()
    types = {"F32": np.float32, "BF16": ml_dtypes.bfloat16, "U8": np.uint8, "F8_E4M3": ml_dtypes.float8_e4m3fn}
    out = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        begin, end = entry["data_offsets"]
        out[name] = np.frombuffer(data[begin:end], dtype=types[entry["dtype"]]).reshape(entry["shape"])
    return out


def tables():
    codes = np.arange(256, dtype=np.uint8)
    return {
        "e4m3": codes.view(ml_dtypes.float8_e4m3fn).astype(np.float32),
        "e5m2": codes.view(ml_dtypes.float8_e5m2).astype(np.float32),
        "e2m1": codes[:16].view(ml_dtypes.float4_e2m1fn).astype(np.float32),
        "e8m0": codes.view(ml_dtypes.float8_e8m0fnu).astype(np.float32),
    }


def midpoints(values):
    finite = np.unique(values[np.isfinite(values)].astype(np.float64))
    return ((finite[:-1] + finite[1:]) / 2).astype(np.float32)


def casts(rng):
    e4m3 = tables()["e4m3"]
    e2m1 = tables()["e2m1"]
    e4m3_in = np.concatenate([
        midpoints(e4m3),
        rng.standard_normal(20000).astype(np.float32) * np.float32(100),
        np.float32(2.0) ** rng.uniform(-12, 9, 20000).astype(np.float32) * rng.choice([-1, 1], 20000).astype(np.float32),
        np.array([0.0, -0.0, 448.0, 449.0, 464.0, 480.0, 1e30, -1e30, 2 ** -10, 2 ** -9, 1.5 * 2 ** -9], dtype=np.float32),
    ]).astype(np.float32)
    e2m1_in = np.concatenate([
        midpoints(e2m1),
        rng.standard_normal(20000).astype(np.float32) * np.float32(3),
        np.array([0.0, -0.0, 6.0, 7.0, 100.0, -100.0, 0.25, 0.2500001, 5.0, 5.0000005], dtype=np.float32),
    ]).astype(np.float32)
    return {
        "e4m3_in": e4m3_in,
        "e4m3_codes": np.clip(e4m3_in, -E4M3_MAX, E4M3_MAX).astype(ml_dtypes.float8_e4m3fn).view(np.uint8),
        "e2m1_in": e2m1_in,
        "e2m1_codes": np.clip(e2m1_in, -E2M1_MAX, E2M1_MAX).astype(ml_dtypes.float4_e2m1fn).view(np.uint8) & 0x0F,
    }


def fp8_quantize(w, ue8m0):
    rows, cols = w.shape
    scale_rows, scale_cols = -(-rows // 128), -(-cols // 128)
    codes = np.zeros(w.shape, dtype=np.uint8)
    scales = np.zeros((scale_rows, scale_cols), dtype=np.float32)
    for i in range(scale_rows):
        for j in range(scale_cols):
            block = w[i * 128:(i + 1) * 128, j * 128:(j + 1) * 128]
            amax = np.abs(block).max()
            if amax == 0:
                scale = np.float32(1.0)
            elif ue8m0:
                scaled = np.float32(amax) * np.float32(1.0 / 448.0)
                mantissa, exponent = np.frexp(np.float64(scaled))
                scale = np.float32(2.0 ** (exponent - 1 if mantissa == 0.5 else exponent))
            else:
                scale = np.float32(amax) / E4M3_MAX
            scales[i, j] = scale
            quotient = (block / scale).astype(np.float32)
            codes[i * 128:(i + 1) * 128, j * 128:(j + 1) * 128] = (
                np.clip(quotient, -E4M3_MAX, E4M3_MAX).astype(ml_dtypes.float8_e4m3fn).view(np.uint8))
    return codes, scales


def mxfp4_quantize(w):
    out, inner = w.shape
    groups = w.reshape(out, inner // 32, 32).astype(np.float64)
    amax = np.abs(groups).max(axis=2)
    _, exponent = np.frexp(amax)  # amax = m * 2^e with m in [0.5, 1): floor(log2(amax)) = e - 1
    shared = np.where(amax == 0, -127, np.clip(exponent - 1 - 2, -127, 127))
    scaled = np.ldexp(groups, -shared[:, :, None])
    nibbles = np.clip(scaled, -6, 6).astype(np.float32).astype(ml_dtypes.float4_e2m1fn).view(np.uint8) & 0x0F
    nibbles = nibbles.reshape(out, inner)
    blocks = (nibbles[:, 0::2] | (nibbles[:, 1::2] << 4)).astype(np.uint8)
    return blocks, (shared + 127).astype(np.uint8)


def fp8_blocks(rng):
    tensors = {}
    for name, (rows, cols) in {"square": (256, 256), "ragged": (200, 330), "tall": (300, 64)}.items():
        w = (rng.standard_normal((rows, cols)) * rng.uniform(0.001, 2.0, (rows, 1))).astype(np.float32)
        w[:, :5] *= 50  # outlier columns
        if rows > 128 and cols > 128:
            w[128:256, 128:256] = 0  # an all-zero block
        w[rng.random(w.shape) < 0.3] = 0  # pruned entries
        for ue8m0 in (False, True):
            codes, scales = fp8_quantize(w, ue8m0)
            suffix = "_ue8m0" if ue8m0 else ""
            tensors[name + "_codes" + suffix] = codes
            tensors[name + "_scales" + suffix] = scales
        tensors[name] = w
    return tensors


def mxfp4(rng):
    tensors = {}
    for name, (out, inner) in {"expert": (48, 96), "wide": (8, 512)}.items():
        w = (rng.standard_normal((out, inner)) * np.float32(2.0) ** rng.integers(-20, 6, (out, 1))).astype(np.float32)
        w[0, :32] = 0  # an all-zero group
        w[1, :32] = np.float32(6.5) * np.float32(2.0) ** -3  # a group whose amax sits just above a binade
        w[rng.random(w.shape) < 0.3] = 0
        blocks, scales = mxfp4_quantize(w)
        tensors[name] = w
        tensors[name + "_blocks"] = blocks
        tensors[name + "_scales"] = scales
    return tensors


def deepseek_dequantized(shared):
    source = read_safetensors(Path(shared) / "fixtures/models/deepseek_v3_fp8/model.safetensors")
    out = {}
    for name in ["model.layers.0.mlp.down_proj.weight", "model.layers.1.mlp.experts.3.gate_proj.weight",
                 "model.layers.1.self_attn.kv_b_proj.weight", "model.layers.2.mlp.shared_experts.up_proj.weight"]:
        codes = source[name].astype(np.float32)
        scales = source[name + "_scale_inv"]
        rows, cols = codes.shape
        expanded = np.repeat(np.repeat(scales, 128, axis=0), 128, axis=1)[:rows, :cols]
        out[name] = (codes * expanded).astype(np.float32)
    return out


def main():
    out = Path(sys.argv[1])
    shared = sys.argv[2]
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(24)
    write_safetensors(out / "tables.safetensors", tables())
    write_safetensors(out / "casts.safetensors", casts(rng))
    write_safetensors(out / "fp8_blocks.safetensors", fp8_blocks(rng))
    write_safetensors(out / "mxfp4.safetensors", mxfp4(rng))
    if (Path(shared) / "fixtures/models/deepseek_v3_fp8/model.safetensors").exists():
        write_safetensors(out / "deepseek_v3_fp8_dequantized.safetensors", deepseek_dequantized(shared))
    print("format references: written to", out)


if __name__ == "__main__":
    main()
