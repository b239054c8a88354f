"""The reporting layer: what the notebooks call, and the headless report that runs them.

- `analysis`: tables behind the notebooks' figures (no drawing, no printing)
- `plots`: the figures
- `your_workouts`: notebook 05's choice of files and checkpoint
- `report`: papermill + nbconvert: notebooks -> executed notebooks and HTML
"""
