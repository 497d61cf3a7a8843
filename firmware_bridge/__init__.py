"""Everything that knows bytes, devices and transports: recordings, wire protocol, sources."""
