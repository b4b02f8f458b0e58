"""Service settings, read from NOTES_* environment variables."""
from pathlib import Path
from typing import Annotated, Literal

from pydantic import SecretStr, field_validator
from pydantic_settings import NoDecode

from ingest.settings import ModelSettings

LOOPBACK_HOSTS = ["127.0.0.1", "localhost", "[::1]"]


class Settings(ModelSettings):
    host: str = "127.0.0.1"
    port: int = 8000
    # Host names the service answers to, comma-separated in the environment. Any web page can make
    # a browser send requests to 127.0.0.1 under a name of its own (DNS rebinding); those are refused.
    allowed_hosts: Annotated[list[str], NoDecode] = LOOPBACK_HOSTS
    # When set, every API request needs `Authorization: Bearer <key>`: for serving beyond loopback.
    api_key: SecretStr | None = None
    # How often to look for a newer build published by `python -m ingest`, in seconds.
    reload_interval: float = 1.0
    max_body_bytes: int = 64 * 1024
    # Generative answers through an OpenAI-compatible endpoint; extractive when unset.
    llm_base_url: str | None = None
    llm_model: str | None = None
    llm_api_key: str | None = None
    # The whole model call, connection to last token, in seconds.
    llm_timeout: float = 30.0
    llm_max_tokens: int = 512
    # Model calls at once; one more is answered 503 with Retry-After instead of queueing.
    llm_concurrency: int = 4
    # GET /metrics: "auto" serves it on a loopback bind, or anywhere once NOTES_API_KEY is set.
    metrics: Literal["auto", "on", "off"] = "auto"
    # Where 👍/👎 from the page and POST /feedback are appended; default <index_dir>/feedback.jsonl.
    feedback_file: Path | None = None

    @property
    def feedback_path(self) -> Path:
        return self.feedback_file or self.index_dir / "feedback.jsonl"

    @property
    def loopback(self) -> bool:
        """Is the service bound to this machine only?"""
        return self.host in ("127.0.0.1", "localhost", "::1", "[::1]")

    @property
    def metrics_served(self) -> bool:
        """Metrics tell request counts and the index's size: not for anyone who can reach a public port."""
        if self.metrics != "auto":
            return self.metrics == "on"
        return self.api_key is not None or self.loopback

    @field_validator("allowed_hosts", mode="before")
    @classmethod
    def _split_hosts(cls, value: object) -> object:
        hosts = value.split(",") if isinstance(value, str) else value
        if not isinstance(hosts, list):
            return hosts
        # The Host header writes an IPv6 address in brackets: "[::1]:8000".
        return [f"[{h}]" if ":" in h and not h.startswith("[") else h for h in (str(h).strip() for h in hosts) if h]

    @field_validator("api_key", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return None if value == "" else value

