"""Layer-wise lr decay (BEiT / ConvNeXt fine-tuning): parameters near the input learn slower,
lr_scale = decay ** (num_layers - layer_id). Scaling *gradients* would not work (Adam is invariant to
gradient scale), so `update_step` scales the learning rate per variable, and the decoupled weight
decay uses that same scaled lr (torch AdamW with the official parameter groups: p -= lr_group * wd * p);
Keras' own decay would use the unscaled lr, decaying the stem decay**-depth times too much.
"""
import re

from kconvnext.models import get_spec


def _layer_ids(model, family):
    """Top-level layer name -> depth id (0 = stem ... max = head), grouped as the official code."""
    names = [layer.name for layer in model.layers]
    ids = {}
    if family == "convnext":
        blocks = [re.match(r"stages_(\d+)_blocks_(\d+)$", n) for n in names]
        depth2 = 1 + max([int(m.group(2)) for m in blocks if m and m.group(1) == "2"], default=0)
        last = 3 + (depth2 - 1) // 3 + 1  # the official grouping: stage 2 in groups of 3 blocks
        for n in names:
            m = re.match(r"stages_(\d+)_blocks_(\d+)$", n)
            d = re.match(r"stages_(\d+)_downsample$", n)
            if n == "stem":
                ids[n] = 0
            elif d:
                s = int(d.group(1))
                ids[n] = s + 1 if s in (1, 2) else last
            elif m:
                s, b = int(m.group(1)), int(m.group(2))
                ids[n] = s + 1 if s < 2 else (3 + b // 3 if s == 2 else last)
        head = last + 1
    else:  # resnet / resnext: stem = 0, layer{i}_* = i, head = 5
        for n in names:
            m = re.match(r"layer(\d+)_\d+$", n)
            if n in ("conv1", "bn1", "conv1_pad") or n.startswith("conv1"):
                ids[n] = 0
            elif m:
                ids[n] = int(m.group(1))
        head = 5
    for n in names:
        ids.setdefault(n, head)
    return ids, head


def layer_decay_scales(model, model_name, decay):
    """{top-level layer name: decay ** (head_id - layer_id)} for layer-wise lr decay."""
    ids, head = _layer_ids(model, get_spec(model_name).family)
    return {n: float(decay ** (head - i)) for n, i in ids.items()}
