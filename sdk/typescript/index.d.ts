// Generated from the event catalogue by `make sdk` (config/typescript.py). Do not edit.

import type { ManagerOptions, Socket, SocketOptions } from "socket.io-client";

/** Every error code the server answers with. */
export type ErrorCode = "INTERNAL_ERROR" | "VALIDATION_ERROR" | "NOT_FOUND" | "FORBIDDEN" | "INVALID_TRANSITION" | "CONFLICT" | "RATE_LIMITED" | "TOKEN_EXPIRED" | "TOKEN_INVALID" | "UNAVAILABLE";

/** A refusal: in a failed ack, an `error` event, a connect_error's `data`. */
export type ErrorBody = {
  code: ErrorCode;
  message: string;
  retryAfter?: number;
  details?: unknown;
};

/** How a partner appears inside a booking and in ``partner:assigned``. */
export type PartnerSummary = {
  /** an id, as a string of digits */
  id: string;
  name: string;
  phone: string;
  rating: number;
};

/** Who acknowledged an alert, and when (``safety:acknowledged``, the REST answer). */
export type SafetyAcknowledged = {
  /** an id, as a string of digits */
  alertId: string;
  by: {
    /** an id, as a string of digits */
    id: string;
    name: string;
  };
  at: string;
};

export type Notification = {
  /** an id, as a string of digits */
  id: string;
  type: string;
  title: string;
  body: string;
  data: Record<string, unknown>;
  createdAt: string;
  readAt: string | null;
};

/** A partner's own profile (sign-up's answer). */
export type Partner = {
  /** an id, as a string of digits */
  id: string;
  name: string;
  phone: string;
  rating: number;
  services: string[];
  isAvailable: boolean;
  isSuspended: boolean;
  kycStatus: "NONE" | "PENDING" | "APPROVED" | "REJECTED";
  createdAt: string;
};

export type Message = {
  /** an id, as a string of digits */
  id: string;
  /** an id, as a string of digits */
  senderId: string;
  /** an id, as a string of digits */
  recipientId: string;
  bookingId: string | null;
  message: string;
  createdAt: string;
  readAt: string | null;
  clientMessageId: string | null;
};

/** An alert as staff see it (``safety:alert``, the open list): ``at`` is when it was raised. */
export type SafetyAlert = {
  /** an id, as a string of digits */
  alertId: string;
  bookingId: string | null;
  raisedBy: {
    /** an id, as a string of digits */
    id: string;
    name: string;
    role: "customer" | "partner";
  };
  location: {
    latitude: number;
    longitude: number;
  } | null;
  at: string;
  /** 0 the first time, then one more each time */
  escalation: number;
  note: string | null;
};

/** The booking of contract 5.4: REST responses, ``booking:created``/``updated`` and acks. */
export type Booking = {
  id: string;
  bookingNumber: string;
  status: "PENDING" | "PARTNER_ASSIGNED" | "PARTNER_ACCEPTED" | "PARTNER_EN_ROUTE" | "PARTNER_ARRIVED" | "IN_PROGRESS" | "COMPLETED" | "CANCELLED";
  service: {
    /** an id, as a string of digits */
    id: string;
    name: string;
  };
  scheduledAt: string;
  address: string;
  location: {
    latitude: number;
    longitude: number;
  };
  amount: number;
  currency: string;
  notes: string;
  customer: {
    /** an id, as a string of digits */
    id: string;
    name: string;
  };
  partner: PartnerSummary | null;
  cancelReason: string;
  cancelledBy: ("customer" | "staff" | "dispatch") | null;
  createdAt: string;
  updatedAt: string;
  dispatch?: {
    attempts: number;
    state: "searching" | "offered" | "unassigned" | "done";
  };
  attention?: ("unassigned" | "partner_suspended" | "stale" | "arrived_far") | null;
};

