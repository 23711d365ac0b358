"""The indexes behind the admin's search (conversations/search.py, conversations/admin.py).

PostgreSQL: a GIN index over the expression ``to_tsvector('english', content)``, and a
trigram index (pg_trgm, a trusted extension) over ``upper(title)``, the expression
Django's ``icontains`` compares, so a title search reads an index instead of every
session. Both built CONCURRENTLY so that messages can still be written while they are
built on large tables (hence a non-atomic migration, and no statement timeout for it);
reversing drops the indexes and leaves the extension, which others may use.
SQLite: an external-content FTS5 table (the text lives only in the messages table),
filled from the existing rows and kept in step by triggers on insert, update and delete.
"""

from django.db import migrations

MESSAGES = "conversations_message"
SESSIONS = "conversations_session"
FTS = "conversations_message_fts"


class RunSQLOn(migrations.RunSQL):
    """``RunSQL`` on one database vendor; a no-op on the others."""

    def __init__(self, vendor, sql, reverse_sql):
        super().__init__(sql, reverse_sql)
        self.vendor = vendor

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == self.vendor:
            super().database_forwards(app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == self.vendor:
            super().database_backwards(app_label, schema_editor, from_state, to_state)


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY cannot run in a transaction

    dependencies = [
        ("conversations", "0005_insight"),
    ]

    operations = [
        RunSQLOn(
            "postgresql",
            [
                "SET statement_timeout = 0",
                f"CREATE INDEX CONCURRENTLY IF NOT EXISTS message_content_search_idx ON {MESSAGES} "
                "USING gin (to_tsvector('english'::regconfig, content))",
                "CREATE EXTENSION IF NOT EXISTS pg_trgm",
                f"CREATE INDEX CONCURRENTLY IF NOT EXISTS session_title_search_idx ON {SESSIONS} "
                "USING gin (upper(title::text) gin_trgm_ops)",
                "RESET statement_timeout",
            ],
            [
                "DROP INDEX CONCURRENTLY IF EXISTS session_title_search_idx",
                "DROP INDEX CONCURRENTLY IF EXISTS message_content_search_idx",
            ],
        ),
        RunSQLOn(
            "sqlite",
            [
                f"CREATE VIRTUAL TABLE {FTS} USING fts5("
                f"content, content='{MESSAGES}', content_rowid='id', tokenize='porter unicode61')",
                f"INSERT INTO {FTS}({FTS}) VALUES ('rebuild')",
                f"CREATE TRIGGER {FTS}_insert AFTER INSERT ON {MESSAGES} BEGIN "
                f"INSERT INTO {FTS}(rowid, content) VALUES (new.id, new.content); END",
                f"CREATE TRIGGER {FTS}_delete AFTER DELETE ON {MESSAGES} BEGIN "
                f"INSERT INTO {FTS}({FTS}, rowid, content) VALUES ('delete', old.id, old.content); END",
                f"CREATE TRIGGER {FTS}_update AFTER UPDATE OF content ON {MESSAGES} BEGIN "
                f"INSERT INTO {FTS}({FTS}, rowid, content) VALUES ('delete', old.id, old.content); "
                f"INSERT INTO {FTS}(rowid, content) VALUES (new.id, new.content); END",
            ],
            [
                f"DROP TRIGGER IF EXISTS {FTS}_update",
                f"DROP TRIGGER IF EXISTS {FTS}_delete",
                f"DROP TRIGGER IF EXISTS {FTS}_insert",
                f"DROP TABLE IF EXISTS {FTS}",
            ],
        ),
    ]
