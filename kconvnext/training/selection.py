"""Which images choose the best epoch, kept apart from the ones the run reports.

With `selection_fraction` > 0 (the default) the data loader holds out part of the training images;
the best epoch (and raw vs EMA weights) is chosen on them, and the validation / test split is
evaluated once, for the chosen checkpoint. Selecting on the reported split would report the maximum
of many noisy measurements of it: an optimistic number.
"""


def selection_split(bundle):
    """What the best epoch is chosen on: the hold-out carved from the training images when there is
    one, else (selection_fraction 0, or a DataBundle built by hand) the validation split itself."""
    return bundle.selection if getattr(bundle, "selection", None) is not None else bundle.validation


def selected_on(bundle):
    if getattr(bundle, "selection", None) is not None:
        return f"a hold-out of {bundle.selection_count} training images"
    return f"the {bundle.validation_count} validation images themselves (optimistic: selected on the reported split)"
