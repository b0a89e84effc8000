"""A scenario defined where the tests are, not listed in any setting."""

from notes.factories import AuthorFactory, NoteFactory

import netra_isolation


@netra_isolation.scenario("two_authors", seed=7, counts={"authors": 2, "notes": 1})
def two_authors(session):
    first, second = AuthorFactory.create_batch(2)
    NoteFactory(author=first, body="from the scenario")
    return []
