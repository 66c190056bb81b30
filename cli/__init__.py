"""The `riskgraph` command."""