/** A job's route and timeline (``GET /api/bookings/{id}/trace/``). */
export type BookingTrace = {
  bookingId: string;
  /** in time order */
  points: {
    latitude: number;
    longitude: number;
    recordedAt: string;
  }[];
  /** in time order */
  events: {
    at: string;
    kind: "status";
    from: ("PENDING" | "PARTNER_ASSIGNED" | "PARTNER_ACCEPTED" | "PARTNER_EN_ROUTE" | "PARTNER_ARRIVED" | "IN_PROGRESS" | "COMPLETED" | "CANCELLED") | null;
    to: "PENDING" | "PARTNER_ASSIGNED" | "PARTNER_ACCEPTED" | "PARTNER_EN_ROUTE" | "PARTNER_ARRIVED" | "IN_PROGRESS" | "COMPLETED" | "CANCELLED";
    /** the role that made the move */
    by: "customer" | "partner" | "staff" | "dispatch" | "";
    /** staff only (empty for the booking's customer and partner) */
    note: string;
  } | {
    at: string;
    kind: "message";
    /** an id, as a string of digits */
    id: string;
    /** an id, as a string of digits */
    senderId: string;
    senderRole: "customer" | "partner" | "staff";
    text: string;
  } | {
    at: string;
    kind: "arrival";
    /** came within ARRIVAL_RADIUS_METERS: how far it was then */
    distanceMeters?: number;
    /** set PARTNER_ARRIVED farther than 1 km away: how far */
    farMeters?: number;
  } | {
    at: string;
    kind: "alert";
    /** an id, as a string of digits */
    id: string;
    raisedBy: {
      /** an id, as a string of digits */
      id: string;
      role: "customer" | "partner";
    };
    location: {
      latitude: number;
      longitude: number;
    } | null;
    note: string;
    acknowledgedAt: string | null;
  }[];
};

/** The partner's booking was cancelled */
export type BookingCancelledPayload = {
  bookingId: string;
  bookingNumber: string;
  reason: string;
  cancelledBy: ("customer" | "staff" | "dispatch") | null;
  cancelledAt: string;
};

/** A booking was created (to monitor:bookings) */
export type BookingCreatedPayload = Booking;

/** A booking is offered to this partner */
export type BookingNewRequestPayload = {
  bookingId: string;
  bookingNumber: string;
  service: string;
  scheduledAt: string;
  address: string;
  amount: number;
  location: {
    latitude: number;
    longitude: number;
  };
  customer: {
    /** an id, as a string of digits */
    id: string;
    name: string;
  };
  distanceMeters?: number;
  etaSeconds?: number;
};

/** The partner let the offer lapse (OFFER_TIMEOUT_SECONDS); it goes to another partner */
export type BookingOfferExpiredPayload = {
  bookingId: string;
  bookingNumber: string;
  expiredAt: string;
};

/** The booking's status changed (to booking:<id>) */
export type BookingStatusUpdatedPayload = {
  bookingId: string;
  bookingNumber: string;
  status: "PENDING" | "PARTNER_ASSIGNED" | "PARTNER_ACCEPTED" | "PARTNER_EN_ROUTE" | "PARTNER_ARRIVED" | "IN_PROGRESS" | "COMPLETED" | "CANCELLED";
  message: string;
  updatedAt: string;
};

/** A booking changed (to monitor:bookings) */
export type BookingUpdatedPayload = Booking;

/** The dashboard figures (to the asking socket; to admins at most once a second when they change) */
export type DashboardStatsUpdatePayload = {
  bookings: {
    total: number;
    today: number;
    active: number;
    byStatus: Record<string, unknown>;
  };
  revenue: {
    today: number;
    total: number;
    currency: string;
  };
  partners: {
    total: number;
    online: number;
    available: number;
    pendingKyc: number;
  };
  customers: {
    total: number;
    online: number;
  };
  generatedAt: string;
};

/** The partner earned from a completed booking */
export type EarningsUpdatedPayload = {
  bookingId: string;
  amount: number;
  todayEarnings: number;
  totalEarnings: number;
  currency: string;
};

/** A client event failed, or the socket is about to be disconnected (event: null) */
export type ErrorPayload = {
  code: ErrorCode;
  message: string;
  event: string | null;
  retryAfter?: number;
  details?: unknown;
};

