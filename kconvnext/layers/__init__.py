"""Public Keras layers of kconvnext; all registered for `.keras` serialization."""
from kconvnext.layers.convnext import ConvNeXtBlock, ConvNeXtDownsample, ConvNeXtStem, LayerScale
from kconvnext.layers.drop_path import DropPath
from kconvnext.layers.grouped_conv import GroupedConv2D
from kconvnext.layers.resnet import BasicBlock, BottleneckBlock

__all__ = [
    "BasicBlock",
    "BottleneckBlock",
    "ConvNeXtBlock",
    "ConvNeXtDownsample",
    "ConvNeXtStem",
    "DropPath",
    "GroupedConv2D",
    "LayerScale",
    "RoadmapBlock",
]
