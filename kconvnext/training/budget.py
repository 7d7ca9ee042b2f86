"""A compute budget in minutes instead of epochs (`budget_minutes` in a recipe, `--budget-minutes`).

Comparing a 3M- and a 25M-parameter model "for 10 epochs each" gives the big one 10x the compute;
users on a fixed machine want "what is best for 15 minutes of my machine". So before training the
trainer times a few optimizer steps of a throwaway copy of the model (same recipe, a real batch),
and turns the budget into a schedule: whole epochs when the budget holds at least one, otherwise
one shortened epoch. The cosine schedule then ends exactly when the budget does. The plan is
saved in state.json so a resumed run keeps it instead of re-measuring on a busier machine.
Validation time is not part of the budget (it does not change what the model learns).
"""
import dataclasses
import time

import keras


@dataclasses.dataclass(frozen=True)
class BudgetPlan:
    minutes: float
    images_per_sec: float
    epochs: int
    steps_per_epoch: int
    warmup_epochs: float  # in the plan's epochs (of steps_per_epoch steps)
    full_steps_per_epoch: int

    @property
    def epochs_trained(self):
        """In full passes over the training set (under 1 when the budget is under one epoch)."""
        return round(self.epochs * self.steps_per_epoch / self.full_steps_per_epoch, 3)

    def describe(self):
        part = ("" if self.steps_per_epoch == self.full_steps_per_epoch else
                f" of {self.steps_per_epoch}/{self.full_steps_per_epoch} steps (the budget is under one epoch)")
        return (f"budget    {self.minutes:g} min of training at a measured {self.images_per_sec:.1f} img/s "
                f"-> {self.epochs} epoch(s){part}, warmup {self.warmup_epochs:g} ep")


def plan_budget(minutes, images_per_sec, batch_size, steps_per_epoch, warmup_epochs, max_warmup_fraction=0.2):
    """Budget + measured speed -> epochs and steps per epoch (pure; the tests pin it down).

    Warmup stays the recipe's unless it would eat more than `max_warmup_fraction` of the budget.
    """
    if minutes <= 0:
        raise ValueError(f"budget_minutes must be > 0, got {minutes}.")
    if images_per_sec <= 0:
        raise ValueError(f"measured throughput must be > 0 img/s, got {images_per_sec}.")
    total = max(1, int(minutes * 60 * images_per_sec / batch_size))
    if total >= steps_per_epoch:
        epochs, steps = max(1, round(total / steps_per_epoch)), steps_per_epoch
    else:
        epochs, steps = 1, total
    # The schedule counts epochs of the plan (shortened ones, under one epoch): convert the
    # recipe's warmup (full epochs) to those, then cap it.
    warmup = min(float(warmup_epochs) * steps_per_epoch / steps, max_warmup_fraction * epochs)
    warmup = round(warmup, 4)
    return BudgetPlan(float(minutes), float(images_per_sec), int(epochs), int(steps), warmup, int(steps_per_epoch))


def measure_train_speed(build_compiled_model, batch, warmup_steps=2, min_steps=2, max_steps=8, max_seconds=20.0):
    """Training images/s of a throwaway model on one real batch (weights of the real run untouched).

    The first steps trace and compile, so they are run but not timed; then steps are timed until
    max_steps or max_seconds, whichever comes first (but at least min_steps).
    """
    model = build_compiled_model()
    x, y = batch
    for _ in range(warmup_steps):
        model.train_on_batch(x, y)
    steps, start = 0, time.perf_counter()
    while steps < min_steps or (steps < max_steps and time.perf_counter() - start < max_seconds):
        model.train_on_batch(x, y)
        steps += 1
    seconds = time.perf_counter() - start
    n = int(keras.ops.shape(x)[0])
    del model
    return steps * n / seconds


def plan_from_state(state):
    plan = state.get("budget_plan")
    return BudgetPlan(**plan) if plan else None


def apply_plan(config, plan):
    """The recipe with the plan's epochs and warmup (steps per epoch are the trainer's business)."""
    return dataclasses.replace(config, epochs=plan.epochs, warmup_epochs=plan.warmup_epochs)

