"""The trainer on small in-memory data: run folder contents, exact resume, NaN handling."""
import json
import shutil

import keras
import numpy as np
import pytest
import tensorflow as tf

from kconvnext.training import TrainingDiverged, train
from training_helpers import count_model_saves, steps_per_epoch, synthetic_bundle, tiny_run

def run(tmp_path, name="run", **kwargs):
    return tiny_run(tmp_path / name, **kwargs)


class StopAtEpoch(keras.callbacks.Callback):
    """Dies at the start of an epoch, after the previous epoch's checkpoint: a kill between epochs."""

    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epoch:
            raise RuntimeError("simulated kill")


@pytest.mark.slow
def test_run_folder_and_falling_loss(trained_run):
    result = trained_run.result
    d = result.run_dir
    losses = [h["loss"] for h in result.history]
    assert len(losses) == 3 and losses[-1] < losses[0]
    for name in ("checkpoints/last.keras", "checkpoints/best.keras", "recipe.yaml", "state.json",
                 "logs/training.csv", "plots/curves.png", "plots/confusion_matrix.png", "skipped_files.txt"):
        assert (d / name).is_file() and (d / name).stat().st_size > 0, name
    info = json.loads((d / "run.json").read_text())
    assert info["model"] == "convnext_atto" and info["class_names"] == ["c0", "c1"]
    assert info["image_size"] == 32 and info["eval_crop_ratio"] == 0.875 and info["normalization"] == "imagenet"
    assert "bad.jpg" in (d / "skipped_files.txt").read_text()
    # Raw and EMA validation are both logged every epoch.
    assert all("val_accuracy" in h and "val_ema_accuracy" in h for h in result.history)
    header = (d / "logs/training.csv").read_text().splitlines()[0]
    assert "val_ema_accuracy" in header and "val_accuracy" in header
    # A plain keras.Model with a plain loss.
    last = keras.models.load_model(d / "checkpoints/last.keras")
    assert type(last) is keras.Model or isinstance(last, keras.Model)
    assert isinstance(last.loss, keras.losses.CategoricalCrossentropy)
    assert int(last.optimizer.iterations) == 3 * 4


def _flat(weights):
    return np.concatenate([np.ravel(w) for w in weights])


@pytest.mark.slow
def test_resume_after_kill_ends_within_one_epoch_of_uninterrupted_run(tmp_path, trained_run):
    full = trained_run.result  # the uninterrupted run: the same call as below, never killed
    with pytest.raises(RuntimeError, match="simulated kill"):
        run(tmp_path, "killed", callbacks=[StopAtEpoch(2)])
    assert json.loads((tmp_path / "killed/state.json").read_text())["completed_epochs"] == 2
    at_kill = _flat(keras.models.load_model(tmp_path / "killed/checkpoints/last.keras").get_weights())
    resumed = run(tmp_path, "killed")  # the same call again resumes automatically
    assert resumed.epochs_completed == 3 and len(resumed.history) == 3
    assert int(resumed.model.optimizer.iterations) == int(full.model.optimizer.iterations) == 12
    # Epochs 1-2 are the same run; the resumed epoch 3 lands next to the uninterrupted one: much
    # closer than one epoch of training moves the weights (optimizer, schedule and EMA restored).
    assert [h["loss"] for h in resumed.history[:2]] == [h["loss"] for h in full.history[:2]]
    gap = np.linalg.norm(_flat(full.model.get_weights()) - _flat(resumed.model.get_weights()))
    one_epoch = np.linalg.norm(_flat(full.model.get_weights()) - at_kill)
    assert gap < 0.25 * one_epoch, (gap, one_epoch)


class InterruptAt(keras.callbacks.Callback):
    """Ctrl-C after `batch` batches of epoch `epoch` (1-based), as a user at the keyboard would."""

    def __init__(self, epoch, batch):
        super().__init__()
        self.epoch, self.batch, self._current = epoch, batch, None

    def on_epoch_begin(self, epoch, logs=None):
        self._current = epoch + 1

    def on_train_batch_end(self, batch, logs=None):
        if self._current == self.epoch and batch + 1 == self.batch:
            raise KeyboardInterrupt


@pytest.mark.slow
def test_ctrl_c_mid_epoch_resumes_at_the_next_batch(tmp_path, trained_run):
    full = trained_run.result  # the uninterrupted run: the same call as below, never stopped
    steps = steps_per_epoch(full.run_dir)
    lines = []
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path, "stopped", callbacks=[InterruptAt(epoch=2, batch=2)], verbose=1, print_fn=lines.append)
    assert f"2 of {steps} batches of epoch 2" in "\n".join(lines)
    at_stop = keras.models.load_model(tmp_path / "stopped/checkpoints/last.keras")
    assert int(at_stop.optimizer.iterations) == steps + 2
    lines.clear()
    resumed = run(tmp_path, "stopped", verbose=1, print_fn=lines.append)
    assert "resuming epoch 2 after its first 2 batch(es)" in "\n".join(lines)
    # Exactly the uninterrupted run's steps: the schedule ends on its last step, not 2 past it.
    assert int(resumed.model.optimizer.iterations) == int(full.model.optimizer.iterations) == 3 * steps
    assert len(resumed.history) == 3 and resumed.epochs_completed == 3
    assert resumed.history[0]["loss"] == full.history[0]["loss"]
    # Same batches in the same order with the same lr: the weights land next to the uninterrupted
    # run's (as for a resume between epochs, above; seen: ~8% of what the resumed
    # steps move them).
    gap = np.linalg.norm(_flat(full.model.get_weights()) - _flat(resumed.model.get_weights()))
    moved = np.linalg.norm(_flat(full.model.get_weights()) - _flat(at_stop.get_weights()))
    assert gap < 0.25 * moved, (gap, moved)


