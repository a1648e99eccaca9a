"""Fixtures shared by the unit tests.

`app`: a module picks its app's settings with `APP_SETTINGS = {...}` (create_app overrides), a
test with `@pytest.mark.parametrize("app", [{...}], indirect=True)`; without either the app has
the suite's defaults, as in tests/conftest.py.
`upstream`: every outgoing HTTP call is answered by `responses` (unmatched ones fail).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import responses
from flask import Flask


@pytest.fixture
def app(make_app: Callable[..., Flask], request: pytest.FixtureRequest) -> Flask:
    settings: dict[str, Any] = getattr(request, "param", None) or getattr(
        request.module, "APP_SETTINGS", {})
    return make_app(**settings)


@pytest.fixture
def upstream() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock
