// The dashboard: charts from /api/dashboard (plotly.js served by this server), and the user look-up box.
"use strict";

const PLOT_CONFIG = { displayModeBar: false, responsive: true };
const LAYOUT = { margin: { t: 10, r: 60, b: 50, l: 70 }, legend: { orientation: "h", y: -0.2 } };

async function getJSON(url) {
  const response = await fetch(url, { headers: { Accept: "application/json" } });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    const detail = typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail);
    throw new Error(`${response.status}: ${detail || response.statusText}`);
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
  return Plotly.newPlot("chart-loads", traces, layout, PLOT_CONFIG);
}

function drawBars(id, x, y, xTitle, yTitle, horizontal) {
  const trace = horizontal
    ? { type: "bar", orientation: "h", x: y, y: x, marker: { color: "#3b6ea8" } }
    : { type: "bar", x, y, marker: { color: "#3b6ea8" } };
  const layout = horizontal
    ? { ...LAYOUT, margin: { ...LAYOUT.margin, l: 260 }, yaxis: { autorange: "reversed", automargin: true },
        xaxis: { title: { text: yTitle } } }
    : { ...LAYOUT, xaxis: { title: { text: xTitle }, type: "category" }, yaxis: { title: { text: yTitle } } };
  return Plotly.newPlot(id, [trace], layout, PLOT_CONFIG);
}

async function drawDashboard() {
  const data = await getJSON("/api/dashboard");
  await drawLoads(data.loads);
  await drawBars("chart-ratings", data.ratings.map((r) => r.rating.toFixed(1)),
    data.ratings.map((r) => r.recommendations), "predicted rating", "recommendations");
  await drawBars("chart-languages", data.languages.map((l) => plain(l.language)),
    data.languages.map((l) => l.recommendations), "language", "recommendations");
  await drawBars("chart-courses", data.top_courses.map((c) => plain(`${c.title} (#${c.course_id})`)),
    data.top_courses.map((c) => c.recommendations), "course", "recommendations", true);
  document.body.dataset.charts = "ready";
}

async function showStatus() {
  try {
    const health = await getJSON("/healthz");
    const age = health.newest_load_age_s === null ? "" : `, ${(health.newest_load_age_s / 3600).toFixed(1)} h ago`;
    message("status", health.newest_date
      ? `${health.loads} loaded dates; current: ${health.newest_date} (loaded ${health.newest_loaded_at}${age})`
      : "The warehouse answers but holds no loads yet.");
  } catch (error) {
    message("status", `Warehouse unavailable: ${error.message}`, true);
  }
}

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
    const url = `/api/users/${encodeURIComponent(userId)}/recommendations?${query}`;
    const rows = await getJSON(url);
    for (const row of rows) {
      const item = document.createElement("li");
      const title = document.createElement("span");
      const rating = document.createElement("span");
      title.className = "title";
      title.textContent = row.title;
      rating.className = "rating";
      rating.textContent = row.rating.toFixed(3);
      item.append(title, " ", rating);
      list.append(item);
    }
    message("lookup-message", rows.length
      ? `User ${userId}: ${rows.length} recommendation(s) rated above ${threshold}`
      : `User ${userId} has no recommendation rated above ${threshold}`);
  } catch (error) {
    message("lookup-message", error.message, true);
  }
}

document.getElementById("lookup").addEventListener("submit", lookUp);
showStatus();
drawDashboard().catch((error) => {
  document.body.dataset.charts = "failed";
  message("status", `Charts unavailable: ${error.message}`, true);
});
