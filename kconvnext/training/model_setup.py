"""Building and compiling the model a recipe describes (fresh, fine-tuned, or resumed)."""
import inspect

import keras

from kconvnext.models import create_model, get_spec
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


def compile_model(model, name, config, steps_per_epoch, num_classes):
    """A plain keras compile: AdamW(+EMA), CategoricalCrossentropy(from_logits, smoothing), accuracy."""
    optimizer = build_optimizer(config, model, name, schedule_for(config, steps_per_epoch))
    metrics = [keras.metrics.CategoricalAccuracy(name="accuracy")]
    if num_classes > 5:
        metrics.append(keras.metrics.TopKCategoricalAccuracy(k=5, name="top5"))
    model.compile(
        optimizer=optimizer,
        loss=keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=config.label_smoothing),
        metrics=metrics, steps_per_execution=config.steps_per_execution,
        jit_compile="auto" if config.jit_compile is None else config.jit_compile,
    )
    return model
