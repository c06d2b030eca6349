"""Least privilege in the store (migration 0006): what the application role must never do.

Every attack here is made as the application role, the one ``lineage serve`` and the CLI
connect as, on a store holding rows in every append-only table; each must fail and leave the
rows where they were.  Deletion goes through ``lineage_erase`` and nowhere else, and records
who and why.  The reader role reads and writes nothing.
"""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path

import psycopg
import pytest

from lineage.auth import grants
from lineage.contracts import governance, registry
from lineage.contracts.document import load_contract
from lineage.events import parse_event
from example_pipeline.sample import ml_pipeline_sample
from lineage.store import decisions, tags
from lineage.store.ingest import ingest_events
from tests_support import principal

CONTRACTS = Path(__file__).resolve().parents[2] / "contracts"

# Every append-only table, with a column to forge in an UPDATE.
APPEND_ONLY = {
    "raw_events": "producer",
    "contract_documents": "registered_by",
    "contract_dataset_links": "name",
    "contract_versions": "status",
    "gate_decisions": "allowed",
    "erasures": "reason",
    "namespace_owners": "owner",
    "namespace_owner_revocations": "reason",
    "principal_ties": "organisation",
    "principal_tie_revocations": "reason",
    "role_grants": "role",
    "tag_definitions": "description",
    "tag_changes": "action",
    "node_deletions": "recorded_by",
}


@pytest.fixture
def filled(db, role_urls):
    """The store with rows in every append-only table (one erasure included)."""
    with db.connection() as conn:
        ingest_events(conn, [parse_event(e) for e in ml_pipeline_sample()])
        registry.register(conn, load_contract(CONTRACTS / "acme-stock-photos.yaml"), principal("data-requests@example.com", "requester"))
        admin = principal("it-admin@example.com", "admin")
        owner = governance.add_owner(conn, admin, "ml-pipeline", "ml-lead@example.com")
        governance.revoke_owner(conn, admin, owner.id, "moved team")
        tie = governance.add_tie(conn, admin, "dpo@example.com", "LoveMatch Inc.", "investment")
        governance.revoke_tie(conn, admin, tie.id, "shares sold")
        grants.grant(conn, "dpo@example.com", "steward", actor="it-admin@example.com", reason="appointed")
        tags.define_tag(conn, "PII", "personal data", "dpo@example.com")
        tags.change_tag(conn, "dataset", "curated", "training.face_photos_v1", None, "PII", "add", "dpo@example.com")
        tags.delete_node(conn, "job", "ml-pipeline", "train_model.train", "dpo@example.com")
        decisions.insert(conn, {
            "decision_id": str(uuid.uuid4()), "job_namespace": "ns", "job_name": "train", "purpose": "train_ai_system",
            "allowed": False, "inputs": {}, "reasons": [], "contracts": {}, "validations": [], "facets": {},
            "decided_at": dt.datetime.now(dt.timezone.utc),
        })
        first = conn.execute("SELECT min(id) FROM raw_events").fetchone()[0]
        conn.execute("SELECT lineage_erase(ARRAY[%s::bigint], 'dpo@example.com', 'subject request 1')", (first,))
    return _counts(role_urls["owner"])


def _counts(url: str) -> dict[str, int]:
    with psycopg.connect(url) as conn:
        return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in APPEND_ONLY}


def _attacks(table: str, column: str) -> list[list[str]]:
    """Each attack is a list of statements run in one transaction."""
    return [
        [f"DELETE FROM {table}"],
        [f"UPDATE {table} SET {column} = {column}"],
        [f"TRUNCATE {table}"],
        [f"TRUNCATE {table} CASCADE"],
        [f"ALTER TABLE {table} DISABLE TRIGGER ALL", f"DELETE FROM {table}"],
        [f"ALTER TABLE {table} DISABLE TRIGGER USER"],
        ["SET session_replication_role = replica", f"DELETE FROM {table}"],
        ["SET lineage.erasure = 'on'", f"DELETE FROM {table}"],
        ["SET LOCAL lineage.erasure = 'on'", f"DELETE FROM {table}"],
        [f"DROP TABLE {table} CASCADE"],
        [f"ALTER TABLE {table} RENAME TO {table}_old"],
        [f"CREATE TRIGGER sneak BEFORE DELETE ON {table} FOR EACH ROW EXECUTE FUNCTION lineage_append_only()"],
        [f"GRANT DELETE ON {table} TO CURRENT_USER", f"DELETE FROM {table}"],  # GRANT only warns
        ["SET ROLE lineage_owner", f"DELETE FROM {table}"],
        ["SET SESSION AUTHORIZATION lineage_owner", f"DELETE FROM {table}"],
        # The trigger reads `erasures`; a temporary table of that name comes first on the
        # search_path of the caller, but not of the trigger.
        ["CREATE TEMP TABLE erasures (xact xid8)", "INSERT INTO erasures VALUES (pg_current_xact_id())",
         f"DELETE FROM public.{table}"],
    ]


