"""Train several models under one budget and tabulate them (what `cli.py compare` writes)."""
import csv

import keras

COLUMNS = ("model", "dataset", "accuracy", "selection_accuracy", "params", "gflops", "train_img_per_s", "epochs",
           "minutes")


def compare(dataset, models, *, output, data_dir=None, overrides=None, verbose=1, data=None, recipe=None):
    """-> (rows, {"markdown", "csv", "plot"} paths). Each model uses its own family recipe, or
    `recipe` for all; the overrides (epochs or budget_minutes, batch size, --set) are shared."""
    from kconvnext.flops import count_macs
    from kconvnext.training.plots import plot_compare
    from kconvnext.training.trainer import train

    output.mkdir(parents=True, exist_ok=True)
    rows, curves = [], {}
    for name in models:
        result = train(dataset, name, recipe=recipe, output=output / name, data_dir=data_dir, resume=False,
                       verbose=verbose, overrides=overrides, data=data)
        rows.append({
            "model": name, "dataset": dataset,
            # The validation/test split, evaluated once for the selected checkpoint (or the probe's head).
            "accuracy": round(result.report["top1"] if result.report else (result.best_accuracy or 0.0), 4),
            "selection_accuracy": round(result.best_accuracy, 4) if result.selected_on else None,
            "params": result.params,
            "gflops": round(count_macs(result.model) / 1e9, 3),
            "train_img_per_s": round(result.train_images_per_sec or 0.0, 1),
            "epochs": _epochs_done(result),
            "minutes": round(result.seconds / 60, 1),
        })
        curves[name] = [h.get("val_accuracy") for h in result.history]
        keras.backend.clear_session()
    paths = {"markdown": output / "compare.md", "csv": output / "compare.csv", "plot": output / "compare.png"}
    with open(paths["csv"], "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    paths["markdown"].write_text(markdown_table(rows))
    plot_compare(curves, paths["plot"], title=f"validation accuracy on {dataset}")
    return rows, paths


def _epochs_done(result):
    """Completed epochs; a budget shorter than one epoch shows as the fraction it trained."""
    plan = result.budget_plan
    if plan is not None and plan.steps_per_epoch < plan.full_steps_per_epoch:
        return round(result.epochs_completed * plan.steps_per_epoch / plan.full_steps_per_epoch, 2)
    return result.epochs_completed


def markdown_table(rows):
    head = ("| model | dataset | validation accuracy | selection accuracy | params | GFLOPs | train img/s | epochs "
            "| wall min |\n|---|---|---:|---:|---:|---:|---:|---:|---:|\n")
    return head + "".join(
        f"| {r['model']} | {r['dataset']} | {r['accuracy']:.4f} | "
        f"{'-' if r['selection_accuracy'] is None else format(r['selection_accuracy'], '.4f')} "
        f"| {r['params']:,} | {r['gflops']:.3f} "
        f"| {r['train_img_per_s']:.1f} | {r['epochs']:g} | {r['minutes']:.1f} |\n" for r in rows)
