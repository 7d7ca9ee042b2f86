"""Weight import from PyTorch checkpoints: official ConvNeXt, timm ConvNeXt, torchvision/timm ResNet(X).

    report = kconvnext.weights.load_weights(model, "convnext_tiny.safetensors")

Reads `.safetensors` and `.pth` files without torch (see `readers` and `torch_zip`).
"""
from kconvnext.weights.converters import SOURCES, convert_state_dict, detect_source
from kconvnext.weights.loader import LoadReport, WeightsMismatchError, load_weights
from kconvnext.weights.readers import CheckpointError, read_checkpoint
from kconvnext.weights.torch_zip import UnsupportedPickleError, load_torch_zip

__all__ = [
    "SOURCES",
    "CheckpointError",
    "LoadReport",
    "UnsupportedPickleError",
    "WeightsMismatchError",
    "convert_state_dict",
    "detect_source",
    "load_torch_zip",
    "load_weights",
    "read_checkpoint",
]
