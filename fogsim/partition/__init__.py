"""Scission in fogsim: profile a network layer by layer, then choose where to cut it.

``networks`` builds the network a name or checkpoint stands for, ``graph`` traces it into
rows and cut points, ``profiler`` times the rows here, ``timemodel`` derives their times
on other hardware, ``network`` reads the tiers and hops, and ``search`` enumerates and
ranks the partitions.
"""
