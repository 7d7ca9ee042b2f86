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
_ALIASES = {}  # other names for a registered model (timm's long names): alias -> name


def register(name, family, builder, reference="", **arch):
    if name in _REGISTRY or name in _ALIASES:
        raise ValueError(f"Model {name!r} is registered twice.")
    _REGISTRY[name] = ModelSpec(name, family, builder, arch, reference=reference)


def register_alias(alias, name):
    """Let `alias` (e.g. timm's "convnext_tiny") name the registered model `name` ("convnext_t")."""
    if alias in _REGISTRY or alias in _ALIASES:
        raise ValueError(f"Model name {alias!r} is registered twice.")
    if name not in _REGISTRY:
        raise ValueError(f"Alias {alias!r}: no registered model {name!r}.")
    _ALIASES[alias] = name


def list_models(family=None, include_aliases=False):
    names = [n for n, s in _REGISTRY.items() if family is None or s.family == family]
    if include_aliases:
        names += [a for a, n in _ALIASES.items() if family is None or _REGISTRY[n].family == family]
    return names


def unknown_name_error(kind, name, valid):
    close = difflib.get_close_matches(str(name), list(valid), n=3, cutoff=0.5)
    hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    return ValueError(f"Unknown {kind} {name!r}.{hint} Valid {kind}s: {', '.join(valid)}.")


def get_spec(name):
    """The spec of a registered name or alias (spec.name is always the registered name)."""
    name = _ALIASES.get(name, name)
    if name not in _REGISTRY:
        raise unknown_name_error("model", name, list(_REGISTRY) + list(_ALIASES))
    return _REGISTRY[name]
