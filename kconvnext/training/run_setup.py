"""Setting a run up: its folder's name, the recipe overrides, the data, the budget plan and the
files that describe the run (recipe.yaml, skipped_files.txt, run.json)."""
import tempfile
import time
from pathlib import Path

import keras
import yaml

from kconvnext.files import save_model_atomic, write_text_atomic
from kconvnext.run_folder import RunFolder
from kconvnext.training.budget import measure_costs, plan_budget
from kconvnext.training.config import merge, parse_set
from kconvnext.training.distribute import tensorflow_backend
from kconvnext.training.model_setup import build_model, compile_model, loss_label_smoothing
from kconvnext.training.selection import selected_on



def default_run_dir(dataset, model):
    return Path("runs") / f"{dataset}-{model}"


def normalize_overrides(overrides):
    """Python kwargs and --set items -> one nested dict; `a__b=1` and {'a.b': 1} mean a.b."""
    out = {}
    for key, value in (overrides or {}).items():
        key = key.replace("__", ".")
        if "." in key:
            out = merge(out, parse_set([f"{key}={yaml.safe_dump(value, default_flow_style=True).strip()}"]))
        else:
            out = merge(out, {key: value})
    return out


def preset_eval_transform(model_name, config):
    """The eval transform a pretrained preset was published with, at the recipe's image size, for a
    run that starts from a preset tag (validation, checkpoint selection, eval/predict/export of the
    run); None otherwise (the recipe's bilinear crop)."""
    from kconvnext.weights.presets import is_preset_name, preprocessing_for

    if not config.pretrained or not is_preset_name(config.pretrained):
        return None
    return preprocessing_for(model_name, config.pretrained).at_size(config.image_size)


def load_data(dataset, config, data_dir, run_dir, seed, print_fn=print, model_name=None):
    """kconvnext.data.load with the recipe's image size, batch, augmentation and limit (validation
    preprocessed as the pretrained preset was published, if any); on a backend other than TensorFlow
    the numpy/PyDataset equivalent (kconvnext/data/portable.py)."""
    extra = {}
    if tensorflow_backend():
        from kconvnext.data import load

        extra["eval_transform"] = preset_eval_transform(model_name, config) if model_name else None
    else:
        from kconvnext.data.portable import load, unsupported

        missing = unsupported(config.augment)
        if missing:
            print_fn(f"note: on the {keras.backend.backend()} backend the data pipeline is numpy: "
                     f"{', '.join(missing)} from the recipe are NOT applied (they need tf.data).")
    return load(
        dataset, data_dir=data_dir, image_size=config.image_size, batch_size=config.batch_size,
        seed=seed, augment=config.augment.pipeline_dict(), validation_fraction=config.validation_fraction,
        selection_fraction=config.selection_fraction, label_smoothing=config.label_smoothing,
        limit=config.limit, output_dir=str(run_dir), **extra,
    )


def transform_info(model_name, config, bundle):
    """run.json's eval_transform when validation used a preset's (image files on TensorFlow)."""
    transform = preset_eval_transform(model_name, config)
    if transform is None or getattr(bundle, "arrays", False) or not tensorflow_backend():
        return {}
    return {"eval_transform": transform.to_dict()}


def run_info(dataset, model_name, config, bundle, recipe_path, precision, extra=None, data_dir=None):
    """run.json: what export / eval / predict need to use the checkpoints without the recipe (and
    where the data came from: `cli.py eval RUN` evaluates on it without being told again)."""
    return {
        "model": model_name, "dataset": dataset, "data_dir": str(Path(data_dir).resolve()) if data_dir else None,
        "class_names": list(bundle.class_names),
        "num_classes": int(bundle.num_classes), "image_size": int(config.image_size),
        "eval_crop_ratio": float(config.augment.eval_crop_ratio),
        "normalization": bundle.normalization, "small_input": bool(config.small_input),
        "recipe": str(recipe_path), "precision": precision,
        "train_count": int(bundle.train_count), "validation_count": int(bundle.validation_count),
        "selection_count": int(getattr(bundle, "selection_count", 0) or 0), "selected_on": selected_on(bundle),
        **transform_info(model_name, config, bundle), **(extra or {}),
    }


def measure_budget(model, config, bundle, steps, started):
    """Time a throwaway copy of the model on a validation batch (so the training data stream, and
    with it the data order of an unbudgeted run, is untouched) and plan the budget, counting what
    the run spends outside training steps against it (budget.py)."""
    batch = next(iter(bundle.validation))

    def build():
        net = build_model(model, config, bundle.num_classes, bundle.normalization)
        return compile_model(net, model, config, steps, bundle.num_classes, loss_label_smoothing(config, bundle))

    with tempfile.TemporaryDirectory() as tmp:
        costs = measure_costs(build, batch, lambda net: save_model_atomic(net, Path(tmp) / "timing.keras"))
    monitored = getattr(bundle, "selection_count", 0) or bundle.validation_count
    # Every epoch: validation (raw and, with EMA, the EMA weights) and last.keras + best.keras.
    per_epoch = monitored * (2 if config.ema else 1) / costs.eval_images_per_sec + 2 * costs.save_seconds
    # Once: what has been spent so far, tracing, and the report (load best.keras, predict validation).
    report = costs.save_seconds + bundle.validation_count / costs.eval_images_per_sec
    once = time.time() - started + costs.trace_seconds + report
    return plan_budget(config.budget_minutes, costs.images_per_sec, config.batch_size, steps, config.warmup_epochs,
                       overhead_seconds=once, epoch_overhead_seconds=per_epoch, report_seconds=report)


def write_run_files(run_dir, config, recipe_path, overrides, bundle):
    RunFolder(run_dir).remove_partial_writes()  # before anything is written again
    header = f"# resolved recipe: {recipe_path}" + (f"\n# overrides: {overrides}" if overrides else "")
    write_text_atomic(RunFolder(run_dir).recipe_yaml,
                      header + "\n" + yaml.safe_dump(config.to_dict(), sort_keys=False))
    skipped = getattr(bundle, "skipped", None) or []
    write_text_atomic(RunFolder(run_dir).skipped_files,
                      "".join(f"{path}\t{reason}\n" for path, reason in skipped))
