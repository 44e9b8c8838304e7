#!/usr/bin/env python3
"""Reference gradients after clipping, for tlkit's --grad-clip-mode tests (src/train/clip.cpp).

Three parameters (a conv weight [4, 3, 3, 3], a linear weight [5, 6], a bias [5]) with fixed
values and gradients in float64, some rows' gradients large and some small so that both branches
of each rule are taken. Clipped by:
    norm   torch.nn.utils.clip_grad_norm_(params, max_norm)
    value  torch.nn.utils.clip_grad_value_(params, clip_value)
    agc    timm's adaptive_clip_grad(params, clip_factor, eps=1e-3) (timm/utils/agc.py), restated
           below: unit-wise norms (per output row, over every other dimension; the whole tensor
           for 1-D parameters), max_norm = max(||W_i||, eps) x clip_factor, and a row whose
           gradient norm is at least max_norm is scaled to it (its norm floored at 1e-6).

Writes OUT/clip_reference.pt (torch.save of a dict, read in C++ with torch::pickle_load):
    names                  "conv,linear,bias"
    param/NAME             float64
    grad/NAME              float64 (before clipping)
    MODE/THRESHOLD         the threshold used (float), MODE in norm, value, agc
    MODE/NAME              float64, the gradient after clipping

Usage: /usr/bin/python3 scripts/gen_clip_reference.py --out DIR
"""
import argparse
import os

import torch

SEED = 20240607
THRESHOLDS = {"norm": 0.5, "value": 0.03, "agc": 0.05}


def unitwise_norm(x):
    if x.ndim <= 1:
        return x.norm(2.0)
    return x.norm(2.0, dim=tuple(range(1, x.ndim)), keepdim=True)


def adaptive_clip_grad(parameters, clip_factor, eps=1e-3):
    for p in parameters:
        if p.grad is None:
            continue
        p_data, g_data = p.detach(), p.grad.detach()
        max_norm = unitwise_norm(p_data).clamp_(min=eps).mul_(clip_factor)
        grad_norm = unitwise_norm(g_data)
        clipped_grad = g_data * (max_norm / grad_norm.clamp(min=1e-6))
        new_grads = torch.where(grad_norm < max_norm, g_data, clipped_grad)
        p.grad.detach().copy_(new_grads)


def make_params(gen):
    shapes = {"conv": (4, 3, 3, 3), "linear": (5, 6), "bias": (5,)}
    params = {}
    for name, shape in shapes.items():
        p = torch.randn(*shape, generator=gen, dtype=torch.float64).requires_grad_()
        g = torch.randn(*shape, generator=gen, dtype=torch.float64) * 0.02
        if len(shape) > 1:  # rows 0 and 2 with large gradients: clipped by agc; the others not
            g[0] *= 50
            g[2] *= 20
        else:  # the bias (one unit for agc) clipped too
            g *= 10
        p.grad = g
        params[name] = p
    return params


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="folder to write clip_reference.pt into")
    args = parser.parse_args()
    torch.set_num_threads(1)
    base = make_params(torch.Generator().manual_seed(SEED))
    data = {"names": ",".join(base)}
    for name, p in base.items():
        data[f"param/{name}"] = p.detach().clone()
        data[f"grad/{name}"] = p.grad.clone()
    for mode, threshold in THRESHOLDS.items():
        params = {n: p.detach().clone().requires_grad_() for n, p in base.items()}
        for n, p in params.items():
            p.grad = base[n].grad.clone()
        plist = list(params.values())
        if mode == "norm":
            torch.nn.utils.clip_grad_norm_(plist, threshold)
        elif mode == "value":
            torch.nn.utils.clip_grad_value_(plist, threshold)
        else:
            adaptive_clip_grad(plist, threshold)
        data[f"{mode}/threshold"] = threshold
        for n, p in params.items():
            data[f"{mode}/{n}"] = p.grad.clone()
            changed = (p.grad - base[n].grad).abs().max().item()
            print(f"{mode:5s} {n:6s} largest change {changed:.3g}")
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "clip_reference.pt")
    torch.save(data, path + ".tmp")
    os.replace(path + ".tmp", path)
    print(f"wrote gradient clipping references to {path}")


if __name__ == "__main__":
    main()
