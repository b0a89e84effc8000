"""The notes app's own tests: its factories and its sessions, used as the app uses them."""

import asyncio

import pytest
from notes import db, services
from notes.factories import (
    AuthorByEmailFactory,
    AuthorFactory,
    CommittedAuthorFactory,
    NoteFactory,
)
from notes.models import Author, Note
from sqlalchemy import create_engine, func, select, text

import netra_isolation

LEVELS = pytest.mark.parametrize(
    "level",
    [pytest.param(lv, marks=pytest.mark.isolation(level=lv)) for lv in ("database", "transaction")],
)
APP_ENGINE = db.engine


def scenario(level):
    return pytest.mark.isolation(level=level, scenario="two_authors")


@pytest.mark.parametrize("n", range(3))
@pytest.mark.parametrize(
    "level", [pytest.param(lv, marks=scenario(lv)) for lv in ("database", "transaction")]
)
async def test_counts_only_its_scenario_and_itself(isolated_postgres, level, n):
    session, config = isolated_postgres
    assert config.level == level
    assert await services.author_count() == 2  # the app's own session, on the test's database
    assert await services.note_count() == 1
    author = await netra_isolation.acreate(AuthorFactory, email="same@example.com")
    await session.commit()  # the app's sessions see what the test committed
    await services.write_note(author.id, "mine")  # the app commits
    assert await services.author_count() == 3
    assert await services.note_count() == 2
    assert await session.scalar(select(func.count()).select_from(Note)) == 2


@LEVELS
@pytest.mark.parametrize("n", range(2))
async def test_commit_and_get_or_create_factories(isolated_postgres, level, n):
    session, _ = isolated_postgres
    committed = await netra_isolation.acreate(CommittedAuthorFactory, email="c@example.com")
    assert await services.author_count() == 1  # committed by the factory: the app sees it
    first = await netra_isolation.acreate(AuthorByEmailFactory, email="g@example.com")
    again = await netra_isolation.acreate(AuthorByEmailFactory, email="g@example.com")
    assert again.id == first.id != committed.id
    notes = await netra_isolation.acreate_batch(NoteFactory, 3, author=first)
    assert len({note.id for note in notes}) == 3
    assert await session.scalar(select(func.count()).select_from(Author)) == 2
    await session.commit()
    assert await services.note_count() == 3


@LEVELS
@pytest.mark.parametrize("n", range(2))
async def test_the_app_engine_options_are_kept(isolated_postgres, level, n):
    # AuditEntry is in schema "tenant", which only the app engine's schema_translate_map maps
    assert await services.audit("hello") == 1


@LEVELS
@pytest.mark.parametrize("n", range(2))
def test_scoped_session_and_commit_factory_in_a_sync_test(isolated_postgres_sync, level, n):
    session, config = isolated_postgres_sync
    assert config.level == level
    services.register_via_scoped("same@example.com")  # commits, through the app's scoped_session
    CommittedAuthorFactory()
    AuthorFactory()
    assert session.scalar(select(func.count()).select_from(Author)) == 3
    assert services.author_count_via_scoped() == (2 if level == "database" else 3)


@pytest.mark.isolation(level="transaction")
def test_an_async_session_cannot_join_a_sync_tests_transaction(isolated_postgres_sync):
    with pytest.raises(netra_isolation.ConfigurationError, match=r"notes\.db:Session"):
        asyncio.run(services.author_count())


def test_netra_database_url(netra_database_url):
    engine = create_engine(netra_database_url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM authors")).scalar() == 0
    engine.dispose()


def test_outside_the_fixtures_the_app_keeps_its_own_sessions():
    assert db.Session.kw["bind"] is APP_ENGINE
    assert db.SyncSession.session_factory.kw["bind"] is None


@netra_isolation.scenario("one_note", seed=2)
def one_note(session):
    NoteFactory(body="defined in a test module")


@pytest.mark.isolation(level="transaction", scenario="one_note")
async def test_a_scenario_defined_in_the_test_module(isolated_postgres):
    assert await services.note_count() == 1
    assert await services.author_count() == 1
