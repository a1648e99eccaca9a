"""Extension singletons, bound to the app in create_app."""

from __future__ import annotations

from flask_migrate import Migrate
from flask_smorest import Api
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import DeclarativeBase

from beatra.api.docs import HeaderParametersPlugin


class Base(DeclarativeBase):
    pass


db = SQLAlchemy(model_class=Base)
migrate = Migrate()
rest_api = Api(spec_kwargs={"extra_plugins": [HeaderParametersPlugin()]})
