"""Run the benchmarks and write the report: `make bench`, or `python benchmarks/run.py [part ...]`.

Parts, in the order they run: throughput, quality, memory, book (the book build last, since it
takes longest and loads the machine most). Each part's results go to results/<part>.json with
the machine's state when it ran; the report (results/report.json and results/report.md) is then
rebuilt from every part's file, so running one part again updates only its section.
`python benchmarks/run.py --report` rewrites the report without running anything.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import book_build
import machine
import memory
import quality
import throughput

RESULTS = Path(__file__).resolve().parent / "results"
PARTS = {
    "throughput": lambda: throughput.run(),
    "quality": lambda: quality.run(),
    "memory": lambda: memory.run(),
    "book": lambda: book_build.run(),
}


def run_part(name: str) -> dict:
    state = machine.describe()
    start = time.perf_counter()
    result = PARTS[name]()
    out = {"part": name, "machine": state, "load_after": machine.load(),
           "seconds": time.perf_counter() - start, "results": result}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(out, indent=1) + "\n")
    return out


# ---------------------------------------------------------------- the report

def yes(met, noisy: bool = False) -> str:
    return {True: "yes", False: "**no**", None: "–"}[met] + (" (noisy)" if noisy else "")


def table(header: list[str], rows: list[list]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return lines + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]


def load_note(part: dict) -> str:
    m, after = part["machine"], part["load_after"]
    return (f"Ran {m['time']}, {part['seconds']:.0f} s; load average {m['loadavg_1min']} before, "
            f"{after['loadavg_1min']} after, on {m['cores']} cores "
            f"(CPU {m['cpu_busy_percent']:.0f} % busy when it started).")


def throughput_section(part: dict, targets: list) -> list[str]:
    r = part["results"]
    lines = ["## 1. Throughput: replearn.train against the standard DataLoader loop", "",
             load_note(part), "",
             f"{r['epochs']} epochs on {r['n_train']:,} training images ({r['data_source']}), a test pass "
             f"over {r['n_test']:,} images after each epoch, batch size 128, Adam, device "
             f"{r['device']}. The standard loop is torchvision's MNIST (PIL image, ToTensor, flatten) "
             "through a DataLoader, as in the seed and pytorch/examples. Runs alternate between the "
             f"loops, one seed per round, {r['repeats']} rounds; medians. Samples/s = training images "
             "per second of the whole run (the test passes included). GFLOP/s counts the matrix "
             "multiplies only; \"data\" is the share of the run spent waiting for the DataLoader.", ""]
    for threads, models in r["threads"].items():
        matmul = r["matmul_gflops"][threads]
        peak_name, peak = next(iter(matmul.items()))
        default = threads == str(r["default_threads"])
        lines += [f"### {threads} torch thread{'s' if threads != '1' else ''}"
                  + (" (torch's default: the targets are judged here)" if default else ""), "",
                  "Measured float32 matrix multiplies: " + ", ".join(
                      f"{k}: {v} GFLOP/s" for k, v in matmul.items()) + ".", ""]
        rows = []
        for name, m in models.items():
            for loop, st in m["loops"].items():
                low, high = st["test_loss_range"]
                rows.append([name, loop, f"{st['samples_per_second']:,.0f}", f"{st['spread']:.2f}",
                             f"{st['gflops']:.1f}",
                             f"{100 * st['fraction_of_matmul_peak']:.0f} %",
                             f"{100 * st['data_share']:.0f} %", f"{st['cpu_per_wall']:.2f}",
                             f"{st['test_loss']:.2f} ({low:.2f}–{high:.2f})"])
        lines += table(["model", "loop", "samples/s", "slowest / fastest run", "GFLOP/s", "of peak", "data",
                        "CPU s / wall s", "final test loss, median (range over seeds)"], rows)
        lines.append("")
        for name, m in models.items():
            lo, hi = m["speedup_pairs_range"]
            prof = m["replearn_profile"]
            lines.append(
                f"- **{name}**: replearn is **{m['speedup']:.2f}×** the standard loop (per-round "
                f"ratios {lo:.2f}–{hi:.2f}); target ≥ {m['target']:g}× with a test loss no worse "
                f"(within {100 * r['loss_tolerance']:.0f} %): {yes(m['met'], m.get('noisy'))}. "
                + ("Noisy: the same run took very different times, so other jobs on these cores, not "
                   "the code, set these figures. " if m.get("noisy") else "")
                + f"A free data pipeline "
                f"alone would give {m['speedup_if_data_were_free']:.2f}×; replearn running every "
                f"FLOP at the {peak:.0f} GFLOP/s peak with nothing else at most "
                f"{m['speedup_ceiling_at_peak']:.1f}×. Where replearn's time goes (torch.profiler): "
                f"matmuls {100 * prof['share_matmul']:.0f} %, Adam {100 * prof['share_adam']:.0f} %, "
                f"batching and bookkeeping {100 * prof['share_batching_and_bookkeeping']:.0f} %, the "
                f"model's other ops and autograd {100 * prof['share_rest']:.0f} %.")
            if default:
                targets.append([f"throughput {name} ≥ {m['target']:g}× ({r['device']}, {threads} threads)",
                                f"{m['speedup']:.2f}×", yes(m["met"], m.get("noisy"))])
            else:
                targets.append([f"(same, {threads} thread) {name}", f"{m['speedup']:.2f}×",
                                yes(m["met"], m.get("noisy"))])
        lines.append("")
    return lines


def quality_section(part: dict, targets: list) -> list[str]:
    lines = ["## 2. Quality", "", load_note(part), ""]
    for split, q in part["results"].items():
        if "skipped" in q:
            lines += [f"**{split}**: {q['skipped']}", ""]
            continue
        d = q["data"]
        lines += [f"### On the {split} ({d['n_train']:,} train / {d['n_test']:,} test images)", ""]
        ae = q["autoencoder_vs_pca"]
        lines += [f"Autoencoder (code of 32) against PCA with 32 components: PCA's test error is "
                  f"{ae['pca32_test_sse']:.2f} (summed squared error per image; "
                  f"{ae['pca32_test_mse_per_pixel']:.4f} per pixel). Target: AE ≤ "
                  f"{ae['target_ratio']} × PCA.", ""]
        lines += table(["settings", "test SSE / image", "MSE / pixel", "AE / PCA", "target met"],
                       [[n, f"{s['test_sse']:.2f}", f"{s['test_mse_per_pixel']:.4f}",
                         f"{s['ratio_to_pca']:.2f}", yes(s["met"])]
                        for n, s in ae["settings"].items()])
        chapter = ae["settings"][ae["chapter_setting"]]
        targets.append([f"AE-32 ≤ 0.9 × PCA-32 ({split})", f"{chapter['ratio_to_pca']:.2f} × PCA",
                        yes(ae["met"])])
        dn = q["denoising"]
        lines += ["", f"Denoising: PSNR (dB, mean over test images) of the reconstruction of a noisy "
                      f"test image against the clean one; {dn['config']}.", ""]
        lines += table(["σ", "noisy input", "plain AE", "DAE", "target", "met"],
                       [[s, f"{v['noisy_input_psnr']:.2f}", f"{v['plain_ae_psnr']:.2f}",
                         f"{v['dae_psnr']:.2f}", "–" if v["target_db"] is None else f"≥ {v['target_db']:g}",
                         yes(v["met"])] for s, v in dn["sigma"].items()])
        for s, v in dn["sigma"].items():
            if v["target_db"] is not None:
                targets.append([f"DAE PSNR at σ = {s} ≥ {v['target_db']:g} dB ({split})",
                                f"{v['dae_psnr']:.2f} dB", yes(v["met"])])
        sp = q["sparse"]
        lines += ["", f"Sparse autoencoder: each hidden unit's mean activation ρ̂_j on the test set "
                      f"against ρ = {sp['rho']}; {sp['config']}.", ""]
        lines += table(["β", "mean ρ̂", "median ρ̂_j", "min–max ρ̂_j", "units with ρ/2 ≤ ρ̂_j ≤ 2ρ",
                        "test SSE"],
                       [[b + (" (default)" if b == sp["default_beta"] else ""),
                         f"{v['mean_activation']:.3f}", f"{v['median_unit_activation']:.3f}",
                         f"{v['min_unit_activation']:.3f}–{v['max_unit_activation']:.3f}",
                         f"{100 * v['units_within_2x_of_rho']:.0f} %", f"{v['test_sse']:.2f}"]
                        for b, v in sp["beta"].items()])
        vae = q["vae"]
        lines += ["", f"VAE: test negative ELBO in nats ({vae['note']}); {vae['config']}.", ""]
        lines += table(["epochs", "−ELBO", "reconstruction", "KL"],
                       [[e, f"{vae['negative_elbo_nats'][e]:.2f}", f"{vae['recon_nats'][e]:.2f}",
                         f"{vae['kl_nats'][e]:.2f}"] for e in vae["negative_elbo_nats"]])
        lines.append("")
    return lines


def memory_section(part: dict, targets: list) -> list[str]:
    r = part["results"]
    lines = ["## 3. Memory", "", load_note(part), "",
             "A fresh process per run imports, loads the data (the 60,000-image rows: random pixels "
             "of full MNIST's size), builds the model, then resets the kernel's peak-RSS mark and "
             "trains: peak resident memory during training, and how much it exceeds the RSS before.", ""]
    lines += table(["loop", "model", "images", "epochs", "RSS before MB", "peak RSS MB",
                    "added by training MB", "dataset uint8 / float32 MB"],
                   [[x["loop"], x["model"], f"{x['n_train']:,}", x["epochs"],
                     f"{x['rss_before_training_mb']:.0f}", f"{x['peak_rss_mb']:.0f}",
                     f"{x['added_by_training_mb']:.0f}",
                     f"{x['dataset_uint8_mb']:.1f} / {x['dataset_float32_mb']:.1f}"]
                    for x in r["peak_rss"]])
    check = r["dataset_once_uint8"]
    lines += ["", f"Dataset held once, as uint8: every tensor with ≥ {check['threshold_rows']:,} rows of "
                  f"784 that an aten op created during {check['epochs']} epochs of `train` (a "
                  f"TorchDispatchMode): {len(check['created'])} (allowed: "
                  f"{check['allowed_uint8_copies']} uint8 copies to the device, no float copy) → "
                  f"{yes(check['ok'])}. The same watch on a naive loop that does `x.float() / 255` "
                  f"each epoch finds {r['naive_loop_under_same_check']['float_copies']} float copies, so "
                  f"the check can fail.", ""]
    if "cuda_peak_allocated_mb" in r:
        lines += [f"CUDA peak allocated during training: {r['cuda_peak_allocated_mb']:.1f} MB.", ""]
    targets.append(["dataset once on the device as uint8", f"{len(check['created'])} copies",
                    yes(r["met"])])
    return lines


def book_section(part: dict, targets: list) -> list[str]:
    r = part["results"]
    lines = ["## 4. The book build", "", load_note(part), "",
             f"`jupyter-book {r['command']}` (REPLEARN_DATA=subset, fresh cache): "
             f"**{r['wall_seconds']:.0f} s** wall, {r['cpu_seconds']:.0f} s CPU, return code "
             f"{r['returncode']}, {r['warnings']} warnings"
             + (f", failed: {'; '.join(r['failed_notebooks'])}" if r["failed_notebooks"] else "")
             + f". Target ≤ {r['limit_seconds']:.0f} s: {yes(r['wall_seconds'] <= r['limit_seconds'])}.", ""]
    rows = []
    for name, c in r["chapters"].items():
        secs = c["execution_seconds"]
        shown = f"{secs:.1f}" if isinstance(secs, float) else (secs or "not executed")
        rows.append([name, c["code_cells"], "placeholder" if c["placeholder"] else "written",
                     shown, f"≤ {c['limit_seconds']:.0f}", yes(c["met"])])
        if not c["placeholder"]:
            targets.append([f"{name} executes in ≤ {c['limit_seconds']:.0f} s",
                            shown + (" s" if isinstance(secs, float) else ""), yes(c["met"])])
    lines += table(["chapter", "code cells", "state", "execution s", "target", "met"], rows)
    if r["placeholders"]:
        lines += ["", "Still placeholders when this ran (so the total is provisional): "
                  + ", ".join(r["placeholders"]) + "."]
    targets.append([f"book build ≤ {r['limit_seconds']:.0f} s", f"{r['wall_seconds']:.0f} s",
                    yes(r["wall_seconds"] <= r["limit_seconds"] and r["returncode"] == 0)])
    return lines + [""]


SECTIONS = {"throughput": throughput_section, "quality": quality_section,
            "memory": memory_section, "book": book_section}


def write_report() -> dict:
    parts = {name: json.loads((RESULTS / f"{name}.json").read_text())
             for name in PARTS if (RESULTS / f"{name}.json").exists()}
    report = {"generated": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "machine": machine.describe(),
              "parts": parts}
    (RESULTS / "report.json").write_text(json.dumps(report, indent=1) + "\n")
    m = report["machine"]
    targets: list[list] = []
    body: list[str] = []
    for name, part in parts.items():
        body += SECTIONS[name](part, targets)
    lines = ["# Benchmarks", "",
             f"Written by `make bench` (benchmarks/run.py) on {m['cpu']}, {m['cores']} cores, "
             f"{m['ram_gb']} GB RAM, torch {m['torch']} ({m['torch_threads']} threads), "
             f"Python {m['python']}, GPU: {m['cuda'] or 'none'}. Each section says when it ran and "
             "how loaded the machine was. Timings are medians of alternated runs; \"noisy\" marks a "
             "measurement whose repeated runs differed by more than 1.5×, a sign that something "
             "else was using the cores.", "", "## Targets", ""]
    lines += table(["target", "measured", "met"], targets)
    lines += [""] + body
    (RESULTS / "report.md").write_text("\n".join(lines))
    return report


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("parts", nargs="*", metavar="part",
                        help=f"any of {', '.join(PARTS)} (default: all, the book build last)")
    parser.add_argument("--report", action="store_true", help="only rewrite the report")
    args = parser.parse_args(argv)
    unknown = set(args.parts) - set(PARTS)
    if unknown:
        parser.error(f"unknown part(s) {', '.join(sorted(unknown))}; choose from {', '.join(PARTS)}")
    args.parts = args.parts or list(PARTS)
    if not args.report:
        for name in sorted(args.parts, key=list(PARTS).index):
            print(f"== {name}", flush=True)
            run_part(name)
    write_report()
    print(f"wrote {RESULTS / 'report.md'} and {RESULTS / 'report.json'}")


if __name__ == "__main__":
    main()
