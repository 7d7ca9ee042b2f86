"""Model zoo: importing this module registers every variant."""
from kconvnext.models import convnext, resnet  # noqa: F401  (registration side effects)
from kconvnext.models.convnext import build_convnext
from kconvnext.models.factory import build_architecture, model_signature
from kconvnext.models.registry import get_spec, list_models, register, register_alias
from kconvnext.models.resnet import build_resnet

__all__ = ["build_architecture", "build_convnext", "build_resnet", "get_spec", "list_models", "model_signature", "register",
           "register_alias"]
