"""Reading and writing the ArteFact dataset layout; the services orchestrate these pieces."""


class CorpusSourceError(ValueError):
    """Input that cannot be imported; the message names the file and the entry."""
