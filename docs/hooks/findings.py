"""mkdocs hook: the findings page's tables, generated at every build from the sweep reports
committed under ``docs/findings/<name>/`` (``dlab report <id> --out docs/findings/<name>``), so
the numbers on the page are the reports' own and cannot drift from them.

- ``<!-- dlab:findings-table NAME -->``: one row per setting, each metric's mean ± std over seeds
  with n, then the sweep's id, trials and efficiency, and the report's figures;
- ``<!-- dlab:findings-subnetworks NAME -->``: per setting, each hidden layer's mean task-pair
  overlap of the kWTA winners (mean ± std over seeds).
- ``<!-- dlab:paper-table AXIS -->``: the paper's published (MNIST) accuracies against a swept
  parameter, from ``sweeps/paper_curves.py`` (the same numbers the report figures draw).

A report not committed yet renders as a line saying so, with the command that makes it.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import Files
from mkdocs.structure.pages import Page

from sweeps.paper_curves import PaperCurve, paper_curves
from sweeps.report import SweepReport, load_report
from sweeps.tracking import format_value

ROOT = Path(__file__).resolve().parents[2]
FINDINGS = ROOT / "docs" / "findings"
PLACEHOLDER = re.compile(r"<!-- dlab:findings-(table|subnetworks) ([a-z0-9-]+) -->")
PAPER_PLACEHOLDER = re.compile(r"<!-- dlab:paper-table ([a-z_]+) -->")
AXIS_HEADERS = {"num_segments": "segments", "kw_percent_on": "fraction of units on", "num_tasks": "tasks"}
DIGITS = {"num_clusters": 1}
"""Decimals of a metric that is not a fraction (3 for every other)."""


def mean_std(mean: Any, std: Any, count: Any = None, digits: int = 3) -> str:
    """``0.830 ± 0.006 (n = 3)``; a lone seed has no std; a missing mean is a dash."""
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "-"
    text = f"{mean:.{digits}f}"
    if std is not None and not (isinstance(std, float) and math.isnan(std)):
        text += f" ± {std:.{digits}f}"
    return text + (f" (n = {int(count)})" if count is not None else "")


def _missing(name: str) -> str:
    return (f"*No report yet (the sweep has not finished): it goes to `docs/findings/{name}/` "
            f"(`dlab report <id> --out docs/findings/{name}`).*")


def _setting(report: SweepReport, row: dict[str, Any]) -> list[str]:
    return [format_value(row.get(g)) for g in report.group_by]


def results_table(report: SweepReport) -> str:
    """The report's rows as a Markdown table, with the sweep's trials and efficiency below."""
    header = [*report.group_by, *report.metrics]
    out = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for row in report.rows:
        cells = [mean_std(row.get(f"{m}_mean"), row.get(f"{m}_std"), row.get("count") if i == 0 else None,
                          DIGITS.get(m, 3)) for i, m in enumerate(report.metrics)]
        out.append("| " + " | ".join([*_setting(report, row), *cells]) + " |")
    note = f"\nSweep `{report.sweep_id}`: {report.trials_finished} of {report.trials} trials finished"
    found = report.efficiency
    if found is not None:
        note += (f"; efficiency {found.efficiency:.2f} ({found.trial_time_s / 3600:.1f} trial-hours "
                 f"over {found.wall_s / 3600:.2f} h x {found.cores:g} cores)")
    return "\n".join(out) + "\n" + note + ".\n"


def subnetworks_table(report: SweepReport) -> str:
    """Per setting: each hidden layer's mean task-pair overlap (mean ± std over seeds)."""
    if not report.subnetworks:
        return "*This report has no subnetwork analysis.*\n"
    depth = max(len(s["layers"]) for s in report.subnetworks)
    header = [*report.group_by, *(f"layer {i + 1} overlap" for i in range(depth)), "units on per input"]
    out = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for setting in report.subnetworks:
        layers = setting["layers"]
        cells = [mean_std(layer["mean_overlap_mean"], layer["mean_overlap_std"]) for layer in layers]
        sizes = " / ".join(f"{layer['winners_per_input']:,.0f} of {layer['units']:,}" for layer in layers)
        out.append("| " + " | ".join([*_setting(report, setting["setting"]), *cells, sizes]) + " |")
    return "\n".join(out) + "\n"


def figures(report: SweepReport, name: str) -> str:
    """The report's figures, linked from a page beside ``findings/`` (each also as SVG)."""
    return "".join(f"\n![{report.sweep_id}: {Path(f).stem.replace('_', ' ')}](findings/{name}/{f})\n"
                   for f in report.figures)


def render(kind: str, name: str, findings: Path = FINDINGS) -> str:
    """The Markdown a placeholder stands for."""
    directory = findings / name
    if not (directory / "report.json").is_file():
        return _missing(name)
    report = load_report(directory)
    return results_table(report) + figures(report, name) if kind == "table" else subnetworks_table(report)


def paper_table(axis: str) -> str:
    """The paper's curves against ``axis`` as a Markdown table: a column per published value, a
    row per curve (in %, mean ± std over its runs where the spread is public, with the run
    count; MNIST in bold), a dash where a curve has no point."""
    curves = paper_curves(axis)
    if not curves:
        raise ValueError(f"the paper has no curve against {axis!r}")
    values = sorted({x for curve in curves for x in curve.points})
    out = ["| " + " | ".join([AXIS_HEADERS.get(axis, axis), *(f"{v:g}" for v in values)]) + " |",
           "|" + " --- |" * (len(values) + 1)]
    for curve in curves:
        cells = [_published(curve, v) if v in curve.points else "-" for v in values]
        label = curve.label.replace("MNIST", "**MNIST**") + f" (%, n = {curve.runs})"
        out.append("| " + " | ".join([label, *cells]) + " |")
    return "\n".join(out) + "\n"


def _published(curve: PaperCurve, value: float) -> str:
    mean = f"{curve.points[value]:.2f}"
    return f"{mean} ± {curve.spread[value]:.2f}" if value in curve.spread else mean


def on_page_markdown(markdown: str, page: Page, config: MkDocsConfig, files: Files) -> str:
    """Fill the findings tables a page asks for."""
    markdown = PAPER_PLACEHOLDER.sub(lambda match: paper_table(match.group(1)), markdown)
    return PLACEHOLDER.sub(lambda match: render(match.group(1), match.group(2)), markdown)
