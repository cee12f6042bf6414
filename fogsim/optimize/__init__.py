"""Many devices, one optimiser (Ren et al. 2020): a design per device.

A design is a shipped checkpoint (its precisions and split points) run with one exit
threshold. Its accuracy and exit rate come from real inference (``fogsim.inference``),
its latency and energy on each device from the simulator's own device model
(``truth``). ``exhaustive``, ``proxy`` and ``learned`` choose a design per device;
``plan`` writes and reads the choice.
"""
