"""The occupancy data engine: posed hands -> labelled point sets in shards."""
