// Deliberate mistakes: each line marked `// error TSxxxx` must fail to compile with that code,
// and no other line may (tests/sdk/test_typescript.py runs tsc on this with the examples).
import { connect, type Ack, type BookingTrackReply, type ErrorCode } from "homeservices-realtime-client";

const customer = connect("/customer", "token", "http://127.0.0.1:8000");
const partner = connect("/partner", "token", "http://127.0.0.1:8000");
const done = (): void => undefined;

// A payload of the wrong type: latitude as a string.
partner.emit("location:update", { latitude: "28.6", longitude: 77.2 }, done); // error TS2322
// A required field missing: a message without its text.
customer.emit("message:send", { recipientId: "7" }, done); // error TS2345
// A status the server does not know.
partner.emit("booking:status_update", { bookingId: "b", status: "DONE" }, done); // error TS2322
// An event that does not exist.
customer.emit("booking:teleport", "b", done); // error TS2345
// An event of another namespace: customers do not accept jobs.
customer.emit("booking:accept", "b", done); // error TS2345
// Forgetting the ack.
customer.emit("booking:track", "b"); // error TS2554
// A listener reading a field the payload does not have.
customer.on("partner:location_update", (update) => update.location.lat); // error TS2339
// Listening on the wrong namespace: partners get no location updates.
partner.on("partner:location_update", done); // error TS2345
// Reading an ack's reply without checking that it succeeded.
customer.emit("booking:track", "b", (res) => res.booking.status); // error TS2339
// An ack's reply of another event.
customer.emit("booking:untrack", "b", (res: Ack<BookingTrackReply>) => res); // error TS2345
// An error code the server never sends.
const code: ErrorCode = "NOT_FOUNDD"; // error TS2820
// A namespace that does not exist.
connect("/staff", "token"); // error TS2345
// A token that is not one.
connect("/admin", 42); // error TS2345
// An admin event without a payload given one.
connect("/admin", "token").emit("request:stats", {}, done); // error TS2554

export { code };
