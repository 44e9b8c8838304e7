#!/usr/bin/env python3
"""Reference trajectories of Python torch.optim for the tlkit::optim tests.

Writes OUT/optim_reference.pt (torch.save of a dict, read in C++ with torch::pickle_load):

  steps, batch, group1_lr_ratio, case_names ("," separated), problem_names, dtype_names
  problem/<problem>/<dtype>/{X,Y,init/<i>}        inputs and initial parameters
  case/<case>/spec                                 "name:key=value,..." for tlkit's make_optimizer
  case/<case>/<problem>/<dtype>                    [steps, n] parameters (flattened) after each step

Every case runs on two problems (linear least squares, a tiny tanh MLP) with two param groups, the
second at group1_lr_ratio times the first one's lr, for `steps` steps, in float64 and float32.
Step t uses the mini-batch of rows (t*batch + [0, batch)) mod N (N a multiple of batch), so gradients vary from step to step
as in training (with one fixed full batch, centered RMSProp's variance estimate goes to zero and
the trajectory becomes chaotic). Inputs come from a fixed seed and are stored, so the C++ side uses
exactly the same numbers.

Usage: /usr/bin/python3 scripts/gen_optim_reference.py --out DIR
"""
import argparse
import multiprocessing
import os

import torch

STEPS = 200
BATCH = 16
ROWS = 64
SEED = 20240611
GROUP1_LR_RATIO = 0.5
DTYPES = {"float64": torch.float64, "float32": torch.float32}

# (case name, tlkit spec, torch.optim class, keyword arguments of group 0)
CASES = [
    ("sgd/plain", "sgd:lr=0.05", torch.optim.SGD, dict(lr=0.05)),
    ("sgd/momentum", "sgd:lr=0.05,momentum=0.9", torch.optim.SGD, dict(lr=0.05, momentum=0.9)),
    ("sgd/dampening", "sgd:lr=0.05,momentum=0.9,dampening=0.3", torch.optim.SGD,
     dict(lr=0.05, momentum=0.9, dampening=0.3)),
    ("sgd/nesterov", "sgd:lr=0.05,momentum=0.8,nesterov=true", torch.optim.SGD,
     dict(lr=0.05, momentum=0.8, nesterov=True)),
    ("sgd/weight_decay", "sgd:lr=0.05,momentum=0.9,weight_decay=0.01", torch.optim.SGD,
     dict(lr=0.05, momentum=0.9, weight_decay=0.01)),
    ("sgd/weight_decay_plain", "sgd:lr=0.05,weight_decay=0.02", torch.optim.SGD,
     dict(lr=0.05, weight_decay=0.02)),
    ("sgd/nesterov_weight_decay", "sgd:lr=0.05,momentum=0.9,nesterov=true,weight_decay=0.01",
     torch.optim.SGD, dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01)),
    ("sgd/momentum_name", "momentum:lr=0.05", torch.optim.SGD, dict(lr=0.05, momentum=0.9)),
    ("sgd/nesterov_name", "nesterov:lr=0.05", torch.optim.SGD,
     dict(lr=0.05, momentum=0.9, nesterov=True)),
    ("adagrad/plain", "adagrad:lr=0.1", torch.optim.Adagrad, dict(lr=0.1)),
    ("adagrad/lr_decay", "adagrad:lr=0.1,lr_decay=0.01", torch.optim.Adagrad,
     dict(lr=0.1, lr_decay=0.01)),
    ("adagrad/initial_accumulator_value", "adagrad:lr=0.1,initial_accumulator_value=0.5",
     torch.optim.Adagrad, dict(lr=0.1, initial_accumulator_value=0.5)),
    ("adagrad/weight_decay", "adagrad:lr=0.1,weight_decay=0.01,eps=1e-6", torch.optim.Adagrad,
     dict(lr=0.1, weight_decay=0.01, eps=1e-6)),
    ("rmsprop/plain", "rmsprop:lr=0.01", torch.optim.RMSprop, dict(lr=0.01)),
    ("rmsprop/momentum", "rmsprop:lr=0.003,momentum=0.8", torch.optim.RMSprop,
     dict(lr=0.003, momentum=0.8)),
    ("rmsprop/centered", "rmsprop:lr=0.01,centered=true,alpha=0.9", torch.optim.RMSprop,
     dict(lr=0.01, centered=True, alpha=0.9)),
    ("rmsprop/centered_momentum", "rmsprop:lr=0.005,momentum=0.5,centered=true",
     torch.optim.RMSprop, dict(lr=0.005, momentum=0.5, centered=True)),
    ("rmsprop/weight_decay", "rmsprop:lr=0.01,weight_decay=0.01,eps=1e-6", torch.optim.RMSprop,
     dict(lr=0.01, weight_decay=0.01, eps=1e-6)),
    ("adam/plain", "adam:lr=0.01", torch.optim.Adam, dict(lr=0.01)),
    ("adam/amsgrad", "adam:lr=0.01,amsgrad=true", torch.optim.Adam, dict(lr=0.01, amsgrad=True)),
    ("adam/weight_decay", "adam:lr=0.01,weight_decay=0.01", torch.optim.Adam,
     dict(lr=0.01, weight_decay=0.01)),
    ("adam/betas_eps", "adam:lr=0.02,betas=0.8/0.99,eps=1e-6", torch.optim.Adam,
     dict(lr=0.02, betas=(0.8, 0.99), eps=1e-6)),
    ("adamw/plain", "adamw:lr=0.01", torch.optim.AdamW, dict(lr=0.01)),
    ("adamw/amsgrad", "adamw:lr=0.01,amsgrad=true,weight_decay=0.1", torch.optim.AdamW,
     dict(lr=0.01, amsgrad=True, weight_decay=0.1)),
    ("adamw/no_weight_decay", "adamw:lr=0.01,weight_decay=0,betas=0.85/0.995", torch.optim.AdamW,
     dict(lr=0.01, weight_decay=0.0, betas=(0.85, 0.995))),
]


