"""Data sets by name: each source turns a location into labelled train/validation splits."""
from kconvnext.data.sources import catsdogs, cifar10, folder

SOURCES = {"catsdogs": catsdogs.load_source, "cifar10": cifar10.load_source, "folder": folder.load_source}
DATASETS = tuple(SOURCES)  # the one list of data set names (train, eval, compare, recipes check against it)

__all__ = ["DATASETS", "SOURCES"]
