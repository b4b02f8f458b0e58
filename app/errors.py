"""Errors of the service; they join the project's one tree under NotesError."""
from ingest.errors import NotesError


class BadRequest(NotesError):
    """The client sent something the contract does not accept."""


class PayloadTooLarge(NotesError):
    """The request body is over the size limit."""


class PostNotFound(NotesError):
    """No post with that id in the served index."""
