"""Categories and tags: what kind of event it is, and its highlights."""
