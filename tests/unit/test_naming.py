import pytest

from netra_isolation.naming import (
    MAX_IDENTIFIER,
    Owner,
    database_name,
    slug,
    template_name,
    test_id_from_nodeid,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("test_User Creation", "test_user_creation"),
        ("test_x[a-b/ü]", "test_x_a_b"),
        ("---", "test"),
        ("ÄÖÜ", "test"),
    ],
)
def test_slug_keeps_only_safe_characters(text: str, expected: str) -> None:
    assert slug(text) == expected


def test_nodeid_becomes_the_readable_test_name() -> None:
    assert test_id_from_nodeid("tests/a.py::TestX::test_y[1-2]") == "test_y_1_2"


def test_long_parametrized_ids_get_valid_unique_names() -> None:
    base = "tests/a.py::test_p[" + "x" * 300
    names = {
        database_name("ni", test_id_from_nodeid(base + f"{i}]"), base + f"{i}]") for i in range(50)
    }
    assert len(names) == 50
    for name in names:
        assert len(name.encode()) <= MAX_IDENTIFIER
        assert name == slug(name, 100)


def test_the_test_id_is_part_of_the_database_name() -> None:
    test_id = test_id_from_nodeid("tests/t.py::test_user_creation")
    assert test_id in database_name("ni", test_id, "run", "gw0")


def test_template_names_carry_labels_and_fingerprint() -> None:
    name = template_name("ni", ["thread_messages", "performance"], "ab" * 32)
    assert name.startswith("ni_tpl_thread_messages_performance_")
    assert name.endswith("abababababab")
    assert len(name) <= 50


def test_owner_tag_round_trips_and_rejects_foreign_comments() -> None:
    owner = Owner.new_run(worker="gw1").for_test("tests/a.py::test_b")
    assert Owner.parse(owner.tag()) == owner
    assert Owner.parse("a comment someone else wrote") is None
    assert Owner.parse('{"other": 1}') is None
    assert Owner.parse(None) is None
