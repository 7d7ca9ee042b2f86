"""Write tests/fixtures/adamw_torch.npz: torch.optim.AdamW's parameters after 1, 10, 100 and 1000
steps on fixed gradients, so tests can check RecipeAdamW's arithmetic against torch's without torch.

Run with a Python that has torch (not a test dependency), e.g.
    python3 -m venv /work/torchenv
    /work/torchenv/bin/pip install numpy torch --index-url https://download.pytorch.org/whl/cpu
    /work/torchenv/bin/python tools/make_adamw_fixture.py

The parameters cover what the ConvNeXt recipe puts in torch param groups: a decayed kernel at the
base lr, a decayed kernel and an undecayed bias at a layer-decay lr scale (group lr = lr * scale,
so the decay uses the scaled lr too), and a layer-scale gamma that starts at 1e-6 with gradients
near epsilon, where Keras' own AdamW (epsilon before bias correction) and torch's differ most.
The gradients are drawn once here and stored in the file, so the test replays exactly these.
"""
import argparse
import json
import os

import numpy as np

LR, WEIGHT_DECAY, BETAS, EPS = 4e-3, 0.05, (0.9, 0.999), 1e-8
STEPS, SAVED = 1000, (1, 10, 100, 1000)
# Keras variable path -> (initial value, gradient scale, gradient drift, weight decay?, lr scale).
PARAMS = {
    "stem/kernel": ("normal", 0.1, 0.02, True, 0.25),
    "stem/bias": ("zeros", 0.1, -0.03, False, 0.25),
    "head/kernel": ("normal", 0.1, 0.01, True, 1.0),
    "blocks/gamma": ("1e-6", 1e-8, 0.5e-8, False, 1.0),
}
SHAPES = {"stem/kernel": (3, 2), "stem/bias": (3,), "head/kernel": (2, 3), "blocks/gamma": (3,)}


def key(path, what):
    """npz member name (no '/': a zip member path)."""
    return f"{what}:{path.replace('/', '.')}"


def main():
    import torch

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures",
                                                      "adamw_torch.npz"))
    args = parser.parse_args()
    rng = np.random.default_rng(2024)
    arrays, tensors, groups = {}, {}, []
    for path, (init, scale, drift, decay, lr_scale) in PARAMS.items():
        shape = SHAPES[path]
        value = {"normal": lambda: rng.standard_normal(shape), "zeros": lambda: np.zeros(shape),
                 "1e-6": lambda: np.full(shape, 1e-6)}[init]().astype(np.float32)
        grads = (scale * rng.standard_normal((STEPS,) + shape) + drift).astype(np.float32)
        arrays[key(path, "init")], arrays[key(path, "grads")] = value, grads
        tensors[path] = torch.nn.Parameter(torch.from_numpy(value.copy()))
        groups.append({"params": [tensors[path]], "lr": LR * lr_scale,
                       "weight_decay": WEIGHT_DECAY if decay else 0.0})
    # foreach=False: torch's per-tensor loop (its CPU default); the arithmetic is the same either way.
    optimizer = torch.optim.AdamW(groups, lr=LR, betas=BETAS, eps=EPS, weight_decay=WEIGHT_DECAY,
                                  amsgrad=False, foreach=False)
    for step in range(1, STEPS + 1):
        for path, tensor in tensors.items():
            tensor.grad = torch.from_numpy(arrays[key(path, "grads")][step - 1].copy())
        optimizer.step()
        if step in SAVED:
            for path, tensor in tensors.items():
                arrays[key(path, f"step{step}")] = tensor.detach().numpy().copy()
    meta = {"source": f"torch {torch.__version__} torch.optim.AdamW(foreach=False, amsgrad=False), float32",
            "lr": LR, "weight_decay": WEIGHT_DECAY, "beta_1": BETAS[0], "beta_2": BETAS[1], "epsilon": EPS,
            "steps": STEPS, "saved_steps": list(SAVED),
            "params": {p: {"shape": list(SHAPES[p]), "weight_decay": v[3], "lr_scale": v[4]}
                       for p, v in PARAMS.items()}}
    arrays["meta"] = np.array(json.dumps(meta))
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    np.savez_compressed(args.out, **arrays)
    print(f"wrote {os.path.abspath(args.out)} ({os.path.getsize(args.out)} bytes)")


if __name__ == "__main__":
    main()
