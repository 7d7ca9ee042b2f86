"""`cli.py compare DATASET MODEL...`: the same budget for each model, one table, one plot."""
from kconvnext.commands.common import add_command, positive_float, positive_int

EXAMPLES = """examples:
  python cli.py compare catsdogs convnext_t resnet50 resnext50_32x4d --epochs 10
  python cli.py compare cifar10 convnext_atto resnet18 --epochs 3 --set limit=2000 --output runs/cmp
  python cli.py compare cifar10 convnext_atto resnet18 resnext50_32x4d --budget-minutes 15
"""


def register(subparsers):
    from kconvnext.commands.train import add_common_data_args

    p = add_command(
        subparsers, "compare", help="train several models with their recipes under one budget and tabulate",
        description="Train each MODEL on DATASET with its own recipe and the same epochs/batch, then "
                    "write compare.md, compare.csv (model, dataset, validation accuracy of the selected checkpoint, "
                    "selection (hold-out) accuracy, params, GFLOPs, train "
                    "img/s) and compare.png (validation curves).",
        examples=EXAMPLES,
    )
    p.add_argument("dataset")
    p.add_argument("models", nargs="+", metavar="MODEL")
    p.add_argument("--recipe", metavar="FILE", help="one recipe for every model (default: each family's own)")
    p.add_argument("--epochs", type=positive_int)
    p.add_argument("--batch-size", type=positive_int)
    p.add_argument("--budget-minutes", type=positive_float, metavar="MIN",
                   help="train each model for MIN minutes of this machine (measured speed -> epochs) "
                        "instead of a fixed number of epochs: the fair comparison of models of different cost")
    add_common_data_args(p)
    p.add_argument("--output", metavar="DIR", help="default: runs/compare-DATASET")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=run)


def run(args):
    from pathlib import Path

    from kconvnext.commands.train import check_names, overrides_from_args
    from kconvnext.training.compare import compare

    check_names(args.dataset, args.models)
    out = Path(args.output or f"runs/compare-{args.dataset}")
    rows, paths = compare(args.dataset, args.models, output=out, data_dir=args.data_dir,
                          overrides=overrides_from_args(args), verbose=2 if args.quiet else 1,
                          recipe=args.recipe)
    print(paths["markdown"].read_text())
    print("wrote " + ", ".join(str(p) for p in paths.values()))
    return 0
