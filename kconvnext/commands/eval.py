"""`cli.py eval RUN_OR_MODEL_FILE DATASET`: top-1/top-5, per-class accuracy, confusion matrix."""
from kconvnext.commands.common import add_command

EXAMPLES = """examples:
  python cli.py eval runs/catsdogs-convnext_t catsdogs            # best.keras of a run
  python cli.py eval runs/catsdogs-convnext_t/checkpoints/last.keras catsdogs
  python cli.py eval model.keras folder --data-dir ~/photos --json report.json
"""


def register(subparsers):
    p = add_command(
        subparsers, "eval", help="evaluate a trained model on a data set's validation split",
        description="Evaluate a run folder (its best checkpoint) or a .keras file on the validation "
                    "split, resized and center-cropped exactly as during training.",
        examples=EXAMPLES,
    )
    p.add_argument("model", metavar="RUN_OR_MODEL_FILE")
    p.add_argument("dataset", help="catsdogs | cifar10 | folder")
    p.add_argument("--data-dir", metavar="DIR")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--limit", type=int, help="at most this many images (quick checks)")
    p.add_argument("--json", metavar="FILE", help="also write the report as JSON")
    p.set_defaults(func=run)


def run(args):
    import json

    from kconvnext.commands.train import check_names
    from kconvnext.training.evaluate import evaluate

    check_names(args.dataset, [])
    report = evaluate(args.model, args.dataset, data_dir=args.data_dir, batch_size=args.batch_size,
                      limit=args.limit)
    from kconvnext.training.evaluate import format_report

    print(format_report(report))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)
    return 0
