"""Account security: API tokens (hashed, named, expiring), the account page, lockout answers."""
