"""One module per family of tasks of the Serverless Workflow DSL."""
