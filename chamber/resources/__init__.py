"""The curated resource library and link health. Arrives with the resources issue."""
