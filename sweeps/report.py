"""Sweep reports: final metrics of every trial read back from MLflow, grouped over seeds (mean,
std), written as CSV/JSON, paper-style figures (accuracy and forgetting vs segments / activation
density, PNG and SVG) and the subnetwork analysis (overlap of kWTA winners per setting).

Every path a report stores is relative to its directory (``report.json`` can move with it)."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from mlflow.environment_variables import MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from pydantic import BaseModel, Field, PrivateAttr

from sweeps import figures as fig
from sweeps import mlflow_tags as tags
from sweeps.benchmarks import get_benchmark
from sweeps.clock import SweepEfficiency, sweep_efficiency
from sweeps.files import write_text_atomically
from sweeps.paper_curves import MEASURED_AT, curves_beside
from sweeps.plan import SweepPlan
from sweeps.search_report import SEARCH_JSON, SearchSummary, search_report
from sweeps.tracking import child_runs, format_value, log_search_summary, log_sweep_summary
from sweeps.trainable import PROGRESS, stopped_early

SECONDARY_METRICS = ("forgetting", "subnetwork_overlap")
"""Metrics drawn beside the sweep's own metric when the workload reports them."""
TABLE_METRICS = ("task_inference_accuracy", "num_clusters")
"""Metrics summarised in the table (mean, std over seeds) but not drawn, where the trials report
them: how well the context inferred the task, and the clusters online prototypes found. Nearly
constant over a segments or density sweep, a panel of them would be a flat line."""
REPORT_FORMAT = 5
"""The version of what a report holds (2: :data:`TABLE_METRICS`, a cases sweep's figures by its
cases' values, the paper's curves beside, the fixed parameters; 3: the paper's curves with their
run counts and spread, and compared at the defaults a sweep leaves, which its fixed parameters
and titles name; 4: figures laid out so their legend clears both axes' lines and no tick label
crowds another; 5: a trial that ran its own budget is a result, in a cases sweep whose trials
differ in it as in any other, a cases sweep's rows in its spec's order, a legend with no clear
place inside its axes below them); a service rebuilds a report it cached in another version."""
SUBNETWORKS = "subnetworks"
SUBNETWORKS_JSON = f"{SUBNETWORKS}.json"
TRIALS_CSV = "trials.csv"


class BestTrial(BaseModel):
    run_id: str
    run_name: str
    value: float


class SweepReport(BaseModel):
    """What a finished (or partial) sweep found. Paths are relative to the report directory."""

    sweep_id: str
    metric: str
    group_by: list[str]
    trials: int
    trials_finished: int
    rows: list[dict[str, Any]]
    table_csv: str
    table_json: str
    figures: list[str] = Field(description="PNG figures (each also saved as SVG beside it)")
    benchmark: str = ""
    title: str = ""
    metrics: list[str] = Field(default_factory=list, description="metrics summarised in rows")
    format_version: int = Field(1, description="what the report holds: sweeps.report.REPORT_FORMAT "
                                               "when it was built (1: before versions)")
    params: dict[str, Any] = Field(default_factory=dict, description=(
        "the sweep's fixed parameters: the spec's, then the benchmark's defaults the sweep runs "
        "with of those the paper's curves were measured at (sweeps.paper_curves.MEASURED_AT)"))
    best: BestTrial | None = None
    subnetworks: list[dict[str, Any]] = Field(
        default_factory=list, description="per setting: overlap of kWTA winners, mean over seeds")
    search: SearchSummary | None = Field(
        None, description="an optuna search or an early-stopped sweep: the search as a whole")
    efficiency: SweepEfficiency | None = Field(
        None, description="how busy the sweep kept its cores (None: its running time or its "
                          "cluster's CPUs are unknown)")
    _directory: Path | None = PrivateAttr(None)

    def files(self) -> list[str]:
        """Every file of the report beside ``report.json``: its tables, the subnetwork and search
        summaries it has, and each figure as PNG and SVG."""
        tables = [self.table_csv, self.table_json, TRIALS_CSV,
                  *([SUBNETWORKS_JSON] if self.subnetworks else []),
                  *([SEARCH_JSON] if self.search is not None else [])]
        return [*tables, *(name for f in self.figures for name in (f, str(Path(f).with_suffix(".svg"))))]

    def path(self, name: str, directory: Path | None = None) -> Path:
        """Where the report file ``name`` (a relative path of this report) lies."""
        base = directory or self._directory
        return Path(name) if base is None else base / name


