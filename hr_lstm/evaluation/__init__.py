"""The evaluation layer: how good a trained model is, and whether a difference is real.

- `evaluate`: metrics of a saved checkpoint on its test split or on new data
- `compare`: paired bootstrap over athletes for the difference of two models
- `ablation`: one change at a time against the default recipe
- `generalisation`: the recipe trained on one simulator variant, tested on others
"""
