"""Learning-rate schedule: linear warmup from 0, then cosine decay to min_lr, in optimizer steps.

Keras' CosineDecay (with warmup_target / warmup_steps) is the official ConvNeXt code's schedule:
0 -> peak linearly over the warmup steps, then peak -> min_lr along a cosine over the rest.
Counted in steps (not epochs) so the lr changes smoothly inside each epoch, and so a resumed run
picks up exactly where it stopped: the schedule is a pure function of `optimizer.iterations`,
which the checkpoint restores.
"""
import keras


def warmup_cosine(peak_lr, total_steps, warmup_steps=0, min_lr=0.0):
    """keras.optimizers.schedules.CosineDecay: 0 -> peak_lr over warmup_steps, cosine to min_lr at total_steps."""
    if total_steps < 1:
        raise ValueError(f"total_steps must be >= 1, got {total_steps}.")
    peak_lr, total_steps = float(peak_lr), int(total_steps)
    warmup_steps = int(min(max(warmup_steps, 0), total_steps))
    alpha = min(float(min_lr), peak_lr) / peak_lr if peak_lr > 0 else 0.0
    decay_steps = max(total_steps - warmup_steps, 1)
    if warmup_steps == 0:
        return keras.optimizers.schedules.CosineDecay(peak_lr, decay_steps, alpha=alpha)
    return keras.optimizers.schedules.CosineDecay(0.0, decay_steps, alpha=alpha, warmup_target=peak_lr,
                                                  warmup_steps=warmup_steps)


@keras.saving.register_keras_serializable(package="kconvnext")
class WarmupCosine(keras.optimizers.schedules.CosineDecay):
    """Only so that checkpoints saved with the hand-written schedule this module had before still
    load: their config (peak_lr, total_steps, warmup_steps, min_lr) becomes Keras' CosineDecay."""

    @classmethod
    def from_config(cls, config):
        return warmup_cosine(**config)
