"""dendrite-lab's command line (``dlab``): the entry point over workers, sweeps and the service."""
