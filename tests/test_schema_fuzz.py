"""Property-based requests generated from /openapi.json: whatever a client sends, never a 5xx."""
import schemathesis
from schemathesis import GenerationMode
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable

from app.main import create_app
from tests.conftest import make_engine


def test_no_generated_request_makes_the_server_fail(built, embedder) -> None:
    engine = make_engine(built.index_dir, embedder)
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(engine.settings, engine))
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.path for op in operations} >= {"/ask", "/search", "/posts/{post_id}", "/healthz"}
    for operation, mode in [(op, mode) for op in operations for mode in GenerationMode]:

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def check(case) -> None:
            response = case.call()
            assert response.status_code < 500, (case.path, case.body, case.query, response.text)
            if response.status_code >= 400:
                assert set(response.json()["error"]) == {"code", "message"}

        try:
            check()
        except Unsatisfiable:
            # No invalid request exists for an operation without constraints (GET /healthz).
            assert mode is GenerationMode.NEGATIVE and operation.path in {"/healthz", "/posts/{post_id}"}
