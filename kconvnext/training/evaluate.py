"""Accuracy reports (top-1, top-5, per class, confusion matrix) and loading trained models.

Shared by the trainer (confusion matrix at the end of a run) and `cli.py eval` / `predict`.
"""
from pathlib import Path

import numpy as np


def load_trained_model(run_or_file):
    """(keras model, run info dict) from a run folder (best.keras, else last.keras) or a .keras file.

    Where the model and its run.json are found is the run folder's rule (kconvnext.run_folder), so
    eval, predict and export always read the same checkpoint, computed in float32 like the export. compile=False: evaluation needs
    only the forward pass, and this does not need the optimizer classes to match the code.
    """
    import keras

    import kconvnext.training.optimizer  # noqa: F401  (registers the custom schedule/optimizer)
    import kconvnext.training.schedules  # noqa: F401
    from kconvnext.precision import float32_model
    from kconvnext.run_folder import resolve_model_file

    source = resolve_model_file(run_or_file)
    info = dict(source.metadata)
    # A mixed-precision checkpoint is evaluated in float32, as export serves it (and a bf16 .keras
    # loaded into a float32 process would otherwise mix dtypes inside its blocks).
    model, _ = float32_model(keras.models.load_model(source.keras_path, compile=False))
    info.setdefault("image_size", int(model.input_shape[1]))
    return model, info


def predict_dataset(model, dataset, verbose=1):
    """(probabilities (N, C), true class indices (N,)) over a (images, one-hot labels) dataset."""
    import keras

    probs, labels = [], []
    progbar = keras.utils.Progbar(None, verbose=verbose, unit_name="batch")
    for step, (images, onehot) in enumerate(dataset):
        logits = model(images, training=False)
        probs.append(keras.ops.convert_to_numpy(keras.ops.softmax(keras.ops.cast(logits, "float32"))))
        labels.append(np.argmax(np.asarray(onehot), axis=-1))
        progbar.update(step + 1)
    return np.concatenate(probs), np.concatenate(labels)


def accuracy_report(probs, labels, class_names):
    """top1, top5 (only when there are more than 5 classes), per-class accuracy and confusion matrix."""
    n = len(class_names)
    pred = np.argmax(probs, axis=-1)
    matrix = np.zeros((n, n), dtype=np.int64)
    np.add.at(matrix, (labels, pred), 1)
    per_class = {
        name: (float(matrix[i, i] / matrix[i].sum()) if matrix[i].sum() else None)
        for i, name in enumerate(class_names)
    }
    report = {"count": int(len(labels)), "top1": float(np.mean(pred == labels)) if len(labels) else 0.0,
              "per_class": per_class, "confusion_matrix": matrix.tolist(), "class_names": list(class_names)}
    if n > 5:
        top5 = np.argsort(-probs, axis=-1)[:, :5]
        report["top5"] = float(np.mean(np.any(top5 == labels[:, None], axis=-1)))
    return report


def format_report(report):
    lines = [f"images: {report['count']}", f"top-1 accuracy: {report['top1']:.4f}"]
    if "top5" in report:
        lines.append(f"top-5 accuracy: {report['top5']:.4f}")
    lines.append("per-class accuracy:")
    width = max(len(c) for c in report["class_names"])
    for name, acc in report["per_class"].items():
        lines.append(f"  {name:<{width}}  {'n/a' if acc is None else f'{acc:.4f}'}")
    names = report["class_names"]
    if len(names) <= 12:
        lines.append("confusion matrix (rows: true, columns: predicted):")
        lines.append(" " * (width + 2) + " ".join(f"{n[:6]:>6}" for n in names))
        for name, row in zip(names, report["confusion_matrix"]):
            lines.append(f"  {name:<{width}}" + " ".join(f"{v:>6}" for v in row))
    return "\n".join(lines)


