"""Active Dendrites model library (pure PyTorch).

Iyer et al., "Avoiding Catastrophe: Active Dendrites Enable Multi-Task Learning in Dynamic
Environments" (arXiv 2201.00042): dendritic layers gated by context, k-winners-take-all,
static weight sparsity, one-hot and prototype contexts, and consolidation regularisers.
"""

from dendrites.consolidation import EWC, Consolidation, SynapticIntelligence
from dendrites.context import IndexedContext, PrototypeContext, dedup_context, one_hot_context
from dendrites.gating import GatingMode
from dendrites.kwinners import KWinners, kwinners
from dendrites.layers import DendriteSegments, DendriticLayer
from dendrites.models import MLP, DendriticMLP
from dendrites.optim import DendriticAdam, dendritic_adam
from dendrites.sparse import SparseWeights, attach_rezero_hook, rezero_weights

__all__ = [
    "EWC",
    "MLP",
    "Consolidation",
    "DendriteSegments",
    "DendriticAdam",
    "DendriticLayer",
    "DendriticMLP",
    "GatingMode",
    "IndexedContext",
    "KWinners",
    "PrototypeContext",
    "SparseWeights",
    "SynapticIntelligence",
    "attach_rezero_hook",
    "dedup_context",
    "dendritic_adam",
    "kwinners",
    "one_hot_context",
    "rezero_weights",
]
