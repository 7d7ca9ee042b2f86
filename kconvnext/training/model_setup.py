"""Building and compiling the model a recipe describes (fresh, fine-tuned, or resumed)."""
import inspect
import math

import keras

from kconvnext.applications import create_model
from kconvnext.models import get_spec
from kconvnext.training.optimizer import build_optimizer
from kconvnext.training.schedules import WarmupCosine


def model_kwargs(name, config, num_classes, normalization):
    """create_model kwargs from the recipe, keeping only options this family's builder has
    (layer scale and head init scale exist only for ConvNeXt)."""
    spec = get_spec(name)
    wanted = {
        "num_classes": num_classes,
        "input_shape": (config.image_size, config.image_size, 3),
        "small_input": config.small_input,
        "normalization": normalization,
        "drop_path_rate": config.drop_path_for(spec.name),  # (a timm alias finds its rate too)
        "layer_scale_init": config.layer_scale_init,
        "head_init_scale": config.head_init_scale,
    }
    accepted = inspect.signature(spec.builder).parameters
    kwargs = {k: v for k, v in wanted.items() if k in accepted}
    for key, value in config.model.items():
        if key not in accepted:
            raise ValueError(
                f"recipe key model.{key}: {name} ({spec.family}) has no option {key!r}; "
                f"valid: {', '.join(p for p in accepted if p not in ('name',))}."
            )
        kwargs[key] = tuple(value) if isinstance(value, list) else value
    return kwargs


def build_model(name, config, num_classes, normalization):
    kwargs = model_kwargs(name, config, num_classes, normalization)
    if config.pretrained:
        kwargs["weights"] = config.pretrained
        try:
            return create_model(name, **kwargs)
        except TypeError as err:
            raise ValueError(
                f"pretrained={config.pretrained!r}: this kconvnext cannot load weights ({err})."
            ) from None
    return create_model(name, **kwargs)


def schedule_for(config, steps_per_epoch):
    return WarmupCosine(
        peak_lr=config.effective_lr(), total_steps=max(1, steps_per_epoch * config.epochs),
        warmup_steps=int(round(config.warmup_epochs * steps_per_epoch)), min_lr=config.min_lr,
    )


def loss_label_smoothing(config, bundle):
    """The smoothing the training loss applies: the recipe's, unless the training targets already
    carry it (DataBundle.label_smoothing: folded in as timm's Mixup does; the trainer's own data
    always). Then the loss is plain cross-entropy on soft targets, as timm's SoftTargetCrossEntropy,
    and the validation loss (same compiled loss, one-hot targets) is plain cross-entropy, as timm's."""
    carried = float(getattr(bundle, "label_smoothing", 0.0) or 0.0)
    if not carried:
        return float(config.label_smoothing)
    if not math.isclose(carried, config.label_smoothing):
        raise ValueError(f"The data's training targets carry label smoothing {carried:g} but the recipe's "
                         f"label_smoothing is {config.label_smoothing:g}: load the data with "
                         "kconvnext.data.load(..., label_smoothing=<the recipe's>) (or 0: the loss then smooths).")
    return 0.0


def compile_model(model, name, config, steps_per_epoch, num_classes, label_smoothing, optimizer=None):
    """A plain keras compile: AdamW(+EMA), CategoricalCrossentropy(from_logits, `label_smoothing`:
    loss_label_smoothing's), accuracy. optimizer: keep this one (a resumed checkpoint's) instead."""
    optimizer = optimizer or build_optimizer(config, model, name, schedule_for(config, steps_per_epoch))
    metrics = [keras.metrics.CategoricalAccuracy(name="accuracy")]
    if num_classes > 5:
        metrics.append(keras.metrics.TopKCategoricalAccuracy(k=5, name="top5"))
    model.compile(
        optimizer=optimizer,
        loss=keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=label_smoothing),
        metrics=metrics, steps_per_execution=config.steps_per_execution,
        jit_compile="auto" if config.jit_compile is None else config.jit_compile,
    )
    return model


def compiled_label_smoothing(model):
    """The label smoothing of a compiled (or loaded) model's loss; None if it is not ours."""
    loss = getattr(model, "loss", None)
    return loss.get_config().get("label_smoothing") if isinstance(loss, keras.losses.CategoricalCrossentropy) else None


def match_loss_smoothing(model, name, config, steps_per_epoch, num_classes, label_smoothing):
    """A resumed checkpoint whose loss smooths differently (one saved before the smoothing moved into
    the targets would smooth twice) is recompiled with the same optimizer (its state and step count
    kept); True if it was."""
    current = compiled_label_smoothing(model)
    if current is not None and math.isclose(current, label_smoothing, abs_tol=1e-12):
        return False
    compile_model(model, name, config, steps_per_epoch, num_classes, label_smoothing, optimizer=model.optimizer)
    return True
