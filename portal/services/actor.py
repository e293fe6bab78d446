"""Who is acting: passed by the web edges to every service that changes or reads a vendor's data."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Actor:
    #: The vendor whose data this actor may touch; None for platform admins.
    vendor_id: int | None
    role: str  # "admin" | "owner" | "staff" | "api"
    user_id: int | None = None
    api_key_id: int | None = None
    name: str = ""

    @property
    def client_key(self) -> str:
        """The client that PIN failures are counted against (an API key, or a logged-in tablet user)."""
        if self.api_key_id is not None:
            return f"apikey:{self.api_key_id}"
        if self.user_id is not None:
            return f"user:{self.user_id}"
        return "anonymous"

    @property
    def idempotency_scope(self) -> str:
        return self.client_key

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


SYSTEM = Actor(vendor_id=None, role="admin", name="system")
