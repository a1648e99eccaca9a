"""Extension singletons, bound to the app in create_app."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

import flask_smorest
from apispec import APISpec
from flask import Flask
from flask_migrate import Migrate
from flask_smorest import Blueprint
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


class Api(flask_smorest.Api):
    """flask-smorest's Api, building the OpenAPI document once per process.

    The document depends on the code only (blueprints, schemas, the constant API_* settings),
    and the one module-level Api serves whichever spec it holds to every app anyway. Building
    it is most of create_app's time, and tests build hundreds of apps: later apps register
    their blueprints with Flask only and serve the document the first app built.
    """

    document: APISpec | None = None  # set by document_built()

    def init_app(self, app: Flask, *, spec_kwargs: dict[str, Any] | None = None) -> None:
        super().init_app(app, spec_kwargs=spec_kwargs)
        if self.document is not None:
            self.spec = self.document

    def register_blueprint(self, blp: Blueprint, *, parameters: Any = None,
                           **options: Any) -> None:
        if self.document is None:
            super().register_blueprint(blp, parameters=parameters, **options)
            return
        # What flask-smorest's register_blueprint does besides documenting the views.
        name = options.get("name", blp.name)
        self._app.extensions["flask-smorest"]["blp_name_to_api"][name] = self
        self._app.register_blueprint(blp, **options)

    def document_built(self) -> None:
        """Every blueprint is registered: keep this spec for the apps built after this one."""
        self.document = self.spec


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
