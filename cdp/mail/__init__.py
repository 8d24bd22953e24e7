"""The mail port: customer notices leave through an outbox of .eml files (default), SMTP, or SNS."""

from cdp.mail.port import Delivery, MailError, MailMessage, MailTransport

__all__ = ["Delivery", "MailError", "MailMessage", "MailTransport"]
