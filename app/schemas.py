"""Request and response models of the HTTP contract."""
from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from app.filters import Filters

_ISO_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")
# Control characters (C0 but tab and newline, DEL, C1): never part of a question.
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def trimmed(value: object) -> object:
    """A question or a query without control characters or surrounding blanks: "\\x00\\x01 " is empty, so
    /ask and /search refuse it alike (422), instead of searching for nothing."""
    return _CONTROL_RE.sub("", value).strip() if isinstance(value, str) else value


QuestionText = Annotated[str, BeforeValidator(trimmed), Field(min_length=1, max_length=2000)]


def iso_date(value: object) -> object:
    """Only YYYY-MM-DD: pydantic alone would also take a Unix time such as 1700000000 for a date."""
    if isinstance(value, dt.date):
        return value
    if not isinstance(value, str) or not _ISO_DATE_RE.fullmatch(value):
        raise ValueError("a date must be written YYYY-MM-DD")
    return dt.date.fromisoformat(value)  # a 13th month is a ValueError, which pydantic reports


IsoDate = Annotated[dt.date, BeforeValidator(iso_date)]
Tag = Annotated[str, Field(min_length=1, max_length=100)]


class FiltersIn(BaseModel):
    """Only posts with any of `tags` (case-insensitive) and dated from `since` to `until`, both included."""

    model_config = ConfigDict(extra="forbid", strict=True)

    tags: list[Tag] = Field(default_factory=list, max_length=50)
    since: IsoDate | None = None
    until: IsoDate | None = None

    @model_validator(mode="after")
    def _ordered(self) -> FiltersIn:
        if self.since and self.until and self.since > self.until:
            raise ValueError(f"since ({self.since}) is after until ({self.until})")
        return self

    def filters(self) -> Filters:
        return Filters(tuple(self.tags), self.since, self.until)


class Turn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    role: Literal["user", "assistant"]
    content: str = Field(max_length=4000)


class AskRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    question: QuestionText = Field(description="1..2000 characters after trimming")
    top_k: int = Field(5, ge=1, le=20, description="passages to draw the answer from")
    history: list[Turn] = Field(
        default_factory=list, max_length=10, description="earlier turns, oldest first, for follow-up questions"
    )
    filters: FiltersIn | None = Field(None, description="answer only from the posts that pass these")

    def post_filters(self) -> Filters:
        return self.filters.filters() if self.filters else Filters()


class Citation(BaseModel):
    n: int
    post_id: str
    title: str
    url: str | None
    snippet: str
    score: float
    date: str | None = None


class AskResponse(BaseModel):
    answer: str
    found: bool
    citations: list[Citation]
    mode: Literal["extractive", "llm"]
    timings_ms: dict[str, float]
    warning: str | None = Field(None, description="set when a generative answer fell back to extractive")


class SearchResult(BaseModel):
    post_id: str
    chunk_id: str
    title: str
    text: str
    score: float


class SearchResponse(BaseModel):
    query: str
    results: list[SearchResult]


class RelatedPost(BaseModel):
    post_id: str
    title: str
    opening: str = Field(description="the note's first heading, or its first words: sections of one chapter share a title")
    date: str | None
    score: float


class RelatedResponse(BaseModel):
    post_id: str
    related: list[RelatedPost]


class PostResponse(BaseModel):
    post_id: str
    title: str
    date: str | None
    tags: list[str]
    url: str | None
    text: str


class Health(BaseModel):
    status: str
    index_version: str
    posts: int
    chunks: int
    embedder: str
    mode: Literal["extractive", "llm"] = "extractive"
    last_reload_error: str | None = Field(
        None, description="why the build named in indexes/CURRENT is not served, until one loads again"
    )


class FeedbackCitation(BaseModel):
    """A citation as /ask returned it; what feedback does not keep (url, snippet, score, date) is ignored, so
    that a client can send the citations back exactly as it got them."""

    model_config = ConfigDict(extra="ignore", strict=True)

    n: int = Field(ge=1, le=20)
    post_id: str = Field(min_length=1, max_length=200)
    title: str = Field("", max_length=1000)


class FeedbackRequest(BaseModel):
    """A verdict on one answer, as /ask gave it. 👎 may say why: citation `citation` was wrong
    (`wrong_citation`), the notes don't cover the question (`not_covered`), or they do (`covered`)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    question: QuestionText
    answer: str = Field(max_length=20_000)
    citations: list[FeedbackCitation] = Field(default_factory=list, max_length=20)
    verdict: Literal["up", "down"]
    reason: Literal["wrong_citation", "not_covered", "covered"] | None = None
    citation: int | None = Field(None, description="with reason wrong_citation: the `n` of the wrong citation")
    comment: str | None = Field(None, max_length=2000)

    @model_validator(mode="after")
    def _consistent(self) -> FeedbackRequest:
        if self.reason and self.verdict != "down":
            raise ValueError("a reason goes with verdict 'down' only")
        if (self.reason == "wrong_citation") != (self.citation is not None):
            raise ValueError("reason 'wrong_citation' and `citation` go together")
        if self.citation is not None and self.citation not in {c.n for c in self.citations}:
            raise ValueError(f"citation {self.citation} is not among the answer's citations")
        return self


class FeedbackResponse(BaseModel):
    id: str


class ErrorBody(BaseModel):
    code: str
    message: str


class ErrorResponse(BaseModel):
    error: ErrorBody


# Error statuses the API routes may answer, all with ErrorResponse; for OpenAPI.
ERROR_RESPONSES: dict[int | str, dict] = {s: {"model": ErrorResponse} for s in (400, 401, 404, 413, 415, 422, 503)}
