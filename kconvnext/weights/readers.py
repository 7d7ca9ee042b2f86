"""Checkpoint files -> a flat {key: numpy array} state dict, without torch.

- `.safetensors`: the `safetensors` numpy API (a tiny header parser covers bfloat16, which numpy lacks).
- `.pth` / `.pt` / `.bin` (torch.save zip format): `torch_zip`, a restricted, torch-free unpickler;
  when it cannot decode a file and torch is installed, `torch.load(weights_only=True)` is tried.
Wrappers are unwrapped: `{"model": sd}` (official ConvNeXt), `{"state_dict": sd}`, `{"model_ema": sd}`,
and DDP's `module.` prefix is stripped. A training checkpoint holding both raw and EMA weights (official
ConvNeXt: "model" + "model_ema"; timm: "state_dict" + "state_dict_ema") is read as its EMA copy, the
weights the releases evaluate; the returned StateDict's `wrapper` says which one was read.
"""
import json
import logging
import os
import struct

import numpy as np

from kconvnext.weights.torch_zip import UnsupportedPickleError, bfloat16_to_float32, load_torch_zip

# Checked in this order: an EMA copy is what the official ConvNeXt releases evaluate.
WRAPPER_KEYS = ("model_ema", "state_dict_ema", "model", "state_dict", "model_state_dict", "module")

logger = logging.getLogger("kconvnext.weights")


class StateDict(dict):
    """{key: array}, plus `wrapper`: the checkpoint keys it was found under ("model_ema", ...; "" = top
    level) and `alternatives`: other wrappers that held weights and were not read."""

    wrapper = ""
    alternatives = ()


class CheckpointError(ValueError):
    """The file is missing, unreadable, or not a state dict this package understands."""


def read_checkpoint(path):
    """Read a `.safetensors` or torch `.pth` checkpoint; returns {key: np.ndarray}."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"Checkpoint file not found: {path}")
    if os.path.isdir(path):
        raise CheckpointError(f"Checkpoint path {path} is a directory, not a .safetensors/.pth file.")
    with open(path, "rb") as fh:
        head = fh.read(8)
    if _looks_like_safetensors(path, head):
        state = _read_safetensors(path)
    elif head[:2] == b"PK" or head[:1] == b"\x80":  # zip (torch >= 1.6), or a legacy pickle
        state = _read_torch(path)
    else:
        raise CheckpointError(
            f"{path} is neither a .safetensors file nor a PyTorch checkpoint (torch.save)."
        )
    return unwrap_state_dict(state, path)


def _looks_like_safetensors(path, head):
    if path.endswith(".safetensors"):
        return True
    if len(head) < 8:
        return False
    (n,) = struct.unpack("<Q", head)
    if not 2 <= n <= os.path.getsize(path) - 8:
        return False
    with open(path, "rb") as fh:
        fh.seek(8)
        return fh.read(1) == b"{"


def _read_safetensors(path):
    try:
        from safetensors.numpy import load_file
    except ImportError:  # pragma: no cover - safetensors is a runtime dependency
        return _read_safetensors_raw(path)
    try:
        return load_file(path)
    except Exception as exc:  # bfloat16 (no numpy dtype), or not a safetensors file at all
        try:
            return _read_safetensors_raw(path)
        except CheckpointError:
            raise CheckpointError(f"{path} is not a readable .safetensors file: {exc}") from exc


_SAFETENSORS_DTYPES = {
    "F64": np.float64, "F32": np.float32, "F16": np.float16, "BF16": "bfloat16",
    "I64": np.int64, "I32": np.int32, "I16": np.int16, "I8": np.int8, "U8": np.uint8, "BOOL": np.bool_,
}


def _read_safetensors_raw(path):
    """The format is 8 bytes of header length, a JSON header, then raw little-endian buffers."""
    with open(path, "rb") as fh:
        data = fh.read()
    try:
        (n,) = struct.unpack("<Q", data[:8])
        header = json.loads(data[8:8 + n])
    except Exception as exc:
        raise CheckpointError(f"{path} is not a readable .safetensors file ({exc}).") from exc
    if not isinstance(header, dict):
        raise CheckpointError(f"{path} is not a readable .safetensors file (bad header).")
    body = memoryview(data)[8 + n:]
    out = {}
    for key, info in header.items():
        if key == "__metadata__":
            continue
        dtype = _SAFETENSORS_DTYPES.get(info.get("dtype"))
        if dtype is None:
            raise CheckpointError(f"{path}: tensor {key!r} has unsupported dtype {info.get('dtype')!r}.")
        start, end = info["data_offsets"]
        raw_dtype = np.dtype("<u2") if dtype == "bfloat16" else np.dtype(dtype).newbyteorder("<")
        raw = np.frombuffer(body[start:end], dtype=raw_dtype)
        arr = bfloat16_to_float32(raw) if dtype == "bfloat16" else raw.astype(np.dtype(dtype), copy=True)
        out[key] = arr.reshape(info["shape"])
    return out


def _read_torch(path):
    try:
        return load_torch_zip(path)
    except UnsupportedPickleError as exc:
        try:
            import torch
        except ImportError:
            raise CheckpointError(
                f"{path}: cannot read this PyTorch checkpoint without torch ({exc}). "
                "Install torch, or convert the file to .safetensors."
            ) from exc
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as torch_exc:
            raise CheckpointError(f"{path}: not a readable PyTorch checkpoint ({exc}; torch.load: "
                                  f"{torch_exc}).") from torch_exc
        return _torch_to_numpy(obj)


def _torch_to_numpy(obj):
    if isinstance(obj, dict):
        return type(obj)((k, _torch_to_numpy(v)) for k, v in obj.items())
    if hasattr(obj, "detach") and hasattr(obj, "dtype"):
        t = obj.detach().cpu()
        if str(t.dtype) == "torch.bfloat16":
            t = t.float()
        return t.numpy()
    return obj


def unwrap_state_dict(obj, path="checkpoint"):
    """Find the {name: array} state dict in what was saved (the EMA copy when there is one); strip a
    DDP `module.` prefix. Returns a StateDict that says which wrapper it came from."""
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path} does not hold a state dict (got {type(obj).__name__}).")
    chosen, others = [], []
    for _ in range(3):  # {"model": {"state_dict": ...}} style nesting
        if any(isinstance(v, np.ndarray) for v in obj.values()):
            break
        found = [k for k in WRAPPER_KEYS if isinstance(obj.get(k), dict) and obj[k]]
        if not found:
            break
        chosen.append(found[0])
        others += ["/".join(chosen[:-1] + [k]) for k in found[1:]]
        obj = obj[found[0]]
    state = StateDict((str(k), v) for k, v in obj.items() if isinstance(v, np.ndarray))
    if not state:
        raise CheckpointError(
            f"{path} holds no tensors under a known key; top-level keys: {sorted(map(str, obj))[:10]}."
        )
    if all(k.startswith("module.") for k in state):
        state = StateDict((k[len("module."):], v) for k, v in state.items())
    state.wrapper, state.alternatives = "/".join(chosen), tuple(others)
    if others:
        logger.info("kconvnext: %s: read the weights under %r (not %s)", path, state.wrapper,
                    ", ".join(repr(o) for o in others))
    return state
