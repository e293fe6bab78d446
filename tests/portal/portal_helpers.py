"""Test helpers for the portal pages."""
from __future__ import annotations

from support import csrf_from


class Browser:
    """A test client that keeps the CSRF token of the last page it saw and sends it with every form."""

    def __init__(self, client):
        self.client = client
        self.token = None

    def get(self, path, **kw):
        response = self.client.get(path, **kw)
        if response.mimetype == "text/html":
            try:
                self.token = csrf_from(response.get_data(as_text=True))
            except AssertionError:
                pass
        return response

    def post(self, path, data=None, *, csrf=True, **kw):
        if self.token is None:
            self.get("/login")
        data = dict(data or {})
        if csrf:
            data.setdefault("csrf_token", self.token)
        return self.client.post(path, data=data, **kw)

    def htmx(self, method, path, data=None, **kw):
        headers = {"HX-Request": "true", **kw.pop("headers", {})}
        if method == "GET":
            return self.client.get(path, headers=headers, **kw)
        return self.post(path, data, headers=headers, **kw)
