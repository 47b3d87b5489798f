"""Daily rooms for `-t daily`: private, expiring, deleted at the end, tokens kept apart."""
