// The dendrite-lab page: sign in, the sweeps list, a sweep's live page, submit. Hash routes
// (#/, #/sweeps/<id>, #/submit); every API call carries the bearer token (see api.js).

import { ApiError, getJson, imageUrl, request, setUnauthorizedHandler, sweepEvents, token } from "./api.js";
import { fieldError, fieldLine } from "./spec_errors.js";

const $ = (selector) => document.querySelector(selector);
const VIEWS = ["signin", "list", "sweep", "submit"];
const TERMINAL_TRIALS = new Set(["done", "failed", "cancelled"]);
const ACTIVE_SWEEPS = new Set(["queued", "running"]);
const LIST_LIMIT = 25;
const LIST_REFRESH_MS = 5000;

let leaveView = () => {};  // stops what the current view runs (a stream, a refresh timer)

/** An element with text content (never HTML) and attributes. */
function el(tag, text, attrs = {}) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, value);
  return node;
}

function row(...cells) {
  const tr = el("tr");
  for (const cell of cells) {
    const td = el("td");
    td.append(cell instanceof Node ? cell : document.createTextNode(cell ?? ""));
    tr.append(td);
  }
  return tr;
}

function statusBadge(status) {
  return el("span", status, { class: `status status-${status}` });
}

const number = (value) => {
  if (!Number.isFinite(value)) return "—";
  return Number.isInteger(value) && Math.abs(value) < 1e6 ? String(value) : Number(value).toPrecision(4);
};
const since = new Intl.RelativeTimeFormat("en", { numeric: "auto" });

function age(iso) {
  const seconds = (Date.parse(iso) - Date.now()) / 1000;
  for (const [unit, size] of [["day", 86400], ["hour", 3600], ["minute", 60]]) {
    if (Math.abs(seconds) >= size) return since.format(Math.round(seconds / size), unit);
  }
  return since.format(Math.round(seconds), "second");
}

/** ", about 3.2 hours left" from a sweep's estimate (empty when it has none). */
function timeLeft(detail) {
  const seconds = detail.estimated_time_left_s;
  if (seconds === null || seconds === undefined) return "";
  const minutes = Math.max(1, Math.round(seconds / 60));
  const text = seconds >= 5400 ? `${(seconds / 3600).toFixed(1)} hours`
    : `${minutes} minute${minutes === 1 ? "" : "s"}`;
  return `, about ${text} left`;  // dlab status says it the same way (dlab/service_commands.py)
}

const compact = (object) => Object.entries(object ?? {}).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(", ");

function notice(text) {
  const box = $("#notice");
  box.textContent = text ?? "";
  box.hidden = !text;
}

function show(view, title) {
  for (const name of VIEWS) $(`#view-${name}`).hidden = name !== view;
  $("#nav").hidden = view === "signin";
  document.title = title ? `${title} · dendrite-lab` : "dendrite-lab";
}

function message(err) {
  if (err instanceof ApiError && Array.isArray(err.detail)) return err.detail.map((e) => e.msg).join("; ");
  return err instanceof Error ? err.message : String(err);
}

// --- sign in -------------------------------------------------------------------------------

function showSignIn(reason) {
  show("signin", "Sign in");
  $("#signin-error").textContent = reason ?? "";
  $("#token").focus();
}

async function signIn(event) {
  event.preventDefault();
  const given = $("#token").value.trim();
  token.set(given);
  try {
    await request("/sweeps?limit=1");
  } catch (err) {
    token.clear();
    $("#signin-error").textContent = err instanceof ApiError && err.status === 401
      ? "The service refused this token." : `Cannot reach the service: ${message(err)}`;
    return;
  }
  $("#token").value = "";
  if (!location.hash || location.hash === "#/signin") location.hash = "#/";
  else route();
}

// --- sweeps list ---------------------------------------------------------------------------

/** Trials the service counts as ended (run to an end, or never started in an ended sweep). */
function endedTrials(detail) {
  const t = detail.trials;
  return t.done + t.failed + t.cancelled + t.never_started;
}

/** "N of M trials ended, K running, about T left": one wording for the list and the sweep page. */
function progressText(detail, ended = endedTrials(detail), running = detail.trials.running) {
  return `${ended} of ${detail.expected_trials} trials ended` + (running ? `, ${running} running` : "") +
    timeLeft(detail);
}