/** A partner submitted a KYC document (to admins) */
export type KycSubmittedPayload = {
  /** an id, as a string of digits */
  submissionId: string;
  /** an id, as a string of digits */
  partnerId: string;
  partnerName: string;
  documentType: "AADHAAR" | "PAN" | "PASSPORT" | "DRIVING_LICENSE";
  submittedAt: string;
};

/** The recipient read a message this user sent */
export type MessageReadPayload = {
  /** an id, as a string of digits */
  id: string;
  readAt: string;
  /** an id, as a string of digits */
  readerId: string;
};

/** A message for this user (in /admin only for staff) */
export type MessageReceivedPayload = {
  /** an id, as a string of digits */
  id: string;
  /** an id, as a string of digits */
  senderId: string;
  /** an id, as a string of digits */
  recipientId: string;
  bookingId: string | null;
  message: string;
  createdAt: string;
  readAt: string | null;
  clientMessageId: string | null;
  sender: {
    /** an id, as a string of digits */
    id: string;
    name: string;
    role: "customer" | "partner" | "staff";
  };
};

/** A message this user sent was stored (every socket of the sender) */
export type MessageSentPayload = {
  /** an id, as a string of digits */
  id: string;
  createdAt: string;
  clientMessageId: string | null;
};

/** A notification was stored for this user */
export type NotificationNewPayload = Notification;

/** The partner accepted the booking (to booking:<id> and the customer) */
export type PartnerAssignedPayload = {
  bookingId: string;
  partner: {
    /** an id, as a string of digits */
    id: string;
    name: string;
    phone: string;
    rating: number;
    location: {
      latitude: number;
      longitude: number;
    } | null;
  };
  distanceMeters?: number;
  etaSeconds?: number;
};

/** The partner's position, while the booking is accepted..in progress (to booking:<id>) */
export type PartnerLocationUpdatePayload = {
  bookingId: string;
  location: {
    latitude: number;
    longitude: number;
  };
  timestamp: string;
  distanceMeters?: number;
  etaSeconds?: number;
};

/** The partner first came within ARRIVAL_RADIUS_METERS of the booking's place: once per booking (to booking:<id>) */
export type PartnerNearbyPayload = {
  bookingId: string;
  distanceMeters: number;
  etaSeconds: number;
};

/** A partner signed up (to admins) */
export type PartnerRegisteredPayload = {
  /** an id, as a string of digits */
  partnerId: string;
  name: string;
  phone: string;
  services: string[];
  createdAt: string;
};

/** Staff acknowledged a safety alert (to admins and to the person who raised it) */
export type SafetyAcknowledgedPayload = SafetyAcknowledged;

/** A customer or partner asked for help (to admins); sent again with escalation + 1 until acknowledged */
export type SafetyAlertPayload = SafetyAlert;

/** Someone started or stopped typing to this user */
export type TypingIndicatorPayload = {
  /** an id, as a string of digits */
  userId: string;
  typing: boolean;
};

/** A newer access token of the same user: the socket outlives the old one's expiry */
export type AuthRefreshRequest = {
  token: string;
};

/** Whether dispatch may offer you bookings */
export type AvailabilityUpdateRequest = {
  available: boolean;
};

/** Accept the booking offered to you */
export type BookingAcceptRequest = string | {
  bookingId: string;
};

/** Cancel your booking (PENDING..PARTNER_EN_ROUTE) */
export type BookingCancelRequest = {
  bookingId: string;
  reason?: string;
};

/** Turn the offer down: it goes to the next partner */
export type BookingRejectRequest = BookingCancelRequest;

/** Move your booking on: EN_ROUTE -> ARRIVED -> IN_PROGRESS -> COMPLETED (the first two may be skipped) */
export type BookingStatusUpdateRequest = {
  bookingId: string;
  /** * `PARTNER_EN_ROUTE` - Partner En Route * `PARTNER_ARRIVED` - Partner Arrived * `IN_PROGRESS` - In Progress * `COMPLETED` - Completed */
  status: "PARTNER_EN_ROUTE" | "PARTNER_ARRIVED" | "IN_PROGRESS" | "COMPLETED";
};

