#!/usr/bin/env python3
"""The transfer suite tlkit finetune's defaults are judged on (run it with bench/transfer_suite.sh).

Six source -> target tasks from data Debian ships or this suite renders. For each task a small
VGG-style backbone (bench/transfer_suite_nets.py, a different one per task) is pretrained here in
plain PyTorch on the SOURCE and saved with torch.jit.script without tlkit metadata (its own module
names, 32x32 input, mean/std 0.5). Its TARGET has classes the source never had, or a domain shift.
Each target is run at 1, 2, 5, 10 and 30 images per class with 3 seeds (seed s draws the images
and seeds every method), in two folder layouts holding the same labelled images:

  noval   DIR/train/<class>/ (n images per class) + DIR/test
  val     DIR/train + DIR/val (about 20% of the n in val, at least 1; none at n = 1, where the
          layout is the noval one and is run once) + DIR/test

and by three methods:

  tlkit     build/tlkit finetune --model M.pt --data DIR --out RUN --seed S --no-progress -q with
            its defaults and only the model's preprocessing and the thread count (TLKIT_FLAGS
            below); the exported model's test accuracy from RUN/summary.json. A failed run is
            recorded as a failure and its log kept.
  recipe    the usual Python two-stage recipe on all the labelled images (train + val)
  scratch   the same architecture from random weights on the same images

The test set of a task is fixed (unseen images: held-out font families, held-out digits, the
Fashion-MNIST test split). Which half of the tasks chooses the defaults is fixed by a rule, set
before any result was seen: the first three tasks of TASKS are the "choosing" half (used to choose
tlkit's defaults), the last three are "report only".

Results are cached per run in the work folder (default runs/transfer_suite) so an interrupted
suite continues. A tlkit result is keyed by the sha256 of the tlkit binary (and the flags, model,
images and seed): after a rebuild that changes the binary every tlkit run is done again. Python
results are keyed by the sha256 of the suite's Python files, the model and the images.

Subcommands: run (the suite; see --help), report (the Markdown from cached results), and the
single jobs the suite starts: prepare, recipe, scratch.
"""
import argparse
import concurrent.futures
import datetime
import hashlib
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PYTHON = "/usr/bin/python3"
SIZES = [1, 2, 5, 10, 30]
SEEDS = [1, 2, 3]
# What tlkit is given besides --model/--data/--out/--seed/--no-progress/-q: the preprocessing the
# models were trained with (nothing about training). --threads is added per run (see --jobs).
TLKIT_FLAGS = ["--input-size", "32", "--resize", "32", "--mean", "0.5,0.5,0.5", "--std", "0.5,0.5,0.5"]
TARGET_MIN, TARGET_MEAN = 1.0, 1.03

# The first three are the "choosing" half, the last three "report only" (see the docstring).
TASKS = [
    {"name": "chars-to-digits", "arch": "bn_avg_mlp", "epochs": 8,
     "text": "printed letters A-Z, a-z (52 classes, source fonts) -> handwritten digits 0-9 "
             "(OpenCV digits.png; test: 100 held-out digits per class)",
     "source": {"kind": "glyphs", "chars": "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", "variants": 4},
     "target": {"kind": "digits", "classes": [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], "test_per_class": 100}},
    {"name": "fashion-0to4-to-5to9", "arch": "plain_flat", "epochs": 8,
     "text": "Fashion-MNIST classes 0-4 (t-shirt, trouser, pullover, dress, coat; 2,000 each) -> "
             "classes 5-9 (sandal, shirt, sneaker, bag, boot; test: 100 per class of the test split)",
     "source": {"kind": "fashion", "classes": [0, 1, 2, 3, 4], "per_class": 2000},
     "target": {"kind": "fashion", "classes": [5, 6, 7, 8, 9], "train_pool": 300, "test_per_class": 100}},
    {"name": "upper-to-lower", "arch": "bn_gap_linear", "epochs": 8,
     "text": "printed digits and capitals 0-9, A-Z (36 classes, source fonts) -> printed small letters "
             "a b d e f g h n q r (target-train fonts; test: 100 per class from the target-test fonts)",
     "source": {"kind": "glyphs", "chars": "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ", "variants": 6},
     "target": {"kind": "glyphs", "chars": "abdefghnqr", "train_variants": 2, "test_variants": 5,
                "test_per_class": 100}},
    {"name": "handwritten-to-letters", "arch": "plain_avg_mlp", "epochs": 12,
     "text": "handwritten digits 0-9 (OpenCV digits.png, all 5,000) -> printed capitals A-J "
             "(target-train fonts; test: 100 per class from the target-test fonts)",
     "source": {"kind": "digits", "classes": [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]},
     "target": {"kind": "glyphs", "chars": "ABCDEFGHIJ", "train_variants": 2, "test_variants": 5,
                "test_per_class": 100}},
    {"name": "fashion-to-digits", "arch": "bn_gap_deep_head", "epochs": 8,
     "text": "Fashion-MNIST, all 10 classes (1,000 each) -> printed digits 0-9 (target-train fonts; "
             "test: 100 per class from the target-test fonts)",
     "source": {"kind": "fashion", "classes": [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], "per_class": 1000},
     "target": {"kind": "glyphs", "chars": "0123456789", "train_variants": 2, "test_variants": 5,
                "test_per_class": 100}},
    {"name": "digits-0to4-to-inverted-5to9", "arch": "plain_max_small", "epochs": 12,
     "text": "handwritten digits 0-4 (digits.png, 2,500, white on black) -> handwritten digits 5-9 "
             "inverted (black on white; test: 100 held-out digits per class)",
     "source": {"kind": "digits", "classes": [0, 1, 2, 3, 4]},
     "target": {"kind": "digits", "classes": [5, 6, 7, 8, 9], "test_per_class": 100, "invert": True}},
]
TASK_BY_NAME = {t["name"]: t for t in TASKS}