async function renderList() {
  const filter = $("#status-filter").value;
  const query = new URLSearchParams({ limit: String(LIST_LIMIT) });
  if (filter) query.set("status", filter);
  const page = await getJson(`/sweeps?${query}`);
  const details = await Promise.all(page.items.map((s) => getJson(`/sweeps/${encodeURIComponent(s.id)}`)
    .catch(() => null)));
  const body = $("#sweeps-table tbody");
  body.replaceChildren(...page.items.map((sweep, index) => {
    const detail = details[index];
    const link = el("a", sweep.name, { href: `#/sweeps/${encodeURIComponent(sweep.id)}` });
    const best = detail?.best ? `${detail.best.metric} ${number(detail.best.value)}` : "—";
    const time = el("time", age(sweep.created_at), { datetime: sweep.created_at, title: sweep.created_at });
    return row(link, statusBadge(sweep.status), detail ? progressText(detail) : "", best, time);
  }));
  $("#sweeps-table").hidden = page.items.length === 0;
  $("#list-empty").hidden = page.items.length !== 0;
  const shown = page.items.length < page.total ? `${page.items.length} of ${page.total}` : `${page.total}`;
  $("#list-count").textContent = `${shown} sweep${page.total === 1 ? "" : "s"}${filter ? ` ${filter}` : ""}`;
}

function showList() {
  show("list", "Sweeps");
  const refresh = () => renderList().catch((err) => notice(`Could not load the sweeps: ${message(err)}`));
  refresh();
  const timer = setInterval(refresh, LIST_REFRESH_MS);
  $("#status-filter").onchange = refresh;
  $("#refresh").onclick = refresh;
  return () => clearInterval(timer);
}

// --- one sweep -----------------------------------------------------------------------------

class SweepPage {
  constructor(sweepId) {
    this.id = sweepId;
    this.path = `/sweeps/${encodeURIComponent(sweepId)}`;
    this.trials = new Map();
    this.abort = new AbortController();
    this.objectUrls = [];
  }

  stop() {
    this.abort.abort();
    for (const url of this.objectUrls) URL.revokeObjectURL(url);
  }

  async open() {
    show("sweep", "Sweep");
    for (const id of ["#trials-table tbody", "#events", "#figures", "#report-table-wrap"]) {
      $(id).replaceChildren();
    }
    $("#report-note").textContent = "The report appears when the sweep has results.";
    $("#sweep-error").hidden = true;
    $("#stream-state").textContent = "";
    const detail = await getJson(this.path);
    this.detail = detail;
    $("#sweep-title").textContent = detail.name;
    document.title = `${detail.name} · dendrite-lab`;
    $("#sweep-benchmark").textContent = detail.benchmark;
    const created = el("time", age(detail.created_at), { datetime: detail.created_at, title: detail.created_at });
    $("#sweep-created").replaceChildren(created);
    for (const trial of await getJson(`${this.path}/trials`)) this.trials.set(trial.trial_id, trial);
    this.render();
    $("#cancel-sweep").onclick = () => this.confirmCancel();
    if (ACTIVE_SWEEPS.has(detail.status)) this.watch();
    else this.loadReport();
  }

  render() {
    const d = this.detail;
    $("#sweep-status").replaceChildren(statusBadge(d.status));
    const ended = [...this.trials.values()].filter((t) => TERMINAL_TRIALS.has(t.status)).length;
    const running = [...this.trials.values()].filter((t) => t.status === "running").length;
    const done = Math.max(ended, endedTrials(d));
    const progress = $("#sweep-progress");
    progress.max = d.expected_trials || 1;
    progress.value = done;
    $("#sweep-progress-text").textContent = progressText(d, done, running);
    $("#sweep-best").textContent = this.best();
    $("#cancel-sweep").hidden = !ACTIVE_SWEEPS.has(d.status);
    $("#sweep-error").hidden = !d.error;
    $("#sweep-error").textContent = d.error ?? "";
    this.renderMlflow();
    $("#trials-table tbody").replaceChildren(...[...this.trials.values()].map((t) => row(
      t.trial_id, statusBadge(t.status), this.config(t.config), this.metrics(t.metrics), this.runLink(t.run_id))));
  }

