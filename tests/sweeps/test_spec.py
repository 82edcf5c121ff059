"""Invalid sweep specs are rejected before Ray starts, with the offending field named."""

import pytest
import ray
from pydantic import ValidationError

from sweeps.cost import estimate
from sweeps.plan import SweepPlan
from sweeps.runner import SweepError, check_resources, run_sweep
from sweeps.settings import Settings
from sweeps.spec import SweepSpec, load_spec

VALID = {
    "name": "ok",
    "benchmark": "permuted_digits",
    "params": {"num_tasks": 2, "hidden_sizes": [16, 16]},
    "search_space": {"num_segments": {"type": "grid", "values": [1, 2]}},
}


def _with(**changes):
    spec = {**VALID, **changes}
    return spec


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        (_with(benchmark="imagenet"), "unknown benchmark"),
        (_with(search_space={"num_segments": {"type": "gaussian", "values": [1]}}), "search_space"),
        (_with(search_space={"lr": {"type": "uniform", "low": 0.1, "high": 0.01}}), "low"),
        (_with(search_space={"lr": {"type": "loguniform", "low": 0.0, "high": 0.1}}), "low > 0"),
        (_with(params={"num_segments": -2}, search_space={}), "params: num_segments"),
        (_with(search_space={"num_segments": {"type": "grid", "values": [2, -1]}}),
         "search_space.num_segments"),
        (_with(search_space={"kw_percent_on": {"type": "grid", "values": [0.05, 1.5]}}),
         "search_space.kw_percent_on"),
        (_with(params={"segmnets": 3}), "unknown parameter(s) ['segmnets']"),
        (_with(search_space={"colour": {"type": "choice", "values": [1]}}), "colour"),
        (_with(params={"num_segments": 2}), "both fixed and searched"),
        (_with(name="has spaces"), "name"),
        (_with(num_samples=0), "num_samples"),
        (_with(resources={"cpu": -1}), "resources.cpu"),
        (_with(scheduler="hyperband"), "scheduler"),
        (_with(surprise=1), "surprise"),
        (_with(search_alg="tpe"), "search_alg"),
        (_with(search_alg="random", objectives=[{"metric": "forgetting"}]), "objectives: only an optuna"),
        (_with(search_seed=0), "search_seed: only an optuna"),
        (_with(search_alg="optuna", search_space={}), "search_space: an optuna search needs"),
        (_with(search_alg="optuna", objectives=[{"metric": "forgeting", "mode": "min"}]),
         "objectives.0.metric: 'permuted_digits' never reports 'forgeting'"),
        (_with(search_alg="optuna", objectives=[{"metric": "mean_accuracy"}]), "already an objective"),
        (_with(grace_period=3), "grace_period: only scheduler asha stops trials early"),
        (_with(scheduler="asha", grace_period=0), "grace_period"),
        (_with(search_alg="optuna", scheduler="asha", objectives=[{"metric": "forgetting", "mode": "min"}]),
         "objectives: Optuna's multi-objective TPE cannot learn from the trials"),
        (_with(search_alg="optuna", objectives=[{"metric": "forgetting", "mode": "least"}]),
         "objectives.0.mode"),
        (_with(search_space={"setting": {"type": "cases", "values": {"a": {"lr": 0.1}, "b": {"lr": -1}}}}),
         "search_space.setting.b: lr: Input should be greater than 0"),
        (_with(search_space={"setting": {"type": "cases", "values": {"a": {"segmnets": 3}}}}),
         "search_space.setting.a: unknown parameter(s) ['segmnets']"),
        (_with(search_space={"setting": {"type": "cases", "values": {"a": {"num_tasks": 3}}}}),
         "search_space.setting.a: ['num_tasks'] also fixed"),
        (_with(search_space={"lr": {"type": "cases", "values": {"a": {"epochs": 2}}}}),
         "search_space.lr: a cases dimension labels settings"),
        (_with(search_alg="random", search_space={"setting": {"type": "cases", "values": {"a": {}}}}),
         "cases are tried in turn by a grid search"),
        (_with(search_space={"setting": {"type": "cases", "values": {"has space": {}}}}), "setting"),
    ],
)
def test_invalid_spec_names_the_field(spec, field):
    with pytest.raises(ValidationError) as info:
        SweepSpec.model_validate(spec)
    assert field in str(info.value)