CASES = [(t, i) for t, c in APPEND_ONLY.items() for i in range(len(_attacks(t, c)))]


@pytest.mark.parametrize("table,attack", CASES, ids=[f"{t}-{i}" for t, i in CASES])
def test_the_application_role_cannot_rewrite_an_append_only_table(filled, role_urls, table, attack):
    statements = _attacks(table, APPEND_ONLY[table])[attack]
    with psycopg.connect(role_urls["app"]) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            for statement in statements:
                conn.execute(statement)
    assert _counts(role_urls["owner"]) == filled


@pytest.mark.parametrize("statement", [
    "CREATE TABLE forged (id int)",
    "CREATE SCHEMA forged",
    "CREATE VIEW forged AS SELECT 1",
    "CREATE FUNCTION public.forged() RETURNS int LANGUAGE sql AS 'SELECT 1'",
    "DROP TABLE jobs CASCADE",
    "ALTER TABLE jobs ADD COLUMN forged text",
    "TRUNCATE jobs",
    "DROP FUNCTION lineage_erase(bigint[], text, text)",
    "CREATE OR REPLACE FUNCTION lineage_erasing(rel oid) RETURNS boolean LANGUAGE sql AS 'SELECT true'",
    "SELECT lineage_make_append_only('jobs')",
    "INSERT INTO erasures (requested_by, reason, what) VALUES ('dpo@example.com', 'forged', '{}')",
    "UPDATE alembic_version SET version_num = '0001'",
    "SET session_replication_role = replica",
    "ALTER ROLE CURRENT_USER SUPERUSER",
    "ALTER ROLE CURRENT_USER BYPASSRLS",
    "ALTER SCHEMA public OWNER TO lineage_app",
])
def test_the_application_role_has_no_ddl_and_no_trigger_control(filled, role_urls, statement):
    with psycopg.connect(role_urls["app"]) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(statement)
        conn.rollback()
        su, owner = conn.execute(
            "SELECT rolsuper, pg_has_role(current_user, 'lineage_owner', 'MEMBER') FROM pg_roles WHERE rolname = current_user"
        ).fetchone()
    assert (su, owner) == (False, False)
    assert _counts(role_urls["owner"]) == filled


def test_even_the_owner_cannot_delete_outside_an_erasure(filled, role_urls):
    """The trigger asks for a recorded erasure in the same transaction, whoever deletes."""
    with psycopg.connect(role_urls["owner"]) as conn:
        for statements in (["DELETE FROM raw_events"], ["UPDATE contract_versions SET status = 'approved'"],
                           ["SET lineage.erasure = 'on'", "DELETE FROM contract_versions"], ["TRUNCATE gate_decisions"]):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                for statement in statements:
                    conn.execute(statement)
            conn.rollback()
    assert _counts(role_urls["owner"]) == filled


def test_erasure_goes_through_lineage_erase_and_records_who_and_why(filled, db, role_urls):
    with db.connection() as conn:
        ids = [r[0] for r in conn.execute("SELECT id FROM raw_events ORDER BY id LIMIT 3")]
        linked = conn.execute("SELECT count(*) FROM dataset_versions WHERE raw_event_id = ANY(%s)", (ids,)).fetchone()[0]
        erasure = conn.execute(
            "SELECT lineage_erase(%s, 'dpo@example.com', 'erasure request #42')", (ids + [10**12],)
        ).fetchone()[0]
    with db.connection() as conn:
        assert conn.execute("SELECT count(*) FROM raw_events WHERE id = ANY(%s)", (ids,)).fetchone()[0] == 0
        assert conn.execute("SELECT count(*) FROM dataset_versions WHERE raw_event_id = ANY(%s)", (ids,)).fetchone()[0] == 0
        row = conn.execute("SELECT requested_by, reason, what, db_role, at FROM erasures WHERE id = %s", (erasure,)).fetchone()
    assert row[:4] == ("dpo@example.com", "erasure request #42", {"raw_events": ids, "dataset_versions": linked}, "lineage_app")
    assert row[4] is not None
    after = _counts(role_urls["owner"])
    assert after["raw_events"] == filled["raw_events"] - 3 and after["erasures"] == filled["erasures"] + 1
    assert {t: n for t, n in after.items() if t not in ("raw_events", "erasures")} == {
        t: n for t, n in filled.items() if t not in ("raw_events", "erasures")}


