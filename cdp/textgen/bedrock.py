"""Bedrock adapter of the text-generation port: the Converse API (Claude), with an optional guardrail.

The request carries the scanned prompt only (system text + one user message); with a guardrail id set it
names the guardrail, and an answer the guardrail stopped (`stopReason: guardrail_intervened`) is a failure,
so the caller falls back to plain wording. Service errors are reported by their error code only. Model
invocation logging, if the account turns it on, records prompts that hold no personal data by construction.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cdp.textgen.port import TextGenError, WriteRequest, Written
from cdp.textgen.prompt import build_prompt, parse_slots

if TYPE_CHECKING:
    from cdp.settings import Settings

MAX_TOKENS = 800
TEMPERATURE = 0.2


class BedrockWriter:
    """Fills slots with a Bedrock model through `converse`."""

    name = "bedrock"

    def __init__(
        self,
        client: Any,
        model_id: str,
        guardrail_id: str | None = None,
        guardrail_version: str = "DRAFT",
    ) -> None:
        self.client = client
        self.model_id = model_id
        self.guardrail_id = guardrail_id
        self.guardrail_version = guardrail_version

    @classmethod
    def from_settings(cls, settings: Settings) -> BedrockWriter:
        from botocore.config import Config

        from cdp.aws_clients import aws_client

        region = settings.bedrock_region or settings.aws_region
        client = aws_client(
            settings.model_copy(update={"aws_region": region}), "bedrock-runtime", Config(read_timeout=30)
        )
        return cls(client, settings.bedrock_model_id, settings.bedrock_guardrail_id,
                   settings.bedrock_guardrail_version)  # fmt: skip

    def request_of(self, request: WriteRequest) -> dict[str, Any]:
        """The Converse request of `request` (the prompt scanned first)."""
        prompt = build_prompt(request)
        call: dict[str, Any] = {
            "modelId": self.model_id,
            "system": [{"text": prompt.system}],
            "messages": [{"role": "user", "content": [{"text": prompt.user}]}],
            "inferenceConfig": {"maxTokens": MAX_TOKENS, "temperature": TEMPERATURE},
        }
        if self.guardrail_id:
            call["guardrailConfig"] = {
                "guardrailIdentifier": self.guardrail_id,
                "guardrailVersion": self.guardrail_version,
                "trace": "disabled",
            }
        return call

    def write(self, request: WriteRequest) -> Written:
        from botocore.exceptions import BotoCoreError, ClientError

        prompt = build_prompt(request)
        call = self.request_of(request)
        try:
            response = self.client.converse(**call)
        except ClientError as e:
            raise TextGenError(f"bedrock refused the call: {e.response['Error'].get('Code', '?')}") from None
        except BotoCoreError as e:
            raise TextGenError(f"bedrock unreachable: {type(e).__name__}") from None
        stop = response.get("stopReason")
        if stop == "guardrail_intervened":
            raise TextGenError("bedrock guardrail intervened")
        if stop not in ("end_turn", "stop_sequence"):
            raise TextGenError(f"bedrock answer incomplete: {stop}")
        parts = response.get("output", {}).get("message", {}).get("content", [])
        answer = "".join(p.get("text", "") for p in parts)
        usage = response.get("usage", {})
        return Written(
            slots=parse_slots(answer, request),
            writer=f"{self.name}:{self.model_id}",
            prompt_sha256=prompt.sha256,
            prompt_chars=prompt.chars,
            extra={"output_tokens": str(usage.get("outputTokens", ""))},
        )
