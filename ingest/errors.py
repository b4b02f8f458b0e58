"""The project's one error tree; each message says what to do next."""


class NotesError(Exception):
    """Root of every error this project raises on purpose."""


class BadPost(NotesError):
    """A corpus file that cannot be read as a post; it is skipped and reported."""


class EmptyCorpus(NotesError):
    """No readable post in the corpus folder."""


class IndexNotReady(NotesError):
    """No built index to serve yet."""


class IndexMismatch(NotesError):
    """An index written by another embedder or format version."""


class IndexCorrupt(NotesError):
    """An index build whose files do not agree with its manifest."""


class IngestBusy(NotesError):
    """Another ingest holds the index lock."""


class SkippedPosts(NotesError):
    """Files were skipped and --strict was given."""


class BadEmbedder(NotesError):
    """An embedder spec that cannot be loaded."""
