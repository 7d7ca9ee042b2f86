"""Seeded, stratified index selection: hold-out validation / selection splits and the `limit` subsets.

Stratified so that a small limit or a 10% hold-out keeps every class; seeded so a run can be
repeated exactly; sorted input so that it does not depend on the file system's listing order.
"""
import numpy as np


def _per_class(labels, seed):
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    return {c: rng.permutation(np.flatnonzero(labels == c)) for c in np.unique(labels)}


def holdout_split(labels, fraction, seed, name="validation_fraction"):
    """(train_idx, val_idx): round(fraction * n_c) of each class held out (at least 1, never all)."""
    if not 0 < fraction < 1:
        raise ValueError(f"{name} must be in (0, 1) to hold out a split, got {fraction!r}.")
    train, val = [], []
    for idx in _per_class(labels, seed).values():
        n_val = min(max(1, int(round(fraction * len(idx)))), len(idx) - 1)
        val.extend(idx[:n_val])
        train.extend(idx[n_val:])
    return np.sort(np.array(train, dtype=np.int64)), np.sort(np.array(val, dtype=np.int64))


def stratified_limit(labels, limit, seed):
    """Indices of at most `limit` items keeping class proportions (each class keeps >= 1 if it can)."""
    n = len(labels)
    if limit is None or limit >= n:
        return np.arange(n)
    if limit < 1:
        raise ValueError(f"limit must be a positive number of images, got {limit!r}.")
    groups = _per_class(labels, seed)
    quota = {c: max(1, int(limit * len(idx) / n)) for c, idx in groups.items()}
    # Hand out what rounding left over, largest classes first; trim if the floor of 1 overshot.
    order = sorted(groups, key=lambda c: -len(groups[c]))
    i = 0
    while sum(quota.values()) < limit:
        c = order[i % len(order)]
        if quota[c] < len(groups[c]):
            quota[c] += 1
        i += 1
    while sum(quota.values()) > limit:
        c = max(quota, key=quota.get)
        quota[c] -= 1
    return np.sort(np.concatenate([groups[c][:quota[c]] for c in groups]).astype(np.int64))
