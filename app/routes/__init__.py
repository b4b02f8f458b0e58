"""One router per resource: ask, search, tags, posts, health, page."""
