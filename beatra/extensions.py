"""Extension singletons, bound to the app in create_app."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from flask_migrate import Migrate
from flask_smorest import Api
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import CursorResult, Result, Table
from sqlalchemy.orm import DeclarativeBase

from beatra.api.docs import HeaderParametersPlugin


class Base(DeclarativeBase):
    pass


db = SQLAlchemy(model_class=Base)
# The base class of every table. At runtime db.Model (a subclass of Base bound to `db`); mypy
# cannot use an attribute as a base class, so it checks the models against Base.
if TYPE_CHECKING:
    Model = Base
else:
    Model = db.Model
migrate = Migrate()
rest_api = Api(spec_kwargs={"extra_plugins": [HeaderParametersPlugin()]})


def table_of(model: type[Base]) -> Table:
    """A model's Table, for Core statements (the declarative base types it as a FromClause)."""
    table = model.__table__
    assert isinstance(table, Table)
    return table


def rowcount(result: Result[Any]) -> int:
    """Rows an UPDATE/DELETE matched. Session.execute is typed as returning a plain Result;
    for those statements it is a CursorResult, which has the count."""
    return cast(CursorResult[Any], result).rowcount
