"""Execution: the scheduling loop (`runner`), the executor interface (`jobs`) and its executors."""
