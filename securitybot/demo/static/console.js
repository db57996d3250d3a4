// Securitybot demo console: polls /demo/api/state every second and draws Slack and the phones.
// Clicks go to the console's small JSON endpoints, which sign them like Slack and hand them to
// the bot's real /slack/events. No framework and no build step on purpose.
"use strict";

let people = {};
let confirming = false;          // a Slack-style confirm dialog is open
const rendered = {};             // panel key -> last JSON drawn, to keep focus and scroll
const shownModals = new Set();

function esc(s) {
  return String(s ?? "").replace(/[&<>"']/g, c => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));
}

// The small part of Slack mrkdwn the bot uses: *bold*, _italic_, `code`, mentions, line breaks.
function mrkdwn(text) {
  let s = esc(text);
  s = s.replace(/`([^`]+)`/g, "<code>$1</code>");
  s = s.replace(/\*([^*\n]+)\*/g, "<b>$1</b>");
  s = s.replace(/(^|\s)_([^_\n]+)_/g, "$1<i>$2</i>");
  s = s.replace(/&lt;@([A-Z0-9]+)&gt;/g, (_, id) => "<b>@" + esc(people[id]?.name ?? id) + "</b>");
  s = s.replace(/&lt;!(here|channel)&gt;/g, "<b>@$1</b>");
  s = s.replace(/&lt;!subteam\^([A-Z0-9]+)[^&]*&gt;/g, "<b>@$1</b>");
  // Last, as Slack does: the bot's escaped &amp; &lt; &gt; show as the characters they stand for.
  s = s.replace(/&amp;(amp|lt|gt);/g, "&$1;");
  return s.replace(/\n/g, "<br>");
}

function textOf(obj) { return obj ? (obj.type === "mrkdwn" ? mrkdwn(obj.text) : esc(obj.text)) : ""; }

function renderBlocks(msg, channel, where) {
  if (!msg.blocks || !msg.blocks.length) return `<div>${mrkdwn(msg.text)}</div>`;
  return msg.blocks.map(b => {
    if (b.type === "header") return `<div class="blk-header">${textOf(b.text)}</div>`;
    if (b.type === "section") return `<div class="blk-section">${textOf(b.text)}</div>`;
    if (b.type === "context") return `<div class="blk-context">${(b.elements || []).map(textOf).join(" ")}</div>`;
    if (b.type === "actions") {
      return `<div class="blk-actions">` + (b.elements || []).filter(e => e.type === "button").map(e =>
        `<button class="${esc(e.style || "")}" data-where="${esc(where)}" data-channel="${esc(channel)}"
           data-ts="${esc(msg.ts)}" data-block="${esc(b.block_id || "")}" data-action="${esc(e.action_id)}"
           data-value="${esc(e.value || "")}" data-confirm='${esc(e.confirm ? JSON.stringify(e.confirm) : "")}'
           data-testid="btn-${esc(e.action_id)}">${textOf(e.text)}</button>`).join("") + `</div>`;
    }
    return "";
  }).join("");
}

function renderMessages(messages, ephemeral, channel, where) {
  const when = ts => new Date(parseFloat(ts) * 1000).toLocaleTimeString();
  const items = messages.map(m => {
    const mine = m.user && m.user !== "UBOT";
    const from = mine ? (people[m.user]?.name ?? m.user) : "Securitybot";
    const edited = m.edited ? ' <span class="muted">(edited)</span>' : "";
    return `<div class="msg ${mine ? "user" : "bot"}" data-testid="msg"><div class="from">${esc(from)}<span class="ts">${when(m.ts)}</span>${edited}</div>${renderBlocks(m, channel, where)}</div>`;
  });
  for (const e of ephemeral) {
    items.push(`<div class="msg ephemeral" data-testid="ephemeral"><div class="from">Only visible to ${esc(people[e.user]?.name ?? e.user)}</div>${mrkdwn(e.text)}</div>`);
  }
  return items.join("") || '<p class="muted">No messages yet.</p>';
}

async function post(path, body) {
  const resp = await fetch(path, {method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body)});
  const data = await resp.json().catch(() => ({}));
  if (!resp.ok) console.warn(path, resp.status, data);
  setTimeout(refresh, 150);
  return data;
}

function employeeCard(e) {
  const card = document.createElement("div");
  card.className = "panel employee";
  card.id = "emp-" + e.id;
  card.dataset.testid = "employee-" + e.id;
  card.innerHTML = `
    <div>
      <h3>${esc(e.name)} <span class="muted">· DM with Securitybot · ${esc(e.email)}</span></h3>
      <div class="messages" data-part="dm"></div>
      <form class="reply" data-testid="reply-${esc(e.id)}">
        <input name="text" placeholder="Reply as ${esc(e.name.split(" ")[0])} (or whoever holds their session): ack, no, help…" autocomplete="off">
        <button type="submit">Send</button>
      </form>
      <button class="new-alert" data-testid="new-alert-${esc(e.id)}">New example alert</button>
      <div data-part="reset"></div>
    </div>
    <div class="phone" data-testid="phone-${esc(e.id)}"><h4>${esc(e.name.split(" ")[0])}'s phone · Duo Mobile</h4><div data-part="phone"></div></div>`;
  card.querySelector("form").addEventListener("submit", ev => {
    ev.preventDefault();
    const input = ev.target.elements.text;
    if (input.value.trim()) post("/demo/api/say", {user: e.id, text: input.value});
    input.value = "";
  });
  card.querySelector(".new-alert").addEventListener("click", () => post("/demo/api/alert", {user: e.id}));
  return card;
}

function renderPhone(e) {
  const pushes = e.pushes.map(p => `
    <div class="push" data-testid="push">
      <b>Login request</b><br>${Object.entries(p.info).map(([k, v]) => `${esc(k)}: ${esc(v)}`).join("<br>")}
      <div class="muted">${p.age} s ago</div>
      <div class="actions">
        <button class="primary" data-push="${esc(p.txid)}" data-answer="allow" data-testid="push-approve">Approve</button>
        <button class="danger" data-push="${esc(p.txid)}" data-answer="deny" data-testid="push-deny">Deny</button>
        <button class="danger" data-push="${esc(p.txid)}" data-answer="fraud" data-testid="push-fraud">Report fraud</button>
      </div>
    </div>`).join("");
  const last = e.answered.map(a => `<div class="muted">Last push: ${{allow: "approved ✓", fraud: "reported as fraud ⚠"}[a.answer] || "denied ✗"}</div>`).join("");
  return pushes || (last + '<p class="muted">No pending requests.</p>');
}

// The on-call's PagerDuty app: escalations that paged, with Acknowledge / Resolve.
function renderPager(pager) {
  return pager.incidents.map(i => `
    <div class="incident inc-${esc(i.status)}" data-testid="incident">
      <b>#${i.number} · ${esc(i.severity)}</b> <span class="st">${esc(i.status)}</span><br>${esc(i.summary)}
      ${i.status === "resolved" ? "" : `<div class="actions">
        ${i.status === "triggered" ? `<button class="primary" data-pager="${esc(i.dedup_key)}" data-pager-action="acknowledge" data-testid="pager-ack">Acknowledge</button>` : ""}
        <button data-pager="${esc(i.dedup_key)}" data-pager-action="resolve" data-testid="pager-resolve">Resolve</button></div>`}
    </div>`).join("") || '<p class="muted">No incidents: nobody has been paged.</p>';
}

function update(key, el, value, html) {
  const json = JSON.stringify(value);
  if (rendered[key] === json) return;
  rendered[key] = json;
  el.innerHTML = html();
  // Chat panes read bottom-up like Slack: keep the newest message in view.
  if (el.classList.contains("messages")) el.scrollTop = el.scrollHeight;
}

function draw(state) {
  people = state.people;
  update("narration", document.getElementById("narration"), state.narration, () =>
    state.narration.map(n => `<li>${mrkdwn(n.text)}</li>`).join("") || '<li class="muted">Click a button in a DM below, or play the attack scenario.</li>');
  update("alerts", document.getElementById("alerts"), state.alerts, () => state.alerts.map(a =>
    `<tr data-testid="alert-row-${a.id}"><td>${a.id}</td><td>${esc(a.user)}</td><td>${esc(a.kind)}</td>
     <td><span class="st st-${esc(a.status)}" data-testid="alert-status-${a.id}">${esc(a.status)}</span>${a.outcome ? " · " + esc(a.outcome) : ""}${a.reason ? ` <span class="muted">(${esc(a.reason)})</span>` : ""}${a.parent_id ? ` <span class="muted">→ #${a.parent_id}</span>` : ""}</td>
     <td>${a.seconds_left === null ? "" : a.seconds_left + " s"}</td></tr>`).join(""));
  const box = document.getElementById("employees");
  for (const e of state.employees) {
    let card = document.getElementById("emp-" + e.id);
    if (!card) { card = employeeCard(e); box.appendChild(card); }
    update("dm-" + e.id, card.querySelector('[data-part="dm"]'), [e.messages, e.ephemeral], () => renderMessages(e.messages, e.ephemeral, e.channel, "dm:" + e.id));
    update("phone-" + e.id, card.querySelector('[data-part="phone"]'), [e.pushes, e.answered], () => renderPhone(e));
    update("reset-" + e.id, card.querySelector('[data-part="reset"]'), e.sessions_reset, () =>
      e.sessions_reset ? `<div class="reset" data-testid="sessions-reset-${esc(e.id)}">Slack sessions reset for ${esc(e.name)} (${e.sessions_reset}×): every signed-in client, the attacker's too, is signed out.</div>` : "");
  }
  const persona = document.getElementById("persona");
  if (!persona.options.length) {
    persona.innerHTML = state.responders.map(r => `<option value="${esc(r.id)}">${esc(r.name)} (${r.role === "responder" ? "security team" : "not on the team"})</option>`).join("");
  }
  update("channel", document.getElementById("channel-messages"), [state.channel.messages, state.channel.ephemeral], () =>
    renderMessages(state.channel.messages, state.channel.ephemeral, state.channel.id, "channel"));
  document.getElementById("pager-owner").textContent = state.pager.owner || "The on-call";
  update("pager", document.getElementById("pager-incidents"), state.pager, () => renderPager(state.pager));
  document.getElementById("play-attack").disabled = state.scenario_running;
  drawModals(state.modals);
}

function dialog(html) {
  const overlay = document.getElementById("overlay");
  overlay.innerHTML = `<div class="dialog" role="dialog">${html}</div>`;
  overlay.hidden = false;
  return overlay;
}
function closeDialog() { const o = document.getElementById("overlay"); o.hidden = true; o.innerHTML = ""; }

function drawModals(modals) {
  if (confirming) return;
  const key = JSON.stringify(modals.map(m => [m.view_id, m.error]));
  if (rendered.modals === key) return;
  rendered.modals = key;
  if (!modals.length) { if (shownModals.size) { shownModals.clear(); closeDialog(); } return; }
  const m = modals[0];
  shownModals.clear(); shownModals.add(m.view_id);
  const o = dialog(`<h3>${esc(m.title)}</h3><p class="muted">Slack modal shown to ${esc(people[m.user]?.name ?? m.user)}</p>
    <label>${esc(m.label)}<textarea data-testid="modal-note"></textarea></label>
    ${m.error ? `<p class="error">${esc(m.error)}</p>` : ""}
    <div class="buttons"><button data-testid="modal-cancel">Cancel</button><button class="primary" data-testid="modal-submit">${esc(m.submit)}</button></div>`);
  o.querySelector('[data-testid="modal-submit"]').onclick = () => { rendered.modals = null; post("/demo/api/modal", {view_id: m.view_id, note: o.querySelector("textarea").value}); };
  o.querySelector('[data-testid="modal-cancel"]').onclick = () => { rendered.modals = null; post("/demo/api/modal", {view_id: m.view_id, cancel: true}); };
}

function clickButton(btn) {
  const where = btn.dataset.where;
  const user = where === "channel" ? document.getElementById("persona").value : where.slice(3);
  const send = () => post("/demo/api/click", {user, channel: btn.dataset.channel, ts: btn.dataset.ts,
    action_id: btn.dataset.action, value: btn.dataset.value, block_id: btn.dataset.block});
  if (!btn.dataset.confirm) return send();
  // Slack asks before a button with a "confirm" object; so does the console.
  const c = JSON.parse(btn.dataset.confirm);
  confirming = true;
  const o = dialog(`<h3>${textOf(c.title)}</h3><p>${textOf(c.text)}</p>
    <div class="buttons"><button data-testid="confirm-deny">${textOf(c.deny)}</button><button class="danger" data-testid="confirm-ok">${textOf(c.confirm)}</button></div>`);
  o.querySelector('[data-testid="confirm-deny"]').onclick = () => { confirming = false; closeDialog(); };
  o.querySelector('[data-testid="confirm-ok"]').onclick = () => { confirming = false; closeDialog(); rendered.modals = null; send(); };
}

document.addEventListener("click", ev => {
  const btn = ev.target.closest("button");
  if (!btn) return;
  if (btn.dataset.action) { ev.preventDefault(); clickButton(btn); }
  else if (btn.dataset.push) { ev.preventDefault(); post("/demo/api/push", {txid: btn.dataset.push, answer: btn.dataset.answer}); }
  else if (btn.dataset.pager) { ev.preventDefault(); post("/demo/api/pager", {dedup_key: btn.dataset.pager, action: btn.dataset.pagerAction}); }
});
document.getElementById("play-attack").addEventListener("click", () => post("/demo/api/scenario", {name: "attack"}));

async function refresh() {
  try {
    const resp = await fetch("/demo/api/state", {cache: "no-store"});
    if (resp.ok) draw(await resp.json());
  } catch (err) { console.warn("state", err); }
}
refresh();
setInterval(refresh, 1000);
