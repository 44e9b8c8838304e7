#!/usr/bin/env python3
"""Reference learning-rate sequences from Python torch.optim.lr_scheduler for tlkit's schedule tests.

Every case runs one scheduler on an optimizer with TWO param groups of different base lrs and
records the lr of each group after construction (step 0) and after each step. OneCycleLR cases
also record the cycled momentum (SGD momentum or Adam beta1); ReduceLROnPlateau cases record the
metric fed at each step; the fractional CosineAnnealingWarmRestarts case records the epoch passed to
step(epoch). Values are written with repr(), which round-trips doubles exactly.

Output: <out>/schedule_reference.txt, blocks of
    case NAME
    spec SPEC            (the equivalent tlkit make_scheduler spec, or '-')
    optimizer sgd|adam
    lr STEP LR0 LR1
    momentum STEP M0 M1  (OneCycleLR with cycle_momentum)
    input STEP VALUE     (metric or epoch given to that step)
    end

Usage: /usr/bin/python3 scripts/gen_schedule_reference.py --out DIR
"""
import argparse
import math
import os
import warnings

import torch
from torch.optim import lr_scheduler as S

BASE_LRS = (0.1, 0.01)


def make_optimizer(kind):
    params = [torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(3))]
    groups = [{"params": [params[0]], "lr": BASE_LRS[0]}, {"params": [params[1]], "lr": BASE_LRS[1]}]
    if kind == "sgd":
        return torch.optim.SGD(groups, lr=BASE_LRS[0], momentum=0.9)
    if kind == "adam":
        return torch.optim.Adam(groups, lr=BASE_LRS[0])
    raise ValueError(kind)


def momenta(opt):
    if "betas" in opt.defaults:
        return [g["betas"][0] for g in opt.param_groups]
    return [g["momentum"] for g in opt.param_groups]


def plateau_metrics(n, mode):
    # Improves, stalls, improves a little (below/above threshold), stalls: exercises patience,
    # cooldown, thresholds and min_lr.
    values = []
    for t in range(n):
        if t < 6:
            v = 1.0 - 0.1 * t
        elif t < 14:
            v = 0.5 + 0.01 * math.sin(t)
        elif t < 18:
            v = 0.45 - 0.00001 * t
        else:
            v = 0.44 + 0.02 * ((t * 7) % 5) / 5.0
        values.append(v if mode == "min" else -v)
    return values


def fractional_epochs(epochs, iters):
    return [e + i / iters for e in range(epochs) for i in range(iters)]


