"""Business rules. Blueprints (HTML and JSON) call these; nothing else decides what is allowed.

Services flush; the request (or CLI command) boundary commits — see :func:`portal.storage.run_unit`.
"""