def half(task):
    return "choosing" if TASKS.index(task) < 3 else "report only"


# ---------------------------------------------------------------- hashing and small helpers

def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def sha256_text(*parts):
    return hashlib.sha256("\n".join(str(p) for p in parts).encode()).hexdigest()


def code_hash(*files):
    return sha256_text(*(sha256_file(os.path.join(ROOT, f)) for f in files))


DATA_CODE = ("bench/transfer_suite_data.py", "scripts/make_glyph_folder.py")
NETS_CODE = ("bench/transfer_suite_nets.py", "scripts/python_two_stage.py")


def pool_key(task):
    return sha256_text("pool", json.dumps(task["target"], sort_keys=True), code_hash(*DATA_CODE))


def model_key(task):
    return sha256_text("model", json.dumps(task["source"], sort_keys=True), task["arch"], task["epochs"],
                       code_hash(*DATA_CODE), code_hash(*NETS_CODE))


def read_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def write_json(path, value):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(value, f, indent=1, sort_keys=True)
        f.write("\n")
    os.replace(tmp, path)


def last_json_line(text):
    for line in reversed(text.strip().splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    raise ValueError("no JSON line in the output")


STOP = threading.Event()  # set on SIGINT / SIGTERM: no result of a run cut short is recorded
ACTIVE = set()
ACTIVE_LOCK = threading.Lock()


class Interrupted(Exception):
    pass


def on_signal(signum, frame):
    STOP.set()
    with ACTIVE_LOCK:
        for proc in ACTIVE:
            try:
                proc.terminate()
            except OSError:
                pass
    raise KeyboardInterrupt


def run_measured(command, log, mode="w"):
    """Runs command with stdout and stderr into the file `log`; returns (exit status, CPU seconds of
    the child: user + system, from wait4, which the machine's other load does not inflate). Raises
    Interrupted when the suite is being stopped (the run's outcome is then not a result)."""
    if STOP.is_set():
        raise Interrupted()
    with open(log, mode) as f:
        proc = subprocess.Popen(command, stdout=f, stderr=subprocess.STDOUT)
        with ACTIVE_LOCK:
            ACTIVE.add(proc)
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            with ACTIVE_LOCK:
                ACTIVE.discard(proc)
        proc.returncode = os.waitstatus_to_exitcode(status)
    if STOP.is_set() or proc.returncode < 0:  # stopped, or killed by a signal from outside
        raise Interrupted()
    return proc.returncode, usage.ru_utime + usage.ru_stime


# ---------------------------------------------------------------- single jobs (subprocesses)

def cmd_prepare(args):
    """The target pool and the pretrained backbone of one task."""
    sys.path.insert(0, HERE)
    import transfer_suite_data as data
    import transfer_suite_nets as nets
    task = TASK_BY_NAME[args.task]
    tdir = os.path.join(args.work, task["name"])
    os.makedirs(tdir, exist_ok=True)
    stamp = os.path.join(tdir, "pool.json")
    if (read_json(stamp) or {}).get("key") != pool_key(task):
        start = time.time()
        counts = data.write_pool(task["target"], os.path.join(tdir, "pool"))
        write_json(stamp, {"key": pool_key(task), "counts": counts, "seconds": time.time() - start})
    stamp = os.path.join(tdir, "model", "info.json")
    if (read_json(stamp) or {}).get("key") != model_key(task):
        images, labels, classes = data.source(task["source"])
        info = nets.pretrain(task["arch"], images, labels, classes, os.path.join(tdir, "model"),
                             task["epochs"], args.threads)
        info["key"] = model_key(task)
        info["model_sha256"] = sha256_file(os.path.join(tdir, "model", "model.pt"))
        write_json(stamp, info)
    return 0


def cmd_python(args):
    sys.path.insert(0, HERE)
    import transfer_suite_nets as nets
    task = TASK_BY_NAME[args.task]
    if args.command == "recipe":
        out = nets.recipe(task["arch"], os.path.join(args.work, task["name"], "model", "state.pt"), args.data,
                          args.seed, args.threads)
    else:
        out = nets.scratch(task["arch"], args.data, args.seed, args.threads)
    print(json.dumps(out))
    return 0


# ---------------------------------------------------------------- the suite

class Suite:
    def __init__(self, args):
        self.args = args
        self.work = args.work
        self.tasks = [TASK_BY_NAME[t] for t in args.tasks]
        self.tlkit = args.tlkit
        self.lock = threading.Lock()
        self.done = 0
        self.total = 0

    def log(self, text):
        with self.lock:
            print(text, flush=True)

    def run_dir(self, task, n, seed):
        return os.path.join(self.work, task["name"], "n%d" % n, "seed%d" % seed)

    def prepare(self):
        """Pools and backbones (in parallel, --jobs at a time); returns {task: model sha256}."""
        todo = []
        for task in self.tasks:
            tdir = os.path.join(self.work, task["name"])
            info = read_json(os.path.join(tdir, "model", "info.json")) or {}
            pool = read_json(os.path.join(tdir, "pool.json")) or {}
            if info.get("key") != model_key(task) or pool.get("key") != pool_key(task):
                todo.append(task)

        def one(task):
            if STOP.is_set():
                return
            start = time.time()
            log = os.path.join(self.work, task["name"] + ".prepare.log")
            rc, cpu = run_measured([PYTHON, os.path.abspath(__file__), "prepare", "--task", task["name"],
                                    "--work", self.work, "--threads", str(self.args.threads)], log)
            write_json(os.path.join(self.work, task["name"], "prepare.json"),
                       {"seconds": time.time() - start, "cpu_seconds": cpu, "threads": self.args.threads})
            if rc != 0:
                raise SystemExit("preparing %s failed; see %s" % (task["name"], log))
            info = read_json(os.path.join(self.work, task["name"], "model", "info.json"))
            self.log("prepared %s: %s, %d parameters, pretrained %d epochs on %d images (%d classes) to "
                     "%.1f%% on a held-out tenth, %.0f s" %
                     (task["name"], info["arch"], info["params"], info["epochs"], info["source_images"],
                      info["source_classes"], 100 * info["held_out_accuracy"], time.time() - start))

        if todo:
            self.log("preparing %s (target pools, pretraining) ..." % ", ".join(t["name"] for t in todo))
            with concurrent.futures.ThreadPoolExecutor(self.args.jobs) as pool:
                list(pool.map(one, todo))

    def folders(self, task, n, seed):
        """The run folders of (task, n, seed); returns their key (made again when the pool changed)."""
        rdir = self.run_dir(task, n, seed)
        key = sha256_text("folders", pool_key(task), n, seed)
        stamp = os.path.join(rdir, "folders.json")
        if (read_json(stamp) or {}).get("key") != key:
            sys.path.insert(0, HERE)
            import transfer_suite_data as data
            os.makedirs(rdir, exist_ok=True)
            data.make_folders(os.path.join(self.work, task["name"], "pool"), os.path.join(rdir, "data"), n, seed,
                              salt=task["name"])
            write_json(stamp, {"key": key})
        return key

    def jobs(self):
        nets_hash = code_hash(*NETS_CODE)
        tlkit_sha = sha256_file(self.tlkit)
        self.tlkit_sha = tlkit_sha
        jobs = []
        for task in self.tasks:
            model_sha = read_json(os.path.join(self.work, task["name"], "model", "info.json"))["model_sha256"]
            for n in self.args.sizes:
                for seed in self.args.seeds:
                    fkey = self.folders(task, n, seed)
                    rdir = self.run_dir(task, n, seed)
                    for layout in (["noval", "val"] if n >= 2 else ["noval"]):
                        key = sha256_text("tlkit", tlkit_sha, TLKIT_FLAGS, model_sha, fkey, layout, seed)
                        jobs.append(dict(task=task, n=n, seed=seed, method="tlkit-" + layout, key=key,
                                         result=os.path.join(rdir, "tlkit-%s.json" % layout),
                                         data=os.path.join(rdir, "data", layout)))
                    for method in ("recipe", "scratch"):
                        key = sha256_text(method, nets_hash, model_sha, fkey, seed)
                        jobs.append(dict(task=task, n=n, seed=seed, method=method, key=key,
                                         result=os.path.join(rdir, method + ".json"),
                                         data=os.path.join(rdir, "data", "noval")))
        return jobs

    def run_job(self, job):
        try:
            self.run_job_measured(job)
        except Interrupted:
            pass

    def run_job_measured(self, job):
        task, n, seed, method = job["task"], job["n"], job["seed"], job["method"]
        rdir = self.run_dir(task, n, seed)
        start = time.time()
        threads = str(self.args.threads)
        if method.startswith("tlkit"):
            run = os.path.join(rdir, method)
            log = run + ".log"
            if os.path.exists(run):
                subprocess.call(["rm", "-rf", "--", run])  # a run of another binary or an interrupted one
            command = [self.tlkit, "finetune", "--model", os.path.join(self.work, task["name"], "model", "model.pt"),
                       "--data", job["data"], "--out", run, "--seed", str(seed), "--no-progress", "-q",
                       *TLKIT_FLAGS, "--threads", threads]
            with open(log, "w") as f:
                f.write("$ %s\n" % " ".join(command))
            rc, cpu = run_measured(command, log, "a")
            result = {"status": "failed", "returncode": rc, "log": os.path.relpath(log, self.work)}
            summary = read_json(os.path.join(run, "summary.json"))
            exported = [r for r in (summary or {}).get("results", []) if r.get("exported")]
            if rc == 0 and exported:
                result.update(status="ok", accuracy=exported[0]["accuracy"], exported=exported[0].get("name"))
            else:
                with open(log) as f:
                    lines = [l.strip() for l in f.read().splitlines()[1:] if l.strip()]
                result["error"] = " / ".join(lines[-3:]) if lines else "no output, exit status %d" % rc
        else:
            command = [PYTHON, os.path.abspath(__file__), method, "--task", task["name"], "--work", self.work,
                       "--data", job["data"], "--seed", str(seed), "--threads", threads]
            log = job["result"][:-5] + ".log"
            rc, cpu = run_measured(command, log)
            with open(log) as f:
                output = f.read()
            try:
                out = last_json_line(output) if rc == 0 else None
            except ValueError:
                out = None
            if out:
                result = {"status": "ok", "accuracy": out["test_accuracy"], **out}
            else:
                result = {"status": "failed", "returncode": rc, "log": os.path.relpath(log, self.work),
                          "error": " / ".join(output.strip().splitlines()[-3:])}
        result.update(key=job["key"], seconds=time.time() - start, cpu_seconds=cpu, threads=self.args.threads,
                      jobs=self.args.jobs, loadavg_after=os.getloadavg()[0])
        write_json(job["result"], result)
        with self.lock:
            self.done += 1
            done = self.done
        text = ("%.1f%%" % (100 * result["accuracy"])) if result["status"] == "ok" else "FAILED: " + result["error"]
        self.log("[%d/%d] %s n=%d seed=%d %s: %s (%.1f s)" % (done, self.total, task["name"], n, seed, method, text,
                                                             result["seconds"]))

    def run(self):
        os.makedirs(self.work, exist_ok=True)
        self.prepare()
        jobs = self.jobs()
        todo = [j for j in jobs if (read_json(j["result"]) or {}).get("key") != j["key"]]
        self.log("%d runs, %d cached, %d to do (%d at a time, %d thread%s each)" %
                 (len(jobs), len(jobs) - len(todo), len(todo), self.args.jobs, self.args.threads,
                  "" if self.args.threads == 1 else "s"))
        # The biggest runs first, so the last ones to finish are short.
        order = {"tlkit-noval": 0, "tlkit-val": 1, "recipe": 2, "scratch": 3}
        todo.sort(key=lambda j: (-j["n"], TASKS.index(j["task"]), j["seed"], order[j["method"]]))
        self.total = len(todo)
        with concurrent.futures.ThreadPoolExecutor(self.args.jobs) as pool:
            for future in [pool.submit(self.run_job, j) for j in todo]:
                future.result()
        return jobs


# ---------------------------------------------------------------- the report

def fmt_acc(values):
    if not values:
        return "-"
    text = "%.1f" % (100 * statistics.mean(values))
    if len(values) > 1:
        text += " ± %.1f" % (100 * statistics.stdev(values))
    return text + "%"


def cell(results):
    """Text for one method's cell from its per-seed results."""
    ok = [r["accuracy"] for r in results if r and r["status"] == "ok"]
    missing = sum(1 for r in results if not r)
    failed = sum(1 for r in results if r and r["status"] != "ok")
    text = fmt_acc(ok)
    if failed:
        text = ("FAILED %d/%d" % (failed, len(results))) + ("" if not ok else " (ok: %s)" % text)
    if missing:
        text += " (%d not run)" % missing
    return text


def short_export(name):
    """'feature extraction (stage 1 head), from body.14' -> 'head from body.14', 'fine-tuning: best
    (epoch 3)' -> 'best', ..."""
    name = name or "?"
    if name.startswith("feature extraction"):
        return "head from " + name.rsplit("from ", 1)[-1] if "from " in name else "stage-1 head"
    name = name.split(": ", 1)[-1]
    return name.split(" (", 1)[0]


def ratio(tl, py):
    """Mean tlkit accuracy / mean Python accuracy over the seeds where both ran; None on any tlkit
    failure (a failure never counts as a ratio)."""
    pairs = [(a, b) for a, b in zip(tl, py) if a and b and b["status"] == "ok"]
    if not pairs or any(a["status"] != "ok" for a, _ in pairs) or len(pairs) < len([a for a in tl if a]):
        return None
    return statistics.mean(a["accuracy"] for a, _ in pairs) / statistics.mean(b["accuracy"] for _, b in pairs)


def fmt_ratio(value, tl):
    if value is not None:
        return "%.3f" % value
    return "FAILED" if any(r and r["status"] != "ok" for r in tl) else "-"


def git_describe():
    """HEAD and the last commit that changed the C++ (what build/tlkit is built from, if built at HEAD)."""
    def git(*a):
        return subprocess.check_output(["git", "-C", ROOT, *a], text=True, stderr=subprocess.DEVNULL).strip()
    try:
        head = git("rev-parse", "--short", "HEAD")
        cpp = git("log", "-1", "--format=%h", "--", "src", "include", "CMakeLists.txt", "cmake")
        dirty = subprocess.call(["git", "-C", ROOT, "diff", "--quiet", "HEAD", "--", "src", "include",
                                 "CMakeLists.txt", "cmake"])
        return "HEAD %s (C++ last changed in %s%s)" % (head, cpp, ", plus uncommitted C++ changes" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def report(args, wall=None, loadavg=None):
    sys.path.insert(0, HERE)
    import transfer_suite_data as data
    tasks = [TASK_BY_NAME[t] for t in args.tasks]
    tlkit = args.tlkit
    tlkit_sha = sha256_file(tlkit) if os.path.exists(tlkit) else None

    def load(task, n, seed, method):
        r = read_json(os.path.join(args.work, task["name"], "n%d" % n, "seed%d" % seed, method + ".json"))
        if r and method.startswith("tlkit") and r.get("key") and tlkit_sha:
            # Only results of this binary: recompute the key it must have.
            info = read_json(os.path.join(args.work, task["name"], "model", "info.json")) or {}
            fkey = sha256_text("folders", pool_key(task), n, seed)
            layout = method.split("-", 1)[1]
            if r["key"] != sha256_text("tlkit", tlkit_sha, TLKIT_FLAGS, info.get("model_sha256"), fkey, layout, seed):
                return None
        return r

    infos = {t["name"]: read_json(os.path.join(args.work, t["name"], "model", "info.json")) or {} for t in tasks}
    pools = {t["name"]: read_json(os.path.join(args.work, t["name"], "pool.json")) or {} for t in tasks}
    cores = os.cpu_count()
    L = ["# Transfer suite: tlkit finetune's defaults on six source -> target tasks", ""]
    given = "".join(" --%s %s" % (k, shown(v) if k in ("work", "tlkit", "report") else v)
                    for k, v in args.given.items())
    if args.note:
        L += ["> " + args.note, ""]
    if wall is not None:
        L += ["Generated by `bash bench/transfer_suite.sh%s` on %s." % (given, datetime.date.today().isoformat()), ""]
    else:
        L += ["Generated on %s from the cached runs by `/usr/bin/python3 bench/transfer_suite.py report%s` (the "
              "runs: `bash bench/transfer_suite.sh` with the same options)." % (datetime.date.today().isoformat(),
                                                                                given), ""]
    L += ["- **tlkit**: %s, binary sha256 %s; `tlkit finetune --model M.pt --data DIR --out RUN "
          "--seed S --no-progress -q %s --threads %d` — its defaults, given only the models' "
          "preprocessing (and the thread count); the exported model's test accuracy from "
          "`RUN/summary.json`." % (git_describe(), (tlkit_sha or "?")[:16], " ".join(TLKIT_FLAGS), args.threads),
          "- **Python recipe**: the same backbone and pretrained weights, a new classification layer "
          "trained alone (Adam 1e-3, 400 steps, frozen network in eval mode), then every layer Adam "
          "1e-4 (3e-4 for the new layer), 40 epochs, batch 32, the last model; trained on all the "
          "labelled images (train + val), same preprocessing (`bench/transfer_suite_nets.py`).",
          "- **scratch**: the same architecture from random weights, Adam 1e-3, 40 epochs, batch 32, "
          "the last model, on the same images.",
          "- **Layouts**: *without val*: `DIR/train/<class>/` holds the n images per class (tlkit splits "
          "its own validation off them); *with val*: the same n split into `DIR/train` and `DIR/val` "
          "(val: %s per class at n = %s; at n = 1 there is no val and the two layouts are the same "
          "run)." % (", ".join(str(data.val_count(n)) for n in args.sizes if n >= 2),
                     ", ".join(str(n) for n in args.sizes if n >= 2)),
          "- **Sizes** %s images per class; **seeds** %s (a seed draws the images and seeds every "
          "method); cells are the mean ± std over the seeds of the test accuracy; ratio = mean tlkit "
          "accuracy / mean Python-recipe accuracy." % (", ".join(map(str, args.sizes)),
                                                        ", ".join(map(str, args.seeds))),
          "- **Machine**: %d cores (%s), %d runs at a time with %d thread%s each (Python: "
          "`torch.set_num_threads`, tlkit: `--threads`), niceness %d." %
          (cores, cpu_name(), args.jobs, args.threads, "" if args.threads == 1 else "s", os.nice(0))]
    if wall is not None:
        L.append("- **Wall time** of this invocation: %.1f min (cached results are not run again); load average "
                 "%.1f at its start, %.1f at its end (the machine's other work counts in the wall times below, "
                 "not in the CPU times)." % (wall / 60, loadavg[0], os.getloadavg()[0]))
    history = []
    try:
        with open(os.path.join(args.work, "invocations.jsonl")) as f:
            history = [json.loads(line) for line in f if line.strip()]
    except OSError:
        pass
    history = [h for h in history if h.get("tlkit_sha256") == tlkit_sha]
    if history:
        L.append("- **Invocations** with this tlkit binary that ran something: %s." % "; ".join(
            "%s, %d runs in %.1f min (%s)" % (
                h["date"], h["runs"], h["wall_seconds"] / 60,
                h.get("note") or "load average %.1f -> %.1f" % (h["loadavg_start"], h["loadavg_end"]))
            for h in history))
    L += ["", "## Tasks", "",
          "The first three tasks are the **choosing** half (used to choose tlkit's defaults); the last "
          "three are **report only** (a rule fixed before any result was seen).", "",
          "| task | half | source -> target | backbone | pretraining | test images |",
          "|---|---|---|---|---|---:|"]
    for t in tasks:
        info, pool = infos[t["name"]], pools[t["name"]]
        L.append("| %s | %s | %s | `%s`, %s parameters | %s | %s |" % (
            t["name"], half(t), t["text"], t["arch"], "{:,}".format(info.get("params", 0)),
            "%d epochs on %s images, %.1f%% on a held-out tenth" % (
                info.get("epochs", 0), "{:,}".format(info.get("source_images", 0)),
                100 * info.get("held_out_accuracy", 0)) if info else "-",
            "{:,}".format(sum(pool.get("counts", {}).get("test", {}).values())) if pool else "-"))
    fonts = data.font_summary()
    L += ["", "Font families (faces) — source: %s; target train: %s; target test: %s. A target's test "
          "images come from families never used for its train images." %
          ("; ".join(fonts["source"]), "; ".join(fonts["target_train"]), "; ".join(fonts["target_test"])), ""]

    summary = []
    times = {}
    failures = []
    exported = {}
    for t in tasks:
        L += ["## %s (%s)" % (t["name"], half(t)), "",
              "| images per class | tlkit without val | tlkit with val | Python recipe | scratch | "
              "ratio without val | ratio with val |", "|---:|---:|---:|---:|---:|---:|---:|"]
        for n in args.sizes:
            res = {m: [load(t, n, s, m) for s in args.seeds] for m in ("tlkit-noval", "tlkit-val", "recipe", "scratch")}
            if n < 2:
                res["tlkit-val"] = res["tlkit-noval"]
            for m, rs in res.items():
                for s, r in zip(args.seeds, rs):
                    if r:
                        if r["status"] == "ok" and not (n < 2 and m == "tlkit-val"):
                            times.setdefault((m, n), []).append((r["seconds"], r.get("cpu_seconds")))
                        if r["status"] != "ok" and not (n < 2 and m == "tlkit-val"):
                            failures.append((t["name"], n, s, m, r))
            r0 = ratio(res["tlkit-noval"], res["recipe"])
            r1 = ratio(res["tlkit-val"], res["recipe"])
            L.append("| %d | %s | %s | %s | %s | %s | %s |" % (
                n, cell(res["tlkit-noval"]), cell(res["tlkit-val"]) + (" (same run)" if n < 2 else ""),
                cell(res["recipe"]), cell(res["scratch"]), fmt_ratio(r0, res["tlkit-noval"]),
                fmt_ratio(r1, res["tlkit-val"])))
            summary.append((t, n, r0, r1, fmt_ratio(r0, res["tlkit-noval"]), fmt_ratio(r1, res["tlkit-val"])))
            for layout in ("noval", "val"):
                for r in res["tlkit-" + layout]:
                    if r and r["status"] == "ok" and not (n < 2 and layout == "val"):
                        exported.setdefault((t["name"], layout, n), []).append(short_export(r.get("exported")))
        L.append("")
        rows = []
        for n in args.sizes:
            cells = []
            for layout in ("noval", "val"):
                names = exported.get((t["name"], layout, n if n >= 2 or layout == "noval" else -1))
                cells.append(", ".join("%s x%d" % (k, names.count(k)) if names.count(k) > 1 else k
                                       for k in sorted(set(names))) if names else "-")
            rows.append("| %d | %s | %s |" % (n, cells[0], cells[1] if n >= 2 else "(same run)"))
        L += ["What tlkit exported (its `summary.json`; stage-1 head: the layer it starts from):", "",
              "| images per class | without val | with val |", "|---:|---|---|"] + rows + [""]

    # Summary: worst first; failures count as the worst.
    L += ["## Summary", "",
          "Target: ratio tlkit / Python recipe >= %.2f at every size from 2 per class, and a mean >= %.2f "
          "over those sizes (main number: the layout without val; the with-val layout beside it). A "
          "failed tlkit run misses the target." % (TARGET_MIN, TARGET_MEAN), "",
          "| task | half | images per class | ratio without val | ratio with val |", "|---|---|---:|---:|---:|"]

    def sort_key(row):  # failures first, cells without results last
        return (-1 if row[4] == "FAILED" else float("inf")) if row[2] is None else row[2]
    for t, n, r0, r1, s0, s1 in sorted(summary, key=sort_key):
        L.append("| %s | %s | %d | %s | %s |" % (t["name"], half(t), n, s0, s1))
    L.append("")
    verdict_lines = []
    for label, group in (("all tasks", tasks), ("choosing half", [t for t in tasks if half(t) == "choosing"]),
                         ("report-only half", [t for t in tasks if half(t) != "choosing"])):
        if not group:
            continue
        for li, layout in ((2, "without val"), (3, "with val")):
            rows = [row for row in summary if row[0] in group and row[1] >= 2]
            if not rows:
                continue
            vals = [row[li] for row in rows if row[li] is not None]
            failed = [row for row in rows if row[li] is None and row[4 if li == 2 else 5] == "FAILED"]
            missing = len(rows) - len(vals) - len(failed)
            worst = min(vals) if vals else None
            worst_row = min((row for row in rows if row[li] is not None), key=lambda row: row[li], default=None)
            mean = statistics.mean(vals) if vals else None
            met = (not failed and not missing and worst is not None and worst >= TARGET_MIN and mean >= TARGET_MEAN)
            text = "**%s, %s** (sizes >= 2): " % (label, layout)
            if failed:
                text += "%d (task, size) cell%s FAILED (%s); " % (
                    len(failed), "" if len(failed) == 1 else "s",
                    ", ".join("%s n=%d" % (row[0]["name"], row[1]) for row in failed))
            if worst is not None:
                text += "worst ratio %.3f (%s, n=%d), mean ratio %.3f over %d cells" % (
                    worst, worst_row[0]["name"], worst_row[1], mean, len(vals))
            if not vals and not failed:
                text += "no results"
            elif missing:
                text += " (%d cell%s without results)" % (missing, "" if missing == 1 else "s")
            text += " — target %s." % ("met" if met else "NOT met")
            verdict_lines.append(text)
    L += ["- " + v for v in verdict_lines] + [""]

    L += ["## Time per run", "",
          "Mean seconds of one successful run, wall / CPU (user + system of the process: what it costs "
          "on an idle core), %d at a time, %d thread%s each, over the tasks and seeds run:" %
          (args.jobs, args.threads, "" if args.threads == 1 else "s"), "",
          "| images per class | tlkit without val | tlkit with val | Python recipe | scratch |", "|---:|---:|---:|---:|---:|"]
    wall_total = cpu_total = 0.0
    for n in args.sizes:
        row = []
        for m in ("tlkit-noval", "tlkit-val", "recipe", "scratch"):
            v = times.get((m, n), [])
            wall_total += sum(w for w, _ in v)
            cpus = [c for _, c in v if c is not None]
            cpu_total += sum(cpus)
            row.append("%.1f / %s" % (statistics.mean(w for w, _ in v), "%.1f" % statistics.mean(cpus) if cpus else "-")
                       if v else "-")
        L.append("| %d | %s |" % (n, " | ".join(row)))
    prep_wall = prep_cpu = 0.0
    for t in tasks:
        prep = read_json(os.path.join(args.work, t["name"], "prepare.json")) or {}
        prep_wall += prep.get("seconds", (infos[t["name"]] or {}).get("seconds", 0))
        prep_cpu += prep.get("cpu_seconds", 0)
    parallel = max(1, min(cores, args.jobs))
    no_cpu = sum(1 for v in times.values() for _, c in v if c is None)
    L += ["", "Sums over the runs above: %.1f min wall, %.1f min CPU; preparing the tasks (rendering, "
          "pretraining): %.1f min wall%s. From scratch at %d runs at a time that is about %.0f min of wall "
          "time as measured here, or about %.0f min on %d idle cores (CPU time / %d)." %
          (wall_total / 60, cpu_total / 60, prep_wall / 60, ", %.1f min CPU" % (prep_cpu / 60) if prep_cpu else "",
           args.jobs, (wall_total + prep_wall) / 60 / args.jobs, (cpu_total + (prep_cpu or prep_wall)) / 60 / parallel,
           cores, parallel) + (" (CPU time not recorded for %d runs)" % no_cpu if no_cpu else ""), ""]
    if failures:
        L += ["## Failed runs", "", "Logs are in the work folder (`%s`)." % shown(args.work), ""]
        groups = {}
        for name, n, s, m, r in failures:
            # The same error in many runs once: the run's own folder path left out.
            error = r.get("error", "?").replace(os.path.join(args.work, name, "n%d" % n, "seed%d" % s), "RUN")
            groups.setdefault((m, error), []).append((name, n, s, r.get("log", "?")))
        for (m, error), runs in groups.items():
            cells = {}
            for name, n, s, _ in runs:
                cells.setdefault((name, n), []).append(str(s))
            L.append("- %s, %d run%s (%s): %s (e.g. `%s`)" % (
                m, len(runs), "" if len(runs) == 1 else "s",
                "; ".join("%s n=%d seed %s" % (name, n, ",".join(ss)) for (name, n), ss in cells.items()),
                error, runs[0][3]))
        L.append("")
    text = "\n".join(L)
    os.makedirs(os.path.dirname(os.path.abspath(args.report)), exist_ok=True)
    with open(args.report, "w") as f:
        f.write(text)
    return text, verdict_lines, summary


def print_summary(text):
    start = text.index("## Summary")
    end = text.index("## Time per run")
    print()
    print(text[start:end].rstrip())


def shown(path):
    """A path as the report names it: relative to the repo, or only its last part when outside it
    (a report never records this machine's folders)."""
    rel = os.path.relpath(path, os.getcwd())
    return os.path.join("...", os.path.basename(os.path.normpath(path))) if rel.startswith("..") else rel


def int_list(text):
    return [int(v) for v in text.split(",") if v.strip()]


def main(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    cores = os.cpu_count() or 2
    for name in ("run", "report"):
        a = sub.add_parser(name, description=__doc__ if name == "run" else "The Markdown report from cached runs.",
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        a.add_argument("--work", default=os.path.join(ROOT, "runs", "transfer_suite"),
                       help="work folder: data, models, runs and their results (default runs/transfer_suite)")
        a.add_argument("--tasks", default=",".join(t["name"] for t in TASKS),
                       help="comma-separated (default: all six: %s)" % ", ".join(t["name"] for t in TASKS))
        a.add_argument("--sizes", default=",".join(map(str, SIZES)), help="images per class (default 1,2,5,10,30)")
        a.add_argument("--seeds", default=",".join(map(str, SEEDS)), help="default 1,2,3")
        a.add_argument("--jobs", type=int, default=2, help="runs at a time (default 2)")
        a.add_argument("--threads", type=int, default=0, help="threads per run (default: cores / jobs, at least 1)")
        a.add_argument("--report", default=os.path.join(ROOT, "bench", "results", "transfer_suite.md"),
                       help="the Markdown report (default bench/results/transfer_suite.md)")
        a.add_argument("--note", default="", help="a line put at the top of the report")
        a.add_argument("--tlkit", default=os.path.join(ROOT, "build", "tlkit"),
                       help="the tlkit binary (default build/tlkit); its results are keyed by its sha256")
    a = sub.add_parser("prepare")
    a.add_argument("--task", required=True)
    a.add_argument("--work", required=True)
    a.add_argument("--threads", type=int, default=1)
    for name in ("recipe", "scratch"):
        a = sub.add_parser(name)
        a.add_argument("--task", required=True)
        a.add_argument("--work", required=True)
        a.add_argument("--data", required=True)
        a.add_argument("--seed", type=int, required=True)
        a.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    if args.command == "prepare":
        return cmd_prepare(args)
    if args.command in ("recipe", "scratch"):
        return cmd_python(args)
    given = {}
    for k in ("work", "tasks", "sizes", "seeds", "jobs", "tlkit"):
        if "--" + k in argv:
            given[k] = getattr(args, k)
    args.given = given
    args.work = os.path.abspath(args.work)
    args.tlkit = os.path.abspath(args.tlkit)
    args.tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    for t in args.tasks:
        if t not in TASK_BY_NAME:
            p.error("unknown task %s (tasks: %s)" % (t, ", ".join(TASK_BY_NAME)))
    args.tasks.sort(key=lambda t: TASKS.index(TASK_BY_NAME[t]))
    args.sizes, args.seeds = int_list(args.sizes), int_list(args.seeds)
    if any(n < 1 for n in args.sizes) or not args.sizes or not args.seeds:
        p.error("--sizes and --seeds take positive integers")
    args.jobs = max(1, args.jobs)
    args.threads = args.threads or max(1, cores // args.jobs)
    start = time.time()
    loadavg = os.getloadavg()
    if args.command == "run":
        if not os.access(args.tlkit, os.X_OK):
            sys.exit("no tlkit at %s: build it first (cmake --build build --target tlkit_cli)" % args.tlkit)
        signal.signal(signal.SIGINT, on_signal)
        signal.signal(signal.SIGTERM, on_signal)
        suite = Suite(args)
        try:
            suite.run()
            # Every invocation that ran something, for the report's wall-time line.
            if suite.total:
                with open(os.path.join(args.work, "invocations.jsonl"), "a") as f:
                    f.write(json.dumps({"date": datetime.datetime.now().isoformat(timespec="seconds"),
                                        "tlkit_sha256": suite.tlkit_sha, "runs": suite.total,
                                        "wall_seconds": time.time() - start, "jobs": args.jobs,
                                        "threads": args.threads, "loadavg_start": loadavg[0],
                                        "loadavg_end": os.getloadavg()[0]}) + "\n")
        except KeyboardInterrupt:
            STOP.set()
            print("stopped: the runs finished so far are kept in %s; run the same command again to "
                  "continue" % shown(args.work), file=sys.stderr)
            return 130
    text, verdicts, _ = report(args, wall=time.time() - start if args.command == "run" else None, loadavg=loadavg)
    print_summary(text)
    print("\n" + verdicts[0].replace("**", "") if verdicts else "\nno results")
    print("wrote %s" % shown(args.report))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
