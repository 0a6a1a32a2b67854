"""Readiness that survives a Redis failover.

If every replica turned unready the moment Redis failed over, the Service would empty and the
ingress would answer 503 to everything, even requests that need no session. So a replica stays
ready while its store has answered within the last `grace` seconds (longer than a failover);
requests that need the store meanwhile fail fast with 503 + Retry-After on their own.
"""

from __future__ import annotations

import time
from typing import Any

from ..sessions import SessionStore, StoreUnavailable, request_budget


class StoreHealth:
    def __init__(self, store: SessionStore, *, grace: float, probe_timeout: float) -> None:
        self.store = store
        self.grace = grace
        self.probe_timeout = probe_timeout

    async def check(self) -> dict[str, Any]:
        try:
            with request_budget(self.probe_timeout):
                await self.store.ping()
            store_ok = True
        except StoreUnavailable:
            store_ok = False
        # The store's own record: a request that reached it a moment ago counts as much as
        # a probe that did.
        last = self.store.last_answered
        since_ok = None if last is None else round(max(time.monotonic() - last, 0.0), 3)
        return {
            "ready": store_ok or (since_ok is not None and since_ok <= self.grace),
            "store": "ok" if store_ok else "unavailable",
            "store_shared": not self.store.single_process,
            "seconds_since_store_ok": 0.0 if store_ok else since_ok,
        }
