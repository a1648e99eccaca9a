"""The migrations build exactly the schema the models describe (on SQLite, and on Postgres
when the suite runs there), so a model change without its migration fails here."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from beatra.extensions import db


def test_migrated_schema_matches_the_models(app):
    with app.app_context(), db.engine.connect() as conn:  # migrated to head by the suite
        differences = compare_metadata(MigrationContext.configure(conn), db.metadata)
    assert differences == []
