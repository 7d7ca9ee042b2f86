"""Write tests/fixtures/adamw_torch.npz: torch.optim.AdamW run on fixed gradients, for
tests/test_optimizer_torch_parity.py (torch is not needed at test time).

Three parameters as the ConvNeXt recipe groups them: a layer-scale `gamma` (starts at 1e-6, gradients
~1e-8, no weight decay), a `kernel` with weight decay, and a `head_kernel` with weight decay in a group
at half the learning rate (layer-wise lr decay). Float64 (so the test compares arithmetic, not
float32 rounding), 1,000 steps, constant lr; the parameters
are stored after steps 1, 10, 100 and 1000, with the gradients fed at every step.

    python3 -m venv /tmp/venv-torch && /tmp/venv-torch/bin/pip install torch numpy
    /tmp/venv-torch/bin/python tools/make_adamw_fixture.py
"""
from pathlib import Path

import numpy as np
import torch

OUT = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "adamw_torch.npz"
LR, WEIGHT_DECAY, BETAS, EPS = 4e-3, 0.05, (0.9, 0.999), 1e-8
HEAD_LR_SCALE = 0.5
STEPS, RECORD = 1000, (1, 10, 100, 1000)


def main():
    rng = np.random.RandomState(0)
    initial = {
        "gamma": np.full((8,), 1e-6, np.float64),
        "kernel": (0.1 * rng.standard_normal((4, 3))).astype(np.float64),
        "head_kernel": (0.1 * rng.standard_normal((3, 2))).astype(np.float64),
    }
    grad_scale = {"gamma": 1e-8, "kernel": 1e-2, "head_kernel": 1e-2}
    grads = {k: (grad_scale[k] * rng.standard_normal((STEPS, *v.shape))).astype(np.float64)
             for k, v in initial.items()}
    params = {k: torch.nn.Parameter(torch.from_numpy(v.copy())) for k, v in initial.items()}
    optimizer = torch.optim.AdamW([
        {"params": [params["gamma"]], "weight_decay": 0.0},
        {"params": [params["kernel"]]},
        {"params": [params["head_kernel"]], "lr": LR * HEAD_LR_SCALE},
    ], lr=LR, betas=BETAS, eps=EPS, weight_decay=WEIGHT_DECAY, foreach=False)
    out = {f"initial_{k}": v for k, v in initial.items()}
    out.update({f"grads_{k}": v for k, v in grads.items()})
    for step in range(1, STEPS + 1):
        for k, p in params.items():
            p.grad = torch.from_numpy(grads[k][step - 1].copy())
        optimizer.step()
        if step in RECORD:
            out.update({f"step{step}_{k}": p.detach().numpy().copy() for k, p in params.items()})
    config = dict(lr=LR, weight_decay=WEIGHT_DECAY, beta_1=BETAS[0], beta_2=BETAS[1], epsilon=EPS,
                  head_lr_scale=HEAD_LR_SCALE, steps=STEPS, record=list(RECORD), torch=torch.__version__)
    np.savez_compressed(OUT, config=np.array(repr(config)), **out)
    print(f"wrote {OUT} ({OUT.stat().st_size:,} bytes) with torch {torch.__version__}")


if __name__ == "__main__":
    main()
