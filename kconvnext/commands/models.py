"""`cli.py models`: every registered variant with its parameter count and GFLOPs."""
import json
from pathlib import Path

from kconvnext.commands.common import add_command, positive_int

EXAMPLES = """examples:
  python cli.py models                      # all variants at 224 px, 1000 classes
  python cli.py models --family resnext
  python cli.py models --small-input --image-size 32 --num-classes 10   # CIFAR-sized
  python cli.py models --json models.json
  python cli.py models --weights            # pretrained presets: URL, ImageNet top-1, licence
"""


def register(subparsers):
    p = add_command(
        subparsers, "models", help="list registered models with parameters and GFLOPs",
        description="List every registered model with its parameter count and GFLOPs "
                    "(multiply-adds, the papers' convention) at the chosen resolution.",
        examples=EXAMPLES,
    )
    p.add_argument("--family", choices=["convnext", "resnet", "resnext"], help="only this family")
    p.add_argument("--image-size", type=positive_int, default=None, help="resolution (default: each model's own, 224)")
    p.add_argument("--num-classes", type=positive_int, default=1000)
    p.add_argument("--small-input", action="store_true", help="the 32x32 (CIFAR) stem option")
    p.add_argument("--json", metavar="FILE", help="also write the table as JSON")
    p.add_argument("--weights", action="store_true",
                   help="list the pretrained weight presets (URL, ImageNet top-1, licence) instead")
    p.set_defaults(func=run)


SIZES_FILE = Path(__file__).with_name("model_sizes.json")
DEFAULT_CLASSES = 1000


def measure(name, image_size=None, num_classes=DEFAULT_CLASSES, small_input=False):
    """One row (name, family, params, GFLOPs, resolution) from a fresh build of the model's
    architecture (its variables' shapes; their values are never made)."""
    import keras

    from kconvnext.applications import create_model
    from kconvnext.flops import count_macs, count_params
    from kconvnext.models import get_spec

    spec = get_spec(name)
    size = image_size or spec.default_size
    # Shapes only: variables made in this scope get no values (Keras' deferred initialisation) and
    # keep none when it ends, so convnext_xl's 1.4 GB of weights are never allocated; clear_session
    # then drops them from Keras' list of variables waiting for values (else the next model built
    # would give them values), without a full garbage collection (a sixth of the time to measure a
    # model; the automatic collector frees the model later).
    try:
        with keras.StatelessScope(initialize_variables=False):
            model = create_model(name, input_shape=(size, size, 3), num_classes=num_classes, small_input=small_input)
            return {"model": name, "family": spec.family, "params": count_params(model),
                    "gflops": round(count_macs(model) / 1e9, 3), "image_size": size}
    finally:
        keras.backend.clear_session(free_memory=False)


def stored_sizes():
    """{name: row} of model_sizes.json: every shipped variant at its default size with 1000 classes,
    measured by tools/make_model_sizes.py. Listing reads it because measuring all 29 variants takes
    ~25 s of building and tracing (shapes only, see measure); tests/test_models.py re-measures each."""
    return {row["model"]: row for row in json.loads(SIZES_FILE.read_text())}


def model_table(family=None, image_size=None, num_classes=DEFAULT_CLASSES, small_input=False):
    """Rows of (name, family, params, GFLOPs, resolution, weight tags) for the registered models:
    the stored sizes where they answer the question (default size, 1000 classes, standard stem),
    a build for anything else (other sizes, a model registered by the user)."""
    from kconvnext.models import list_models
    from kconvnext.weights.presets import preset_tags

    stored = stored_sizes() if (num_classes, small_input) == (DEFAULT_CLASSES, False) else {}
    rows = []
    for name in list_models(family):
        row = stored.get(name)
        if row is None or image_size not in (None, row["image_size"]):
            row = measure(name, image_size, num_classes, small_input)
        rows.append({**row, "weights": preset_tags(name)})
    return rows


def weights_table(family=None):
    from kconvnext.models import get_spec
    from kconvnext.weights import list_presets

    return [p for p in list_presets() if family is None or get_spec(p.model).family == family]


def run(args):
    if args.weights:
        for p in weights_table(args.family):
            top1 = f"{p.top1:5.1f}%" if p.top1 is not None else "    ?"
            print(f"{p.model:<18} {p.tag:<12} {top1}  {p.license or '?':<13} {p.url}" + (f"  ({p.note})" if p.note else ""))
        return 0
    rows = model_table(args.family, args.image_size, args.num_classes, args.small_input)
    width = max(20, *(len(r["model"]) + 1 for r in rows))  # the roadmap steps' long names keep their column
    print(f"{'model':<{width}} {'family':<9} {'params':>14} {'GFLOPs':>8} {'size':>5}  weights=")
    for r in rows:
        print(f"{r['model']:<{width}} {r['family']:<9} {r['params']:>14,} {r['gflops']:>8.2f} {r['image_size']:>5}  "
              f"{', '.join(r['weights']) or '-'}")
    print("\nweights: create_model(name, weights=TAG) / --set pretrained=TAG; `cli.py models --weights` lists each "
          "tag's source, ImageNet top-1 and licence.")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)
    return 0
