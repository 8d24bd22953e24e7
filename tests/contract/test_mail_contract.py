"""Contract of the mail port, run against its three adapters: the outbox (.eml files, 0600), SMTP (an
aiosmtpd server on 127.0.0.1, plain and STARTTLS) and SNS (moto, a queue subscribed to the topic).

Every adapter delivers the subject, body and recipient with the notice's Message-ID; failures are
`MailError`s with a reason code and no address in the message."""

from __future__ import annotations

import datetime as dt
import email
import json
import socket
import ssl
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email.message import Message

import boto3
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP as SmtpServer  # noqa: N811 - the server class
from moto import mock_aws

from cdp.mail import MailError, MailMessage, MailTransport
from cdp.mail.outbox import OutboxTransport
from cdp.mail.smtp import SmtpTransport
from cdp.mail.sns import SnsTransport
from tests.contract.moto_env import REGION, use_fake_aws_credentials

RECIPIENT = "jane.doe@example.com"


def message(n: int = 1, **changes) -> MailMessage:
    values = dict(
        message_id=f"ntc-{n:08d}", recipient=RECIPIENT, sender="alerts@bank.example",
        subject="Was this you? A payment on your card ending 1234",
        body="Dear Jane,\n\nWe noticed a payment.\n\nWe will never ask for your PIN or password.",
    )  # fmt: skip
    values.update(changes)
    return MailMessage(**values)


class Inbox:
    """aiosmtpd handler keeping what it receives; `refuse` makes RCPT answer 550."""

    def __init__(self) -> None:
        self.mails: list[Message] = []
        self.refuse = False

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        if self.refuse:
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        self.mails.append(email.message_from_bytes(envelope.content))
        return "250 Message accepted"


@dataclass
class Harness:
    transport: MailTransport
    received: Callable[[], list[Message]]
    refuse: Callable[[], None]


def _outbox(tmp_path) -> Iterator[Harness]:
    box = OutboxTransport(tmp_path / "corebanking" / "outbox")

    def received() -> list[Message]:
        return [email.message_from_bytes(p.read_bytes()) for p in sorted(box.folder.glob("*.eml"))]

    def refuse() -> None:
        box.folder.parent.mkdir(parents=True, exist_ok=True)
        box.folder.write_text("")  # a file where the folder should be: nothing can be written

    yield Harness(box, received, refuse)


def _self_signed(tmp_path) -> tuple[str, str]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return str(cert_path), str(key_path)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _smtp(tmp_path, starttls: bool = False) -> Iterator[Harness]:
    inbox = Inbox()
    client_context = None
    if starttls:
        cert, key = _self_signed(tmp_path)
        server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        server_context.load_cert_chain(cert, key)
        client_context = ssl.create_default_context(cafile=cert)

        class TlsController(Controller):
            def factory(self):
                return SmtpServer(self.handler, tls_context=server_context, require_starttls=True)

        controller = TlsController(inbox, hostname="127.0.0.1", port=free_port())
    else:
        controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        port = controller.port
        host = "localhost" if starttls else "127.0.0.1"
        transport = SmtpTransport(
            host, port, starttls=starttls, timeout_seconds=5, tls_context=client_context
        )
        yield Harness(transport, lambda: inbox.mails, lambda: setattr(inbox, "refuse", True))
    finally:
        controller.stop()


def _sns(monkeypatch) -> Iterator[Harness]:
    use_fake_aws_credentials(monkeypatch)
    with mock_aws():
        sns = boto3.client("sns", region_name=REGION)
        sqs = boto3.client("sqs", region_name=REGION)
        topic = sns.create_topic(Name="cdp-notices")["TopicArn"]
        queue = sqs.create_queue(QueueName="delivery")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        sns.subscribe(
            TopicArn=topic, Protocol="sqs", Endpoint=queue_arn, Attributes={"RawMessageDelivery": "true"}
        )
        seen: list[Message] = []

        def received() -> list[Message]:
            for m in sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", []):
                data = json.loads(m["Body"])
                mail = Message()
                mail["Message-ID"], mail["To"], mail["Subject"] = (
                    data["message_id"],
                    data["to"],
                    data["subject"],
                )
                mail.set_payload(data["body"])
                seen.append(mail)
            return seen

        state = {"topic": topic}

        def refuse() -> None:
            sns.delete_topic(TopicArn=state["topic"])

        yield Harness(SnsTransport(sns, topic), received, refuse)


@pytest.fixture(params=["outbox", "smtp", "smtp-starttls", "sns"])
def harness(request, tmp_path, monkeypatch) -> Iterator[Harness]:
    if request.param == "outbox":
        yield from _outbox(tmp_path)
    elif request.param == "sns":
        yield from _sns(monkeypatch)
    else:
        yield from _smtp(tmp_path, starttls=request.param == "smtp-starttls")


def _body(mail: Message) -> str:
    payload = mail.get_payload(decode=True) if mail.is_multipart() is False else None
    return payload.decode() if isinstance(payload, bytes) else str(mail.get_payload())


