// The dashboard: signs in through an organization's identity provider (authorization code
// with PKCE) or with a pasted token, lists the caller's Workspaces, and draws the
// workspace-usage and centralized reports of the API. No libraries, no requests to other
// origins (the sign-in leaves the page only as a navigation): the charts are SVG built here.
"use strict";

const errors = [];
function recordError(message) {
  errors.push(String(message));
  const box = document.getElementById("errors");
  box.textContent = errors.join("\n");
  box.hidden = false;
}
window.addEventListener("error", (e) => recordError(e.message));
window.addEventListener("unhandledrejection", (e) => recordError(e.reason));

const TOKEN_KEY = "simtally.token";
const COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];
const $ = (id) => document.getElementById(id);

function setStatus(text) {
  $("status").textContent = text;
}

async function api(path) {
  const response = await fetch(path, {
    headers: { Authorization: "Bearer " + sessionStorage.getItem(TOKEN_KEY), Accept: "application/json" },
  });
  const body = await response.json();
  if (!response.ok) {
    const error = new Error(body.error ? body.error.message : response.statusText);
    error.status = response.status;
    throw error;
  }
  return body;
}

function svgElement(name, attributes, text) {
  const element = document.createElementNS("http://www.w3.org/2000/svg", name);
  for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, value);
  if (text !== undefined) element.textContent = text;
  return element;
}

