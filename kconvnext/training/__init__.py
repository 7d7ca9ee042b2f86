"""Training: recipes (recipes/*.yaml -> TrainConfig), the trainer, evaluation and reports.

Public entry points: `train` (what `cli.py train` runs), `load_recipe`, `TrainConfig`,
`TrainingDiverged`, `evaluate_run`.
"""
from kconvnext.training.config import AugmentSettings, TrainConfig, config_from_dict
from kconvnext.training.optimizer import RecipeAdamW
from kconvnext.training.recipes import list_recipes, load_recipe
from kconvnext.training.schedules import warmup_cosine  # (its module registers the old WarmupCosine name)
from kconvnext.training.trainer import TrainingDiverged, TrainResult, train

__all__ = ["AugmentSettings", "RecipeAdamW", "TrainConfig", "TrainResult", "TrainingDiverged",
           "config_from_dict", "warmup_cosine", "list_recipes", "load_recipe", "train"]
