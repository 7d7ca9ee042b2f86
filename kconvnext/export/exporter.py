"""export(): one model file or run folder -> a validated SavedModel or TFLite file (the steps are
the sibling modules: preprocess, precision rebuild, quantization, tflite / saved_model, validate).

Every export is written to a temp folder/file next to its target, validated against the Keras
model on held-out images, and only then renamed into place; nothing half-written stays behind.
"""
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from kconvnext import files, precision, run_folder
from kconvnext.export import labels, paths, preprocess, quantization, validate
from kconvnext.export.quantization import CALIBRATED, QUANTIZATIONS

FORMATS = ("saved_model", "tflite")
FP32_TOLERANCE = 1e-4


@dataclass
class ExportResult:
    format: str
    quantize: str
    path: Path
    size_bytes: int
    class_names: list
    image_size: int
    validation: list = field(default_factory=list)  # validate.Agreement per checked output
    ops: list = None  # TFLite built-in ops used
    notes: list = field(default_factory=list)
    seconds: float = 0.0
    float_ops: list = None  # calibrated modes: op types still computing in float32

    def report(self):
        kind = "SavedModel" if self.format == "saved_model" else f"TFLite ({quantization.label(self.quantize)})"
        lines = [f"Exported {kind}: {self.path}  ({self.size_bytes / 1e6:.2f} MB, {self.seconds:.1f} s)"]
        lines += [f"  image size {self.image_size}, classes {self.class_names}"]
        if self.validation:
            lines.append(f"  validated on {self.validation[0].images}:")
            lines += [f"    {a.line()}" for a in self.validation]
        if self.ops:
            lines.append(f"  TFLite ops (all built-in): {', '.join(self.ops)}")
        if self.float_ops is not None:
            lines.append(f"  ops computing in float32: {', '.join(self.float_ops) or 'none'}")
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


def _load_model(model_file):
    import keras

    import kconvnext.layers  # noqa: F401  (registers the custom layers for deserialisation)

    if isinstance(model_file, keras.Model):
        return model_file, None
    source = run_folder.resolve_model_file(model_file)
    try:
        model = keras.saving.load_model(source.keras_path, compile=False)
    except Exception as err:
        raise ValueError(f"Could not load {source.keras_path} as a Keras model: {err}") from None
    return model, source


def _image_size(model, metadata, image_size):
    shape = model.input_shape
    model_size = shape[1] if shape[1] == shape[2] and shape[1] is not None else None
    size = image_size or metadata.get("image_size") or model_size
    if size is None:
        raise ValueError(f"{model.name} has no fixed square input size; pass image_size (--image-size).")
    if model_size is not None and int(size) != model_size:
        raise ValueError(f"image_size {size} does not match the model's input {shape[1:3]}.")
    if shape[-1] != 3:
        raise ValueError(f"export needs an RGB model (3 input channels); {model.name} takes {shape[-1]}.")
    return int(size)


def default_output(model, source, fmt, quantize, base_dir=None):
    base = Path(base_dir) if base_dir else (source.base_dir if source else Path("exports"))
    if fmt == "saved_model":
        return base / "export" / model.name if source else base / model.name
    return (base / "export" if source else base) / f"{model.name}_{quantization.label(quantize)}.tflite"


