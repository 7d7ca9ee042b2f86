"""What a training run checks before it reads data or creates its run folder, and what it says
about time before the first epoch.

Why a module of its own: a failed start must leave nothing behind (no half-made run folder) and
fail in seconds, so the checks that need no data run first; and on a CPU the first question is
"how long will this take": the answer is printed before the first step, not minutes into it.
"""
import shlex
from pathlib import Path

from kconvnext.training.callbacks import _fmt
from kconvnext.training.recipes import DATASET_RECIPES, list_recipes, load_recipe

# A small model per family that learns in minutes on a CPU (README "Which model?", docs/results.md);
# ResNeXt has none (its smallest, resnext50_32x4d, gets through 0.06 epoch of CIFAR-10 in 15 minutes).
SMALL_MODELS = {"convnext": "convnext_atto", "resnet": "resnet18", "resnext": "resnet18"}
QUICK_BUDGET_MINUTES = 10
# The measured from-scratch start per data set (model, recipe; docs/results.md section 6); its budget
# is the recipe's. Other data sets get a small model of the family for QUICK_BUDGET_MINUTES.
SCRATCH_STARTS = {"catsdogs": ("resnet18", "catsdogs_scratch")}


def check_start(model, family, dataset, config, data_dir=None):
    """The pretrained weights of the recipe exist (a file) or are known and fetched (a preset tag):
    a missing file, an unknown tag or no network fails here, before any data is read or written."""
    if not config.pretrained:
        return
    from kconvnext.weights.presets import is_preset_name

    if not is_preset_name(config.pretrained):
        if not Path(config.pretrained).is_file():
            raise FileNotFoundError(
                f"pretrained={config.pretrained!r}: no such checkpoint file; pass an existing .safetensors/.pth "
                f"file or a preset tag (`cli.py models --weights` lists them), e.g. --set pretrained=imagenet.")
        return
    _fetch_preset(model, family, dataset, config, data_dir)


def _fetch_preset(model, family, dataset, config, data_dir):
    """Download (or find cached) the preset's checkpoint; offline, say the two ways forward: the
    file put there by hand, or a from-scratch run that finishes in minutes on this machine."""
    from kconvnext.models import get_spec
    from kconvnext.weights import WeightsUnavailableError, fetch, get_preset

    from kconvnext.training.model_setup import model_kwargs
    from kconvnext.weights.pretrained import converted_cache_path

    preset = get_preset(get_spec(model).name, config.pretrained)
    # Converted once already: the checkpoint itself is never read again (it may have been deleted).
    # num_classes and normalization are head options: they do not change the cache key.
    if converted_cache_path(preset, model_kwargs(model, config, preset.num_classes, None)).is_file():
        return
    try:
        fetch(preset)
    except WeightsUnavailableError as err:
        raise WeightsUnavailableError(
            f"{err}\nIn `cli.py train`: --set pretrained=/path/to/{preset.filename}, or train from scratch "
            f"within a budget (minutes on a CPU, docs/results.md 'From scratch against the textbook'):\n  "
            f"{quick_start_command(dataset, family, data_dir)}") from None


def quick_start_command(dataset, family, data_dir=None, minutes=QUICK_BUDGET_MINUTES):
    """A `cli.py train` command that trains a model from scratch within a budget: the measured start
    of the data set (SCRATCH_STARTS, with its recipe's budget), else a small model for `minutes`."""
    key = DATASET_RECIPES.get(dataset, dataset)
    shipped = list_recipes()
    model, recipe = SCRATCH_STARTS.get(key, (None, None))
    if recipe in shipped:
        minutes = load_recipe(recipe)[0].budget_minutes or minutes
    else:
        recipe = next((r for r in (f"{key}_small", f"{key}_{family}_scratch") if r in shipped), None)
        model = SMALL_MODELS.get(family, "convnext_atto")
    argv = ["python", "cli.py", "train", dataset, model]
    argv += (["--recipe", recipe] if recipe else []) + ["--budget-minutes", f"{minutes:g}"]
    argv += ["--data-dir", str(data_dir)] if data_dir else []
    return shlex.join(argv)


def estimate_line(config, plan, steps, initial_epoch, state):
    """How long the run will take, before its first step: the budget plan's, else a speed this run
    folder measured before (a resumed run), else when the estimate will come."""
    epochs_left = config.epochs - initial_epoch
    if epochs_left <= 0:
        return None
    if plan is not None:
        per_epoch = plan.steps_per_epoch * config.batch_size / plan.images_per_sec
        return (f"estimate  ~{_fmt(per_epoch)} per epoch (+validation), ~{_fmt(per_epoch * epochs_left)} for "
                f"{epochs_left} epoch(s), from the budget's measured speed")
    speed = state.get("train_images_per_sec")
    if speed:
        per_epoch = steps * config.batch_size / speed
        return (f"estimate  ~{_fmt(per_epoch)} per epoch (+validation), ~{_fmt(per_epoch * epochs_left)} for "
                f"{epochs_left} epoch(s), at the {speed:.1f} img/s this run measured before")
    return ("estimate  [estimate] comes after the first few steps (this machine's speed, measured); "
            "to set the time instead of epochs: --budget-minutes MIN")
