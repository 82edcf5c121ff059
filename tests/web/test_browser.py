"""The web page in a real browser: headless Debian Chromium (``make browser``) driven by
Playwright, against the real API process (uvicorn, its embedded Ray head, a real MLflow store)
on loopback. The tests run in file order on one page, as a user would: sign in, a bad spec,
a tiny sweep submitted and watched to its end, its figure, the list, a second sweep cancelled,
Swagger UI. Each page's screenshot is saved under ``tests/artifacts/web/`` (DLAB_TEST_ARTIFACTS)."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import httpx
import pytest
import yaml
from playwright.sync_api import Page, sync_playwright

from service.local_stack import ApiProcess
from tests.service.served import served_stack
from tests.waiting import wait_for

pytestmark = pytest.mark.integration

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(os.environ.get("DLAB_TEST_ARTIFACTS", Path(__file__).parents[1] / "artifacts")) / "web"
CHROMIUM_ARGS = [  # root needs --no-sandbox; the rest keeps Chromium off the (closed) network
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-default-apps", "--disable-extensions",
]
TINY = {"num_tasks": 2, "hidden_sizes": [16, 16], "epochs": 1, "batch_size": 128, "kw_percent_on": 0.25}


def spec_yaml(name: str, segments: list[int], max_concurrent_trials: int | None = None, **params) -> str:
    body = {"name": name, "benchmark": "permuted_digits", "params": {**TINY, **params},
            "search_space": {"num_segments": {"type": "grid", "values": segments}}, "resources": {"cpu": 1}}
    if max_concurrent_trials is not None:
        body["max_concurrent_trials"] = max_concurrent_trials
    return yaml.safe_dump(body, sort_keys=False)


BAD_SPEC = spec_yaml("bad-spec", [1, 2], kw_percent_on=1.5)


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    env = {"DLAB_POLL_INTERVAL_S": "0.5", "DLAB_MAX_TRIAL_COST": "1e11"}
    with served_stack(tmp_path_factory.mktemp("web-home"), env) as process:
        yield process


@pytest.fixture(scope="module")
def browser_page(api, tmp_path_factory):
    """One Chromium tab (a fresh profile) for the module, with every request and console message
    it sees recorded."""
    if not CHROMIUM.exists():
        pytest.fail("Debian's chromium is not installed: run `make browser` (as root)")
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    ARTIFACTS.mkdir(parents=True)
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            tmp_path_factory.mktemp("chromium-profile"), executable_path=str(CHROMIUM), headless=True,
            args=CHROMIUM_ARGS, viewport={"width": 1366, "height": 900})
        page = context.pages[0] if context.pages else context.new_page()
        page.requests, page.console = [], []
        page.on("request", lambda request: page.requests.append(request.url))
        page.on("console", lambda message: page.console.append(message.text))
        page.set_default_timeout(30_000)
        yield page
        context.close()


@pytest.fixture
def page(browser_page: Page, api) -> Page:
    """The module's tab; after each test: no request left the service's origin and the content
    security policy blocked nothing."""
    yield browser_page
    foreign = [url for url in browser_page.requests if not url.startswith((api.url + "/", "blob:", "data:"))]
    assert not foreign, foreign
    blocked = [text for text in browser_page.console if "Content Security Policy" in text]
    assert not blocked, blocked


def until(api: ApiProcess, predicate, what: str, timeout_s: float = 60.0):
    """wait_for ``predicate``, failing at once if the API process has exited (a page's own
    reaction gets a minute; waits on a sweep say longer)."""
    def check():
        if api.process.poll() is not None:
            raise RuntimeError(f"the API server exited ({api.process.returncode}); see {api.log_path}")
        return predicate()
    return wait_for(check, timeout_s=timeout_s, what=what, interval_s=0.25)


def shot(page: Page, name: str) -> None:
    page.screenshot(path=ARTIFACTS / f"{name}.png", full_page=True)


def text(page: Page, selector: str) -> str:
    return page.locator(selector).inner_text()


def submit_spec(page: Page, api: ApiProcess, spec: str, button: str) -> None:
    page.goto(f"{api.url}/#/submit")
    page.get_by_label("Sweep spec (YAML or JSON)").fill(spec)
    page.get_by_role("button", name=button, exact=True).click()


def test_sign_in_keeps_the_token_in_session_storage_only(page, api):
    page.goto(f"{api.url}/")
    assert page.get_by_role("heading", name="Sign in").is_visible()
    assert not page.get_by_role("navigation").is_visible()  # nothing to navigate before signing in
    shot(page, "01-sign-in")
    page.get_by_label("API token").fill("wrong-token")
    page.get_by_label("API token").press("Enter")  # keyboard: the form submits on Enter
    until(api, lambda: "refused" in text(page, "#signin-error"), "the wrong token refused")
    page.get_by_label("API token").fill(api.token())
    page.get_by_role("button", name="Sign in").click()
    until(api, lambda: page.locator("#view-list").is_visible(), "the sweeps list")
    until(api, lambda: page.locator("#list-empty").is_visible(), "the empty list")
    shot(page, "02-sweeps-empty")
    assert page.evaluate("sessionStorage.getItem('dlab.token')") == api.token()
    assert page.context.cookies() == []
    assert all(api.token() not in url for url in page.requests)


def test_a_bad_spec_shows_its_error_at_the_field(page, api):
    submit_spec(page, api, BAD_SPEC, "Dry run")
    error = page.locator('#spec-annotated .line-error[data-field="params.kw_percent_on"]')
    until(api, error.is_visible, "the field's error in the annotated spec")
    assert "less than or equal to 1" in error.inner_text()
    # the error sits right under the spec line that holds the field
    line = error.locator("xpath=preceding-sibling::li[1]")
    assert "kw_percent_on: 1.5" in line.inner_text() and "has-error" in line.get_attribute("class")
    assert page.get_by_label("Sweep spec (YAML or JSON)").get_attribute("aria-invalid") == "true"
    summary = page.get_by_role("button", name="params.kw_percent_on (line")
    summary.click()  # selects the field's line in the text area
    selected = page.evaluate("(() => { const a = document.querySelector('#spec');"
                             " return a.value.slice(a.selectionStart, a.selectionEnd); })()")
    assert selected.strip() == "kw_percent_on: 1.5"
    shot(page, "03-submit-validation-error")


def sweep_status(api: ApiProcess, sweep_id: str) -> str:
    answer = httpx.get(f"{api.url}/api/v1/sweeps/{sweep_id}", timeout=30,
                       headers={"Authorization": f"Bearer {api.token()}"})
    return answer.json()["status"]


def test_a_tiny_sweep_dry_run_submit_and_live_finish(page, api, tmp_path):
    spec_file = tmp_path / "web-tiny.yaml"
    spec_file.write_text(spec_yaml("web-tiny", [1, 2]))
    page.goto(f"{api.url}/#/submit")
    page.get_by_label("Load a spec file").set_input_files(spec_file)  # uploaded, not pasted
    until(api, lambda: "web-tiny" in page.get_by_label("Sweep spec (YAML or JSON)").input_value(),
          "the uploaded spec in the text area")
    page.get_by_role("button", name="Dry run", exact=True).click()
    until(api, page.locator("#dry-run-result").is_visible, "the dry run's result")
    assert page.locator("#dry-run-table tbody tr").count() == 2
    assert "2 trial(s)" in text(page, "#dry-run-summary")
    assert page.locator("#spec-errors").inner_text() == ""
    shot(page, "04-submit-dry-run")

    page.get_by_role("button", name="Submit", exact=True).click()
    until(api, lambda: page.evaluate("location.hash").startswith("#/sweeps/"), "the sweep's page")
    until(api, lambda: text(page, "#sweep-title") == "web-tiny", "the sweep's title")
    page.evaluate("window.notReloaded = true")  # gone if anything reloads the page
    statuses = [text(page, "#sweep-status")]
    assert statuses[0] in ("queued", "running")

    sweep_id = page.evaluate("location.hash").removeprefix("#/sweeps/")
    ended_at = []

    def finished():
        status = text(page, "#sweep-status")
        if status != statuses[-1]:
            statuses.append(status)
        if status == "succeeded":
            return True
        # the page must show the end within a few poll intervals of the service knowing it
        if not ended_at and sweep_status(api, sweep_id) not in ("queued", "running"):
            ended_at.append(time.monotonic())
        assert not ended_at or time.monotonic() - ended_at[0] < 15, \
            f"the service reports {sweep_status(api, sweep_id)}; the page still shows {status}"
        return False

    until(api, finished, "the sweep to succeed on the page", timeout_s=600)
    assert page.evaluate("window.notReloaded") is True
    assert text(page, "#sweep-progress-text").startswith("2 of 2 trials ended")
    assert page.locator("#sweep-progress").evaluate("p => p.value") == 2
    events = page.locator("#events li strong").all_inner_texts()
    for name in ("sweep_status", "trial_started", "trial_finished", "sweep_finished"):
        assert name in events, events
    assert page.locator("#trials-table tbody tr").count() == 2
    assert page.locator("#trials-table .status-done").count() == 2
    assert text(page, "#sweep-best").startswith("mean_accuracy 0.")

    thumbnail = page.locator("#figures img").first
    until(api, lambda: thumbnail.count() and thumbnail.evaluate("i => i.complete && i.naturalWidth > 0"),
          "the report's first figure")
    assert thumbnail.get_attribute("src").startswith("blob:")
    shot(page, "05-sweep-succeeded")
    page.locator("#figures button").first.click()
    dialog = page.locator("#figure-dialog")
    until(api, dialog.is_visible, "the enlarged figure")
    assert page.locator("#figure-large").evaluate("i => i.complete && i.naturalWidth > 400")
    shot(page, "06-figure")
    page.keyboard.press("Escape")
    until(api, lambda: not dialog.is_visible(), "the figure closed with Escape")


def test_the_list_shows_progress_best_and_age_and_filters_by_status(page, api):
    page.goto(f"{api.url}/#/")
    row = page.locator("#sweeps-table tbody tr", has_text="web-tiny")
    until(api, lambda: row.count() == 1, "the sweep in the list")
    cells = row.locator("td").all_inner_texts()
    assert cells[1] == "succeeded" and cells[2].startswith("2 of 2 trials ended")
    assert cells[3].startswith("mean_accuracy 0.") and ("ago" in cells[4] or cells[4] == "now")
    shot(page, "07-sweeps-list")
    page.get_by_label("Status").select_option("running")
    until(api, lambda: row.count() == 0 and "running" in text(page, "#list-count"), "the filtered list")
    page.get_by_label("Status").select_option("succeeded")
    until(api, lambda: row.count() == 1, "the sweep back under its status")


def test_a_second_sweep_is_cancelled_after_a_confirmation(page, api):
    # two trials, one at a time: the second never starts
    submit_spec(page, api, spec_yaml("web-long", [3, 5], max_concurrent_trials=1, epochs=200, num_tasks=5),
                "Submit")
    until(api, lambda: text(page, "#sweep-title") == "web-long", "the second sweep's page")
    until(api, lambda: text(page, "#sweep-status") == "running", "the second sweep running", timeout_s=600)
    cancel = page.get_by_role("button", name="Cancel sweep…")
    cancel.focus()
    page.keyboard.press("Enter")  # by keyboard: the dialog opens with "Keep running" focused
    dialog = page.locator("#cancel-dialog")
    until(api, dialog.is_visible, "the confirmation")
    assert page.evaluate("document.activeElement.textContent") == "Keep running"
    shot(page, "08-cancel-confirmation")
    page.keyboard.press("Enter")  # the default answer keeps it running
    until(api, lambda: not dialog.is_visible(), "the confirmation closed")
    assert text(page, "#sweep-status") == "running"
    cancel.click()
    until(api, dialog.is_visible, "the confirmation again")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "confirm-cancel"
    page.keyboard.press("Enter")
    until(api, lambda: text(page, "#sweep-status") == "cancelled", "the sweep cancelled", timeout_s=120)
    assert not cancel.is_visible()
    # the trial that never started has ended too, as the list counts it
    until(api, lambda: text(page, "#sweep-progress-text").startswith("2 of 2 trials ended"),
          "both trials counted as ended")
    until(api, lambda: "has ended" in text(page, "#stream-state"), "the stream's sweep_finished")
    assert page.locator("#events li strong").first.inner_text() == "sweep_finished"
    shot(page, "09-sweep-cancelled")


def test_swagger_ui_renders_from_the_service_alone(page, api):
    page.goto(f"{api.url}/docs")
    title = page.locator(".swagger-ui .info .title")
    until(api, lambda: title.count() and "dendrite-lab" in title.inner_text(), "Swagger UI's title")
    until(api, lambda: page.locator(".opblock-summary-path", has_text="/api/v1/sweeps").count() > 0,
          "the operations listed")
    shot(page, "10-api-docs")
    document = json.loads(page.request.get(f"{api.url}/openapi.json").text())
    assert document["info"]["title"] == "dendrite-lab"
