"""The one-screen summaries printed at the start and the end of a run."""
from kconvnext.run_folder import RunFolder


def _aug_line(a, arrays=False):
    parts = []
    if a.random_resized_crop:
        parts.append("pad-and-crop" if arrays else f"random-resized-crop {tuple(a.crop_scale)}")
    if a.hflip:
        parts.append("flip")
    if a.randaugment:
        parts.append(f"RandAugment rand-m{a.randaugment_magnitude:g}-n{a.randaugment_num_ops}"
                     f"-mstd{a.randaugment_magnitude_std:g}-inc1 (timm's ops, each with p 0.5)")
    if a.mixup_alpha:
        parts.append(f"mixup {a.mixup_alpha:g}")
    if a.cutmix_alpha:
        parts.append(f"cutmix {a.cutmix_alpha:g}")
    if a.random_erasing:
        parts.append(f"erasing {a.random_erasing:g} (pixel noise)")
    return ", ".join(parts) or "none"


def _shown_path(path):
    """The recipe as the user finds it: relative to the working folder when it is inside it (a
    checkout, or a folder whose recipes/ links to the shipped ones), else the full path."""
    from pathlib import Path

    from kconvnext.training.recipes import recipes_dir

    path, cwd = Path(path).resolve(), Path.cwd()
    if path.is_relative_to(cwd.resolve()):
        return str(path.relative_to(cwd.resolve()))
    shipped = recipes_dir().resolve()
    if path.is_relative_to(shipped) and (cwd / "recipes").resolve() == shipped:
        return str(Path("recipes") / path.relative_to(shipped))
    return str(path)


def _recipe_line(recipe_path, family, overrides):
    """The recipe file, its values for this model family (a `families:` section) and --set overrides."""
    from kconvnext.training.recipes import read_recipe_dict

    own = (read_recipe_dict(recipe_path).get("families") or {}).get(family)
    return (f"recipe    {_shown_path(recipe_path)}" + (f"  for {family}: {own}" if own else "")
            + (f"  overrides: {overrides}" if overrides else ""))


def start_summary(*, model_name, family, params, config, recipe_path, overrides, bundle, run_dir,
                  strategy_kind, replicas, precision, initial_epoch, steps):
    c = config
    lr = (f"lr {c.effective_lr():.3g}" + ("" if c.lr is not None else
          f" (= {c.base_lr:g} x {c.batch_size}/{c.base_batch_size})"))
    skipped = len(getattr(bundle, "skipped", []) or [])
    lines = [
        "=" * 78,
        f"model     {model_name} ({family}), {params:,} params, {c.image_size}x{c.image_size} px"
        + (", small-input stem" if c.small_input else "") + (f", from {c.pretrained}" if c.pretrained else ""),
        f"data      {bundle.train_count} train / {bundle.validation_count} validation images"
        + (f" + {bundle.selection_count} held out of train to select the best epoch on"
           if getattr(bundle, "selection_count", 0) else "")
        + f", {bundle.num_classes} classes ({', '.join(bundle.class_names[:6])}"
        f"{', ...' if bundle.num_classes > 6 else ''}); {skipped} bad file(s) skipped",
        _recipe_line(recipe_path, family, overrides),
        f"          epochs {c.epochs} ({steps} steps each)" + (f", resuming after epoch {initial_epoch}" if initial_epoch else "")
        + f", batch {c.batch_size}, AdamW {lr}, warmup {c.warmup_epochs:g} ep, cosine to {c.min_lr:g}",
        f"          wd {c.weight_decay:g} (not on {'/'.join(c.no_weight_decay)})"
        + (f", layer decay {c.layer_decay:g}" if c.layer_decay else "")
        + (f", clipnorm {c.global_clipnorm:g}" if c.global_clipnorm else "")
        + f", label smoothing {c.label_smoothing:g}, drop path {c.drop_path_for(model_name):g}"
        + (f", EMA {c.ema_momentum:g}" if c.ema else ""),
        f"          augment: {_aug_line(c.augment, getattr(bundle, 'arrays', False))}",
        f"runtime   strategy {strategy_kind} ({replicas} replica(s)), precision {precision}",
        f"output    {run_dir}",
        "=" * 78,
    ]
    return "\n".join(lines)


