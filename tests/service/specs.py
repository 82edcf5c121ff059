"""Sweep specs shared by the service tests: a tiny valid one, and malformed bodies with the field
each one's 422 must name."""

from __future__ import annotations

TINY = {"num_tasks": 2, "hidden_sizes": [16, 16], "epochs": 1, "batch_size": 128, "kw_percent_on": 0.25}


def spec(name: str, segments=(1, 3), seeds=(0,), **changes) -> dict:
    return {
        "name": name,
        "benchmark": "permuted_digits",
        "params": {**TINY, **changes.pop("params", {})},
        "search_space": {
            "num_segments": {"type": "grid", "values": list(segments)},
            "seed": {"type": "grid", "values": list(seeds)},
        },
        "resources": {"cpu": 1},
        **changes,
    }


MALFORMED = [
    ("not json", "application/json", b"{name: oops", "not valid JSON"),
    ("yaml alias", "application/yaml", b"a: &x [1]\nb: *x\n", "aliases are not accepted"),
    ("yaml object tag", "application/yaml", b"name: !!python/object:os.system x\n", "YAML"),
    ("not a mapping", "application/json", b"[1, 2]", "must be a JSON/YAML object"),
    ("lone surrogate escape", "application/json",
     b'{"name": "a", "benchmark": "permuted_digits", "description": "\\udc80"}',
     "description: the text holds"),
    ("lone surrogate in a key", "application/json",
     b'{"name": "a", "benchmark": "permuted_digits", "params": {"\\ud800x": 1}}', "params: the text holds"),
    ("a fraction of a CPU", None, spec("a", resources={"cpu": 0.01}),
     "resources.cpu: Value error, a trial needs at least 1 CPU"),
    ("NUL in text", None, {**spec("a"), "description": "a\x00b"}, "description: the text holds a NUL"),
    ("missing name", None, {k: v for k, v in spec("a").items() if k != "name"}, "name"),
    ("bad name", None, spec("no spaces allowed"), "name"),
    ("unknown benchmark", None, spec("a", benchmark="cifar"), "benchmark"),
    ("unknown top-level key", None, {**spec("a"), "segmnets": 3}, "segmnets"),
    ("unknown parameter", None, spec("a", params={"segments": 3}), "segments"),
    ("negative segments", None, spec("a", segments=(-1, 2)), "search_space.num_segments"),
    ("percent_on above 1", None, spec("a", params={"kw_percent_on": 1.5}), "kw_percent_on"),
    ("fixed and searched", None, spec("a", params={"num_segments": 2}), "both fixed and searched"),
    (
        "unknown dimension type",
        None,
        {**spec("a"), "search_space": {"seed": {"type": "normal"}}},
        "search_space.seed",
    ),
    (
        "uniform low >= high",
        None,
        {**spec("a"), "search_space": {"kw_percent_on": {"type": "uniform", "low": 0.5, "high": 0.1}}},
        "search_space.kw_percent_on",
    ),
    (
        "loguniform low <= 0",
        None,
        {**spec("a"), "search_space": {"kw_percent_on": {"type": "loguniform", "low": 0, "high": 0.1}}},
        "search_space.kw_percent_on",
    ),
    ("zero samples", None, spec("a", num_samples=0), "num_samples"),
    ("negative cpu", None, spec("a", resources={"cpu": -1}), "resources.cpu"),
    ("bad mode", None, spec("a", mode="maximise"), "mode"),
    ("bad scheduler", None, spec("a", scheduler="hyperband"), "scheduler"),
    (
        "empty grid",
        None,
        {**spec("a"), "search_space": {"seed": {"type": "grid", "values": []}}},
        "search_space.seed",
    ),
]


# --- the generated part of the corpus: every numeric field of every benchmark config out of its
# bounds, and bodies built to exhaust or crash a parser --------------------------------------


def _bound_cases() -> list[tuple]:
    """For each benchmark's config, each numeric field set far beyond its upper bound (or below its
    lower bound where it has none): the 422 must name the field."""
    from annotated_types import Ge, Gt, Le, Lt

    from sweeps.benchmarks import get_benchmark

    cases = []
    for benchmark in ("permuted_digits", "metaworld_mt10"):
        model = get_benchmark(benchmark).config_model
        for name, field in model.model_fields.items():
            numeric = field.annotation in (int, float, int | None, float | None)
            if not numeric or name in ("seed",):
                continue
            uppers = [m for m in field.metadata if isinstance(m, Le | Lt)]
            lowers = [m for m in field.metadata if isinstance(m, Ge | Gt)]
            if uppers:
                value = 10**12 if "int" in str(field.annotation) else 1e15
            elif lowers:
                value = -1
            else:
                value = 10**12
            base = {"name": "bounds", "benchmark": benchmark, "params": {name: value}}
            if benchmark == "permuted_digits":
                base["params"] = {**TINY, name: value}
            cases.append((f"{benchmark} {name}={value}", None, base, name))
    return cases


def _nested(depth: int) -> bytes:
    return (
        b'{"name": "deep", "benchmark": "permuted_digits", "description": '
        + b"[" * depth
        + b"]" * depth
        + b"}"
    )


