"""Write torch.save (.pth) copies of two safetensors parity fixtures, for the preset download tests
(timm's release files and torchvision's are .pth): the same tensors, so the same reference logits.

    python3 -m venv /tmp/venv-torch && /tmp/venv-torch/bin/pip install torch==2.13.0 safetensors numpy
    /tmp/venv-torch/bin/python tools/make_pth_fixtures.py
"""
from pathlib import Path

import torch
from safetensors.torch import load_file

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "parity"

for name in ("convnext_timm_conv_mlp", "resnet_bottleneck"):
    state = load_file(str(FIXTURES / f"{name}.safetensors"))
    torch.save(state, FIXTURES / f"{name}.pth")
    print(f"wrote {FIXTURES / f'{name}.pth'} ({len(state)} tensors)")
