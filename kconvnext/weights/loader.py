"""`load_weights(model, path)`: assign a PyTorch checkpoint to a kconvnext model, all or nothing."""
import logging
import os
from dataclasses import dataclass, field

import numpy as np

from kconvnext.weights.converters import (
    DESCRIPTION,
    FAMILY,
    HEAD,
    HEAD_NORM,
    convert_state_dict,
    detect_source,
    normalize_source,
)
from kconvnext.weights.readers import read_checkpoint

logger = logging.getLogger("kconvnext.weights")

# Model layers whose variables never come from a checkpoint (in-model pixel normalisation).
_NOT_FROM_CHECKPOINT = ("normalization",)
DEFAULT_NUM_CLASSES = 1000  # the builders' default head: ImageNet-1k


class WeightsMismatchError(ValueError):
    """The checkpoint does not fit the model's backbone (architecture, shape, missing/extra keys)."""


@dataclass
class LoadReport:
    path: str
    source: str
    loaded: list = field(default_factory=list)  # model weight paths assigned
    head_loaded: bool = False
    kept_fresh: list = field(default_factory=list)  # model weight paths left as initialised
    skipped: list = field(default_factory=list)  # (checkpoint key, reason), not loaded
    notes: list = field(default_factory=list)

    def __str__(self):
        lines = [
            f"Loaded {len(self.loaded)} weights from {self.path} ({DESCRIPTION.get(self.source, self.source)}).",
            *self.notes,
        ]
        return "\n".join(lines)


def _family_of(model_paths):
    layers = {p.split("/", 1)[0] for p in model_paths}
    if "stem" in layers:
        return "convnext"
    if "layer1_0" in layers or "conv1" in layers:
        return "resnet"
    return None


def load_weights(model, path, *, source="auto", skip_mismatched_head=None):
    """Load a timm / torchvision / official-ConvNeXt checkpoint (`.safetensors` or `.pth`) into `model`.

    Every backbone weight must be matched, by name and shape, or a `WeightsMismatchError` names
    the offending checkpoint key and model weight, and the model is left untouched. The classifier
    (`head_fc`) is loaded when it fits; when its size differs (fine-tuning to other classes), when
    the checkpoint has none, or when the model has none (include_top=False), the model keeps what
    it has, and the returned `LoadReport` says so (also logged on `kconvnext.weights`).
    skip_mismatched_head: None (default) keeps a fresh head of another size only when the model's
    head is not the default 1000 classes (num_classes=2 asks for fine-tuning; a 21,841-class head
    into a default 1000-class model is a mistake, and an error); True always, False never.
    Returns the LoadReport.
    """
    path = os.fspath(path)
    state = read_checkpoint(path)
    source = normalize_source(source)
    if source == "auto":
        source = detect_source(state)
    converted, unmatched = convert_state_dict(state, source)
    return assign_converted(model, converted, source=source, origin=path, unmatched=unmatched,
                            skip_mismatched_head=skip_mismatched_head)