// Grouped bars: one group per day, one bar per Workspace.
function drawChart(container, rows, metric, workspaces, label) {
  container.replaceChildren();
  const days = [...new Set(rows.map((r) => r.usage_date))].sort();
  if (days.length === 0) {
    container.textContent = "No usage in this range.";
    return;
  }
  // A Workspace day has one row per currency; volumes add up across them (a chart of
  // money is drawn per currency, so its rows are of one currency only).
  const value = (day, ws) => rows
    .filter((r) => r.usage_date === day && r.workspace_id === ws)
    .reduce((sum, r) => sum + Number(r[metric]), 0);
  const max = Math.max(...days.flatMap((d) => workspaces.map((w) => value(d, w))), 0) || 1;
  const width = 900, height = 260, left = 70, bottom = 40, top = 10;
  const svg = svgElement("svg", { width, height, viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": label || metric });
  const plotHeight = height - bottom - top;
  const groupWidth = (width - left - 10) / days.length;
  const barWidth = Math.max(2, (groupWidth - 8) / workspaces.length);
  for (let i = 0; i <= 4; i++) {
    const y = top + plotHeight - (plotHeight * i) / 4;
    svg.append(svgElement("line", { x1: left, x2: width - 5, y1: y, y2: y, stroke: "#e5e9ef" }));
    svg.append(svgElement("text", { x: left - 6, y: y + 4, "text-anchor": "end", "font-size": 11 }, ((max * i) / 4).toLocaleString(undefined, { maximumFractionDigits: 2 })));
  }
  days.forEach((day, d) => {
    const x0 = left + d * groupWidth + 4;
    workspaces.forEach((ws, w) => {
      const v = value(day, ws);
      const h = (plotHeight * v) / max;
      const bar = svgElement("rect", {
        x: x0 + w * barWidth, y: top + plotHeight - h, width: barWidth - 1, height: h,
        fill: COLORS[w % COLORS.length], "data-workspace": ws, "data-day": day, "data-value": v,
      });
      bar.append(svgElement("title", {}, `Workspace ${ws}, ${day}: ${v}${label ? " " + label : ""}`));
      svg.append(bar);
    });
    if (days.length <= 31) {
      svg.append(svgElement("text", { x: x0 + groupWidth / 2 - 4, y: height - bottom + 16, "text-anchor": "middle", "font-size": 11 }, day.slice(5)));
    }
  });
  container.append(svg);
  const legend = document.createElement("div");
  legend.className = "legend";
  workspaces.forEach((ws, w) => {
    const item = document.createElement("span");
    item.style.setProperty("--c", COLORS[w % COLORS.length]);
    item.textContent = `Workspace ${ws}`;
    legend.append(item);
  });
  container.append(legend);
}

// Money is never added across currencies: one cost chart per currency.
function drawCostCharts(container, rows, workspaces) {
  container.replaceChildren();
  const currencies = [...new Set(rows.map((r) => r.currency))].sort();
  if (currencies.length === 0) {
    container.textContent = "No usage in this range.";
    return;
  }
  for (const currency of currencies) {
    const heading = document.createElement("h3");
    heading.textContent = currency;
    const chart = document.createElement("div");
    chart.className = "chart";
    chart.dataset.currency = currency;
    container.append(heading, chart);
    drawChart(chart, rows.filter((r) => r.currency === currency), "cost", workspaces, currency);
  }
}

function drawTable(container, rows) {
  container.replaceChildren();
  const table = document.createElement("table");
  const columns = ["usage_date", "currency", "workspace", "records", "data_mb", "sms", "cost"];
  const head = table.createTHead().insertRow();
  for (const c of columns) {
    const th = document.createElement("th");
    th.textContent = c;
    head.append(th);
  }
  const body = table.createTBody();
  for (const row of rows) {
    const tr = body.insertRow();
    if (row.workspace === "combined") tr.className = "combined";
    for (const c of columns) tr.insertCell().textContent = row[c] === null ? "" : String(row[c]);
  }
  container.append(table);
}

function selectedWorkspaces() {
  return [...document.querySelectorAll("#workspace-list input:checked")].map((i) => Number(i.value));
}

async function refresh() {
  const chosen = selectedWorkspaces();
  const params = new URLSearchParams();
  for (const ws of chosen) params.append("workspace_id", ws);
  if ($("from").value) params.set("from", $("from").value);
  if ($("to").value) params.set("to", $("to").value);
  if (chosen.length === 0) {
    setStatus("Pick at least one Workspace.");
    return;
  }
  setStatus("Loading…");
  const usage = await api("/v1/reports/workspace-usage?" + params);
  drawCostCharts($("cost-chart"), usage, chosen);
  drawChart($("data-chart"), usage, "data_mb", chosen);
  if (chosen.length >= 2) {
    drawTable($("centralized"), await api("/v1/reports/centralized?" + params));
  } else {
    $("centralized").textContent = "A centralized report combines two or more Workspaces: pick another.";
  }
  setStatus(`Showing ${chosen.length} Workspace${chosen.length === 1 ? "" : "s"}.`);
}

async function showDashboard() {
  let listing;
  try {
    listing = await api("/v1/workspaces");
  } catch (e) {
    if (e.status === 401) {
      sessionStorage.removeItem(TOKEN_KEY);
      setStatus("That token was not accepted: " + e.message);
      await listProviders(new URLSearchParams());
      return;
    }
    throw e;
  }
  $("sign-in").hidden = true;
  $("dashboard").hidden = false;
  $("sign-out").hidden = false;
  $("who").textContent = listing.user_id;
  const list = $("workspace-list");
  list.replaceChildren();
  for (const ws of listing.workspaces) {
    const label = document.createElement("label");
    const box = document.createElement("input");
    box.type = "checkbox";
    box.value = ws.workspace_id;
    box.checked = true;
    label.append(box, ` ${ws.name} (${ws.workspace_id}${ws.role ? ", " + ws.role : ""})`);
    list.append(label);
  }
  if (listing.workspaces.length === 0) {
    setStatus("You have no access to any Workspace yet.");
    return;
  }
  await refresh();
}

const SIGN_IN_KEY = "simtally.sign-in";

function base64url(bytes) {
  return btoa(String.fromCharCode(...new Uint8Array(bytes))).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function redirectUri() {
  return location.origin + location.pathname;
}

// Sends the browser to the provider with a fresh PKCE challenge; the verifier and state
// stay in this tab until the provider sends the browser back with a code.
async function beginSignIn(provider) {
  const verifier = base64url(crypto.getRandomValues(new Uint8Array(32)));
  const state = base64url(crypto.getRandomValues(new Uint8Array(16)));
  const challenge = base64url(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier)));
  sessionStorage.setItem(SIGN_IN_KEY, JSON.stringify({ issuer: provider.issuer, verifier, state }));
  const url = new URL(provider.authorization_endpoint);
  url.search = new URLSearchParams({
    response_type: "code",
    client_id: provider.client_id,
    redirect_uri: redirectUri(),
    scope: "openid email",
    state,
    code_challenge: challenge,
    code_challenge_method: "S256",
  }).toString();
  location.assign(url.toString());
}

// Back from the provider: the code, with the verifier kept, becomes a token.
async function finishSignIn(query) {
  const pending = JSON.parse(sessionStorage.getItem(SIGN_IN_KEY) || "null");
  sessionStorage.removeItem(SIGN_IN_KEY);
  history.replaceState(null, "", location.pathname);
  if (query.get("error")) throw new Error("the identity provider refused: " + query.get("error"));
  if (!pending || pending.state !== query.get("state")) throw new Error("this sign-in was not started here; start it again");
  const response = await fetch("/v1/sign-in/token", {
    method: "POST",
    headers: { "Content-Type": "application/json", Accept: "application/json" },
    body: JSON.stringify({ issuer: pending.issuer, code: query.get("code"), code_verifier: pending.verifier, redirect_uri: redirectUri() }),
  });
  const body = await response.json();
  if (!response.ok) throw new Error(body.error ? body.error.message : response.statusText);
  sessionStorage.setItem(TOKEN_KEY, body.token);
}

async function listProviders(query) {
  const { providers } = await (await fetch("/v1/sign-in", { headers: { Accept: "application/json" } })).json();
  const box = $("providers");
  box.replaceChildren();
  for (const provider of providers) {
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = "Sign in with " + new URL(provider.issuer).host;
    button.addEventListener("click", () => beginSignIn(provider).catch(recordError));
    box.append(button);
  }
  // A link with ?sign_in=ISSUER starts that provider's sign-in at once (a portal's app link).
  const wanted = providers.find((p) => p.issuer === query.get("sign_in"));
  if (wanted) await beginSignIn(wanted);
}

async function start() {
  const query = new URLSearchParams(location.search);
  if (query.get("code") || query.get("error")) {
    try {
      await finishSignIn(query);
    } catch (e) {
      setStatus("Sign-in failed: " + e.message);
    }
  }
  // A token in the address fragment (#token=...) signs in directly; the fragment never
  // reaches the server, and is removed from the address bar at once.
  const fragment = new URLSearchParams(location.hash.slice(1));
  if (fragment.get("token")) {
    sessionStorage.setItem(TOKEN_KEY, fragment.get("token"));
    history.replaceState(null, "", location.pathname);
  }
  $("token-form").addEventListener("submit", (e) => {
    e.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, $("token").value.trim());
    showDashboard().catch(recordError);
  });
  $("filters").addEventListener("submit", (e) => {
    e.preventDefault();
    refresh().catch(recordError);
  });
  $("sign-out").addEventListener("click", () => {
    sessionStorage.removeItem(TOKEN_KEY);
    location.reload();
  });
  if (sessionStorage.getItem(TOKEN_KEY)) {
    await showDashboard();
  } else {
    await listProviders(query);
  }
}

start().catch(recordError);
