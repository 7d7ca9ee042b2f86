"""`cli.py export`: a trained model as a TF Serving SavedModel or a TFLite file, validated."""
from kconvnext.commands.common import add_command, positive_int

# As kconvnext.export.validate (not imported here: building the parser must not import TF).
DEFAULT_NUM_VALIDATION = 32
DEFAULT_NUM_CALIBRATION = 100
QUANTIZATIONS = ("none", "fp16", "dynamic", "int8", "int8_full", "int8_mixed", "int16x8")

EXAMPLES = """examples:
  python cli.py export runs/catsdogs                                  # SavedModel, next version
  python cli.py export runs/catsdogs --validation-dir data/cats_and_dogs_filtered/validation
  python cli.py export runs/catsdogs/checkpoints/best.keras --format tflite --quantize fp16
  # int8 = int8_mixed: int8 but for LayerNorm, GELU, softmax and the stem's conv on RGB (float32)
  python cli.py export runs/catsdogs --format tflite --quantize int8 \\
      --calibration-dir data/cats_and_dogs_filtered/train --validation-dir data/cats_and_dogs_filtered/validation
  python cli.py export model.keras --output serving/catsdogs --version 3 --overwrite

MODEL_FILE is a .keras checkpoint or a run folder (checkpoints/best.keras or last.keras, and
run.json with {"class_names": [...], "image_size": N, "eval_crop_ratio": 0.875}).
Default output: RUN/export/MODEL_NAME/VERSION/ (SavedModel) or RUN/export/MODEL_NAME_QUANT.tflite.
Every export is validated against the Keras model on held-out images (agreement and size are
printed); an fp32 export that disagrees by more than 1e-4 in probability is refused.
"""


def register(subparsers):
    p = add_command(
        subparsers, "export", help="export a trained model to SavedModel (TF Serving) or TFLite, validated",
        description="Export a trained model as a SavedModel for TF Serving (string-image and "
                    "float-pixel signatures) or as TFLite (fp32, fp16, dynamic-range or full int8), "
                    "validated against the Keras model.",
        examples=EXAMPLES,
    )
    p.add_argument("model_file", metavar="MODEL_FILE", help=".keras checkpoint or run folder")
    p.add_argument("--format", choices=["saved_model", "tflite"], default="saved_model")
    p.add_argument("--quantize", choices=QUANTIZATIONS, default="none",
                   help="TFLite only: none = fp32, fp16 weights, dynamic = int8 weights; calibrated "
                        "(need --calibration-dir): int8_full = every op int8, int8_mixed = int8 with "
                        "LayerNorm, GELU, softmax and the stem's conv on RGB in float32, int16x8 = int16 "
                        "activations + int8 weights, int8 = int8_mixed (the fastest here; full integer "
                        "where no layer needs float)")
    p.add_argument("--output", metavar="PATH",
                   help="SavedModel: the model folder (versions go inside); TFLite: the .tflite file")
    p.add_argument("--version", type=int, help="SavedModel version number (default: next free)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an existing .tflite / version (without --version: the latest version)")
    p.add_argument("--class-names", metavar="A,B,..|FILE.json",
                   help="class names (default: run.json / class_names.json beside the model)")
    p.add_argument("--image-size", type=positive_int, help="default: run.json, else the model's input size")
    p.add_argument("--eval-crop-ratio", type=float, help="default: run.json, else 0.875")
    p.add_argument("--validation-dir", metavar="DIR",
                   help="held-out images to validate on (default: deterministic random images)")
    p.add_argument("--num-validation", type=positive_int, default=DEFAULT_NUM_VALIDATION)
    p.add_argument("--calibration-dir", metavar="DIR", help="training images to calibrate int8 on")
    p.add_argument("--num-calibration", type=positive_int, default=DEFAULT_NUM_CALIBRATION)
    p.set_defaults(func=run)


def run(args):
    from kconvnext.export import export

    export(
        args.model_file, format=args.format, quantize=args.quantize, output=args.output,
        overwrite=args.overwrite, version=args.version, class_names=args.class_names,
        image_size=args.image_size, eval_crop_ratio=args.eval_crop_ratio,
        validation_dir=args.validation_dir, num_validation=args.num_validation,
        calibration_dir=args.calibration_dir, num_calibration=args.num_calibration,
    )
    return 0
