"""Fast tests: the real run loop, store and pipeline driven by a scripted executor; no kernels start."""
