// N official socket.io-client 4.8 clients with default options (polling first, then the
// websocket upgrade) through one URL. Driven by the test over stdin/stdout, one JSON line each:
//   in:  {"url", "clients": [{token, booking_id}]}     (argv[2]: a file holding it)
//   out: {"phase":"connected", connected, upgraded, tracked, failures}
//   in:  "events"   -> out: {"phase":"events", both}     (clients that saw both status updates)
//   in:  "dropped"  -> out: {"phase":"dropped", dropped, reconnected, seconds: [...]}
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { io } from 'socket.io-client';

const plan = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const say = (o) => process.stdout.write(JSON.stringify(o) + '\n');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const until = async (pred, ms) => { const end = Date.now() + ms; while (!pred() && Date.now() < end) await sleep(50); };

const clients = plan.clients.map((c) => ({ ...c, statuses: new Set(), connects: 0, disconnectedAt: null, back: null }));
const failures = {};
await Promise.all(clients.map((c) => new Promise((resolve) => {
  const s = io(plan.url + '/customer', { auth: { token: c.token } });
  c.s = s;
  const timer = setTimeout(() => { failures.timeout = (failures.timeout || 0) + 1; resolve(); }, 30000);
  s.on('connect_error', (e) => { failures[e.message] = (failures[e.message] || 0) + 1; });
  s.on('booking:status_updated', (m) => c.statuses.add(m.status));
  s.on('disconnect', () => { c.disconnectedAt = Date.now(); });
  s.on('connect', async () => {
    c.connects += 1;
    if (c.disconnectedAt) c.back = (Date.now() - c.disconnectedAt) / 1000;
    const ack = await s.timeout(10000).emitWithAck('booking:track', c.booking_id).catch((e) => ({ ok: false, e: String(e) }));
    c.tracked = Boolean(ack && ack.ok);
    const engine = s.io.engine;
    if (engine.transport.name === 'websocket') { c.upgraded = true; clearTimeout(timer); resolve(); }
    else engine.once('upgrade', () => { c.upgraded = true; clearTimeout(timer); resolve(); });
  });
})));
say({ phase: 'connected', connected: clients.filter((c) => c.s.connected).length,
  upgraded: clients.filter((c) => c.upgraded).length, tracked: clients.filter((c) => c.tracked).length, failures });

const lines = createInterface({ input: process.stdin });
for await (const line of lines) {
  if (line === 'events') {
    const both = () => clients.filter((c) => c.statuses.has('PARTNER_ASSIGNED') && c.statuses.has('CANCELLED')).length;
    await until(() => both() === clients.length, 20000);
    say({ phase: 'events', both: both() });
  } else if (line === 'dropped') {
    await until(() => clients.some((c) => c.disconnectedAt), 10000);
    const dropped = () => clients.filter((c) => c.disconnectedAt);
    await until(() => dropped().every((c) => c.back !== null && c.s.connected), 20000);
    say({ phase: 'dropped', dropped: dropped().length, reconnected: dropped().filter((c) => c.back !== null && c.s.connected).length,
      seconds: dropped().map((c) => c.back), upgraded_after: dropped().filter((c) => c.s.io.engine.transport.name === 'websocket').length });
    process.exit(0);
  }
}
