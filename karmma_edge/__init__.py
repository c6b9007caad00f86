"""karmma-edge: deploy a missing-modality-robust multimodal action recogniser to the edge."""

__version__ = "0.1.0"
