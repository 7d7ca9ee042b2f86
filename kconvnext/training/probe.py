"""Linear probe: a frozen pretrained backbone, its features computed once, only the head trained.

This is the report's method for cats vs dogs, and the sensible first job on a CPU: ConvNeXt-T runs
inference ~8x faster than it trains, and a frozen backbone makes every epoch after the first
pass redundant. So each image goes through the backbone once (each augmented view once, with
`probe_views`), the pooled features are kept (in memory and in RUN/features/, reused by a re-run
with the same data and backbone), and the classifier trains on them in seconds. The run still
ends with a complete `.keras` model (backbone + trained head) that eval, predict and export use
like any other checkpoint.

No model selection on the validation split: the head trains for the recipe's epochs and the last
epoch is the reported (and saved) one.
"""
import hashlib
import json
import time

import keras
import numpy as np

from kconvnext.files import link_file_atomic, save_model_atomic
from kconvnext.run_folder import RunFolder
from kconvnext.training.model_setup import build_model
from kconvnext.training.schedules import WarmupCosine


def feature_extractor(net):
    """The model up to the classifier's input: pooled (and, for ConvNeXt, head-normed) features."""
    return keras.Model(net.inputs, net.get_layer("head_fc").input, name=f"{net.name}_features")


def backbone_features(extractor, images):
    """One batch through the frozen backbone (the only place the probe runs it; tests count calls).
    predict_on_batch runs Keras' compiled predict function; an eager call would run op by op."""
    return np.asarray(extractor.predict_on_batch(images))


def extract(extractor, dataset, *, total, label, verbose=1):
    """(features (N, D) float32, class indices (N,)) for a dataset of (images, one-hot labels)."""
    feats, labels, seen = [], [], 0
    progbar = keras.utils.Progbar(total, verbose=verbose, unit_name="image")
    started = time.time()
    for images, onehot in dataset:
        feats.append(backbone_features(extractor, images))
        labels.append(np.argmax(np.asarray(onehot), axis=-1))
        seen += len(labels[-1])
        progbar.update(seen)
    seconds = time.time() - started
    if verbose:
        print(f"features  {label}: {seen} images in {seconds:.0f} s ({seen / max(seconds, 1e-9):.1f} img/s)")
    return np.concatenate(feats).astype("float32"), np.concatenate(labels), seconds


def _views_config(config):
    """The recipe's per-image augmentations for extra training views; batch mixing and erasing
    are off (a mixed image's features are not what the probe should learn from)."""
    aug = config.augment.pipeline_dict()
    aug.update(mixup_alpha=0.0, cutmix_alpha=0.0, random_erasing=0.0)
    return aug


def probe_transform(model_name, config):
    """The features are the pretrained backbone's as published: the weights' own eval transform
    (kconvnext.preprocessing_for: e.g. bicubic for ConvNeXt, resize 232 for torchvision V2) at the
    recipe's image size. The run's eval, predict and export then use it too (run.json)."""
    from kconvnext.weights.presets import preprocessing_for

    return preprocessing_for(model_name, config.pretrained).at_size(config.image_size)


def _fingerprint(model_name, config, splits, transform):
    """What the cached features depend on: backbone, weights, preprocessing, views and the images."""
    paths = getattr(splits.train, "paths", None)
    items = {
        "model": model_name, "pretrained": str(config.pretrained), "image_size": config.image_size,
        "eval_transform": transform.to_dict(), "views": config.probe_views,
        "views_augment": _views_config(config) if config.probe_views else None, "seed": config.seed,
        "model_options": config.model, "small_input": config.small_input,
        "train": [len(splits.train), list(paths[:3]) + list(paths[-3:]) if paths else None],
        "validation": len(splits.validation),
    }
    return hashlib.sha256(json.dumps(items, sort_keys=True, default=str).encode()).hexdigest()[:16]


def compute_features(net, splits, config, run_dir, transform, print_fn=print, verbose=1):
    """{"train": (x, y), "validation": (x, y), "seconds": s, "images": n, "cached": bool}; the
    center-crop views and the validation images through `transform` (probe_transform)."""
    from kconvnext.data.pipeline import train_dataset, validation_dataset

    cache = RunFolder(run_dir).features / f"{_fingerprint(net.name, config, splits, transform)}.npz"
    if cache.is_file():
        data = np.load(cache)
        print_fn(f"features  reusing {cache} (same backbone, weights, images and views)")
        return {"train": (data["train_x"], data["train_y"]), "validation": (data["val_x"], data["val_y"]),
                "seconds": 0.0, "images": 0, "cached": True}
    extractor = feature_extractor(net)
    num_classes = len(splits.source.class_names)
    plain = dict(num_classes=num_classes, image_size=config.image_size, batch_size=config.batch_size,
                 config=_plain_config(config), transform=transform)
    train_x, train_y, t1 = extract(extractor, validation_dataset(splits.train, **plain),
                                   total=len(splits.train), label="train (center crop)", verbose=verbose)
    xs, ys, seconds = [train_x], [train_y], t1
    for view in range(config.probe_views):
        ds = train_dataset(splits.train, num_classes=num_classes, image_size=config.image_size,
                           batch_size=config.batch_size, config=_resolve(_views_config(config)),
                           seed=config.seed + 1 + view, every_image=True)
        x, y, t = extract(extractor, ds, total=len(splits.train), label=f"train view {view + 1}", verbose=verbose)
        xs.append(x), ys.append(y)
        seconds += t
    val_x, val_y, t2 = extract(extractor, validation_dataset(splits.validation, **plain),
                               total=len(splits.validation), label="validation", verbose=verbose)
    out = {"train": (np.concatenate(xs), np.concatenate(ys)), "validation": (val_x, val_y),
           "seconds": seconds + t2, "images": sum(len(y) for y in ys) + len(val_y), "cached": False}
    cache.parent.mkdir(parents=True, exist_ok=True)
    partial = cache.with_suffix(".part.npz")
    np.savez(partial, train_x=out["train"][0], train_y=out["train"][1], val_x=val_x, val_y=val_y)
    partial.replace(cache)
    return out


