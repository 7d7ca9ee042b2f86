"""Learning-rate schedule: linear warmup then cosine decay, in optimizer steps.

Counted in steps (not epochs) so the lr changes smoothly inside each epoch, as in the paper's code,
and so a resumed run picks up exactly where it stopped: the schedule is a pure function of
`optimizer.iterations`, which the checkpoint restores. Registered so `.keras` files reload it.
"""
import math

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="kconvnext")
class WarmupCosine(keras.optimizers.schedules.LearningRateSchedule):
    """0 -> peak_lr linearly over warmup_steps, then cosine from peak_lr to min_lr at total_steps.

    Not Keras' CosineDecay(warmup_target=...): its warmup gives step 0 a learning rate of 0, a
    wasted first step (a 1-step fine-tune would not move), where this one starts at peak/warmup."""

    def __init__(self, peak_lr, total_steps, warmup_steps=0, min_lr=0.0):
        if total_steps < 1:
            raise ValueError(f"total_steps must be >= 1, got {total_steps}.")
        self.peak_lr = float(peak_lr)
        self.total_steps = int(total_steps)
        self.warmup_steps = int(min(max(warmup_steps, 0), total_steps))
        self.min_lr = float(min(min_lr, peak_lr))

    def __call__(self, step):
        step = ops.cast(step, "float32")
        warm = float(max(self.warmup_steps, 1))
        warmup_lr = self.peak_lr * (step + 1.0) / warm
        decay_len = float(max(self.total_steps - self.warmup_steps, 1))
        progress = ops.clip((step - self.warmup_steps) / decay_len, 0.0, 1.0)
        cosine_lr = self.min_lr + 0.5 * (self.peak_lr - self.min_lr) * (1.0 + ops.cos(math.pi * progress))
        return ops.where(step < self.warmup_steps, warmup_lr, cosine_lr)

    def get_config(self):
        return {"peak_lr": self.peak_lr, "total_steps": self.total_steps,
                "warmup_steps": self.warmup_steps, "min_lr": self.min_lr}
