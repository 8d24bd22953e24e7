"""The text-generation port: a writer fills the named slots of an approved template from de-identified
context. Adapters: a deterministic template writer (default, no network), Bedrock Converse and an
OpenAI-compatible chat-completions server."""

from cdp.textgen.port import (
    PromptRefused,
    SlotSpec,
    TextGenError,
    TextWriter,
    WriteRequest,
    Written,
)

__all__ = ["PromptRefused", "SlotSpec", "TextGenError", "TextWriter", "WriteRequest", "Written"]