def make_problem(name, gen):
    """Inputs, targets and initial parameters in float64; params split in two groups."""
    def randn(*shape):
        return torch.randn(*shape, generator=gen, dtype=torch.float64)

    if name == "lsq":  # linear least squares: params W [3,5] | b [3]
        X = randn(ROWS, 5)
        Y = X @ randn(3, 5).t() + 0.1 * randn(ROWS, 3)
        return X, Y, [0.5 * randn(3, 5), 0.1 * randn(3)]
    if name == "mlp":  # 4 -> 8 (tanh) -> 2: params W1 [8,4], b1 [8] | W2 [2,8], b2 [2]
        X = randn(ROWS, 4)
        Y = torch.sin(X @ randn(4, 2))
        return X, Y, [0.5 * randn(8, 4), 0.1 * randn(8), 0.5 * randn(2, 8), 0.1 * randn(2)]
    raise ValueError(name)


def batches(X_all, Y_all):
    """The mini-batches in step order: step t uses batches[t % len(batches)]."""
    out = []
    for first in range(0, X_all.shape[0], BATCH):
        rows = torch.arange(first, first + BATCH, dtype=torch.int64)
        out.append((X_all.index_select(0, rows), Y_all.index_select(0, rows)))
    return out


# The C++ tests (tests/optim/optim_test_util.h) compute the same losses with the same ops.
def loss_of(name, X, Y, params):
    if name == "lsq":
        W, b = params
        return (X.matmul(W.t()) + b - Y).pow(2).mean()
    W1, b1, W2, b2 = params
    hidden = torch.tanh(X.matmul(W1.t()) + b1)
    return (hidden.matmul(W2.t()) + b2 - Y).pow(2).mean()


def split_groups(name, params):
    return (params[:1], params[1:]) if name == "lsq" else (params[:2], params[2:])


def trajectory(problem, X_all, Y_all, init, optimizer_class, kwargs):
    data = batches(X_all, Y_all)
    params = [p.clone().requires_grad_(True) for p in init]
    group0, group1 = split_groups(problem, params)
    lr1 = kwargs["lr"] * GROUP1_LR_RATIO
    optimizer = optimizer_class([{"params": group0}, {"params": group1, "lr": lr1}], **kwargs)
    rows = []
    for step in range(STEPS):
        optimizer.zero_grad()
        X, Y = data[step % len(data)]
        loss_of(problem, X, Y, params).backward()
        optimizer.step()
        rows.append(torch.cat([p.detach().flatten() for p in params]))
    return torch.stack(rows)


def run_problem(job):
    """All cases on one problem in one dtype: (inputs and trajectories by key)."""
    problem, dtype_name, X64, Y64, init64 = job
    torch.set_num_threads(1)
    dtype = DTYPES[dtype_name]
    X, Y, init = X64.to(dtype), Y64.to(dtype), [p.to(dtype) for p in init64]
    prefix = f"problem/{problem}/{dtype_name}"
    out = {f"{prefix}/X": X, f"{prefix}/Y": Y}
    for i, p in enumerate(init):
        out[f"{prefix}/init/{i}"] = p
    for name, spec, optimizer_class, kwargs in CASES:
        out[f"case/{name}/spec"] = spec
        out[f"case/{name}/{problem}/{dtype_name}"] = trajectory(
            problem, X, Y, init, optimizer_class, kwargs)
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="folder to write optim_reference.pt into")
    args = parser.parse_args()
    torch.set_num_threads(1)
    gen = torch.Generator().manual_seed(SEED)

    data = {
        "steps": STEPS,
        "batch": BATCH,
        "group1_lr_ratio": GROUP1_LR_RATIO,
        "case_names": ",".join(name for name, _, _, _ in CASES),
        "problem_names": "lsq,mlp",
        "dtype_names": ",".join(DTYPES),
    }
    jobs = []
    for problem in ("lsq", "mlp"):
        X64, Y64, init64 = make_problem(problem, gen)
        jobs += [(problem, dtype_name, X64, Y64, init64) for dtype_name in DTYPES]
    with multiprocessing.get_context("fork").Pool(min(len(jobs), os.cpu_count() or 1)) as pool:
        for part in pool.map(run_problem, jobs):
            data.update(part)

    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "optim_reference.pt")
    torch.save(data, path + ".tmp")
    os.replace(path + ".tmp", path)
    print(f"wrote {len(CASES)} cases x 2 problems x {len(DTYPES)} dtypes x {STEPS} steps to {path}")


if __name__ == "__main__":
    main()
