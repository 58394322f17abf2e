// The staff page for scheduled calls. It signs in against the gateway's /auth/token/,
// keeps the access token in this tab's sessionStorage, and uses the staff-only JSON
// routes under /admin/schedule-api/api/. Data is always rendered as text.
"use strict";

const TOKEN_KEY = "flotilla.scheduler.admin.token";
const CALLS_URL = "/admin/schedule-api/api/calls";
const PAGE_SIZE = 25;
const STAFF_ROLES = ["staff", "superuser"];

const byId = (id) => document.getElementById(id);
let previousUrl = null;
let nextUrl = null;
let loadSequence = 0; // answers to superseded loads are dropped

function claimsOf(token) {
  try {
    const payload = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(atob(payload.padEnd(payload.length + ((4 - (payload.length % 4)) % 4), "=")));
  } catch (error) {
    return null;
  }
}

function storedToken() {
  const token = sessionStorage.getItem(TOKEN_KEY);
  const claims = token && claimsOf(token);
  if (!claims || !claims.exp || claims.exp * 1000 <= Date.now()) {
    sessionStorage.removeItem(TOKEN_KEY);
    return null;
  }
  return token;
}

function say(text, kind = "error") {
  const message = byId("message");
  message.textContent = text || "";
  message.className = kind;
}

function show(view) {
  byId("login-view").hidden = view !== "login";
  byId("calls-view").hidden = view !== "calls";
  byId("session").hidden = view !== "calls";
}

function signOut(reason) {
  sessionStorage.removeItem(TOKEN_KEY);
  byId("call-rows").replaceChildren();
  show("login");
  say(reason);
}

async function api(url, options = {}) {
  const token = storedToken();
  if (!token) {
    signOut("Your session has ended: please sign in again.");
    throw new Error("signed out");
  }
  const response = await fetch(url, {
    ...options,
    headers: { Accept: "application/json", Authorization: `Bearer ${token}` },
  });
  if (response.status === 401) {
    signOut("Your session has ended: please sign in again.");
    throw new Error("signed out");
  }
  const body = await response.json().catch(() => ({}));
  return { response, body };
}

async function signIn(event) {
  event.preventDefault();
  say("");
  const response = await fetch("/auth/token/", {
    method: "POST",
    headers: { "Content-Type": "application/json", Accept: "application/json" },
    body: JSON.stringify({ username: byId("username").value, password: byId("password").value }),
  });
  const body = await response.json().catch(() => ({}));
  if (!response.ok || !body.access) {
    say(body.error || "Sign-in failed.");
    return;
  }
  const claims = claimsOf(body.access);
  if (!claims || !STAFF_ROLES.includes(claims.role)) {
    say("This page is for staff only.");
    return;
  }
  sessionStorage.setItem(TOKEN_KEY, body.access);
  byId("password").value = "";
  start();
}

function filteredUrl() {
  const query = new URLSearchParams({ page_size: String(PAGE_SIZE) });
  const fields = { status: "filter-status", owner: "filter-owner", since: "filter-since",
                   until: "filter-until", ordering: "filter-ordering" };
  for (const [name, id] of Object.entries(fields)) {
    const value = byId(id).value.trim();
    if (value) query.set(name, value);
  }
  return `${CALLS_URL}?${query}`;
}

function cell(text, className) {
  const td = document.createElement("td");
  td.textContent = text === null || text === undefined ? "" : String(text);
  if (className) td.className = className;
  return td;
}

function callRow(call) {
  const row = document.createElement("tr");
  row.dataset.callId = String(call.id);
  const result = call.last_status_code !== null ? `HTTP ${call.last_status_code}` : call.last_error;
  row.append(
    cell(call.id),
    cell(call.timestamp),
    cell(call.status, `status status-${call.status}`),
    cell(call.owner),
    cell(`${call.method} ${call.url}`, "request"),
    cell(`${call.attempts} / ${call.max_attempts}`),
    cell(result),
  );
  const actions = document.createElement("td");
  if (call.status === "Pending") {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "cancel";
    button.textContent = "Cancel";
    button.addEventListener("click", () => cancel(call.id, button));
    actions.append(button);
  }
  row.append(actions);
  return row;
}

async function load(url) {
  const sequence = ++loadSequence;
  const { response, body } = await api(url);
  if (sequence !== loadSequence) return;
  if (!response.ok) {
    say(body.error || `Could not load the calls (HTTP ${response.status}).`);
    return;
  }
  say("");
  byId("call-rows").replaceChildren(...body.results.map(callRow));
  byId("summary").textContent = `${body.count} call(s)`;
  previousUrl = body.previous;
  nextUrl = body.next;
  byId("previous-page").disabled = !previousUrl;
  byId("next-page").disabled = !nextUrl;
}

async function cancel(callId, button) {
  button.disabled = true;
  const { response, body } = await api(`${CALLS_URL}/${callId}/cancel`, { method: "POST" });
  if (!response.ok) {
    say(body.error || `Could not cancel call ${callId} (HTTP ${response.status}).`);
    button.disabled = false;
    return;
  }
  say(`Call ${callId} cancelled.`, "info");
  const row = document.querySelector(`tr[data-call-id="${callId}"]`);
  if (row) row.replaceWith(callRow(body));
}

function start() {
  const token = storedToken();
  if (!token) {
    show("login");
    return;
  }
  byId("who").textContent = `Signed in as ${claimsOf(token).username || "staff"}`;
  show("calls");
  load(filteredUrl()).catch(() => {});
}

document.addEventListener("DOMContentLoaded", () => {
  byId("login-form").addEventListener("submit", (event) => signIn(event).catch(() => say("Sign-in failed.")));
  byId("filters").addEventListener("submit", (event) => {
    event.preventDefault();
    load(filteredUrl()).catch(() => {});
  });
  byId("previous-page").addEventListener("click", () => previousUrl && load(previousUrl).catch(() => {}));
  byId("next-page").addEventListener("click", () => nextUrl && load(nextUrl).catch(() => {}));
  byId("sign-out").addEventListener("click", () => signOut(""));
  start();
});
