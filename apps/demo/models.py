"""The demo app keeps no rows of its own: its corpus goes through the corpus importer, and its
example paintings are the analysis app's `ExampleImage`s."""
