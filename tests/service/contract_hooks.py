"""Schemathesis hooks for the contract test (``SCHEMATHESIS_HOOKS``): in the stateful phase, a
generated submission becomes the ``smoke`` example under the generated name and mode, so that
sweeps are accepted within the test service's cost budget and schemathesis follows the links from
the submission to the sweep's operations. The other phases send bodies as generated."""

from __future__ import annotations

from pathlib import Path

import schemathesis
import yaml

SMOKE = yaml.safe_load((Path(__file__).resolve().parents[2] / "sweeps/examples/smoke.yaml").read_text())


@schemathesis.hook
def before_call(context, case, **_kwargs) -> None:
    meta = case.meta
    if (context.operation is None or context.operation.label != "POST /api/v1/sweeps" or meta is None
            or meta.phase.name != "stateful" or not meta.generation.mode.is_positive
            or not isinstance(case.body, dict)):
        return
    case.body = {**SMOKE, "name": case.body.get("name", SMOKE["name"]), "mode": case.body.get("mode", "max")}
