"""Multi-task reinforcement learning on Meta-World: multi-task SAC with dendritic networks."""
