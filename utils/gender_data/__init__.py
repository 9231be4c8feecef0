"""Data files of utils.gender, the scripts that build them (build*.py) and their loaders."""