@pytest.mark.slow
def test_resume_with_a_different_recipe_is_refused(trained_run):
    folder = trained_run.result.run_dir
    before = {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    with pytest.raises(ValueError, match=r"different recipe.*lr.*--output NEW_DIR"):
        tiny_run(folder, lr=1e-2)
    assert {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()} == before  # refused before any write


@pytest.mark.slow
def test_nan_loss_stops_with_message_and_keeps_last_good_checkpoint(tmp_path, trained_run):
    shutil.copytree(trained_run.result.run_dir, tmp_path / "run")  # 3 good epochs, then one more:
    good = [np.array(w) for w in keras.models.load_model(tmp_path / "run/checkpoints/last.keras").get_weights()]
    poisoned = synthetic_bundle()
    poisoned.train = poisoned.train.map(lambda x, y: (x * np.float32("nan"), y))
    with pytest.raises(TrainingDiverged, match=r"loss became nan at epoch 4, step 1.*kept.*last\.keras \(epoch 3\)"):
        run(tmp_path, epochs=4, data=poisoned)
    kept = keras.models.load_model(tmp_path / "run/checkpoints/last.keras").get_weights()
    for a, b in zip(good, kept):
        np.testing.assert_array_equal(a, b)
    assert json.loads((tmp_path / "run/state.json").read_text())["completed_epochs"] == 3


@pytest.mark.slow
def test_nan_in_first_epoch_says_nothing_was_saved(tmp_path):
    poisoned = synthetic_bundle()
    poisoned.train = poisoned.train.map(lambda x, y: (x * np.float32("inf") * 0, y))
    with pytest.raises(TrainingDiverged, match="no epoch completed"):
        run(tmp_path, epochs=1, data=poisoned)
    assert not (tmp_path / "run/checkpoints/last.keras").exists()


@pytest.mark.slow
def test_a_model_that_answers_one_class_gets_a_warning(tmp_path, trained_run):
    """Trained on labels that are all c1, the model says c1 for everything: the end summary says it
    has not learned and points at the learning rate, instead of only printing ~chance accuracy."""
    one_class = synthetic_bundle()
    one_class.train = one_class.train.map(lambda x, y: (x, tf.one_hot(tf.ones_like(tf.argmax(y, -1)), 2)))
    lines = []
    run(tmp_path, epochs=2, data=one_class, verbose=1, print_fn=lines.append, ema=False)
    assert "predicts 'c1' for every validation image" in "\n".join(lines)
    assert "for every validation image" not in "\n".join(trained_run.lines)  # the learnable data


@pytest.mark.slow
def test_finetune_recipe_starts_from_the_checkpoint(tmp_path, catsdogs_dir):
    """The fine-tuning path end to end: recipes/catsdogs_finetune.yaml + pretrained=FILE (a timm
    checkpoint of a small ConvNeXt, 7 classes) -> a 2-class model whose backbone starts from the
    file (and moves little at the fine-tuning lr), with a fresh head and layer-wise lr decay."""
    import kconvnext

    fixture = "tests/fixtures/parity/convnext_timm.safetensors"
    arch = {"depths": [1, 1, 2, 1], "dims": [16, 32, 48, 64]}
    result = train("catsdogs", "convnext_atto", recipe="catsdogs_finetune", data_dir=str(catsdogs_dir),
                   output=tmp_path / "ft", verbose=0, epochs=1, batch_size=8, limit=16, image_size=64,
                   overrides={"pretrained": fixture, "model": arch})
    source = kconvnext.create_model("convnext_atto", num_classes=7, input_shape=(64, 64, 3), weights=fixture, **arch)
    tuned = result.model
    # 16 images, 2 of them held out to select the epoch on: one full batch of 8
    assert tuned.output_shape[-1] == 2 and int(tuned.optimizer.iterations) == 1
    start = source.get_layer("stem").get_weights()[0]
    moved = np.abs(tuned.get_layer("stem").get_weights()[0] - start).max()
    assert 0 < moved < 0.01 * np.abs(start).max() + 1e-3
    scales = tuned.optimizer.lr_scales
    assert scales["head_fc"] == 1.0 and scales["stem"] < scales["stages_3_blocks_0"] < 1.0


def test_a_best_epoch_of_raw_weights_links_last_keras(tmp_path, monkeypatch):
    """A new best on the raw weights is the model that last.keras has just saved: best.keras is that
    file (a hard link: neither a second serialisation nor a copy and its fsync, 319 MB for a
    ConvNeXt-T fine-tune with its optimizer state); the next last.keras is a new file, so best.keras
    keeps its epoch. An EMA best is the EMA weights, saved on their own."""
    from kconvnext.training import callbacks

    saved = count_model_saves(monkeypatch, callbacks)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    model.compile(optimizer="adam", loss="mse")
    checkpoint = callbacks.RunCheckpoint(tmp_path, {})
    checkpoint.set_model(model)
    last, best = tmp_path / "checkpoints" / "last.keras", tmp_path / "checkpoints" / "best.keras"
    checkpoint.on_epoch_end(0, {"val_accuracy": 0.5})
    assert saved == ["last.keras"] and best.samefile(last)
    first_best = best.read_bytes()
    model.layers[0].kernel.assign(model.layers[0].kernel + 1.0)
    checkpoint.on_epoch_end(1, {"val_accuracy": 0.4})  # worse: best.keras stays epoch 1's
    assert saved == ["last.keras"] * 2 and best.read_bytes() == first_best != last.read_bytes()
    reloaded = keras.models.load_model(best)
    np.testing.assert_array_equal(reloaded.layers[0].kernel.numpy() + 1.0, model.layers[0].kernel.numpy())
    assert checkpoint.state["best_epoch"] == 1 and checkpoint.state["completed_epochs"] == 2
