"""Talk to an OpenAI-compatible chat endpoint: messages -> text, whole or streamed. Plain httpx, no SDK."""
from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from typing import AsyncIterator, Iterator

import httpx

from app.errors import ModelBusy
from ingest.errors import NotesError


class LLMError(NotesError):
    """The model endpoint failed: connection, timeout, HTTP error or a malformed reply; `reason` names
    which, in a word fit for a metric label."""

    def __init__(self, message: str, reason: str = "error") -> None:
        super().__init__(message)
        self.reason = reason


class ChatClient:
    """Every call holds one of `concurrency` slots and ends by `timeout` seconds after it began, whatever
    the endpoint does: httpx's own timeouts count per read, so a model trickling a token a second never
    trips them."""

    def __init__(
        self, base_url: str, model: str, api_key: str | None, timeout: float, max_tokens: int, concurrency: int
    ) -> None:
        self.model = model
        self.timeout = timeout
        self.max_tokens = max_tokens
        self.concurrency = concurrency
        self._url = base_url.rstrip("/") + "/chat/completions"
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        # A client per call, so that no connection outlives the event loop that opened it (tests run
        # several); loading the CA bundle is the costly part of a client, so it is done once.
        self._ssl = httpx.create_ssl_context()
        self._calls = 0
        self._lock = threading.Lock()

    def check_free(self) -> None:
        """ModelBusy when every slot is taken; a call refused now is better than one queued behind slow ones."""
        if self._calls >= self.concurrency:
            raise ModelBusy(f"All {self.concurrency} model slots are busy; try again in a moment.")

    @contextlib.contextmanager
    def _slot(self) -> Iterator[None]:
        with self._lock:
            self.check_free()
            self._calls += 1
        try:
            yield
        finally:
            with self._lock:
                self._calls -= 1

    def _client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(headers=self._headers, verify=self._ssl, timeout=None)

    def _body(self, messages: list[dict], stream: bool) -> dict:
        return {
            "model": self.model, "messages": messages, "temperature": 0.1, "max_tokens": self.max_tokens,
            "stream": stream,
        }

    async def complete(self, messages: list[dict]) -> str:
        with self._slot(), self._as_llm_errors():
            async with asyncio.timeout(self.timeout), self._client() as http:
                r = await http.post(self._url, json=self._body(messages, False))
                r.raise_for_status()
                content = r.json()["choices"][0]["message"]["content"]
            if not isinstance(content, str):
                raise TypeError(content)
            return content

    async def stream(self, messages: list[dict]) -> AsyncIterator[str]:
        """Text pieces as the model produces them (server-sent events, `data: {...}` lines).

        Closing the generator, as a client disconnect does, closes the upstream connection. The
        deadline wraps each wait, never a `yield`, so it cannot cancel whoever is consuming.
        """
        with self._slot(), self._as_llm_errors():
            deadline = asyncio.get_running_loop().time() + self.timeout
            async with self._client() as http:
                request = http.build_request("POST", self._url, json=self._body(messages, True))
                async with asyncio.timeout_at(deadline):
                    r = await http.send(request, stream=True)
                try:
                    r.raise_for_status()
                    lines = r.aiter_lines()
                    while True:
                        async with asyncio.timeout_at(deadline):
                            line = await anext(lines, None)
                        if line is None:
                            return
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
                finally:
                    await r.aclose()

    @contextlib.contextmanager
    def _as_llm_errors(self) -> Iterator[None]:
        """Every way the endpoint can fail becomes one LLMError, which the caller answers with a fallback."""
        try:
            yield
        except httpx.HTTPStatusError as exc:
            raise LLMError(f"the model endpoint answered HTTP {exc.response.status_code}", "http_error") from None
        except TimeoutError:
            raise LLMError(f"the model endpoint timed out after {self.timeout:g} s", "timeout") from None
        except httpx.HTTPError as exc:
            raise LLMError(f"the model endpoint is unreachable ({type(exc).__name__})", "unreachable") from None
        except (ValueError, KeyError, IndexError, TypeError, AttributeError):
            raise LLMError("the model endpoint sent a malformed reply", "malformed") from None
