"""Real servers started by tests (Dovecot IMAP), as opposed to the stand-ins in tests/fakes."""
