#!/usr/bin/env python3
"""A well-tuned linear probe on cached features, the quality bar of tlkit's stage-1 head:
multinomial logistic regression (float64, L-BFGS to convergence) on RUN/features/{train,val,test}
(written by tlkit finetune or tlkit extract), its L2 strength chosen on the val split from a
log grid, then scored once on test. Prints one JSON line.

Usage: /usr/bin/python3 scripts/linear_probe.py RUN/features
"""
import json
import os
import sys

import numpy as np
import torch


def load(folder, split):
    x = torch.from_numpy(np.load(os.path.join(folder, split, "features.npy"))).double()
    y = torch.from_numpy(np.load(os.path.join(folder, split, "labels.npy"))).long()
    return x, y


def fit(x, y, classes, l2):
    w = torch.zeros(x.shape[1], classes, dtype=torch.double, requires_grad=True)
    b = torch.zeros(classes, dtype=torch.double, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], lr=1, max_iter=500, tolerance_grad=1e-9, tolerance_change=1e-12,
                            line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(x @ w + b, y) + l2 * (w * w).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return w.detach(), b.detach()


def score(x, y, w, b):
    logits = x @ w + b
    return (logits.argmax(1) == y).double().mean().item(), torch.nn.functional.cross_entropy(logits, y).item()


def main(argv):
    if len(argv) != 1:
        sys.exit(__doc__)
    folder = argv[0]
    train_x, train_y = load(folder, "train")
    val_x, val_y = load(folder, "val")
    test_x, test_y = load(folder, "test")
    # Standardised with the training split's statistics, as a linear probe usually is.
    mean, std = train_x.mean(0), train_x.std(0).clamp_min(1e-6)
    train_x, val_x, test_x = [(t - mean) / std for t in (train_x, val_x, test_x)]
    classes = int(max(train_y.max(), val_y.max(), test_y.max())) + 1
    best = None
    for l2 in [10.0 ** k for k in range(-5, 2)]:
        w, b = fit(train_x, train_y, classes, l2)
        acc, loss = score(val_x, val_y, w, b)
        if best is None or (acc, -loss) > (best[0], -best[1]):
            best = (acc, loss, l2, w, b)
    test_acc, test_loss = score(test_x, test_y, best[3], best[4])
    print(json.dumps({"features": folder, "l2": best[2], "val_accuracy": best[0], "test_accuracy": test_acc,
                      "test_loss": test_loss, "train_rows": len(train_y), "dim": train_x.shape[1]}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
