"""In-memory DataBundle stand-ins (same contract as kconvnext.data) for fast trainer tests, the tiny
training call, and a counter of checkpoint saves."""
import types

import numpy as np
import tensorflow as tf


def synthetic_bundle(num_classes=2, train=64, val=32, size=32, batch=16, seed=0):
    """Learnable toy images in [0, 255]: class k has a bright k-th horizontal band."""
    rng = np.random.default_rng(seed)
    tf.random.set_seed(seed)  # the shuffle below depends on the global seed too: fix it

    def make(n):
        labels = rng.integers(0, num_classes, n)
        images = rng.uniform(0, 60, (n, size, size, 3)).astype("float32")
        band = size // num_classes
        for i, k in enumerate(labels):
            images[i, k * band:(k + 1) * band] += 180.0
        return images, np.eye(num_classes, dtype="float32")[labels]

    (xt, yt), (xv, yv) = make(train), make(val)
    return types.SimpleNamespace(
        train=tf.data.Dataset.from_tensor_slices((xt, yt)).shuffle(train, seed=seed).batch(batch),
        validation=tf.data.Dataset.from_tensor_slices((xv, yv)).batch(batch),
        class_names=[f"c{i}" for i in range(num_classes)], num_classes=num_classes,
        train_count=train, validation_count=val, skipped=[("bad.jpg", "not an image")],
        normalization="imagenet", small_input=True,
        class_counts={"train": {}, "validation": {}},
    )


TINY = {"model": {"depths": [1, 1, 1, 1], "dims": [16, 32, 64, 128]}, "augment": {"mixup_alpha": 0.0}}


def tiny_run(output, **kwargs):
    """train() of a one-block-per-stage ConvNeXt on synthetic_bundle(): 3 epochs of 4 steps with EMA."""
    from kconvnext.training import train

    args = dict(epochs=3, batch_size=16, image_size=32, small_input=True, lr=2e-3, warmup_epochs=0.5,
                drop_path_rate=0.0, ema=True, ema_momentum=0.9)
    args.update(kwargs)
    data = args.pop("data", None) or synthetic_bundle()
    args.setdefault("verbose", 0)
    return train("catsdogs", "convnext_atto", recipe="catsdogs_convnext_scratch", data=data,
                 output=output, overrides=TINY, **args)


def steps_per_epoch(run_dir):
    """The optimizer steps of one epoch of a run, as its run.json records them."""
    from kconvnext.run_folder import RunFolder

    return RunFolder(run_dir).info()["steps_per_epoch"]


def count_model_saves(monkeypatch, module):
    """The file names `module.save_model_atomic` writes from now on (it still writes them): a
    checkpoint that should be a copy of another must not be serialised again."""
    names, save = [], module.save_model_atomic
    monkeypatch.setattr(module, "save_model_atomic", lambda model, path: (names.append(path.name), save(model, path)))
    return names
