"""Custom Lava processes (kept alone in this folder: Lava's compiler imports every module in a
process's folder when it looks for process models, so nothing else may live here)."""
