"""Model zoo: importing this module registers every variant."""
from kconvnext.models import convnext, resnet, roadmap  # noqa: F401  (registration side effects)
from kconvnext.models.convnext import build_convnext
from kconvnext.models.registry import create_model, get_spec, list_models
from kconvnext.models.resnet import build_resnet

__all__ = ["build_convnext", "build_resnet", "create_model", "get_spec", "list_models"]
