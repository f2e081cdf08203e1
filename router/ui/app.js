// The live routing page: polls /ui/snapshot every second and draws it. Text only goes in through textContent.
"use strict";

const POLL_MS = 1000;

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (name === "text") node.textContent = value;
    else if (name === "class") node.className = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value);
  }
  for (const child of children) if (child) node.append(child);
  return node;
}

function clock(iso) {
  if (!iso) return "–";
  const at = new Date(iso);
  return at.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

function inSeconds(iso) {
  const seconds = Math.round((new Date(iso) - Date.now()) / 1000);
  return seconds <= 0 ? "now" : seconds < 90 ? `in ${seconds} s` : `in ${Math.round(seconds / 60)} min`;
}

function replaceRows(table, rows) {
  const body = table.querySelector("tbody");
  body.replaceChildren(...rows);
}

async function act(name, action) {
  const answer = await fetch(`/ui/agents/${encodeURIComponent(name)}/${action}`, {
    method: "POST", credentials: "same-origin", headers: { "X-Lead-Router": "ui" },
  });
  if (!answer.ok) alert(`Could not ${action} ${name}: ${answer.status}`);
  refresh();
}

const STATE_TEXT = { available: "available", paused: "paused", off_shift: "off shift", wrap_up: "wrap-up",
                     at_capacity: "at capacity" };

function drawAgents(agents) {
  replaceRows(document.getElementById("agents"), agents.map((agent) => {
    const paused = agent.state === "paused";
    const detail = paused ? agent.pause_reason : agent.state === "wrap_up" ? `until ${clock(agent.wrap_up_until)}` : "";
    return el("tr", { "data-agent": agent.name, "data-state": agent.state },
      el("td", { text: agent.name }),
      el("td", {}, el("span", { class: `badge ${agent.state}`, text: STATE_TEXT[agent.state] || agent.state }),
         detail ? el("span", { class: "small", text: detail }) : null),
      el("td", { class: "num", text: `${agent.open} / ${agent.capacity || "∞"}` }),
      el("td", { class: "num picks-today", text: String(agent.picks_today) }),
      el("td", { class: "num", text: String(agent.picks_total) }),
      el("td", { text: clock(agent.last_pick_at) }),
      el("td", {}, el("button", {
        class: "act", "data-action": paused ? "resume" : "pause", text: paused ? "Resume" : "Pause",
        onclick: () => act(agent.name, paused ? "resume" : "pause"),
      })));
  }));
}

function drawPools(pools) {
  document.getElementById("pools").replaceChildren(...pools.map((pool) => {
    const skipped = new Map(pool.skipped.map((skip) => [skip.agent, skip.reason]));
    const members = pool.members.map((name) => {
      const classes = ["member"];
      if (name === pool.next_agent) classes.push("next");
      else if (skipped.has(name)) classes.push("skipped");
      const title = skipped.has(name) ? `skipped: ${skipped.get(name)}` : "";
      return el("span", { class: classes.join(" "), "data-member": name, title, text: name });
    });
    return el("div", { class: "pool", "data-pool": pool.name, "data-next": pool.next_agent || "" },
      el("span", { class: "name", text: pool.name }),
      el("span", { class: "strategy", text: pool.strategy.replace("_", " ") }),
      ...members,
      el("span", { class: "why", text: pool.next_agent ? pool.next_reason : "nobody eligible: leads wait" }));
  }));
}

function drawBudget(budget) {
  const used = Math.min(100, Math.round((100 * budget.used) / Math.max(1, budget.limit)));
  const wait = budget.remaining === 0 ? ` · next slot in ${budget.next_slot_in_seconds.toFixed(1)} s` : "";
  document.getElementById("budget").replaceChildren(
    el("div", { text: `${budget.remaining} of ${budget.limit} requests left in the last ${budget.window_seconds} s${wait}` }),
    el("div", { class: "bar" }, el("div", { style: `width: ${used}%` })));
}

function drawWaiting(snapshot) {
  const box = document.getElementById("waiting");
  if (!snapshot.waiting_total) {
    box.replaceChildren(el("div", { class: "empty", text: "No lead is waiting." }));
    return;
  }
  const eta = snapshot.drain_eta_seconds;
  box.replaceChildren(
    el("div", { text: `${snapshot.waiting_total} waiting · all sent in about ${eta < 90 ? `${eta} s` : `${Math.round(eta / 60)} min`}` }),
    el("ul", {}, ...snapshot.waiting.map((group) => el("li", {
      text: `${group.reason.replaceAll("_", " ")}: ${group.count} (next ${inSeconds(group.next_due_at)}, last ${inSeconds(group.last_due_at)})`,
    }))));
}

function drawFetching(snapshot) {
  const box = document.getElementById("fetching");
  box.dataset.count = String(snapshot.fetching);
  box.className = snapshot.fetching ? "" : "empty";
  const next = snapshot.fetching_next_due_at ? ` · next read ${inSeconds(snapshot.fetching_next_due_at)}` : "";
  box.textContent = snapshot.fetching
    ? `${snapshot.fetching} waiting for their CRM record${next}`
    : "No lead is waiting for its CRM record.";
}

function drawRecent(recent) {
  replaceRows(document.getElementById("recent"), recent.map((lead) => el("tr", { "data-lead": lead.id },
    el("td", { text: lead.id }), el("td", { text: lead.status }), el("td", { text: lead.agent || "–" }),
    el("td", { text: lead.pool || "–" }), el("td", { text: lead.rule || "–" }),
    el("td", { class: "reason", text: lead.reason || "–" }), el("td", { text: clock(lead.created_at) }))));
}

function drawDead(snapshot) {
  document.getElementById("dead-total").textContent = String(snapshot.dead_total);
  const list = document.getElementById("dead");
  list.replaceChildren(...(snapshot.dead_latest.length
    ? snapshot.dead_latest.map((dead) => el("li", { text: `${dead.id} · ${clock(dead.dead_at)} · ${dead.reason}` }))
    : [el("li", { class: "empty", text: "None." })]));
}

function drawPipeline(snapshot) {
  const rows = [["In flight", snapshot.in_flight], ["Queue", snapshot.queue_depth ?? "n/a"],
                ["Callbacks unmatched", snapshot.callbacks_unmatched]];
  document.getElementById("pipeline").replaceChildren(
    ...rows.flatMap(([name, value]) => [el("dt", { text: name }), el("dd", { text: String(value) })]));
}

function drawBanner(snapshot) {
  const banner = document.getElementById("paused-banner");
  banner.hidden = !snapshot.delivery_paused;
  banner.textContent = snapshot.delivery_paused
    ? `Delivery to Ryng is paused since ${clock(snapshot.paused_since)}: ${snapshot.pause_reason || ""}. ` +
      "Leads are kept; fix the token, then resume (lead-router delivery resume)."
    : "";
}

let timer = null;

async function refresh() {
  clearTimeout(timer);
  const dot = document.getElementById("status");
  try {
    const answer = await fetch("/ui/snapshot", { credentials: "same-origin", cache: "no-store" });
    if (answer.status === 401) { window.location.assign("/ui"); return; }
    if (!answer.ok) throw new Error(String(answer.status));
    const snapshot = await answer.json();
    drawBanner(snapshot);
    drawAgents(snapshot.agents);
    drawPools(snapshot.pools);
    drawBudget(snapshot.budget);
    drawWaiting(snapshot);
    drawFetching(snapshot);
    drawRecent(snapshot.recent);
    drawDead(snapshot);
    drawPipeline(snapshot);
    document.getElementById("taken-at").textContent = `updated ${clock(snapshot.taken_at)}`;
    dot.className = "dot live";
  } catch (error) {
    dot.className = "dot stale";
    document.getElementById("taken-at").textContent = `cannot reach the router (${error.message})`;
  }
  timer = setTimeout(refresh, POLL_MS);
}

refresh();
