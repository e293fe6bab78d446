"""Transactional email: an outbox written in the request's transaction, delivered by ``loyalty mail-worker``
through SMTP (or, without ``SMTP_HOST``, into ``instance/mail/`` and the log)."""
