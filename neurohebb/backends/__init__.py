"""Optional simulator backends (Lava, Brian2). Nothing here is imported by the core engine;
each backend loads its simulator lazily and reports a missing one as `BackendUnavailable`."""
