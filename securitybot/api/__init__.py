"""The HTTP API (Starlette routes); thin adapters over flows and the store."""
