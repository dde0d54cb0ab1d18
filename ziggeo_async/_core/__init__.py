"""Core values: errors, models, arguments, the client-token cipher, redaction."""
