"""`cli.py train DATASET MODEL`: a thin layer over kconvnext.training.train."""
import sys
from kconvnext.commands.common import add_command, positive_float, positive_int

EXAMPLES = """examples:
  python cli.py train catsdogs convnext_t                 # recipes/catsdogs_convnext.yaml, runs/catsdogs-convnext_t/
  python cli.py train catsdogs resnet18 --recipe catsdogs_scratch --budget-minutes 45   # from scratch, a CPU
  python cli.py train cifar10 resnet18 --epochs 5 --batch-size 64
  python cli.py train catsdogs convnext_t --set image_size=64 --set augment.mixup_alpha=0
  python cli.py train folder convnext_atto --data-dir ~/photos --output runs/photos
  python cli.py train catsdogs convnext_t --recipe finetune_convnext --set pretrained=convnext_t.safetensors
  python cli.py train catsdogs convnext_t --resume        # continue runs/catsdogs-convnext_t/

Every recipe key can be set with --set KEY=VALUE (nested: augment.KEY, model.KEY); values are
read as YAML and checked against the recipe schema. Re-running the same command resumes
automatically when the run folder already has a checkpoint.
"""


def add_common_data_args(p):
    p.add_argument("--data-dir", metavar="DIR", help="data set folder (default: the loader's standard location)")


def register(subparsers):
    p = add_command(
        subparsers, "train", help="train a model with its recipe (resumable)",
        description="Train MODEL on DATASET with the recipe for (dataset, model family), writing "
                    "checkpoints, logs and plots to a run folder.",
        examples=EXAMPLES,
    )
    p.add_argument("dataset", help="catsdogs | cifar10 | folder (with --data-dir)")
    p.add_argument("model", help="a registered model name (see `cli.py models`)")
    p.add_argument("--recipe", metavar="FILE", help="recipe file or shipped recipe name (default: by dataset and family)")
    p.add_argument("--epochs", type=positive_int)
    p.add_argument("--batch-size", type=positive_int)
    p.add_argument("--budget-minutes", type=positive_float, metavar="MIN",
                   help="train for MIN minutes of this machine instead of --epochs (measured, then fixed)")
    add_common_data_args(p)
    p.add_argument("--output", metavar="RUN_DIR", help="run folder (default: runs/DATASET-MODEL)")
    p.add_argument("--resume", action="store_true", default=None,
                   help="continue the run in RUN_DIR (automatic when it has a checkpoint)")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                   help="override a recipe value, e.g. --set lr=1e-3 (repeatable)")
    p.add_argument("--quiet", action="store_true", help="one line per epoch instead of progress bars")
    p.set_defaults(func=run)


def overrides_from_args(args):
    """--set items and the flags as recipe overrides. The flag given wins over the recipe's way of
    sizing the run: --epochs N trains N epochs even with a recipe that sets budget_minutes
    (recipes/catsdogs_scratch.yaml), --budget-minutes sets a budget; both at once is an error."""
    from kconvnext.training.config import merge, parse_set

    budget = getattr(args, "budget_minutes", None)
    if args.epochs is not None and budget is not None:
        raise ValueError("--epochs and --budget-minutes both size the run: give one of them.")
    out = parse_set(args.sets)
    if args.epochs is not None:
        out = merge(out, {"epochs": args.epochs, "budget_minutes": None})
    if args.batch_size is not None:
        out = merge(out, {"batch_size": args.batch_size})
    if budget is not None:
        out = merge(out, {"budget_minutes": budget})
    return out


def check_names(dataset, models):
    """Fail fast (before TensorFlow starts) on unknown dataset / model names."""
    from kconvnext.models import get_spec
    from kconvnext.models.registry import unknown_name_error
    from kconvnext.data.sources import DATASETS

    if dataset not in DATASETS:
        raise unknown_name_error("dataset", dataset, DATASETS)
    for m in models:
        get_spec(m)


def run(args):
    check_names(args.dataset, [args.model])
    from kconvnext.training import TrainingDiverged, train
    from kconvnext.timing import process_start_time

    try:  # (started: a --budget-minutes run covers the whole command, Python and TensorFlow starting too)
        train(args.dataset, args.model, recipe=args.recipe, output=args.output, data_dir=args.data_dir,
              resume=args.resume, verbose=2 if args.quiet else 1, overrides=overrides_from_args(args),
              started=process_start_time())
    except TrainingDiverged as err:
        print(f"error: {err}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        return 130
    return 0
