// The Seisan web console. Plain JavaScript, no framework: it reads the node's JSON API
// with a member's token (Authorization: Seisan-Token ...) and shows what that member
// may read. Operators (the clearing house, observers) follow the event stream
// (/v1/events, read with fetch because EventSource cannot send the header); an
// exchange, for which the stream is closed, polls /v1/status instead.
"use strict";

const CHAIN = JSON.parse(document.getElementById("chain").textContent);
const PAGES = ["consortium", "markets", "settlement", "custody", "bank"];
const OPERATORS_ONLY = "for the clearing house and observers";
const TOKEN_KEY = "seisan-token";
// How many recent trades and latency samples the page keeps (bounded memory).
const MAX_TRADES = 50;
const MAX_SAMPLES = 120;
const POLL_MS = 1000;

const state = {
  token: null,
  me: null, // {id, name, role}
  operator: false,
  members: [],
  status: null,
  trades: [], // newest first
  lastTradeId: null,
  freshTrades: new Set(),
  latency: [], // finality latency samples, ms
  signed: {}, // member id -> {height, view} of the newest certificate seen with its signature
  lastHeight: null,
  lastHeightAt: null,
  refreshing: false,
  again: false,
};

// ---- small helpers -------------------------------------------------------------
const $ = (id) => document.getElementById(id);
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key === "class") node.className = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) {
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}
function asset(id) {
  return CHAIN.assets[id] || { symbol: "#" + id, scale: 0 };
}
function assetBySymbol(symbol) {
  const index = CHAIN.assets.findIndex((a) => a.symbol === symbol);
  return index < 0 ? null : index;
}
// A minor-unit integer (string) as a decimal of `scale` places, trailing zeros dropped.
function decimal(minor, scale) {
  if (minor === null || minor === undefined) return "-";
  let text = String(minor);
  const negative = text.startsWith("-");
  if (negative) text = text.slice(1);
  if (!/^[0-9]+$/.test(text)) return String(minor);
  if (scale > 0) {
    text = text.padStart(scale + 1, "0");
    let whole = text.slice(0, text.length - scale);
    let fraction = text.slice(text.length - scale).replace(/0+$/, "");
    text = fraction ? whole + "." + fraction : whole;
  }
  return (negative ? "-" : "") + text;
}
function amount(minor, assetId) {
  return decimal(minor, asset(assetId).scale);
}
function memberName(id) {
  const member = state.members.find((m) => m.id === id);
  return member ? member.name : "#" + id;
}
function time(ms) {
  return ms ? new Date(ms).toISOString().replace(".000Z", "Z") : "-";
}
function percentBps(bps) {
  return bps === null || bps === undefined ? "-" : (Number(bps) / 100).toFixed(2) + "%";
}
function pairName(pair) {
  return asset(pair.base).symbol + "/" + asset(pair.quote).symbol;
}
// A compact text for a value of unknown shape (proposals, evidence, deposits).
function cell(key, value) {
  if (value === null || value === undefined) return "-";
  if (/_ms$/.test(key) && typeof value === "number") return time(value);
  if (key === "member" && typeof value === "number") return memberName(value);
  if (typeof value === "object") {
    const text = JSON.stringify(value);
    return text.length > 160 ? text.slice(0, 157) + "..." : text;
  }
  return String(value);
}

