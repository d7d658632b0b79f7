"""Staff users, their roles, logging in, and the guard every staff page stands behind."""
