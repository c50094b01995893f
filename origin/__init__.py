"""The origin side of vodstack: object storage backends, the ingest pipeline, the origin server."""