def _resolve(augment_dict):
    from kconvnext.data.config import AugmentConfig

    return AugmentConfig.resolve(augment_dict)


def _plain_config(config):
    import dataclasses

    from kconvnext.data.config import AugmentConfig

    return dataclasses.replace(AugmentConfig.none(), eval_crop_ratio=config.augment.eval_crop_ratio)


def train_head(net, features, config, num_classes, log_dir, verbose=1):
    """Fit a Dense head on the cached features (AdamW, warmup + cosine, label smoothing, the
    recipe's epochs and batch), starting from the model's own freshly initialised head_fc."""
    train_x, train_y = features["train"]
    val_x, val_y = features["validation"]
    inputs = keras.Input((train_x.shape[1],), name="features")
    head = keras.Model(inputs, keras.layers.Dense(num_classes, name="head_fc")(inputs), name="probe_head")
    head.get_layer("head_fc").set_weights(net.get_layer("head_fc").get_weights())
    steps = max(1, int(np.ceil(len(train_y) / config.batch_size)))
    schedule = WarmupCosine(peak_lr=config.effective_lr(), total_steps=steps * config.epochs,
                            warmup_steps=int(round(config.warmup_epochs * steps)), min_lr=config.min_lr)
    optimizer = keras.optimizers.AdamW(learning_rate=schedule, weight_decay=config.weight_decay,
                                       beta_1=config.beta_1, beta_2=config.beta_2, epsilon=config.epsilon)
    optimizer.exclude_from_weight_decay(var_names=["bias"])
    head.compile(optimizer=optimizer,
                 loss=keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=config.label_smoothing),
                 metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")])
    log_dir.mkdir(parents=True, exist_ok=True)
    # Datasets made once, shuffled anew each epoch from the recipe's seed: from numpy arrays Keras
    # slices them again for every epoch's iterator (3.4x the CPU of 30 epochs on 32 images).
    train = (_feature_dataset(train_x, train_y, num_classes)
             .shuffle(len(train_y), seed=config.seed, reshuffle_each_iteration=True).batch(config.batch_size))
    validation = _feature_dataset(val_x, val_y, num_classes).batch(config.batch_size)
    history = head.fit(train, epochs=config.epochs, verbose=verbose, validation_data=validation, shuffle=False,
                       callbacks=[keras.callbacks.CSVLogger(str(log_dir / "training.csv"))])
    epochs = len(history.history["loss"])
    return head, [{k: float(v[i]) for k, v in history.history.items()} for i in range(epochs)]


def _feature_dataset(features, labels, num_classes):
    import tensorflow as tf  # the probe runs on the TensorFlow backend only (trainer._train_probe)

    return tf.data.Dataset.from_tensor_slices((features, keras.utils.to_categorical(labels, num_classes)))


def run_probe(model_name, config, splits, run_dir, *, print_fn=print, verbose=1):
    """Build the pretrained model, probe it, save checkpoints; returns (net, history, report, facts)."""
    from kconvnext.training.evaluate import accuracy_report

    if not config.pretrained:
        raise ValueError("linear_probe: true needs pretrained weights: --set pretrained=imagenet "
                         "(a preset, see `cli.py models`) or --set pretrained=FILE.")
    num_classes = len(splits.source.class_names)
    net = build_model(model_name, config, num_classes, splits.source.normalization)
    transform = probe_transform(model_name, config)
    try:
        transform.check_model(net, where=f"{model_name} (normalization={splits.source.normalization!r})")
    except ValueError as err:  # a probe retrains the head: worth saying, not worth refusing
        print_fn(f"warning: {err}")
    features = compute_features(net, splits, config, run_dir, transform, print_fn=print_fn, verbose=verbose)
    head, history = train_head(net, features, config, num_classes, RunFolder(run_dir).logs, verbose=verbose)
    net.get_layer("head_fc").set_weights(head.get_layer("head_fc").get_weights())
    val_x, val_y = features["validation"]
    logits = keras.ops.convert_to_numpy(head(val_x, training=False))
    probs = keras.ops.convert_to_numpy(keras.ops.softmax(logits))
    report = accuracy_report(probs, val_y, list(splits.source.class_names))
    run = RunFolder(run_dir)
    run.update_info({"eval_transform": transform.to_dict()})
    save_model_atomic(net, run.last_checkpoint)
    link_file_atomic(run.last_checkpoint, run.best_checkpoint)  # = last: no selection on validation
    state = {**run.state(), "completed_epochs": len(history),
             "history": history, "best_accuracy": report["top1"], "best_epoch": len(history),
             "best_weights": "raw", "linear_probe": True}
    facts = {"feature_seconds": features["seconds"], "backbone_images": features["images"],
             "features_cached": features["cached"],
             "feature_images_per_sec": (features["images"] / features["seconds"]) if features["seconds"] else None}
    state.update(facts)
    run.write_state(state)
    return net, history, report, state
