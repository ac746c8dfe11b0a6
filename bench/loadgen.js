// Load generator for the product benchmark: the official socket.io-client 4.8 over websockets.
// Adapted from ../shared/anchors/loadgen.js (same step logic and CPU/RSS accounting) to drive
// the real product: real JWTs, real bookings, the contract's payloads (no sentAt field: latency
// is matched by the unique latitude each update carries).
// Loopback only; every loop is bounded in count and time; a hard deadline exits the process.
//
//   node bench/loadgen.js --plan /tmp/plan.json --out /tmp/result.json
'use strict';
const fs = require('fs');
const { io } = require('socket.io-client');
const { performance } = require('perf_hooks');

const argv = process.argv.slice(2);
const opt = (name, def) => { const i = argv.indexOf('--' + name); return i >= 0 ? argv[i + 1] : def; };
const plan = JSON.parse(fs.readFileSync(opt('plan'), 'utf8'));
const OUT = opt('out', '');
const CONCURRENCY = plan.concurrency || 100;
const MAX_RUNTIME_S = Math.min(plan.max_runtime_s || 900, 1800);
const P99_LIMIT_MS = plan.p99_limit_ms || 50;
const DELIVERED_MIN = 0.999;
const CLK_TCK = 100;
const nowMs = () => performance.timeOrigin + performance.now();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const log = (...a) => console.error('[loadgen]', ...a);
const r2 = (x) => (Number.isFinite(x) ? +x.toFixed(2) : null);
const result = { plan: { pairs: plan.pairs.length, urls: plan.urls, fanout: plan.fanout || 1 }, steps: [], errors: [] };
const deadline = setTimeout(() => { result.errors.push(`hard deadline ${MAX_RUNTIME_S}s`); finish(3); }, MAX_RUNTIME_S * 1000);

// ---------------------------------------------------------------- /proc accounting over all server pids
function procTicks(pid) {
  try { const s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8'); const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return parseInt(f[11], 10) + parseInt(f[12], 10); } catch (e) { return NaN; }
}
function procRss(pid) {
  try { const m = /VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8')); return m ? +m[1] : NaN; } catch (e) { return NaN; }
}
const srvTicks = () => plan.server_pids.reduce((a, p) => a + procTicks(p), 0);
const srvRss = () => plan.server_pids.reduce((a, p) => a + procRss(p), 0);
function sysCpu() {
  const l = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  return { idle: l[3] + l[4], total: l.reduce((a, b) => a + b, 0) };
}
const snapshot = () => ({ t: performance.now(), srv: srvTicks(), rss: srvRss(), lg: process.cpuUsage(), sys: sysCpu() });
function usage(a, b) {
  const wall = (b.t - a.t) / 1000;
  const sysTotal = b.sys.total - a.sys.total;
  return {
    wall_s: r2(wall),
    server_cpu_pct: r2(((b.srv - a.srv) / CLK_TCK / wall) * 100),
    loadgen_cpu_pct: r2((((b.lg.user - a.lg.user) + (b.lg.system - a.lg.system)) / 1e6 / wall) * 100),
    machine_busy_pct_of_2_cores: r2(sysTotal > 0 ? (1 - (b.sys.idle - a.sys.idle) / sysTotal) * 100 : NaN),
  };
}
function pct(sorted, p) { if (!sorted.length) return NaN; return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]; }
function latencyStats(arr) {
  const lat = Float64Array.from(arr).sort();
  return { lat_ms_p50: r2(pct(lat, 50)), lat_ms_p95: r2(pct(lat, 95)), lat_ms_p99: r2(pct(lat, 99)), lat_ms_max: r2(lat[lat.length - 1]) };
}

// ---------------------------------------------------------------- sockets
function connectOne(url, token) {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const s = io(url, { transports: ['websocket'], forceNew: true, reconnection: false, timeout: 20000,
      perMessageDeflate: false, auth: { token } });
    let done = false;
    const fin = (ok, err) => { if (done) return; done = true; clearTimeout(timer); resolve({ s, ok, err, ms: performance.now() - t0 }); };
    const timer = setTimeout(() => fin(false, 'timeout'), 21000);
    s.once('connect', () => fin(true));
    s.once('connect_error', (e) => fin(false, e && e.message));
  });
}

