"""RiskGraph: graph-based credit grading and fraud detection for social-security administrations."""

__version__ = "0.1.0"
