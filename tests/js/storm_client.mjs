// Many official socket.io-client 4.8 sockets from one process (one address), for the deploy test:
//   node storm_client.mjs PLAN_FILE      PLAN_FILE: {"url", "namespace", "tokens": [...], "sockets": N}
// Socket i signs in with tokens[i % tokens.length], over websocket, reconnecting quickly.
// Driven over stdin/stdout, one JSON line each:
//   out: {"phase":"connected", connected, failures}
//   in:  "back"  (the server was stopped and started again)
//   out: {"phase":"back", dropped, reconnected, recovered, seconds, failures, reasons}
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { io } from 'socket.io-client';

const plan = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const say = (o) => process.stdout.write(JSON.stringify(o) + '\n');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const until = async (pred, ms) => { const end = Date.now() + ms; while (!pred() && Date.now() < end) await sleep(100); };
const count = (key, into) => { into[key] = (into[key] || 0) + 1; };

const failures = {};
const reasons = {};
const sockets = [];
for (let i = 0; i < plan.sockets; i += 1) {
  const s = io(plan.url + plan.namespace, {
    auth: { token: plan.tokens[i % plan.tokens.length] },
    transports: ['websocket'],
    reconnectionDelay: 500,
    reconnectionDelayMax: 2000,
  });
  const state = { s, connects: 0, droppedAt: null, backAfter: null, recovered: null };
  s.on('connect', () => {
    state.connects += 1;
    if (state.droppedAt !== null) {
      state.backAfter = (Date.now() - state.droppedAt) / 1000;
      state.recovered = s.recovered;
    }
  });
  s.on('disconnect', (reason) => {
    count(reason, reasons);
    if (state.droppedAt === null) state.droppedAt = Date.now();
  });
  s.on('connect_error', (e) => count((e.data && e.data.code) || e.message, failures));
  sockets.push(state);
  if (i % 50 === 49) await sleep(100); // a steady ramp, not one burst of 1,000 handshakes
}
await until(() => sockets.every((x) => x.connects > 0), 60000);
say({ phase: 'connected', connected: sockets.filter((x) => x.s.connected).length, failures });

for await (const line of createInterface({ input: process.stdin })) {
  if (line === 'back') {
    await until(() => sockets.some((x) => x.droppedAt !== null), 10000);
    await until(() => sockets.every((x) => x.droppedAt === null || x.backAfter !== null), 45000);
    const dropped = sockets.filter((x) => x.droppedAt !== null);
    const back = dropped.filter((x) => x.backAfter !== null);
    say({
      phase: 'back',
      dropped: dropped.length,
      reconnected: back.length,
      recovered: back.filter((x) => x.recovered).length,
      seconds: Math.max(0, ...back.map((x) => x.backAfter)),
      failures,
      reasons,
    });
    for (const x of sockets) x.s.disconnect();
    process.exit(0);
  }
}
