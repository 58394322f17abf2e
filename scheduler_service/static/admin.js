// The staff page for scheduled calls. It signs in as staff (servicekit's
// staff-session.js, loaded first) and uses the staff-only JSON routes under
// /admin/schedule-api/api/. Data is always rendered as text.
"use strict";

const CALLS_URL = "/admin/schedule-api/api/calls";
const PAGE_SIZE = 25;

const byId = (id) => document.getElementById(id);
let previousUrl = null;
let nextUrl = null;
let loadSequence = 0; // answers to superseded loads are dropped

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

const session = StaffSession.create({
  tokenKey: "flotilla.scheduler.admin.token",
  say,
  onSignedOut(reason) {
    byId("call-rows").replaceChildren();
    show("login");
    say(reason);
  },
});

async function signIn(event) {
  event.preventDefault();
  if (await session.signIn(byId("username").value, byId("password").value)) {
    byId("password").value = "";
    start();
  }
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
  const { response, body } = await session.call(url);
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
  const { response, body } = await session.call(`${CALLS_URL}/${callId}/cancel`, { method: "POST" });
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
  const token = session.token();
  if (!token) {
    show("login");
    return;
  }
  byId("who").textContent = `Signed in as ${StaffSession.claimsOf(token).username || "staff"}`;
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
  byId("sign-out").addEventListener("click", () => session.signOut(""));
  start();
});
