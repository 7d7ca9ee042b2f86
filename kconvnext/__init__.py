"""kconvnext: ConvNeXt, ResNet and ResNeXt for Keras 3, trained with the ConvNeXt recipe."""
import importlib as _importlib

from kconvnext import data, layers, training, weights  # noqa: F401
from kconvnext.roadmap import models as _roadmap  # noqa: F401  (registers the roadmap's steps)
from kconvnext.training import TrainingDiverged, load_recipe, train
from kconvnext.imagenet import decode_predictions, imagenet_classes
from kconvnext.applications import builders as _builders
from kconvnext.applications import create_model
from kconvnext.models import get_spec, list_models
from kconvnext.weights.presets import preprocessing_for

__version__ = "0.1.0"


def __getattr__(name):
    """kconvnext.export is imported on first use: it needs TensorFlow, and the models, data and
    trainer must import on a machine that has only JAX (or PyTorch)."""
    if name == "export":
        return _importlib.import_module("kconvnext.export")
    raise AttributeError(f"module 'kconvnext' has no attribute {name!r}")


# kconvnext.convnext_t(...), kconvnext.resnet50(...), ...: one function per registered variant (and
# alias), each with its real signature (kconvnext.applications).
globals().update(_builders())

__all__ = [
    "TrainingDiverged", "create_model", "data", "decode_predictions", "imagenet_classes", "export", "get_spec", "layers", "list_models",
    "load_recipe", "train", "training", "weights", *list_models(include_aliases=True),
]
__all__ += ["preprocessing_for"]