/** Watch your booking: join booking:<id> (a finished booking joins no room) */
export type BookingTrackRequest = BookingAcceptRequest;

/** Stop watching your booking */
export type BookingUntrackRequest = BookingAcceptRequest;

/** Fixes your phone kept while offline (at most 500): stored once each in your job's trace; the newest is relayed when newer than any known */
export type LocationBatchRequest = {
  fixes: {
    latitude: number;
    longitude: number;
    /** when the phone recorded it: ISO 8601 with its offset, at most 24 h old and 2 min ahead */
    recordedAt: string;
    accuracy?: number;
    heading?: number;
    speed?: number;
  }[];
};

/** Your position (recorded at recordedAt, else now): relayed to your active bookings' rooms and stored as your last location when newer than any known; kept in your job's trace */
export type LocationUpdateRequest = {
  latitude: number;
  longitude: number;
  accuracy?: number;
  heading?: number;
  speed?: number;
  /** when the phone recorded it: ISO 8601 with its offset, at most 24 h old and 2 min ahead */
  recordedAt?: string;
};

/** Mark a message read (its recipient only) */
export type MessageMarkReadRequest = string | number | {
  messageId: string | number;
};

/** Send a message (contract 5.5); a resend with the same clientMessageId is stored once */
export type MessageSendRequest = {
  recipientId: string | number;
  message: string;
  bookingId?: string;
  clientMessageId?: string;
};

/** Acknowledge a safety alert (staff): its escalation stops; an acknowledged one is CONFLICT */
export type SafetyAcknowledgeRequest = {
  alertId: string | number;
};

/** Ask staff for help (SOS); stored once per clientAlertId, folded into your open alert */
export type SafetyAlertRequest = {
  bookingId?: string;
  latitude?: number;
  longitude?: number;
  note?: string;
  clientAlertId?: string;
} | null;

/** Typing indicator to a person you may message */
export type TypingStartRequest = string | number | {
  recipientId: string | number;
};

/** Typing indicator to a person you may message */
export type TypingStopRequest = TypingStartRequest;

/** A newer access token of the same user: the socket outlives the old one's expiry */
export type AuthRefreshReply = {
  expiresAt: string;
};

/** Whether dispatch may offer you bookings */
export type AvailabilityUpdateReply = {
  available: boolean;
};

/** Accept the booking offered to you */
export type BookingAcceptReply = {
  booking: Booking;
};

/** Cancel your booking (PENDING..PARTNER_EN_ROUTE) */
export type BookingCancelReply = BookingAcceptReply;

/** Turn the offer down: it goes to the next partner */
export type BookingRejectReply = BookingAcceptReply;

/** Move your booking on: EN_ROUTE -> ARRIVED -> IN_PROGRESS -> COMPLETED (the first two may be skipped) */
export type BookingStatusUpdateReply = BookingAcceptReply;

/** Watch your booking: join booking:<id> (a finished booking joins no room) */
export type BookingTrackReply = BookingAcceptReply;

/** Stop watching your booking */
export type BookingUntrackReply = {
  bookingId: string;
};

/** Fixes your phone kept while offline (at most 500): stored once each in your job's trace; the newest is relayed when newer than any known */
export type LocationBatchReply = {
  accepted: number;
  duplicates: number;
  rejected: number;
};

/** Your position (recorded at recordedAt, else now): relayed to your active bookings' rooms and stored as your last location when newer than any known; kept in your job's trace */
export type LocationUpdateReply = {
  relayed: number;
};

/** Mark a message read (its recipient only) */
export type MessageMarkReadReply = MessageReadPayload;

/** Send a message (contract 5.5); a resend with the same clientMessageId is stored once */
export type MessageSendReply = {
  /** an id, as a string of digits */
  id: string;
  createdAt: string;
  clientMessageId: string | null;
  duplicate: boolean;
};

/** Join monitor:bookings; the ack carries the open bookings (newest 200) */
export type MonitorBookingsReply = {
  bookings: Booking[];
};

/** Ask for the figures (also emitted as dashboard:stats_update) */
export type RequestStatsReply = {
  stats: DashboardStatsUpdatePayload;
};