def export(model_file, format="saved_model", quantize="none", output=None, *, overwrite=False,
           version=None, class_names=None, image_size=None, eval_crop_ratio=None,
           validation_dir=None, num_validation=validate.DEFAULT_NUM_VALIDATION,
           calibration_dir=None, num_calibration=validate.DEFAULT_NUM_CALIBRATION,
           fp32_tolerance=FP32_TOLERANCE, verbose=True):
    """Export a `.keras` checkpoint, a run folder, or a keras.Model; returns an ExportResult.

    format: "saved_model" (TF Serving; `output` is the model folder, versions 1, 2, ... inside)
            or "tflite" (`output` is the .tflite file).
    quantize (TFLite only): "none" (fp32) | "fp16" | "dynamic" (int8 weights) | "int8_full" (full
            integer) | "int8_mixed" (int8; LayerNorm, GELU, softmax and the RGB stem conv in float) | "int16x8" |
            "int8" (int8_mixed where a layer stays float, else int8_full); see export/quantization.py. The
            calibrated modes use `num_calibration` images from `calibration_dir`.
    A model trained under a mixed-precision policy is rebuilt in float32 first (kconvnext/precision.py).
    Validation: `num_validation` held-out images from `validation_dir` (default: deterministic
    random images) through the export and the Keras model; fp32 exports (SavedModel, TFLite
    "none") disagreeing by more than `fp32_tolerance` in any probability are refused.
    Never overwrites: a SavedModel gets the next version; an existing `version` or .tflite file
    needs overwrite=True (so does a labels.txt beside the .tflite that lists other classes).
    Labels: assets/labels.txt in the SavedModel, labels.txt beside the .tflite (one class a line).
    Modes follow the umask (0644 files / 0755 folders under umask 022), so a server running as
    another user can read the export.
    """
    start = time.time()
    if format not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, got {format!r}.")
    if quantize not in QUANTIZATIONS:
        raise ValueError(f"quantize must be one of {QUANTIZATIONS}, got {quantize!r}.")
    if format == "saved_model" and quantize != "none":
        raise ValueError("--quantize applies to TFLite only; a SavedModel is exported in float32.")
    if format == "tflite" and version is not None:
        raise ValueError("--version applies to SavedModel exports only.")
    if quantize in CALIBRATED and not calibration_dir:
        raise ValueError(f"{quantize} quantization needs calibration images: pass "
                         "--calibration-dir DIR (a folder of training images, e.g. data/train).")
    if calibration_dir:
        validate.list_images(calibration_dir)  # fail before loading anything
    if validation_dir:
        validate.list_images(validation_dir)

    model, source = _load_model(model_file)
    model, rebuilt_note = precision.float32_model(model)
    requested, quantize = quantize, quantization.resolve(quantize, model)
    metadata = source.metadata if source else {}
    size = _image_size(model, metadata, image_size)
    crop_ratio = preprocess.transform_for(metadata, size, eval_crop_ratio)  # an EvalTransform
    num_classes = int(model.output_shape[-1])
    names = run_folder.resolve_class_names(class_names, metadata, num_classes, where=model.name)

    output = Path(output) if output else default_output(model, source, format, quantize)
    # Refuse to overwrite before doing any work.
    if format == "saved_model":
        target = paths.saved_model_target(output, version, overwrite)
    else:
        target = paths.file_target(output, overwrite)
        labels_path = labels.tflite_labels_target(target, names, overwrite)
    images = validate.load_validation_images(validation_dir, num_validation, size)
    pixels = validate.preprocess_all(images.encoded, size, crop_ratio)
    reference = validate.keras_probabilities(model, pixels)
    notes = [rebuilt_note] if rebuilt_note else []
    if requested != quantize:
        notes.append(f"--quantize {requested} is {quantize} for {model.name} "
                     + ("(keeps its LayerNorm, GELU and softmax in float32)" if quantize == "int8_mixed"
                        else "(no LayerNorm: every op in int8)"))
    if not validation_dir:
        notes.append("validated on random images; pass --validation-dir for real held-out images")

    float_ops = None
    if format == "saved_model":
        from kconvnext.export import saved_model as sm

        with files.staged_dir(target) as tmp:
            sm.write_saved_model(model, tmp, class_names=names, image_size=size, crop_ratio=crop_ratio,
                                 metadata={"model": model.name})
            by_bytes, by_pixels = sm.run_signatures(tmp, images.encoded, pixels)
            checks = []
            for sig, out in ((sm.DEFAULT_SIGNATURE, by_bytes), (sm.PIXELS_SIGNATURE, by_pixels)):
                agreement = validate.compare(f"saved_model {sig}", out["probabilities"], reference, images)
                checks.append(validate.add_accuracy(agreement, out["probabilities"], reference, images, names))
                if not (out["class_index"] == out["probabilities"].argmax(-1)).all() or \
                        [n.decode() for n in out["class_name"]] != [names[i] for i in out["class_index"]]:
                    raise ValueError(f"SavedModel {sig}: class_index/class_name do not match probabilities.")
            _refuse_if_off(checks, fp32_tolerance, target)
        result_path, size_bytes = target, files.dir_size(target)
        ops = None
        notes.append(f"labels (one class a line): {target / 'assets' / labels.LABELS_FILE}")
    else:
        from kconvnext.export import tflite

        calibration = None
        if quantize in CALIBRATED:
            cal = validate.folder_images(calibration_dir, num_calibration)
            calibration = validate.preprocess_all(cal.encoded, size, crop_ratio)
            notes.append(f"{quantize} calibrated on {cal.source}")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            content = tflite.convert(model, size, quantize, calibration)
        with files.staged_file(target) as tmp:
            tmp.write_bytes(content)
            probs = tflite.Runner(model_path=tmp)(pixels)
            agreement = validate.compare(f"tflite {quantization.label(quantize)}", probs, reference, images)
            checks = [validate.add_accuracy(agreement, probs, reference, images, names)]
            if quantize == "none":
                _refuse_if_off(checks, fp32_tolerance, target)
            files.write_text_atomic(labels_path, labels.labels_text(names))
        result_path, size_bytes = target, target.stat().st_size
        ops = tflite.op_names(content)
        notes.append(f"labels (one class a line): {labels_path}")
        notes.append(tflite.delegation(content).line())
        if quantize in CALIBRATED:
            float_ops = sorted({op for op, _ in quantization.float_ops(content)})
    result = ExportResult(format, quantize, result_path, size_bytes, names, size, checks, ops, notes,
                          seconds=time.time() - start, float_ops=float_ops)
    if verbose:
        print(result.report())
    return result


def _refuse_if_off(checks, tolerance, target):
    for check in checks:
        if not check.max_abs_diff <= tolerance:
            raise ValueError(
                f"Refusing to write {target}: {check.name} disagrees with the Keras model by "
                f"{check.max_abs_diff:.2e} in probability (> {tolerance:g}); top-1 agreement "
                f"{check.top1_agreement * 100:.1f}%. Nothing was written."
            )
