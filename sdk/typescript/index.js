// Generated from the event catalogue by `make sdk` (config/typescript.py). Do not edit.
import { io } from "socket.io-client";

export const NAMESPACES = Object.freeze(["/customer", "/partner", "/admin"]);

export function connect(namespace, token, url = "", options = {}) {
  if (!NAMESPACES.includes(namespace)) throw new TypeError(`unknown namespace: ${namespace}`);
  // A function is asked again on every reconnect, so a refreshed token is used; one that
  // fails connects without a token, and the server answers connect_error AUTH_REQUIRED.
  const auth =
    typeof token === "function"
      ? (send) => Promise.resolve().then(token).then((fresh) => send({ token: fresh }), () => send({}))
      : { token };
  return io(url.replace(/\/+$/, "") + namespace, { ...options, auth });
}