/** Acknowledge a safety alert (staff): its escalation stops; an acknowledged one is CONFLICT */
export type SafetyAcknowledgeReply = SafetyAcknowledged;

/** Ask staff for help (SOS); stored once per clientAlertId, folded into your open alert */
export type SafetyAlertReply = {
  /** an id, as a string of digits */
  alertId: string;
};

/** Every client event's ack: `{ok: true, ...reply}` or `{ok: false, error}` (an event sent without an ack is refused with the `error` event instead). */
export type Ack<Reply extends object = {}> = ({ ok: true } & Reply) | { ok: false; error: ErrorBody };

/** What the server sends on /customer. */
export interface CustomerServerToClientEvents {
  /** The booking's status changed (to booking:<id>) */
  "booking:status_updated": (payload: BookingStatusUpdatedPayload) => void;
  /** A client event failed, or the socket is about to be disconnected (event: null) */
  "error": (payload: ErrorPayload) => void;
  /** The recipient read a message this user sent */
  "message:read": (payload: MessageReadPayload) => void;
  /** A message for this user (in /admin only for staff) */
  "message:received": (payload: MessageReceivedPayload) => void;
  /** A message this user sent was stored (every socket of the sender) */
  "message:sent": (payload: MessageSentPayload) => void;
  /** A notification was stored for this user */
  "notification:new": (payload: NotificationNewPayload) => void;
  /** The partner accepted the booking (to booking:<id> and the customer) */
  "partner:assigned": (payload: PartnerAssignedPayload) => void;
  /** The partner's position, while the booking is accepted..in progress (to booking:<id>) */
  "partner:location_update": (payload: PartnerLocationUpdatePayload) => void;
  /** The partner first came within ARRIVAL_RADIUS_METERS of the booking's place: once per booking (to booking:<id>) */
  "partner:nearby": (payload: PartnerNearbyPayload) => void;
  /** Staff acknowledged a safety alert (to admins and to the person who raised it) */
  "safety:acknowledged": (payload: SafetyAcknowledgedPayload) => void;
  /** Someone started or stopped typing to this user */
  "typing:indicator": (payload: TypingIndicatorPayload) => void;
}

/** What a client may send on /customer; every event takes an ack. */
export interface CustomerClientToServerEvents {
  /** A newer access token of the same user: the socket outlives the old one's expiry */
  "auth:refresh": (payload: AuthRefreshRequest, ack: (res: Ack<AuthRefreshReply>) => void) => void;
  /** Cancel your booking (PENDING..PARTNER_EN_ROUTE) */
  "booking:cancel": (payload: BookingCancelRequest, ack: (res: Ack<BookingCancelReply>) => void) => void;
  /** Watch your booking: join booking:<id> (a finished booking joins no room) */
  "booking:track": (payload: BookingTrackRequest, ack: (res: Ack<BookingTrackReply>) => void) => void;
  /** Stop watching your booking */
  "booking:untrack": (payload: BookingUntrackRequest, ack: (res: Ack<BookingUntrackReply>) => void) => void;
  /** Mark a message read (its recipient only) */
  "message:mark_read": (payload: MessageMarkReadRequest, ack: (res: Ack<MessageMarkReadReply>) => void) => void;
  /** Send a message (contract 5.5); a resend with the same clientMessageId is stored once */
  "message:send": (payload: MessageSendRequest, ack: (res: Ack<MessageSendReply>) => void) => void;
  /** Ask staff for help (SOS); stored once per clientAlertId, folded into your open alert */
  "safety:alert": (payload: SafetyAlertRequest, ack: (res: Ack<SafetyAlertReply>) => void) => void;
  /** Typing indicator to a person you may message */
  "typing:start": (payload: TypingStartRequest, ack: (res: Ack) => void) => void;
  /** Typing indicator to a person you may message */
  "typing:stop": (payload: TypingStopRequest, ack: (res: Ack) => void) => void;
}

export type CustomerSocket = Socket<CustomerServerToClientEvents, CustomerClientToServerEvents>;

