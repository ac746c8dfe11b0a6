"""The TypeScript package (contract 10.4): generated from the catalogue, checked by the compiler
and by the server.

One ``tsc`` run per session type-checks the examples and the file of deliberate mistakes
together (strict, the generated ``index.d.ts`` included) and emits the examples' JavaScript,
which then runs with the official socket.io-client against the live server.
"""

import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from bookings.models import Booking
from bookings.models import BookingStatus as S
from config import rooms, typescript
from config.realtime import catalogue
from config.realtime.server import documented_namespaces, sio
from messaging.models import Message
from tests.factories import BookingFactory
from tests.live import eventually, token_for

SDK = typescript.PACKAGE
MISTAKES = SDK / "test" / "mistakes.ts"
# Type-check the examples and the mistakes together (test/tsconfig.json extends the package's).
TSC = ["node", "node_modules/typescript/bin/tsc", "-p", "test", "--pretty", "false"]
DIAGNOSTIC = re.compile(r"^(?P<file>[^(\s]+)\((?P<line>\d+),\d+\): error (?P<code>TS\d+):", re.M)


def _require_typescript() -> None:
    """Node, and the package's dev dependencies (npm ci from its lockfile, as make sdk does)."""
    if shutil.which("node") is None:
        pytest.skip("node is not installed")
    if not (SDK / "node_modules" / "typescript").exists():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=SDK, check=True, timeout=300)


@pytest.fixture(scope="module")
def compiled() -> Iterator[tuple[Path, dict[str, set[tuple[int, str]]]]]:
    """The emitted JavaScript's folder and tsc's errors, ``{file: {(line, code)}}``."""
    _require_typescript()
    out = Path(tempfile.mkdtemp(prefix=".build-", dir=SDK))  # inside the package: its name resolves
    try:
        run = subprocess.run(
            [*TSC, "--noEmit", "false", "--rootDir", ".", "--outDir", out.name],
            cwd=SDK,
            capture_output=True,
            text=True,
            timeout=120,
        )
        errors: dict[str, set[tuple[int, str]]] = {}
        for match in DIAGNOSTIC.finditer(run.stdout):
            errors.setdefault(match["file"], set()).add((int(match["line"]), match["code"]))
        assert errors or run.returncode == 0, run.stdout + run.stderr
        yield out, errors
    finally:
        shutil.rmtree(out, ignore_errors=True)


def test_the_committed_package_is_what_the_catalogue_generates():
    for name, text in typescript.package().items():
        assert (SDK / name).read_text() == text, f"sdk/typescript/{name} is stale: run make sdk"


def test_the_package_needs_only_socket_io_client_4_at_run_time():
    manifest = json.loads((SDK / "package.json").read_text())
    assert manifest["name"] == "homeservices-realtime-client"
    assert "dependencies" not in manifest
    assert manifest["peerDependencies"] == {"socket.io-client": "^4.7.0"}
    imports = re.findall(r'^import .* from "([^"]+)";$', (SDK / "index.js").read_text(), re.M)
    assert imports == ["socket.io-client"]
    assert set(manifest["files"]) == set(typescript.package())  # what npm publishes is what is generated


def test_a_new_event_appears_on_regeneration(monkeypatch):
    declared = catalogue.events()
    monkeypatch.setattr(
        catalogue,
        "events",
        lambda: [
            *declared,
            catalogue.EventSpec(
                "job:photo",
                "client",
                (rooms.PARTNER,),
                catalogue.obj({"url": catalogue.STRING}),
                "x",
                catalogue.obj({"photoId": catalogue.ID}),
            ),
            catalogue.EventSpec(
                "job:photo_added", "server", (rooms.CUSTOMER,), catalogue.obj({"n": catalogue.INTEGER}), "y"
            ),
        ],
    )
    text = typescript.declarations()
    assert text != (SDK / "index.d.ts").read_text()  # the committed-package check would fail
    assert "export type JobPhotoRequest = {\n  url: string;\n};" in text
    assert "export type JobPhotoReply = {\n  /** an id, as a string of digits */\n  photoId: string;\n};" in text
    assert '"job:photo": (payload: JobPhotoRequest, ack: (res: Ack<JobPhotoReply>) => void) => void;' in text
    partner_emits = text.split("export interface PartnerClientToServerEvents")[1].split("}\n")[0]
    customer_listens = text.split("export interface CustomerServerToClientEvents")[1].split("}\n")[0]
    assert '"job:photo"' in partner_emits and '"job:photo_added": (payload: JobPhotoAddedPayload)' in customer_listens


