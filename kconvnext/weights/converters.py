"""PyTorch state-dict keys -> kconvnext weight paths, with the layout transposes.

Each layout is a table of (regex on the checkpoint key, Keras weight path template, transform).
Keras paths are `<model layer>/<sublayer>/<variable>`, e.g. `stages_2_blocks_1/pwconv1/kernel`.

Transposes: conv OIHW -> HWIO; depthwise (C, 1, kh, kw) -> (kh, kw, C, 1); linear (out, in) ->
(in, out) (also from a 1x1 conv's (out, in, 1, 1), as timm's conv_mlp ConvNeXts store their MLP).
"""
import re
from dataclasses import dataclass

import numpy as np

# Canonical source names; aliases accepted by `normalize_source`.
SOURCES = ("convnext_official", "convnext_timm", "resnet")
_ALIASES = {
    "official": "convnext_official", "convnext": "convnext_official", "facebook": "convnext_official",
    "timm_convnext": "convnext_timm", "torchvision": "resnet", "timm_resnet": "resnet", "resnext": "resnet",
}
FAMILY = {"convnext_official": "convnext", "convnext_timm": "convnext", "resnet": "resnet"}
DESCRIPTION = {
    "convnext_official": "official ConvNeXt (facebookresearch) layout",
    "convnext_timm": "timm ConvNeXt layout",
    "resnet": "torchvision/timm ResNet/ResNeXt layout",
}

# Keys that carry no weights of ours.
IGNORED_SUFFIXES = (".num_batches_tracked",)

BACKBONE, HEAD_NORM, HEAD = "backbone", "head_norm", "head"


def conv_kernel(w):
    """(out, in/groups, kh, kw) -> (kh, kw, in/groups, out)."""
    _expect_ndim(w, 4, "a conv weight (out, in, kh, kw)")
    return np.transpose(w, (2, 3, 1, 0))


def depthwise_kernel(w):
    """(C, 1, kh, kw) -> (kh, kw, C, 1)."""
    _expect_ndim(w, 4, "a depthwise conv weight (C, 1, kh, kw)")
    if w.shape[1] != 1:
        raise ValueError(f"expected a depthwise conv weight (C, 1, kh, kw), got shape {tuple(w.shape)}")
    return np.transpose(w, (2, 3, 0, 1))


def dense_kernel(w):
    """Linear (out, in), or a 1x1 conv (out, in, 1, 1) -> (in, out)."""
    if w.ndim == 4 and w.shape[2:] == (1, 1):
        w = w[:, :, 0, 0]
    _expect_ndim(w, 2, "a linear weight (out, in) or a 1x1 conv weight (out, in, 1, 1)")
    return np.transpose(w)


def identity(w):
    return w


def _expect_ndim(w, ndim, what):
    if w.ndim != ndim:
        raise ValueError(f"expected {what}, got shape {tuple(w.shape)}")


def _affine(src, dst, group=BACKBONE):
    """A LayerNorm / BN-free affine pair: weight -> gamma, bias -> beta."""
    return [(src + r"\.weight", dst + "/gamma", identity, group),
            (src + r"\.bias", dst + "/beta", identity, group)]


def _conv(src, dst, kernel=conv_kernel, group=BACKBONE):
    return [(src + r"\.weight", dst + "/kernel", kernel, group),
            (src + r"\.bias", dst + "/bias", identity, group)]


def _bn(src, dst):
    return _affine(src, dst) + [
        (src + r"\.running_mean", dst + "/moving_mean", identity, BACKBONE),
        (src + r"\.running_var", dst + "/moving_variance", identity, BACKBONE),
    ]


_CONVNEXT_OFFICIAL = (
    _conv(r"downsample_layers\.0\.0", "stem/conv")
    + _affine(r"downsample_layers\.0\.1", "stem/norm")
    + _affine(r"downsample_layers\.(\d+)\.0", r"stages_\1_downsample/norm")
    + _conv(r"downsample_layers\.(\d+)\.1", r"stages_\1_downsample/conv")
    + _conv(r"stages\.(\d+)\.(\d+)\.dwconv", r"stages_\1_blocks_\2/dwconv", depthwise_kernel)
    + _affine(r"stages\.(\d+)\.(\d+)\.norm", r"stages_\1_blocks_\2/norm")
    + _conv(r"stages\.(\d+)\.(\d+)\.pwconv1", r"stages_\1_blocks_\2/pwconv1", dense_kernel)
    + _conv(r"stages\.(\d+)\.(\d+)\.pwconv2", r"stages_\1_blocks_\2/pwconv2", dense_kernel)
    + [(r"stages\.(\d+)\.(\d+)\.gamma", r"stages_\1_blocks_\2/layer_scale/gamma", identity, BACKBONE)]
    + _affine(r"norm", "head_norm", HEAD_NORM)
    + _conv(r"head", "head_fc", dense_kernel, HEAD)
)

