"""Book build (papermill + Jupyter Book), offline checks of the HTML."""
