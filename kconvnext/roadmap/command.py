"""`cli.py roadmap`: the ConvNeXt paper's ResNet-50 -> ConvNeXt-T roadmap, step by step.

For each step of kconvnext.roadmap.models: what changed, parameters, GFLOPs as we count them,
the paper's GFLOPs and ImageNet top-1 where it gives them (with their source), and measured CPU
inference speed; plus a PNG of GFLOPs and speed per step. Given a `cli.py compare` table of roadmap
steps (`--accuracy compare.csv`), it adds the accuracy each step reached on your data next to the
paper's ImageNet top-1: which ingredients pay off outside ImageNet.
"""
import json

from kconvnext.commands.common import add_command, positive_int

EXAMPLES = """examples:
  python cli.py roadmap                       # 224 px table + runs/roadmap/roadmap.{png,json,md}
  python cli.py roadmap --no-speed            # parameters and GFLOPs only (about a minute)
  python cli.py roadmap --image-size 32 --small-input --num-classes 10   # the CIFAR-sized models
  python cli.py compare cifar10 roadmap_00_resnet50 roadmap_06_kernel_7x7 roadmap_11_convnext_t --budget-minutes 10 \
      --output runs/cmp && python cli.py roadmap --image-size 32 --small-input --num-classes 10 --no-speed \
      --accuracy runs/cmp/compare.csv   # + the accuracy each step reached, per step (table and plot)

Speed is the median of a few batches after one warm-up batch (kconvnext/timing.py, as in benchmarks/), on this
machine's CPU: a rough guide to what each change costs, not a benchmark.
"""


def register(subparsers):
    p = add_command(
        subparsers, "roadmap", help="the paper's ResNet-50 -> ConvNeXt-T roadmap: params, GFLOPs, CPU speed",
        description="Build every step of the ConvNeXt paper's 'modernizing a ResNet' roadmap "
                    "(roadmap_00_resnet50 ... roadmap_11_convnext_t) and tabulate its change, "
                    "parameters, GFLOPs (counted), the paper's GFLOPs and ImageNet top-1, and CPU "
                    "inference images/s; write the table (JSON, Markdown) and a PNG plot.",
        examples=EXAMPLES,
    )
    p.add_argument("--image-size", type=positive_int, default=224)
    p.add_argument("--num-classes", type=positive_int, default=1000)
    p.add_argument("--small-input", action="store_true", help="the 32x32 (CIFAR) stems")
    p.add_argument("--no-speed", action="store_true", help="skip the CPU inference timing")
    p.add_argument("--batch-size", type=positive_int, default=8, help="images per timed batch (default 8)")
    p.add_argument("--repeats", type=positive_int, default=3, help="timed batches per step (default 3)")
    p.add_argument("--steps", nargs="+", metavar="STEP", help="only these steps (index, key or name)")
    p.add_argument("--accuracy", metavar="CSV",
                   help="a `cli.py compare` compare.csv of roadmap steps: add the accuracy each reached (table, plot)")
    p.add_argument("--output", metavar="DIR", default="runs/roadmap",
                   help="where roadmap.json, roadmap.md and roadmap.png go (default: runs/roadmap)")
    p.set_defaults(func=run)


def inference_images_per_sec(model, image_size, batch_size, repeats):
    from kconvnext.timing import median_seconds, random_images

    images = random_images(batch_size, image_size)
    seconds = median_seconds(lambda: model.predict_on_batch(images), warmup=1, repeats=repeats)
    return batch_size / seconds


def read_accuracy(path):
    """{roadmap step name: (accuracy, dataset)} from a `cli.py compare` compare.csv."""
    import csv
    from pathlib import Path

    from kconvnext.roadmap.models import STEP_NAMES

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"--accuracy {path}: no such file; pass the compare.csv that "
                                f"`cli.py compare DATASET roadmap_00_resnet50 ... --output DIR` wrote in DIR.")
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        missing = {"model", "accuracy"} - set(reader.fieldnames or ())
        if missing:
            raise ValueError(f"--accuracy {path}: not a compare.csv (no {', '.join(sorted(missing))} column).")
        found = {}
        for row in reader:
            if row["model"] in STEP_NAMES:
                try:
                    found[row["model"]] = (float(row["accuracy"]), row.get("dataset"))
                except ValueError:
                    raise ValueError(f"--accuracy {path}: accuracy {row['accuracy']!r} of {row['model']} "
                                     f"is not a number.") from None
    if not found:
        raise ValueError(f"--accuracy {path}: no roadmap step in it (models roadmap_00_resnet50 ... "
                         f"roadmap_11_convnext_t); compare roadmap steps first.")
    return found


