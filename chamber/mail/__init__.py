"""Email: the transactional outbox, message building, delivery backends and the suppression list."""
