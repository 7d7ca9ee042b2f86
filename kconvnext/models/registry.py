"""Name -> builder registry (as timm's): one entry per published variant."""
import difflib
from dataclasses import dataclass, field


@dataclass(frozen=True)
class ModelSpec:
    name: str
    family: str  # "convnext" | "resnet" | "resnext": selects the default recipe.
    builder: object
    arch: dict = field(default_factory=dict)
    default_size: int = 224
    reference: str = ""


_REGISTRY = {}


def register(name, family, builder, reference="", **arch):
    if name in _REGISTRY:
        raise ValueError(f"Model {name!r} is registered twice.")
    _REGISTRY[name] = ModelSpec(name, family, builder, arch, reference=reference)


def list_models(family=None):
    return [n for n, s in _REGISTRY.items() if family is None or s.family == family]


def unknown_name_error(kind, name, valid):
    close = difflib.get_close_matches(str(name), list(valid), n=3, cutoff=0.5)
    hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    return ValueError(f"Unknown {kind} {name!r}.{hint} Valid {kind}s: {', '.join(valid)}.")


def get_spec(name):
    if name not in _REGISTRY:
        raise unknown_name_error("model", name, list(_REGISTRY))
    return _REGISTRY[name]


def create_model(name, weights=None, **kwargs):
    """Build a registered model by name; kwargs override its builder's defaults.

    weights: path to a timm / torchvision / official ConvNeXt checkpoint (`.safetensors` or
    `.pth`) loaded with `kconvnext.weights.load_weights` (a head of another size is kept fresh).
    """
    spec = get_spec(name)
    model = spec.builder(name=name, **{**spec.arch, **kwargs})
    if weights is not None:
        from kconvnext.weights import load_weights  # late: keeps the registry import-cycle free

        load_weights(model, weights)
    return model
