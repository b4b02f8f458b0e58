"""A small OpenAI-compatible chat server for tests: real HTTP on 127.0.0.1, scripted replies, streaming."""
from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class _Server(ThreadingHTTPServer):
    request_queue_size = 128  # fifty streams may connect at once


class FakeLLM:
    """`behaviour` is one of: normal, slow, error500, malformed, trickle. `reply` is what the model says.

    slow waits `delay` seconds before answering. trickle answers at once, then sends its reply a piece
    at a time, one every `interval` seconds, `pieces` times over: per-read timeouts never fire on it.
    """

    def __init__(self) -> None:
        self.behaviour = "normal"
        self.reply = "梯度检查点只保存一部分激活值,其余在反向传播时重新计算。[1]"
        self.rewrite = None  # the reply to a follow-up rewriting request; None echoes the question
        self.delay = 3.0
        self.interval = 0.2
        self.pieces = 100
        self.requests: list[dict] = []
        self.streaming = 0  # trickling responses being written right now
        self.hung_up = threading.Event()  # a client closed a trickling response before its end
        self.completed = threading.Event()  # a trickling response was written to its end
        lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                fake.requests.append({"path": self.path, "auth": self.headers.get("Authorization"), **body})
                if fake.behaviour == "slow":
                    time.sleep(fake.delay)
                if fake.behaviour == "error500":
                    return self._send(500, b'{"error": "boom"}')
                if fake.behaviour == "malformed":
                    return self._send(200, b'{"choices": [{"mess')
                rewriting = body["messages"][0]["content"].startswith("Rewrite")
                text = (fake.rewrite or body["messages"][-1]["content"]) if rewriting else fake.reply
                if fake.behaviour == "trickle" and not rewriting:
                    return self._trickle(text, bool(body.get("stream")))
                if body.get("stream"):
                    self.send_response(200)
                    self.send_header("Content-Type", "text/event-stream")
                    self.end_headers()
                    for i in range(0, len(text), 4):
                        self.wfile.write(_event(text[i : i + 4]))
                        self.wfile.flush()
                    self.wfile.write(b"data: [DONE]\n\n")
                    return
                self._send(200, _completion(text))

            def _trickle(self, text: str, stream: bool) -> None:
                with lock:
                    fake.streaming += 1
                try:
                    self.send_response(200)
                    if stream:
                        self.send_header("Content-Type", "text/event-stream")
                        self.end_headers()
                        chunks = [_event(text if i == 0 else " ") for i in range(fake.pieces)] + [b"data: [DONE]\n\n"]
                    else:
                        payload = _completion(text)
                        self.send_header("Content-Type", "application/json")
                        self.send_header("Content-Length", str(len(payload)))
                        self.end_headers()
                        step = max(1, len(payload) // fake.pieces)
                        chunks = [payload[i : i + step] for i in range(0, len(payload), step)]
                    for chunk in chunks:
                        self.wfile.write(chunk)
                        self.wfile.flush()
                        time.sleep(fake.interval)
                    fake.completed.set()
                except (BrokenPipeError, ConnectionResetError):
                    fake.hung_up.set()
                finally:
                    with lock:
                        fake.streaming -= 1

            def _send(self, status: int, payload: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.server = _Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _event(text: str) -> bytes:
    chunk = {"choices": [{"index": 0, "delta": {"content": text}}]}
    return f"data: {json.dumps(chunk, ensure_ascii=False)}\n\n".encode()


def _completion(text: str) -> bytes:
    reply = {"choices": [{"index": 0, "message": {"role": "assistant", "content": text}}]}
    return json.dumps(reply, ensure_ascii=False).encode()