def assign_converted(model, converted, *, source, origin, unmatched=(), skip_mismatched_head=None):
    """Assign already-converted weights (a list of converters.Converted) to `model`, all or nothing,
    with load_weights' rules; `origin` names where they came from in messages."""
    path = origin
    report = LoadReport(path=path, source=source)

    variables = {
        w.path: w for w in model.weights if w.path.split("/", 1)[0] not in _NOT_FROM_CHECKPOINT
    }
    family = _family_of(variables)
    if family is not None and source in FAMILY and family != FAMILY[source]:
        raise WeightsMismatchError(
            f"{path} is a {DESCRIPTION[source]} checkpoint, but model {model.name!r} is a "
            f"{family} (wrong architecture)."
        )
    if unmatched:
        raise WeightsMismatchError(
            f"{path}: {len(unmatched)} checkpoint key(s) have no counterpart in the "
            f"{DESCRIPTION[source]}: {_few(unmatched)}. Is this a variant kconvnext does not implement "
            "(e.g. ConvNeXt V2 / GRN, SE or deep-stem ResNets)?"
        )

    by_path = {}
    for item in converted:
        if item.path in by_path:
            raise WeightsMismatchError(
                f"{path}: checkpoint keys {by_path[item.path].key!r} and {item.key!r} both map to {item.path!r}."
            )
        by_path[item.path] = item

    assignments, head_problems = [], []
    for var_path, var in variables.items():
        item = by_path.get(var_path)
        is_head = var_path.startswith("head_fc/")
        if item is None:
            if is_head:
                head_problems.append(f"the checkpoint has no classifier weight for {var_path!r}")
                continue
            raise WeightsMismatchError(
                f"{path}: model weight {var_path!r} (layer {var_path.split('/')[0]!r}) has no checkpoint "
                f"key in the {DESCRIPTION[source]} (missing from the checkpoint: wrong depths, layer scale "
                "or architecture?)."
            )
        value, want = item.value, tuple(var.shape)
        if tuple(value.shape) != want:
            if is_head:
                head_problems.append(
                    f"checkpoint {item.key!r} has shape {tuple(value.shape)} (Keras layout), the model's "
                    f"{var_path!r} has {want}"
                )
                continue
            raise WeightsMismatchError(
                f"{path}: shape mismatch for checkpoint key {item.key!r} -> model weight {var_path!r} "
                f"(layer {var_path.split('/')[0]!r}): checkpoint {tuple(value.shape)} (in Keras layout) "
                f"vs model {want}."
            )
        assignments.append((var, item))

    for item in converted:
        if item.path in variables:
            continue
        if item.group == HEAD:
            report.skipped.append((item.key, "the model has no classifier (include_top=False)"))
        elif item.group == HEAD_NORM:
            report.skipped.append((item.key, "the model has no head norm (pooling=None)"))
        else:
            raise WeightsMismatchError(
                f"{path}: checkpoint key {item.key!r} (-> {item.path!r}) has no weight in model "
                f"{model.name!r} (unexpected key: wrong depths, layer scale or architecture?)."
            )

    if head_problems and skip_mismatched_head is None:
        _refuse_default_head_of_other_size(variables, converted, path)
    if head_problems:
        if skip_mismatched_head is False:
            raise WeightsMismatchError(f"{path}: classifier head does not fit: {'; '.join(head_problems)}.")
        assignments = [(v, i) for v, i in assignments if i.group != HEAD]
        head_paths = [p for p in variables if p.startswith("head_fc/")]
        report.kept_fresh.extend(head_paths)
        report.skipped.extend((i.key, "classifier size differs from the model's") for i in converted
                              if i.group == HEAD and i.path in variables)
        report.notes.append(
            "Kept the model's freshly initialised classifier head_fc (" + "; ".join(head_problems) + ")."
        )

    for var, item in assignments:
        var.assign(np.asarray(item.value, dtype=var.dtype))
        report.loaded.append(var.path)
    report.head_loaded = any(i.group == HEAD for _, i in assignments)
    if report.skipped and not head_problems:
        report.notes.append("Not loaded: " + ", ".join(k for k, _ in report.skipped) + ".")
    logger.info("%s", report)
    return report


def _refuse_default_head_of_other_size(variables, converted, path):
    """A model left at the default 1000 classes whose checkpoint head has another size: the user
    wanted the checkpoint's classifier (a head for fine-tuning is asked for with num_classes)."""
    bias = variables.get("head_fc/bias")
    model_classes = int(bias.shape[0]) if bias is not None else None
    sizes = {int(i.value.shape[-1]) for i in converted if i.group == HEAD and i.path == "head_fc/bias"}
    if model_classes != DEFAULT_NUM_CLASSES or not sizes or sizes == {model_classes}:
        return
    classes = sizes.pop()
    raise WeightsMismatchError(
        f"{path}: the checkpoint's classifier has {classes} classes, the model's {model_classes} (the "
        f"default). Build the model with num_classes={classes} to use the checkpoint's head, or ask "
        "for a head to fine-tune with num_classes=N (N != 1000), include_top=False, or "
        "load_weights(..., skip_mismatched_head=True).")


def _few(keys, n=8):
    return ", ".join(repr(k) for k in keys[:n]) + (f", ... ({len(keys)} in all)" if len(keys) > n else "")
