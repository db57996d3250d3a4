"""Alert ingest: per-source authentication, schema validation, idempotent insert."""
