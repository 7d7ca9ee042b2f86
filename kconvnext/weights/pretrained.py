"""`create_model(name, weights="imagenet")`: a preset's checkpoint, converted once and cached.

The first use downloads and verifies the PyTorch checkpoint (download.py), loads it into a
*reference* model (the preset's own head: 1000 ImageNet classes) and saves that model's weights as
a Keras weights file next to the checkpoint. Later uses load that `.weights.h5` and never read the
`.pth` again. The caller's model (2 classes, no top, ...) then takes the backbone, and the head when
it fits, by the same all-or-nothing rules as `load_weights`.
"""
import hashlib
import json
import logging
import os
import sys

import numpy as np

from kconvnext.weights.converters import BACKBONE, HEAD, HEAD_NORM, Converted
from kconvnext.weights.download import fetch, weights_dir
from kconvnext.weights.loader import _NOT_FROM_CHECKPOINT, assign_converted, load_weights
from kconvnext.weights.presets import get_preset

logger = logging.getLogger("kconvnext.weights")

# Builder options that change no checkpoint weight: the reference model ignores them.
_HEAD_AND_RUNTIME_OPTIONS = {
    "num_classes", "include_top", "pooling", "classifier_activation", "head_dropout", "drop_path_rate",
    "input_shape", "normalization", "name", "head_init_scale", "grouped_conv_implementation",
}


def _defaults(model_name):
    import inspect

    from kconvnext.models import get_spec

    spec = get_spec(model_name)
    params = inspect.signature(spec.builder).parameters
    return {**{k: p.default for k, p in params.items() if p.default is not inspect.Parameter.empty}, **spec.arch}


def reference_kwargs(build_kwargs, preset):
    """The builder kwargs of the model the checkpoint is loaded into before caching: the caller's
    architecture options, minus head/runtime options and values equal to the builder's defaults (so
    `create_model(name, weights=...)` and a recipe that spells out the defaults share one cache)."""
    defaults = _defaults(preset.model)
    kept = {k: v for k, v in (build_kwargs or {}).items()
            if k not in _HEAD_AND_RUNTIME_OPTIONS and not (k in defaults and _same(defaults[k], v))}
    return {**kept, "num_classes": preset.num_classes, "include_top": True, "pooling": "avg",
            "normalization": None}


def _same(a, b):
    return (list(a) if isinstance(a, (list, tuple)) else a) == (list(b) if isinstance(b, (list, tuple)) else b)


def converted_cache_path(preset, build_kwargs=None):
    arch = {k: v for k, v in reference_kwargs(build_kwargs, preset).items()
            if k not in ("num_classes", "include_top", "pooling", "normalization")}
    suffix = ""
    if arch:
        suffix = "-" + hashlib.sha256(json.dumps(arch, sort_keys=True, default=str).encode()).hexdigest()[:8]
    stem = os.path.splitext(preset.filename)[0]
    return weights_dir() / "converted" / f"{preset.model}.{preset.tag}.{stem}{suffix}.weights.h5"


def _group(path):
    layer = path.split("/", 1)[0]
    return HEAD if layer == "head_fc" else HEAD_NORM if layer == "head_norm" else BACKBONE


def _as_converted(reference):
    return [Converted(key=w.path, path=w.path, value=np.asarray(w.numpy()), group=_group(w.path))
            for w in reference.weights if w.path.split("/", 1)[0] not in _NOT_FROM_CHECKPOINT]


def _build_reference(model_name, kwargs):
    from kconvnext.models import build_architecture

    return build_architecture(model_name, **kwargs)


def load_pretrained(model, model_name, tag, build_kwargs=None, verbose=True):
    """Load preset `tag` of `model_name` into `model` (built with `build_kwargs`); returns a LoadReport."""
    preset = get_preset(model_name, tag)
    cache = converted_cache_path(preset, build_kwargs)
    kwargs = reference_kwargs(build_kwargs, preset)
    reference = _build_reference(model_name, kwargs)
    origin = None
    if cache.is_file():
        try:
            reference.load_weights(str(cache))
            origin = str(cache)
        except Exception as err:  # noqa: BLE001  (a stale or damaged cache is rebuilt, not fatal)
            logger.warning("kconvnext: rebuilding the converted-weights cache %s (%s)", cache, err)
            cache.unlink(missing_ok=True)
            reference = _build_reference(model_name, kwargs)
    source = preset.source  # "auto" (register_preset without source=): detected from the keys
    if origin is None:
        checkpoint = fetch(preset, verbose=verbose)
        source = load_weights(reference, checkpoint, source=preset.source, skip_mismatched_head=False).source
        cache.parent.mkdir(parents=True, exist_ok=True)
        partial = cache.with_name(cache.name[:-len(".weights.h5")] + ".part.weights.h5")
        reference.save_weights(str(partial))
        os.replace(partial, cache)
        origin = str(checkpoint)
    report = assign_converted(model, _as_converted(reference), source=source,
                              origin=f"{origin} (weights={tag!r})")
    report.notes.insert(0, preset.describe() + ".")
    if verbose:
        print(f"kconvnext: {preset.describe()}; loaded from {origin}", file=sys.stderr)
    return report
