#!/usr/bin/env python3
"""Reference solutions of L2-penalised multinomial logistic regression for tlkit's exact-head tests.

The objective is tlkit's (src/pipeline/logistic.cpp): mean cross-entropy + l2 * ||W||^2, the bias
not penalised. Each case is solved in float64 on the primal problem (every feature) by Python's
torch.optim.LBFGS (strong Wolfe, tight tolerances) and then polished by Newton steps (the exact
Hessian by autograd, a pseudo-inverse for the bias's null direction: adding a constant to every
class's bias changes nothing); the two must agree to 1e-6 (relative, max-norm; Newton's is the one kept) or the script fails.

Cases: "wide" (fewer images than features, where tlkit solves in the row space) at two strengths,
and "tall" (more images than features, where it does not reduce).

Writes OUT/logistic_reference.pt (torch.save of a dict, read in C++ with torch::pickle_load):
    case_names            "wide_strong,wide_weak,tall"
    case/NAME/x           float64 [N, D]
    case/NAME/y           int64 [N]
    case/NAME/classes     int
    case/NAME/l2          float
    case/NAME/weight      float64 [C, D]
    case/NAME/bias        float64 [C]   (summing to 0 over the classes, as a fit from zeros does)
    case/NAME/objective   float

Usage: /usr/bin/python3 scripts/gen_logistic_reference.py --out DIR
"""
import argparse
import os

import torch

SEED = 20240607


def make_data(gen, n, d, classes):
    centres = torch.randn(classes, d, generator=gen, dtype=torch.float64)
    y = torch.arange(n) % classes
    x = centres[y] * 0.7 + torch.randn(n, d, generator=gen, dtype=torch.float64)
    return x, y


def objective(theta, x, y, l2, d):
    w, b = theta[:, :d], theta[:, d]
    return torch.nn.functional.cross_entropy(x @ w.T + b, y) + l2 * (w ** 2).sum()


def solve(x, y, classes, l2):
    d = x.shape[1]
    theta = torch.zeros(classes, d + 1, dtype=torch.float64, requires_grad=True)
    lbfgs = torch.optim.LBFGS([theta], lr=1, max_iter=20000, tolerance_grad=1e-13,
                              tolerance_change=1e-20, history_size=100,
                              line_search_fn="strong_wolfe")

    def closure():
        lbfgs.zero_grad()
        loss = objective(theta, x, y, l2, d)
        loss.backward()
        return loss

    lbfgs.step(closure)
    by_lbfgs = theta.detach().clone()
    flat = by_lbfgs.flatten().clone()
    shape = by_lbfgs.shape
    for _ in range(5):
        f = lambda t: objective(t.view(shape), x, y, l2, d)
        g = torch.autograd.functional.jacobian(f, flat)
        h = torch.autograd.functional.hessian(f, flat)
        flat = flat - torch.linalg.pinv(h, hermitian=True) @ g
    polished = flat.view(shape)
    # The bias's free direction: both solutions keep sum(b) = 0 (zero start, gradients sum to 0).
    polished[:, d] -= polished[:, d].mean()
    gap = (polished - by_lbfgs).abs().max() / polished.abs().max()
    if gap > 1e-6:
        raise SystemExit(f"torch.optim.LBFGS and Newton disagree by {gap:.3g} (l2 {l2})")
    print(f"l2 {l2}: torch.optim.LBFGS within {gap:.2g} of Newton")
    return polished, objective(polished, x, y, l2, d).item()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="folder to write logistic_reference.pt into")
    args = parser.parse_args()
    torch.set_num_threads(1)
    gen = torch.Generator().manual_seed(SEED)
    wide_x, wide_y = make_data(gen, 24, 40, 3)
    tall_x, tall_y = make_data(gen, 60, 8, 4)
    cases = [("wide_strong", wide_x, wide_y, 3, 1e-2), ("wide_weak", wide_x, wide_y, 3, 1e-4),
             ("tall", tall_x, tall_y, 4, 1e-3)]
    data = {"case_names": ",".join(name for name, *_ in cases)}
    for name, x, y, classes, l2 in cases:
        theta, value = solve(x, y, classes, l2)
        d = x.shape[1]
        data.update({f"case/{name}/x": x, f"case/{name}/y": y, f"case/{name}/classes": classes,
                     f"case/{name}/l2": l2, f"case/{name}/weight": theta[:, :d].contiguous(),
                     f"case/{name}/bias": theta[:, d].contiguous(),
                     f"case/{name}/objective": value})
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "logistic_reference.pt")
    torch.save(data, path + ".tmp")
    os.replace(path + ".tmp", path)
    print(f"wrote {len(cases)} logistic regression cases to {path}")


if __name__ == "__main__":
    main()