  /** The searched values of a trial's config, the whole config behind a disclosure. */
  config(config) {
    const searched = Object.keys(this.detail.spec?.search_space ?? {});
    const cell = el("div");
    cell.append(el("span", compact(Object.fromEntries(searched.map((k) => [k, config[k]])))));
    const all = el("details");
    all.append(el("summary", "full config"), el("p", compact(config), { class: "small" }));
    cell.append(all);
    return cell;
  }

  /** The sweep's metric first, then the rest behind a disclosure. */
  metrics(metrics) {
    const { metric } = this.detail;
    const cell = el("div");
    cell.append(el("span", metric in metrics ? `${metric} ${number(metrics[metric])}` : "—"));
    const rest = Object.entries(metrics).filter(([k]) => k !== metric);
    if (rest.length) {
      const all = el("details");
      all.append(el("summary", `${rest.length} more`), el("p", rest.map(([k, v]) => `${k} ${number(v)}`).join(", "),
        { class: "small" }));
      cell.append(all);
    }
    return cell;
  }

  best() {
    const { metric, mode } = this.detail;
    let best = this.detail.best ? this.detail.best.value : null;
    for (const trial of this.trials.values()) {
      const value = trial.metrics[metric];
      if (Number.isFinite(value) && (best === null || (mode === "max" ? value > best : value < best))) best = value;
    }
    return best === null ? `${metric}: no report yet` : `${metric} ${number(best)} (${mode})`;
  }

  mlflowUrl(runId) {
    const { mlflow_tracking_uri: ui, mlflow_experiment_id: experiment } = this.detail;
    if (!ui || !experiment) return null;
    const page = `${ui.replace(/\/$/, "")}/#/experiments/${encodeURIComponent(experiment)}/runs`;
    return runId ? `${page}/${encodeURIComponent(runId)}` : page;
  }

  runLink(runId) {
    const url = this.mlflowUrl(runId);
    return url ? el("a", runId, { href: url, rel: "noreferrer", target: "_blank" }) : el("code", runId);
  }

  renderMlflow() {
    const d = this.detail;
    const box = $("#sweep-mlflow");
    const links = [["experiment", d.links.mlflow_experiment], ["parent run", d.links.mlflow_run]]
      .filter(([, url]) => url).map(([text, url]) => el("a", text, { href: url, rel: "noreferrer", target: "_blank" }));
    if (links.length) box.replaceChildren(...links.flatMap((a, i) => (i ? [" · ", a] : [a])));
    else if (d.mlflow_experiment_id) {
      box.textContent = `experiment ${d.mlflow_experiment_id}, parent run ${d.mlflow_parent_run_id ?? "—"} ` +
        "(the service's local store: no MLflow UI)";
    } else box.textContent = "—";
  }

  logEvent(event) {
    const d = event.data;
    const what = d.trial_id ? `${d.trial_id} ${d.status}` : d.status ?? "";
    const item = el("li", null, { class: `event event-${event.event}` });
    item.append(el("time", new Date().toLocaleTimeString()), " ", el("strong", event.event), ` ${what}`);
    $("#events").prepend(item);
  }

  async watch() {
    $("#stream-state").textContent = "Live: following the sweep's event stream.";
    for (let attempt = 0; attempt < 5 && !this.abort.signal.aborted; attempt += 1) {
      try {
        for await (const event of sweepEvents(this.id, this.abort.signal)) {
          attempt = 0;
          this.apply(event);
          if (event.event === "sweep_finished") {
            $("#stream-state").textContent = "The sweep has ended; the stream is closed.";
            this.loadReport();
            return;
          }
        }
      } catch (err) {
        if (this.abort.signal.aborted) return;
        if (err instanceof ApiError && err.status < 500) break;
      }
      $("#stream-state").textContent = "The event stream dropped; reconnecting…";
      await new Promise((resolve) => setTimeout(resolve, 2000));
    }
    if (!this.abort.signal.aborted) $("#stream-state").textContent = "The event stream is unavailable; reload the page.";
  }

  apply(event) {
    const data = event.data;
    this.logEvent(event);
    if (event.event === "sweep_status") this.detail = { ...this.detail, status: data.status, trials: data.trials };
    else if (event.event === "sweep_finished") this.detail = data;
    else if (event.event.startsWith("trial_")) {
      this.trials.set(data.trial_id, data);
      this.refreshEstimate();
    }
    this.render();
  }

