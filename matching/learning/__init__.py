"""Matching that learns from the directory's own partnerships.

- `features`: the features of an (AMAP, farm, product) question, from the engine's candidate
  table (request and bulk paths) or from an in-memory snapshot of the directory (training);
- `ranker`: the fitted model, a linear score on those features (coefficients in JSON);
- `training`: fitting on the installation's active partnerships and the leave-one-AMAP-out
  recall that measures it (the model card).
"""
