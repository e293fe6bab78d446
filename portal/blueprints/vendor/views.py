"""The vendor pages, one module per area."""
from . import (auth, customers, dashboard, exports, filters, messages, people, poster, programs, staff,  # noqa: F401
               tablet)
