// The dashboard: freshness, the operations view (/api/runs), the result charts of a chosen date (/api/dashboard),
// and the user and film look-ups. While the warehouse is down it says so, keeps what it shows and retries by itself.
"use strict";

const PLOT_CONFIG = { displayModeBar: false, responsive: true };
const LAYOUT = { margin: { t: 10, r: 60, b: 50, l: 70 }, legend: { orientation: "h", y: -0.2 } };
// How often a page left open reads the warehouse again: every minute, or every ?refresh=N seconds (2 at least).
const REFRESH_S = Math.max(2, Number(new URLSearchParams(window.location.search).get("refresh")) || 60);
const RETRY_S = 5; // while the warehouse is down, unless the server's Retry-After says otherwise
const DAYS = 30;
const FIELDS = { user_id: "user id", film_id: "film id", threshold: "rated above", date: "date", title: "title" };

// An answer other than 2xx, or no answer: its message is meant for people, `unavailable` means try again later.
class ApiError extends Error {
  constructor(message, status, retryAfter) {
    super(message);
    this.status = status;
    this.unavailable = status === 0 || status === 503 || status === 502 || status === 504;
    this.retryAfter = retryAfter;
  }
}

// A 422's detail is a list of {loc, msg}: "user id: Input should be a valid integer".
function readable(detail, fallback) {
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail)) {
    return detail.map((problem) => {
      const field = (problem.loc || []).slice(-1)[0];
      const msg = String(problem.msg || "not valid").replace(/^Value error, /, "");
      return field === undefined ? msg : `${FIELDS[field] || field}: ${msg}`;
    }).join("; ");
  }
  return fallback;
}

async function getJSON(url) {
  let response;
  try {
    response = await fetch(url, { headers: { Accept: "application/json" } });
  } catch {
    throw new ApiError("the dashboard's server does not answer", 0, RETRY_S);
  }
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    const retry = Number(response.headers.get("Retry-After")) || RETRY_S;
    throw new ApiError(readable(body.detail, response.statusText || `error ${response.status}`), response.status, retry);
  }
  return body;
}

function message(id, text, isError) {
  const element = document.getElementById(id);
  element.textContent = text;
  element.classList.toggle("error", Boolean(isError));
}