def test_every_namespace_event_shape_and_error_code_is_a_type():
    text = (SDK / "index.d.ts").read_text()
    for namespace in documented_namespaces():
        for side in ("ServerToClientEvents", "ClientToServerEvents"):
            assert f"export interface {typescript.pascal(namespace)}{side} {{" in text
    for spec in catalogue.events():
        assert f'  "{spec.name}": (' in text, spec.name
    for name in ("Booking", "PartnerSummary", "Partner", "Message", "Notification", "ErrorCode", "ErrorBody"):
        assert f"export type {name} = " in text, name
    assert "export type BookingCreatedPayload = Booking;" in text
    assert "partner: PartnerSummary | null;" in text
    assert '"NOT_FOUND"' in text.split("export type ErrorCode = ")[1].split(";")[0]


def test_the_examples_compile_under_strict(compiled):
    _out, errors = compiled
    assert {file: found for file, found in errors.items() if Path(file).name != MISTAKES.name} == {}


def test_every_deliberate_mistake_is_a_compile_error_with_its_code(compiled):
    _out, errors = compiled
    marked = {
        (number, code)
        for number, line in enumerate(MISTAKES.read_text().splitlines(), start=1)
        for code in re.findall(r"// error (TS\d+)$", line)
    }
    assert len(marked) >= 10
    assert errors.get("test/mistakes.ts", set()) == marked


def _start(example: Path, live_server_url: str, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        ["node", str(example)],
        cwd=SDK,
        env={**os.environ, "SERVER_URL": live_server_url, "RUN_SECONDS": "25", **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finished(proc: subprocess.Popen) -> list[dict]:
    try:
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    seen = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert proc.returncode == 0, (seen, err)
    return seen


def _values(seen: list[dict], kind: str) -> list:
    return [o["value"] for o in seen if o["kind"] == kind]


@pytest.mark.django_db(transaction=True)
@pytest.mark.node
def test_the_examples_track_relay_chat_and_handle_errors_against_the_server(
    compiled, live_server_url, customer, partner, service
):
    out, _errors = compiled
    booking = BookingFactory(customer=customer, partner=partner, status=S.PARTNER_ACCEPTED, service=service)
    ids = {"BOOKING_ID": str(booking.pk)}
    customer_app = _start(
        out / "examples" / "customer.js", live_server_url, {**ids, "ACCESS_TOKEN": token_for(customer)}
    )
    partner_app = None
    try:
        eventually(
            lambda: any(True for _ in sio.manager.get_participants(rooms.CUSTOMER, rooms.booking(booking.pk))),
            timeout=15,
            what="the customer app to track its booking",
        )
        env = {**ids, "ACCESS_TOKEN": token_for(partner.user), "CUSTOMER_ID": str(customer.pk)}
        partner_app = _start(out / "examples" / "partner.js", live_server_url, env)
        seen_partner = _finished(partner_app)
        seen_customer = _finished(customer_app)
    finally:
        for proc in (customer_app, partner_app):
            if proc is not None and proc.poll() is None:
                proc.kill()

    # The customer: its booking, the partner's marker, the status, the chat, a refusal explained.
    assert _values(seen_customer, "booking")[0] == {
        "number": booking.number,
        "status": "PARTNER_ACCEPTED",
        "partner": partner.name,
    }
    markers = _values(seen_customer, "marker")
    assert markers and markers[0]["longitude"] == 77.209 and markers[0]["latitude"] > 28.6
    assert "PARTNER_EN_ROUTE" in [s["status"] for s in _values(seen_customer, "status")]
    assert _values(seen_customer, "message")[0] == {"from": "partner", "text": "On my way"}
    assert _values(seen_customer, "replied")[0]["duplicate"] is False
    assert {"code": "NOT_FOUND", "text": "We could not find that"} in _values(seen_customer, "refused")
    # One answer per refusal (contract 10.1): the ack the example asked for, no `error` event besides.
    assert {"code": "NOT_FOUND", "event": "booking:track"} not in _values(seen_customer, "error")
    assert _values(seen_customer, "done") == [str(booking.pk)]
    # The partner: available, en route, positions relayed, a refused transition, the reply and its receipt.
    assert _values(seen_partner, "available") == [True]
    assert _values(seen_partner, "status") == ["PARTNER_EN_ROUTE"]
    assert any(p["relayed"] >= 1 for p in _values(seen_partner, "position"))
    assert {"code": "INVALID_TRANSITION", "text": "That is not possible right now"} in _values(seen_partner, "refused")
    assert {"from": "customer", "text": "Thanks, see you soon"} in _values(seen_partner, "message")
    assert _values(seen_partner, "read")
    assert _values(seen_partner, "done") == [str(booking.pk)]
    # And the server holds what they did.
    booking = Booking.objects.get(pk=booking.pk)
    assert booking.status == S.PARTNER_EN_ROUTE
    sent = Message.objects.filter(booking=booking).order_by("created_at")
    assert [(m.sender_id, m.body) for m in sent] == [
        (partner.user.pk, "On my way"),
        (customer.pk, "Thanks, see you soon"),
    ]
    assert sent[0].read_at is not None