def cases():
    """(name, spec, optimizer kind, builder(opt) -> scheduler, steps, driver, inputs)."""
    c = []

    def add(name, spec, build, steps=40, kind="sgd", driver="plain", inputs=None):
        c.append((name, spec, kind, build, steps, driver, inputs))

    add("constant", "constant", lambda o: S.LambdaLR(o, lambda e: 1.0), steps=30)
    add("step", "step:step_size=7,gamma=0.5", lambda o: S.StepLR(o, step_size=7, gamma=0.5))
    add("step_default_gamma", "step:step_size=3", lambda o: S.StepLR(o, step_size=3), steps=30)
    add("multistep", "multistep:milestones=5/12/12/25,gamma=0.3",
        lambda o: S.MultiStepLR(o, milestones=[5, 12, 12, 25], gamma=0.3))
    add("constantlr", "constantlr:factor=0.25,total_iters=6",
        lambda o: S.ConstantLR(o, factor=0.25, total_iters=6), steps=30)
    add("constantlr_default", "constantlr", lambda o: S.ConstantLR(o), steps=30)
    add("linear", "linear:start_factor=0.2,end_factor=0.9,total_iters=10",
        lambda o: S.LinearLR(o, start_factor=0.2, end_factor=0.9, total_iters=10))
    add("linear_default", "linear", lambda o: S.LinearLR(o), steps=30)
    add("exp", "exp:gamma=0.9", lambda o: S.ExponentialLR(o, gamma=0.9))
    add("poly", "poly:total_iters=20,power=2", lambda o: S.PolynomialLR(o, total_iters=20, power=2.0))
    add("poly_sqrt", "poly:total_iters=30,power=0.5",
        lambda o: S.PolynomialLR(o, total_iters=30, power=0.5), steps=35)
    add("cosine", "cosine:T_max=30", lambda o: S.CosineAnnealingLR(o, T_max=30), steps=31)
    add("cosine_past_tmax", "cosine:T_max=10,eta_min=0.001",
        lambda o: S.CosineAnnealingLR(o, T_max=10, eta_min=0.001), steps=45)
    add("restarts", "restarts:T_0=5,T_mult=2,eta_min=0.0001",
        lambda o: S.CosineAnnealingWarmRestarts(o, T_0=5, T_mult=2, eta_min=1e-4), steps=80)
    add("restarts_tmult1", "restarts:T_0=7", lambda o: S.CosineAnnealingWarmRestarts(o, T_0=7))
    add("restarts_fractional", "-",
        lambda o: S.CosineAnnealingWarmRestarts(o, T_0=3, T_mult=2, eta_min=0.001),
        driver="epoch", inputs=fractional_epochs(24, 4), steps=None)
    add("restarts_fractional_tmult1", "-",
        lambda o: S.CosineAnnealingWarmRestarts(o, T_0=4, T_mult=1),
        driver="epoch", inputs=fractional_epochs(12, 3), steps=None)
    add("onecycle", "onecycle:max_lr=1/0.1,total_steps=40",
        lambda o: S.OneCycleLR(o, max_lr=[1.0, 0.1], total_steps=40), steps=40)
    add("onecycle_adam_linear_3phase",
        "onecycle:max_lr=0.5/0.05,epochs=5,steps_per_epoch=8,anneal_strategy=linear,three_phase=true",
        lambda o: S.OneCycleLR(o, max_lr=[0.5, 0.05], epochs=5, steps_per_epoch=8, anneal_strategy="linear",
                               three_phase=True), steps=40, kind="adam")
    add("onecycle_no_momentum",
        "onecycle:max_lr=0.3/0.03,total_steps=36,pct_start=0.25,div_factor=10,final_div_factor=100,"
        "cycle_momentum=false",
        lambda o: S.OneCycleLR(o, max_lr=[0.3, 0.03], total_steps=36, pct_start=0.25, div_factor=10.0,
                               final_div_factor=100.0, cycle_momentum=False), steps=36)
    add("onecycle_momentum_range",
        "onecycle:max_lr=0.2/0.02,total_steps=33,base_momentum=0.8,max_momentum=0.99,pct_start=0.4",
        lambda o: S.OneCycleLR(o, max_lr=[0.2, 0.02], total_steps=33, base_momentum=0.8, max_momentum=0.99,
                               pct_start=0.4), steps=33)
    add("plateau_min_rel", "plateau:patience=2,factor=0.5,cooldown=1,min_lr=0.02/0.001",
        lambda o: S.ReduceLROnPlateau(o, patience=2, factor=0.5, cooldown=1, min_lr=[0.02, 0.001]),
        driver="metric", inputs=plateau_metrics(40, "min"), steps=None)
    add("plateau_max_abs", "plateau:mode=max,threshold_mode=abs,threshold=0.05,patience=1,factor=0.3",
        lambda o: S.ReduceLROnPlateau(o, mode="max", threshold_mode="abs", threshold=0.05,
                                      patience=1, factor=0.3),
        driver="metric", inputs=plateau_metrics(40, "max"), steps=None)
    add("plateau_eps", "plateau:patience=0,factor=0.5,eps=0.004",
        lambda o: S.ReduceLROnPlateau(o, patience=0, factor=0.5, eps=0.004),
        driver="metric", inputs=plateau_metrics(32, "min"), steps=None)

    def warmup_cosine(o, warm=5, start=0.1, total=40):
        first = S.LinearLR(o, start_factor=start, total_iters=warm)
        second = S.CosineAnnealingLR(o, T_max=total - warm)
        return S.SequentialLR(o, [first, second], milestones=[warm])

    add("warmup_cosine", "warmup:5+cosine", warmup_cosine)
    add("warmup_cosine_custom", "warmup:8,start_factor=0.01+cosine:eta_min=0.001",
        lambda o: S.SequentialLR(o, [S.LinearLR(o, start_factor=0.01, total_iters=8),
                                     S.CosineAnnealingLR(o, T_max=32, eta_min=0.001)], milestones=[8]))
    add("warmup_restarts", "warmup:4+restarts:T_0=6,T_mult=2",
        lambda o: S.SequentialLR(o, [S.LinearLR(o, start_factor=0.1, total_iters=4),
                                     S.CosineAnnealingWarmRestarts(o, T_0=6, T_mult=2)], milestones=[4]),
        steps=60)
    add("warmup_step", "warmup:3+step:step_size=4,gamma=0.5",
        lambda o: S.SequentialLR(o, [S.LinearLR(o, start_factor=0.1, total_iters=3),
                                     S.StepLR(o, step_size=4, gamma=0.5)], milestones=[3]), steps=30)
    add("sequential_three", "-",
        lambda o: S.SequentialLR(o, [S.ConstantLR(o, factor=0.1, total_iters=2),
                                     S.ExponentialLR(o, gamma=0.9),
                                     S.StepLR(o, step_size=4, gamma=0.5)], milestones=[3, 10]),
        steps=30)
    return c


def run_case(case):
    name, spec, kind, build, steps, driver, inputs = case
    opt = make_optimizer(kind)
    sched = build(opt)
    lines = [f"case {name}", f"spec {spec}", f"optimizer {kind}"]
    cycles_momentum = isinstance(sched, S.OneCycleLR) and sched.cycle_momentum

    def record(step, value=None):
        lrs = [g["lr"] for g in opt.param_groups]
        lines.append("lr %d %s" % (step, " ".join(repr(float(v)) for v in lrs)))
        if cycles_momentum:
            lines.append("momentum %d %s" % (step, " ".join(repr(float(v)) for v in momenta(opt))))
        if value is not None:
            lines.append("input %d %s" % (step, repr(float(value))))

    if driver == "epoch":
        # Stepped only by step(epoch): the first value comes from the construction-time step.
        record(0)
        for i, epoch in enumerate(inputs, start=1):
            sched.step(epoch)
            record(i, epoch)
    elif driver == "metric":
        record(0)
        for i, metric in enumerate(inputs, start=1):
            sched.step(metric)
            record(i, metric)
    else:
        record(0)
        for i in range(1, steps):
            sched.step()
            record(i)
    lines.append("end")
    return lines


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="folder for schedule_reference.txt")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    torch.manual_seed(0)
    out = [f"# torch {torch.__version__}; base lrs {BASE_LRS[0]!r} {BASE_LRS[1]!r}"]
    for case in cases():
        out.extend(run_case(case))
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "schedule_reference.txt")
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write("\n".join(out) + "\n")
    os.replace(tmp, path)


if __name__ == "__main__":
    main()
