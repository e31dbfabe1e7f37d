"""safetensors files written canonically and read header-first.

:func:`write_safetensors` writes the same tensors as the same bytes (the library orders its
header by a Rust HashMap, which varies from process to process, so identical weights got
different sha256s); :func:`header_shapes` reads tensor names and shapes without the data.
"""

from __future__ import annotations

import json
import os
import struct
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from mrisr.errors import ConfigError, InputError, OutputError

#: safetensors dtype names (the format's spec) of the tensors a checkpoint may hold.
_ST_DTYPES = {
    torch.float64: "F64",
    torch.float32: "F32",
    torch.float16: "F16",
    torch.bfloat16: "BF16",
    torch.int64: "I64",
    torch.int32: "I32",
    torch.int16: "I16",
    torch.int8: "I8",
    torch.uint8: "U8",
    torch.bool: "BOOL",
}


def header_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """Tensor name → shape from a safetensors header (the data is not read)."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            return {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
    except (SafetensorError, OSError) as e:
        raise InputError(f"cannot read '{path}': {e}") from None


def write_safetensors(
    tensors: Mapping[str, torch.Tensor],
    path: str | os.PathLike[str],
    metadata: Mapping[str, str] | None = None,
) -> None:
    """Write ``tensors`` as a safetensors file in a canonical form: the same tensors and
    metadata always give the same bytes (``safetensors.torch.save_file`` orders its header keys
    by a Rust HashMap, which varies from process to process).

    Layout (the format's spec): u64 little-endian header length N, N bytes of JSON (sorted
    keys, no spaces, padded with spaces to a multiple of 8), then the tensors' raw
    little-endian bytes, back to back, by decreasing element size then name (so each tensor is
    aligned to its element size, as the library writes them).
    """
    if sys.byteorder != "little":  # pragma: no cover - every platform torch ships for
        raise OutputError("writing safetensors needs a little-endian machine")
    flat: dict[str, torch.Tensor] = {}
    for key, value in tensors.items():
        if value.dtype not in _ST_DTYPES:
            raise ConfigError(f"tensor '{key}' has dtype {value.dtype}, not storable here")
        flat[key] = value.detach().cpu().contiguous().reshape(-1)
    order = sorted(flat, key=lambda k: (-flat[k].element_size(), k))
    header: dict[str, Any] = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    offset = 0
    for key in order:
        size = flat[key].numel() * flat[key].element_size()
        header[key] = {
            "dtype": _ST_DTYPES[flat[key].dtype],
            "shape": list(tensors[key].shape),
            "data_offsets": [offset, offset + size],
        }
        offset += size
    text = json.dumps(header, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for key in order:
            if flat[key].numel():
                f.write(flat[key].view(torch.uint8).numpy().tobytes())
