"""Leave-one-out evaluation over the full catalog, the model beside its baselines in one run.

Prints a table (history excluded, ICLRec's protocol, and plain), writes an HTML report with
plots (training curves, NDCG@10 by history length, cold vs warm items), and returns a summary
that the CLI prints as the final JSON line.
"""

from __future__ import annotations

import base64
import io
import logging
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from core.infra.logs import event
from workers.recommender import model as model_module
from workers.recommender.data import InteractionData
from workers.recommender.metrics import log2_bucket, ndcg, rank_cases, ranking_metrics
from workers.recommender.model import RecommenderNet, pad_histories
from workers.recommender.split import Case, Scorer, Split, leave_one_out

log = logging.getLogger(__name__)

RARE_MAX = 4  # an item seen at most this many times in training counts as rare


def model_scorer(model: RecommenderNet) -> Scorer:
    def scorer(histories: list[list[int]]) -> torch.Tensor:
        history, lengths = pad_histories(histories, model.config.max_len)
        return model.score(history, lengths)

    return scorer


def popularity_scorer(train: dict[str, list[int]], n_items: int) -> Scorer:
    counts = torch.zeros(n_items + 1)
    for items in train.values():
        for item in items:
            counts[item] += 1

    def scorer(histories: list[list[int]]) -> torch.Tensor:
        return counts.expand(len(histories), -1).clone()

    return scorer


def evaluate_command(
    data: InteractionData,
    model_dir: Path,
    baseline_dir: Path | None,
    cold_dir: Path | None,
    report: Path | None,
) -> dict[str, Any]:
    split = leave_one_out(data)
    frequency = Counter(item for items in split.train.values() for item in items)
    contenders: dict[str, tuple[Scorer, dict[str, Any]]] = {}
    main_model, main_extra = _load_checked(model_dir, data)
    contenders["main"] = (model_scorer(main_model), main_extra)
    if baseline_dir is not None:
        baseline, baseline_extra = _load_checked(baseline_dir, data)
        contenders["id-only SASRec"] = (model_scorer(baseline), baseline_extra)
    contenders["popularity"] = (popularity_scorer(split.train, data.n_items), {})

    rows: list[dict[str, Any]] = []
    ranks_by_name: dict[str, torch.Tensor] = {}
    for name, (scorer, _) in contenders.items():
        for excluded in (True, False):
            result = rank_cases(scorer, split.test, exclude_history=excluded)
            figures = ranking_metrics(result, data.n_items)
            rows.append({"model": name, "history_excluded": excluded, **figures})
            if excluded:
                ranks_by_name[name] = result.ranks
            rounded: dict[str, Any] = {k: round(v, 4) for k, v in figures.items()}
            event(log, "recommender.eval.done", model=name, excluded=excluded, **rounded)

    by_length = _breakdown(split.test, ranks_by_name, lambda case: log2_bucket(len(case.history)))
    by_warmth = _breakdown(
        split.test,
        ranks_by_name,
        lambda case: "rare item" if frequency[case.target] <= RARE_MAX else "frequent item",
    )
    cold = _cold_start(data, cold_dir) if cold_dir is not None else {}

    print(_table(rows))
    if cold:
        print(
            f"\ncold start ({cold['cold_items']} items held out of training): "
            f"HR@10 {cold['cold_hr@10']:.4f} on {cold['cold_cases']} test cases whose target is "
            f"held out (popularity {cold['popularity_cold_hr@10']:.4f}); "
            f"warm targets HR@10 {cold['warm_hr@10']:.4f}"
        )
    summary = _summary(rows, main_extra, baseline_dir is not None, cold)
    if report is not None:
        _write_report(report, rows, contenders, by_length, by_warmth, cold, summary)
        summary["report"] = str(report)
        print(f"\nreport: {report}")
    return summary


def _load_checked(folder: Path, data: InteractionData) -> tuple[RecommenderNet, dict[str, Any]]:
    model, extra = model_module.load_checkpoint(folder)
    if model.config.item_ids and model.config.item_ids != [i.item_id for i in data.items]:
        raise SystemExit(f"{folder} was trained on a different item list than {data.name}")
    return model, extra