def probe_summary(*, model_name, family, config, recipe_path, overrides, bundle, run_dir):
    c = config
    views = f" + {c.probe_views} augmented view(s) of each training image" if c.probe_views else ""
    lines = [
        "=" * 78,
        f"model     {model_name} ({family}), {c.image_size}x{c.image_size} px, backbone frozen, "
        f"weights {c.pretrained}",
        f"data      {bundle.train_count} train / {bundle.validation_count} validation images, "
        f"{bundle.num_classes} classes ({', '.join(bundle.class_names[:6])}"
        f"{', ...' if bundle.num_classes > 6 else ''}); {len(bundle.skipped or [])} bad file(s) skipped",
        _recipe_line(recipe_path, family, overrides),
        f"          linear probe: backbone features once per image (center crop{views}), then the head:",
        f"          epochs {c.epochs}, batch {c.batch_size}, AdamW lr {c.effective_lr():.3g}, warmup "
        f"{c.warmup_epochs:g} ep, cosine to {c.min_lr:g}, wd {c.weight_decay:g}, label smoothing {c.label_smoothing:g}",
        f"output    {run_dir}",
        "=" * 78,
    ]
    return "\n".join(lines)


def collapse_warning(report):
    """A classifier that answers one class for every validation image has learned nothing; on small
    data sets from scratch that is usually a learning rate too high for the model (seen with
    ConvNeXt on 2,000 cats-vs-dogs images), so say so instead of just reporting ~chance accuracy."""
    predicted = [sum(column) for column in zip(*report["confusion_matrix"])]
    if len(predicted) < 2 or sum(1 for n in predicted if n) != 1:
        return None
    name = report["class_names"][next(i for i, n in enumerate(predicted) if n)]
    return (f"warning   the best checkpoint predicts '{name}' for every validation image: it has not learned. "
            f"Try a lower learning rate (e.g. --set base_lr=... at a quarter of the recipe's) or check the labels.")


def end_summary(result):
    r = result
    lines = ["=" * 78, f"finished {r.epochs_completed} epoch(s) in {r.seconds / 60:.1f} min"]
    best = RunFolder(r.run_dir).best_checkpoint
    if r.selected_on is None and r.report:  # the linear probe: no selection, the last epoch is the model
        lines.append(f"validation accuracy {r.report['top1']:.4f} ({r.report['count']} images; last epoch, "
                     f"no selection) -> {best}")
    elif r.best_accuracy is not None:
        weights = "EMA" if r.best_weights == "ema" else "raw"
        lines.append(f"selected  epoch {r.best_epoch} ({weights} weights) on {r.selected_on}: "
                     f"accuracy {r.best_accuracy:.4f} -> {best}")
        if r.report and "hold-out" in r.selected_on:
            lines.append(f"reported  validation accuracy of that checkpoint: {r.report['top1']:.4f} "
                         f"({r.report['count']} images, evaluated once)")
    last = r.history[-1] if r.history else {}
    if "val_accuracy" in last:
        ema = f", EMA {last['val_ema_accuracy']:.4f}" if "val_ema_accuracy" in last else ""
        where = "hold-out" if r.selected_on and "hold-out" in r.selected_on else "validation"
        lines.append(f"last epoch {where} accuracy: raw {last['val_accuracy']:.4f}{ema}")
    if r.train_images_per_sec:
        lines.append(f"training throughput {r.train_images_per_sec:.1f} images/s")
    warning = collapse_warning(r.report) if r.report else None
    if warning:
        lines.append(warning)
    probe = r.selected_on is None and r.report is not None
    lines += [
        f"wrote     {r.run_dir}/",
        "          run.json, recipe.yaml, state.json, checkpoints/{last,best}.keras,",
        "          logs/training.csv, " + ("features/ (cached backbone features)" if probe else "logs/tensorboard/")
        + ", plots/{curves,confusion_matrix}.png, skipped_files.txt",
        "=" * 78,
    ]
    return "\n".join(lines)
