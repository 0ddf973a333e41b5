"""Conformance scenarios of the Serverless Workflow DSL 1.0.3, run through the API and the CLI."""
