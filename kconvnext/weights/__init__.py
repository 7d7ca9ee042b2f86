"""Weight import from PyTorch checkpoints: official ConvNeXt, timm ConvNeXt, torchvision/timm ResNet(X).

    report = kconvnext.weights.load_weights(model, "convnext_tiny.safetensors")
    model = kconvnext.create_model("convnext_t", num_classes=2, weights="imagenet")   # a preset
    transform = kconvnext.preprocessing_for("convnext_t", "imagenet")  # how it was evaluated
    kconvnext.weights.register_preset("convnext_t", "imagenet", "https://mirror.example/convnext_tiny.pth")

Reads `.safetensors` and `.pth` files without torch (see `readers` and `torch_zip`).
"""
from kconvnext.weights.converters import SOURCES, convert_state_dict, detect_source
from kconvnext.weights.download import WeightsUnavailableError, fetch, weights_dir
from kconvnext.weights.loader import LoadReport, WeightsMismatchError, load_weights
from kconvnext.weights.presets import Preset, get_preset, list_presets, preprocessing_for, preset_tags, register_preset
from kconvnext.weights.pretrained import load_pretrained
from kconvnext.weights.readers import CheckpointError, read_checkpoint
from kconvnext.weights.torch_zip import UnsupportedPickleError, load_torch_zip

__all__ = [
    "SOURCES",
    "CheckpointError",
    "LoadReport",
    "Preset",
    "UnsupportedPickleError",
    "WeightsMismatchError",
    "WeightsUnavailableError",
    "convert_state_dict",
    "detect_source",
    "fetch",
    "get_preset",
    "list_presets",
    "load_pretrained",
    "load_torch_zip",
    "load_weights",
    "preprocessing_for",
    "preset_tags",
    "read_checkpoint",
    "register_preset",
    "weights_dir",
]