function table(id, headers, rows, empty) {
  const node = $(id);
  node.replaceChildren();
  node.append(el("tr", {}, ...headers.map((h) => el("th", {}, h))));
  if (!rows.length) {
    node.append(el("tr", {}, el("td", { colspan: String(headers.length), class: "muted" }, empty || "none")));
    return;
  }
  for (const row of rows) node.append(row);
}
function row(cells, attrs) {
  return el("tr", attrs || {}, ...cells.map((c) => (c instanceof Node ? c : el("td", {}, c))));
}
// A table of objects of unknown shape: one column per key of the first.
function genericTable(id, items, empty) {
  const keys = items.length ? Object.keys(items[0]) : ["-"];
  table(id, keys, items.map((item) => row(keys.map((k) => cell(k, item[k])), { "data-item": "true" })), empty);
}
function operatorsOnly(id) {
  const node = $(id);
  const notice = el("div", { class: "operators-only", "data-operators-only": "true" },
    "The " + node.id.replace(/-table$/, "") + " view is " + OPERATORS_ONLY + ".");
  if (node.tagName === "TABLE") {
    node.replaceChildren(el("tr", {}, el("td", {}, notice)));
  } else {
    node.replaceChildren(notice);
  }
}

// ---- the API -------------------------------------------------------------------
class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}
async function api(path, options) {
  const response = await fetch(path, {
    ...(options || {}),
    headers: { Authorization: state.token },
    cache: "no-store",
  });
  const body = await response.json().catch(() => null);
  if (!response.ok) {
    const error = (body && body.error) || {};
    throw new ApiError(response.status, error.code || "http_" + response.status, error.message || response.statusText);
  }
  return body;
}

// ---- the token -----------------------------------------------------------------
function normalizeToken(text) {
  text = (text || "").trim();
  if (!text) return null;
  return text.startsWith("Seisan-Token ") ? text : "Seisan-Token " + text;
}
function tokenKey(token) {
  return token.slice("Seisan-Token ".length).split(".")[0];
}
function takeTokenFromFragment() {
  const match = /^#token=(.+)$/.exec(location.hash);
  if (!match) return false;
  sessionStorage.setItem(TOKEN_KEY, normalizeToken(decodeURIComponent(match[1])));
  // Out of the address bar and the history, so it is not shared by copying the link.
  history.replaceState(null, "", location.pathname + "#consortium");
  return true;
}
function showLogin(message) {
  $("login").hidden = false;
  $("pages").hidden = true;
  $("logout").hidden = true;
  $("login-error").textContent = message || "";
}

async function signIn(token) {
  state.token = token;
  let members;
  try {
    members = (await api("/v1/members")).members;
  } catch (error) {
    sessionStorage.removeItem(TOKEN_KEY);
    showLogin("The node refused this token: " + error.message);
    return;
  }
  const key = tokenKey(token);
  const me = members.find((m) => m.public_key === key);
  if (!me) {
    sessionStorage.removeItem(TOKEN_KEY);
    showLogin("No current member has the key " + key);
    return;
  }
  state.members = members;
  state.me = me;
  state.operator = me.role === "clearing_house" || me.role === "observer";
  $("member").textContent = me.name + " (" + me.role.replace("_", " ") + ")";
  $("member").dataset.role = me.role;
  $("login").hidden = true;
  $("pages").hidden = false;
  $("logout").hidden = false;
  showPage();
  await refresh();
  if (state.operator) followEvents();
  else $("live").textContent = "live: polling /v1/status each second";
  setInterval(pollStatus, POLL_MS);
}

// ---- live updates --------------------------------------------------------------
function recordHeight(height, latencyMs) {
  if (state.lastHeight !== null && height <= state.lastHeight) return;
  const now = Date.now();
  if (latencyMs !== undefined) {
    state.latency.push(latencyMs);
  } else if (state.lastHeightAt !== null) {
    // Polling: the time between two heights seen, per block.
    state.latency.push((now - state.lastHeightAt) / (height - state.lastHeight));
  }
  while (state.latency.length > MAX_SAMPLES) state.latency.shift();
  state.lastHeight = height;
  state.lastHeightAt = now;
  drawLatency();
  refresh();
}

async function pollStatus() {
  try {
    const status = await api("/v1/status");
    state.status = status;
    renderStatus();
    if (!state.operator || !state.streaming) recordHeight(status.height);
  } catch (error) {
    $("live").textContent = "status: " + error.message;
  }
}

