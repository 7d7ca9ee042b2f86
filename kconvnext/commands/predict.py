"""`cli.py predict MODEL_FILE IMAGE...`: class and probability per image."""
from kconvnext.commands.common import add_command

EXAMPLES = """examples:
  python cli.py predict runs/catsdogs-convnext_t cat.jpg dog.png     # a run folder (best.keras)
  python cli.py predict runs/catsdogs-convnext_t/checkpoints/best.keras photo.jpg --top 2
"""


def register(subparsers):
    p = add_command(
        subparsers, "predict", help="classify image files with a trained model",
        description="Print the predicted class and its probability for each image, decoded, "
                    "resized and center-cropped as in validation.",
        examples=EXAMPLES,
    )
    p.add_argument("model", metavar="MODEL_FILE", help="a .keras file or a run folder")
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.add_argument("--top", type=int, default=1, help="show the K most likely classes")
    p.set_defaults(func=run)


def run(args):
    from kconvnext.training.evaluate import predict_files

    for path, preds in predict_files(args.model, args.images, top=args.top):
        print(f"{path}\t" + "\t".join(f"{name} {prob:.4f}" for name, prob in preds))
    return 0
