"""Extension singletons, bound to the app in create_app."""

from __future__ import annotations

from typing import Any, cast

from flask_migrate import Migrate
from flask_smorest import Api
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import CursorResult, Result
from sqlalchemy.orm import DeclarativeBase

from beatra.api.docs import HeaderParametersPlugin


class Base(DeclarativeBase):
    pass


db = SQLAlchemy(model_class=Base)
migrate = Migrate()
rest_api = Api(spec_kwargs={"extra_plugins": [HeaderParametersPlugin()]})


def rowcount(result: Result[Any]) -> int:
    """Rows an UPDATE/DELETE matched. Session.execute is typed as returning a plain Result;
    for those statements it is a CursorResult, which has the count."""
    return cast(CursorResult[Any], result).rowcount
