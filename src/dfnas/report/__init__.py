"""Tables and figures from any runs that follow the result contract."""

# the comparison figures every experiment draws (report.figures.DRAW), by file stem: the
# one list the workflow's targets, the figures rule and the CLI all read
FIGURES = ("accuracy_per_round", "accuracy_vs_compute", "resources", "personalized")
