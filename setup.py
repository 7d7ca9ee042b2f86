import glob

from setuptools import find_packages, setup

setup(
    name="kconvnext",
    version="0.1.0",
    description="ConvNeXt, ResNet and ResNeXt for Keras 3: train on your images, export to TF Serving and TFLite.",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["kconvnext", "kconvnext.*"]),
    py_modules=["kconvnext_cli"],  # the command line's entry point, outside the package (fast --help)
    include_package_data=True,
    package_data={"kconvnext": ["imagenet_classes.txt", "weights/presets.yaml", "commands/model_sizes.json"]},
    install_requires=[
        "tensorflow>=2.21,<2.22",
        "keras>=3.15,<3.16",
        "numpy>=1.26",
        # TensorFlow's own range is >=0.5.1,<1; 0.7.0 takes 0.7 s to import (its ufunc registration in
        # numpy), paid by every process that starts TensorFlow or JAX: each command (3.4-3.55 s with
        # 0.6.0, 4.2-4.6 s with 0.7.0) and each process of a test run. 0.7 adds types neither uses.
        "ml_dtypes>=0.5.1,<0.7",
        "PyYAML>=6",
        "matplotlib>=3.8",
        "safetensors>=0.4",
        "pillow>=10",
        "ai-edge-litert>=2.0",
        "tensorboard>=2.21,<2.22",
    ],
    # Recipes are data users read and edit at the top of the repo; regular installs get a copy.
    data_files=[("share/kconvnext/recipes", sorted(glob.glob("recipes/*.yaml")))],
    extras_require={
        "test": ["pytest>=8", "pytest-xdist>=3.8", "jax[cpu]>=0.4.30", "packaging>=22"],
    },
    entry_points={"console_scripts": ["kconvnext=kconvnext_cli:main"]},
)
