"""Export trained models: SavedModel for TF Serving, TFLite fp32/fp16/dynamic/int8, each validated.

    kconvnext.export.export("runs/catsdogs", format="saved_model")
    kconvnext.export.export("best.keras", format="tflite", quantize="int8",
                            calibration_dir="data/train", validation_dir="data/validation")

This file is the package's public face only; the exporter is exporter.py.
"""
import os
import sys as _sys

from kconvnext.export.exporter import FORMATS, ExportResult, default_output, export
from kconvnext.export.preprocess import eval_resize_crop
from kconvnext.export.quantization import QUANTIZATIONS

__all__ = ["FORMATS", "QUANTIZATIONS", "ExportResult", "eval_resize_crop", "export", "default_output"]


class _CallableModule(type(os)):
    """Lets `kconvnext.export(...)` call export() while kconvnext.export stays a package."""

    def __call__(self, *args, **kwargs):
        return export(*args, **kwargs)


_sys.modules[__name__].__class__ = _CallableModule