def test_resources_the_cluster_lacks_are_rejected_before_ray_starts(tmp_path):
    spec = SweepSpec.model_validate(_with(resources={"cpu": 1, "gpu": 4}))
    with pytest.raises(SweepError, match=r"resources\.gpu"):
        check_resources(spec, {"CPU": 2.0, "GPU": 0.0})
    ray_was_up = ray.is_initialized()
    with pytest.raises(SweepError, match=r"resources\.gpu"):
        run_sweep(SweepPlan.resolve(spec), Settings(home=tmp_path))
    assert ray.is_initialized() == ray_was_up
    with pytest.raises(SweepError, match=r"resources\.cpu"):
        check_resources(SweepSpec.model_validate(_with(resources={"cpu": 64})), {"CPU": 2.0})


def param_space(spec: SweepSpec) -> dict:
    return SweepPlan.resolve(spec).param_space()


def test_examples_load_and_translate_to_tune(tmp_path):
    for name in ("demo", "segments", "density"):
        spec = load_spec(f"sweeps/examples/{name}.yaml")
        space = param_space(spec)
        assert space["dataset"] == "digits"
        assert set(spec.search_space) <= set(space)
    mnist = load_spec("sweeps/examples/segments.yaml", {"benchmark": "permuted_mnist"})
    assert param_space(mnist)["dataset"] == "mnist"
    mt10 = load_spec("sweeps/examples/mt10_paper.yaml")
    assert param_space(mt10)["env"] == "MT10" and mt10.resources.gpu == 0.25
    assert mt10.expected_trials == 20 and mt10.resolved_metric == "success_rate_last10"
    assert param_space(mt10)["preset"] == "paper"


def test_mt10_2m_example_runs_both_paper_arms_to_2m_steps():
    """``mt10_2m.yaml``: 3 seeds per arm to 2M env steps; each trial's config, resolved as the
    trainable resolves it, gives only the dendritic arm Numenta's modified init and sparse head."""
    from workers.metaworld import MTSACConfig

    spec = load_spec("sweeps/examples/mt10_2m.yaml")
    assert spec.expected_trials == 6 and spec.resources.gpu == 0.25
    trials = [MTSACConfig.model_validate({**spec.params, **t.config}) for t in estimate(spec).trials]
    assert {(c.model, c.seed) for c in trials} == {(m, s) for m in ("dendritic", "mlp") for s in range(3)}
    assert all(c.total_steps == 2_000_000 and c.hidden_sizes == [2800, 2800] for c in trials)
    assert {c.model: (c.init, c.sparse_head) for c in trials} == {
        "dendritic": ("modified", True), "mlp": ("project", False)}