_CONVNEXT_TIMM = (
    _conv(r"stem\.0", "stem/conv")
    + _affine(r"stem\.1", "stem/norm")
    + _affine(r"stages\.(\d+)\.downsample\.0", r"stages_\1_downsample/norm")
    + _conv(r"stages\.(\d+)\.downsample\.1", r"stages_\1_downsample/conv")
    + _conv(r"stages\.(\d+)\.blocks\.(\d+)\.conv_dw", r"stages_\1_blocks_\2/dwconv", depthwise_kernel)
    + _affine(r"stages\.(\d+)\.blocks\.(\d+)\.norm", r"stages_\1_blocks_\2/norm")
    + _conv(r"stages\.(\d+)\.blocks\.(\d+)\.mlp\.fc1", r"stages_\1_blocks_\2/pwconv1", dense_kernel)
    + _conv(r"stages\.(\d+)\.blocks\.(\d+)\.mlp\.fc2", r"stages_\1_blocks_\2/pwconv2", dense_kernel)
    + [(r"stages\.(\d+)\.blocks\.(\d+)\.gamma", r"stages_\1_blocks_\2/layer_scale/gamma", identity, BACKBONE)]
    + _affine(r"head\.norm", "head_norm", HEAD_NORM)
    + _conv(r"head\.fc", "head_fc", dense_kernel, HEAD)
)

_RESNET = (
    [(r"conv1\.weight", "conv1/kernel", conv_kernel, BACKBONE)]
    + _bn(r"bn1", "bn1")
    + [(r"layer(\d+)\.(\d+)\.conv(\d)\.weight", r"layer\1_\2/conv\3/kernel", conv_kernel, BACKBONE)]
    + _bn(r"layer(\d+)\.(\d+)\.bn(\d)", r"layer\1_\2/bn\3")
    + [(r"layer(\d+)\.(\d+)\.downsample\.0\.weight", r"layer\1_\2/downsample_conv/kernel", conv_kernel, BACKBONE)]
    + _bn(r"layer(\d+)\.(\d+)\.downsample\.1", r"layer\1_\2/downsample_bn")
    + _conv(r"fc", "head_fc", dense_kernel, HEAD)
)

RULES = {
    "convnext_official": [(re.compile(p + "$"), d, f, g) for p, d, f, g in _CONVNEXT_OFFICIAL],
    "convnext_timm": [(re.compile(p + "$"), d, f, g) for p, d, f, g in _CONVNEXT_TIMM],
    "resnet": [(re.compile(p + "$"), d, f, g) for p, d, f, g in _RESNET],
}


@dataclass
class Converted:
    """One checkpoint tensor, in Keras layout, bound for one model weight."""

    key: str  # checkpoint key, for messages
    path: str  # Keras weight path
    value: np.ndarray
    group: str  # BACKBONE | HEAD_NORM | HEAD


def normalize_source(source):
    source = str(source).lower()
    source = _ALIASES.get(source, source)
    if source != "auto" and source not in SOURCES:
        raise ValueError(f"Unknown weights source {source!r}; use 'auto' or one of {SOURCES}.")
    return source


def detect_source(state):
    """Guess the checkpoint layout from its keys."""
    keys = list(state)
    if any(k.startswith("downsample_layers.") for k in keys):
        return "convnext_official"
    if any(k.startswith(("stem.0.", "stages.0.blocks.")) for k in keys):
        return "convnext_timm"
    if "conv1.weight" in state and any(k.startswith("layer1.") for k in keys):
        return "resnet"
    sample = ", ".join(keys[:6]) + (", ..." if len(keys) > 6 else "")
    raise ValueError(
        "Unrecognised checkpoint layout: expected official ConvNeXt (downsample_layers.*), timm "
        f"ConvNeXt (stem.*, stages.*.blocks.*) or torchvision/timm ResNet (conv1, layer1.*) keys; "
        f"got {len(keys)} keys: {sample}"
    )


def convert_state_dict(state, source):
    """-> (list of Converted, list of checkpoint keys that no rule matches)."""
    rules = RULES[source]
    converted, unmatched = [], []
    for key, value in state.items():
        if key.endswith(IGNORED_SUFFIXES):
            continue
        for pattern, template, transform, group in rules:
            m = pattern.match(key)
            if m:
                try:
                    out = transform(np.asarray(value))
                except ValueError as exc:
                    raise ValueError(f"Checkpoint key {key!r} ({DESCRIPTION[source]}): {exc}") from None
                converted.append(Converted(key, m.expand(template), out, group))
                break
        else:
            unmatched.append(key)
    return converted, unmatched
