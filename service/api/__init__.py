"""The /v1 resources, and the CDS Hooks service: one module of routes each."""