def _parse(value: str) -> Any:
    try:
        return json.loads(value)
    except (json.JSONDecodeError, TypeError):
        return value


def trial_table(client: MlflowClient, experiment_id: str, parent_run_id: str, metrics: list[str],
                params: list[str]) -> pd.DataFrame:
    """One row per trial run: the searched params, run id and name, status, the final value of
    each of ``metrics``, the trial's place in the search's order and the step early stopping
    ended it at (None: it ran its full budget)."""
    rows = []
    for run in child_runs(client, experiment_id, parent_run_id):
        row = {p: _parse(run.data.params.get(p)) for p in params}
        run_tags = run.data.tags
        row.update(run_id=run.info.run_id, run_name=run_tags.get(tags.RUN_NAME, ""),
                   status=run.info.status, **{m: run.data.metrics.get(m) for m in metrics},
                   trial_index=_integer(run_tags.get(tags.TRIAL_INDEX)),
                   stopped_at=_stopped_at(run))
        rows.append(row)
    columns = [*params, "run_id", "run_name", "status", *metrics, "trial_index", "stopped_at"]
    return pd.DataFrame(rows, columns=columns).astype({"trial_index": "Int64", "stopped_at": "Int64"})


def _integer(text: str | None) -> int | None:
    return int(text) if text is not None and text.lstrip("-").isdigit() else None


def _stopped_at(run) -> int | None:
    """The step early stopping ended a run at; None where the run's own ``progress`` reached 1,
    whatever its tag says (services before report format 5 compared each trial's last step with
    the sweep's default budget, and so tagged a cases sweep's shorter trials as stopped)."""
    if PROGRESS in run.data.metrics and not stopped_early(run.data.metrics):
        return None
    return _integer(run.data.tags.get(tags.STOPPED_AT))


def full_runs(trials: pd.DataFrame) -> pd.DataFrame:
    """Finished trials that ran their full budget (not ended early by the scheduler): only their
    final values are results (a trial stopped after one task reports its one-task accuracy)."""
    done = trials["status"] == "FINISHED"
    if "stopped_at" in trials.columns:
        done &= trials["stopped_at"].isna()
    return trials[done]


