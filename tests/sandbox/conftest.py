"""Fixtures for the sandbox upstream tests: an in-process client and a chat poster."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient
from sandbox_helpers import AUTH

from beatra.sandbox import common
from beatra.sandbox.app import create_sandbox_app


@pytest.fixture
def sbx() -> FlaskClient:
    return create_sandbox_app().test_client()


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Record requested sleeps instead of sleeping (delay/chunk_delay directives)."""
    calls: list[float] = []
    monkeypatch.setattr(common.time, "sleep", calls.append)
    return calls


@pytest.fixture
def chat(sbx: FlaskClient) -> Callable[..., Any]:
    """POST a chat completion: ``chat(body, prefix="openai")`` returns the response."""

    def post(body: dict[str, Any], prefix: str = "openai",
             headers: dict[str, str] | None = None) -> Any:
        return sbx.post(f"/{prefix}/v1/chat/completions", json=body,
                        headers=AUTH if headers is None else headers)

    return post
