"""Budget-driven search: an Optuna study per budget over the params that params.yaml's `search` section declares,
every trial a DVC experiment, the study in Optuna's own storage so that a stopped search resumes.

    python -m edgecompress.search BUDGET [--trials N] [--jobs J] [--storage URL]   (make search BUDGET=tiny)
"""
