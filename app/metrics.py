"""Prometheus metrics: requests, answers and the served index -> one registry per app, in the text format.

Labels stay few: a route is its template (`/posts/{post_id}`, never the id asked for), a stage, an
outcome or a fallback reason. No question, answer or note text ever becomes a label.
"""
from __future__ import annotations

import time
from typing import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.answer import Answer
from app.engine import Engine

STAGES = ("segment", "embed", "search", "fuse", "answer", "llm")
# Seconds: a cached question takes about a millisecond, a generative answer can take the LLM timeout.
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
# Requests that matched no route share one label, whatever their path.
UNMATCHED = "(unmatched)"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class IndexCollector(Collector):
    """What the engine serves, read at scrape time: the build, its size, and builds that failed to load."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def collect(self) -> Iterator[Metric]:
        index = self.engine.served
        info = GaugeMetricFamily("notes_index_info", "The served index build (value 1).", labels=["version", "embedder"])
        posts = GaugeMetricFamily("notes_index_posts", "Posts in the served index.")
        chunks = GaugeMetricFamily("notes_index_chunks", "Chunks in the served index.")
        if index is not None:
            info.add_metric([index.version, index.embedder], 1)
            posts.add_metric([], len(index.posts))
            chunks.add_metric([], len(index.chunks))
        yield from (info, posts, chunks)
        errors = CounterMetricFamily("notes_reload_errors", "Published builds that could not be loaded since start-up.")
        errors.add_metric([], self.engine.reload_failures)
        yield errors


class Metrics:
    def __init__(self, engine: Engine) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("notes_http_requests", "HTTP requests by route template, method and status.",
                                ["route", "method", "status"], registry=r)
        self.latency = Histogram("notes_http_request_duration_seconds", "Time to the last byte of a response, by route.",
                                 ["route"], buckets=BUCKETS, registry=r)
        self.stages = Histogram("notes_stage_duration_seconds", "Time spent in each stage of answering.",
                                ["stage"], buckets=BUCKETS, registry=r)
        self.answers = Counter("notes_answers", "Answers by outcome: found, or abstained (the notes don't cover it).",
                               ["outcome"], registry=r)
        self.fallbacks = Counter("notes_llm_fallbacks", "Generative answers replaced by the extractive one, by reason.",
                                 ["reason"], registry=r)
        r.register(IndexCollector(engine))

    def answered(self, a: Answer) -> None:
        for stage, ms in a.timings_ms.items():
            if stage in STAGES:
                self.stages.labels(stage).observe(ms / 1000)
        self.answers.labels("found" if a.found else "abstained").inc()
        if a.fallback:
            self.fallbacks.labels(a.fallback).inc()

    def text(self) -> bytes:
        return generate_latest(self.registry)


def route_template(handled: Scope, arrived: Scope) -> str:
    """The path pattern of the route that handled this request (FastAPI leaves it in the scope), else of the
    first route or mount that matches the request as it arrived (a mount rewrites the scope's paths); a request
    refused before routing (a foreign Host) is unmatched. Never the raw path: that would be a label per post id."""
    route = handled.get("route")
    if route is not None and hasattr(route, "path"):
        return route.path
    for route in getattr(handled.get("app"), "routes", ()):
        path = getattr(route, "path", None)  # FastAPI's included routers have none; their routes set "route"
        if isinstance(path, str) and route.matches(arrived)[0] == Match.FULL:
            return path
    return UNMATCHED


class RequestMetrics:
    """Counts every HTTP request and times it to the end of its response, streams included."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        arrived = dict(scope)
        status = 500  # unless a response starts

        async def observed(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, observed)
        finally:
            route = route_template(scope, arrived)
            method = scope["method"] if scope["method"] in METHODS else "other"
            self.metrics.requests.labels(route, method, str(status)).inc()
            self.metrics.latency.labels(route).observe(time.perf_counter() - started)
