"""Bringing a project from another pipeline tool into nbflow: each module reads one tool's project and writes the
nbflow declarations into its task notebooks (`nbflow import TOOL`)."""