def test_missing_or_malformed_spec_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_spec(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("- just\n- a list\n")
    with pytest.raises(ValueError, match="mapping"):
        load_spec(bad)


def test_spec_hash_ignores_key_order():
    a = SweepSpec.model_validate(VALID)
    b = SweepSpec.model_validate(dict(reversed(list(VALID.items()))))
    assert a.spec_hash() == b.spec_hash()


def test_cli_rejects_bad_spec_and_unknown_sweep(tmp_path, monkeypatch, capsys):
    from dlab.cli import main

    monkeypatch.setenv("DLAB_HOME", str(tmp_path))
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nbenchmark: permuted_digits\nparams: {num_segments: -4}\n")
    assert main(["sweep", "run", str(bad)]) == 2
    assert "num_segments" in capsys.readouterr().out
    assert main(["sweep", "run", str(tmp_path / "missing.yaml")]) == 2
    assert "not found" in capsys.readouterr().out
    assert main(["sweep", "report", "no-such-sweep"]) == 2
    assert "not a dendrite-lab sweep directory" in capsys.readouterr().out
    assert main(["sweep", "resume", str(tmp_path)]) == 2


def test_a_sweep_where_nothing_answers_at_the_ray_address_is_refused_not_left_hanging(tmp_path, monkeypatch,
                                                                                      capsys):
    # ray.init waits forever for a GCS that is gone (a driver outliving its head hung for hours)
    import socket
    import time

    from dlab.cli import main

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("DLAB_HOME", str(tmp_path))
    monkeypatch.setenv("RAY_ADDRESS", f"127.0.0.1:{port}")
    monkeypatch.setenv("DLAB_RAY_CONNECT_WAIT_S", "2")
    spec = tmp_path / "spec.yaml"
    spec.write_text("name: x\nbenchmark: permuted_digits\nparams: {num_tasks: 2}\n")
    started = time.monotonic()
    assert main(["sweep", "run", str(spec)]) == 2
    assert f"cannot reach Ray at 127.0.0.1:{port}" in capsys.readouterr().out
    assert time.monotonic() - started < 60


def test_an_optuna_search_hands_its_domains_to_a_seeded_searcher_and_stops_early_by_tasks_seen():
    search = dict(params={"num_tasks": 5, "hidden_sizes": [16, 16]}, search_alg="optuna", search_seed=11,
                  num_samples=7, search_space={
                      "num_segments": {"type": "grid", "values": [1, 2]},
                      "kw_percent_on": {"type": "loguniform", "low": 0.01, "high": 0.5}})
    spec = SweepSpec.model_validate(_with(**search, objectives=[{"metric": "forgetting", "mode": "min"}]))
    plan = SweepPlan.resolve(spec)
    assert spec.expected_trials == 7  # num_samples, whatever the grid
    space = plan.param_space()
    assert space["num_tasks"] == 5 and "num_segments" not in space and "kw_percent_on" not in space
    searcher = plan.searcher()
    assert (searcher.metric, searcher.mode) == (["mean_accuracy", "forgetting"], ["max", "min"])
    first = [searcher.suggest(str(i)) for i in range(3)]
    again = plan.searcher()
    assert [again.suggest(str(i)) for i in range(3)] == first  # seeded
    assert all(s["num_segments"] in (1, 2) and 0.01 <= s["kw_percent_on"] <= 0.5 for s in first)
    scheduler = SweepPlan.resolve(SweepSpec.model_validate(_with(**search, scheduler="asha"))).scheduler()
    assert (scheduler._time_attr, scheduler._max_t) == ("tasks_seen", 5)
    assert [rung for rung, _ in scheduler._brackets[0]._rungs] == [3, 1]
    # a grace period of 2 tasks: no trial stops before its second task; rungs 2 (x3 = 6 > 5)
    later = SweepPlan.resolve(SweepSpec.model_validate(_with(**search, scheduler="asha", grace_period=2)))
    assert [rung for rung, _ in later.scheduler()._brackets[0]._rungs] == [2]
    assert estimate(later.spec).early_stopping.rungs == [2]
    assert SweepPlan.resolve(SweepSpec.model_validate(VALID)).searcher() is None


def test_the_searcher_tells_a_trial_stopped_early_as_pruned_and_skips_reports_without_the_metric():
    from optuna.trial import TrialState

    plan = SweepPlan.resolve(SweepSpec.model_validate(_with(
        params={"num_tasks": 4, "hidden_sizes": [16, 16]}, search_alg="optuna", search_seed=2,
        num_samples=2, scheduler="asha")))
    searcher = plan.searcher()
    for trial_id in ("stopped", "full"):
        searcher.suggest(trial_id)
    searcher.on_trial_result("full", {"tasks_seen": 1, "training_iteration": 1})  # off the eval schedule
    searcher.on_trial_result("full", {"tasks_seen": 2, "training_iteration": 2, "mean_accuracy": 0.8})
    searcher.on_trial_complete("full", {"tasks_seen": 4, "training_iteration": 4, "progress": 1.0,
                                        "mean_accuracy": 0.7})
    searcher.on_trial_complete("stopped", {"tasks_seen": 1, "training_iteration": 1, "progress": 0.25,
                                           "mean_accuracy": 0.95})
    stopped, full = searcher._ot_study.trials
    assert (stopped.state, stopped.intermediate_values) == (TrialState.PRUNED, {1: 0.95})
    assert (full.state, full.value, full.intermediate_values) == (TrialState.COMPLETE, 0.7, {2: 0.8})


def test_tpe_keeps_suggesting_once_it_models_a_study_of_mostly_pruned_trials():
    # TPE models the study after its 10 startup trials; all but one of them stopped early
    # (pruned), so its "good" trials are pruned ones: the 12th suggestion comes from a model fitted
    # on pruned and complete trials alike (multi-objective TPE fails here: optuna#5260)
    plan = SweepPlan.resolve(SweepSpec.model_validate(_with(
        params={"num_tasks": 9, "hidden_sizes": [16, 16]}, search_alg="optuna", search_seed=3,
        num_samples=12, scheduler="asha",
        search_space={"kw_percent_on": {"type": "loguniform", "low": 0.01, "high": 0.5}})))
    searcher = plan.searcher()
    for index in range(11):
        config = searcher.suggest(str(index))
        stopped_at = 9 if index == 0 else 1 + index % 3
        searcher.on_trial_complete(str(index), {"tasks_seen": stopped_at, "training_iteration": stopped_at,
                                                "progress": stopped_at / 9,
                                                "mean_accuracy": 0.5 + config["kw_percent_on"],
                                                "forgetting": 0.1})
    assert [t.state.name for t in searcher._ot_study.trials].count("PRUNED") == 10
    assert 0.01 <= searcher.suggest("11")["kw_percent_on"] <= 0.5


def test_the_tpe_search_example_is_a_seeded_early_stopped_search_priced_at_its_bound():
    spec = load_spec("sweeps/examples/tpe_search.yaml")
    assert (spec.search_alg, spec.search_seed, spec.num_samples, spec.scheduler) == ("optuna", 0, 30, "asha")
    assert [(o.metric, o.mode) for o in spec.all_objectives] == [("mean_accuracy", "max")]
    cost = estimate(spec)
    assert cost.expected_trials == 30 and cost.total_cost == 30 * cost.max_trial_cost
    assert cost.early_stopping.rungs == [1, 3, 9] and cost.early_stopping.expected_cost < cost.total_cost


def test_cases_are_named_settings_crossed_with_the_grid_and_priced_each_as_its_own():
    spec = SweepSpec.model_validate(_with(search_space={
        "setting": {"type": "cases", "values": {"narrow": {}, "wide": {"num_segments": 8, "epochs": 2}}},
        "seed": {"type": "grid", "values": [0, 1, 2]}}))
    assert spec.expected_trials == 6
    assert spec.expand({"setting": "wide", "seed": 1}) == {"num_segments": 8, "epochs": 2, "seed": 1}
    assert spec.expand({"setting": "narrow", "seed": 1}) == {"seed": 1}
    priced = {(t.config["setting"], t.config["seed"]): t.cost for t in estimate(spec).trials}
    assert len(priced) == 6 and priced[("wide", 0)] > 2 * priced[("narrow", 0)]  # 8 segments, 2 epochs
    space = SweepPlan.resolve(spec).param_space()
    assert space["setting"] == {"grid_search": ["narrow", "wide"]} and "num_segments" not in space
