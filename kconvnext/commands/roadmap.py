"""`cli.py roadmap`: the ConvNeXt paper's ResNet-50 -> ConvNeXt-T roadmap, step by step.

For each step of kconvnext.models.roadmap: what changed, parameters, GFLOPs as we count them,
the paper's GFLOPs and ImageNet top-1 where it gives them (with their source), and measured CPU
inference speed; plus a PNG of GFLOPs and speed per step.
"""
import json

from kconvnext.commands.common import add_command

EXAMPLES = """examples:
  python cli.py roadmap                       # 224 px table + runs/roadmap/roadmap.{png,json,md}
  python cli.py roadmap --no-speed            # parameters and GFLOPs only (about a minute)
  python cli.py roadmap --image-size 32 --small-input --num-classes 10   # the CIFAR-sized models
  python cli.py compare cifar10 roadmap_00_resnet50 roadmap_06_kernel_7x7 roadmap_11_convnext_t --budget-minutes 10

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
    p.add_argument("--image-size", type=int, default=224)
    p.add_argument("--num-classes", type=int, default=1000)
    p.add_argument("--small-input", action="store_true", help="the 32x32 (CIFAR) stems")
    p.add_argument("--no-speed", action="store_true", help="skip the CPU inference timing")
    p.add_argument("--batch-size", type=int, default=8, help="images per timed batch (default 8)")
    p.add_argument("--repeats", type=int, default=3, help="timed batches per step (default 3)")
    p.add_argument("--steps", nargs="+", metavar="STEP", help="only these steps (index, key or name)")
    p.add_argument("--output", metavar="DIR", default="runs/roadmap",
                   help="where roadmap.json, roadmap.md and roadmap.png go (default: runs/roadmap)")
    p.set_defaults(func=run)


def inference_images_per_sec(model, image_size, batch_size, repeats):
    from kconvnext.timing import median_seconds, random_images

    images = random_images(batch_size, image_size)
    seconds = median_seconds(lambda: model.predict_on_batch(images), warmup=1, repeats=repeats)
    return batch_size / seconds


def roadmap_table(image_size=224, num_classes=1000, small_input=False, speed=True, batch_size=8,
                  repeats=3, steps=None, log=print):
    """One row per roadmap step, building (and timing) each model once."""
    import keras

    from kconvnext.flops import count_macs, count_params
    from kconvnext.models.roadmap import STEPS, build_roadmap, get_step

    chosen = [get_step(_index_or_name(s)) for s in steps] if steps else list(STEPS)
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
            "paper_source": step.source, "image_size": image_size,
            "img_per_s": (round(inference_images_per_sec(model, image_size, batch_size, repeats), 1)
                          if speed else None),
        })
        del model
        keras.backend.clear_session()
    return rows


def _index_or_name(value):
    return int(value) if str(value).isdigit() else value


def _fmt(value, spec, empty="-"):
    return empty if value is None else format(value, spec)


def text_table(rows):
    lines = [f"{'step':>4}  {'change':<46} {'params':>11} {'GFLOPs':>7} {'paper':>6} {'top-1':>6} {'img/s':>7}"]
    for r in rows:
        lines.append(
            f"{r['step']:>4}  {r['change']:<46} {r['params'] / 1e6:>10.2f}M {r['gflops']:>7.2f} "
            f"{_fmt(r['paper_gflops'], '.1f'):>6} {_fmt(r['paper_top1'], '.1f'):>6} {_fmt(r['img_per_s'], '.1f'):>7}"
        )
    return "\n".join(lines)


def markdown_table(rows):
    head = ("| step | model | change | params | GFLOPs | paper GFLOPs | paper top-1 (%) | CPU img/s |\n"
            "|---:|---|---|---:|---:|---:|---:|---:|\n")
    return head + "".join(
        f"| {r['step']} | {r['model']} | {r['change']} | {r['params']:,} | {r['gflops']:.2f} "
        f"| {_fmt(r['paper_gflops'], '.1f')} | {_fmt(r['paper_top1'], '.1f')} | {_fmt(r['img_per_s'], '.1f')} |\n"
        for r in rows)


def plot_roadmap(rows, path, title):
    """GFLOPs per step (bars: ours; dots: the paper's) and, when measured, CPU img/s (line, right axis)."""
    from kconvnext.training.plots import _save, plt

    steps = list(range(len(rows)))  # positions; the labels carry the step numbers
    fig, ax = plt.subplots(figsize=(11, 4.8))
    ax.bar(steps, [r["gflops"] for r in rows], color="#9ecae1", label="GFLOPs (counted)")
    paper = [(i, r["paper_gflops"]) for i, r in zip(steps, rows) if r["paper_gflops"] is not None]
    if paper:
        ax.plot(*zip(*paper), "o", color="#08519c", label="GFLOPs (paper)")
    ax.set_ylabel("GFLOPs (multiply-adds)")
    ax.set_xticks(steps, [f"{r['step']} {r['model'].split('_', 2)[2]}" for r in rows], rotation=35, ha="right")
    handles, labels = ax.get_legend_handles_labels()
    if any(r["img_per_s"] is not None for r in rows):
        speed_ax = ax.twinx()
        speed_ax.plot(steps, [r["img_per_s"] for r in rows], "s-", color="#d95f02", label="CPU inference img/s")
        speed_ax.set_ylabel("images / s (CPU, inference)")
        speed_ax.set_ylim(bottom=0)
        more = speed_ax.get_legend_handles_labels()
        handles, labels = handles + more[0], labels + more[1]
    ax.legend(handles, labels, loc="lower left", fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    ax.set_title(title)
    _save(fig, path)


def run(args):
    from pathlib import Path

    rows = roadmap_table(args.image_size, args.num_classes, args.small_input, speed=not args.no_speed,
                         batch_size=args.batch_size, repeats=args.repeats, steps=args.steps)
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "roadmap.json", "markdown": out / "roadmap.md", "plot": out / "roadmap.png"}
    paths["json"].write_text(json.dumps(rows, indent=2))
    paths["markdown"].write_text(markdown_table(rows))
    size = f"{args.image_size} px" + (", small-input stems" if args.small_input else "")
    plot_roadmap(rows, paths["plot"], title=f"ResNet-50 -> ConvNeXt-T roadmap ({size})")
    print(text_table(rows))
    print("paper: Liu et al. 2022, 'A ConvNet for the 2020s' (ImageNet-1k, 224 px); sources per step in roadmap.json")
    print("wrote " + ", ".join(str(p) for p in paths.values()))
    return 0
