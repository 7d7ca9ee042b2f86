"""The end of a run: the validation report of the best checkpoint, the plots and the final run.json."""
import keras

from kconvnext.files import write_json_atomic
from kconvnext.run_folder import RunFolder
from kconvnext.training.evaluate import accuracy_report, predict_dataset
from kconvnext.training.plots import plot_confusion, plot_history


def finish(result, bundle, info, verbose):
    """Plots and the validation report of the best checkpoint; final run.json."""
    best = RunFolder(result.run_dir).best_checkpoint
    model = keras.models.load_model(best, compile=False) if best.is_file() else result.model
    probs, labels = predict_dataset(model, bundle.validation, verbose=0)
    return write_reports(result, accuracy_report(probs, labels, bundle.class_names), info)


def write_reports(result, report, info, extra=None):
    """curves.png, confusion_matrix.png, validation_report.json and the final run.json."""
    run_dir = result.run_dir
    plots = RunFolder(run_dir).plots
    plots.mkdir(exist_ok=True)
    if result.history:
        plot_history(result.history, plots / "curves.png", title=f"{info['model']} on {info['dataset']}")
    plot_confusion(report["confusion_matrix"], report["class_names"], plots / "confusion_matrix.png")
    write_json_atomic(RunFolder(run_dir).validation_report, report)
    RunFolder(run_dir).update_info({
        **info,
        "epochs_completed": result.epochs_completed, "best_accuracy": result.best_accuracy,
        "best_epoch": result.best_epoch, "best_weights": result.best_weights,
        "validation_top1": report["top1"], "train_images_per_sec": result.train_images_per_sec,
        **(extra or {}),
    })
    return report