/** What the server sends on /partner. */
export interface PartnerServerToClientEvents {
  /** The partner's booking was cancelled */
  "booking:cancelled": (payload: BookingCancelledPayload) => void;
  /** A booking is offered to this partner */
  "booking:new_request": (payload: BookingNewRequestPayload) => void;
  /** The partner let the offer lapse (OFFER_TIMEOUT_SECONDS); it goes to another partner */
  "booking:offer_expired": (payload: BookingOfferExpiredPayload) => void;
  /** The partner earned from a completed booking */
  "earnings:updated": (payload: EarningsUpdatedPayload) => void;
  /** A client event failed, or the socket is about to be disconnected (event: null) */
  "error": (payload: ErrorPayload) => void;
  /** The recipient read a message this user sent */
  "message:read": (payload: MessageReadPayload) => void;
  /** A message for this user (in /admin only for staff) */
  "message:received": (payload: MessageReceivedPayload) => void;
  /** A message this user sent was stored (every socket of the sender) */
  "message:sent": (payload: MessageSentPayload) => void;
  /** A notification was stored for this user */
  "notification:new": (payload: NotificationNewPayload) => void;
  /** Staff acknowledged a safety alert (to admins and to the person who raised it) */
  "safety:acknowledged": (payload: SafetyAcknowledgedPayload) => void;
  /** Someone started or stopped typing to this user */
  "typing:indicator": (payload: TypingIndicatorPayload) => void;
}

/** What a client may send on /partner; every event takes an ack. */
export interface PartnerClientToServerEvents {
  /** A newer access token of the same user: the socket outlives the old one's expiry */
  "auth:refresh": (payload: AuthRefreshRequest, ack: (res: Ack<AuthRefreshReply>) => void) => void;
  /** Whether dispatch may offer you bookings */
  "availability:update": (payload: AvailabilityUpdateRequest, ack: (res: Ack<AvailabilityUpdateReply>) => void) => void;
  /** Accept the booking offered to you */
  "booking:accept": (payload: BookingAcceptRequest, ack: (res: Ack<BookingAcceptReply>) => void) => void;
  /** Turn the offer down: it goes to the next partner */
  "booking:reject": (payload: BookingRejectRequest, ack: (res: Ack<BookingRejectReply>) => void) => void;
  /** Move your booking on: EN_ROUTE -> ARRIVED -> IN_PROGRESS -> COMPLETED (the first two may be skipped) */
  "booking:status_update": (payload: BookingStatusUpdateRequest, ack: (res: Ack<BookingStatusUpdateReply>) => void) => void;
  /** Fixes your phone kept while offline (at most 500): stored once each in your job's trace; the newest is relayed when newer than any known */
  "location:batch": (payload: LocationBatchRequest, ack: (res: Ack<LocationBatchReply>) => void) => void;
  /** Your position (recorded at recordedAt, else now): relayed to your active bookings' rooms and stored as your last location when newer than any known; kept in your job's trace */
  "location:update": (payload: LocationUpdateRequest, ack: (res: Ack<LocationUpdateReply>) => void) => void;
  /** Mark a message read (its recipient only) */
  "message:mark_read": (payload: MessageMarkReadRequest, ack: (res: Ack<MessageMarkReadReply>) => void) => void;
  /** Send a message (contract 5.5); a resend with the same clientMessageId is stored once */
  "message:send": (payload: MessageSendRequest, ack: (res: Ack<MessageSendReply>) => void) => void;
  /** Ask staff for help (SOS); stored once per clientAlertId, folded into your open alert */
  "safety:alert": (payload: SafetyAlertRequest, ack: (res: Ack<SafetyAlertReply>) => void) => void;
  /** Typing indicator to a person you may message */
  "typing:start": (payload: TypingStartRequest, ack: (res: Ack) => void) => void;
  /** Typing indicator to a person you may message */
  "typing:stop": (payload: TypingStopRequest, ack: (res: Ack) => void) => void;
}

export type PartnerSocket = Socket<PartnerServerToClientEvents, PartnerClientToServerEvents>;

