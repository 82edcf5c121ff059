"""``dlab status`` states a sweep's time left as the web page does: minutes below 90 minutes,
hours from there on."""

from __future__ import annotations

import pytest

from dlab.service_commands import time_left


@pytest.mark.parametrize(("seconds", "text"), [
    (0, "1 minute"), (29, "1 minute"), (100, "2 minutes"), (150, "3 minutes"), (5399, "90 minutes"),
    (5400, "1.5 hours"), (8640, "2.4 hours"),
])
def test_time_left_is_minutes_below_ninety_then_hours(seconds: float, text: str) -> None:
    assert time_left(seconds) == text
