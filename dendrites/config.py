"""The network settings both workloads share, declared once: a pydantic model whose fields (with
their bounds) every workload config inherits, and the builder that turns them into a network.

A workload changes a default by re-declaring the field with the same annotated type, e.g.
``kw_percent_on: KWTADensity = 0.25``: bounds and help text stay those declared here.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from dendrites.gating import GatingMode
from dendrites.init import InitScheme
from dendrites.models import MLP, DendriticMLP

MAX_WIDTH = 16_384
MAX_LAYERS = 8
MAX_SEGMENTS = 1_000

Width = Annotated[int, Field(ge=1, le=MAX_WIDTH)]
HiddenSizes = Annotated[
    list[Width],
    Field(min_length=1, max_length=MAX_LAYERS,
          description=f"hidden layer widths, units (1 to {MAX_LAYERS} layers of at most {MAX_WIDTH})"),
]
Segments = Annotated[int, Field(ge=1, le=MAX_SEGMENTS, description="dendritic segments per hidden unit")]
Density = Annotated[float, Field(gt=0.0, le=1.0)]
KWTADensity = Annotated[
    Density | None,
    Field(description="kWTA activation density: fraction of hidden units left on, in (0, 1]; "
                      "null: ReLU instead of kWTA"),
]
Sparsity = Annotated[float, Field(ge=0.0, lt=1.0, description="fraction of feed-forward weights "
                                                              "fixed at zero, in [0, 1)")]
Architecture = Literal["dendritic", "mlp", "sparse_mlp"]


class NetworkConfig(BaseModel):
    """Architecture fields shared by the continual-learning and Meta-World workloads."""

    model_config = ConfigDict(extra="forbid")

    model: Architecture = Field(
        "dendritic",
        description="dendritic network; dense ReLU MLP; or MLP with kWTA and sparse weights (no dendrites)",
    )
    hidden_sizes: HiddenSizes = [2048, 2048]
    num_segments: Segments = 10
    kw_percent_on: KWTADensity = 0.05
    weight_sparsity: Sparsity = 0.5
    dendrite_sparsity: float = Field(0.0, ge=0.0, lt=1.0,
                                     description="fraction of segment weights fixed at zero, in [0, 1)")
    gating: Literal["absolute_max", "max", "bias"] = Field(
        GatingMode.ABSOLUTE_MAX.value, description="how the winning segment modulates its unit")
    init: InitScheme = Field(
        "project", description="weight init: project (bound over kept synapses) or modified "
                               "(Numenta's: also scaled by the input's kWTA density)")
    sparse_head: bool = Field(False, description="output layer with the hidden layers' weight sparsity")


def build_network(config: NetworkConfig, input_dim: int, output_dim: int, context_dim: int, *,
                  context_to_input: bool = False, network_options: dict | None = None,
                  **dendritic_options) -> nn.Module:
    """The network ``config`` names. ``context_dim`` feeds the dendrites of a dendritic network;
    with ``context_to_input`` the MLPs get the context concatenated to their input (the MT10
    baseline), else they ignore it (the permuted-MNIST baseline). The config's ``init`` and
    ``sparse_head`` and any ``network_options`` (e.g. ``layer_input_densities``) go to every
    network class, ``dendritic_options`` to the dendritic one only."""
    options = {"init": config.init, "sparse_head": config.sparse_head, **(network_options or {})}
    if config.model == "dendritic":
        return DendriticMLP(
            input_dim, output_dim, config.hidden_sizes, num_segments=config.num_segments,
            context_dim=context_dim, kw_percent_on=config.kw_percent_on,
            weight_sparsity=config.weight_sparsity, dendrite_sparsity=config.dendrite_sparsity,
            gating=config.gating, **options, **dendritic_options,
        )
    mlp_context = context_dim if context_to_input else 0
    if config.model == "sparse_mlp":
        return MLP(input_dim, output_dim, config.hidden_sizes, context_dim=mlp_context,
                   kw_percent_on=config.kw_percent_on, weight_sparsity=config.weight_sparsity,
                   **options)
    return MLP(input_dim, output_dim, config.hidden_sizes, context_dim=mlp_context, **options)
