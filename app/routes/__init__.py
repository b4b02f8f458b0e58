"""One router per resource: ask, search, posts, health, page."""
