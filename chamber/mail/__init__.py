"""The transactional outbox, message building, delivery backends and the suppression list. Arrives with the mail issue."""
