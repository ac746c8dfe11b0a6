// The official socket.io-client with connection state recovery, driven by the recovery tests.
//   node recovery_client.mjs URL NAMESPACE   (ACCESS_TOKEN in the environment)
// Prints one JSON line per happening: connect (with socket.recovered and the sid), every
// event (name, payload), disconnect, and the ack of each command. Reads commands from
// stdin, one JSON array per line: ["emit", event, payload] or ["disconnect"] (voluntary)
// or ["drop"] (the transport lost, as a phone loses its network: the client reconnects) or ["connect"] or ["auth", token] (the token the next connect sends) or ["exit"].
import readline from "node:readline";
import { io } from "socket.io-client";

const [url, namespace] = process.argv.slice(2);
const say = (line) => process.stdout.write(JSON.stringify(line) + "\n");
const socket = io(url + namespace, {
  auth: { token: process.env.ACCESS_TOKEN },
  transports: ["websocket"],
  reconnectionDelay: 200,
  reconnectionDelayMax: 500,
});
socket.on("connect", () => say({ type: "connect", recovered: socket.recovered, id: socket.id }));
socket.on("connect_error", (err) => say({ type: "connect_error", message: err.message, data: err.data ?? null }));
socket.on("disconnect", (reason) => say({ type: "disconnect", reason }));
socket.onAny((name, payload) => say({ type: "event", name, payload }));

readline.createInterface({ input: process.stdin }).on("line", async (line) => {
  const [command, event, payload] = JSON.parse(line);
  if (command === "emit") {
    const ack = await socket.timeout(5000).emitWithAck(event, payload).catch((err) => ({ error: String(err) }));
    say({ type: "ack", event, ack });
  } else if (command === "disconnect") {
    socket.disconnect();
  } else if (command === "drop") {
    socket.io.engine.close();
  } else if (command === "connect") {
    socket.connect();
  } else if (command === "auth") {
    socket.auth.token = event;
  } else if (command === "exit") {
    socket.disconnect();
    process.exit(0);
  }
});
setTimeout(() => process.exit(2), 120_000); // never outlive the test
