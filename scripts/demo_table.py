#!/usr/bin/env python3
"""Prints one table from the summary.json files of the demo's runs (scratch vs transfer).

Usage: python3 scripts/demo_table.py RUN_SCRATCH RUN_FINETUNE [--out table.md]
"""
import argparse
import json
import os
import sys


def rows(run):
    with open(os.path.join(run, "summary.json")) as f:
        summary = json.load(f)
    return summary["split"], summary["results"], summary.get("settings", {})


def main(argv):
    p = argparse.ArgumentParser()
    p.add_argument("scratch")
    p.add_argument("finetune")
    p.add_argument("--out")
    args = p.parse_args(argv)
    split, scratch, _ = rows(args.scratch)
    _, transfer, _ = rows(args.finetune)
    best_scratch = max(r["accuracy"] for r in scratch)
    lines = ["| method (same small training set; %s split) | accuracy | loss |" % split, "|---|---:|---:|"]
    for r in scratch:
        lines.append("| from scratch: %s | %.2f%% | %.4f |" % (r["name"].replace("train: ", ""), 100 * r["accuracy"], r["loss"]))
    for r in transfer:
        lines.append("| transfer: %s | %.2f%% | %.4f |" % (r["name"], 100 * r["accuracy"], r["loss"]))
    best_transfer = max(r["accuracy"] for r in transfer)
    lines.append("")
    lines.append("Best transfer %.2f%% vs best from scratch %.2f%% (%+.2f points): %s." %
                 (100 * best_transfer, 100 * best_scratch, 100 * (best_transfer - best_scratch),
                  "transfer wins" if best_transfer > best_scratch else "transfer does NOT beat scratch here"))
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
