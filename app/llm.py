"""Talk to an OpenAI-compatible chat endpoint: messages -> text, whole or streamed. Plain httpx, no SDK."""
from __future__ import annotations

import contextlib
import json
from typing import Iterator

import httpx

from ingest.errors import NotesError


class LLMError(NotesError):
    """The model endpoint failed: connection, timeout, HTTP error or a malformed reply."""


class ChatClient:
    def __init__(self, base_url: str, model: str, api_key: str | None, timeout: float) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.model = model
        self._url = base_url.rstrip("/") + "/chat/completions"
        self._http = httpx.Client(headers=headers, timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)))

    def _body(self, messages: list[dict], stream: bool) -> dict:
        return {"model": self.model, "messages": messages, "temperature": 0.1, "stream": stream}

    def complete(self, messages: list[dict]) -> str:
        with _as_llm_errors():
            r = self._http.post(self._url, json=self._body(messages, False))
            r.raise_for_status()
            content = r.json()["choices"][0]["message"]["content"]
            if not isinstance(content, str):
                raise TypeError(content)
            return content

    def stream(self, messages: list[dict]) -> Iterator[str]:
        """Text pieces as the model produces them (server-sent events, `data: {...}` lines)."""
        with _as_llm_errors(), self._http.stream("POST", self._url, json=self._body(messages, True)) as r:
            r.raise_for_status()
            for line in r.iter_lines():
                if not line.startswith("data:"):
                    continue
                data = line[5:].strip()
                if data == "[DONE]":
                    return
                piece = json.loads(data)["choices"][0].get("delta", {}).get("content")
                if piece:
                    if not isinstance(piece, str):
                        raise TypeError(piece)
                    yield piece


@contextlib.contextmanager
def _as_llm_errors() -> Iterator[None]:
    """Every way the endpoint can fail becomes one LLMError, which the caller answers with a fallback."""
    try:
        yield
    except httpx.HTTPStatusError as exc:
        raise LLMError(f"the model endpoint answered HTTP {exc.response.status_code}") from None
    except httpx.TimeoutException:
        raise LLMError("the model endpoint timed out") from None
    except httpx.HTTPError as exc:
        raise LLMError(f"the model endpoint is unreachable ({type(exc).__name__})") from None
    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
        raise LLMError("the model endpoint sent a malformed reply") from None
