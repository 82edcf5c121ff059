"""The submission body parser and spec validator, in-process: every malformed body is refused
with a message naming the field (the HTTP tests send a sample of these over the wire)."""

from __future__ import annotations

import json

import pytest
from fastapi import HTTPException
from fastapi.exceptions import RequestValidationError

from service.spec_body import parse_body, validate_spec
from tests.service.specs import MALFORMED_ALL, spec


def submit_in_process(body, media: str | None):
    raw = json.dumps(body).encode() if media is None else body
    return validate_spec(parse_body(raw, media or "application/json"))


def test_the_corpus_has_at_least_80_cases():
    assert len(MALFORMED_ALL) >= 80


@pytest.mark.parametrize(("case", "media", "body", "field"), MALFORMED_ALL, ids=[m[0] for m in MALFORMED_ALL])
def test_malformed_specs_are_rejected_naming_the_field(case, media, body, field):
    with pytest.raises(RequestValidationError) as info:
        submit_in_process(body, media)
    messages = " | ".join(item["msg"] for item in info.value.errors())
    assert field in messages, messages


def test_a_valid_spec_passes_and_other_media_types_are_415():
    assert submit_in_process(spec("ok"), None).name == "ok"
    assert submit_in_process(b"name: ok\nbenchmark: permuted_digits\n", "application/yaml").name == "ok"
    with pytest.raises(HTTPException) as info:
        parse_body(b"<spec/>", "application/xml")
    assert info.value.status_code == 415
