"""links package."""
