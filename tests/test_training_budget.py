"""A budget in minutes: measured speed -> a fixed schedule, kept across resume."""
import json
import subprocess
import sys

import pytest

from kconvnext.training import train
from kconvnext.training.budget import plan_budget
from training_helpers import synthetic_bundle

TINY = {"model": {"depths": [1, 1, 1, 1], "dims": [16, 32, 64, 128]}, "augment": {"mixup_alpha": 0.0}}


def test_plan_whole_epochs():
    # 10 min at 100 img/s, batch 50 -> 1200 steps; 390 steps per epoch -> 3 epochs (1170 steps).
    plan = plan_budget(10, 100.0, 50, 390, warmup_epochs=1)
    assert (plan.epochs, plan.steps_per_epoch, plan.warmup_epochs) == (3, 390, 0.6)  # warmup capped at 20%
    assert plan.epochs_trained == 3


def test_plan_under_one_epoch_shortens_the_epoch():
    plan = plan_budget(1, 10.0, 100, 500, warmup_epochs=0.001)
    assert (plan.epochs, plan.steps_per_epoch) == (1, 6) and plan.epochs_trained == 0.012
    assert plan.warmup_epochs == round(0.5 / 6, 4)  # 0.001 full epochs = 0.5 steps, of the 6-step epoch
    assert plan_budget(1, 10.0, 100, 500, warmup_epochs=1).warmup_epochs == 0.2  # capped at 20% of the run
    assert "under one epoch" in plan.describe()


