#!/usr/bin/python3
"""The Python side of bench/exact_head_bench.cpp: finetune's exact head (L2-penalised multinomial
logistic regression, 7 strengths 10 .. 1e-5, k-fold cross-validation, then the fit on every image)
on the same cached features and the same folds, with Python's torch.optim.LBFGS (strong Wolfe)
and autograd, in float64.

    /usr/bin/python3 bench/exact_head_reference.py --features RUN/features/train \
        --folds-file F.npy [--protocol path|cold] [--threads 2] [--weight-out W.npy]

Protocols as in exact_head_bench.cpp: "path" solves in the row space of every image (thin QR of
X^T) when there are fewer images than features, strongest strength first with warm starts per
fold, tolerance_grad 1e-7, tolerance_change 1e-10, history 10, the final fit from the mean of the
chosen strength's fold fits; "cold" fits every problem from zeros on all features with
tolerance_grad 1e-9, tolerance_change 1e-12, history 100 (torch's default). max_iter 500.
Prints one JSON line like exact_head_bench.
"""
import argparse
import json
import time

import numpy as np
import torch

GRID = [10.0 ** k for k in range(1, -6, -1)]  # strongest first


def fit(x, y, classes, l2, opts, start=None):
    d = x.shape[1]
    theta = torch.zeros(classes, d + 1, dtype=x.dtype)
    if start is not None:
        theta.copy_(start)
    theta.requires_grad_(True)
    lbfgs = torch.optim.LBFGS([theta], lr=1, max_iter=500, line_search_fn="strong_wolfe", **opts)

    def closure():
        lbfgs.zero_grad()
        w, b = theta[:, :d], theta[:, d]
        loss = torch.nn.functional.cross_entropy(x @ w.T + b, y) + l2 * (w * w).sum()
        loss.backward()
        return loss

    lbfgs.step(closure)
    iterations = lbfgs.state[lbfgs._params[0]].get("n_iter", 0)
    return theta.detach(), iterations


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--features", required=True)
    p.add_argument("--folds-file", required=True, help="the fold of each row (exact_head_bench --folds-out)")
    p.add_argument("--protocol", default="path", choices=["path", "cold"])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--weight-out")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    x = torch.from_numpy(np.load(f"{args.features}/features.npy"))
    y = torch.from_numpy(np.load(f"{args.features}/labels.npy"))
    fold_of = torch.from_numpy(np.load(args.folds_file))
    folds = int(fold_of.max()) + 1
    classes = int(y.max()) + 1

    start = time.perf_counter()
    std = x.std(0)
    x = ((x - x.mean(0)) / torch.where(std > 1e-6, std, torch.ones_like(std))).double()
    d = x.shape[1]
    if args.protocol == "path":
        opts = dict(tolerance_grad=1e-7, tolerance_change=1e-10, history_size=10)
        basis = torch.linalg.qr(x.T, mode="reduced")[0] if x.shape[0] < d else None
        z = x @ basis if basis is not None else x
    else:
        opts = dict(tolerance_grad=1e-9, tolerance_change=1e-12, history_size=100)
        basis, z = None, x
    r = z.shape[1]
    parts = [(fold_of != f, fold_of == f) for f in range(folds)]
    previous = [None] * folds
    steps = []
    iterations = fits = 0
    for l2 in GRID:
        loss_sum, thetas = 0.0, []
        for f, (kept, held) in enumerate(parts):
            warm = previous[f] if args.protocol == "path" else None
            theta, n_iter = fit(z[kept], y[kept], classes, l2, opts, warm)
            iterations += n_iter
            fits += 1
            thetas.append(theta)
            with torch.no_grad():
                logits = z[held] @ theta[:, :r].T + theta[:, r]
                loss_sum += torch.nn.functional.cross_entropy(logits, y[held], reduction="sum").item()
        previous = thetas
        steps.append((l2, loss_sum / len(y), thetas))
    chosen = None
    for l2, loss, thetas in reversed(steps):  # weakest first: a tie keeps it
        if chosen is None or loss < chosen[1]:
            chosen = (l2, loss, thetas)
    warm = torch.stack(chosen[2]).mean(0) if args.protocol == "path" else None
    theta, n_iter = fit(z, y, classes, chosen[0], opts, warm)
    iterations += n_iter
    fits += 1
    weight = theta[:, :r] @ basis.T if basis is not None else theta[:, :r]
    seconds = time.perf_counter() - start
    if args.weight_out:
        np.save(args.weight_out, weight.numpy())
    print(json.dumps({"impl": "python", "protocol": args.protocol, "rows": x.shape[0], "dim": d,
                      "solved_dim": r, "seconds": round(seconds, 4), "fits": fits,
                      "iterations": iterations, "l2": chosen[0],
                      "cv_loss": {f"{l2:f}": loss for l2, loss, _ in reversed(steps)}}))


if __name__ == "__main__":
    main()
