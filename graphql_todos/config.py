"""Settings read once from the environment."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Settings:
    # None means: start the embedded PostgreSQL under data_dir.
    database_url: str | None = None
    data_dir: Path = Path(".data")
    host: str = "127.0.0.1"
    port: int = 8000
    pool_size: int = 10
    # Bound on each subscriber's queue; a subscriber that falls this far
    # behind is switched to reading the journal, so nothing is dropped.
    queue_size: int = 1000
    # How long the listener waits for a NOTIFY before it checks the
    # connection and the journal anyway.
    heartbeat_seconds: float = 5.0
    # Where the built web client lives (web/dist); None serves no client.
    web_dist: Path | None = None

    @classmethod
    def from_env(cls) -> Settings:
        env = os.environ
        web_dist = Path(env.get("WEB_DIST", "web/dist"))
        return cls(
            database_url=env.get("DATABASE_URL") or None,
            data_dir=Path(env.get("DATA_DIR", ".data")),
            host=env.get("HOST", "127.0.0.1"),
            port=int(env.get("PORT", "8000")),
            pool_size=int(env.get("POOL_SIZE", "10")),
            web_dist=web_dist if web_dist.is_dir() else None,
        )
