"""A compute budget in minutes instead of epochs (`budget_minutes` in a recipe, `--budget-minutes`).

Comparing a 3M- and a 25M-parameter model "for 10 epochs each" gives the big one 10x the compute;
users on a fixed machine want "what is best for 15 minutes of my machine". So before training the
trainer times a few optimizer steps of a throwaway copy of the model (same recipe, a real batch),
its tracing, an evaluation batch and a checkpoint save, and turns the budget into a schedule:
whole epochs when the budget holds at least one, otherwise one shortened epoch. The budget is the
whole command's wall time, so what is not training comes off it first: the time already spent
(startup, data, the measuring), tracing, validation and checkpoints every epoch, and the final
report. The cosine schedule then ends when the budget does. The plan is saved in state.json so a
resumed run keeps it instead of re-measuring on a busier machine.
"""
import dataclasses
import time

import keras


@dataclasses.dataclass(frozen=True)
class Costs:
    """What a budgeted run spends its time on, measured on a throwaway model (measure_costs)."""
    images_per_sec: float  # training steps
    trace_seconds: float = 0.0  # tracing/compiling the train and test functions, once each
    eval_images_per_sec: float = float("inf")  # validation / prediction
    save_seconds: float = 0.0  # writing one .keras checkpoint (loading one costs about as much)


@dataclasses.dataclass(frozen=True)
class BudgetPlan:
    minutes: float
    images_per_sec: float
    epochs: int
    steps_per_epoch: int
    warmup_epochs: float  # in the plan's epochs (of steps_per_epoch steps)
    full_steps_per_epoch: int
    overhead_seconds: float = 0.0  # once: startup, data, measuring, tracing, the final report
    epoch_overhead_seconds: float = 0.0  # every epoch: validation and checkpoints
    report_seconds: float = 0.0  # at the end: the final report (part of overhead_seconds), BudgetGuard keeps it free

    @property
    def epochs_trained(self):
        """In full passes over the training set (under 1 when the budget is under one epoch)."""
        return round(self.epochs * self.steps_per_epoch / self.full_steps_per_epoch, 3)

    def describe(self):
        part = ("" if self.steps_per_epoch == self.full_steps_per_epoch else
                f" of {self.steps_per_epoch}/{self.full_steps_per_epoch} steps (the budget is under one epoch)")
        training = self.minutes * 60 - self.overhead_seconds - self.epochs * self.epoch_overhead_seconds
        return (f"budget    {self.minutes:g} min in all: {self.overhead_seconds:.0f} s once (start, data, tracing, "
                f"report) + {self.epoch_overhead_seconds:.1f} s an epoch (validation, checkpoints), "
                f"~{max(training, 0):.0f} s for training steps at a measured {self.images_per_sec:.1f} img/s "
                f"-> {self.epochs} epoch(s){part}, warmup {self.warmup_epochs:g} ep")


