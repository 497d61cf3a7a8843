"""Pure signal processing on numpy/scipy (no I/O, no asyncio, no clock)."""
