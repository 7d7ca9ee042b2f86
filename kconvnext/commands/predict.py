"""`cli.py predict MODEL_FILE IMAGE...` or `cli.py predict IMAGE... --model NAME --weights imagenet`."""
from kconvnext.commands.common import add_command

EXAMPLES = """examples:
  python cli.py predict runs/catsdogs-convnext_t cat.jpg dog.png     # a run folder (best.keras)
  python cli.py predict runs/catsdogs-convnext_t/checkpoints/best.keras photo.jpg --top 2
  python cli.py predict cat.jpg --model convnext_t --weights imagenet  # top-5 ImageNet classes
  python cli.py predict cat.jpg --model resnet50 --weights resnet50-11ad3fa6.pth
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
    p.add_argument("inputs", nargs="+", metavar="MODEL_FILE|IMAGE",
                   help="a .keras file or run folder followed by images; only images with --model")
    p.add_argument("--model", dest="model_name", metavar="NAME",
                   help="a registered model (see `cli.py models`) with its ImageNet head")
    p.add_argument("--weights", default="imagenet", metavar="TAG|FILE",
                   help="with --model: a weights preset (default: imagenet) or a checkpoint file")
    p.add_argument("--top", type=int, default=None, help="show the K most likely classes (default 1; 5 with --model)")
    p.set_defaults(func=run)


def run(args):
    from kconvnext.training.evaluate import predict_files, predict_files_pretrained

    if args.model_name:
        from kconvnext.models import get_spec

        get_spec(args.model_name)  # an unknown name fails before TensorFlow starts working
        results = predict_files_pretrained(args.model_name, args.weights, args.inputs, top=args.top or 5)
    else:
        if len(args.inputs) < 2:
            raise ValueError("predict: give a model (.keras file or run folder) and at least one image, "
                             "or images with --model NAME --weights imagenet.")
        results = predict_files(args.inputs[0], args.inputs[1:], top=args.top or 1)
    for path, preds in results:
        print(f"{path}\t" + "\t".join(f"{name} {prob:.4f}" for name, prob in preds))
    return 0
