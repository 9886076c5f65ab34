#!/usr/bin/env python3
"""The Fashion-MNIST transfer study: which pretrained source helps a small target most, and
does `gantl select` (recall of the source against the target) predict it?

Stages (each skips work whose output already exists, so the study can be resumed):
  sources   pretrain one StyleGAN2-ADA per source set with `gantl train`, then export each
            final snapshot (networks only) to models/fmnist_src_NAME.safetensors
  select    rank the exported sources for the target with `gantl select` (recall, and FID)
  finetune  fine-tune each source on the target (1000 training images of the held-out class)
            and train from scratch for the same budget, scoring G_ema against the target's
            test images (FID / KID / precision / recall / modes) at every snapshot
  summary   out/fmnist_study/summary.json and summary.md: metrics against kimg per run, the
            final numbers, and whether the selection order matches the fine-tuned order

usage: python3 tools/fmnist_study.py [--stages sources,select,finetune,summary]
           [--source-kimg 60] [--finetune-kimg 20] [--out out/fmnist_study]
Needs build/gantl (make) and Debian's dataset-fashion-mnist. Only the Python standard library.
"""
import argparse
import json
import os
import subprocess
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
GANTL = os.path.join(ROOT, "build", "gantl")

TARGET = "sneaker"
# the held-out class is in none of the sources
SOURCES = {
    "all_but_sneaker": "t-shirt,trouser,pullover,dress,coat,sandal,shirt,bag,ankle-boot",
    "footwear": "sandal,ankle-boot",
    "trouser": "trouser",
}
# narrow networks (two CPU cores): the three exported networks (G, G_ema, D) take about 1.3 MB
NET = ["--channel-base", "1024", "--channel-max", "32"]


def run(args, log=None):
    print("+ gantl " + " ".join(args), flush=True)
    with open(log, "a") if log else open(os.devnull, "w") as f:
        p = subprocess.run([GANTL] + args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT)
        f.write(p.stdout)
    if p.returncode != 0:
        sys.exit(f"gantl {args[0]} failed ({p.returncode}):\n{p.stdout[-2000:]}")
    return p.stdout


def last_snapshot(run_dir):
    snaps = sorted(f for f in os.listdir(run_dir) if f.startswith("network-snapshot-") and f.endswith(".safetensors"))
    return os.path.join(run_dir, snaps[-1]) if snaps else None


def source_model(name):
    return os.path.join(ROOT, "models", f"fmnist_src_{name}.safetensors")


def stage_sources(a):
    for name, classes in SOURCES.items():
        model = source_model(name)
        if os.path.exists(model):
            print(f"{model} exists: skipping its pretraining")
            continue
        run_dir = os.path.join(a.out, f"src_{name}")
        args = ["train", "--data", f"fashion-mnist:{classes}", "--out", run_dir, "--kimg", str(a.source_kimg),
                "--snap", "10", "--seed", "0"] + NET
        snap = last_snapshot(run_dir) if os.path.isdir(run_dir) else None
        if snap:
            args += ["--resume", snap]  # an interrupted pretraining continues exactly
        run(args, os.path.join(a.out, f"src_{name}.log"))
        run(["export", "--ckpt", last_snapshot(run_dir), "--out", model])


def stage_select(a):
    models = [source_model(n) for n in SOURCES]
    out = {}
    for by in ("recall", "fid"):
        text = run(["select", "--target", f"fashion-mnist:{TARGET}", "--max-target", "1000", "--sources"] + models +
                   ["--by", by, "--num", str(a.num), "--json", "1"])
        out[by] = json.loads(text.strip().splitlines()[-1])
    with open(os.path.join(a.out, "select.json"), "w") as f:
        json.dump(out, f, indent=1)


def stage_finetune(a):
    starts = [(n, source_model(n)) for n in SOURCES] + [("scratch", None)]
    for name, model in starts:
        run_dir = os.path.join(a.out, f"ft_{name}")
        if os.path.exists(os.path.join(run_dir, "metrics.jsonl")) and last_snapshot(run_dir):
            with open(os.path.join(run_dir, "metrics.jsonl")) as f:
                last = [json.loads(l) for l in f if l.strip()]
            if last and last[-1]["kimg"] >= a.finetune_kimg - 1e-6:
                print(f"{run_dir} is complete: skipping")
                continue
        args = ["train", "--data", f"fashion-mnist:{TARGET}", "--max-images", "1000", "--out", run_dir, "--kimg",
                str(a.finetune_kimg), "--tick", "1", "--snap", str(a.snap), "--seed", "0", "--metrics", "fid,kid,pr,modes",
                "--metrics-real", f"fashion-mnist:{TARGET}@test", "--metrics-num", str(a.num)]
        args += ["--resume", model] if model else NET
        run(args, os.path.join(a.out, f"ft_{name}.log"))


