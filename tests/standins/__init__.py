"""Stand-ins for hardware we cannot have here (see each package's README)."""
