"""The ConvNeXt paper's ResNet-50 -> ConvNeXt-T roadmap: research kept apart from the product.

    layers.py   RoadmapBlock, the one block every intermediate step is made of
    models.py   the twelve steps, registered through kconvnext.models.register as a user's model is
    command.py  `cli.py roadmap`: parameters, GFLOPs, speed and accuracy per step
    plots.py    its figure

It uses only the public parts of the rest of the package, and nothing in the rest imports it
except kconvnext/__init__.py (so that `import kconvnext` registers the steps). This file imports
nothing: `cli.py --help` loads command.py without keras.
"""
