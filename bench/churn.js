// Connection churn: ROUNDS x (SOCKETS official clients connect at once, authenticate,
// booking:track, close), the server's RSS read after each round. Plan and result as JSON files.
//   node bench/churn.js --plan plan.json --out out.json
// plan: {url, server_pid, rounds, sockets, settle_ms, clients: [{token, booking_id}]}
const fs = require('fs');
const { io } = require('socket.io-client');

const arg = (name) => process.argv[process.argv.indexOf(name) + 1];
const plan = JSON.parse(fs.readFileSync(arg('--plan'), 'utf8'));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function rssKib(pid) {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)[1]);
}

function session(client) {
  return new Promise((resolve) => {
    const s = io(plan.url + '/customer', {
      auth: { token: client.token }, transports: ['websocket'], reconnection: false, timeout: 20000,
    });
    const done = (ok, why) => { s.close(); resolve({ ok, why }); };
    s.on('connect_error', (e) => done(false, 'connect_error ' + e.message));
    s.on('connect', () => {
      s.timeout(20000).emit('booking:track', client.booking_id, (err, ack) => {
        if (err) done(false, 'ack timeout');
        else done(Boolean(ack && ack.ok), ack && ack.ok ? null : JSON.stringify(ack));
      });
    });
  });
}

(async () => {
  const rounds = [];
  const t0 = Date.now();
  for (let r = 0; r < plan.rounds; r++) {
    const clients = plan.clients.slice(0, plan.sockets);
    const results = await Promise.all(clients.map(session));
    await sleep(plan.settle_ms);
    const failed = results.filter((x) => !x.ok);
    rounds.push({
      round: r + 1, connections: (r + 1) * plan.sockets, rss_kib: rssKib(plan.server_pid),
      failed: failed.length, why: failed.length ? failed[0].why : null,
    });
    if (process.env.CHURN_VERBOSE) console.log(JSON.stringify(rounds[rounds.length - 1]));
  }
  fs.writeFileSync(arg('--out'), JSON.stringify({ rounds, wall_s: (Date.now() - t0) / 1000 }));
  process.exit(0);
})();
