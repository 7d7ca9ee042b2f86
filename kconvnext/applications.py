"""kconvnext.create_model and the per-variant builders (kconvnext.convnext_t, ...): build, then load
weights, as keras.applications' functions do.

This composes the two floors below it: models/ builds architectures and knows nothing of
downloads; weights/ converts and fetches checkpoints and builds its reference models through
models/. Keeping "build + load" here is what keeps those two free of each other.
"""
from kconvnext.models.factory import (ARGUMENT_DOCS, build_architecture, model_parameters, model_signature,
                                      resolve_arguments)
from kconvnext.models.registry import get_spec, list_models
from kconvnext.weights import load_weights
from kconvnext.weights.presets import get_preset, is_preset_name
from kconvnext.weights.pretrained import load_pretrained


def _check_preset(model_name, weights):
    """An unknown preset tag is an error before the model is built (the message lists the model's tags)."""
    if is_preset_name(weights):
        get_preset(model_name, str(weights))


def create_model(name, /, weights=None, **kwargs):
    """Build a registered model by name; kwargs override its builder's defaults.

    kwargs: the arguments of kconvnext.<name> (see help(kconvnext.convnext_t)), keras.applications'
    names included (classes, input_tensor, ...); `name=` names the keras.Model, the registered
    name picks the architecture. An unknown keyword is a ValueError naming the closest valid one.
    weights: None (random init), a preset tag such as "imagenet" (downloaded once, hash-checked
    and cached; see kconvnext.weights.presets and `cli.py models` for each model's tags), or the
    path of a timm / torchvision / official ConvNeXt checkpoint (`.safetensors` or `.pth`). A head
    of another size (e.g. num_classes=2) keeps its fresh initialisation.
    """
    spec = get_spec(name)
    kwargs = resolve_arguments(name, kwargs)
    if weights is not None:
        _check_preset(spec.name, weights)
    model = build_architecture(name, **kwargs)
    if weights is not None:
        if is_preset_name(weights):
            build_kwargs = {k: v for k, v in kwargs.items() if k != "input_tensor"}
            load_pretrained(model, spec.name, str(weights), build_kwargs=build_kwargs)
        else:
            load_weights(model, weights)
    return model


def _docstring(name, parameters):
    spec = get_spec(name)
    title = name if spec.name == name else f"{name} (= {spec.name})"
    lines = [f"{title}: a {spec.family} model ({spec.reference}) as a plain functional keras.Model, "
             "[0, 255] pixels in, logits out.", "",
             f'Same as kconvnext.create_model("{name}", **kwargs).', "", "Args:"]
    lines += [f"    {p.name}={p.default!r}: {ARGUMENT_DOCS.get(p.name, '')}".rstrip(": ") for p in parameters]
    return "\n".join(lines)


def make_builder(name):
    """kconvnext.<name>(...): create_model(name, ...) with `name`'s real signature and docs."""

    def build(**kwargs):
        return create_model(name, **kwargs)

    parameters = model_parameters(name)
    build.__name__ = build.__qualname__ = name
    build.__module__ = "kconvnext"
    build.__signature__ = model_signature(name)
    build.__doc__ = _docstring(name, parameters)
    return build


def builders():
    """{name: builder} for every registered model and alias."""
    return {name: make_builder(name) for name in list_models(include_aliases=True)}
