"""Test doubles that speak the text models' real API shapes: a chat-completions server on 127.0.0.1 and a
Bedrock Converse answer builder, both answering a prompt's slots with text that holds their placeholders."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def slot_answer(user_message: str) -> str:
    """The JSON answer a well-behaved model gives to a prompt's user message."""
    body = json.loads(user_message)
    out = {}
    for slot in body["slots"]:
        text = " ".join(slot["placeholders"]) + " we saw something on your account today."
        out[slot["name"]] = text[: slot["max_chars"]].ljust(slot["min_chars"], ".")
    return json.dumps(out)


def converse_response(text: str, stop: str = "end_turn") -> dict[str, Any]:
    """A Bedrock Converse response carrying `text`."""
    return {
        "output": {"message": {"role": "assistant", "content": [{"text": text}]}},
        "stopReason": stop,
        "usage": {"inputTokens": 100, "outputTokens": 40, "totalTokens": 140},
        "metrics": {"latencyMs": 12},
    }


class ChatServer:
    """Records each request body; answers with `answer(body)` (default: a well-behaved model)."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.status = 200
        self.answer = lambda body: slot_answer(body["messages"][-1]["content"])
        self.url = ""


@contextmanager
def chat_server() -> Iterator[ChatServer]:
    """An OpenAI-compatible `/v1/chat/completions` server on 127.0.0.1 (a free port)."""
    state = ChatServer()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            state.bodies.append(body)
            state.headers.append(dict(self.headers))
            if self.path != "/v1/chat/completions" or state.status != 200:
                self.send_response(404 if self.path != "/v1/chat/completions" else state.status)
                self.end_headers()
                return
            reply = {
                "id": "chatcmpl-1",
                "object": "chat.completion",
                "model": body["model"],
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": state.answer(body)},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20},
            }
            data = json.dumps(reply).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
