"""`cli.py predict MODEL_FILE IMAGE...` or `cli.py predict IMAGE... --model NAME --weights imagenet`."""
import sys

from kconvnext.commands.common import add_command, positive_int

EXAMPLES = """examples:
  python cli.py predict runs/catsdogs-convnext_t cat.jpg dog.png     # a run folder (best.keras)
  python cli.py predict runs/catsdogs-convnext_t ~/photos            # every image file in ~/photos
  python cli.py predict runs/catsdogs-convnext_t/checkpoints/best.keras photo.jpg --top 2
  python cli.py predict cat.jpg --model convnext_t --weights imagenet  # top-5 ImageNet classes
  python cli.py predict cat.jpg --model resnet50 --weights resnet50-11ad3fa6.pth

A folder means its image files (.jpg .jpeg .png .bmp .gif, not its sub-folders), in name order.
A file that cannot be read as an image is reported on stderr and skipped; the others are still
predicted, and the exit status is then 1.
"""


def register(subparsers):
    p = add_command(
        subparsers, "predict", help="classify image files with a trained or pretrained model",
        description="Print the predicted classes and their probabilities for each image, decoded, "
                    "resized and center-cropped as in validation. Either a trained model (a .keras "
                    "file or a run folder, then the images), or --model NAME --weights TAG|FILE for "
                    "an ImageNet-pretrained model (then only images).",
        examples=EXAMPLES,
    )
    p.add_argument("inputs", nargs="+", metavar="MODEL_FILE|IMAGE|FOLDER",
                   help="a .keras file or run folder followed by images or folders of images; only "
                        "images and folders with --model")
    p.add_argument("--model", dest="model_name", metavar="NAME",
                   help="a registered model (see `cli.py models`) with its ImageNet head")
    p.add_argument("--weights", default="imagenet", metavar="TAG|FILE",
                   help="with --model: a weights preset (default: imagenet) or a checkpoint file")
    p.add_argument("--top", type=positive_int, default=None,
                   help="show the K most likely classes (default 1; 5 with --model)")
    p.set_defaults(func=run)


def image_files(inputs, report):
    """The files to classify: each file as given, each folder's image files in name order; a path
    that does not exist is passed to report(path, error) and left out."""
    from pathlib import Path

    from kconvnext.data.sources.folder import IMAGE_EXTENSIONS

    files = []
    for item in map(Path, inputs):
        if item.is_dir():
            found = sorted(p for p in item.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
            if not found:
                report(item, FileNotFoundError(f"{item}: no image files ({' '.join(IMAGE_EXTENSIONS)}) in this folder."))
            files += found
        elif item.is_file():
            files.append(item)
        else:
            report(item, FileNotFoundError(f"{item}: no such image file or folder."))
    return files


def run(args):
    from kconvnext.training.evaluate import predict_files, predict_files_pretrained

    failed = []

    def report(path, err):
        failed.append(path)
        print(f"error: {err}", file=sys.stderr)

    if args.model_name:
        from kconvnext.models import get_spec

        get_spec(args.model_name)  # an unknown name fails before TensorFlow starts working
        images = image_files(args.inputs, report)
        results = predict_files_pretrained(args.model_name, args.weights, images, top=args.top or 5,
                                           on_error=report)
    else:
        if len(args.inputs) < 2:
            raise ValueError("predict: give a model (.keras file or run folder) and at least one image, "
                             "or images with --model NAME --weights imagenet.")
        images = image_files(args.inputs[1:], report)
        results = predict_files(args.inputs[0], images, top=args.top or 1, on_error=report)
    for path, preds in results:
        print(f"{path}\t" + "\t".join(f"{name} {prob:.4f}" for name, prob in preds))
    if failed:
        print(f"{len(failed)} input(s) could not be classified (listed above); "
              f"{len(results)} image(s) were.", file=sys.stderr)
        return 1
    return 0