  /** The time-left estimate moves with every trial report: read it again (at most every 5 s). */
  async refreshEstimate() {
    if (Date.now() - (this.estimateRead ?? 0) < 5000) return;
    this.estimateRead = Date.now();
    try {
      const detail = await getJson(this.path);
      this.detail = { ...this.detail, estimated_time_left_s: detail.estimated_time_left_s };
      this.render();
    } catch {
      // the estimate is a nicety: the next report reads it again
    }
  }

  async loadReport() {
    let report;
    try {
      report = await getJson(`${this.path}/report`);
    } catch (err) {
      $("#report-note").textContent = err instanceof ApiError && err.status === 409
        ? "No report: the sweep has no results." : `The report could not be loaded: ${message(err)}`;
      return;
    }
    $("#report-note").textContent = `${report.figure_urls.length} figure(s). Select one to enlarge it.`;
    this.renderTable(report);
    const figures = await Promise.all(report.figure_urls.map(async (url) => {
      const name = decodeURIComponent(url.split("/").pop().replace(/\.png$/, ""));
      const src = await imageUrl(url);
      this.objectUrls.push(src);
      const button = el("button", null, { type: "button", class: "figure", "aria-label": `Enlarge ${name}` });
      button.append(el("img", null, { src, alt: name }), el("span", name));
      button.onclick = () => openFigure(name, src);
      const item = el("li");
      item.append(button);
      return item;
    }));
    $("#figures").replaceChildren(...figures);
  }

  renderTable(report) {
    const rows = report.rows ?? [];
    if (!Array.isArray(rows) || !rows.length) return;
    const columns = Object.keys(rows[0]);
    const table = el("table", null, { class: "report" });
    const head = el("tr");
    for (const column of columns) head.append(el("th", column, { scope: "col" }));
    table.append(el("thead"), el("tbody"));
    table.tHead.append(head);
    for (const r of rows) {
      table.tBodies[0].append(row(...columns.map((c) => (typeof r[c] === "number" || r[c] === null ? number(r[c])
        : JSON.stringify(r[c])))));
    }
    $("#report-table-wrap").replaceChildren(table);  // scrolls sideways when wide (style.css)
  }

  confirmCancel() {
    const dialog = $("#cancel-dialog");
    dialog.returnValue = "";
    dialog.onclose = async () => {
      if (dialog.returnValue !== "cancel") return;
      $("#cancel-sweep").disabled = true;
      try {
        this.detail = await getJson(`${this.path}/cancel`, { method: "POST" });
        this.render();
      } catch (err) {
        notice(`Could not cancel: ${message(err)}`);
      } finally {
        $("#cancel-sweep").disabled = false;
      }
    };
    dialog.showModal();
  }
}

function openFigure(name, src) {
  $("#figure-dialog-title").textContent = name;
  $("#figure-large").src = src;
  $("#figure-large").alt = name;
  $("#figure-dialog").showModal();
}

function showSweep(sweepId) {
  const page = new SweepPage(sweepId);
  page.open().catch((err) => {
    notice(err instanceof ApiError && err.status === 404 ? "No such sweep." : `Could not load the sweep: ${message(err)}`);
  });
  return () => page.stop();
}

// --- submit --------------------------------------------------------------------------------