def test_plan_counts_overheads_against_the_budget():
    """Issue 21 item 9: 1 min at 48.9 img/s, batch 32, 5 steps an epoch (3.3 s of steps) planned 18
    epochs and ran 1.9+ min: startup, tracing, validation and checkpoints were not in the plan."""
    bare = plan_budget(1, 48.9, 32, 5, warmup_epochs=1)
    assert bare.epochs == 18
    # 30 s spent once (start, data, tracing, report) + 2.7 s an epoch: 30 s / 6 s -> 5 epochs.
    plan = plan_budget(1, 48.9, 32, 5, warmup_epochs=1, overhead_seconds=30, epoch_overhead_seconds=2.7)
    assert (plan.epochs, plan.steps_per_epoch) == (5, 5) and plan.warmup_epochs == 1
    step, epoch = 32 / 48.9, 5 * 32 / 48.9 + 2.7
    assert 30 + plan.epochs * epoch <= 60 < 30 + (plan.epochs + 1) * epoch  # as many as fit, no more
    assert "30 s once" in plan.describe() and "2.7 s an epoch" in plan.describe()
    # Less than one epoch left: a shortened epoch of the steps that fit after its validation.
    short = plan_budget(1, 48.9, 32, 500, warmup_epochs=0, overhead_seconds=50, epoch_overhead_seconds=2)
    assert (short.epochs, short.steps_per_epoch) == (1, int((60 - 50 - 2) // step)) == (1, 12)
    # Overheads alone over the budget: still one step (the run cannot be shorter than its fixed costs).
    assert plan_budget(1, 48.9, 32, 5, 1, overhead_seconds=90).steps_per_epoch == 1


@pytest.mark.slow
def test_process_start_time_counts_the_startup_a_budget_must_cover():
    """The CLI's budget starts with the process (interpreter + TensorFlow import), not at train().
    The child takes the package as cli.py does before a command runs (kconvnext_cli, its __init__
    not run), so it does not start TensorFlow only to read /proc."""
    script = ("import sys, time; t = time.time(); time.sleep(1.5)\n"
              "import kconvnext_cli; kconvnext_cli.package_without_init()\n"
              "from kconvnext.timing import process_start_time\n"
              "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules\n"
              "print(t - process_start_time(), time.time() - process_start_time())")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300).stdout.split()
    before_sleep, now = float(out[-2]), float(out[-1])
    assert -0.05 <= before_sleep < now and now - before_sleep >= 1.5  # (clock ticks are 10 ms)


def test_measuring_traces_only_what_a_run_traces():
    """The training and test steps; not Keras' predict function, which a run never uses (its report
    predicts eagerly, evaluate.predict_dataset): tracing it cost ~0.9 s of a tiny model's measuring
    and was counted as tracing the run would do."""
    import keras
    import numpy as np

    from kconvnext.training.budget import measure_costs

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    model.compile("adam", "mse")
    saved = []
    costs = measure_costs(lambda: model, (np.zeros((8, 4), "float32"), np.zeros((8, 2), "float32")), saved.append,
                          max_seconds=0.1)
    assert model.train_function is not None and model.test_function is not None
    assert model.predict_function is None
    assert saved == [model] and costs.images_per_sec > 0 and costs.trace_seconds >= 0


def test_measuring_builds_the_optimizer_before_the_traced_steps_as_a_run_does():
    """A run builds its optimizer's variables before fit (fit_loop._build_without_training_data);
    made inside the first traced train step instead, they cost ~2.5 s more of a tiny ConvNeXt's
    measuring, counted as tracing the run would do."""
    import keras
    import numpy as np
    import tensorflow as tf

    from kconvnext.training.budget import measure_costs

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    model.compile(keras.optimizers.AdamW(), "mse")
    traced = []
    build = model.optimizer.build
    model.optimizer.build = lambda variables: (traced.append(tf.inside_function()), build(variables))[1]
    measure_costs(lambda: model, (np.zeros((8, 4), "float32"), np.zeros((8, 2), "float32")), lambda m: None,
                  max_seconds=0.1)
    assert traced == [False]


@pytest.mark.parametrize("minutes,speed", [(0, 10.0), (-1, 10.0), (5, 0.0)])
def test_plan_rejects_nonsense(minutes, speed):
    with pytest.raises(ValueError, match="budget_minutes|throughput"):
        plan_budget(minutes, speed, 32, 10, 1)


@pytest.mark.slow
def test_budget_run_trains_the_planned_steps_and_resume_keeps_the_plan(tmp_path):
    args = dict(batch_size=16, image_size=32, small_input=True, lr=2e-3, warmup_epochs=0.5, drop_path_rate=0.0,
                ema=False, budget_minutes=0.05, overrides=TINY, verbose=0, recipe="catsdogs_convnext_scratch")
    first = train("catsdogs", "convnext_atto", data=synthetic_bundle(), output=tmp_path / "run", **args)
    plan = first.budget_plan
    assert plan is not None and plan.images_per_sec > 0
    assert first.epochs_completed == plan.epochs
    assert int(first.model.optimizer.iterations) == plan.epochs * plan.steps_per_epoch
    state = json.loads((tmp_path / "run/state.json").read_text())
    info = json.loads((tmp_path / "run/run.json").read_text())
    assert state["budget_plan"] == info["budget_plan"] and info["epochs"] == plan.epochs
    # Resuming does not measure again (the machine may be busier now): same plan, nothing left to train.
    again = train("catsdogs", "convnext_atto", data=synthetic_bundle(), output=tmp_path / "run", **args)
    assert again.budget_plan == plan and again.epochs_completed == plan.epochs


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_guard_shortens_the_schedule_when_epochs_are_slower_than_planned():
    """The plan comes from a throughput measured before training; when real epochs are slower (data
    pipeline, a noisy machine: a 20-minute budget took 24.3 minutes) the guard ends the schedule at
    the epochs that fit, so the run keeps its budget and its cosine still reaches min_lr."""
    import types

    from kconvnext.training.budget import BudgetGuard

    clock, replans = FakeClock(), []
    guard = BudgetGuard(budget_seconds=200, spent_seconds=20, reserve_seconds=10, replan=replans.append, clock=clock)
    guard.set_model(types.SimpleNamespace(stop_training=False))
    guard.set_params({"epochs": 10})  # planned for 15-second epochs; they take 25 (the first and the one
    guard.on_train_begin()            # after the replan trace: 40 and 30)
    for epoch in range(10):
        guard.on_epoch_begin(epoch)
        clock.now += {0: 40, 2: 30}.get(epoch, 25)
        guard.on_epoch_end(epoch)
        if guard.model.stop_training:
            break
        clock.now += 50  # time outside the run's epochs (a user's callback) is not counted
    # After epoch 2: 20 + 40 + 25 = 85 spent, (200 - 85 - 10) // 25 = 4 more fit: the schedule ends after
    # epoch 6. The retrace's 30 s (epoch 3) is not taken for the typical epoch (it would replan to 5).
    assert replans == [6] and guard.stopped_after == 6 and epoch == 5
    assert guard.spent + guard.reserve_seconds <= 200


def test_guard_stops_at_once_when_not_even_one_more_epoch_fits():
    import types

    from kconvnext.training.budget import BudgetGuard

    clock, replans = FakeClock(), []
    guard = BudgetGuard(budget_seconds=100, spent_seconds=20, replan=replans.append, clock=clock)
    guard.set_model(types.SimpleNamespace(stop_training=False))
    guard.set_params({"epochs": 10})
    guard.on_train_begin()
    guard.on_epoch_begin(0)
    clock.now += 50  # 20 + 50 spent; another 50 would end at 120
    guard.on_epoch_end(0)
    assert guard.model.stop_training and guard.stopped_after == 1 and replans == []


@pytest.mark.slow
def test_a_replanned_run_ends_its_schedule_and_its_plan_where_the_budget_ends(tmp_path, monkeypatch):
    """The trainer's side of the guard: the plan says 8 epochs, the guard finds that 3 fit; the
    schedule is rebuilt to end after epoch 3 (lr at min_lr there), the run stops there, and the
    plan a resume reads says 3 (nothing left to train)."""
    import kconvnext.training.trainer as trainer
    from kconvnext.training.budget import BudgetGuard, BudgetPlan

    plan = BudgetPlan(minutes=30.0, images_per_sec=1000.0, epochs=8, steps_per_epoch=4, warmup_epochs=0.5,
                      full_steps_per_epoch=4)
    monkeypatch.setattr(trainer, "measure_budget", lambda *args: plan)
    monkeypatch.setattr(BudgetGuard, "epochs_that_fit", lambda self, done, seconds: 3)
    args = dict(batch_size=16, image_size=32, small_input=True, lr=2e-3, warmup_epochs=0.5, drop_path_rate=0.0,
                ema=False, budget_minutes=30, overrides=TINY, verbose=0, recipe="catsdogs_convnext_scratch")
    result = train("catsdogs", "convnext_atto", data=synthetic_bundle(), output=tmp_path / "run", **args)
    state = json.loads((tmp_path / "run/state.json").read_text())
    assert state["stopped_by_budget"] == {"epochs": 3, "planned": 8, "replans": [3]}
    assert result.epochs_completed == 3 == state["budget_plan"]["epochs"] == result.budget_plan.epochs
    assert int(result.model.optimizer.iterations) == 3 * 4
    assert float(result.model.optimizer.learning_rate) == pytest.approx(result.config.min_lr, rel=1e-3)
    again = train("catsdogs", "convnext_atto", data=synthetic_bundle(), output=tmp_path / "run", **args)
    assert again.epochs_completed == 3 and int(again.model.optimizer.iterations) == 12
