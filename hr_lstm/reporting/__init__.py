"""The reporting layer: what the notebooks call, and the headless report that runs them.

- `exploration`: notebook 01's tables (the data, its sampling, what the filters dropped)
- `analysis`: tables behind the model notebooks' figures (no drawing, no printing)
- `plots`: the figures
- `athlete`: one real athlete, fitted on their earlier 80% of workouts and scored on the latest 20%
- `your_workouts`: notebook 05's choice of files and checkpoint
- `report`: papermill + nbconvert: notebooks -> executed notebooks and HTML
"""
