// Refreshes the dashboard's tables from /api/health and /api/dlq without a reload, and replays
// dead jobs. The session cookie authenticates; unsafe calls add the page's CSRF token.
"use strict";

const csrf = document.querySelector('meta[name="csrf-token"]').content;
const REFRESH_MS = 15000; // each refresh runs the eight views (bench/health.py has the cost)

function cell(text, className) {
  const td = document.createElement("td");
  td.textContent = text === null || text === undefined ? "–" : String(text);
  if (className) td.className = className;
  return td;
}

function fill(tableId, rows, columns, emptyText) {
  const body = document.querySelector(`#${tableId} tbody`);
  body.replaceChildren();
  if (rows.length === 0) {
    const tr = document.createElement("tr");
    const td = cell(emptyText, "empty");
    td.colSpan = columns;
    tr.append(td);
    body.append(tr);
    return;
  }
  for (const row of rows) body.append(row);
}

function unit(value, suffix) {
  return value === null || value === undefined ? null : `${value}${suffix}`;
}

function platformRow(p) {
  const tr = document.createElement("tr");
  tr.dataset.platform = p.platform;
  const c = p.connections;
  tr.append(
    cell(p.displayName),
    cell(p.status, `status ${p.status}`),
    cell(`${c.healthy}/${c.total}`),
    cell(p.tokens.expiringSoon),
    cell(unit(p.publishing.successRate24h, "%")),
    cell(unit(p.publishing.p95LatencyMs, " ms")),
    cell(unit(p.publishing.p95QueueWaitMs, " ms")),
    cell(p.publishing.published24h),
    cell(p.dlq.size),
  );
  tr.children[4].dataset.field = "success";
  tr.children[5].dataset.field = "p95";
  tr.children[6].dataset.field = "wait";
  tr.children[8].dataset.field = "dlq";
  return tr;
}

function tokenRow(t) {
  const tr = document.createElement("tr");
  tr.append(
    cell(t.platform),
    cell(t.displayName),
    cell(t.status, `status ${t.status}`),
    cell(t.expiresAt),
    cell(t.hoursUntilExpiry),
  );
  return tr;
}

function deadRow(job) {
  const tr = document.createElement("tr");
  tr.dataset.job = job.jobId;
  const button = document.createElement("button");
  button.type = "button";
  button.dataset.replay = job.jobId;
  button.textContent = "Replay";
  const action = document.createElement("td");
  action.append(button);
  tr.append(
    cell(job.jobId),
    cell(job.platform),
    cell(job.reasonCode),
    cell(job.error ? job.error.message : null),
    cell(job.deadAt),
    action,
  );
  return tr;
}

function errorRow(e) {
  const tr = document.createElement("tr");
  tr.append(
    cell(e.platform),
    cell(e.source),
    cell(e.errorType),
    cell(e.occurrences24h),
    cell(e.occurrences7d),
    cell(e.lastSeenAt),
    cell(e.lastMessage),
  );
  return tr;
}

async function getJson(path) {
  const response = await fetch(path, { credentials: "same-origin", headers: { Accept: "application/json" } });
  if (response.status === 401) {
    window.location.assign("/dashboard"); // the session ended: sign in again
    throw new Error("signed out");
  }
  if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
  return response.json();
}

async function refresh() {
  const [health, dead] = await Promise.all([getJson("/api/health"), getJson("/api/dlq?limit=200")]);
  fill("platforms", health.platforms.map(platformRow), 8, "No platforms installed");
  fill("tokens", health.tokens.map(tokenRow), 5, "No token expires within 7 days");
  fill("dlq", dead.data.map(deadRow), 6, "The dead-letter queue is empty");
  fill("errors", health.recentErrors.map(errorRow), 7, "No errors in 7 days");
  const updated = document.getElementById("updated");
  updated.dateTime = health.generatedAt;
  updated.textContent = health.generatedAt;
}

async function replay(button) {
  const jobId = button.dataset.replay;
  const message = document.getElementById("dlq-message");
  button.disabled = true;
  const response = await fetch(`/api/dlq/${encodeURIComponent(jobId)}/replay`, {
    method: "POST",
    credentials: "same-origin",
    headers: { "X-CSRF-Token": csrf, Accept: "application/json" },
  });
  if (response.ok) {
    button.closest("tr").remove();
    message.textContent = `${jobId} is back in the queue.`;
  } else {
    button.disabled = false;
    message.textContent = `Replaying ${jobId} failed (HTTP ${response.status}).`;
  }
  await refresh().catch(() => {});
}

document.addEventListener("click", (event) => {
  const button = event.target.closest("button[data-replay]");
  if (button) replay(button);
});
setInterval(() => refresh().catch(() => {}), REFRESH_MS);
