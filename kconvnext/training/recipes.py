"""Finding and reading recipe files: recipes/<dataset>_<family>.yaml by default.

A recipe file may start with `extends: OTHER.yaml` (relative to its folder) to reuse a base recipe,
e.g. the fine-tuning recipe extends the ImageNet one; only the differences are written down.

A recipe may also hold `families: {convnext: {base_lr: ...}, ...}`: values for one model family,
applied over the recipe (and under --set) when a model of that family is trained. Why: `compare`
runs one recipe for every model, and a LayerNorm ConvNeXt and a BatchNorm ResNet do not share a
usable learning rate on small data sets (docs/results.md, section 2).
"""
import os
import sys
from pathlib import Path

import yaml

from kconvnext.training.config import config_from_dict, merge

#: The recipe name prefix of each data set (kconvnext.data.sources.DATASETS; a test keeps them equal):
#: catsdogs and cifar10 ship a recipe per family; "folder" uses catsdogs'.
DATASET_RECIPES = {"catsdogs": "catsdogs", "cifar10": "cifar10", "folder": "catsdogs"}


def recipes_dir():
    """$KCONVNEXT_RECIPES, else recipes/ at the repository root (a checkout or editable install),
    else the copy a regular `pip install` puts in <prefix>/share/kconvnext/recipes (setup.py)."""
    env = os.environ.get("KCONVNEXT_RECIPES")
    if env:
        return Path(env)
    beside = Path(__file__).resolve().parents[2] / "recipes"
    if beside.is_dir():
        return beside
    return Path(sys.prefix) / "share" / "kconvnext" / "recipes"


def list_recipes():
    d = recipes_dir()
    return sorted(p.stem for p in d.glob("*.yaml")) if d.is_dir() else []


def default_recipe_path(dataset, family):
    key = DATASET_RECIPES.get(dataset, dataset)
    path = recipes_dir() / f"{key}_{family}.yaml"
    if not path.is_file():
        raise FileNotFoundError(
            f"No recipe for data set {dataset!r} and model family {family!r} at {path}; "
            f"pass --recipe FILE (shipped recipes: {', '.join(list_recipes()) or 'none found'})."
        )
    return path


def resolve_path(recipe):
    """A file path, or a shipped recipe's name ('imagenet_convnext')."""
    path = Path(recipe)
    if path.is_file():
        return path
    shipped = recipes_dir() / f"{recipe}.yaml"
    if shipped.is_file():
        return shipped
    raise FileNotFoundError(
        f"Recipe {recipe!r} not found (neither a file nor one of the shipped recipes: "
        f"{', '.join(list_recipes())})."
    )


def read_recipe_dict(path, _seen=()):
    """The raw mapping of a recipe file with its `extends:` chain merged in."""
    path = Path(path).resolve()
    if path in _seen:
        raise ValueError(f"{path}: `extends` loops back to itself.")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        raise ValueError(f"{path}: not valid YAML: {err}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a recipe must be a mapping of keys to values.")
    parent = data.pop("extends", None)
    if parent:
        base = read_recipe_dict(path.parent / parent, (*_seen, path))
        data = merge(base, data)
    # Validate this file on its own so errors name the file that holds the bad key.
    families = data.get("families") or {}
    if families and (not isinstance(families, dict) or set(families) - set(_model_families())):
        raise ValueError(f"{path}: `families` maps a model family ({', '.join(_model_families())}) to the values "
                         f"that differ for it; got {families!r}.")
    recipe = {k: v for k, v in data.items() if k != "families"}
    config_from_dict(recipe, where=str(path))
    for family, values in families.items():
        config_from_dict(merge(recipe, values or {}), where=f"{path}: families: {family}")
    return data


def _model_families():
    """The families of the registered models (the names a `families:` section may use)."""
    from kconvnext.models import get_spec, list_models

    return sorted({get_spec(name).family for name in list_models()})


def for_family(data, family):
    """The recipe mapping with its `families:` values for `family` merged in (and the section gone)."""
    data = dict(data)
    families = data.pop("families", None) or {}
    return merge(data, families.get(family) or {}) if family else data


def load_recipe(recipe=None, *, dataset=None, family=None, overrides=None):
    """Resolve recipe file (explicit, or the default for dataset/family) + overrides -> TrainConfig."""
    path = resolve_path(recipe) if recipe else default_recipe_path(dataset, family)
    data = for_family(read_recipe_dict(path), family)
    if overrides:
        data = merge(data, overrides)
    return config_from_dict(data, where=f"{path} (with command-line overrides)"), path