def stage_summary(a):
    with open(os.path.join(a.out, "select.json")) as f:
        sel = json.load(f)
    runs = {}
    for name in list(SOURCES) + ["scratch"]:
        path = os.path.join(a.out, f"ft_{name}", "metrics.jsonl")
        if not os.path.exists(path):
            continue
        with open(path) as f:
            rows = [json.loads(l) for l in f if l.strip()]
        runs[name] = [{"kimg": r["kimg"], **r["metrics"]} for r in rows]
    recall_order = [os.path.basename(r["source"])[len("fmnist_src_"):-len(".safetensors")] for r in sel["recall"]["ranking"]]
    # fine-tuned order: the best FID each run reached (lower is better)
    best = {n: min(r["fid"] for r in rows) for n, rows in runs.items()}
    ft_order = sorted((n for n in best if n != "scratch"), key=lambda n: best[n])
    summary = {
        "target": f"fashion-mnist:{TARGET} (1000 training images; metrics against the 1000 test images)",
        "sources": SOURCES, "select": sel, "runs": runs, "best_fid": best,
        "selection_order_by_recall": recall_order, "fine_tuned_order_by_best_fid": ft_order,
        "selection_matches": recall_order == ft_order, "best_source_matches": recall_order[:1] == ft_order[:1],
    }
    with open(os.path.join(a.out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
    lines = [f"# Fashion-MNIST transfer study: target `{TARGET}`", "",
             "| start | recall vs target | FID of source | final FID | best FID | final precision | final recall | final modes |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    score = {os.path.basename(r["source"])[len("fmnist_src_"):-len(".safetensors")]: r for r in sel["recall"]["ranking"]}
    for n, rows in runs.items():
        s = score.get(n)
        last = rows[-1]
        lines.append(f"| {n} | {s['recall']:.3f} | {s['fid']:.1f} | {last['fid']:.1f} | {best[n]:.1f} | "
                     f"{last['precision']:.3f} | {last['recall']:.3f} | {last.get('modes', '-')} |" if s else
                     f"| {n} | - | - | {last['fid']:.1f} | {best[n]:.1f} | {last['precision']:.3f} | {last['recall']:.3f} | "
                     f"{last.get('modes', '-')} |")
    lines += ["", f"selection by recall: {' > '.join(recall_order)}",
              f"fine-tuned, by best FID: {' > '.join(ft_order)}",
              f"same order: {summary['selection_matches']}; same best source: {summary['best_source_matches']}", ""]
    lines += ["FID against kimg:", "", "| kimg | " + " | ".join(runs) + " |", "| --- |" + " --- |" * len(runs)]
    kimgs = sorted({round(r["kimg"], 3) for rows in runs.values() for r in rows})
    for k in kimgs:
        cells = []
        for rows in runs.values():
            m = [r for r in rows if round(r["kimg"], 3) == k]
            cells.append(f"{m[0]['fid']:.1f}" if m else "")
        lines.append(f"| {k:g} | " + " | ".join(cells) + " |")
    with open(os.path.join(a.out, "summary.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--stages", default="sources,select,finetune,summary")
    p.add_argument("--source-kimg", type=float, default=60)
    p.add_argument("--finetune-kimg", type=float, default=20)
    p.add_argument("--snap", type=int, default=2, help="snapshot (and metrics) every N kimg of fine-tuning")
    p.add_argument("--num", type=int, default=2000, help="samples per evaluation")
    p.add_argument("--out", default=os.path.join(ROOT, "out", "fmnist_study"))
    a = p.parse_args()
    if not os.path.exists(GANTL):
        sys.exit("build/gantl is missing: run make first")
    os.makedirs(a.out, exist_ok=True)
    stages = {"sources": stage_sources, "select": stage_select, "finetune": stage_finetune, "summary": stage_summary}
    for s in a.stages.split(","):
        if s not in stages:
            sys.exit(f"unknown stage {s!r}")
        stages[s](a)


if __name__ == "__main__":
    main()
