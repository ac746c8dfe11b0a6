// An example customer app: watch a booking (its status, the partner's marker on a map), answer
// the partner's messages, and tell the person what a refusal means.
// SERVER_URL=http://127.0.0.1:8000 ACCESS_TOKEN=<access JWT> BOOKING_ID=<uuid> node customer.js
import {
  connect,
  type Booking,
  type ConnectError,
  type MessageReceivedPayload,
  type PartnerLocationUpdatePayload,
} from "homeservices-realtime-client";
import { deadline, explain, setting, show } from "./ui.js";

const bookingId = setting("BOOKING_ID");
const socket = connect("/customer", setting("ACCESS_TOKEN"), setting("SERVER_URL"));
const seen = { marker: false, enRoute: false, replied: false };
deadline(Number(process.env.RUN_SECONDS ?? 30));

function drawBooking(booking: Booking): void {
  show("booking", { number: booking.bookingNumber, status: booking.status, partner: booking.partner?.name ?? null });
}

function moveMarker(update: PartnerLocationUpdatePayload): void {
  const { latitude, longitude } = update.location;
  show("marker", { latitude, longitude, etaSeconds: update.etaSeconds ?? null });
  seen.marker = true;
  finishWhenDone();
}

async function answer(incoming: MessageReceivedPayload): Promise<void> {
  show("message", { from: incoming.sender.role, text: incoming.message });
  const read = await socket.timeout(5000).emitWithAck("message:mark_read", incoming.id);
  if (!read.ok) show("refused", explain(read.error.code));
  const reply = await socket.timeout(5000).emitWithAck("message:send", {
    recipientId: incoming.senderId,
    message: "Thanks, see you soon",
    bookingId,
    clientMessageId: `reply-${incoming.id}`, // a resend after a lost ack is stored once
  });
  if (reply.ok) {
    show("replied", { id: reply.id, duplicate: reply.duplicate });
    seen.replied = true;
    finishWhenDone();
  } else {
    show("refused", { code: reply.error.code, text: explain(reply.error.code) });
  }
}

function finishWhenDone(): void {
  if (seen.marker && seen.enRoute && seen.replied) {
    show("done", bookingId);
    socket.disconnect();
  }
}

socket.on("connect_error", (err: ConnectError) => show("connect_error", err.data?.code ?? err.message));
// Every refused event also arrives here, whether or not it asked for an ack.
socket.on("error", (error) => show("error", { code: error.code, event: error.event }));
socket.on("partner:location_update", moveMarker);
// Once per booking, when the partner is first within ARRIVAL_RADIUS_METERS of the place.
socket.on("partner:nearby", ({ distanceMeters, etaSeconds }) => show("nearby", { distanceMeters, etaSeconds }));
socket.on("partner:assigned", ({ partner }) => show("assigned", partner.name));
socket.on("booking:status_updated", ({ status, message }) => {
  show("status", { status, message });
  seen.enRoute ||= status === "PARTNER_EN_ROUTE";
  finishWhenDone();
});
socket.on("message:received", (incoming) => void answer(incoming).catch((err: Error) => show("failed", err.message)));

socket.on("connect", async () => {
  try {
    const tracked = await socket.timeout(5000).emitWithAck("booking:track", { bookingId });
    if (!tracked.ok) return show("refused", { code: tracked.error.code, text: explain(tracked.error.code) });
    drawBooking(tracked.booking);
    show("tracking", bookingId);
    // A booking that is not ours (or does not exist) is refused with a code the app can explain.
    const other = await socket.timeout(5000).emitWithAck("booking:track", "6f1c1d0e-0000-4000-8000-000000000000");
    if (!other.ok) show("refused", { code: other.error.code, text: explain(other.error.code) });
  } catch (err) {
    show("failed", (err as Error).message); // no ack within 5 s
  }
});
