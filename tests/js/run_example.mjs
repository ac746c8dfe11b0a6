// Runs one of the event document's examples, verbatim, against a live server.
// Usage: node run_example.mjs <example.mjs> <server url>
// Env: ACCESS_TOKEN, BOOKING_ID, RUN_SECONDS. Prints one JSON line per observation.
import { readFileSync, writeFileSync, unlinkSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const [example, url] = process.argv.slice(2);
const out = (kind, value) => process.stdout.write(JSON.stringify({ kind, value }) + '\n');

// What a browser app would provide around the example.
globalThis.accessToken = process.env.ACCESS_TOKEN;
globalThis.bookingId = process.env.BOOKING_ID;
globalThis.updateMap = (location) => out('updateMap', location);
globalThis.displayMessage = (data) => out('displayMessage', data);
globalThis.showNotification = (booking) => out('showNotification', booking);
let lat = 28.6139;
Object.defineProperty(globalThis, 'navigator', {
  value: { geolocation: { getCurrentPosition: (cb) => cb({ coords: { latitude: (lat += 0.0001), longitude: 77.209 } }) } },
});
const realLog = console.log;
console.log = (...args) => out('log', args);
// The example updates every 10 s; a test cannot wait that long.
const realSetInterval = globalThis.setInterval;
globalThis.setInterval = (fn, ms, ...rest) => realSetInterval(fn, Math.max(50, ms / 100), ...rest);

// The only change to the example: the server's address.
const source = readFileSync(join(here, 'examples', example), 'utf8').replaceAll('http://localhost:3000', url);
const tmp = join(here, `.run-${process.pid}-${example}`);
writeFileSync(tmp, source);
setTimeout(() => { try { unlinkSync(tmp); } catch {} process.exit(0); }, 1000 * Number(process.env.RUN_SECONDS || 10));
try {
  await import(pathToFileURL(tmp).href);
  out('started', example);
} finally {
  setTimeout(() => { try { unlinkSync(tmp); } catch {} }, 500);
}
realLog.call(console, '');
