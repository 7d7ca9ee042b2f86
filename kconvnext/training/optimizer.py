"""AdamW as the ConvNeXt recipe uses it: no decay on biases/norms/layer-scale, optional layer-wise lr.

Why a subclass rather than `AdamW(...).exclude_from_weight_decay(var_names=...)` on a stock
optimizer: the exclusion is not part of the optimizer's config, so a `.keras` checkpoint reloaded
for `--resume` would silently decay every variable again. Here the exclusion names and the
per-layer lr scales are constructor arguments, saved with the checkpoint and re-applied on load.

Exclusion matches `variable.name` (Keras' rule), which for our layers is the last path component:
"bias" (every bias), "gamma"/"beta" (LayerNorm, BatchNorm and LayerScale's `gamma`).

Layer-wise lr decay (BEiT / ConvNeXt fine-tuning): parameters near the input learn slower,
lr_scale = decay ** (num_layers - layer_id). Scaling *gradients* would not work (Adam is invariant to
gradient scale), so `update_step` scales the learning rate per variable. Decoupled weight decay is
applied by Keras with the unscaled lr (it is 1e-8 in the fine-tuning recipe; negligible).
"""
import re

import keras

from kconvnext.models import get_spec


@keras.saving.register_keras_serializable(package="kconvnext")
class RecipeAdamW(keras.optimizers.AdamW):
    """keras AdamW + persistent weight-decay exclusions + per-layer lr scales.

    lr_scales: {top-level layer name (first component of variable.path): scale}; missing -> 1.0.
    """

    def __init__(self, no_weight_decay=("bias", "gamma", "beta"), lr_scales=None, **kwargs):
        super().__init__(**kwargs)
        self.no_weight_decay = list(no_weight_decay or [])
        self.lr_scales = dict(lr_scales or {})
        if self.no_weight_decay:
            self.exclude_from_weight_decay(var_names=self.no_weight_decay)

    def build(self, variables):
        super().build(variables)
        self._lr_scale_list = [self.lr_scales.get(v.path.split("/")[0], 1.0) for v in variables]

    def update_step(self, gradient, variable, learning_rate):
        if self.lr_scales:
            scale = self._lr_scale_list[self._get_variable_index(variable)]
            if scale != 1.0:
                learning_rate = learning_rate * scale
        return super().update_step(gradient, variable, learning_rate)

    def get_config(self):
        return {**super().get_config(), "no_weight_decay": self.no_weight_decay,
                "lr_scales": self.lr_scales}


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


def build_optimizer(config, model, model_name, learning_rate):
    """The recipe's optimizer for `model` (built inside the strategy scope by the caller)."""
    scales = layer_decay_scales(model, model_name, config.layer_decay) if config.layer_decay else None
    return RecipeAdamW(
        learning_rate=learning_rate, weight_decay=config.weight_decay, beta_1=config.beta_1,
        beta_2=config.beta_2, epsilon=config.epsilon, global_clipnorm=config.global_clipnorm,
        use_ema=config.ema, ema_momentum=config.ema_momentum,
        no_weight_decay=config.no_weight_decay, lr_scales=scales,
    )
