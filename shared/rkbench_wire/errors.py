"""The one error type of the wire protocol."""


class ProtocolError(ValueError):
    """A message that does not follow the protocol: wrong version, unknown type,
    a missing or invalid field. `str(err)` names the field and what was expected."""