def _hashable(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    return frame.assign(**{c: frame[c].map(_cell) for c in columns})


def summarise(trials: pd.DataFrame, group_by: list[str], metric: str,
              extra: list[str] | tuple[str, ...] = ()) -> pd.DataFrame:
    """Mean, std (over seeds) of ``metric`` and ``extra`` metrics over finished trials, grouped;
    ``count`` is the number of finished trials behind each row."""
    done = full_runs(trials)
    done = done[done[metric].notna()]
    metrics = [metric, *[m for m in extra if m in done.columns and done[m].notna().any()]]
    if not group_by:
        parts = {f"{m}_{s}": [done[m].agg(s)] for m in metrics for s in ("mean", "std")}
        return pd.DataFrame({**parts, "count": [len(done)]})
    grouped = _hashable(done, group_by).groupby(group_by, dropna=False)
    stats = grouped[metrics].agg(["mean", "std"])
    stats.columns = [f"{m}_{s}" for m, s in stats.columns]
    stats["count"] = grouped[metric].count()
    return stats.reset_index()


def with_case_values(summary: pd.DataFrame, plan: SweepPlan) -> tuple[pd.DataFrame, list[str]]:
    """A cases sweep's summary with a column, beside each row's case, for every parameter that all
    its cases set and that they vary (``num_tasks``, ``variant``, ...; a list or mapping as its
    JSON), so that its figures can draw the metric against them; and the columns its figures
    group by: those values in place of the case's label where they tell every case apart (else
    the label stays beside them). Its rows are in the order the spec lists its cases."""
    figure_by: list[str] = []
    for name in plan.group_by:
        dimension = plan.spec.search_space.get(name)
        if dimension is None or dimension.type != "cases" or name not in summary.columns:
            figure_by.append(name)
            continue
        by_label = {_parse(label): values for label, values in dimension.values.items()}  # as logged
        cases = list(by_label.values())
        varied = [key for key in cases[0] if key not in summary.columns and all(key in c for c in cases)
                  and len({json.dumps(c[key], sort_keys=True) for c in cases}) > 1]
        at = summary.columns.get_loc(name) + 1
        for offset, key in enumerate(varied):
            values = [_cell(by_label.get(case, {}).get(key)) for case in summary[name]]
            summary.insert(at + offset, key, values)
        settings = {tuple(json.dumps(c[key], sort_keys=True) for key in varied) for c in cases}
        figure_by += varied if varied and len(settings) == len(cases) else [name, *varied]
        listed = case_positions(plan)[name]
        summary = summary.sort_values(name, key=lambda column: column.map(listed), kind="stable",
                                      ignore_index=True)
    return summary, figure_by


def case_positions(plan: SweepPlan) -> dict[str, dict[Any, int]]:
    """Per cases dimension, each case's place in the spec's list (its label as logged)."""
    return {name: {_parse(label): index for index, label in enumerate(dimension.values)}
            for name, dimension in plan.spec.search_space.items() if dimension.type == "cases"}


def _cell(value: Any) -> Any:
    """A value as a table cell that can be grouped by: a list or mapping as its JSON."""
    return json.dumps(value, sort_keys=True) if isinstance(value, list | dict) else value


def best_trial(trials: pd.DataFrame, metric: str, mode: str) -> BestTrial | None:
    """The full-budget trial with the best final ``metric``."""
    done = full_runs(trials)
    done = done[done[metric].notna()]
    if done.empty:
        return None
    row = done.loc[done[metric].idxmax() if mode == "max" else done[metric].idxmin()]
    return BestTrial(run_id=row["run_id"], run_name=row["run_name"], value=float(row[metric]))


def fixed_params(plan: SweepPlan) -> dict[str, Any]:
    """The sweep's fixed parameters: the spec's, then the defaults it leaves to its benchmark of
    those the paper's curves were measured at (:data:`~sweeps.paper_curves.MEASURED_AT`), so a
    sweep is compared with the paper at the values it ran with."""
    return {**plan.spec.params, **plan.defaulted(MEASURED_AT)}


def _title(benchmark: str, params: dict[str, Any], what: str) -> str:
    """``<benchmark>: <what>``, then the fixed parameters, ``num_tasks=5, hidden_sizes=[256,256], ...``."""
    fixed = ", ".join(f"{k}={format_value(v)}" for k, v in params.items())
    return f"{benchmark}: {what}" + (f"\n{fixed}" if fixed else "")


def _download_json(client: MlflowClient, run_id: str, name: str) -> Any | None:
    # one small file per trial: MLflow's per-download progress bar would only clutter the output
    os.environ.setdefault(MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR.name, "false")
    with tempfile.TemporaryDirectory() as directory:
        try:
            path = client.download_artifacts(run_id, name, directory)
        except (MlflowException, OSError):  # a trial without the artifact: nothing to aggregate
            return None
        return json.loads(Path(path).read_text())


def subnetwork_summary(client: MlflowClient, trials: pd.DataFrame, group_by: list[str],
                       cases: dict[str, dict[Any, int]] | None = None) -> list[dict]:
    """Per setting (seeds pooled): each hidden layer's overlap matrix averaged over seeds, and the
    mean and std over seeds of its mean task-pair overlap; a cases dimension's settings in the
    order ``cases`` gives (:func:`case_positions`)."""
    done = full_runs(trials)
    if done.empty:
        return []
    groups = _hashable(done, group_by).groupby(group_by, dropna=False) if group_by else [((), done)]
    summary = []
    for key, frame in groups:
        analyses = [a for a in (_download_json(client, r, SUBNETWORKS_JSON) for r in frame["run_id"])
                    if a and a.get("layers")]
        if not analyses:
            continue
        key = key if isinstance(key, tuple) else (key,)
        layers = []
        for index in range(len(analyses[0]["layers"])):
            per_seed = [a["layers"][index] for a in analyses if len(a["layers"]) > index]
            means = np.array([layer["mean_overlap"] for layer in per_seed])
            layers.append({
                "units": per_seed[0]["units"], "winners_per_input": per_seed[0]["winners_per_input"],
                "overlap": np.mean([layer["overlap"] for layer in per_seed], axis=0).round(4).tolist(),
                "mean_overlap_mean": float(means.mean()),
                "mean_overlap_std": float(means.std(ddof=1)) if len(means) > 1 else None,
                "subnetwork_size_mean": float(np.mean([np.mean(layer["subnetwork_sizes"])
                                                       for layer in per_seed])),
            })
        summary.append({"setting": dict(zip(group_by, key, strict=True)), "seeds": len(analyses),
                        "tasks": analyses[0]["tasks"], "measure": analyses[0].get("measure"),
                        "layers": layers})
    for name, listed in (cases or {}).items():  # stable: the last sort applied is the first key
        summary.sort(key=lambda entry, name=name, listed=listed: listed.get(entry["setting"].get(name), 0))
    return summary


def subnetwork_grid_figure(summary: list[dict], title: str):
    """Rows: settings; columns: hidden layers; each a mean (over seeds) task-by-task overlap map."""
    import matplotlib.pyplot as plt

    rows, cols = len(summary), max(len(s["layers"]) for s in summary)
    figure, axes = plt.subplots(rows, cols, figsize=(1.2 + 3.6 * cols, 1.0 + 3.5 * rows), dpi=120,
                                squeeze=False, layout="constrained")
    image = None
    for r, setting in enumerate(summary):
        name = " ".join(f"{k}={format_value(v)}" for k, v in setting["setting"].items()) or "all trials"
        for c in range(cols):
            ax = axes[r][c]
            if c >= len(setting["layers"]):
                ax.axis("off")
                continue
            layer = setting["layers"][c]
            image = fig.heatmap(ax, np.asarray(layer["overlap"], float), setting["tasks"], setting["tasks"],
                                annotate=len(setting["tasks"]) <= 6)
            spread = layer["mean_overlap_std"]
            seeds = setting["seeds"]
            ax.set_title(f"{name}, layer {c + 1}\nmean overlap {layer['mean_overlap_mean']:.2f}"
                         + (f" ± {spread:.2f}" if spread is not None else "")
                         + f" (n = {seeds} seed{'s' if seeds != 1 else ''})", fontsize=8)
    if image is not None:
        figure.colorbar(image, ax=axes.ravel().tolist(), label="overlap of kWTA winners (weighted Jaccard)")
    figure.suptitle(title, fontsize=10)
    return figure


def build_report(client: MlflowClient, experiment_id: str, parent_run_id: str, plan: SweepPlan,
                 out_dir: Path, log_to_mlflow: bool = True, cores: float | None = None) -> SweepReport:
    """Read a sweep's trials from MLflow, write table, figures and the subnetwork analysis to
    ``out_dir`` (and, with ``log_to_mlflow``, to the parent run: artifacts under ``report/``, the
    best trial and per-setting mean/std as metrics). ``cores``: the CPUs of the cluster the sweep
    ran on, where its drivers did not log them (its efficiency needs them)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    metric, group_by, workload = plan.metric, plan.group_by, plan.workload
    extra = [m for m in (*SECONDARY_METRICS, *TABLE_METRICS) if m in workload.metric_names and m != metric]
    timed = [workload.time_metric] if workload.time_metric not in (None, metric, *extra) else []
    trials = trial_table(client, experiment_id, parent_run_id, [metric, *extra, *timed], plan.searched)
    summary, figure_by = with_case_values(summarise(trials, group_by, metric, extra), plan)
    metrics = [m for m in (metric, *extra) if f"{m}_mean" in summary.columns]
    drawn = [m for m in metrics if m == metric or m not in TABLE_METRICS]
    params = fixed_params(plan)
    write_text_atomically(out_dir / "results.csv", summary.to_csv(index=False))
    rows = json.loads(summary.to_json(orient="records"))
    write_text_atomically(out_dir / "results.json", json.dumps(rows, indent=2))
    write_text_atomically(out_dir / TRIALS_CSV, trials.to_csv(index=False))
    labels = dict(workload.metric_labels)
    written: list[Path] = []
    # a cases sweep is drawn by the values its cases set, a curve per the others (not per case)
    numeric_axes = [g for g in figure_by if pd.api.types.is_numeric_dtype(summary[g])
                    and summary[g].notna().all()]
    axes = [a for a in workload.figure_axes if a in numeric_axes] or numeric_axes[:1]
    # trials that draw their values each have their own: a search's figures are its own (slices),
    # not one curve per setting of the other parameters
    for axis in axes if not summary.empty and not plan.spec.sampled else []:
        x_label = workload.figure_axes.get(axis, axis)
        title = _title(plan.spec.benchmark, params, f"{labels.get(metric, metric)} vs {x_label}")
        figure = fig.metric_panels(summary, axis, drawn, figure_by, labels, x_label, title)
        paper = curves_beside(plan.spec.benchmark, metric, axis, params)
        fig.draw_paper_curves(figure.axes[0], paper)
        figure.tight_layout()
        written += fig.save(figure, out_dir / f"{metric}_vs_{axis}")
    subnetworks = (subnetwork_summary(client, trials, group_by, case_positions(plan))
                   if SUBNETWORKS in workload.artifacts else [])
    if subnetworks:
        write_text_atomically(out_dir / SUBNETWORKS_JSON, json.dumps(subnetworks, indent=2))
        title = _title(plan.spec.benchmark, params, "task-by-task overlap of kWTA winners")
        figure = subnetwork_grid_figure(subnetworks, title)
        written += fig.save(figure, out_dir / "subnetworks")
    search = None
    if plan.spec.search_alg == "optuna" or plan.spec.scheduler == "asha":
        search, drawn = search_report(trials, plan, labels, out_dir)
        written += drawn
    best = best_trial(trials, metric, plan.mode)
    efficiency = None
    if workload.time_metric is not None:
        trial_seconds = float(trials[workload.time_metric].fillna(0).sum())
        efficiency = sweep_efficiency(client, parent_run_id, trial_seconds, plan.spec.resources.cpu, cores)
    report = SweepReport(
        sweep_id=plan.sweep_id, metric=metric, group_by=group_by, trials=len(trials),
        trials_finished=int((trials["status"] == "FINISHED").sum()), rows=rows,
        table_csv="results.csv", table_json="results.json",
        figures=[p.name for p in written if p.suffix == ".png"], benchmark=plan.spec.benchmark,
        title=_title(plan.spec.benchmark, params, labels.get(metric, metric)), metrics=metrics, best=best,
        subnetworks=subnetworks, search=search, efficiency=efficiency, format_version=REPORT_FORMAT,
        params=params,
    )
    report._directory = out_dir
    if log_to_mlflow:  # a final report: kept beside its files (a service caches its own copy)
        write_text_atomically(out_dir / "report.json", report.model_dump_json(indent=2))
        for name in ("report.json", *report.files()):
            client.log_artifact(parent_run_id, str(out_dir / name), artifact_path="report")
        if efficiency is not None:
            client.log_metric(parent_run_id, "sweep.efficiency", efficiency.efficiency)
        log_sweep_summary(client, parent_run_id, summary, group_by, metrics,
                          [a for a in axes if a in group_by], best.model_dump() if best else None)
        if search is not None:
            log_search_summary(client, parent_run_id, search)
    return report


def load_report(directory: Path) -> SweepReport:
    """A report written by :func:`build_report`, with its paths resolved against ``directory``."""
    report = SweepReport.model_validate_json((directory / "report.json").read_text())
    report._directory = directory
    return report


def paper_figure(segments: Path, density: Path, out_stem: Path) -> list[Path]:
    """The paper's two curves side by side: the report of a segments sweep (accuracy vs
    ``num_segments``) and of a density sweep (accuracy vs ``kw_percent_on``), each with the
    paper's published (MNIST) curve on a right-hand axis, as PNG and SVG."""
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(10.5, 4), dpi=120)
    for ax, directory, axis in ((axes[0], segments, "num_segments"), (axes[1], density, "kw_percent_on")):
        report = load_report(directory)
        summary = pd.read_csv(report.path(report.table_csv))
        if axis not in summary.columns:
            raise ValueError(f"{directory}: the sweep {report.sweep_id} does not vary {axis}")
        workload = get_benchmark(report.benchmark).workload
        fig.draw_metric_vs(ax, summary, axis, report.metric, report.group_by)
        ax.set_xlabel(workload.figure_axes.get(axis, axis))
        ax.set_ylabel(workload.metric_labels.get(report.metric, report.metric))
        ax.set_title(report.title, fontsize=8)
        ax.legend(fontsize=7)
        fig.draw_paper_curves(ax, curves_beside(report.benchmark, report.metric, axis, report.params))
    figure.tight_layout()
    return fig.save(figure, out_stem)
