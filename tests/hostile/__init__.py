"""Hostile input: malicious upload files and property tests of the site's form and query
parameters."""
