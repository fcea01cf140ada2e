"""paved_road."""