def _cold_start(data: InteractionData, folder: Path) -> dict[str, Any]:
    model, extra = _load_checked(folder, data)
    fraction = float(extra.get("train_config", {}).get("cold_fraction", 0.0))
    seed = int(extra.get("train_config", {}).get("seed", 7))
    if fraction <= 0:
        raise SystemExit(f"{folder} was not trained with --cold-fraction")
    split: Split = leave_one_out(data, fraction, seed)
    if sorted(split.cold_items) != extra.get("cold_items"):
        raise SystemExit(f"{folder}: held-out items do not match this data")
    cold_cases = [case for case in split.test if case.target in split.cold_items]
    warm_cases = [case for case in split.test if case.target not in split.cold_items]
    scorer = model_scorer(model)
    popular = popularity_scorer(split.train, data.n_items)
    def ranked(by: Scorer, cases: Sequence[Case]) -> dict[str, float]:
        return ranking_metrics(rank_cases(by, cases, exclude_history=True), data.n_items)

    cold = ranked(scorer, cold_cases)
    warm = ranked(scorer, warm_cases)
    popular_cold = ranked(popular, cold_cases)
    return {
        "cold_items": len(split.cold_items),
        "cold_cases": len(cold_cases),
        "cold_hr@10": cold["hr@10"],
        "cold_ndcg@10": cold["ndcg@10"],
        "warm_hr@10": warm["hr@10"],
        "warm_ndcg@10": warm["ndcg@10"],
        "popularity_cold_hr@10": popular_cold["hr@10"],
        "random_hr@10": 10 / data.n_items,
    }


def _breakdown(
    cases: Sequence[Case], ranks: dict[str, torch.Tensor], key: Any
) -> dict[str, dict[str, float]]:
    """NDCG@10 (history excluded) per group of test cases, per model."""
    groups: dict[str, list[int]] = {}
    for number, case in enumerate(cases):
        groups.setdefault(key(case), []).append(number)
    return {
        group: {name: ndcg(values[members], 10) for name, values in ranks.items()}
        | {"cases": float(len(members))}
        for group, members in sorted(groups.items(), key=lambda pair: _order(pair[0]))
    }


def _order(label: str) -> tuple[int, str]:
    digits = "".join(ch for ch in label.split("-")[0] if ch.isdigit())
    return (int(digits) if digits else 0, label)


def _table(rows: list[dict[str, Any]]) -> str:
    header = (
        f"{'model':<18} {'history':<9} {'HR@10':>7} {'NDCG@10':>8} {'HR@20':>7} "
        f"{'NDCG@20':>8} {'cov@10':>7} {'cases':>6}"
    )
    lines = [header, "-" * len(header)]
    for row in rows:
        lines.append(
            f"{row['model']:<18} {'excluded' if row['history_excluded'] else 'plain':<9} "
            f"{row['hr@10']:>7.4f} {row['ndcg@10']:>8.4f} {row['hr@20']:>7.4f} "
            f"{row['ndcg@20']:>8.4f} {row['coverage@10']:>7.3f} {int(row['cases']):>6}"
        )
    return "\n".join(lines)


def _summary(
    rows: list[dict[str, Any]], extra: dict[str, Any], with_baseline: bool, cold: dict[str, Any]
) -> dict[str, Any]:
    def pick(name: str, excluded: bool) -> dict[str, float]:
        for row in rows:
            if row["model"] == name and row["history_excluded"] == excluded:
                return {
                    k: round(float(row[k]), 4)
                    for k in ("hr@10", "ndcg@10", "hr@20", "ndcg@20", "coverage@10")
                }
        return {}

    summary: dict[str, Any] = {
        "main_excluded": pick("main", True),
        "main_plain": pick("main", False),
        "popularity_excluded": pick("popularity", True),
        "train_seconds": round(float(extra.get("seconds", 0.0)), 1),
    }
    if with_baseline:
        summary["idonly_excluded"] = pick("id-only SASRec", True)
        summary["idonly_plain"] = pick("id-only SASRec", False)
        base = summary["idonly_excluded"]["ndcg@10"]
        gain = summary["main_excluded"]["ndcg@10"] / base - 1 if base else 0.0
        summary["ndcg@10_gain_vs_idonly"] = round(gain, 4)
    if cold:
        summary["cold"] = {k: round(v, 4) if isinstance(v, float) else v for k, v in cold.items()}
    return summary


