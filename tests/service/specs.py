"""Sweep specs shared by the service tests: a tiny valid one, and malformed bodies with the field
each one's 422 must name."""

from __future__ import annotations

TINY = {"num_tasks": 2, "hidden_sizes": [16, 16], "epochs": 1, "batch_size": 128, "kw_percent_on": 0.25}


def spec(name: str, segments=(1, 3), seeds=(0,), **changes) -> dict:
    return {"name": name, "benchmark": "permuted_digits", "params": {**TINY, **changes.pop("params", {})},
            "search_space": {"num_segments": {"type": "grid", "values": list(segments)},
                             "seed": {"type": "grid", "values": list(seeds)}},
            "resources": {"cpu": 1}, **changes}


MALFORMED = [
    ("not json", "application/json", b"{name: oops", "not valid JSON"),
    ("yaml alias", "application/yaml", b"a: &x [1]\nb: *x\n", "aliases are not accepted"),
    ("yaml object tag", "application/yaml", b"name: !!python/object:os.system x\n", "YAML"),
    ("not a mapping", "application/json", b"[1, 2]", "must be a JSON/YAML object"),
    ("missing name", None, {k: v for k, v in spec("a").items() if k != "name"}, "name"),
    ("bad name", None, spec("no spaces allowed"), "name"),
    ("unknown benchmark", None, spec("a", benchmark="cifar"), "benchmark"),
    ("unknown top-level key", None, {**spec("a"), "segmnets": 3}, "segmnets"),
    ("unknown parameter", None, spec("a", params={"segments": 3}), "segments"),
    ("negative segments", None, spec("a", segments=(-1, 2)), "search_space.num_segments"),
    ("percent_on above 1", None, spec("a", params={"kw_percent_on": 1.5}), "kw_percent_on"),
    ("fixed and searched", None, spec("a", params={"num_segments": 2}), "both fixed and searched"),
    ("unknown dimension type", None, {**spec("a"), "search_space": {"seed": {"type": "normal"}}},
     "search_space.seed"),
    ("uniform low >= high", None,
     {**spec("a"), "search_space": {"kw_percent_on": {"type": "uniform", "low": 0.5, "high": 0.1}}},
     "search_space.kw_percent_on"),
    ("loguniform low <= 0", None,
     {**spec("a"), "search_space": {"kw_percent_on": {"type": "loguniform", "low": 0, "high": 0.1}}},
     "search_space.kw_percent_on"),
    ("zero samples", None, spec("a", num_samples=0), "num_samples"),
    ("negative cpu", None, spec("a", resources={"cpu": -1}), "resources.cpu"),
    ("bad mode", None, spec("a", mode="maximise"), "mode"),
    ("bad scheduler", None, spec("a", scheduler="hyperband"), "scheduler"),
    ("empty grid", None, {**spec("a"), "search_space": {"seed": {"type": "grid", "values": []}}},
     "search_space.seed"),
]
