"""The mix study's analysis: per-mix scaling fits compared on each eval set, a data-mixing law (Ye et al. 2024) that
predicts a mix it was not fitted on, the mixes ranked at a 10× budget, and byte against BPE in bits per byte.

    python scripts/mix_study.py --store results/mix_study --held-out mix_prose20_code80 \\
        --bpe-store results/mix_study_bpe --out data/mix_study

Reads the records (configs/experiment/mix_study.yaml trains them), writes into --out: table.csv (one row per run and
point, with every eval set's loss and bits per byte; table_bpe.csv for the BPE store), mixtures.json, report.txt,
mixing_law.json, mix_comparison.png and mixing_law.png. Every number it prints comes from the library (fitting,
planning.compare, planning.mixing).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from scaling_lab.errors import ConfigError, exit_on_user_error
from scaling_lab.fitting.approach3 import Approach3Config
from scaling_lab.fitting.bootstrap import BootstrapConfig
from scaling_lab.planning.compare import compare_fits, fit_groups, plot_comparison
from scaling_lab.planning.mixing import (
    best_loss_per_slice,
    best_mixture,
    fit_mixing_law,
    leave_one_out,
    loss_at_budget,
    mix_fit_tables,
    mixture_of,
)
from scaling_lab.plotting.figures import save
from scaling_lab.results.store import load_records, table_of

DOMAINS = ("prose", "code")
TARGETS = ("all", *DOMAINS)
FIRST = "prose"  # the x axis of the mixing-law figure: the prose share


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=Path, default=Path("results/mix_study"))
    parser.add_argument("--held-out", default="mix_prose20_code80", help="the mix the mixing law predicts")
    parser.add_argument("--bpe-store", type=Path, default=None, help="the 50/50 mix trained with a BPE tokenizer")
    parser.add_argument("--out", type=Path, default=Path("data/mix_study"))
    parser.add_argument("--bootstrap", type=int, default=200)
    parser.add_argument("--multiple", type=float, default=10.0, help="the larger budget, × the top slice")
    args = parser.parse_args()
    records = [r for r in load_records(args.store) if r.status == "finished"]
    raw = table_of(records)
    mixtures = {r.data_mix: mixture_of(r.config) for r in records}
    groups = sorted(mixtures)
    trained = [g for g in groups if g != args.held_out]
    domains = {domain for mix in mixtures.values() for domain in mix}
    if args.held_out not in mixtures or len(trained) < len(domains) + 1:
        raise ConfigError(
            f"--held-out {args.held_out}: the store {args.store} holds mixes {', '.join(groups)}; the mixing law needs"
            f" one of them held out and at least {len(domains) + 1} others ({len(domains)} domains): train more mixes"
        )
    args.out.mkdir(parents=True, exist_ok=True)
    raw.to_csv(args.out / "table.csv", index=False)
    top = float(raw["flops_exact"].max())
    larger = args.multiple * top
    boot = BootstrapConfig(n_resamples=args.bootstrap, seed=0)
    lines = [f"mix study: {len(records)} runs, mixes {', '.join(groups)}; store {args.store}",
             f"eval suite {sorted(set(raw['eval_suite_hash'].astype(str)))}; top slice {top:.3g} exact FLOPs;"
             f" larger budget {larger:.3g} ({args.multiple:g}×)"]  # fmt: skip
    lines += [f"  {g}: " + ", ".join(f"{d} {s:.2f}" for d, s in mixtures[g].items()) for g in groups]

    # 1. per-mix scaling fits, compared on each eval set
    fits_by_target, measured_best, at_larger = {}, {}, {}
    for target in TARGETS:
        table = mix_fit_tables(args.store, groups, target=target)
        fits = fit_groups(table, config=Approach3Config(), bootstrap_config=boot)
        fits_by_target[target] = fits
        comparison = compare_fits(fits, target=table.attrs["loss_column"])
        lines += ["", f"[[{target}: approach 3 per mix, {args.bootstrap} bootstrap resamples]]", comparison.report()]
        at_larger[target] = loss_at_budget(fits, larger)
        lines.append(f"loss at the optimum of {larger:.3g} FLOPs (approach 3, 95 % interval):")
        ranked = sorted(at_larger[target].items(), key=lambda item: item[1].value)
        lines += [f"  {rank}. {name}: {estimate.format('.4f')}" for rank, (name, estimate) in enumerate(ranked, 1)]
        measured_best[target] = best_loss_per_slice(table)
        if target == "all":
            plot_comparison(fits, args.out, flops_range=(float(table["flops"].min()), larger), table=table)

    # 2. the mixing law at the top slice, on the measured best loss of each trained mix, predicting the held-out mix
    law_json: dict = {"top_slice_flops": top, "larger_flops": larger, "held_out": args.held_out, "laws": {}}
    lines += ["", f"[[Data-mixing law (Ye et al. 2024) on the {len(trained)} trained mixes' best loss per slice]]"]
    point_errors: dict[str, list[float]] = {t: [] for t in DOMAINS}
    for target in DOMAINS:
        best = measured_best[target]
        for _, rows in best.groupby("slice"):
            rows = rows.set_index("group")
            if not set(trained) <= set(rows.index) or args.held_out not in rows.index:
                continue
            law = fit_mixing_law([mixtures[g] for g in trained], rows.loc[trained, "loss"].tolist(), target=target)
            point_errors[target].append(law.predict(mixtures[args.held_out]) / rows.loc[args.held_out, "loss"] - 1)
    laws_top = {}
    for target in DOMAINS:
        best = measured_best[target]
        rows = best[best["slice"] == best["slice"].max()].set_index("group")
        losses = rows.loc[trained, "loss"].tolist()
        law = fit_mixing_law([mixtures[g] for g in trained], losses, target=target)
        laws_top[target] = law
        predicted = law.predict(mixtures[args.held_out])
        measured = float(rows.loc[args.held_out, "loss"]) if args.held_out in rows.index else float("nan")
        loo = leave_one_out([mixtures[g] for g in trained], losses, target=target) if len(trained) > 3 else []
        errors = np.abs(point_errors[target]) * 100
        lines += [f"  {law.report()}",
                  f"    {args.held_out}: predicted {predicted:.4f}, measured {measured:.4f}"
                  f" ({(predicted / measured - 1) * 100:+.2f} %) at the top slice;"
                  f" over {len(errors)} slices |error| mean {errors.mean():.2f} %, max {errors.max():.2f} %",
                  "    leave-one-out over the trained mixes: "
                  + ", ".join(f"{g} {e * 100:+.2f} %" for g, e in zip(trained, loo, strict=False))]  # fmt: skip
        law_json["laws"][target] = {**law.to_dict(), "held_out_predicted": predicted, "held_out_measured": measured,
                                    "slice_errors": [float(e) for e in point_errors[target]],
                                    "leave_one_out": [float(e) for e in loo]}  # fmt: skip
    union = measured_best["all"]
    union_rows = union[union["slice"] == union["slice"].max()].set_index("group")
    # the union's loss is the token-weighted mean of the sets' losses: the weight, from the measured rows
    both = (
        measured_best["prose"].merge(measured_best["code"], on=["group", "slice"]).merge(union, on=["group", "slice"])
    )
    weight = float(np.linalg.lstsq((both["loss_x"] - both["loss_y"]).to_numpy()[:, None],
                                   (both["loss"] - both["loss_y"]).to_numpy(), rcond=None)[0][0])  # fmt: skip
    predicted_union = weight * laws_top["prose"].predict(mixtures[args.held_out]) + (1 - weight) * laws_top[
        "code"
    ].predict(mixtures[args.held_out])
    measured_union = float(union_rows.loc[args.held_out, "loss"]) if args.held_out in union_rows.index else np.nan
    shares, loss = best_mixture([laws_top["prose"], laws_top["code"]], [weight, 1 - weight])
    union_error = (predicted_union / measured_union - 1) * 100
    lines += [
        f"  all (weight {weight:.3f} on prose, fitted on the measured rows): {args.held_out} predicted"
        f" {predicted_union:.4f}, measured {measured_union:.4f} ({union_error:+.2f} %)",
        f"  best mixture for the union at the top slice: {FIRST} {shares[FIRST]:.2f} → loss {loss:.4f}",
    ]
    # 3. nested: the mixing law on each trained mix's predicted loss at the larger budget
    laws_larger = {t: fit_mixing_law([mixtures[g] for g in trained], [at_larger[t][g].value for g in trained],
                                     target=t) for t in DOMAINS}  # fmt: skip
    shares_larger, loss_larger = best_mixture([laws_larger["prose"], laws_larger["code"]], [weight, 1 - weight])
    lines += [
        "",
        f"[[At {larger:.3g} FLOPs: the mixing law on each trained mix's approach-3 prediction]]",
        *[f"  {law.report()}" for law in laws_larger.values()],
        f"  best mixture for the union: {FIRST} {shares_larger[FIRST]:.2f} → predicted loss {loss_larger:.4f}",
    ]
    law_json.update(union_weight=weight, held_out_union_predicted=predicted_union,
                    held_out_union_measured=measured_union, best_share_top=shares, best_share_larger=shares_larger,
                    laws_larger={t: law.to_dict() for t, law in laws_larger.items()})  # fmt: skip

    # 4. byte against BPE on the 50/50 mix, in bits per byte
    if args.bpe_store is not None:
        table_of([r for r in load_records(args.bpe_store) if r.status == "finished"]).to_csv(
            args.out / "table_bpe.csv", index=False
        )
        lines += ["", "[[Tokenizers on the 50/50 mix, in bits per byte of the same held-out text]]"]
        for name, store in (("byte", args.store), ("bpe-4096", args.bpe_store)):
            table = mix_fit_tables(store, ["embedded"], target="all", metric="bpb")
            (loaded,) = fit_groups(table, config=Approach3Config(), bootstrap_config=boot).values()
            best = best_loss_per_slice(table)
            estimate = loss_at_budget({name: loaded}, larger)[name]
            lines.append(f"  {name}: best measured bpb per slice " + ", ".join(
                f"{f:.2g}: {v:.4f}" for f, v in zip(best["flops"], best["loss"], strict=True))
                + f"; approach 3 at {larger:.3g}: {estimate.format('.4f')}")  # fmt: skip
    (args.out / "report.txt").write_text("\n".join(lines) + "\n")
    (args.out / "mixtures.json").write_text(json.dumps(mixtures, indent=1))
    (args.out / "mixing_law.json").write_text(json.dumps(law_json, indent=1, default=float))
    figure(measured_best, laws_top, mixtures, args.held_out, weight, args.out)
    print("\n".join(lines))


def figure(measured_best, laws, mixtures, held_out, weight, out: Path) -> None:
    """Loss at the top slice against the prose share: measured mixes, the held-out one, and the fitted laws."""
    share = np.linspace(0, 1, 201)
    fig = Figure(figsize=(6.5, 4.5), layout="constrained")
    axes = fig.subplots()
    for colour, target in zip(("C0", "C1", "C2"), TARGETS, strict=True):
        best = measured_best[target]
        rows = best[best["slice"] == best["slice"].max()]
        x = [mixtures[g].get(FIRST, 0.0) for g in rows["group"]]
        held = rows["group"] == held_out
        axes.scatter(np.array(x)[~held], rows["loss"][~held], color=colour, label=f"{target}: measured")
        axes.scatter(np.array(x)[held], rows["loss"][held], color=colour, marker="*", s=160, edgecolor="k",
                     label=f"{target}: {held_out} (not fitted)")  # fmt: skip
        if target in laws:
            curve = [laws[target].predict({FIRST: s, "code": 1 - s}) for s in share]
        else:
            curve = [weight * laws["prose"].predict({FIRST: s, "code": 1 - s})
                     + (1 - weight) * laws["code"].predict({FIRST: s, "code": 1 - s}) for s in share]  # fmt: skip
        axes.plot(share, curve, color=colour)
    axes.set_xlabel("prose share of the training mix")
    axes.set_ylabel("eval loss at the top slice (nats/token)")
    axes.legend(fontsize=7)
    save(fig, out, "mixing_law")


if __name__ == "__main__":
    exit_on_user_error(main)()  # a bad store or too few mixes: one error line, exit 2