// Reads /v1/events (server-sent events) with fetch so the token can go in a header.
async function followEvents() {
  for (;;) {
    try {
      const response = await fetch("/v1/events", { headers: { Authorization: state.token } });
      if (!response.ok) throw new Error("event stream answered " + response.status);
      state.streaming = true;
      $("live").textContent = "live: event stream";
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true });
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const message = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const data = message.split("\n").filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trim()).join("\n");
          if (!data) continue;
          const block = JSON.parse(data);
          recordHeight(block.height, Date.now() - block.timestamp_ms);
        }
      }
    } catch (error) {
      $("live").textContent = "live: reconnecting (" + error.message + ")";
    }
    state.streaming = false;
    await new Promise((resolve) => setTimeout(resolve, 2000));
  }
}

function drawLatency() {
  const svg = $("latency");
  const samples = state.latency;
  $("latency-note").textContent = state.operator
    ? "Each finalized block from the event stream: when it arrived here minus its timestamp."
    : "The time per block between heights seen by polling /v1/status (the event stream is " + OPERATORS_ONLY + ").";
  svg.replaceChildren();
  if (samples.length < 2) return;
  const max = Math.max(...samples, 1);
  // The newest sample at the right edge, older ones to its left.
  // Until the chart fills, at least 20 samples' width, so a few already show as a line.
  const step = 600 / (Math.min(MAX_SAMPLES, Math.max(samples.length, 20)) - 1);
  const points = samples.map((v, i) => (600 - (samples.length - 1 - i) * step).toFixed(1) + "," + (115 - (v / max) * 105).toFixed(1)).join(" ");
  const line = document.createElementNS(svg.namespaceURI, "polyline");
  line.setAttribute("points", points);
  svg.append(line);
  const label = document.createElementNS(svg.namespaceURI, "text");
  label.setAttribute("x", "4");
  label.setAttribute("y", "12");
  label.setAttribute("font-size", "10");
  label.textContent = "max " + Math.round(max) + " ms, last " + Math.round(samples[samples.length - 1]) + " ms";
  svg.append(label);
}

// Refreshes the shown page's data; a refresh asked for while one runs runs once after.
async function refresh() {
  if (state.refreshing) {
    state.again = true;
    return;
  }
  state.refreshing = true;
  try {
    do {
      state.again = false;
      await render[currentPage()]();
      $("footer").textContent = "Updated " + new Date().toISOString() + " at height " + (state.lastHeight ?? "-");
      $("footer").className = "muted";
      document.body.dataset.renderedHeight = String(state.lastHeight ?? "");
    } while (state.again);
  } catch (error) {
    $("footer").textContent = "Could not update: " + error.message;
    $("footer").className = "error";
  } finally {
    state.refreshing = false;
  }
}