const mediaType = (text) => (/^\s*[{[]/.test(text) ? "application/json" : "application/yaml");

function clearSpecErrors() {
  $("#spec-errors").replaceChildren();
  $("#spec-annotated").replaceChildren();
  $("#spec-annotated").hidden = true;
  $("#spec").removeAttribute("aria-invalid");
}

/** Each error of a 422 listed at the line of the spec that holds the field it names. */
function showSpecErrors(errors) {
  const text = $("#spec").value;
  const lines = text.split("\n");
  const placed = errors.map((error) => fieldError(error)).map((e) => ({ ...e, line: fieldLine(lines, e.path) }));
  $("#spec").setAttribute("aria-invalid", "true");
  const summary = el("div", null, { class: "error-summary" });
  summary.append(el("h2", `The spec has ${errors.length} error${errors.length === 1 ? "" : "s"}`));
  const list = el("ul");
  for (const { text: what, path, line } of placed) {
    const item = el("li", null, { class: "field-error" });
    const field = path.length ? path.join(".") : "spec";
    const go = el("button", line >= 0 ? `${field} (line ${line + 1})` : field, { type: "button", class: "link" });
    go.onclick = () => selectLine(lines, line);
    item.append(go, `: ${what}`);
    list.append(item);
  }
  summary.append(list);
  $("#spec-errors").replaceChildren(summary);
  const annotated = $("#spec-annotated");
  lines.forEach((textLine, index) => {
    const here = placed.filter((p) => p.line === index);
    annotated.append(el("li", textLine || " ", { class: here.length ? "line has-error" : "line", value: String(index + 1) }));
    for (const { text: what, path } of here) {
      annotated.append(el("li", `↑ ${path.join(".")}: ${what}`, { class: "line-error", "data-field": path.join(".") }));
    }
  });
  for (const { text: what, path } of placed.filter((p) => p.line < 0)) {
    annotated.prepend(el("li", `${path.join(".") || "spec"}: ${what}`, { class: "line-error" }));
  }
  annotated.hidden = false;
}

function selectLine(lines, line) {
  const area = $("#spec");
  if (line < 0) return area.focus();
  const start = lines.slice(0, line).reduce((sum, l) => sum + l.length + 1, 0);
  area.focus();
  area.setSelectionRange(start, start + lines[line].length);
}

function showDryRun(result) {
  $("#dry-run-summary").textContent = `${result.name} (${result.benchmark}): ${result.expected_trials} trial(s); ` +
    `cost ${number(result.total_cost)} of the sweep budget ${number(result.sweep_budget)}, costliest trial ` +
    `${number(result.max_trial_cost)} of ${number(result.trial_budget)} (parameter-sample passes).`;
  $("#dry-run-table tbody").replaceChildren(...result.trials.map((t, index) =>
    row(String(index + 1), compact(t.config), String(t.samples), number(t.cost))));
  $("#dry-run-result").hidden = false;
}

async function submitSpec(event) {
  event.preventDefault();
  const dryRun = event.submitter?.value === "dry-run";
  const text = $("#spec").value;
  clearSpecErrors();
  $("#dry-run-result").hidden = true;
  for (const button of $("#submit-form").querySelectorAll("button")) button.disabled = true;
  try {
    const response = await request(`/sweeps${dryRun ? "?dry_run=true" : ""}`,
      { method: "POST", body: text, contentType: mediaType(text) });
    const body = await response.json();
    if (dryRun) showDryRun(body);
    else location.hash = `#/sweeps/${encodeURIComponent(body.id)}`;
  } catch (err) {
    if (err instanceof ApiError && err.status === 422 && Array.isArray(err.detail)) showSpecErrors(err.detail);
    else $("#spec-errors").replaceChildren(el("p", message(err), { class: "error" }));
  } finally {
    for (const button of $("#submit-form").querySelectorAll("button")) button.disabled = false;
  }
}

async function loadFile() {
  const file = $("#spec-file").files[0];
  if (!file) return;
  $("#spec").value = await file.text();
  clearSpecErrors();
}

function showSubmit() {
  show("submit", "Submit a sweep");
  return () => {};
}

// --- routing -------------------------------------------------------------------------------

function route() {
  leaveView();
  leaveView = () => {};
  notice(null);
  if (!token.get()) return showSignIn();
  const hash = location.hash.replace(/^#/, "") || "/";
  const sweep = hash.match(/^\/sweeps\/([^/]+)$/);
  if (sweep) leaveView = showSweep(decodeURIComponent(sweep[1]));
  else if (hash === "/submit") leaveView = showSubmit();
  else leaveView = showList();
}

setUnauthorizedHandler(() => {
  token.clear();
  leaveView();
  leaveView = () => {};
  showSignIn("The service refused the token; sign in again.");
});
$("#signin-form").addEventListener("submit", signIn);
$("#submit-form").addEventListener("submit", submitSpec);
$("#spec-file").addEventListener("change", loadFile);
$("#sign-out").addEventListener("click", () => {
  token.clear();
  route();
});
window.addEventListener("hashchange", route);
route();
