"""SMTP adapter of the mail port: one conversation per message with a relay, STARTTLS where configured.

A 5xx answer is permanent (the notice is dead-lettered with the code), a 4xx answer or a connection failure
is transient (retried). SMTP has no idempotency: the Message-ID lets the receiving side spot a repeat.
"""

from __future__ import annotations

import smtplib
import ssl
from typing import TYPE_CHECKING

from cdp.mail.mime import to_bytes
from cdp.mail.port import Delivery, MailError, MailMessage

if TYPE_CHECKING:
    from cdp.settings import Settings


class SmtpTransport:
    """Sends through an SMTP relay."""

    name = "smtp"

    def __init__(
        self,
        host: str,
        port: int,
        starttls: bool = False,
        username: str | None = None,
        password: str | None = None,
        timeout_seconds: float = 10.0,
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        self.host, self.port = host, port
        self.starttls = starttls
        self.username, self.password = username, password
        self.timeout_seconds = timeout_seconds
        self.tls_context = tls_context

    @classmethod
    def from_settings(cls, settings: Settings) -> SmtpTransport:
        password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
        return cls(settings.smtp_host, settings.smtp_port, settings.smtp_starttls, settings.smtp_username,
                   password, settings.smtp_timeout_seconds)  # fmt: skip

    def send(self, message: MailMessage) -> Delivery:
        data = to_bytes(message)
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout_seconds) as smtp:
                smtp.ehlo()
                if self.starttls:
                    smtp.starttls(context=self.tls_context or ssl.create_default_context())
                    smtp.ehlo()
                if self.username:
                    smtp.login(self.username, self.password or "")
                refused = smtp.sendmail(message.sender, [message.recipient], data)
        except smtplib.SMTPRecipientsRefused as e:
            code = next(iter(e.recipients.values()))[0] if e.recipients else 550
            raise MailError(f"smtp-{code}", permanent=code >= 500) from None
        except smtplib.SMTPResponseException as e:
            raise MailError(f"smtp-{e.smtp_code}", permanent=e.smtp_code >= 500) from None
        except (smtplib.SMTPException, OSError) as e:
            raise MailError(f"smtp-{type(e).__name__}", permanent=False) from None
        if refused:
            raise MailError("smtp-refused", permanent=True)
        return Delivery(message.message_id, self.name, "250")
