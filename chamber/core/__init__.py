"""The shared kernel: time zones, tokens, Markdown, slugs, safe redirects, query counting."""
