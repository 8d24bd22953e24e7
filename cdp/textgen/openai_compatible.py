"""OpenAI-compatible adapter of the text-generation port: a bank's on-premises model server speaking
`POST {base_url}/v1/chat/completions` (vLLM, TGI, llama.cpp server, ...).

The request carries the scanned prompt only. Errors name the HTTP status or the failure kind, never the
prompt or the answer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx

from cdp.textgen.port import TextGenError, WriteRequest, Written
from cdp.textgen.prompt import build_prompt, parse_slots

if TYPE_CHECKING:
    from cdp.settings import Settings

MAX_TOKENS = 800
TEMPERATURE = 0.2


class OpenAiCompatibleWriter:
    """Fills slots with a chat-completions model server."""

    name = "openai-compatible"

    def __init__(
        self, base_url: str, model: str, api_key: str | None = None, timeout_seconds: float = 30.0
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.api_key = api_key
        self.timeout_seconds = timeout_seconds

    @classmethod
    def from_settings(cls, settings: Settings) -> OpenAiCompatibleWriter:
        if not settings.textgen_url:
            raise ValueError("CDP_TEXTGEN_URL is not set (the model server's base URL)")
        key = settings.textgen_api_key.get_secret_value() if settings.textgen_api_key else None
        return cls(settings.textgen_url, settings.textgen_model, key, settings.textgen_timeout_seconds)

    def body_of(self, request: WriteRequest) -> dict[str, Any]:
        """The chat-completions body of `request` (the prompt scanned first)."""
        prompt = build_prompt(request)
        return {
            "model": self.model,
            "messages": [
                {"role": "system", "content": prompt.system},
                {"role": "user", "content": prompt.user},
            ],
            "temperature": TEMPERATURE,
            "max_tokens": MAX_TOKENS,
        }

    def write(self, request: WriteRequest) -> Written:
        prompt = build_prompt(request)
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        try:
            response = httpx.post(
                f"{self.base_url}/v1/chat/completions",
                json=self.body_of(request),
                headers=headers,
                timeout=self.timeout_seconds,
            )
        except httpx.HTTPError as e:
            raise TextGenError(f"model server unreachable: {type(e).__name__}") from None
        if response.status_code != 200:
            raise TextGenError(f"model server answered HTTP {response.status_code}")
        try:
            choice = response.json()["choices"][0]
            answer = choice["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError):
            raise TextGenError("model server answer is not a chat completion") from None
        if choice.get("finish_reason") not in (None, "stop"):
            raise TextGenError(f"model server answer incomplete: {choice.get('finish_reason')}")
        return Written(
            slots=parse_slots(answer or "", request),
            writer=f"{self.name}:{self.model}",
            prompt_sha256=prompt.sha256,
            prompt_chars=prompt.chars,
        )
