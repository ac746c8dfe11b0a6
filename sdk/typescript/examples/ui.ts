// What the example apps show a person. A phone would draw it; these print one JSON line per
// observation (tests/sdk/test_typescript.py reads them).
import type { ErrorCode } from "homeservices-realtime-client";

export function show(kind: string, value: unknown): void {
  process.stdout.write(JSON.stringify({ kind, value }) + "\n");
}

export function setting(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
}

/** A sentence for every code the server can answer: a code added to the server stops this compiling. */
export function explain(code: ErrorCode): string {
  switch (code) {
    case "VALIDATION_ERROR":
      return "Please check what you entered";
    case "NOT_FOUND":
      return "We could not find that";
    case "FORBIDDEN":
      return "You cannot do that";
    case "INVALID_TRANSITION":
    case "CONFLICT":
      return "That is not possible right now";
    case "RATE_LIMITED":
      return "Slow down a little";
    case "TOKEN_EXPIRED":
    case "TOKEN_INVALID":
      return "Please sign in again";
    case "UNAVAILABLE":
    case "INTERNAL_ERROR":
      return "Something went wrong on our side; try again shortly";
    default: {
      const unhandled: never = code;
      return unhandled;
    }
  }
}

/** Stop after `seconds` whatever happens (the apps also stop once they have done their part). */
export function deadline(seconds: number): void {
  setTimeout(() => {
    show("timeout", seconds);
    process.exit(2);
  }, seconds * 1000).unref();
}