const fanout = plan.fanout || 1;
const partners = new Array(plan.pairs.length);
const customers = []; // {s, booking}
let cur = null;        // location step accounting
const sentAt = new Map(); // latitude -> send time (unique per update)
let disconnects = 0;

function onLocation(booking, msg) {
  const c = cur;
  if (!c) return;
  if (msg.bookingId !== booking) { c.mismatch++; return; }
  const t0 = sentAt.get(msg.location.latitude);
  if (t0 === undefined) { c.unknown++; return; }
  c.lat.push(nowMs() - t0);
  c.recv++;
}

async function ramp() {
  const jobs = [];
  const urls = plan.urls;
  plan.pairs.forEach((p, i) => {
    jobs.push({ kind: 'p', i, url: urls[i % urls.length] + '/partner', token: p.partner_token });
    for (let k = 0; k < fanout; k++) {
      // with several processes, a customer sits on another process than its partner (unless colocated)
      const shift = plan.colocate ? 0 : 1 + k;
      jobs.push({ kind: 'c', i, url: urls[(i + shift) % urls.length] + '/customer', token: p.customer_token });
    }
  });
  const lat = []; let failed = 0; const errs = {}; let next = 0;
  const a = snapshot();
  async function worker() {
    while (next < jobs.length) {
      const j = jobs[next++];
      const r = await connectOne(j.url, j.token);
      if (!r.ok) { failed++; errs[r.err] = (errs[r.err] || 0) + 1; r.s.close(); continue; }
      lat.push(r.ms);
      r.s.on('disconnect', () => { disconnects++; });
      if (j.kind === 'p') partners[j.i] = r.s;
      else {
        const booking = plan.pairs[j.i].booking_id;
        customers.push({ s: r.s, booking, i: j.i });
        r.s.on('partner:location_update', (m) => onLocation(booking, m));
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(CONCURRENCY, jobs.length) }, worker));
  const b = snapshot();
  lat.sort((x, y) => x - y);
  return { sockets_wanted: jobs.length, connected: lat.length, failed, errors: errs, ramp_s: r2((b.t - a.t) / 1000),
    connect_ms_p50: r2(pct(lat, 50)), connect_ms_p99: r2(pct(lat, 99)), ...usage(a, b) };
}

function ackCall(s, event, payload, timeout = 20000) {
  return new Promise((resolve) => s.timeout(timeout).emit(event, payload, (err, resp) => resolve(err ? { ok: false, error: String(err) } : resp)));
}

async function track() {
  // Every customer tracks at once: a burst of database-backed events. Past the server's ORM
  // queue bound the extra ones are refused UNAVAILABLE at once; like a real client, each
  // retries after a short backoff until its booking is tracked.
  const t0 = performance.now();
  const before = disconnects;
  let acked = 0, bad = 0, firstRefused = 0, firstAnswerAll = 0;
  const codes = {};
  const extra = plan.accepts || [];
  const answered = [];
  await Promise.all(customers.map(async (c) => {
    for (let attempt = 0; attempt < 50; attempt++) {
      const r = await ackCall(c.s, 'booking:track', c.booking);
      if (attempt === 0) answered.push(performance.now());
      if (r && r.ok) { acked++; return; }
      const code = (r && r.error && r.error.code) || String(r && r.error);
      if (attempt === 0) { firstRefused++; codes[code] = (codes[code] || 0) + 1; }
      if (code !== 'UNAVAILABLE' && code !== 'RATE_LIMITED') break;
      await sleep(100 + Math.random() * 200 * (attempt + 1));
    }
    bad++;
  }));
  firstAnswerAll = answered.length ? r2((Math.max(...answered) - t0) / 1000) : 0;
  const burstDisconnects = disconnects - before;
  // the customers of the accept phase's bookings watch those too
  await Promise.all(extra.map(async (e) => {
    const c = customers.find((x) => x.i === e.pair);
    const r = await ackCall(c.s, 'booking:track', e.booking_id);
    if (!(r && r.ok)) bad++;
  }));
  return { acked, failed: bad, first_refused: firstRefused, codes, first_answers_s: firstAnswerAll,
    disconnects: burstDisconnects, track_s: r2((performance.now() - t0) / 1000) };
}

