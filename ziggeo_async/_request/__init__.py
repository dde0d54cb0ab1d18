"""The request path: retry policy, pacer, observation, pipeline, batches."""