def test_a_message_is_delivered_with_its_id_subject_body_and_recipient(harness: Harness):
    delivery = harness.transport.send(message(1))
    assert delivery.message_id == "ntc-00000001" and not delivery.duplicate
    (mail,) = harness.received()
    assert mail["Message-ID"] == "<ntc-00000001@notices.cdp.invalid>"
    assert mail["To"] == RECIPIENT
    assert mail["Subject"] == message().subject
    assert "We will never ask for your PIN or password." in _body(mail)


def test_failures_are_mail_errors_with_a_reason_code_and_no_address(harness: Harness):
    harness.refuse()
    with pytest.raises(MailError) as failure:
        harness.transport.send(message(2))
    assert failure.value.reason.split("-")[0] in ("outbox", "smtp", "sns")
    assert RECIPIENT not in str(failure.value) and "Jane" not in str(failure.value)


def test_outbox_files_are_private_and_a_repeated_id_is_not_written_twice(tmp_path):
    box = OutboxTransport(tmp_path / "outbox")
    first = box.send(message(3))
    again = box.send(message(3, body="another body"))
    assert not first.duplicate and again.duplicate
    files = list(box.folder.glob("*.eml"))
    assert [f.name for f in files] == ["ntc-00000003.eml"]
    assert stat.S_IMODE(files[0].stat().st_mode) == 0o600
    assert b"another body" not in files[0].read_bytes()
    assert stat.S_IMODE(box.parts.stat().st_mode) == 0o700 and list(box.parts.iterdir()) == []


def test_an_outbox_batch_publishes_each_message_once_and_reports_repeats(tmp_path):
    box = OutboxTransport(tmp_path / "outbox")
    box.send(message(1, customer_token="usr_a"))
    again = message(3, body="again", customer_token="usr_a")
    batch = [*(message(n, customer_token="usr_a") for n in (1, 2, 3)), again]
    outcomes = box.send_batch(batch)
    assert [(o.message_id, o.duplicate) for o in outcomes] == [
        ("ntc-00000001", True), ("ntc-00000002", False), ("ntc-00000003", False), ("ntc-00000003", True),
    ]  # fmt: skip
    names = sorted(f.name for f in box.folder.glob("*.eml"))
    assert names == [f"usr_a--ntc-0000000{n}.eml" for n in (1, 2, 3)]
    assert b"again" not in (box.folder / names[2]).read_bytes()
    assert list(box.parts.iterdir()) == [] and box.send_batch([]) == []


def test_an_outbox_batch_that_cannot_write_returns_transient_errors(tmp_path):
    (tmp_path / "outbox").write_text("not a folder")
    outcomes = OutboxTransport(tmp_path / "outbox").send_batch([message(1), message(2)])
    assert all(isinstance(o, MailError) and not o.permanent for o in outcomes)


def test_files_a_crash_left_unpublished_are_removed_by_the_next_batch_and_at_erasure(tmp_path):
    from cdp.mail.outbox import remove_customer_mail
    from cdp.settings import Settings

    settings = Settings(home=tmp_path)
    box = OutboxTransport.from_settings(settings)
    box.send(message(1, customer_token="usr_a"))
    left = [box.parts / "usr_a--x1", box.parts / "usr_b--x2"]
    for f in left:
        f.write_bytes(b"To: jane@example.com")
    assert remove_customer_mail(settings, "usr_a") == 2  # the e-mail and the unpublished file
    assert [f.exists() for f in left] == [False, True]
    OutboxTransport.from_settings(settings).send(message(2, customer_token="usr_c"))  # a new process
    assert list(box.parts.iterdir()) == []


def test_smtp_550_is_permanent_and_a_closed_port_is_transient(tmp_path):
    inbox = Inbox()
    inbox.refuse = True
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        with pytest.raises(MailError) as refused:
            SmtpTransport("127.0.0.1", port, timeout_seconds=5).send(message(4))
        assert refused.value.permanent and refused.value.reason == "smtp-550"
    finally:
        controller.stop()
    with pytest.raises(MailError) as down:
        SmtpTransport("127.0.0.1", port, timeout_seconds=2).send(message(5))
    assert not down.value.permanent


def test_sns_fifo_topics_get_the_message_id_as_deduplication_id(monkeypatch):
    use_fake_aws_credentials(monkeypatch)
    with mock_aws():
        sns = boto3.client("sns", region_name=REGION)
        topic = sns.create_topic(
            Name="cdp-notices.fifo", Attributes={"FifoTopic": "true", "ContentBasedDeduplication": "false"}
        )["TopicArn"]
        calls: list[dict] = []
        sns.meta.events.register(
            "provide-client-params.sns.Publish", lambda params, **kw: calls.append(params)
        )
        SnsTransport(sns, topic).send(message(6))
    assert calls[0]["MessageDeduplicationId"] == "ntc-00000006"
    assert calls[0]["MessageGroupId"] == "ntc-00000006"


def test_message_ids_and_one_line_headers_are_enforced():
    with pytest.raises(ValueError):
        message(message_id="Bad Id!")
    with pytest.raises(ValueError):
        message(subject="two\nlines")