let seq = 0;
async function locationStep(step) {
  const expected = Math.ceil(step.rate * step.seconds);
  const c = { sent: 0, recv: 0, mismatch: 0, unknown: 0, lat: [] };
  sentAt.clear();
  cur = c;
  let rssMax = srvRss();
  const a = snapshot();
  const t0 = performance.now();
  const durMs = step.seconds * 1000;
  let pi = 0;
  await new Promise((resolve) => {
    let lastRss = t0;
    const tick = () => {
      const now = performance.now();
      const due = Math.min(Math.floor((step.rate * Math.min(now - t0, durMs)) / 1000), expected) - c.sent;
      for (let k = 0; k < due; k++) {
        const s = partners[pi];
        pi = (pi + 1) % partners.length;
        seq = (seq + 1) % 1_500_000;
        const latitude = -75 + seq * 1e-4;
        sentAt.set(latitude, nowMs());
        s.emit('location:update', { latitude, longitude: 77.5946 });
        c.sent++;
      }
      if (now - lastRss >= 1000) { lastRss = now; rssMax = Math.max(rssMax, srvRss()); }
      if ((now - t0 >= durMs && c.sent >= expected) || now - t0 >= durMs + 5000) return resolve();
      setTimeout(tick, 2);
    };
    tick();
  });
  const tSendEnd = performance.now();
  const b = snapshot();
  const want = c.sent * fanout;
  while (c.recv < want && performance.now() < tSendEnd + 5000) await sleep(20);
  cur = null;
  const delivered = want ? c.recv / want : 0;
  const stats = latencyStats(c.lat);
  return { offered_rate: step.rate, seconds: step.seconds, sent: c.sent, expected_deliveries: want, received: c.recv,
    delivered_ratio: +delivered.toFixed(5), misrouted: c.mismatch, ...stats,
    server_rss_max_kib: rssMax, ...usage(a, b),
    pass: delivered >= DELIVERED_MIN && stats.lat_ms_p99 < P99_LIMIT_MS && c.mismatch === 0 };
}

async function chatPhase(rate, seconds) {
  const got = []; const sendTimes = new Map(); let sent = 0, received = 0, refused = 0;
  const listeners = partners.map((s) => { const h = (m) => { const t = sendTimes.get(m.clientMessageId); if (t !== undefined) { got.push(nowMs() - t); received++; } }; s.on('message:received', h); return h; });
  const a = snapshot(); const t0 = performance.now(); const total = Math.ceil(rate * seconds); let ci = 0;
  await new Promise((resolve) => {
    const tick = () => {
      const now = performance.now();
      const due = Math.min(Math.floor((rate * Math.min(now - t0, seconds * 1000)) / 1000), total) - sent;
      for (let k = 0; k < due; k++) {
        const c = customers[ci]; ci = (ci + 1) % customers.length;
        const id = `m${sent}-${Date.now()}`;
        sendTimes.set(id, nowMs());
        c.s.emit('message:send', { recipientId: plan.pairs[c.i].partner_id, message: 'On my way? ' + sent, bookingId: c.booking, clientMessageId: id },
          (resp) => { if (!resp || !resp.ok) refused++; });
        sent++;
      }
      if ((now - t0 >= seconds * 1000 && sent >= total) || now - t0 >= seconds * 1000 + 5000) return resolve();
      setTimeout(tick, 5);
    };
    tick();
  });
  const b = snapshot();
  const end = performance.now() + 5000;
  while (received < sent && performance.now() < end) await sleep(20);
  partners.forEach((s, i) => s.off('message:received', listeners[i]));
  return { rate, seconds, sent, received, refused, delivered_ratio: +(received / Math.max(1, sent)).toFixed(5), ...latencyStats(got), ...usage(a, b) };
}

