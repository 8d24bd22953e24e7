"""SNS adapter of the mail port: each message is published to a topic as JSON for the bank's delivery
subscriber (an e-mail sender behind SNS). On a FIFO topic (`.fifo`) the message id is the deduplication id
and the group is the message itself, so a repeat within SNS's five-minute window is not delivered again.
The topic is core banking's: the message holds the address and the filled body.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from cdp.mail.port import Delivery, MailError, MailMessage

if TYPE_CHECKING:
    from cdp.settings import Settings

_PERMANENT = {"InvalidParameter", "InvalidParameterValue", "NotFound", "AuthorizationError", "KMSDisabled"}
SUBJECT_LIMIT = 99  # SNS subjects are under 100 characters


class SnsTransport:
    """Publishes messages to an SNS topic."""

    name = "sns"

    def __init__(self, client: Any, topic_arn: str) -> None:
        self.client = client
        self.topic_arn = topic_arn

    @classmethod
    def from_settings(cls, settings: Settings) -> SnsTransport:
        from cdp.aws_clients import aws_client

        if not settings.sns_topic_arn:
            raise ValueError("CDP_SNS_TOPIC_ARN is not set (the topic customer notices go to)")
        return cls(aws_client(settings, "sns"), settings.sns_topic_arn)

    def send(self, message: MailMessage) -> Delivery:
        from botocore.exceptions import BotoCoreError, ClientError

        payload = {
            "message_id": message.header_id,
            "from": message.sender,
            "to": message.recipient,
            "subject": message.subject,
            "body": message.body,
        }
        call: dict[str, Any] = {
            "TopicArn": self.topic_arn,
            "Subject": message.subject[:SUBJECT_LIMIT],
            "Message": json.dumps(payload, ensure_ascii=False),
            "MessageAttributes": {"message_id": {"DataType": "String", "StringValue": message.message_id}},
        }
        if self.topic_arn.endswith(".fifo"):
            call["MessageDeduplicationId"] = message.message_id
            call["MessageGroupId"] = message.message_id
        try:
            answer = self.client.publish(**call)
        except ClientError as e:
            code = e.response["Error"].get("Code", "?")
            raise MailError(f"sns-{code}", permanent=code in _PERMANENT) from None
        except BotoCoreError as e:
            raise MailError(f"sns-{type(e).__name__}", permanent=False) from None
        return Delivery(message.message_id, self.name, answer.get("MessageId", ""))
