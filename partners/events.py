"""Payload builders for partner-side events (contract 5.2, 5.3)."""

from decimal import Decimal
from typing import Any

from config import rooms
from config.formats import iso
from config.realtime.catalogue import ID, NUMBER, STRING, TIME, UUID, enum, obj, server_event
from partners.models import DocumentType, Earning, KycSubmission, Partner

server_event(
    "partner:registered",
    namespaces=(rooms.ADMIN,),
    summary="A partner signed up (to admins)",
    payload=obj(
        {
            "partnerId": ID,
            "name": STRING,
            "phone": STRING,
            "services": {"type": "array", "items": ID},
            "createdAt": TIME,
        }
    ),
)
server_event(
    "kyc:submitted",
    namespaces=(rooms.ADMIN,),
    summary="A partner submitted a KYC document (to admins)",
    payload=obj(
        {
            "submissionId": ID,
            "partnerId": ID,
            "partnerName": STRING,
            "documentType": enum(DocumentType.values),
            "submittedAt": TIME,
        }
    ),
)
server_event(
    "earnings:updated",
    namespaces=(rooms.PARTNER,),
    summary="The partner earned from a completed booking",
    payload=obj(
        {"bookingId": UUID, "amount": NUMBER, "todayEarnings": NUMBER, "totalEarnings": NUMBER, "currency": STRING}
    ),
)


def partner_registered(partner: Partner) -> dict[str, Any]:
    return {
        "partnerId": str(partner.pk),
        "name": partner.name,
        "phone": partner.phone,
        "services": [str(pk) for pk in partner.services.values_list("pk", flat=True)],
        "createdAt": iso(partner.created_at),
    }


def kyc_submitted(submission: KycSubmission) -> dict[str, Any]:
    return {
        "submissionId": str(submission.pk),
        "partnerId": str(submission.partner_id),
        "partnerName": submission.partner.name,
        "documentType": submission.document_type,
        "submittedAt": iso(submission.submitted_at),
    }


def earnings_updated(earning: Earning, *, today: Decimal, total: Decimal) -> dict[str, Any]:
    return {
        "bookingId": str(earning.booking_id),
        "amount": float(earning.amount),
        "todayEarnings": float(today),
        "totalEarnings": float(total),
        "currency": earning.currency,
    }