async function acceptPhase(rate) {
  const accepts = plan.accepts || [];
  if (!accepts.length) return null;
  const got = []; const sendTimes = new Map(); let received = 0, refused = 0;
  const byBooking = new Set(accepts.map((e) => e.booking_id));
  const listeners = customers.map((c) => { const h = (m) => { if (m.status === 'PARTNER_ACCEPTED' && byBooking.has(m.bookingId)) { const t = sendTimes.get(m.bookingId); if (t !== undefined) { got.push(nowMs() - t); sendTimes.delete(m.bookingId); received++; } } }; c.s.on('booking:status_updated', h); return h; });
  const a = snapshot(); const t0 = performance.now(); let sent = 0;
  await new Promise((resolve) => {
    const tick = () => {
      const due = Math.min(Math.floor((rate * (performance.now() - t0)) / 1000), accepts.length) - sent;
      for (let k = 0; k < due; k++) {
        const e = accepts[sent++];
        sendTimes.set(e.booking_id, nowMs());
        partners[e.pair].emit('booking:accept', e.booking_id, (resp) => { if (!resp || !resp.ok) refused++; });
      }
      if (sent >= accepts.length || performance.now() - t0 > 60000) return resolve();
      setTimeout(tick, 5);
    };
    tick();
  });
  const b = snapshot();
  const end = performance.now() + 10000;
  while (received < sent && performance.now() < end) await sleep(20);
  customers.forEach((c, i) => c.s.off('booking:status_updated', listeners[i]));
  return { rate, sent, received, refused, ...latencyStats(got), ...usage(a, b) };
}

let finished = false;
function finish(code) {
  if (finished) return; finished = true; clearTimeout(deadline);
  result.disconnects = disconnects;
  if (OUT) fs.writeFileSync(OUT, JSON.stringify(result, null, 1));
  for (const s of partners) if (s) s.close();
  for (const c of customers) c.s.close();
  setTimeout(() => process.exit(code), 300);
}

async function main() {
  result.server_rss_at_start_kib = srvRss();
  result.ramp = await ramp(); log('ramp', JSON.stringify(result.ramp));
  if (!plan.skip_track) { result.track = await track(); log('track', JSON.stringify(result.track)); }
  const a = snapshot(); await sleep((plan.idle_settle_s || 10) * 1000); const b = snapshot();
  result.idle = { sockets: result.ramp.connected, server_rss_idle_kib: b.rss,
    rss_per_socket_kib: r2((b.rss - result.server_rss_at_start_kib) / Math.max(1, result.ramp.connected)), ...usage(a, b) };
  log('idle', JSON.stringify(result.idle));
  if (plan.hold_s) {  // idle-only mode: keep every socket across several heartbeat rounds
    const before = disconnects; const ha = snapshot(); await sleep(plan.hold_s * 1000); const hb = snapshot();
    result.hold = { seconds: plan.hold_s, disconnects: disconnects - before, still_connected: customers.filter((c) => c.s.connected).length + partners.filter((s) => s && s.connected).length, server_rss_kib: hb.rss, ...usage(ha, hb) };
    log('hold', JSON.stringify(result.hold));
  }
  for (const st of plan.steps || []) {
    const r = await locationStep(st); result.steps.push(r);
    log('step', JSON.stringify({ rate: r.offered_rate, del: r.delivered_ratio, p50: r.lat_ms_p50, p99: r.lat_ms_p99, max: r.lat_ms_max, cpu: r.server_cpu_pct, lg: r.loadgen_cpu_pct, pass: r.pass }));
    if (!r.pass && plan.stop_on_fail) break;
    await sleep(2000);
  }
  // accepts first: a saturated chat step must not leave a backlog that the accept figures inherit
  // let the last location step's backlog drain before measuring request/response paths
  if (plan.accept_rate || (plan.chat || []).length) await sleep(5000);
  if (plan.accept_rate) { result.accept = await acceptPhase(plan.accept_rate); log('accept', JSON.stringify(result.accept)); await sleep(3000); }
  result.chat = [];
  for (const c of plan.chat || []) {
    const r = await chatPhase(c.rate, c.seconds); result.chat.push(r); log('chat', JSON.stringify(r));
    await sleep(3000);
  }
  finish(0);
}
main().catch((e) => { result.errors.push(String((e && e.stack) || e)); finish(2); });
