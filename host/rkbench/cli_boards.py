"""Board commands (board info, doctor, provision): filled in by the boards work."""

COMMANDS: list = []