BODIES = [
    ("json nested 10000 deep", "application/json", _nested(10_000), "nests deeper"),
    ("json nested 40 deep", "application/json", _nested(40), "nests deeper"),
    (
        "yaml flow nested 10000 deep",
        "application/yaml",
        b"a: " + b"[" * 10_000 + b"]" * 10_000,
        "nests deeper",
    ),
    (
        "yaml block nested deep",
        "application/yaml",
        b"a:\n" + b"".join(b" " * i + b"- \n" for i in range(0, 3000, 1)),
        "not accepted",
    ),
    (
        "json integer of 5000 digits",
        "application/json",
        b'{"name": "x", "num_samples": ' + b"9" * 5000 + b"}",
        "digits",
    ),
    (
        "json integer of 25 digits",
        "application/json",
        b'{"name": "x", "num_samples": ' + b"9" * 25 + b"}",
        "digits",
    ),
    (
        "yaml integer of 5000 digits",
        "application/yaml",
        b"name: x\nnum_samples: " + b"9" * 5000,
        "not accepted",
    ),
    ("yaml integer beyond 64 bits", "application/yaml", b"name: x\nnum_samples: " + b"9" * 25, "64 bits"),
    ("json NaN", "application/json", b'{"name": "x", "time_budget_s": NaN}', "NaN"),
    ("json Infinity", "application/json", b'{"name": "x", "time_budget_s": Infinity}', "Infinity"),
    ("json 1e999", "application/json", b'{"name": "x", "time_budget_s": 1e999}', "finite"),
    ("yaml .inf", "application/yaml", b"name: x\ntime_budget_s: .inf\n", "finite"),
    ("yaml .nan", "application/yaml", b"name: x\ntime_budget_s: .nan\n", "finite"),
    ("yaml date", "application/yaml", b"name: x\ndescription: 2020-01-01\n", "unsupported value"),
    ("yaml binary", "application/yaml", b"name: x\ndescription: !!binary aGVsbG8=\n", "unsupported value"),
    ("yaml non-string key", "application/yaml", b"1: x\n", "keys must be strings"),
    ("yaml python tag", "application/yaml", b"name: !!python/name:os.system\n", "YAML"),
    ("yaml set", "application/yaml", b"name: !!set {a, b}\n", "unsupported value"),
    ("invalid utf-8", "application/json", b'{"name": "\xff\xfe"}', "not valid JSON"),
    ("empty body", "application/json", b"", "not valid JSON"),
    ("json null", "application/json", b"null", "must be a JSON/YAML object"),
    ("json string", "application/json", b'"spec"', "must be a JSON/YAML object"),
    ("yaml scalar", "application/yaml", b"just text", "must be a JSON/YAML object"),
    ("trailing garbage", "application/json", b'{"name": "x"} {"name": "y"}', "not valid JSON"),
]

SPEC_CASES = [
    (
        "randint bounds huge",
        None,
        {**spec("a"), "search_space": {"seed": {"type": "randint", "low": 0, "high": 10**30}}},
        "digits",
    ),
    (
        "randint beyond the RNG",
        None,
        {**spec("a"), "search_space": {"seed": {"type": "randint", "low": 0, "high": 2**40}}},
        "search_space.seed",
    ),
    (
        "uniform infinite",
        None,
        {**spec("a"), "search_space": {"lr": {"type": "uniform", "low": 0.1, "high": 1e300}}},
        "search_space.lr",
    ),
    (
        "grid of 10^12 tasks",
        None,
        {**spec("a"), "search_space": {"num_tasks": {"type": "grid", "values": [10**12]}}},
        "num_tasks",
    ),
    ("width 10^9", None, spec("a", params={"hidden_sizes": [10**9]}), "hidden_sizes"),
    ("9 hidden layers", None, spec("a", params={"hidden_sizes": [8] * 9}), "hidden_sizes"),
    ("10^12 segments", None, spec("a", segments=(10**12,)), "num_segments"),
    ("10^9 epochs", None, spec("a", params={"epochs": 10**9}), "epochs"),
    ("seed beyond the RNG", None, spec("a", seeds=(2**32,)), "seed"),
    ("negative seed", None, spec("a", seeds=(-1,)), "seed"),
    ("cpu 10^6", None, spec("a", resources={"cpu": 10**6}), "resources.cpu"),
    ("gpu 1000", None, spec("a", resources={"gpu": 1000}), "resources.gpu"),
    ("max_failures 10^6", None, spec("a", max_failures=10**6), "max_failures"),
    ("num_samples 10^9", None, spec("a", num_samples=10**9), "num_samples"),
    ("max_concurrent 10^9", None, spec("a", max_concurrent_trials=10**9), "max_concurrent_trials"),
    ("time budget 10^12 s", None, spec("a", time_budget_s=1e12), "time_budget_s"),
    ("cuda without a gpu", None, spec("a", params={"device": "cuda"}), "needs a GPU"),
    (
        "cuda:3 on one gpu",
        None,
        spec("a", params={"device": "cuda:3"}, resources={"cpu": 1, "gpu": 1}),
        "does not exist",
    ),
    ("bad device name", None, spec("a", params={"device": "tpu"}), "device"),
    ("metric never reported", None, spec("a", metric="accuracy_of_dreams"), "metric"),
    ("unknown dataset", None, spec("a", params={"dataset": "cifar"}), "dataset"),
    (
        "grid of 1001 values",
        None,
        {**spec("a"), "search_space": {"seed": {"type": "grid", "values": list(range(1001))}}},
        "search_space.seed",
    ),
    ("params not a mapping", None, {**spec("a"), "params": [1, 2]}, "params"),
    ("search_space not a mapping", None, {**spec("a"), "search_space": "seed"}, "search_space"),
    (
        "dimension without type",
        None,
        {**spec("a"), "search_space": {"seed": {"values": [1]}}},
        "search_space.seed",
    ),
    ("name too long", None, spec("n" * 81), "name"),
]

MALFORMED_ALL = MALFORMED + BODIES + SPEC_CASES + _bound_cases()
