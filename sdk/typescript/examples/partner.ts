// An example partner app: go available, set off to the booking, relay the phone's position,
// message the customer, and tell the person what a refusal means.
// SERVER_URL=http://127.0.0.1:8000 ACCESS_TOKEN=<access JWT> BOOKING_ID=<uuid> CUSTOMER_ID=<id> node partner.js
import { connect, type ConnectError, type LocationUpdateRequest } from "homeservices-realtime-client";
import { deadline, explain, setting, show } from "./ui.js";

const bookingId = setting("BOOKING_ID");
const customerId = setting("CUSTOMER_ID");
const socket = connect("/partner", () => setting("ACCESS_TOKEN"), setting("SERVER_URL"));
const seen = { relayed: false, refusedTransition: false, reply: false };
let relay: NodeJS.Timeout | undefined;
deadline(Number(process.env.RUN_SECONDS ?? 30));

// A phone's GPS, walking north towards the customer.
let fix: LocationUpdateRequest = { latitude: 28.6, longitude: 77.209, accuracy: 8, heading: 0, speed: 1.4 };

function sendPosition(): void {
  fix = { ...fix, latitude: fix.latitude + 0.0001 };
  socket.emit("location:update", fix, (res) => {
    if (!res.ok) return show("refused", { code: res.error.code, text: explain(res.error.code) });
    show("position", { relayed: res.relayed });
    seen.relayed ||= res.relayed > 0;
    finishWhenDone();
  });
}

function finishWhenDone(): void {
  if (seen.relayed && seen.refusedTransition && seen.reply) {
    clearInterval(relay);
    show("done", bookingId);
    socket.disconnect();
  }
}

socket.on("connect_error", (err: ConnectError) => show("connect_error", err.data?.code ?? err.message));
socket.on("error", (error) => show("error", { code: error.code, event: error.event }));
socket.on("booking:new_request", (offer) => show("offer", { number: offer.bookingNumber, amount: offer.amount }));
socket.on("booking:cancelled", ({ bookingNumber, reason }) => show("cancelled", { bookingNumber, reason }));
socket.on("message:read", ({ id }) => show("read", id));
socket.on("message:received", (incoming) => {
  show("message", { from: incoming.sender.role, text: incoming.message });
  seen.reply ||= incoming.senderId === customerId;
  finishWhenDone();
});

socket.on("connect", async () => {
  try {
    const available = await socket.timeout(5000).emitWithAck("availability:update", { available: true });
    show("available", available.ok && available.available);
    const started = await socket
      .timeout(5000)
      .emitWithAck("booking:status_update", { bookingId, status: "PARTNER_EN_ROUTE" });
    if (!started.ok) return show("refused", { code: started.error.code, text: explain(started.error.code) });
    show("status", started.booking.status);
    relay = setInterval(sendPosition, 300);
    const sent = await socket.timeout(5000).emitWithAck("message:send", {
      recipientId: customerId,
      message: "On my way",
      bookingId,
    });
    show("sent", sent.ok ? sent.id : sent.error.code);
    // The job cannot be finished before it has started: the server refuses, the app explains.
    const early = await socket.timeout(5000).emitWithAck("booking:status_update", { bookingId, status: "COMPLETED" });
    if (!early.ok) {
      show("refused", { code: early.error.code, text: explain(early.error.code) });
      seen.refusedTransition = true;
      finishWhenDone();
    }
  } catch (err) {
    show("failed", (err as Error).message); // no ack within 5 s
  }
});