/** What the server sends on /admin. */
export interface AdminServerToClientEvents {
  /** A booking was created (to monitor:bookings) */
  "booking:created": (payload: BookingCreatedPayload) => void;
  /** A booking changed (to monitor:bookings) */
  "booking:updated": (payload: BookingUpdatedPayload) => void;
  /** The dashboard figures (to the asking socket; to admins at most once a second when they change) */
  "dashboard:stats_update": (payload: DashboardStatsUpdatePayload) => void;
  /** A client event failed, or the socket is about to be disconnected (event: null) */
  "error": (payload: ErrorPayload) => void;
  /** A partner submitted a KYC document (to admins) */
  "kyc:submitted": (payload: KycSubmittedPayload) => void;
  /** The recipient read a message this user sent */
  "message:read": (payload: MessageReadPayload) => void;
  /** A message for this user (in /admin only for staff) */
  "message:received": (payload: MessageReceivedPayload) => void;
  /** A message this user sent was stored (every socket of the sender) */
  "message:sent": (payload: MessageSentPayload) => void;
  /** A partner signed up (to admins) */
  "partner:registered": (payload: PartnerRegisteredPayload) => void;
  /** Staff acknowledged a safety alert (to admins and to the person who raised it) */
  "safety:acknowledged": (payload: SafetyAcknowledgedPayload) => void;
  /** A customer or partner asked for help (to admins); sent again with escalation + 1 until acknowledged */
  "safety:alert": (payload: SafetyAlertPayload) => void;
  /** Someone started or stopped typing to this user */
  "typing:indicator": (payload: TypingIndicatorPayload) => void;
}

/** What a client may send on /admin; every event takes an ack. */
export interface AdminClientToServerEvents {
  /** A newer access token of the same user: the socket outlives the old one's expiry */
  "auth:refresh": (payload: AuthRefreshRequest, ack: (res: Ack<AuthRefreshReply>) => void) => void;
  /** Mark a message read (its recipient only) */
  "message:mark_read": (payload: MessageMarkReadRequest, ack: (res: Ack<MessageMarkReadReply>) => void) => void;
  /** Send a message (contract 5.5); a resend with the same clientMessageId is stored once */
  "message:send": (payload: MessageSendRequest, ack: (res: Ack<MessageSendReply>) => void) => void;
  /** Join monitor:bookings; the ack carries the open bookings (newest 200) */
  "monitor:bookings": (ack: (res: Ack<MonitorBookingsReply>) => void) => void;
  /** Ask for the figures (also emitted as dashboard:stats_update) */
  "request:stats": (ack: (res: Ack<RequestStatsReply>) => void) => void;
  /** Acknowledge a safety alert (staff): its escalation stops; an acknowledged one is CONFLICT */
  "safety:acknowledge": (payload: SafetyAcknowledgeRequest, ack: (res: Ack<SafetyAcknowledgeReply>) => void) => void;
  /** Typing indicator to a person you may message */
  "typing:start": (payload: TypingStartRequest, ack: (res: Ack) => void) => void;
  /** Typing indicator to a person you may message */
  "typing:stop": (payload: TypingStopRequest, ack: (res: Ack) => void) => void;
}

export type AdminSocket = Socket<AdminServerToClientEvents, AdminClientToServerEvents>;

/** The socket of each namespace. */
export interface Sockets {
  "/customer": CustomerSocket;
  "/partner": PartnerSocket;
  "/admin": AdminSocket;
}

export type Namespace = keyof Sockets;
export declare const NAMESPACES: readonly Namespace[];
/** An access token, or a function asked for a fresh one on every (re)connect. */
export type Token = string | (() => string | Promise<string>);
/** A refused connect: socket.io-client's `connect_error`, the server's reason in `data`. */
export type ConnectError = Error & { data?: ErrorBody };
/**
 * A typed socket on `namespace` of the server at `url` (the page's own origin when omitted),
 * authenticated with `token`. Other socket.io-client options pass through.
 */
export declare function connect<N extends Namespace>(
  namespace: N,
  token: Token,
  url?: string,
  options?: Partial<ManagerOptions & SocketOptions>,
): Sockets[N];
