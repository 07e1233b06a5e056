"""Maps hold no tables: they are drawn from the directory at each request."""
