"""Pages: filled in by the portal issue."""
