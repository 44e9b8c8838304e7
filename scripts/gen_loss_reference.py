#!/usr/bin/env python3
"""Reference values of torch's CrossEntropyLoss with label smoothing and class weights, for
tlkit's training-loss tests (src/train/loss.cpp).

Each case is fixed logits and targets in float64 and a loss configuration; the loss and its
gradient with respect to the logits come from torch.nn.CrossEntropyLoss(weight=w,
label_smoothing=eps) (mean reduction).

Writes OUT/loss_reference.pt (torch.save of a dict, read in C++ with torch::pickle_load):
    case_names            "plain,smooth,..."
    case/NAME/logits      float64 [N, C]
    case/NAME/targets     int64 [N]
    case/NAME/smoothing   float
    case/NAME/weights     float64 [C] (empty when unweighted)
    case/NAME/loss        float
    case/NAME/grad        float64 [N, C]

Usage: /usr/bin/python3 scripts/gen_loss_reference.py --out DIR
"""
import argparse
import os

import torch

SEED = 20240521


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="folder to write loss_reference.pt into")
    args = parser.parse_args()
    torch.set_num_threads(1)
    gen = torch.Generator().manual_seed(SEED)
    n, c = 9, 5
    logits = torch.randn(n, c, generator=gen, dtype=torch.float64) * 3
    targets = torch.tensor([0, 1, 2, 3, 4, 0, 0, 2, 4])
    weights = torch.tensor([0.5, 2.0, 1.0, 3.5, 0.25], dtype=torch.float64)
    # scikit-learn's "balanced" weights of these targets: n / (classes * count).
    counts = torch.bincount(targets, minlength=c).to(torch.float64)
    balanced = n / (c * counts)
    cases = [("plain", 0.0, None), ("smooth", 0.1, None), ("smooth_strong", 0.45, None),
             ("weighted", 0.0, weights), ("weighted_smooth", 0.1, weights),
             ("weighted_smooth_strong", 0.7, weights), ("balanced_smooth", 0.2, balanced)]
    data = {"case_names": ",".join(name for name, *_ in cases)}
    for name, eps, w in cases:
        x = logits.clone().requires_grad_()
        loss = torch.nn.CrossEntropyLoss(weight=w, label_smoothing=eps)(x, targets)
        loss.backward()
        data.update({f"case/{name}/logits": logits, f"case/{name}/targets": targets,
                     f"case/{name}/smoothing": eps,
                     f"case/{name}/weights": w if w is not None else torch.zeros(0, dtype=torch.float64),
                     f"case/{name}/loss": loss.item(), f"case/{name}/grad": x.grad.clone()})
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "loss_reference.pt")
    torch.save(data, path + ".tmp")
    os.replace(path + ".tmp", path)
    print(f"wrote {len(cases)} cross-entropy cases to {path}")


if __name__ == "__main__":
    main()
