"""fleet serve: event-driven runs over HTTP and the web run view."""
