"""The findings page's tables come from the committed sweep reports: each setting's mean ± std
over seeds with n, per metric and per layer, in the report's own order."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from sweeps.clock import SweepEfficiency
from sweeps.report import SweepReport

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("findings_hook", ROOT / "docs" / "hooks" / "findings.py")
findings = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(findings)


def _layer(mean: float, std: float | None, winners: int) -> dict:
    return {"units": 2048, "winners_per_input": winners, "overlap": [[1.0]], "mean_overlap_mean": mean,
            "mean_overlap_std": std, "subnetwork_size_mean": 100.0}


def _write(directory: Path) -> None:
    rows = [{"variant": "active_dendrites", "mean_accuracy_mean": 0.8297, "mean_accuracy_std": 0.0061,
             "forgetting_mean": 0.044, "forgetting_std": 0.006, "num_clusters_mean": 41.0,
             "num_clusters_std": 1.732, "count": 3},
            {"variant": "mlp", "mean_accuracy_mean": 0.7731, "mean_accuracy_std": None,
             "forgetting_mean": 0.1, "forgetting_std": None, "num_clusters_mean": None, "count": 1}]
    subnetworks = [{"setting": {"variant": "active_dendrites"}, "seeds": 3, "tasks": [0], "measure": "m",
                    "layers": [_layer(0.11, 0.004, 102), _layer(0.31, 0.02, 102)]}]
    report = SweepReport(
        sweep_id="findings-subnetworks-1", metric="mean_accuracy", group_by=["variant"], trials=5,
        trials_finished=4, rows=rows, table_csv="results.csv", table_json="results.json",
        figures=["subnetworks.png"],
        metrics=["mean_accuracy", "forgetting", "num_clusters"], subnetworks=subnetworks,
        efficiency=SweepEfficiency(trial_time_s=7200.0, wall_s=3800.0, cores=2, efficiency=0.947,
                                   wall_from="drivers"))
    directory.mkdir(parents=True)
    (directory / "report.json").write_text(report.model_dump_json())


def test_a_committed_report_renders_as_its_settings_with_mean_std_and_n(tmp_path):
    _write(tmp_path / "subnetworks")
    table = findings.render("table", "subnetworks", tmp_path).splitlines()
    assert table[0] == "| variant | mean_accuracy | forgetting | num_clusters |"
    assert table[2] == "| active_dendrites | 0.830 ± 0.006 (n = 3) | 0.044 ± 0.006 | 41.0 ± 1.7 |"
    assert table[3] == "| mlp | 0.773 (n = 1) | 0.100 | - |"  # one seed: no std; no clusters: a dash
    assert "4 of 5 trials finished; efficiency 0.95 (2.0 trial-hours over 1.06 h x 2 cores)" in table[5]
    assert table[-1] == "![findings-subnetworks-1: subnetworks](findings/subnetworks/subnetworks.png)"
    layers = findings.render("subnetworks", "subnetworks", tmp_path).splitlines()
    assert layers[0] == "| variant | layer 1 overlap | layer 2 overlap | units on per input |"
    assert layers[2] == "| active_dendrites | 0.110 ± 0.004 | 0.310 ± 0.020 | 102 of 2,048 / 102 of 2,048 |"


def test_a_placeholder_without_a_report_says_so_and_how_to_make_it(tmp_path):
    text = findings.render("table", "density", tmp_path)
    assert text.startswith("*No report yet") and "--out docs/findings/density" in text
    page = "before\n<!-- dlab:findings-table density -->\nafter"
    assert findings.PLACEHOLDER.sub(lambda m: findings.render(m.group(1), m.group(2), tmp_path), page) == (
        f"before\n{text}\nafter")


def test_the_papers_table_has_a_column_per_published_value_and_a_dash_where_a_curve_has_none():
    table = findings.paper_table("num_tasks").splitlines()
    assert table[0] == "| tasks | 2 | 5 | 10 | 25 | 50 | 100 |"
    mlp = next(line for line in table if "dense MLP" in line)
    assert mlp.startswith("| paper, **MNIST**, 3-layer dense MLP (%, n = 8) |")  # the notebook's 8 runs
    assert [cell.strip() for cell in mlp.split("|")[2:-1]] == ["-", "-", "82.03", "-", "-", "48.31"]
    # The searches' data give 10 runs a point and their spread: the plateau's edge is 4 std wide.
    density = findings.paper_table("kw_percent_on").splitlines()[2]
    assert density.startswith("| paper, **MNIST**, 10 tasks (%, n = 10) | 93.41 ± 0.25 | 94.90 ± 0.23 |")
    page = "a\n<!-- dlab:paper-table kw_percent_on -->\nb"
    density = findings.paper_table("kw_percent_on")
    assert findings.on_page_markdown(page, None, None, None) == f"a\n{density}\nb"
    with pytest.raises(ValueError, match="no curve against 'seed'"):
        findings.paper_table("seed")
