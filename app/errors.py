"""Errors of the service; they join the project's one tree under NotesError."""
from ingest.errors import NotesError


class UnsupportedMediaType(NotesError):
    """A request body that is not declared as application/json."""


class Unauthorized(NotesError):
    """NOTES_API_KEY is set and the request did not carry it."""


class PostNotFound(NotesError):
    """No post with that id in the served index."""


class ModelBusy(NotesError):
    """Every model slot is taken; the client should try again shortly."""


class NotRunning(NotesError):
    """A part of the service that exists only while the server runs (the MCP transport) was asked outside it."""
