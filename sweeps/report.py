"""Sweep reports: final metrics of every trial read back from MLflow, grouped over seeds (mean,
std), written as CSV/JSON, and paper-style figures (accuracy vs segments / activation density)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd
from mlflow.tracking import MlflowClient
from pydantic import BaseModel

from sweeps.plan import SweepPlan
from sweeps.tracking import child_runs


class SweepReport(BaseModel):
    """What a finished (or partial) sweep found."""

    sweep_id: str
    metric: str
    group_by: list[str]
    trials: int
    trials_finished: int
    rows: list[dict[str, Any]]
    table_csv: str
    table_json: str
    figures: list[str]


def _parse(value: str) -> Any:
    try:
        return json.loads(value)
    except (json.JSONDecodeError, TypeError):
        return value


def trial_table(client: MlflowClient, experiment_id: str, parent_run_id: str, metric: str,
                params: list[str]) -> pd.DataFrame:
    """One row per trial run: the searched params, status and the final value of ``metric``."""
    rows = []
    for run in child_runs(client, experiment_id, parent_run_id):
        row = {p: _parse(run.data.params.get(p)) for p in params}
        row.update(run_id=run.info.run_id, status=run.info.status,
                   **{metric: run.data.metrics.get(metric)})
        rows.append(row)
    return pd.DataFrame(rows, columns=[*params, "run_id", "status", metric])


def summarise(trials: pd.DataFrame, group_by: list[str], metric: str) -> pd.DataFrame:
    """Mean, std and count of ``metric`` over finished trials, grouped (seeds pooled)."""
    done = trials[(trials["status"] == "FINISHED") & trials[metric].notna()]
    if not group_by:
        stats = done[metric].agg(["mean", "std", "count"]).to_frame().T
        return stats.rename(columns={"mean": f"{metric}_mean", "std": f"{metric}_std"})
    hashable = done.assign(**{g: done[g].map(lambda v: json.dumps(v) if isinstance(v, list) else v)
                              for g in group_by})
    stats = hashable.groupby(group_by, dropna=False)[metric].agg(["mean", "std", "count"])
    return stats.rename(columns={"mean": f"{metric}_mean", "std": f"{metric}_std"}).reset_index()


def plot_metric_vs(summary: pd.DataFrame, x: str, metric: str, path: Path, title: str,
                   x_label: str, y_label: str) -> Path:
    """Error-bar plot of ``metric`` (mean ± std over seeds) against ``x``, one line per other
    combination of the grouped parameters."""
    others = [c for c in summary.columns
              if c not in (x, f"{metric}_mean", f"{metric}_std", "count")]
    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    groups = summary.groupby(others) if others else [((), summary)]
    for key, frame in groups:
        frame = frame.sort_values(x)
        label = ", ".join(f"{o}={k}" for o, k in zip(others, key if isinstance(key, tuple) else (key,),
                                                      strict=True)) or None
        ax.errorbar(frame[x], frame[f"{metric}_mean"], yerr=frame[f"{metric}_std"].fillna(0),
                    marker="o", capsize=3, label=label)
    ax.set_xlabel(x_label)
    ax.set_ylabel(y_label)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if others:
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def build_report(client: MlflowClient, experiment_id: str, parent_run_id: str, plan: SweepPlan,
                 out_dir: Path, log_to_mlflow: bool = True) -> SweepReport:
    """Read a sweep's trials from MLflow, write table + figures to ``out_dir`` (and the parent run)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    metric, group_by, workload = plan.metric, plan.group_by, plan.workload
    trials = trial_table(client, experiment_id, parent_run_id, metric, plan.searched)
    summary = summarise(trials, group_by, metric)
    csv_path, json_path = out_dir / "results.csv", out_dir / "results.json"
    summary.to_csv(csv_path, index=False)
    rows = json.loads(summary.to_json(orient="records"))
    json_path.write_text(json.dumps(rows, indent=2))
    trials.to_csv(out_dir / "trials.csv", index=False)
    numeric_axes = [g for g in group_by if pd.api.types.is_numeric_dtype(summary[g])]
    axes = [a for a in workload.figure_axes if a in numeric_axes] or numeric_axes[:1]
    y_label = workload.metric_labels.get(metric, metric)
    figures = [plot_metric_vs(summary, axis, metric, out_dir / f"{metric}_vs_{axis}.png",
                              f"{plan.sweep_id}: {y_label}", workload.figure_axes.get(axis, axis), y_label)
               for axis in axes if not summary.empty]
    if log_to_mlflow:
        for path in (csv_path, json_path, out_dir / "trials.csv", *figures):
            client.log_artifact(parent_run_id, str(path), artifact_path="report")
    return SweepReport(
        sweep_id=plan.sweep_id, metric=metric, group_by=group_by, trials=len(trials),
        trials_finished=int((trials["status"] == "FINISHED").sum()), rows=rows,
        table_csv=str(csv_path), table_json=str(json_path), figures=[str(f) for f in figures],
    )
