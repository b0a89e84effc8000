"""Seeding in threads (template builds run in threads of their own) owns the process-wide
factory state one at a time."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from netra_isolation.seed_data_manager import registry


def test_seedings_in_many_threads_give_the_serial_rows() -> None:
    """The shared factory state (sequences, random) is owned by one seeding at a time."""
    registry.load(["factories.scenarios"])
    names = ["analytics", "performance"] * 4
    expected = {name: registry.seed_clickhouse(name) for name in set(names)}
    with ThreadPoolExecutor(len(names)) as pool:
        got = list(pool.map(registry.seed_clickhouse, names))
    assert got == [expected[name] for name in names]


def test_a_seeding_thread_never_takes_the_tests_factory_calls() -> None:
    import threading

    from sqlalchemy.orm import Session

    from netra_isolation.seed_data_manager import bind_session, current_session

    test_session, template_session = Session(), Session()
    bound, release = threading.Event(), threading.Event()
    seen: dict[str, Session] = {}

    def build() -> None:
        with bind_session(template_session):
            seen["builder"] = current_session()
            bound.set()
            release.wait(5)

    def helper() -> None:  # a thread the test started, with no session of its own
        seen["helper"] = current_session()

    with bind_session(test_session):
        builder = threading.Thread(target=build)
        builder.start()
        bound.wait(5)
        seen["test"] = current_session()
        other = threading.Thread(target=helper)
        other.start()
        other.join()
        release.set()
        builder.join()
    assert seen == {"builder": template_session, "test": test_session, "helper": test_session}
