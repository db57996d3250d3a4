"""Data lifecycle: retention and purge, erasure of one person, export (docs/privacy.md)."""