def roadmap_table(image_size=224, num_classes=1000, small_input=False, speed=True, batch_size=8,
                  repeats=3, steps=None, accuracy=None, log=print):
    """One row per roadmap step, building (and timing) each model once. accuracy: read_accuracy's
    mapping; without `steps` the table then holds the steps it has."""
    import keras

    from kconvnext.flops import count_macs, count_params
    from kconvnext.roadmap.models import STEPS, build_roadmap, get_step

    accuracy = accuracy or {}
    if steps:
        chosen = [get_step(_index_or_name(s)) for s in steps]
    else:
        chosen = [step for step in STEPS if step.name in accuracy] if accuracy else list(STEPS)
    if batch_size < 1 or repeats < 1:
        raise ValueError(f"--batch-size and --repeats must be >= 1, got {batch_size} and {repeats}.")
    rows = []
    for step in chosen:
        log(f"building {step.name} ...")
        model = build_roadmap(step.index, input_shape=(image_size, image_size, 3), num_classes=num_classes,
                              small_input=small_input)
        rows.append({
            "step": step.index, "model": step.name, "change": step.change, "family": step.family,
            "params": count_params(model), "gflops": round(count_macs(model) / 1e9, 3),
            "paper_gflops": step.paper_gflops, "paper_top1": step.paper_top1,
            "paper_source": step.source, "image_size": image_size, "small_input": small_input,
            "img_per_s": (round(inference_images_per_sec(model, image_size, batch_size, repeats), 1)
                          if speed else None),
            "accuracy": accuracy.get(step.name, (None, None))[0],
            "accuracy_dataset": accuracy.get(step.name, (None, None))[1],
        })
        del model
        keras.backend.clear_session()
    return rows


def _index_or_name(value):
    return int(value) if str(value).isdigit() else value


def _fmt(value, spec, empty="-"):
    return empty if value is None else format(value, spec)


def _has_accuracy(rows):
    return any(r.get("accuracy") is not None for r in rows)


def _percent(value):
    return None if value is None else 100 * value


def text_table(rows):
    yours = _has_accuracy(rows)
    lines = [f"{'step':>4}  {'change':<46} {'params':>11} {'GFLOPs':>7} {'paper':>6} {'top-1':>6} {'img/s':>7}"
             + (f" {'yours':>6}" if yours else "")]
    for r in rows:
        lines.append(
            f"{r['step']:>4}  {r['change']:<46} {r['params'] / 1e6:>10.2f}M {r['gflops']:>7.2f} "
            f"{_fmt(r['paper_gflops'], '.1f'):>6} {_fmt(r['paper_top1'], '.1f'):>6} {_fmt(r['img_per_s'], '.1f'):>7}"
            + (f" {_fmt(_percent(r['accuracy']), '.1f'):>6}" if yours else "")
        )
    return "\n".join(lines)


def markdown_table(rows):
    yours = _has_accuracy(rows)
    dataset = next((r["accuracy_dataset"] for r in rows if r.get("accuracy_dataset")), None) or "your data"
    head = ("| step | model | change | params | GFLOPs | paper GFLOPs | paper top-1 (%) | CPU img/s |"
            + (f" top-1 on {dataset} (%) |" if yours else "") + "\n"
            + "|---:|---|---|---:|---:|---:|---:|---:|" + ("---:|" if yours else "") + "\n")
    return head + "".join(
        f"| {r['step']} | {r['model']} | {r['change']} | {r['params']:,} | {r['gflops']:.2f} "
        f"| {_fmt(r['paper_gflops'], '.1f')} | {_fmt(r['paper_top1'], '.1f')} | {_fmt(r['img_per_s'], '.1f')} |"
        + (f" {_fmt(_percent(r['accuracy']), '.1f')} |" if yours else "") + "\n"
        for r in rows)


def run(args):
    from pathlib import Path

    accuracy = read_accuracy(args.accuracy) if args.accuracy else None
    rows = roadmap_table(args.image_size, args.num_classes, args.small_input, speed=not args.no_speed,
                         batch_size=args.batch_size, repeats=args.repeats, steps=args.steps, accuracy=accuracy)
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "roadmap.json", "markdown": out / "roadmap.md", "plot": out / "roadmap.png"}
    paths["json"].write_text(json.dumps(rows, indent=2))
    paths["markdown"].write_text(markdown_table(rows))
    size = f"{args.image_size} px" + (", small-input stems" if args.small_input else "")
    from kconvnext.roadmap.plots import plot_roadmap

    plot_roadmap(rows, paths["plot"], title=f"ResNet-50 -> ConvNeXt-T roadmap ({size})")
    print(text_table(rows))
    print("paper: Liu et al. 2022, 'A ConvNet for the 2020s' (ImageNet-1k, 224 px); sources per step in roadmap.json")
    print("wrote " + ", ".join(str(p) for p in paths.values()))
    return 0
