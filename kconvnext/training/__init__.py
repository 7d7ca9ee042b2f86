"""Training: recipes (recipes/*.yaml -> TrainConfig), the trainer, evaluation and reports.

Public entry points: `train` (what `cli.py train` runs), `load_recipe`, `TrainConfig`,
`TrainingDiverged`, `evaluate_run`.
"""
from kconvnext.training.config import AugmentSettings, TrainConfig, config_from_dict
from kconvnext.training.optimizer import RecipeAdamW
from kconvnext.training.recipes import list_recipes, load_recipe
from kconvnext.training.schedules import WarmupCosine
from kconvnext.training.trainer import TrainingDiverged, TrainResult, train

__all__ = ["AugmentSettings", "RecipeAdamW", "TrainConfig", "TrainResult", "TrainingDiverged",
           "WarmupCosine", "config_from_dict", "list_recipes", "load_recipe", "train"]
