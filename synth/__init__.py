"""The synthetic dataset generator (`riskgraph synth`): the input contract with planted fraud and its truth."""
