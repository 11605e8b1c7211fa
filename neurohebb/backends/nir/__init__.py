"""NIR backend: a trained network as a Neuromorphic Intermediate Representation graph.

Importing this package does not import `nir`; `export` does, and a missing install becomes a
one-line `BackendUnavailable`. Modules: `export` (NetworkSpec -> NIRGraph and .nir file).
"""
