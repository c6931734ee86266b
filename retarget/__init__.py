"""ID-consistent facial expression retargeting (Arc2Face + Expression/Reference Adapters)."""

__version__ = "0.1.0"