@pytest.mark.parametrize("who,why", [("", "reason"), ("dpo@example.com", "  "), (None, "reason"), ("dpo@example.com", None)])
def test_an_erasure_without_who_or_why_is_refused_and_deletes_nothing(filled, role_urls, who, why):
    with psycopg.connect(role_urls["app"]) as conn:
        with pytest.raises(psycopg.errors.InvalidParameterValue):
            conn.execute("SELECT lineage_erase(array(SELECT id FROM raw_events), %s, %s)", (who, why))
    assert _counts(role_urls["owner"]) == filled


def test_the_reader_reads_and_writes_nothing(filled, role_urls):
    with psycopg.connect(role_urls["reader"]) as conn:
        for table in (*APPEND_ONLY, "jobs", "datasets", "job_io", "run_states"):
            conn.execute(f"SELECT count(*) FROM {table}").fetchone()
        for statement in (
            "INSERT INTO gate_decisions (decision_id, job_namespace, job_name, purpose, allowed, inputs, reasons, contracts,"
            " validations, facets, decided_at) VALUES (gen_random_uuid(), 'n', 'j', 'p', true, '{}', '[]', '{}', '[]', '{}', now())",
            "INSERT INTO namespaces (name, created_at) VALUES ('forged', now())",
            "UPDATE jobs SET description = 'forged'",
            "DELETE FROM jobs",
            "SELECT lineage_erase(array(SELECT id FROM raw_events), 'reader', 'why not')",
            "SELECT lineage_clear_derived()",
            "SELECT nextval('raw_events_id_seq')",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)
            conn.rollback()
    assert _counts(role_urls["owner"]) == filled


def test_tables_a_later_migration_adds_get_the_grants(role_urls):
    """Default privileges cover a table the owner creates later; lineage_make_append_only
    turns one append-only for everyone."""
    with psycopg.connect(role_urls["owner"]) as conn:
        conn.execute("CREATE TABLE later_derived (id bigserial PRIMARY KEY, v text)")
        conn.execute("CREATE TABLE later_log (id bigserial PRIMARY KEY, v text)")
        conn.execute("SELECT lineage_make_append_only('later_log')")
    with psycopg.connect(role_urls["app"]) as conn:
        for table in ("later_derived", "later_log"):
            conn.execute(f"INSERT INTO {table} (v) VALUES ('a')")
        conn.execute("UPDATE later_derived SET v = 'b'")
        conn.execute("DELETE FROM later_derived")
        conn.commit()
        for statement in ("UPDATE later_log SET v = 'b'", "DELETE FROM later_log", "TRUNCATE later_log"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)
            conn.rollback()
    with psycopg.connect(role_urls["owner"]) as conn:  # the trigger holds for the owner too
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("DELETE FROM later_log")
    with psycopg.connect(role_urls["reader"]) as conn:
        assert conn.execute("SELECT v FROM later_log").fetchall() == [("a",)]
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("INSERT INTO later_derived (v) VALUES ('r')")


@pytest.fixture
def embedded_home():
    """A home for a second embedded server, outside pytest's tmp dirs (their root-only parent
    keeps the server's own system user out, so it could not be stopped cleanly); the server is
    stopped and the directory removed when the test ends."""
    import shutil
    import tempfile

    from lineage.store import embedded

    home = Path(tempfile.mkdtemp(prefix="lineage-first-start-")) / "home"
    yield home
    server = embedded._servers.pop((home / "pg").resolve(), None)
    if server is not None:
        server.cleanup()
    shutil.rmtree(home.parent, ignore_errors=True)