function currentPage() {
  const page = location.hash.replace(/^#/, "");
  return PAGES.includes(page) ? page : "consortium";
}
function showPage() {
  const page = currentPage();
  for (const name of PAGES) {
    $("page-" + name).classList.toggle("shown", name === page);
  }
  for (const link of document.querySelectorAll("#nav a")) {
    link.classList.toggle("active", link.dataset.page === page);
  }
  document.body.dataset.page = page;
}

// ---- pages ---------------------------------------------------------------------
function renderStatus() {
  const s = state.status;
  if (!s) return;
  $("status-height").textContent = s.height;
  $("status-view").textContent = s.view;
  $("status-epoch").textContent = s.epoch + " / " + s.quorum;
  $("status-behind").textContent = s.behind_by + (s.syncing ? " (syncing)" : "");
  $("status-mempool").textContent = s.mempool_depth;
  $("status-node").textContent = s.member_name + (s.voting ? ", voting" : ", observing") + (s.fenced ? ", FENCED" : "");
  const peers = $("peers");
  peers.replaceChildren(...(s.peers.length ? s.peers.map((p) => el("li", {}, p)) : [el("li", { class: "muted" }, "no peers")]));
}

const render = {
  async consortium() {
    const [status, members, evidence, governance] = await Promise.all([
      api("/v1/status"),
      api("/v1/members"),
      api("/v1/evidence"),
      api("/v1/governance"),
    ]);
    state.status = status;
    state.members = members.members;
    renderStatus();
    // Who signed the newest finalized block's certificate: each validator's last height
    // and view seen signing (a quorum signs each block, so one may skip some).
    if (status.height > 0) {
      const block = await api("/v1/blocks/" + status.height);
      const vote = block.certificate.vote;
      for (const [member] of block.certificate.signatures) {
        const seen = state.signed[member];
        if (!seen || seen.height < vote.height) state.signed[member] = { height: vote.height, view: vote.view };
      }
    }
    table("members-table", ["Member", "Role", "Takes part as", "Status", "Last signed (height / view)", "Key"],
      members.members.map((m) => row([m.name, m.role.replace("_", " "),
        m.validator ? (status.validators.includes(m.name) ? "validator" : "validator (next epoch)") : "observer",
        m.status,
        el("td", { class: "num signed" }, state.signed[m.id] ? state.signed[m.id].height + " / " + state.signed[m.id].view : "-"),
        m.public_key.slice(0, 16) + "..."], { "data-member": m.name })));
    table("evidence-table", ["Against", "Kind", "View / height", "Verified"],
      evidence.evidence.map((e) => row([memberName(e.member), e.kind, e.view ?? e.height ?? "-", e.verified ? "yes" : "NO"])),
      "no evidence: no validator has been caught equivocating");
    const pending = governance.proposals.filter((p) => p.status === "open");
    table("proposals-table", ["Proposal", "Kind", "Change", "Proposed by", "Approvals", "Expires at height"],
      pending.map((p) => row([p.id, p.kind, cell("change", p.change), p.proposer_name,
        el("td", { class: "approvals" }, p.counted_approvals + " of " + p.quorum + " (" + p.approvals.join(", ") + ")"),
        p.expires_at_height], { "data-proposal": String(p.id) })),
      "no pending proposals");
    genericTable("scheduled-table", governance.scheduled, "nothing scheduled");
    drawLatency();
  },

  async markets() {
    const books = $("books");
    const fetched = await Promise.all(CHAIN.pairs.map((p) => api("/v1/book/" + p.base + "/" + p.quote)));
    books.replaceChildren();
    fetched.forEach((book, index) => {
      const pair = CHAIN.pairs[index];
      const base = assetBySymbol(pair.base);
      const quote = assetBySymbol(pair.quote);
      const side = (orders, name) => {
        const t = el("table", { class: "book-side", "data-side": name });
        t.append(el("tr", {}, el("th", {}, name === "asks" ? "Ask" : "Bid"), el("th", {}, "Remaining " + pair.base), el("th", {}, "Member")));
        if (!orders.length) t.append(el("tr", {}, el("td", { colspan: "3", class: "muted" }, "no " + name)));
        for (const o of orders) {
          t.append(el("tr", { "data-order-id": String(o.id) },
            el("td", { class: "num price side-" + o.side }, decimal(o.limit_price, asset(quote).scale)),
            el("td", { class: "num quantity" }, decimal(o.remaining, asset(base).scale)),
            el("td", {}, memberName(o.member))));
        }
        return t;
      };
      books.append(el("div", { class: "book", "data-pair": book.pair },
        el("h3", {}, "Order book " + book.pair), side(book.asks, "asks"), side(book.bids, "bids")));
    });

    // New trades since the last one seen, oldest first, a page at a time.
    for (;;) {
      const after = state.lastTradeId === null ? "" : "&after=" + state.lastTradeId;
      const page = (await api("/v1/trades?limit=500" + after)).trades;
      for (const trade of page) {
        state.trades.unshift(trade);
        if (state.lastTradeId !== null) state.freshTrades.add(trade.id);
        state.lastTradeId = trade.id;
      }
      if (page.length < 500) break;
    }
    state.trades.length = Math.min(state.trades.length, MAX_TRADES);
    table("trades-table", ["Trade", "Height", "Time", "Pair", "Price", "Quantity", "Value", "Buyer", "Seller"],
      state.trades.map((t) => row([
        el("td", { class: "num id" }, t.id), el("td", { class: "num" }, t.height), time(t.timestamp_ms), pairName(t.pair),
        el("td", { class: "num price" }, amount(t.price, t.pair.quote)),
        el("td", { class: "num quantity" }, amount(t.quantity, t.pair.base)),
        el("td", { class: "num value" }, amount(t.value, t.pair.quote)),
        memberName(t.buyer), memberName(t.seller),
      ], { "data-trade-id": String(t.id), class: state.freshTrades.has(t.id) ? "fresh" : "" })),
      "no trades yet");

    $("my-orders-title").textContent = "Open orders of " + state.me.name;
    const orders = (await api("/v1/members/" + state.me.name + "/orders")).orders;
    table("orders-table", ["Order", "Pair", "Side", "Price", "Remaining", "Placed"],
      orders.map((o) => row([o.id, pairName(o.pair), o.side, amount(o.limit_price, o.pair.quote),
        amount(o.remaining, o.pair.base), time(o.placed_at_ms)])),
      "no open orders");
  },

  async settlement() {
    const [confirmations, topups] = await Promise.all([api("/v1/confirmations"), api("/v1/topups")]);
    if (state.operator) {
      const cycles = (await api("/v1/cycles")).cycles;
      const t = el("table", { id: "cycles-table" });
      $("cycles").replaceChildren(t);
      table("cycles-table", ["Cycle", "Opened", "Status", "Matched", "Asset", "Gross", "Net", "Saving", "Efficiency"],
        cycles.slice().reverse().flatMap((c) => {
          const status = typeof c.status === "string" ? c.status : Object.keys(c.status)[0];
          const lines = c.netting.length ? c.netting : [null];
          return lines.map((n) => row([c.id, time(c.opened_at_ms), status, c.matched,
            el("td", { class: "asset" }, n ? asset(n.asset).symbol : "-"),
            el("td", { class: "num gross" }, n ? amount(n.gross, n.asset) : "-"),
            el("td", { class: "num net" }, n ? amount(n.net, n.asset) : "-"),
            el("td", { class: "num saving" }, n ? amount((BigInt(n.gross) - BigInt(n.net)).toString(), n.asset) : "-"),
            n ? percentBps(n.efficiency_bps) : "-"], { "data-cycle": String(c.id) }));
        }), "no cycles");
    } else {
      operatorsOnly("cycles");
    }
    const variant = (value) => (typeof value === "string" ? value : Object.keys(value)[0]);
    table("confirmations-table", ["Trade ref", "Buyer", "Seller", "Pair", "Quantity", "Price", "Confirmed by", "Status"],
      confirmations.confirmations.map((c) => {
        const terms = c.submissions.length ? c.submissions[0].terms : null;
        const status = typeof c.status === "string" ? c.status
          : variant(c.status) + " " + JSON.stringify(Object.values(c.status)[0]).replace(/[{}"]/g, "");
        return row([c.trade_ref,
          terms ? memberName(terms.buyer) : "-", terms ? memberName(terms.seller) : "-", terms ? pairName(terms.pair) : "-",
          el("td", { class: "num quantity" }, terms ? amount(terms.quantity, terms.pair.base) : "-"),
          el("td", { class: "num price" }, terms ? amount(terms.price, terms.pair.quote) : "-"),
          c.submissions.map((s) => memberName(s.member)).join(", "), status], { "data-item": "true" });
      }), "no confirmations");
    const now = Date.now();
    table("topups-table", ["Top-up", "Member", "Asset", "Needed", "Shortfall", "For", "Deadline", "Status"],
      topups.top_ups.map((t) => {
        const open = t.status === "open";
        const left = open ? " (" + Math.max(0, Math.round((t.deadline_ms - now) / 60000)) + " min left)" : "";
        return row([t.id, memberName(t.member), asset(t.asset).symbol,
          el("td", { class: "num needed" }, amount(t.needed, t.asset)),
          el("td", { class: "num shortfall" }, amount(t.shortfall, t.asset)),
          variant(t.subject) + " " + Object.values(Object.values(t.subject)[0])[0],
          el("td", { class: open && t.deadline_ms < now ? "bad" : "" }, time(t.deadline_ms) + left),
          variant(t.status)], { "data-item": "true" });
      }), "no top-ups requested");
  },

  async custody() {
    const [supply, deposits, withdrawals, balances] = await Promise.all([
      api("/v1/supply"), api("/v1/deposits"), api("/v1/withdrawals"),
      api("/v1/members/" + state.me.name + "/balances"),
    ]);
    table("supply-table", ["Asset", "Credited", "Debited", "Held", "Locked"],
      supply.assets.map((a) => row([a.symbol,
        el("td", { class: "num credited" }, amount(a.credited, a.asset)),
        el("td", { class: "num debited" }, amount(a.debited, a.asset)),
        el("td", { class: "num held" }, amount(a.held, a.asset)),
        el("td", { class: "num locked" }, amount(a.locked, a.asset))], { "data-asset": a.symbol })));
    $("balances-member").textContent = state.me.name;
    table("balances-table", ["Asset", "Inventory", "Customers", "Locked"],
      balances.balances.map((b) => row([b.symbol,
        el("td", { class: "num inventory" }, amount(b.balance.inventory, b.asset)),
        el("td", { class: "num customers" }, amount(b.balance.customers, b.asset)),
        el("td", { class: "num locked" }, amount(b.balance.locked, b.asset))], { "data-asset": b.symbol })));
    // /v1/status names custody_undercovered only when this node watches a public chain.
    const watching = state.status && state.status.custody_undercovered !== undefined;
    if (watching) {
      const reserves = await api("/v1/reserves");
      const t = el("table", { id: "reserves-table" });
      $("reserves").replaceChildren(el("p", {}, "Public-chain block " + reserves.public_chain_block + ": " + reserves.status), t);
      table("reserves-table", ["Asset", "Liabilities", "Hot", "Cold", "Coverage", "Hot share", "Hot cap"],
        reserves.assets.map((r) => row([r.symbol, amount(r.liabilities, r.asset), amount(r.hot, r.asset), amount(r.cold, r.asset),
          el("td", { class: r.undercovered ? "bad" : "good" }, percentBps(r.coverage_bps)),
          el("td", { class: r.hot_share_bps !== null && Number(r.hot_share_bps) > r.hot_cap_bps ? "bad" : "" }, percentBps(r.hot_share_bps)),
          percentBps(r.hot_cap_bps)], { "data-asset": r.symbol })));
    } else {
      $("reserves").replaceChildren(el("p", { class: "muted", id: "no-custody" },
        "This node watches no public chain (no public_chain in genesis, or no --eth-rpc): ask a node that does."));
    }
    const short = (hex) => (hex ? String(hex).slice(0, 12) + "..." : "-");
    table("deposits-table", ["Deposit", "Asset", "Amount", "From", "Transaction", "Attested by", "Outcome"],
      deposits.deposits.map((d) => {
        // The version that reached the quorum, else the first one seen.
        const [fact, outcome] = d.outcome || [d.attestations[0][0], null];
        const version = d.attestations.find(([f]) => JSON.stringify(f) === JSON.stringify(fact));
        const result = outcome === null ? "waiting for attestations"
          : outcome === "unregistered" ? "unregistered sender: not credited"
          : "credited to " + memberName(outcome.credited.member);
        return row([short(d.id), asset(fact.asset).symbol,
          el("td", { class: "num amount" }, amount(fact.amount, fact.asset)), short(fact.from), short(fact.tx_hash),
          version ? version[1].map(memberName).join(", ") : "-", result], { "data-item": "true" });
      }), "no deposits");
    table("withdrawals-table", ["Withdrawal", "Member", "Asset", "Amount", "To", "Status", "Payout attested by"],
      withdrawals.withdrawals.map((w) => {
        const status = typeof w.status === "string" ? w.status
          : Object.keys(w.status)[0] + " " + short(Object.values(w.status)[0].tx_hash);
        return row([w.id, memberName(w.member), asset(w.asset).symbol,
          el("td", { class: "num amount" }, amount(w.amount, w.asset)), short(w.to), status,
          w.payout_attesters.map(memberName).join(", ") || "-"], { "data-item": "true" });
      }), "no withdrawals");
    if (withdrawals.waiting_for_hot_wallet && withdrawals.waiting_for_hot_wallet.length) {
      $("withdrawals-table").after(el("p", { class: "bad" }, "Waiting for the hot wallet: " + JSON.stringify(withdrawals.waiting_for_hot_wallet)));
    }
  },

  async bank() {
    const status = await api("/v1/status");
    state.status = status;
    const m = status.mirrors;
    $("mirrors").replaceChildren(m
      ? el("p", { id: "mirror-status" }, m.pending + " mirror transfers pending, " + m.stalled + " stalled (bound " + m.bound_ms + " ms)" +
          (m.oldest_stalled_reference ? "; oldest stalled: " + m.oldest_stalled_reference : ""))
      : el("p", { class: "muted" }, "genesis has no fiat asset: no bank leg"));
    if (!state.operator) {
      operatorsOnly("reconciliation");
      return;
    }
    const r = await api("/v1/reconciliation");
    const blocks = [el("p", { class: r.clean ? "good" : "bad", id: "reconciliation-verdict" },
      (r.clean ? "Reconciled" : "Not reconciled") + (r.bank_connected ? "" : " (this node has no bank connection)"))];
    for (const [currency, c] of Object.entries(r.currencies || {})) {
      const id = "reconciliation-" + currency;
      blocks.push(el("h3", {}, currency + " at height " + c.height), el("table", { id }));
      const assetId = assetBySymbol(currency);
      const fmt = (v) => (v === null || v === undefined ? "-" : amount(v, assetId));
      $("reconciliation").replaceChildren(...blocks);
      table(id, ["Exchange", "Ledger fiat", "Bank trust", "Unconfirmed mirrors", "Pending withdrawals", "Unexplained", "Reconciled"],
        c.exchanges.map((e) => row([e.member, fmt(e.ledger_fiat), fmt(e.bank_trust), fmt(e.unconfirmed_mirrors),
          fmt(e.pending_withdrawals), fmt(e.unexplained_difference), e.reconciled ? "yes" : "no"], { "data-member": e.member })));
      if (c.outstanding && c.outstanding.length) {
        blocks.push(el("ul", {}, ...c.outstanding.map((o) => el("li", {}, o))));
      }
    }
    $("reconciliation").replaceChildren(...blocks);
  },
};

// ---- start ---------------------------------------------------------------------
document.addEventListener("DOMContentLoaded", () => {
  $("chain-id").textContent = CHAIN.chain_id;
  takeTokenFromFragment();
  window.addEventListener("hashchange", () => {
    // A token given to an open page: start afresh with it.
    if (takeTokenFromFragment()) {
      location.reload();
      return;
    }
    if (!state.me) return;
    showPage();
    refresh();
  });
  $("login-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const token = normalizeToken($("token-input").value);
    $("token-input").value = "";
    if (!token) return;
    sessionStorage.setItem(TOKEN_KEY, token);
    signIn(token);
  });
  $("logout").addEventListener("click", () => {
    sessionStorage.removeItem(TOKEN_KEY);
    location.reload();
  });
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) signIn(token);
  else showLogin();
});