def evaluate(run_or_file, dataset, *, data_dir=None, batch_size=32, limit=None, verbose=1):
    """The accuracy report of a trained model on `dataset`'s validation split, preprocessed the
    way that model was validated during training (run.json's eval transform: image size, crop,
    interpolation; see EvalTransform.from_run_info)."""
    from kconvnext import data as kdata
    from kconvnext.data.loader import select_splits
    from kconvnext.data.pipeline import validation_dataset

    model, info = load_trained_model(run_or_file)
    transform = run_transform(info)
    splits = select_splits(dataset, data_dir=data_dir, image_size=transform.image_size, batch_size=batch_size,
                           limit=limit)
    names, class_names = info.get("class_names"), list(splits.source.class_names)
    if names and list(names) != class_names:
        raise ValueError(
            f"{run_or_file} was trained on classes {names}, but {dataset} has {class_names}; "
            "evaluate it on the data set it was trained for."
        )
    if int(model.output_shape[-1]) != len(class_names):
        raise ValueError(f"{run_or_file} predicts {model.output_shape[-1]} classes; {dataset} has {len(class_names)}.")
    validation = validation_dataset(splits.validation, num_classes=len(class_names), image_size=splits.image_size,
                                    batch_size=int(batch_size), config=kdata.AugmentConfig.none(),
                                    transform=transform)
    probs, labels = predict_dataset(model, validation, verbose=verbose)
    return accuracy_report(probs, labels, class_names)


def run_transform(info):
    """The EvalTransform of a trained model's run info (load_trained_model's second value)."""
    from kconvnext.preprocessing import EvalTransform

    return EvalTransform.from_run_info(info)


def predict_files(run_or_file, paths, top=1, on_error=None):
    """[(path, [(class name, probability), ...top])] for image files (on_error: see classify_files)."""
    model, info = load_trained_model(run_or_file)
    num = int(model.output_shape[-1])
    names = info.get("class_names") or [str(i) for i in range(num)]
    return classify_files(model, names, paths, run_transform(info), top, on_error)


def predict_files_pretrained(model_name, weights, paths, top=5, image_size=None, on_error=None):
    """As predict_files, for a registered model with a weights preset ("imagenet") or checkpoint
    file and its own 1000-class head: ImageNet class names, preprocessed as the preset was
    published (kconvnext.preprocessing_for), at image_size if given."""
    from kconvnext.imagenet import imagenet_classes
    from kconvnext.applications import create_model
    from kconvnext.weights.presets import preprocessing_for

    _check_files(paths)
    transform = preprocessing_for(model_name, weights)
    transform = transform.at_size(image_size or transform.image_size)
    size = transform.image_size
    model = create_model(model_name, weights=weights, input_shape=(size, size, 3))
    transform.check_model(model, where=f"{model_name} weights={weights!r}")
    num = int(model.output_shape[-1])
    names = list(imagenet_classes()) if num == 1000 else [str(i) for i in range(num)]
    return classify_files(model, names, paths, transform, top, on_error)


def _check_files(paths):
    for p in paths:
        if not Path(p).is_file():
            raise FileNotFoundError(f"{p}: no such image file.")


def classify_files(model, names, paths, transform, top, on_error=None):
    """Each file decoded and passed through `transform` (an EvalTransform), then the model.
    on_error(path, ValueError) for a file that does not decode, which is then skipped (a folder of
    photos has its broken ones); without it the first such file raises."""
    import keras

    _check_files(paths)
    out = []
    for p in paths:
        try:
            image = transform.load(p)
        except ValueError as err:
            if on_error is None:
                raise
            on_error(p, err)
            continue
        logits = model(keras.ops.expand_dims(image, 0), training=False)
        probs = keras.ops.convert_to_numpy(keras.ops.softmax(keras.ops.cast(logits, "float32")))[0]
        order = np.argsort(-probs)[:top]
        out.append((str(p), [(names[i], float(probs[i])) for i in order]))
    return out