def test_the_embedded_first_start_creates_the_roles_and_hands_out_the_application_role(embedded_home):
    """No LINEAGE_DATABASE_URL: the superuser only bootstraps; the store is owned by the owner
    role, migrated as it, and everything else connects as the application role."""
    from lineage.config import Settings
    from lineage.store import open_database
    from lineage.store.db import resolve_migration_url, resolve_url

    settings = Settings(home=embedded_home, database_url=None, migration_database_url=None)
    for _ in range(2):  # a second start finds everything in place
        with open_database(settings, migrate=True) as db, db.connection() as conn:
            who = conn.execute(
                "SELECT current_user, current_database(), pg_get_userbyid(d.datdba), r.rolsuper"
                " FROM pg_database d, pg_roles r WHERE d.datname = current_database() AND r.rolname = current_user"
            ).fetchone()
            owners = {r[0] for r in conn.execute(
                "SELECT DISTINCT pg_get_userbyid(relowner) FROM pg_class WHERE relnamespace = 'public'::regnamespace")}
            conn.execute("CREATE TEMP TABLE staging_check (x int)")  # ingest's staging tables need this
        assert who == ("lineage_app", "lineage", "lineage_owner", False)
        assert owners == {"lineage_owner"}
    assert "lineage_owner@" in resolve_migration_url(settings) and "lineage_app@" in resolve_url(settings)
    reader = resolve_url(settings).replace("lineage_app@", "lineage_reader@")
    with psycopg.connect(reader) as conn:
        assert conn.execute("SELECT count(*) FROM raw_events").fetchone()[0] == 0
        with pytest.raises(psycopg.errors.InsufficientPrivilege):  # nothing for PUBLIC on the database
            conn.execute("CREATE TEMP TABLE forged (x int)")


def test_without_an_owner_url_nothing_migrates_and_a_stale_store_is_refused(tmp_path, role_urls):
    from lineage.config import Settings
    from lineage.errors import ConfigError
    from lineage.store import open_database

    settings = Settings(home=tmp_path / "home", database_url=role_urls["app"], migration_database_url=None)
    with open_database(settings, migrate=True) as db, db.connection() as conn:  # at head: fine
        assert conn.execute("SELECT current_user").fetchone()[0] == "lineage_app"
    with psycopg.connect(role_urls["owner"]) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '0003'")
    with pytest.raises(ConfigError) as info:
        open_database(settings, migrate=True)
    assert "revision 0003" in info.value.message and "lineage db upgrade" in info.value.message
    with psycopg.connect(role_urls["owner"]) as conn:  # and the application did not migrate it
        assert conn.execute("SELECT version_num FROM alembic_version").fetchone()[0] == "0003"


@pytest.mark.parametrize(
    "forgery",
    [
        "UPDATE api_tokens SET roles = ARRAY['steward','admin'] WHERE name = 'airflow'",
        "UPDATE api_tokens SET principal = 'dpo@example.com' WHERE name = 'airflow'",
        "UPDATE api_tokens SET expires_at = NULL WHERE name = 'airflow'",
        "UPDATE api_tokens SET revoked_at = NULL, revoked_by = NULL WHERE name = 'gone'",
        "UPDATE api_tokens SET revoked_at = now(), revoked_by = 'x', roles = ARRAY['admin'] WHERE name = 'airflow'",
        "DELETE FROM api_tokens WHERE name = 'gone'",
        "TRUNCATE api_tokens",
    ],
)
def test_the_application_role_can_only_revoke_a_token(db, forgery):
    """The server's one change to a token is revoking it; un-revoking, new roles, another
    principal or deleting the row (its history) are refused as the application role."""
    from lineage.auth import tokens as api_tokens

    with db.connection() as conn:
        api_tokens.create(conn, name="airflow", principal="airflow", roles=["emitter"], created_by="tests")
        api_tokens.create(conn, name="gone", principal="old", roles=["viewer"], created_by="tests")
        api_tokens.revoke(conn, "gone", "it-admin@example.com")
        before = conn.execute("SELECT to_jsonb(t) FROM api_tokens t ORDER BY name").fetchall()
    with db.connection() as conn:
        with pytest.raises(psycopg.Error):
            conn.execute(forgery)
    with db.connection() as conn:
        assert conn.execute("SELECT to_jsonb(t) FROM api_tokens t ORDER BY name").fetchall() == before
        api_tokens.revoke(conn, "airflow", "it-admin@example.com")  # the legitimate change still works
        assert conn.execute("SELECT revoked_by FROM api_tokens WHERE name = 'airflow'").fetchone()[0] == "it-admin@example.com"
