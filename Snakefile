# dfnas: a reproducible benchmark for federated neural architecture search.
#   snakemake --cores all                                   # the default config (digits)
#   snakemake --cores all --configfile config/cifar10_cpu.yaml
#   snakemake --report report.html
from snakemake.utils import min_version

min_version("9.0")


# The default config applies only when none is given: a --configfile replaces it rather
# than being merged into it, so a CIFAR config never inherits the digits runs.
if not workflow.overwrite_configfiles:

    configfile: "config/config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/methods.smk"
include: "workflow/rules/report.smk"


rule all:
    input:
        all_targets(),
    default_target: True
