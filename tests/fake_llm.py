"""A small OpenAI-compatible chat server for tests: real HTTP on 127.0.0.1, scripted replies, streaming."""
from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeLLM:
    """`behaviour` is one of: normal, slow, error500, malformed. `reply` is what the model says."""

    def __init__(self) -> None:
        self.behaviour = "normal"
        self.reply = "梯度检查点只保存一部分激活值,其余在反向传播时重新计算。[1]"
        self.rewrite = None  # the reply to a follow-up rewriting request; None echoes the question
        self.delay = 3.0
        self.requests: list[dict] = []
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
                if body.get("stream"):
                    self.send_response(200)
                    self.send_header("Content-Type", "text/event-stream")
                    self.end_headers()
                    for i in range(0, len(text), 4):
                        chunk = {"choices": [{"index": 0, "delta": {"content": text[i : i + 4]}}]}
                        self.wfile.write(f"data: {json.dumps(chunk, ensure_ascii=False)}\n\n".encode())
                        self.wfile.flush()
                    self.wfile.write(b"data: [DONE]\n\n")
                    return
                reply = {"choices": [{"index": 0, "message": {"role": "assistant", "content": text}}]}
                self._send(200, json.dumps(reply, ensure_ascii=False).encode())

            def _send(self, status: int, payload: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