def plan_budget(minutes, images_per_sec, batch_size, steps_per_epoch, warmup_epochs, max_warmup_fraction=0.2,
                overhead_seconds=0.0, epoch_overhead_seconds=0.0, report_seconds=0.0):
    """Budget + measured costs -> epochs and steps per epoch (pure; the tests pin it down).

    The budget is the whole command's wall time: `overhead_seconds` (spent once: before training,
    tracing, the final report) and `epoch_overhead_seconds` (validation and checkpoints, every
    epoch) come off it, and the training steps get the rest. Whole epochs when at least one fits
    (rounded down: the run must end inside its budget), else one shortened epoch; at least one step
    even when the overheads alone fill the budget. Warmup stays the recipe's unless it would eat more
    than `max_warmup_fraction` of the run.
    """
    if minutes <= 0:
        raise ValueError(f"budget_minutes must be > 0, got {minutes}.")
    if images_per_sec <= 0:
        raise ValueError(f"measured throughput must be > 0 img/s, got {images_per_sec}.")
    step_seconds = batch_size / images_per_sec
    available = minutes * 60 - overhead_seconds
    epoch_seconds = steps_per_epoch * step_seconds + epoch_overhead_seconds
    if available >= epoch_seconds:
        epochs, steps = max(1, int(available // epoch_seconds)), steps_per_epoch
    else:
        epochs, steps = 1, max(1, min(steps_per_epoch, int((available - epoch_overhead_seconds) // step_seconds)))
    # The schedule counts epochs of the plan (shortened ones, under one epoch): convert the
    # recipe's warmup (full epochs) to those, then cap it.
    warmup = min(float(warmup_epochs) * steps_per_epoch / steps, max_warmup_fraction * epochs)
    warmup = round(warmup, 4)
    return BudgetPlan(float(minutes), float(images_per_sec), int(epochs), int(steps), warmup, int(steps_per_epoch),
                      round(float(overhead_seconds), 1), round(float(epoch_overhead_seconds), 2),
                      round(float(report_seconds), 1))


class BudgetGuard(keras.callbacks.Callback):
    """Keeps a budgeted run inside its budget when epochs are slower than planned, by ending the
    schedule earlier (so the cosine still ends at its min_lr) instead of overrunning.

    The plan comes from steps timed on one repeated batch before training; real epochs also feed
    the data pipeline from the same cores and share a noisy machine (a 20-minute budget took 24.3
    minutes with jit_compile). After each epoch, the epochs that still fit are estimated from the
    median epoch so far (the first, and the one after each replan, are left out: they trace, and
    under XLA compile, for a minute or more); when fewer fit than planned,
    `replan(epochs)` shortens the schedule (at most `max_replans` times, each retraces the train
    step) and training stops at the new end. If even the next epoch would not fit, training stops
    at once. Time between the run's epochs that is not its own (a user's callback placed after
    this one) is not counted.
    """

    def __init__(self, budget_seconds, spent_seconds, reserve_seconds=0.0, replan=None, max_replans=3,
                 clock=time.perf_counter, print_fn=None):
        super().__init__()
        self.budget_seconds, self.reserve_seconds = float(budget_seconds), float(reserve_seconds)
        self.replan, self.max_replans = replan, int(max_replans)
        self.clock, self.print_fn = clock, print_fn
        self.spent = float(spent_seconds)  # before the first epoch, and in the epochs that ended
        self.target = None  # the epoch the run now ends after (the plan's, until a replan)
        self.planned = None
        self.replans = []  # the targets set by replans
        self.stopped_after = None  # epochs trained when the guard ended the run before the plan's end
        self._durations, self._begin, self._first, self._retraced = [], None, None, False

    def epochs_that_fit(self, done, epoch_seconds):
        left = self.budget_seconds - self.spent - self.reserve_seconds
        return done + max(0, int(left // max(epoch_seconds, 1e-9)))

    def on_train_begin(self, logs=None):
        self.target = self.planned = int(self.params["epochs"])

    def on_epoch_begin(self, epoch, logs=None):
        self._begin = self.clock()
        self._first = epoch if self._first is None else self._first

    def on_epoch_end(self, epoch, logs=None):
        seconds = self.clock() - self._begin
        self.spent += seconds
        done = epoch + 1
        if epoch != self._first and not self._retraced:
            self._durations.append(seconds)
        self._retraced = False
        if done < self.target:
            if self.epochs_that_fit(done, seconds) <= done:  # not even one more epoch like this one
                self._end(done, f"another {seconds:.0f}-second epoch would pass the budget")
            elif self._durations and len(self.replans) < self.max_replans:
                typical = sorted(self._durations)[(len(self._durations) - 1) // 2]  # (the lower median)
                fits = self.epochs_that_fit(done, typical)
                if fits < self.target:
                    self.target = fits
                    self.replans.append(fits)
                    if self.replan is not None:
                        self.replan(fits)
                        self._retraced = True
                    self._say(f"epochs take ~{typical:.0f} s, more than planned: the schedule now ends after "
                              f"epoch {fits} of the {self.planned} planned")
        if self.target < self.planned and done >= self.target:
            self._end(done)

    def _end(self, done, why=None):
        self.model.stop_training = True
        self.stopped_after = done
        if why:
            self._say(f"{why}: stopping after epoch {done} of {self.target}")

    def _say(self, text):
        if self.print_fn:
            self.print_fn(f"\nbudget: {text} ({self.budget_seconds / 60:g}-minute budget)")


def measure_costs(build_compiled_model, batch, save, warmup_steps=2, min_steps=2, max_steps=8, max_seconds=20.0):
    """Costs of a throwaway model on one real batch (weights of the real run untouched).

    The first steps trace and compile, so they are timed apart (trace_seconds, with the first test
    call); then training steps are timed until max_steps or max_seconds, whichever comes first (but
    at least min_steps), evaluation once, and `save(model)` once. Keras' predict function is not
    traced: a run never uses it (its report predicts eagerly, evaluate.predict_dataset).
    """
    model = build_compiled_model()
    x, y = batch
    if model.optimizer is not None and not model.optimizer.built and model.built:
        # As a run does before fit (fit_loop): made inside the first traced step, the optimizer's
        # variables cost more than the tracing itself on a small model.
        model.optimizer.build(model.trainable_variables)
    start = time.perf_counter()
    for _ in range(warmup_steps):
        model.train_on_batch(x, y)
    model.test_on_batch(x, y)
    trace = time.perf_counter() - start
    steps, start = 0, time.perf_counter()
    while steps < min_steps or (steps < max_steps and time.perf_counter() - start < max_seconds):
        model.train_on_batch(x, y)
        steps += 1
    seconds = time.perf_counter() - start
    n = int(keras.ops.shape(x)[0])
    start = time.perf_counter()
    model.test_on_batch(x, y)
    eval_seconds = time.perf_counter() - start
    start = time.perf_counter()
    save(model)
    save_seconds = time.perf_counter() - start
    del model
    # The warmup steps were steps too: what they took beyond a timed step is the tracing.
    trace = max(0.0, trace - warmup_steps * seconds / steps - eval_seconds)
    return Costs(steps * n / seconds, trace, n / max(eval_seconds, 1e-9), save_seconds)


def plan_from_state(state):
    plan = state.get("budget_plan")
    return BudgetPlan(**plan) if plan else None


def apply_plan(config, plan):
    """The recipe with the plan's epochs and warmup (steps per epoch are the trainer's business)."""
    return dataclasses.replace(config, epochs=plan.epochs, warmup_epochs=plan.warmup_epochs)

