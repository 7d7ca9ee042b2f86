"""The per-variant signatures (kconvnext.convnext_t, ...) and building a registered model with random
weights; kconvnext/applications.py adds weights on top.

Each builder's signature is generated from its family builder's (build_convnext, build_resnet,
build_roadmap) with the variant's architecture as defaults, plus keras.applications' argument
names (`weights`, `classes`), so help(), inspect.signature and IDEs show what it takes. Unknown
keywords are refused with a did-you-mean (kimm and keras-hub drop them silently).
"""
import inspect

from kconvnext.models.registry import get_spec, unknown_name_error

# keras.applications' arguments first, in its order; then the rest of the family builder's.
_FIRST = ("include_top", "weights", "input_tensor", "input_shape", "pooling", "classes", "num_classes",
          "classifier_activation")
_EXTRA_DEFAULTS = {"weights": None, "classes": None}

ARGUMENT_DOCS = {
    "include_top": "the pooled classifier head (False: features, see pooling).",
    "weights": 'None (random init), a preset tag such as "imagenet" (`cli.py models --weights` lists '
               "them), or a timm / torchvision / official ConvNeXt checkpoint file (.safetensors, .pth).",
    "input_tensor": "a Keras tensor (e.g. keras.Input(...) or a layer's output) to build the model on.",
    "input_shape": "(height, width, channels), 3 or 1 channels of [0, 255] pixels; None: (224, 224, 3) "
                   "or input_tensor's shape.",
    "pooling": 'with include_top=False: None (the last feature map), "avg" or "max".',
    "classes": "keras.applications' name for num_classes.",
    "num_classes": "outputs of the classifier (include_top=True).",
    "classifier_activation": 'None gives logits (losses take from_logits=True); "softmax" probabilities.',
    "name": "the keras.Model's name (the architecture is the variant's whatever the name).",
    "drop_path_rate": "stochastic depth, rising linearly over the blocks to this rate.",
    "layer_scale_init": "initial value of the per-channel residual scale (ConvNeXt blocks).",
    "small_input": "a stem that keeps 32 px images' resolution (CIFAR).",
    "stem_patch_size": "the patchify stem's patch size (default 4, 2 with small_input).",
    "normalization": 'in-model input normalisation: "imagenet" mean/std, another preset of '
                     "kconvnext.preprocessing, or None for none.",
    "head_dropout": "dropout before the classifier.",
    "head_init_scale": "scales the classifier's initial weights (ConvNeXt fine-tuning).",
    "zero_init_last": "zero each residual block's last BatchNorm scale (timm's default).",
    "grouped_conv_implementation": 'grouped convs: None (automatic), "native" or "split" (per-group convs).',
    "depths": "blocks per stage.",
    "dims": "channels per stage.",
    "widths": "ResNet stage widths (torchvision's planes; the stem has the first).",
    "block": '"basic" or "bottleneck" residual blocks.',
    "groups": "groups of the 3x3 conv (ResNeXt cardinality).",
    "base_width": "width per group (ResNeXt).",
    "step": "the roadmap step (0-11) the model is.",
    "kernel_size": "the depthwise kernel size (roadmap steps 3-10).",
}


def model_parameters(name):
    """The keyword-only parameters of builder `name`: its family builder's, with the variant's
    architecture and name as defaults, plus `weights` and `classes`."""
    spec = get_spec(name)
    own = inspect.signature(spec.builder).parameters
    defaults = {**{k: p.default for k, p in own.items()}, **spec.arch, **_EXTRA_DEFAULTS, "name": name}
    order = [k for k in _FIRST if k in defaults] + [k for k in own if k not in _FIRST and k != "name"] + ["name"]
    return [inspect.Parameter(k, inspect.Parameter.KEYWORD_ONLY, default=defaults[k]) for k in order]


def model_signature(name):
    return inspect.Signature(model_parameters(name), return_annotation="keras.Model")


def resolve_arguments(name, kwargs):
    """kwargs checked against builder `name`'s parameters, keras.applications' names resolved."""
    valid = [p.name for p in model_parameters(name)]
    for key in kwargs:
        if key not in valid:
            raise unknown_name_error(f"{name} argument", key, valid)
    kwargs = dict(kwargs)
    classes = kwargs.pop("classes", None)
    if classes is not None:
        if kwargs.get("num_classes", classes) != classes:
            raise ValueError(f"{name}: classes={classes!r} and num_classes={kwargs['num_classes']!r} disagree; "
                             "give one of them (classes is keras.applications' name for num_classes).")
        kwargs["num_classes"] = classes
    return kwargs


def build_architecture(name, /, **kwargs):
    """Registered model `name` with random weights; kwargs as its builder's, keras.applications'
    names included (kconvnext.create_model adds `weights=`: loading belongs to the layer above,
    so that weights/ can build models without models/ knowing about downloads)."""
    if kwargs.get("weights") is not None:
        raise ValueError(f"{name}: build_architecture builds random weights; use kconvnext.create_model"
                         f"({name!r}, weights=...) to load {kwargs['weights']!r}.")
    kwargs.pop("weights", None)
    spec = get_spec(name)
    return spec.builder(**{**spec.arch, "name": name, **resolve_arguments(name, kwargs)})
