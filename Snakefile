# dfnas: a reproducible benchmark for federated neural architecture search.
#   snakemake --cores all                                   # the default config (digits)
#   snakemake --cores all --configfile config/cifar10_cpu.yaml
#   snakemake --report results/<experiment>/report.html
import glob
import os

from snakemake.utils import min_version

min_version("9.0")

# envs/dfnas.yaml installs the project from here (a conda environment is built from a copy
# of that file elsewhere, so it names the repository through this variable, which pip
# expands)
os.environ.setdefault("DFNAS_REPO", workflow.basedir)


# The default config applies only when none is given: a --configfile replaces it rather
# than being merged into it, so a CIFAR config never inherits the digits runs.
if not workflow.overwrite_configfiles:

    configfile: "config/config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/methods.smk"
include: "workflow/rules/export.smk"
include: "workflow/rules/report.smk"


# Baselines of your own: every workflow/rules/baselines/*.smk is included. A rule there
# writes the result contract under
# results/<experiment>/runs/<dataset>/<partition>/<name>/seed<k>/ and the name goes into
# the config's external_runs (see README, "Add a baseline").
for _baseline in sorted(
    glob.glob(os.path.join(workflow.basedir, "workflow/rules/baselines/*.smk"))
):

    include: _baseline


check_external_runs()


rule all:
    default_target: True
    input:
        all_targets(),
