"""What every sample application in tests/e2e/apps has in common."""

from __future__ import annotations

import re
from pathlib import Path

APPS = Path(__file__).parent / "apps"
PUBLIC_MODULES = {"netra_isolation", "netra_isolation.fixtures", "netra_isolation.alembic_env"}


def test_every_sample_app_uses_public_names_only() -> None:
    """No workaround: no app sets a private attribute (`_meta` included), imports a module of
    the library that is not public, or imports this repository's demo application."""
    apps = sorted(p for p in APPS.iterdir() if p.is_dir())
    assert [a.name for a in apps] == [
        "async_app",
        "clickhouse_app",
        "fastapi_app",
        "real_app",
        "stock_app",
        "tenant_app",
    ]
    for app in apps:
        for path in app.rglob("*.py"):
            text = path.read_text()
            assert not re.search(r"\b_meta\b|\.\s*_\w+\s*=", text), path
            assert not re.search(r"^\s*(?:from|import)\s+(?:factories|migrations)\b", text, re.M)
            for module in re.findall(r"^\s*(?:from|import)\s+(netra_isolation\S*)", text, re.M):
                assert module in PUBLIC_MODULES, (path, module)
