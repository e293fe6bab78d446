"""The vendor pages, one module per area."""
from . import auth, customers, dashboard, exports, filters, messages, poster, programs, staff, tablet  # noqa: F401
