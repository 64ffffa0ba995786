"""The release report: a static HTML site of the data directory for people who would rather look
than query (``hcpcs report``; every publishing run rewrites it). Reads ``hcpcs.duckdb`` and the run
reports; writes only its own folder."""
