"""The roadmap's figure: GFLOPs and CPU speed per step, and measured accuracy beside the paper's."""
from kconvnext.training.plots import plt, save_figure


def plot_roadmap(rows, path, title):
    """GFLOPs per step (bars: ours; dots: the paper's) and, when measured, CPU img/s (line, right axis);
    with accuracies, a second panel of them below."""
    steps = list(range(len(rows)))  # positions; the labels carry the step numbers
    if any(r.get("accuracy") is not None for r in rows):
        fig, (ax, bottom_ax) = plt.subplots(2, 1, figsize=(11, 8.4), sharex=True)
        _plot_accuracy(bottom_ax, steps, rows)
    else:
        fig, ax = plt.subplots(figsize=(11, 4.8))
        bottom_ax = ax
    ax.bar(steps, [r["gflops"] for r in rows], color="#9ecae1", label="GFLOPs (counted)")
    # The paper's GFLOPs are for 224 px ImageNet stems: only comparable to ours at that setting.
    paper = [(i, r["paper_gflops"]) for i, r in zip(steps, rows)
             if r["paper_gflops"] is not None and r["image_size"] == 224 and not r.get("small_input")]
    if paper:
        ax.plot(*zip(*paper), "o", color="#08519c", label="GFLOPs (paper)")
    ax.set_ylabel("GFLOPs (multiply-adds)")
    bottom_ax.set_xticks(steps, [f"{r['step']} {r['model'].split('_', 2)[2]}" for r in rows], rotation=35,
                         ha="right")
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
    save_figure(fig, path)


def _plot_accuracy(ax, steps, rows):
    """Measured top-1 per step (left axis) beside the paper's ImageNet top-1 (right axis)."""
    dataset = next((r["accuracy_dataset"] for r in rows if r.get("accuracy_dataset")), None) or "your data"
    measured = [None if r.get("accuracy") is None else 100 * r["accuracy"] for r in rows]
    ax.plot(steps, [float("nan") if v is None else v for v in measured], "o-", color="#1b9e77",
            label=f"top-1 on {dataset} (measured)")
    for x, value in zip(steps, measured):
        if value is not None:
            ax.annotate(f"{value:.1f}", (x, value), textcoords="offset points", xytext=(0, 6), ha="center", fontsize=8)
    ax.set_ylabel(f"top-1 on {dataset} (%)")
    ax.margins(y=0.15)
    ax.grid(axis="y", alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    paper = [(x, r["paper_top1"]) for x, r in zip(steps, rows) if r["paper_top1"] is not None]
    if paper:
        paper_ax = ax.twinx()
        paper_ax.plot(*zip(*paper), "d--", color="#7570b3", alpha=0.7, label="ImageNet top-1 (paper)")
        paper_ax.set_ylabel("ImageNet top-1, paper (%)")
        more = paper_ax.get_legend_handles_labels()
        handles, labels = handles + more[0], labels + more[1]
    ax.legend(handles, labels, loc="lower right", fontsize=8)
