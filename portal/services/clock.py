"""The one clock lives in :mod:`portal.clock` (below the models and the services); re-exported here for services."""
from ..clock import UTC, local_day_bounds, now, pinned, seconds_until, zone  # noqa: F401