// Plotly reads a few HTML tags in labels (<b>, <br>): titles are data, shown as they are.
function plain(text) {
  return String(text).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

function localTime(iso) {
  if (!iso) return "";
  return new Date(iso).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

function age(seconds) {
  if (seconds === null || seconds === undefined) return "";
  if (seconds < 90) return "just now";
  if (seconds < 5400) return `${Math.round(seconds / 60)} min ago`;
  if (seconds < 172800) return `${(seconds / 3600).toFixed(1)} h ago`;
  return `${Math.round(seconds / 86400)} days ago`;
}

function count(value) {
  return value === null || value === undefined ? "not recorded" : Number(value).toLocaleString("en-US");
}

function share(value) {
  return value === null || value === undefined ? "not recorded" : `${(100 * value).toFixed(2)} %`;
}

function seconds(value) {
  return value === null || value === undefined ? "not recorded" : `${Number(value).toFixed(1)} s`;
}

function element(tag, text, className) {
  const made = document.createElement(tag);
  if (text !== undefined) made.textContent = text;
  if (className) made.className = className;
  return made;
}

// --- freshness and the warehouse's state -------------------------------------------------------------------------

function showFreshness(health) {
  const list = document.getElementById("freshness");
  list.replaceChildren(...health.pipelines.map((pipeline) => {
    const item = element("li");
    item.dataset.pipeline = pipeline.pipeline;
    item.dataset.state = pipeline.state;
    item.title = pipeline.detail;
    const loaded = pipeline.newest_date
      ? `newest ${pipeline.newest_date}, loaded ${localTime(pipeline.loaded_at)} (${age(pipeline.age_s)})`
      : "nothing loaded yet";
    item.append(element("span", pipeline.state, `badge ${pipeline.state}`), `${pipeline.pipeline}: ${loaded}`);
    return item;
  }));
  message("status", `Checked ${localTime(health.checked_at)}; yesterday's loads are due by ` +
    health.pipelines.map((p) => `${p.expected_by} UTC (${p.pipeline})`).join(", "));
}

function warehouseDown(error) {
  document.body.dataset.warehouse = "down";
  const banner = document.getElementById("banner");
  const shown = document.body.dataset.charts === "ready" ? " The page keeps showing what it read last." : "";
  banner.textContent = `The warehouse cannot answer now: ${error.message}. Retrying every ${error.retryAfter} s.${shown}`;
  banner.hidden = false;
}

function warehouseUp() {
  document.body.dataset.warehouse = "up";
  document.getElementById("banner").hidden = true;
}

// --- the operations view -----------------------------------------------------------------------------------------

const SET_ASIDE = (entry) => {
  const reasons = Object.entries(entry.set_aside).sort(([a], [b]) => (a < b ? -1 : 1));
  return reasons.length ? reasons.map(([reason, n]) => `${reason.replace(/_/g, " ")}: ${count(n)}`).join(", ") : "none";
};

function figures(pipeline, entry) {
  const rows = [
    ["State", entry.state === "partial" ? "partial day (recomputed after the day ends)" : entry.state],
    ["Rows loaded", count(entry.rows)],
    ["Set aside", SET_ASIDE(entry)],
    ["Invalid rows", count(entry.invalid_rows)],
    ["Invalid share", share(entry.invalid_share)],
    ["Duration", seconds(entry.duration_s)],
    ["Engine", entry.engine || "not recorded"],
    ["Loaded at", entry.loaded_at ? localTime(entry.loaded_at) : "not loaded"],
    ["Due by", localTime(entry.due_by)],
    ["Task runs", String(entry.runs)],
  ];
  if (entry.state === "failed") rows.push(["Failed in", entry.failed_task], ["Error", entry.error]);
  return rows;
}

function showDetail(pipeline, entry) {
  const detail = document.getElementById("ops-detail");
  const list = element("dl");
  for (const [name, value] of figures(pipeline, entry)) list.append(element("dt", name), element("dd", value));
  detail.replaceChildren(element("h3", `${pipeline}, ${entry.date}`), list);
  detail.dataset.pipeline = pipeline;
  detail.dataset.date = entry.date;
}

let chosen = null; // the cell clicked last: {pipeline, date}, shown again after a refresh
let shownRuns = null;

function drawRuns(report) {
  const ops = document.getElementById("ops");
  document.getElementById("ops-days").textContent = String(report.pipelines[0]?.dates.length || DAYS);
  const rows = report.pipelines.map((pipeline) => {
    const row = element("div", undefined, "pipeline");
    row.dataset.pipeline = pipeline.pipeline;
    const cells = element("div", undefined, "cells");
    cells.style.setProperty("--days", String(pipeline.dates.length));
    for (const entry of [...pipeline.dates].reverse()) { // oldest left, yesterday right
      const cell = element("button", undefined, `cell state-${entry.state}`);
      cell.type = "button";
      cell.dataset.date = entry.date;
      cell.dataset.state = entry.state;
      cell.title = `${entry.date}: ` + figures(pipeline.pipeline, entry).map(([n, v]) => `${n}: ${v}`).join("\n");
      cell.setAttribute("aria-label", `${pipeline.pipeline} ${entry.date} ${entry.state}`);
      const show = () => showDetail(pipeline.pipeline, entry);
      cell.addEventListener("mouseenter", show);
      cell.addEventListener("focus", show);
      cell.addEventListener("click", () => {
        chosen = { pipeline: pipeline.pipeline, date: entry.date };
        document.querySelectorAll(".cell.chosen").forEach((c) => c.classList.remove("chosen"));
        cell.classList.add("chosen");
        show();
      });
      if (chosen && chosen.pipeline === pipeline.pipeline && chosen.date === entry.date) {
        cell.classList.add("chosen");
        show();
      }
      cells.append(cell);
    }
    row.append(element("span", pipeline.pipeline, "name"), cells);
    return row;
  });
  const axis = element("div", undefined, "axis");
  axis.append(element("span", report.first), element("span", report.last));
  ops.replaceChildren(...rows, axis);
  shownRuns = report;
  document.body.dataset.runs = "ready";
}

// Leaving the cells shows the clicked one's figures again.
function showChosen() {
  if (!chosen || !shownRuns) return;
  const pipeline = shownRuns.pipelines.find((p) => p.pipeline === chosen.pipeline);
  const entry = pipeline && pipeline.dates.find((d) => d.date === chosen.date);
  if (entry) showDetail(chosen.pipeline, entry);
}

// --- the result charts -------------------------------------------------------------------------------------------

function drawLoads(loads) {
  const dates = loads.map((load) => load.date);
  const traces = [
    { name: "rows", x: dates, y: loads.map((l) => l.rows), mode: "lines+markers", type: "scatter" },
    { name: "users", x: dates, y: loads.map((l) => l.users), mode: "lines+markers", type: "scatter" },
  ];
  const layout = {
    ...LAYOUT,
    xaxis: { type: "date", tickformat: "%Y-%m-%d", title: { text: "recommendation date" } },
    yaxis: { title: { text: "rows / users" }, rangemode: "tozero" },
  };
  if (loads.length <= 10) layout.xaxis.dtick = 86400000; // one tick a day, never hours
  if (loads.some((l) => l.invalid_share !== null)) {
    traces.push({
      name: "invalid share", x: dates, y: loads.map((l) => l.invalid_share), yaxis: "y2",
      mode: "lines+markers", type: "scatter",
    });
    layout.yaxis2 = { title: { text: "invalid share" }, overlaying: "y", side: "right", tickformat: ".1%",
      rangemode: "tozero" };
  } else {
    layout.annotations = [{ text: "invalid share: not recorded by the warehouse", showarrow: false,
      xref: "paper", yref: "paper", x: 1, y: 1.05, xanchor: "right", font: { size: 11, color: "#667" } }];
  }
  return Plotly.react("chart-loads", traces, layout, PLOT_CONFIG);
}

// Predicted ratings in buckets of 0.1 on a numeric axis: an empty bucket is a gap, not a missing category.
function drawRatings(ratings) {
  const trace = { type: "bar", x: ratings.map((r) => r.rating), y: ratings.map((r) => r.recommendations), width: 0.08,
    marker: { color: "#3b6ea8" }, hovertemplate: "rating %{x:.1f}: %{y} recommendations<extra></extra>" };
  const values = ratings.map((r) => r.rating);
  const layout = { ...LAYOUT,
    xaxis: { type: "linear", title: { text: "predicted rating" }, dtick: 0.5,
      range: [Math.min(1, ...values) - 0.1, Math.max(5, ...values) + 0.1] },
    yaxis: { title: { text: "recommendations" }, rangemode: "tozero" } };
  return Plotly.react("chart-ratings", [trace], layout, PLOT_CONFIG);
}

function drawBars(id, x, y, xTitle, yTitle, horizontal) {
  const trace = horizontal
    ? { type: "bar", orientation: "h", x: y, y: x, marker: { color: "#3b6ea8" } }
    : { type: "bar", x, y, marker: { color: "#3b6ea8" } };
  const layout = horizontal
    ? { ...LAYOUT, margin: { ...LAYOUT.margin, l: 260 }, yaxis: { autorange: "reversed", automargin: true },
        xaxis: { title: { text: yTitle } } }
    : { ...LAYOUT, xaxis: { title: { text: xTitle }, type: "category" }, yaxis: { title: { text: yTitle } } };
  return Plotly.react(id, [trace], layout, PLOT_CONFIG);
}

const METHOD_NAMES = { language_rule: "case study's rule", als: "factorization (ALS)" };

// Hit rate and NDCG (left axis, a share) and RMSE (right axis, rating points) of each method, one point per date.
function drawQuality(figures) {
  const traces = [];
  for (const method of Object.keys(METHOD_NAMES)) {
    const rows = figures.filter((f) => f.method === method);
    if (!rows.length) continue;
    const dates = rows.map((f) => f.date);
    const name = METHOD_NAMES[method];
    const dash = method === "als" ? "solid" : "dot";
    traces.push(
      { name: `hit rate, ${name}`, x: dates, y: rows.map((f) => f.hit_rate), mode: "lines+markers", line: { dash } },
      { name: `NDCG, ${name}`, x: dates, y: rows.map((f) => f.ndcg), mode: "lines+markers", line: { dash } },
      { name: `RMSE, ${name}`, x: dates, y: rows.map((f) => f.rmse), mode: "lines+markers", yaxis: "y2",
        line: { dash } },
    );
  }
  const layout = { ...LAYOUT,
    xaxis: { type: "date", tickformat: "%Y-%m-%d", title: { text: "recommendation date" } },
    yaxis: { title: { text: "hit rate / NDCG" }, tickformat: ".0%", rangemode: "tozero" },
    yaxis2: { title: { text: "RMSE" }, overlaying: "y", side: "right", rangemode: "tozero" } };
  if (!traces.length) {
    layout.annotations = [{ text: "no quality figures yet: DailyPipelines evaluates both methods every date",
      showarrow: false, xref: "paper", yref: "paper", x: 0.5, y: 0.5 }];
  }
  return Plotly.react("chart-quality", traces, layout, PLOT_CONFIG);
}

let shownDate = null; // the date whose results the charts show; null: the current one
let drawnLoads = null; // the loads the charts were drawn from: a new load or a backfill redraws them

async function drawCharts(date) {
  const data = await getJSON(date ? `/api/dashboard?date=${encodeURIComponent(date)}` : "/api/dashboard");
  await drawLoads(data.loads);
  await drawRatings(data.ratings);
  await drawBars("chart-languages", data.languages.map((l) => plain(l.language)),
    data.languages.map((l) => l.recommendations), "language", "recommendations");
  await drawBars("chart-courses", data.top_courses.map((c) => plain(`${c.title} (#${c.course_id})`)),
    data.top_courses.map((c) => c.recommendations), "course", "recommendations", true);
  await drawQuality((await getJSON("/api/quality?days=90")).figures);
  const picker = document.getElementById("results-date");
  const dates = data.loads.map((load) => load.date).sort();
  if (dates.length) {
    picker.min = dates[0];
    picker.max = dates[dates.length - 1];
  }
  picker.value = data.date || "";
  document.body.dataset.charts = "ready";
  document.body.dataset.chartsDate = data.date || "";
  message("results-message", data.date
    ? `${count(data.loads.find((l) => l.date === data.date)?.rows)} recommendations on ${data.date}` +
      (date ? "" : " (the current date)")
    : "Nothing is loaded yet.");
}

async function chooseDate() {
  const value = document.getElementById("results-date").value;
  try {
    await drawCharts(value || null);
    shownDate = value || null;
  } catch (error) {
    message("results-message", `No results for ${value}: ${error.message}`, true);
    if (error.unavailable) warehouseDown(error);
  }
}

// --- refreshing ----------------------------------------------------------------------------------------------------

let timer = null;

async function refresh() {
  clearTimeout(timer);
  let wait = REFRESH_S;
  try {
    const [health, runs] = await Promise.all([getJSON("/healthz"), getJSON(`/api/runs?days=${DAYS}`)]);
    warehouseUp();
    showFreshness(health);
    drawRuns(runs);
    const loads = `${health.loads} ${health.newest_loaded_at}`;
    if (document.body.dataset.charts !== "ready" || loads !== drawnLoads) {
      await drawCharts(shownDate);
      drawnLoads = loads;
    }
  } catch (error) {
    if (!(error instanceof ApiError) || !error.unavailable) {
      message("status", `The dashboard could not read the warehouse: ${error.message}`, true);
    } else {
      warehouseDown(error);
      wait = error.retryAfter;
    }
    if (document.body.dataset.charts !== "ready") document.body.dataset.charts = "failed";
  }
  timer = setTimeout(refresh, wait * 1000);
}

// --- the look-ups --------------------------------------------------------------------------------------------------

async function lookUp(event) {
  event.preventDefault();
  const userId = document.getElementById("user-id").value.trim();
  const threshold = document.getElementById("threshold").value.trim() || "4.5";
  const date = document.getElementById("date").value.trim();
  const list = document.getElementById("lookup-results");
  list.replaceChildren();
  const query = new URLSearchParams({ threshold });
  if (date) query.set("date", date);
  try {
    const rows = await getJSON(`/api/users/${encodeURIComponent(userId)}/recommendations?${query}`);
    for (const row of rows) {
      const item = element("li");
      item.append(element("span", row.title, "title"), " ", element("span", row.rating.toFixed(3), "rating"));
      list.append(item);
    }
    message("lookup-message", rows.length
      ? `User ${userId}: ${rows.length} recommendation(s) rated above ${threshold}`
      : `User ${userId} has no recommendation rated above ${threshold}`);
  } catch (error) {
    message("lookup-message", error.message, true);
  }
}

async function showFilm(filmId) {
  const film = await getJSON(`/api/films/${encodeURIComponent(filmId)}`);
  document.getElementById("film-title").textContent = `${film.title} (#${film.film_id})`;
  document.getElementById("film-rate").textContent = `$${Number(film.rental_rate).toFixed(2)}`;
  document.getElementById("film-rating").textContent =
    film.avg_rating === null || film.avg_rating === undefined ? "no ratings" : Number(film.avg_rating).toFixed(2);
  document.getElementById("film-count").textContent = count(film.rating_count ?? 0);
  document.getElementById("film-recommended").replaceChildren(
    ...film.recommended_films.map((f) => element("li", `${f.title} (#${f.film_id})`)));
  document.getElementById("film-detail").hidden = false;
  message("film-message", film.recommended_films.length ? "" : "No recommended films for this one.");
}

async function lookUpFilm(event) {
  event.preventDefault();
  const text = document.getElementById("film-query").value.trim();
  const matches = document.getElementById("film-matches");
  matches.replaceChildren();
  document.getElementById("film-detail").hidden = true;
  try {
    if (/^\d+$/.test(text)) {
      await showFilm(text);
      return;
    }
    const found = await getJSON(`/api/films?${new URLSearchParams({ title: text, limit: "20" })}`);
    if (found.length === 1) {
      await showFilm(found[0].film_id);
      return;
    }
    message("film-message", found.length ? `${found.length} films match "${text}": choose one` : `No film matches "${text}"`,
      !found.length);
    for (const film of found) {
      const choice = element("button", film.title);
      choice.type = "button";
      choice.addEventListener("click", () => showFilm(film.film_id).catch((e) => message("film-message", e.message, true)));
      const item = element("li");
      item.append(choice);
      matches.append(item);
    }
  } catch (error) {
    message("film-message", error.message, true);
  }
}

document.getElementById("lookup").addEventListener("submit", lookUp);
document.getElementById("film-form").addEventListener("submit", lookUpFilm);
document.getElementById("results-date").addEventListener("change", chooseDate);
document.getElementById("ops").addEventListener("mouseleave", showChosen);
refresh();
