"""`cli.py eval RUN_OR_MODEL_FILE [DATASET]`: top-1/top-5, per-class accuracy, confusion matrix."""
from kconvnext.commands.common import add_command, positive_int

EXAMPLES = """examples:
  python cli.py eval runs/catsdogs-convnext_t                     # best.keras, on the run's own data set
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
    p.add_argument("dataset", nargs="?",
                   help="catsdogs | cifar10 | folder (default: the data set the run trained on, from its run.json)")
    p.add_argument("--data-dir", metavar="DIR", help="default: the run's own when DATASET is its data set")
    p.add_argument("--batch-size", type=positive_int, default=32)
    p.add_argument("--limit", type=positive_int, help="at most this many images (quick checks)")
    p.add_argument("--json", metavar="FILE", help="also write the report as JSON")
    p.set_defaults(func=run)


def data_source(model, dataset=None, data_dir=None):
    """(dataset, data_dir) to evaluate on: as given, else what the run's run.json recorded."""
    from kconvnext.run_folder import resolve_model_file

    info = resolve_model_file(model).metadata
    if dataset is None:
        dataset = info.get("dataset")
        if dataset is None:
            raise ValueError(f"eval {model}: no DATASET given and no run.json beside it names one; "
                             f"pass it: `cli.py eval {model} catsdogs|cifar10|folder [--data-dir DIR]`.")
    if data_dir is None and dataset == info.get("dataset"):
        data_dir = info.get("data_dir")
    return dataset, data_dir


def run(args):
    import json

    from kconvnext.commands.train import check_names
    from kconvnext.training.evaluate import evaluate, format_report

    dataset, data_dir = data_source(args.model, args.dataset, args.data_dir)
    check_names(dataset, [])
    report = evaluate(args.model, dataset, data_dir=data_dir, batch_size=args.batch_size, limit=args.limit)
    print(format_report(report))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)
    return 0
