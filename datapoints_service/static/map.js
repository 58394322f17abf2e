// The staff map page. It signs in as staff (servicekit's staff-session.js, loaded first)
// and draws GET /api/v1/geo for the chosen indicator and campaign with Leaflet, on a
// plain background (no tile server). Data is always rendered as text.
"use strict";

const GEO_URL = "/api/v1/geo/";
const GEO_PAGE = 10000; // the API's largest page
const LIST_LIMIT = 1000; // the v2 API's largest page
// A sequential scale, light (low) to dark (high), and the colour of regions with no value.
const STEPS = ["#fff5eb", "#fdd0a2", "#fd8d3c", "#d94801", "#7f2704"];
const NO_VALUE = "#c4c9d0";
const NUMBER = new Intl.NumberFormat("en", { maximumFractionDigits: 2 });

const byId = (id) => document.getElementById(id);
let map = null;
let drawn = null;
let drawSequence = 0; // answers to superseded draws are dropped

function say(text, kind = "error") {
  const message = byId("message");
  message.textContent = text || "";
  message.className = kind;
}

function show(view) {
  byId("login-view").hidden = view !== "login";
  byId("map-view").hidden = view !== "map";
  byId("session").hidden = view !== "map";
}

const session = StaffSession.create({
  tokenKey: "flotilla.datapoints.map.token",
  say,
  onSignedOut(reason) {
    drawSequence += 1;
    if (drawn) drawn.remove();
    drawn = null;
    byId("legend").hidden = true;
    byId("summary").textContent = "";
    show("login");
    say(reason);
  },
});

async function api(url) {
  const { response, body } = await session.call(url);
  if (!response.ok) {
    const detail = body.errors ? ` (${Object.values(body.errors).join("; ")})` : "";
    say(`${body.error || `HTTP ${response.status}`}${detail}`);
    throw new Error("refused");
  }
  return body;
}

async function signIn(event) {
  event.preventDefault();
  if (await session.signIn(byId("username").value, byId("password").value)) {
    byId("password").value = "";
    start();
  }
}

function fill(select, objects) {
  select.replaceChildren(
    ...objects.map((object) => {
      const option = document.createElement("option");
      option.value = String(object.id);
      option.textContent = object.name;
      return option;
    }),
  );
}

async function loadChoices() {
  const [campaigns, indicators] = await Promise.all([
    api(`/api/v2/campaign/?limit=${LIST_LIMIT}&order_by=-start_date`),
    api(`/api/v2/indicator/?limit=${LIST_LIMIT}&order_by=name`),
  ]);
  fill(byId("campaign"), campaigns.objects);
  fill(byId("indicator"), indicators.objects);
  byId("show").disabled = !campaigns.objects.length || !indicators.objects.length;
  if (byId("show").disabled) say("There is no campaign or no indicator to show.", "info");
}

async function allFeatures(indicatorId, campaignId) {
  const features = [];
  for (let offset = 0; ; offset += GEO_PAGE) {
    const query = new URLSearchParams({
      indicator_id: indicatorId, campaign_id: campaignId, limit: String(GEO_PAGE), offset: String(offset),
    });
    const page = await api(`${GEO_URL}?${query}`);
    features.push(...page.features);
    if (!page.features.length || features.length >= page.meta.total_count) return features;
  }
}

function scaleOf(values) {
  const low = values.reduce((a, b) => Math.min(a, b));
  const high = values.reduce((a, b) => Math.max(a, b));
  const width = (high - low) / STEPS.length;
  const step = (value) => (width > 0 ? Math.min(STEPS.length - 1, Math.floor((value - low) / width)) : 0);
  const bounds = STEPS.map((_, index) => [low + index * width, index === STEPS.length - 1 ? high : low + (index + 1) * width]);
  return { low, high, colour: (value) => (value === null || value === undefined ? NO_VALUE : STEPS[step(value)]),
           bounds: width > 0 ? bounds : [[low, high]] };
}

function swatch(colour) {
  const box = document.createElement("span");
  box.className = "swatch";
  box.style.backgroundColor = colour; // CSSOM, which the page's style-src allows
  return box;
}

function drawLegend(title, scale) {
  const legend = byId("legend");
  byId("legend-title").textContent = title;
  const steps = scale ? scale.bounds.map(([from, to], index) => {
    const item = document.createElement("li");
    item.append(swatch(STEPS[index]),
                document.createTextNode(`${NUMBER.format(from)} – ${NUMBER.format(to)}`));
    return item;
  }) : [];
  byId("legend-steps").replaceChildren(...steps);
  legend.dataset.min = scale ? String(scale.low) : "";
  legend.dataset.max = scale ? String(scale.high) : "";
  legend.hidden = false;
}

function popup(properties) {
  const content = document.createElement("div");
  const name = document.createElement("div");
  name.className = "popup-name";
  name.textContent = properties.name;
  const value = document.createElement("div");
  value.className = "popup-value";
  value.textContent = properties.value === null
    ? "no value"
    : `${NUMBER.format(properties.value)}${properties.is_agg ? " (from its sub-regions)" : ""}`;
  content.append(name, value);
  return content;
}

function ensureMap() {
  if (!map) {
    map = L.map("map", { zoomSnap: 0.25, worldCopyJump: false });
    map.setView([0, 0], 1);
  }
  map.invalidateSize();
  return map;
}

async function draw(event) {
  if (event) event.preventDefault();
  const sequence = ++drawSequence;
  const campaign = byId("campaign");
  const indicator = byId("indicator");
  if (!campaign.value || !indicator.value) return;
  say("");
  byId("summary").textContent = "Loading…";
  const features = await allFeatures(indicator.value, campaign.value);
  if (sequence !== drawSequence) return;
  const located = features.filter((feature) => feature.geometry);
  const values = located.map((feature) => feature.properties.value).filter((value) => value !== null);
  const scale = values.length ? scaleOf(values) : null;
  const colour = (feature) => (scale ? scale.colour(feature.properties.value) : NO_VALUE);
  const target = ensureMap();
  if (drawn) drawn.remove();
  drawn = L.geoJSON(located, {
    style: (feature) => ({ color: "#5f6570", weight: 1, fillColor: colour(feature), fillOpacity: 0.8 }),
    pointToLayer: (feature, latlng) => L.circleMarker(latlng, { radius: 7 }),
    onEachFeature: (feature, layer) => layer.bindPopup(popup(feature.properties)),
  }).addTo(target);
  const title = `${indicator.selectedOptions[0].textContent} · ${campaign.selectedOptions[0].textContent}`;
  drawLegend(title, scale);
  target.invalidateSize(); // the legend beside the map may have changed its width
  const bounds = drawn.getBounds();
  if (bounds.isValid()) target.fitBounds(bounds, { padding: [20, 20], maxZoom: 12, animate: false });
  const missing = features.length - located.length;
  byId("summary").textContent =
    `${located.length} region(s) drawn, ${values.length} with a value` +
    (missing ? `; ${missing} without a shape or a place` : "");
}

function start() {
  const token = session.token();
  if (!token) {
    show("login");
    return;
  }
  byId("who").textContent = `Signed in as ${StaffSession.claimsOf(token).username || "staff"}`;
  show("map");
  loadChoices().catch(() => {});
}

document.addEventListener("DOMContentLoaded", () => {
  byId("login-form").addEventListener("submit", (event) => signIn(event).catch(() => say("Sign-in failed.")));
  byId("choice").addEventListener("submit", (event) => draw(event).catch(() => {}));
  byId("sign-out").addEventListener("click", () => session.signOut(""));
  start();
});
