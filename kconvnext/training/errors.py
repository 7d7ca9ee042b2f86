"""Exceptions the training loops raise, in a module of their own so that both loops (keras fit in
trainer.py, the strategy.run loop in multiworker.py) import them without importing each other."""


class TrainingDiverged(RuntimeError):
    """The loss became NaN/inf; the message says where and what was kept."""