def _write_report(
    path: Path,
    rows: list[dict[str, Any]],
    contenders: dict[str, tuple[Scorer, dict[str, Any]]],
    by_length: dict[str, dict[str, float]],
    by_warmth: dict[str, dict[str, float]],
    cold: dict[str, Any],
    summary: dict[str, Any],
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    images: list[tuple[str, str]] = []

    figure, axis = plt.subplots(1, 2, figsize=(11, 3.8))
    for name, (_, extra) in contenders.items():
        curve = extra.get("curve") or []
        if curve:
            minutes = [point["seconds"] / 60 for point in curve]
            axis[0].plot(minutes, [point["loss"] for point in curve], marker=".", label=name)
            axis[1].plot(minutes, [p["val_ndcg@10"] for p in curve], marker=".", label=name)
    axis[0].set(title="training loss", xlabel="minutes")
    axis[1].set(title="validation NDCG@10 (history excluded)", xlabel="minutes")
    for ax in axis:
        ax.legend()
    images.append(("Training curves", _png(figure)))

    for title, groups in (
        ("NDCG@10 by history length", by_length),
        ("NDCG@10: rare vs frequent target items", by_warmth),
    ):
        figure, ax = plt.subplots(figsize=(8, 3.8))
        names = [name for name in contenders if name in next(iter(groups.values()), {})]
        labels = list(groups)
        width = 0.8 / max(1, len(names))
        for offset, name in enumerate(names):
            ax.bar(
                [i + offset * width for i in range(len(labels))],
                [groups[label][name] for label in labels],
                width,
                label=name,
            )
        ax.set_xticks([i + width * (len(names) - 1) / 2 for i in range(len(labels))])
        ax.set_xticklabels([f"{label}\n({int(groups[label]['cases'])})" for label in labels])
        ax.set(title=title)
        ax.legend()
        images.append((title, _png(figure)))

    if cold:
        figure, ax = plt.subplots(figsize=(6, 3.8))
        bars = {
            "held-out items\n(text only)": cold["cold_hr@10"],
            "warm items": cold["warm_hr@10"],
            "held-out items,\npopularity": cold["popularity_cold_hr@10"],
        }
        ax.bar(list(bars), list(bars.values()), color=["tab:blue", "tab:green", "tab:gray"])
        ax.set(title="cold start: HR@10 (history excluded)")
        images.append(("Cold start", _png(figure)))

    table_rows = "".join(
        f"<tr><td>{r['model']}</td><td>{'excluded' if r['history_excluded'] else 'plain'}</td>"
        + "".join(
            f"<td>{r[k]:.4f}</td>" for k in ("hr@10", "ndcg@10", "hr@20", "ndcg@20", "coverage@10")
        )
        + f"<td>{int(r['cases'])}</td></tr>"
        for r in rows
    )
    body = "".join(
        f"<h2>{title}</h2><img src='data:image/png;base64,{data}'>" for title, data in images
    )
    html = (
        "<!doctype html><meta charset='utf-8'><title>Recommender evaluation</title>"
        "<style>body{font-family:sans-serif;max-width:1000px;margin:2em auto}"
        "td,th{padding:4px 10px;text-align:right}</style>"
        "<h1>Recommender evaluation: leave-one-out, full ranking</h1>"
        "<table><tr><th>model</th><th>history</th><th>HR@10</th><th>NDCG@10</th><th>HR@20</th>"
        f"<th>NDCG@20</th><th>coverage@10</th><th>cases</th></tr>{table_rows}</table>"
        f"{body}<h2>Summary</h2><pre>{summary}</pre>"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(html, encoding="utf-8")


def _png(figure: Any) -> str:
    from matplotlib import pyplot as plt

    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png", dpi=90)
    plt.close(figure)
    return base64.b64encode(buffer.getvalue()).decode()
